# Source: scikit-learn example gallery, "Plot the decision surface of decision trees trained on the
#   iris dataset" (plot_iris_dtc.py, BSD-3-Clause): the same fits, printed instead of plotted.
# Task: Fit a decision tree on each pair of iris features and compare their training accuracy, then
#   print the rules of a shallow tree on all four features.

from itertools import combinations

from sklearn.datasets import load_iris
from sklearn.tree import DecisionTreeClassifier, export_text

iris = load_iris()
names = iris.feature_names

# One tree per pair of features, as in the example's six panels.
for i, j in combinations(range(4), 2):
    X = iris.data[:, [i, j]]
    clf = DecisionTreeClassifier(random_state=0).fit(X, iris.target)
    print(f"{names[i]:>18} + {names[j]:<18} accuracy {clf.score(X, iris.target):.3f}")

# A shallow tree on all features, as text.
tree = DecisionTreeClassifier(max_depth=3, random_state=0).fit(iris.data, iris.target)
print(export_text(tree, feature_names=names))
print("depth:", tree.get_depth(), "leaves:", tree.get_n_leaves())
