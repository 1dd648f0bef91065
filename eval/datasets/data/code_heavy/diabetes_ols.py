# Source: scikit-learn example gallery, "Linear Regression Example" (plot_ols.py, BSD-3-Clause): the
#   coefficients and scores printed instead of plotted.
# Task: Fit ordinary least squares on one feature of the diabetes data and on all ten, and report
#   coefficients, MSE and R^2.

from sklearn.datasets import load_diabetes
from sklearn.linear_model import LinearRegression
from sklearn.metrics import mean_squared_error, r2_score
from sklearn.model_selection import train_test_split

X, y = load_diabetes(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(X[:, [2]], y, test_size=20, shuffle=False)

regressor = LinearRegression().fit(X_train, y_train)
y_pred = regressor.predict(X_test)
print(f"BMI only: coefficient {regressor.coef_[0]:.2f}, intercept {regressor.intercept_:.2f}")
print(f"Mean squared error: {mean_squared_error(y_test, y_pred):.2f}")
print(f"Coefficient of determination: {r2_score(y_test, y_pred):.2f}")

X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=20, shuffle=False)
full = LinearRegression().fit(X_train, y_train)
print("all features, coefficients:", full.coef_.round(1))
print(
    f"all features: MSE {mean_squared_error(y_test, full.predict(X_test)):.2f}, "
    f"R^2 {full.score(X_test, y_test):.2f}"
)
