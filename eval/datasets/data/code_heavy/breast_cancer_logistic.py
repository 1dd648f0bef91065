# Source: scikit-learn user guide, "Pipelines and composite estimators" and "Cross-validation:
#   evaluating estimator performance" (BSD-3-Clause), on the breast cancer dataset.
# Task: Cross-validate a scaled logistic regression on the breast cancer data with several metrics
#   and report its strongest coefficients.

import numpy as np
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import cross_validate
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

data = load_breast_cancer()
X, y = data.data, data.target
print("samples:", X.shape[0], "features:", X.shape[1], "class counts:", np.bincount(y))

clf = make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=1000))
cv = cross_validate(clf, X, y, cv=5, scoring=["accuracy", "precision", "recall", "roc_auc"])
for metric in ("accuracy", "precision", "recall", "roc_auc"):
    scores = cv[f"test_{metric}"]
    print(f"{metric:>9}: {scores.mean():.3f} +/- {scores.std():.3f}")

clf.fit(X, y)
coef = clf[-1].coef_[0]
for i in np.argsort(np.abs(coef))[::-1][:5]:
    print(f"{data.feature_names[i]:>22}: {coef[i]:+.3f}")
