# Source: scikit-learn example gallery, "Plot different SVM classifiers in the iris dataset"
#   (plot_iris_svc.py, BSD-3-Clause): the four classifiers' scores instead of their decision
#   surfaces.
# Task: Train the four SVM classifiers of the example on two iris features and report their accuracy
#   and support vectors.

from sklearn import svm
from sklearn.datasets import load_iris
from sklearn.model_selection import train_test_split

iris = load_iris()
X = iris.data[:, :2]  # sepal length and width, as in the example
y = iris.target
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.3, random_state=0)

C = 1.0
models = (
    ("SVC with linear kernel", svm.SVC(kernel="linear", C=C)),
    ("LinearSVC (linear kernel)", svm.LinearSVC(C=C, max_iter=10000)),
    ("SVC with RBF kernel", svm.SVC(kernel="rbf", gamma=0.7, C=C)),
    ("SVC with polynomial (degree 3) kernel", svm.SVC(kernel="poly", degree=3, gamma="auto", C=C)),
)

for title, model in models:
    model.fit(X_train, y_train)
    support = getattr(model, "n_support_", None)
    extra = f"  support vectors per class {list(support)}" if support is not None else ""
    print(
        f"{title:<40} train {model.score(X_train, y_train):.3f}  "
        f"test {model.score(X_test, y_test):.3f}{extra}"
    )
