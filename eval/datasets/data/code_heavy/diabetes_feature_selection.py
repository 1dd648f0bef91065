# Source: scikit-learn example gallery, "Model-based and sequential feature selection"
#   (plot_select_from_model_diabetes.py, BSD-3-Clause).
# Task: Select two features of the diabetes data by ridge coefficients, then by forward and backward
#   sequential selection, and compare.

from time import time

import numpy as np
from sklearn.datasets import load_diabetes
from sklearn.feature_selection import SelectFromModel, SequentialFeatureSelector
from sklearn.linear_model import RidgeCV

diabetes = load_diabetes()
X, y = diabetes.data, diabetes.target
feature_names = np.array(diabetes.feature_names)

ridge = RidgeCV(alphas=np.logspace(-6, 6, num=5)).fit(X, y)
importance = np.abs(ridge.coef_)
print("ridge coefficient magnitudes:", dict(zip(feature_names, importance.round(1), strict=True)))

threshold = np.sort(importance)[-3] + 0.01
sfm = SelectFromModel(ridge, threshold=threshold).fit(X, y)
print(f"Features selected by SelectFromModel: {feature_names[sfm.get_support()]}")

for direction in ("forward", "backward"):
    tic = time()
    sfs = SequentialFeatureSelector(ridge, n_features_to_select=2, direction=direction).fit(X, y)
    print(
        f"Features selected by {direction} sequential selection: "
        f"{feature_names[sfs.get_support()]} ({time() - tic:.2f}s)"
    )
