# Source: scikit-learn example gallery, "K-means Clustering" (plot_cluster_iris.py, BSD-3-Clause):
#   the estimators of the example, scored instead of plotted.
# Task: Cluster the iris data with k-means for several numbers of clusters and compare the
#   clusterings with the true species.

import numpy as np
from sklearn.cluster import KMeans
from sklearn.datasets import load_iris
from sklearn.metrics import adjusted_rand_score, homogeneity_score, silhouette_score

X, y = load_iris(return_X_y=True)

estimators = [
    ("k_means_iris_8", KMeans(n_clusters=8, n_init=10, random_state=0)),
    ("k_means_iris_3", KMeans(n_clusters=3, n_init=10, random_state=0)),
    ("k_means_iris_bad_init", KMeans(n_clusters=3, n_init=1, init="random", random_state=1)),
]

for name, est in estimators:
    labels = est.fit_predict(X)
    print(
        f"{name:<24} inertia {est.inertia_:8.2f}  ARI {adjusted_rand_score(y, labels):.3f}  "
        f"homogeneity {homogeneity_score(y, labels):.3f}  "
        f"silhouette {silhouette_score(X, labels):.3f}"
    )

best = estimators[1][1]
print("cluster sizes:", np.bincount(best.labels_))
print("centres:\n", np.round(best.cluster_centers_, 2))
