# Source: scikit-learn user guide, "Multiclass and multioutput algorithms" (MultiOutputRegressor,
#   BSD-3-Clause), on the Linnerud dataset shipped with scikit-learn.
# Task: Predict the three physiological measurements of the Linnerud data from the three exercises
#   with ridge and multi-output gradient boosting.

import numpy as np
from sklearn.datasets import load_linnerud
from sklearn.ensemble import GradientBoostingRegressor
from sklearn.linear_model import Ridge
from sklearn.model_selection import cross_val_predict
from sklearn.multioutput import MultiOutputRegressor

linnerud = load_linnerud(as_frame=True)
X, Y = linnerud.data, linnerud.target
print(X.describe().round(1))
print("correlations exercise x physiology:\n", X.join(Y).corr().loc[X.columns, Y.columns].round(2))

for name, model in (
    ("ridge", Ridge(alpha=1.0)),
    ("boosting", MultiOutputRegressor(GradientBoostingRegressor(n_estimators=50, random_state=0))),
):
    pred = cross_val_predict(model, X, Y, cv=5)
    mae = np.abs(pred - Y.to_numpy()).mean(axis=0)
    print(name, "mean absolute error per target:", dict(zip(Y.columns, mae.round(2), strict=True)))
