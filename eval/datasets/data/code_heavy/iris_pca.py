# Source: scikit-learn example gallery, "PCA example with Iris Data-set" (plot_pca_iris.py,
#   BSD-3-Clause): the projection's numbers instead of the 3D plot.
# Task: Project the iris measurements on their first three principal components and report the
#   explained variance and each species' mean position.

import numpy as np
from sklearn.datasets import load_iris
from sklearn.decomposition import PCA

iris = load_iris()
X, y = iris.data, iris.target

pca = PCA(n_components=3)
X_reduced = pca.fit_transform(X)

print("explained variance ratio:", np.round(pca.explained_variance_ratio_, 4))
print("cumulative:", np.round(np.cumsum(pca.explained_variance_ratio_), 4))

for label, name in enumerate(iris.target_names):
    centre = X_reduced[y == label].mean(axis=0)
    print(f"{name:>10}: PC1 {centre[0]:7.3f}  PC2 {centre[1]:7.3f}  PC3 {centre[2]:7.3f}")

# The loadings: how much each measurement contributes to each component.
for name, row in zip(iris.feature_names, pca.components_.T, strict=True):
    print(f"{name:>18}", np.round(row, 3))
