# Source: pandas user guide, "10 minutes to pandas" (Grouping, BSD-3-Clause), on the wine dataset as
#   a DataFrame.
# Task: Load the wine data into pandas and summarise the chemistry of each cultivar with groupby.

import pandas as pd
from sklearn.datasets import load_wine

wine = load_wine(as_frame=True)
df = wine.frame
df["cultivar"] = df["target"].map(dict(enumerate(wine.target_names)))

print(df.shape)
print(df.groupby("cultivar").size())
summary = df.groupby("cultivar")[["alcohol", "malic_acid", "color_intensity", "proline"]].agg(
    ["mean", "std"]
)
print(summary.round(2))

# Several functions at once, and a grouped ranking.
print(df.groupby("cultivar")["proline"].agg(["min", "median", "max"]))
df["proline_rank"] = df.groupby("cultivar")["proline"].rank(ascending=False)
print(
    df.loc[df["proline_rank"] <= 2, ["cultivar", "proline", "alcohol"]].sort_values(
        ["cultivar", "proline"]
    )
)
print(pd.crosstab(df["cultivar"], pd.cut(df["alcohol"], bins=[11, 12.5, 13.5, 15])))
