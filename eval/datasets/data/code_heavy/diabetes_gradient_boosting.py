# Source: scikit-learn example gallery, "Gradient Boosting regression"
#   (plot_gradient_boosting_regression.py, BSD-3-Clause): the deviance per stage printed instead of
#   plotted.
# Task: Fit a gradient boosting regressor to the diabetes data and report its test error along the
#   boosting stages and its most important features.

import numpy as np
from sklearn import datasets, ensemble
from sklearn.metrics import mean_squared_error
from sklearn.model_selection import train_test_split

diabetes = datasets.load_diabetes()
X, y = diabetes.data, diabetes.target
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.1, random_state=13)

params = {
    "n_estimators": 300,
    "max_depth": 4,
    "min_samples_split": 5,
    "learning_rate": 0.01,
    "loss": "squared_error",
}
reg = ensemble.GradientBoostingRegressor(**params)
reg.fit(X_train, y_train)

mse = mean_squared_error(y_test, reg.predict(X_test))
print(f"The mean squared error (MSE) on test set: {mse:.4f}")

test_score = np.array([mean_squared_error(y_test, y_pred) for y_pred in reg.staged_predict(X_test)])
for stage in (0, 49, 99, 199, 299):
    print(
        f"stage {stage + 1:3d}: train deviance {reg.train_score_[stage]:8.1f}, "
        f"test deviance {test_score[stage]:8.1f}"
    )

order = np.argsort(reg.feature_importances_)[::-1]
for i in order[:5]:
    print(f"{diabetes.feature_names[i]:>4}: {reg.feature_importances_[i]:.3f}")
