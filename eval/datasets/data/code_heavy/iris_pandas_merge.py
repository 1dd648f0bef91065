# Source: pandas user guide, "Merge, join, concatenate and compare" (merge, concat, BSD-3-Clause),
#   on the iris dataset.
# Task: Join the iris measurements with a table of species facts, concatenate per-species summaries
#   and compare two frames.

import pandas as pd
from sklearn.datasets import load_iris

iris = load_iris(as_frame=True)
df = iris.frame.assign(species=lambda d: d["target"].map(dict(enumerate(iris.target_names))))

facts = pd.DataFrame(
    {
        "species": ["setosa", "versicolor", "virginica"],
        "common_name": ["bristle-pointed iris", "blue flag", "Virginia iris"],
        "region": ["Arctic", "North America", "North America"],
    }
)
merged = df.merge(facts, on="species", how="left", validate="many_to_one")
print(merged[["sepal length (cm)", "species", "common_name", "region"]].sample(5, random_state=0))
print(merged.groupby("region")["petal length (cm)"].mean().round(3))

parts = [
    g.describe().loc[["mean"]].assign(species=name)
    for name, g in df.drop(columns="target").groupby("species")
]
print(pd.concat(parts, ignore_index=True).round(2))

first, second = df.iloc[:5].copy(), df.iloc[:5].copy()
second.loc[2, "petal width (cm)"] = 0.5
print(first.compare(second))
