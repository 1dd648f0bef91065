# Source: NumPy reference, numpy.linalg.lstsq ("Fit a line, y = mx + c, through some noisy
#   data-points", BSD-3-Clause), on the diabetes data, checked against scikit-learn.
# Task: Solve the diabetes regression with numpy's least squares and with the normal equations and
#   check both against scikit-learn.

import numpy as np
from sklearn.datasets import load_diabetes
from sklearn.linear_model import LinearRegression

X, y = load_diabetes(return_X_y=True)
A = np.column_stack([X, np.ones(len(X))])  # a column of ones for the intercept

coef, residuals, rank, singular_values = np.linalg.lstsq(A, y, rcond=None)
print("rank:", rank, "residual sum of squares:", residuals.round(1))
print("coefficients:", coef[:-1].round(2), "intercept:", round(coef[-1], 2))

normal = np.linalg.solve(A.T @ A, A.T @ y)
print("normal equations agree:", np.allclose(normal, coef))

sk = LinearRegression().fit(X, y)
print("scikit-learn agrees:", np.allclose(sk.coef_, coef[:-1]), np.isclose(sk.intercept_, coef[-1]))
print("condition number of A:", round(np.linalg.cond(A), 2))
