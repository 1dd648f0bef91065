# Source: scikit-learn example gallery, "Confusion matrix" (plot_confusion_matrix.py, BSD-3-Clause):
#   the matrices printed instead of plotted.
# Task: Train a deliberately over-regularised linear SVM on iris and print its raw and normalised
#   confusion matrices and a classification report.

import numpy as np
from sklearn import svm
from sklearn.datasets import load_iris
from sklearn.metrics import classification_report, confusion_matrix
from sklearn.model_selection import train_test_split

iris = load_iris()
X_train, X_test, y_train, y_test = train_test_split(iris.data, iris.target, random_state=0)

# A regularisation too strong, as in the example, so that the matrix shows some mistakes.
classifier = svm.SVC(kernel="linear", C=0.01).fit(X_train, y_train)
y_pred = classifier.predict(X_test)

print("Confusion matrix, without normalization")
print(confusion_matrix(y_test, y_pred))
print("Normalized confusion matrix")
print(np.round(confusion_matrix(y_test, y_pred, normalize="true"), 2))
print(classification_report(y_test, y_pred, target_names=iris.target_names))
