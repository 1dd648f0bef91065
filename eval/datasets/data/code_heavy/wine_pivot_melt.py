# Source: pandas user guide, "Reshaping and pivot tables" (pivot_table, melt, BSD-3-Clause), on the
#   wine dataset.
# Task: Reshape the wine measurements between wide and long form and build pivot tables per cultivar
#   and alcohol level.

import pandas as pd
from sklearn.datasets import load_wine

wine = load_wine(as_frame=True)
df = wine.frame.rename(columns={"target": "cultivar"})
df["alcohol_level"] = pd.qcut(df["alcohol"], 3, labels=["low", "medium", "high"])

long = df.melt(
    id_vars=["cultivar", "alcohol_level"],
    value_vars=["flavanoids", "hue", "ash"],
    var_name="measure",
)
print(long.head())
print(long.shape)

table = pd.pivot_table(
    long,
    values="value",
    index=["measure", "alcohol_level"],
    columns="cultivar",
    aggfunc="mean",
    observed=True,
)
print(table.round(3))

counts = pd.pivot_table(
    df,
    values="proline",
    index="alcohol_level",
    columns="cultivar",
    aggfunc="count",
    observed=True,
    margins=True,
)
print(counts)
