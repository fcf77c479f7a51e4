"""pytest-benchmark suites for the three kernel families (not part of the test run).

    python -m pytest benchmarks/test_bench_kernels.py --benchmark-only

compare.py pits the same operations against other libraries in one run.
"""

import pytest

import ganmetrics as gm
from ganmetrics.datasets import inception_like_features

pytest.importorskip("pytest_benchmark")


@pytest.fixture(scope="module")
def feats():
    return inception_like_features(5000, 2048, seed=0), inception_like_features(5000, 2048, seed=1, shift=0.1)


@pytest.fixture(scope="module")
def stats(feats):
    return [gm.FeatureStats.from_features(x) for x in feats]


def test_covariance_5k_2048(benchmark, feats):
    benchmark(gm.FeatureStats.from_features, feats[0])


def test_frechet_distance_2048(benchmark, stats):
    a, b = stats
    benchmark(gm.frechet_distance, a.mean, a.cov, b.mean, b.cov)


def test_prdc_5k_2048(benchmark, feats):
    benchmark.pedantic(gm.prdc, args=feats, kwargs={"k": 5}, rounds=3, iterations=1)


def test_knn_radii_5k_2048(benchmark, feats):
    benchmark.pedantic(gm.knn_radii, args=(feats[0], 5), rounds=3, iterations=1)
