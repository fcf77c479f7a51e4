"""Vendi score (Friedman & Dieng 2023, "The Vendi Score: A Diversity Evaluation Metric for Machine Learning")."""

from __future__ import annotations

from typing import Any

import numpy as np

from ganmetrics._arrays import as_features
from ganmetrics._native import _core
from ganmetrics.engines.base import safe_row_norms
from ganmetrics.stats import FeatureStats
from ganmetrics._image_inputs import accepts_images


@accepts_images("x")
def vendi(x: Any, q: float = 1.0) -> float:
    """Vendi score with the cosine-similarity kernel: the effective number of distinct samples.

    exp of the (order-q Rényi) entropy of the eigenvalues of K / n, K = X^ X^T with L2-normalized
    rows. The non-zero eigenvalues of X^ X^T / n are those of the d x d matrix X^T X^ / n, so the cost is
    one streaming second-moment pass and one d x d eigendecomposition, never n x n. Range [1, n];
    higher means more diverse. ``q`` is the order: 1 (default) the Shannon entropy, 0 the number of
    non-zero eigenvalues (the rank), ``inf`` 1 / largest eigenvalue.
    """
    f = as_features(x, "x", min_rows=1)
    q = float(q)
    if not q >= 0:  # NaN fails too
        raise ValueError(f"q must be >= 0 (or inf), got {q}")
    stats = FeatureStats(f.dim)
    rows = max(1, (32 << 20) // (8 * f.dim))
    for a, b in f.chunks(rows):
        block = f.rows(a, b).astype(np.float64)
        norms = safe_row_norms(block)
        zero = np.flatnonzero(norms == 0)
        if zero.size:
            raise ValueError(f"x has an all-zero row ({a + zero[0]}); cosine similarity is undefined for it")
        stats.update(block / norms[:, None])
    n = stats.n
    second = (stats.cov * (n - 1) if n > 1 else np.zeros((f.dim, f.dim))) + n * np.outer(stats.mean, stats.mean)
    lam = _core.symmetric_eigenvalues(np.ascontiguousarray(second / n))
    # eigenvalues within float64 rounding of 0 (2 d u of the largest, LAPACK's rank tolerance) are 0: at
    # q = 0 the score counts the non-zero eigenvalues, and rounding noise must not count
    lam = lam[lam > 2.0 * f.dim * 2.0**-53 * max(lam.max(), 0.0)]
    lam = lam / lam.sum()
    if q == 1.0:
        entropy = -float((lam * np.log(lam)).sum())
    elif np.isinf(q):
        entropy = -float(np.log(lam.max()))
    else:
        entropy = float(np.log((lam**q).sum()) / (1.0 - q))
    return float(np.exp(entropy))
