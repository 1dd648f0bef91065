# Source: scikit-learn user guide, "Naive Bayes" (GaussianNB and MultinomialNB usage, BSD-3-Clause),
#   on the digits dataset.
# Task: Compare Gaussian, multinomial and Bernoulli naive Bayes on the digits with a held-out test
#   set.

from sklearn.datasets import load_digits
from sklearn.metrics import accuracy_score
from sklearn.model_selection import train_test_split
from sklearn.naive_bayes import BernoulliNB, GaussianNB, MultinomialNB

X, y = load_digits(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.3, random_state=0, stratify=y)

for model in (GaussianNB(), MultinomialNB(), BernoulliNB(binarize=8.0)):
    y_pred = model.fit(X_train, y_train).predict(X_test)
    mislabeled = (y_test != y_pred).sum()
    print(
        f"{type(model).__name__:>14}: accuracy {accuracy_score(y_test, y_pred):.3f}, "
        f"mislabeled {mislabeled} of {X_test.shape[0]} points"
    )
