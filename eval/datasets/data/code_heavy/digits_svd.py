# Source: NumPy tutorials, "Linear algebra on n-dimensional arrays" (numpy/numpy-tutorials,
#   tutorial-svd, BSD-3-Clause): the SVD low-rank approximation, on the digits images instead of a
#   photograph.
# Task: Approximate the matrix of all digits images by truncated SVDs of increasing rank and report
#   the reconstruction error.

import numpy as np
from numpy import linalg
from sklearn.datasets import load_digits

digits = load_digits()
A = digits.data / 16.0  # 1797 images x 64 pixels, scaled to [0, 1]
print("matrix shape:", A.shape)

U, s, Vt = linalg.svd(A, full_matrices=False)
print("singular values (first 8):", np.round(s[:8], 2))
print("orthonormal rows of Vt:", np.allclose(Vt @ Vt.T, np.eye(Vt.shape[0])))

for k in (1, 2, 5, 10, 20, 40, 64):
    approx = U[:, :k] @ np.diag(s[:k]) @ Vt[:k, :]
    error = linalg.norm(A - approx) / linalg.norm(A)
    energy = (s[:k] ** 2).sum() / (s**2).sum()
    print(f"rank {k:2d}: relative error {error:.4f}, energy kept {energy:.4f}")
