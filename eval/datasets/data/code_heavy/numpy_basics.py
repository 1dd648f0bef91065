# Source: NumPy user guide, "NumPy: the absolute basics for beginners" (array creation, indexing,
#   broadcasting, random generator, BSD-3-Clause), on the iris measurements.
# Task: Work through NumPy's basics on the iris measurements: shapes, slicing, broadcasting,
#   aggregation and a seeded bootstrap.

import numpy as np
from sklearn.datasets import load_iris

X = load_iris().data
print("shape:", X.shape, "dtype:", X.dtype, "ndim:", X.ndim, "size:", X.size)
print("first rows:\n", X[:3])
print("every 50th row, petal columns:\n", X[::50, 2:])

centred = X - X.mean(axis=0)  # broadcasting a row over all rows
standardised = centred / X.std(axis=0)
print("means after centring:", np.round(centred.mean(axis=0), 12))
print("std after standardising:", standardised.std(axis=0).round(6))

print("column max:", X.max(axis=0), "argmax:", X.argmax(axis=0))
print("rows with petal length > 6:", np.flatnonzero(X[:, 2] > 6))
print("covariance:\n", np.cov(X, rowvar=False).round(3))

rng = np.random.default_rng(seed=42)
boot = rng.choice(X[:, 0], size=(1000, X.shape[0]), replace=True).mean(axis=1)
low, high = np.percentile(boot, [2.5, 97.5])
print(f"bootstrap 95% interval of the mean sepal length: [{low:.3f}, {high:.3f}]")
