# Source: scikit-learn example gallery, "Comparison of LDA and PCA 2D projection of Iris dataset"
#   (plot_pca_vs_lda.py, BSD-3-Clause): the projections' statistics instead of the scatter plots.
# Task: Project the iris data to two dimensions with PCA and with LDA and compare how well each
#   separates the species.

import numpy as np
from sklearn.datasets import load_iris
from sklearn.decomposition import PCA
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
from sklearn.metrics import silhouette_score

iris = load_iris()
X, y = iris.data, iris.target

X_pca = PCA(n_components=2).fit(X).transform(X)
lda = LinearDiscriminantAnalysis(n_components=2)
X_lda = lda.fit(X, y).transform(X)

print(
    "PCA explained variance ratio:",
    np.round(PCA(n_components=2).fit(X).explained_variance_ratio_, 4),
)
print("LDA explained variance ratio:", np.round(lda.explained_variance_ratio_, 4))
print("silhouette of the species, PCA:", round(silhouette_score(X_pca, y), 3))
print("silhouette of the species, LDA:", round(silhouette_score(X_lda, y), 3))
print("LDA training accuracy:", round(lda.score(X, y), 3))
for label, name in enumerate(iris.target_names):
    print(f"{name:>10} LDA centre", np.round(X_lda[y == label].mean(axis=0), 3))
