# Source: scikit-learn example gallery, "Importance of Feature Scaling" (plot_scaling_importance.py,
#   BSD-3-Clause): the scores of the example, without the plots.
# Task: Show on the wine data how standard scaling changes a k-nearest-neighbours classifier and a
#   PCA-plus-logistic-regression pipeline.

from sklearn.datasets import load_wine
from sklearn.decomposition import PCA
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, log_loss
from sklearn.model_selection import train_test_split
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

X, y = load_wine(return_X_y=True, as_frame=True)
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.30, random_state=42)
print("feature ranges:\n", (X.max() - X.min()).sort_values(ascending=False).head(4).round(2))

unscaled_knn = KNeighborsClassifier(n_neighbors=20).fit(X_train, y_train)
scaled_knn = make_pipeline(StandardScaler(), KNeighborsClassifier(n_neighbors=20)).fit(
    X_train, y_train
)
print(
    f"KNN accuracy unscaled {unscaled_knn.score(X_test, y_test):.3f}, "
    f"scaled {scaled_knn.score(X_test, y_test):.3f}"
)

unscaled_clf = make_pipeline(PCA(n_components=2), LogisticRegression()).fit(X_train, y_train)
scaled_clf = make_pipeline(StandardScaler(), PCA(n_components=2), LogisticRegression()).fit(
    X_train, y_train
)
for label, clf in (("unscaled", unscaled_clf), ("scaled", scaled_clf)):
    y_pred, y_proba = clf.predict(X_test), clf.predict_proba(X_test)
    print(
        f"{label:>8} PCA: accuracy {accuracy_score(y_test, y_pred):.2%}, "
        f"log-loss {log_loss(y_test, y_proba):.3f}"
    )
