# Source: scikit-learn example gallery, "Manifold learning on handwritten digits: Locally Linear
#   Embedding, Isomap..." (plot_lle_digits.py, BSD-3-Clause): three fast embeddings, scored by a
#   nearest-neighbour classifier instead of plotted.
# Task: Embed the digits 0-5 in two dimensions with random projection, truncated SVD and Isomap, and
#   compare how well each embedding keeps the classes apart.

from sklearn.datasets import load_digits
from sklearn.decomposition import TruncatedSVD
from sklearn.manifold import Isomap
from sklearn.model_selection import cross_val_score
from sklearn.neighbors import KNeighborsClassifier
from sklearn.random_projection import SparseRandomProjection

digits = load_digits(n_class=6)
X, y = digits.data, digits.target
print("samples:", X.shape[0], "features:", X.shape[1])

embeddings = {
    "Random projection": SparseRandomProjection(n_components=2, random_state=42),
    "Truncated SVD": TruncatedSVD(n_components=2),
    "Isomap": Isomap(n_neighbors=10, n_components=2),
}
for name, transformer in embeddings.items():
    projection = transformer.fit_transform(X, y)
    score = cross_val_score(KNeighborsClassifier(n_neighbors=5), projection, y, cv=5).mean()
    print(f"{name:>18}: 5-NN accuracy in 2D {score:.3f}")
