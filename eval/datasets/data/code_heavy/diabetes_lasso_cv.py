# Source: scikit-learn example gallery, "Lasso model selection: AIC-BIC / cross-validation"
#   (plot_lasso_model_selection.py, BSD-3-Clause): the selected alphas printed.
# Task: Select the Lasso regularisation for the diabetes data by information criteria and by
#   cross-validation, and compare the chosen models.

import numpy as np
from sklearn.datasets import load_diabetes
from sklearn.linear_model import LassoCV, LassoLarsIC
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

X, y = load_diabetes(return_X_y=True, as_frame=True)
rng = np.random.RandomState(42)
n_random_features = 14
X_random = rng.randn(X.shape[0], n_random_features)
X[[f"random_{i:02d}" for i in range(n_random_features)]] = X_random  # noise features to ignore

for criterion in ("aic", "bic"):
    model = make_pipeline(StandardScaler(), LassoLarsIC(criterion=criterion)).fit(X, y)
    lasso = model[-1]
    kept = X.columns[lasso.coef_ != 0]
    print(f"{criterion.upper()}: alpha {lasso.alpha_:.4f}, {len(kept)} features kept: {list(kept)}")

cv_model = make_pipeline(StandardScaler(), LassoCV(cv=10, random_state=0)).fit(X, y)
lasso = cv_model[-1]
print(f"CV: alpha {lasso.alpha_:.4f}, {int((lasso.coef_ != 0).sum())} features kept")
print(
    "mean CV MSE at that alpha:",
    round(lasso.mse_path_.mean(axis=1)[lasso.alphas_ == lasso.alpha_][0], 1),
)
