# Source: scikit-learn example gallery, "A demo of K-Means clustering on the handwritten digits
#   data" (plot_kmeans_digits.py, BSD-3-Clause): the benchmark table of the example.
# Task: Benchmark k-means on the digits with k-means++, random and PCA-based initialisations and
#   print the clustering metrics.

from time import time

import numpy as np
from sklearn import metrics
from sklearn.cluster import KMeans
from sklearn.datasets import load_digits
from sklearn.decomposition import PCA
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

data, labels = load_digits(return_X_y=True)
(n_samples, n_features), n_digits = data.shape, np.unique(labels).size
print(f"# digits: {n_digits}; # samples: {n_samples}; # features {n_features}")


def bench_k_means(kmeans, name, data, labels):
    t0 = time()
    estimator = make_pipeline(StandardScaler(), kmeans).fit(data)
    fit_time = time() - t0
    results = [name, fit_time, estimator[-1].inertia_]
    clustering_metrics = [
        metrics.homogeneity_score,
        metrics.completeness_score,
        metrics.v_measure_score,
        metrics.adjusted_rand_score,
        metrics.adjusted_mutual_info_score,
    ]
    results += [m(labels, estimator[-1].labels_) for m in clustering_metrics]
    print("{:9s}\t{:.3f}s\t{:.0f}\t{:.3f}\t{:.3f}\t{:.3f}\t{:.3f}\t{:.3f}".format(*results))


print(82 * "_")
print("init\t\ttime\tinertia\thomo\tcompl\tv-meas\tARI\tAMI")
bench_k_means(
    KMeans(init="k-means++", n_clusters=n_digits, n_init=4, random_state=0),
    "k-means++",
    data,
    labels,
)
bench_k_means(
    KMeans(init="random", n_clusters=n_digits, n_init=4, random_state=0), "random", data, labels
)
pca = PCA(n_components=n_digits).fit(data)
bench_k_means(
    KMeans(init=pca.components_, n_clusters=n_digits, n_init=1), "PCA-based", data, labels
)
print(82 * "_")
