# Source: pandas user guide, "Discretization and quantiling" (cut, qcut, value_counts,
#   BSD-3-Clause), on the breast cancer dataset.
# Task: Bin the tumour radius and texture of the breast cancer data and tabulate the share of
#   malignant tumours per bin.

import pandas as pd
from sklearn.datasets import load_breast_cancer

cancer = load_breast_cancer(as_frame=True)
df = cancer.frame
df["diagnosis"] = df["target"].map({0: "malignant", 1: "benign"})
print(df["diagnosis"].value_counts())

df["radius_bin"] = pd.cut(df["mean radius"], bins=[0, 10, 12.5, 15, 17.5, 30])
df["texture_q"] = pd.qcut(df["mean texture"], 4, labels=["low", "mid-low", "mid-high", "high"])

share = df.groupby("radius_bin", observed=True)["target"].agg(count="size", benign_share="mean")
print(share.assign(malignant_share=1 - share["benign_share"]).round(3))
print(pd.crosstab(df["texture_q"], df["diagnosis"], normalize="index").round(3))
print(df.groupby("diagnosis")[["mean radius", "mean texture", "mean area"]].median().round(2))
