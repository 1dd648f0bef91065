# Source: scikit-learn example gallery, "Nearest Neighbors Classification" (plot_classification.py,
#   BSD-3-Clause): both weightings, cross-validated instead of plotted.
# Task: Compare uniform and distance-weighted k-nearest-neighbour classifiers on the iris data for
#   several k, with cross-validation.

from sklearn.datasets import load_iris
from sklearn.model_selection import cross_val_score
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

X, y = load_iris(return_X_y=True)

for weights in ("uniform", "distance"):
    for k in (1, 5, 15, 30):
        clf = make_pipeline(StandardScaler(), KNeighborsClassifier(n_neighbors=k, weights=weights))
        scores = cross_val_score(clf, X, y, cv=5)
        print(f"{weights:>8} k={k:<3} accuracy {scores.mean():.3f} +/- {scores.std():.3f}")
