# Source: scikit-learn example gallery, "Recognizing hand-written digits"
#   (plot_digits_classification.py, BSD-3-Clause): the same classifier and report, printed instead
#   of plotted.
# Task: Train a support vector classifier on the first half of the digits images and report how well
#   it recognises the second half.

from sklearn import datasets, metrics, svm
from sklearn.model_selection import train_test_split

digits = datasets.load_digits()
n_samples = len(digits.images)
data = digits.images.reshape((n_samples, -1))  # flatten the 8x8 images

clf = svm.SVC(gamma=0.001)
X_train, X_test, y_train, y_test = train_test_split(
    data, digits.target, test_size=0.5, shuffle=False
)
clf.fit(X_train, y_train)
predicted = clf.predict(X_test)

print(
    f"Classification report for classifier {clf}:\n"
    f"{metrics.classification_report(y_test, predicted)}"
)
print("Confusion matrix:")
print(metrics.confusion_matrix(y_test, predicted))
