# Source: scikit-learn example gallery, "Cross-validation on Digits Dataset Exercise"
#   (plot_cv_digits.py, BSD-3-Clause): the scores per C printed instead of plotted.
# Task: Cross-validate a linear SVM on the digits for a range of regularisation values and report
#   the best one.

import numpy as np
from sklearn import datasets, svm
from sklearn.model_selection import cross_val_score

X, y = datasets.load_digits(return_X_y=True)
X, y = X[:600], y[:600]  # a subset, as a quick exercise

svc = svm.SVC(kernel="linear")
C_s = np.logspace(-10, 0, 6)

scores = []
scores_std = []
for C in C_s:
    svc.C = C
    this_scores = cross_val_score(svc, X, y, cv=5, n_jobs=1)
    scores.append(np.mean(this_scores))
    scores_std.append(np.std(this_scores))
    print(f"C={C:.0e}  CV score {scores[-1]:.3f} +/- {scores_std[-1]:.3f}")

best = int(np.argmax(scores))
print(f"best C: {C_s[best]:.0e} with score {scores[best]:.3f}")
