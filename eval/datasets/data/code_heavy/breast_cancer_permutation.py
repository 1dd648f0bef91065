# Source: scikit-learn example gallery, "Permutation Importance with Multicollinear or Correlated
#   Features" (plot_permutation_importance_multicollinear.py, BSD-3-Clause): fewer trees and
#   repeats, printed.
# Task: Compare a random forest's impurity importances with permutation importances on the breast
#   cancer data.

import numpy as np
from sklearn.datasets import load_breast_cancer
from sklearn.ensemble import RandomForestClassifier
from sklearn.inspection import permutation_importance
from sklearn.model_selection import train_test_split

X, y = load_breast_cancer(return_X_y=True, as_frame=True)
X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=42)

clf = RandomForestClassifier(n_estimators=50, random_state=42)
clf.fit(X_train, y_train)
print(f"Baseline accuracy on test data: {clf.score(X_test, y_test):.2}")

mdi = np.argsort(clf.feature_importances_)[::-1][:5]
print("impurity-based:", list(X.columns[mdi]))

result = permutation_importance(clf, X_test, y_test, n_repeats=3, random_state=42)
perm = np.argsort(result.importances_mean)[::-1][:5]
for i in perm:
    print(
        f"{X.columns[i]:>22}: {result.importances_mean[i]:.4f} +/- {result.importances_std[i]:.4f}"
    )
