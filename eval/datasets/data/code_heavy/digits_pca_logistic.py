# Source: scikit-learn example gallery, "Pipelining: chaining a PCA and a logistic regression"
#   (plot_digits_pipe.py, BSD-3-Clause): a smaller grid, the search's table printed.
# Task: Chain PCA and logistic regression on the digits and grid-search the number of components and
#   the regularisation.

import pandas as pd
from sklearn.datasets import load_digits
from sklearn.decomposition import PCA
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

X_digits, y_digits = load_digits(return_X_y=True)
pipe = Pipeline(
    steps=[
        ("scaler", StandardScaler()),
        ("pca", PCA()),
        ("logistic", LogisticRegression(max_iter=300, tol=0.1)),
    ]
)
param_grid = {"pca__n_components": [5, 15, 30], "logistic__C": [0.01, 1.0]}
search = GridSearchCV(pipe, param_grid, cv=3)
search.fit(X_digits, y_digits)

print(f"Best parameter (CV score={search.best_score_:0.3f}):")
print(search.best_params_)
results = pd.DataFrame(search.cv_results_)[
    ["param_pca__n_components", "param_logistic__C", "mean_test_score"]
]
print(results.sort_values("mean_test_score", ascending=False).to_string(index=False))
