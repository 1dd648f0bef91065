# Source: scikit-learn example gallery, "IsolationForest example" (plot_isolation_forest.py,
#   BSD-3-Clause), on the wine dataset.
# Task: Find the most anomalous wines with an isolation forest and compare them with the typical
#   ones.

import numpy as np
from sklearn.datasets import load_wine
from sklearn.ensemble import IsolationForest

wine = load_wine(as_frame=True)
X = wine.data

clf = IsolationForest(n_estimators=100, contamination=0.05, random_state=0)
labels = clf.fit_predict(X)
scores = clf.score_samples(X)

print("outliers found:", int((labels == -1).sum()), "of", len(X))
order = np.argsort(scores)[:5]
print(
    X.iloc[order][["alcohol", "malic_acid", "magnesium", "proline"]].assign(
        score=scores[order].round(3)
    )
)
print(
    "mean of the inliers:\n",
    X[labels == 1][["alcohol", "malic_acid", "magnesium", "proline"]].mean().round(2),
)
