# Source: pandas user guide, "10 minutes to pandas" (Viewing data, Stats, BSD-3-Clause), on the
#   diabetes dataset as a DataFrame.
# Task: Explore the diabetes data with pandas: summary statistics, correlations with the target and
#   the target by BMI quartile.

import pandas as pd
from sklearn.datasets import load_diabetes

df = load_diabetes(as_frame=True, scaled=False).frame
print(df.head())
print(df.dtypes.value_counts())
print(df.describe().T[["mean", "std", "min", "max"]].round(2))

correlations = df.corr()["target"].drop("target").sort_values(ascending=False)
print("correlation with disease progression:\n", correlations.round(3))

df["bmi_quartile"] = pd.qcut(df["bmi"], 4, labels=["Q1", "Q2", "Q3", "Q4"])
print(df.groupby("bmi_quartile", observed=True)["target"].agg(["count", "mean", "median"]).round(1))
print(df.nlargest(3, "target")[["age", "sex", "bmi", "bp", "target"]])
