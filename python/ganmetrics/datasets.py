"""Synthetic feature sets that look like real encoder features, for examples, tests and benchmarks.

Inception pool features are non-negative (post-ReLU averages), clustered by content, and have a
decaying covariance spectrum; :func:`inception_like_features` draws such vectors from a seeded
mixture so that every run sees the same data without downloading anything.
"""

from __future__ import annotations

import numpy as np


def inception_like_features(
    n: int,
    dim: int = 2048,
    *,
    seed: int = 0,
    clusters: int = 10,
    shift: float = 0.0,
    mode_drop: float = 0.0,
    spectrum_decay: float = 0.8,
    dtype=np.float32,
) -> np.ndarray:
    """``n`` x ``dim`` non-negative features from a mixture of ``clusters`` Gaussian blobs.

    The blobs' centres and the mixing matrix depend only on ``dim`` and ``clusters`` (seed 12345),
    so sets drawn with different ``seed`` share one distribution. ``shift`` moves every sample along
    a fixed direction (a worse generator), ``mode_drop`` is the fraction of clusters never sampled.
    """
    if n < 1 or dim < 1 or clusters < 1:
        raise ValueError("n, dim and clusters must be >= 1")
    if not 0.0 <= mode_drop < 1.0:
        raise ValueError(f"mode_drop must be in [0, 1), got {mode_drop}")
    world = np.random.default_rng(12345)
    scales = (np.arange(1, dim + 1, dtype=np.float64) ** -spectrum_decay).astype(np.float32)
    mixing = (world.standard_normal((dim, dim), dtype=np.float32) / np.sqrt(dim)) * scales[:, None]
    centres = world.standard_normal((clusters, dim), dtype=np.float32) * 0.6
    direction = np.abs(world.standard_normal(dim, dtype=np.float32))
    direction /= np.linalg.norm(direction)
    kept = max(1, int(round(clusters * (1.0 - mode_drop))))
    rng = np.random.default_rng(seed)
    out = np.empty((n, dim), dtype=dtype)
    for a in range(0, n, 4096):
        b = min(n, a + 4096)
        labels = rng.integers(0, kept, size=b - a)
        z = rng.standard_normal((b - a, dim), dtype=np.float32)
        block = z @ mixing * 4.0 + centres[labels] + 0.5
        block += shift * np.sqrt(dim) * direction
        np.maximum(block, 0.0, out=block)
        out[a:b] = block
    return out
