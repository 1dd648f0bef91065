# Source: scikit-learn example gallery, "GMM covariances" (plot_gmm_covariances.py, BSD-3-Clause):
#   each covariance type's accuracy instead of the ellipses.
# Task: Fit Gaussian mixtures with each covariance type to the iris training data, initialised at
#   the class means, and compare train and test accuracy.

import numpy as np
from sklearn.datasets import load_iris
from sklearn.mixture import GaussianMixture
from sklearn.model_selection import StratifiedKFold

iris = load_iris()
skf = StratifiedKFold(n_splits=4)
train_index, test_index = next(iter(skf.split(iris.data, iris.target)))
X_train, y_train = iris.data[train_index], iris.target[train_index]
X_test, y_test = iris.data[test_index], iris.target[test_index]
n_classes = len(np.unique(y_train))

for cov_type in ("spherical", "diag", "tied", "full"):
    gmm = GaussianMixture(
        n_components=n_classes, covariance_type=cov_type, max_iter=20, random_state=0
    )
    gmm.means_init = np.array([X_train[y_train == i].mean(axis=0) for i in range(n_classes)])
    gmm.fit(X_train)
    train_accuracy = np.mean(gmm.predict(X_train) == y_train) * 100
    test_accuracy = np.mean(gmm.predict(X_test) == y_test) * 100
    print(
        f"{cov_type:>9}: train accuracy {train_accuracy:.1f}%  "
        f"test accuracy {test_accuracy:.1f}%  BIC {gmm.bic(X_train):.1f}"
    )
