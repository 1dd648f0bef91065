# Source: pandas user guide, "10 minutes to pandas" (Selection: loc, iloc, boolean indexing,
#   BSD-3-Clause), on the iris dataset as a DataFrame.
# Task: Load iris into pandas and select rows and columns by label, by position and by conditions.

import pandas as pd
from sklearn.datasets import load_iris

iris = load_iris(as_frame=True)
df = iris.frame.rename(columns=lambda c: c.replace(" (cm)", "").replace(" ", "_"))
df["species"] = pd.Categorical.from_codes(iris.target, iris.target_names)

print(df.head(3))
print(df.loc[10:14, ["sepal_length", "petal_length", "species"]])
print(df.iloc[[0, 50, 100], 2:5])
print(df[df["petal_length"] > 6.0])
print(df[df["species"].isin(["setosa", "virginica"]) & (df["sepal_width"] > 3.8)])
print(df.query("petal_width < 0.2 and sepal_length > 5").shape)
df.loc[df["sepal_length"] > 7.5, "note"] = "long sepal"
print(df["note"].value_counts(dropna=False))
print(df.select_dtypes("number").agg(["min", "max"]).T)
