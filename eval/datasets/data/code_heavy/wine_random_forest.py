# Source: scikit-learn example gallery, "Feature importances with a forest of trees"
#   (plot_forest_importances.py, BSD-3-Clause), on the wine dataset.
# Task: Fit a random forest to the wine data and rank the features by their impurity-based
#   importance.

import pandas as pd
from sklearn.datasets import load_wine
from sklearn.ensemble import RandomForestClassifier
from sklearn.model_selection import train_test_split

wine = load_wine(as_frame=True)
X_train, X_test, y_train, y_test = train_test_split(
    wine.data, wine.target, stratify=wine.target, random_state=42
)

forest = RandomForestClassifier(n_estimators=100, random_state=0)
forest.fit(X_train, y_train)
print(f"test accuracy: {forest.score(X_test, y_test):.3f}")

importances = pd.Series(forest.feature_importances_, index=wine.feature_names)
std = pd.Series([t.feature_importances_ for t in forest.estimators_]).apply(pd.Series).std()
std.index = wine.feature_names
ranking = pd.DataFrame({"importance": importances, "std": std}).sort_values(
    "importance", ascending=False
)
print(ranking.round(3))
