"""clean-fid's feature-level functions (``cleanfid.fid``) with its semantics, computed exactly."""

from __future__ import annotations

from typing import Any

import numpy as np

from ganmetrics._arrays import as_features
from ganmetrics._native import _core
from ganmetrics.metrics.frechet import frechet_distance as _frechet_distance
from ganmetrics.metrics.kernel import POLYNOMIAL
from ganmetrics.metrics.knn import _check_same_dim

__all__ = ["frechet_distance", "kernel_distance"]


def frechet_distance(mu1: Any, sigma1: Any, mu2: Any, sigma2: Any, eps: float = 1e-6) -> np.float64:
    """clean-fid's ``frechet_distance`` (a numpy float64, as clean-fid returns). ``eps`` is accepted and
    unused: the exact computation needs no diagonal offset (clean-fid adds ``eps * I`` when ``sqrtm`` fails)."""
    mu1, mu2 = np.atleast_1d(mu1), np.atleast_1d(mu2)
    return np.float64(_frechet_distance(mu1, np.atleast_2d(sigma1), mu2, np.atleast_2d(sigma2)))


def kernel_distance(feats1: Any, feats2: Any, num_subsets: int = 100, max_subset_size: int = 1000) -> float:
    """clean-fid's ``kernel_distance`` (KID): the mean over ``num_subsets`` of the unbiased MMD^2 with
    the cubic polynomial kernel, on subsets of m = min(len(feats1), len(feats2), max_subset_size)
    samples drawn without replacement from numpy's global random state (feats2 first, as clean-fid
    draws them: seed it with ``np.random.seed`` for the same subsets). Kernel sums in float64."""
    f1, f2 = as_features(feats1, "feats1", min_rows=2), as_features(feats2, "feats2", min_rows=2)
    _check_same_dim(f1, f2)
    if num_subsets < 1:
        raise ValueError(f"num_subsets must be >= 1, got {num_subsets}")
    m = min(f1.n, f2.n, int(max_subset_size))
    if m < 2:
        raise ValueError(f"subsets need at least 2 samples, got max_subset_size={max_subset_size}")
    xi, yi = [], []
    for _ in range(num_subsets):
        xi.append(np.random.choice(f2.n, m, replace=False))
        yi.append(np.random.choice(f1.n, m, replace=False))
    values = _core.mmd_subsets(f2.array, f2.code, f1.array, f1.code, np.stack(xi), np.stack(yi), POLYNOMIAL,
                               1.0 / f1.dim, 1.0, 3)
    return float(values.mean())
