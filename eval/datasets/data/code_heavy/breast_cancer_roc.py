# Source: scikit-learn example gallery, "Receiver Operating Characteristic (ROC) with cross
#   validation" (plot_roc_crossval.py, BSD-3-Clause): the per-fold AUCs printed, on the breast
#   cancer dataset.
# Task: Compute the ROC curve and AUC of an SVM on each cross-validation fold of the breast cancer
#   data, and their mean.

import numpy as np
from sklearn import svm
from sklearn.datasets import load_breast_cancer
from sklearn.metrics import auc, roc_curve
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

X, y = load_breast_cancer(return_X_y=True)
cv = StratifiedKFold(n_splits=6)
classifier = make_pipeline(StandardScaler(), svm.SVC(kernel="linear"))

mean_fpr = np.linspace(0, 1, 100)
tprs, aucs = [], []
for fold, (train, test) in enumerate(cv.split(X, y)):
    classifier.fit(X[train], y[train])
    scores = classifier.decision_function(X[test])
    fpr, tpr, _ = roc_curve(y[test], scores)
    aucs.append(auc(fpr, tpr))
    tprs.append(np.interp(mean_fpr, fpr, tpr))
    print(f"ROC fold {fold}: AUC = {aucs[-1]:.3f}")

mean_tpr = np.mean(tprs, axis=0)
mean_tpr[-1] = 1.0
print(f"Mean ROC: AUC = {auc(mean_fpr, mean_tpr):.3f} +/- {np.std(aucs):.3f}")
