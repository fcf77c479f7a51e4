"""pytorch-fid 0.3.0 signatures (``pytorch_fid.fid_score``), computed exactly.

``calculate_frechet_distance`` returns the same numpy float64 as pytorch-fid on well-conditioned
inputs (to ~1e-9 relative), and a finite exact value where pytorch-fid's ``scipy.linalg.sqrtm``
fails (singular covariances, n < d), goes complex, or returns NaN.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from ganmetrics.images import is_image_input
from ganmetrics.metrics.frechet import fid, frechet_distance
from ganmetrics.stats import FeatureStats

__all__ = ["calculate_frechet_distance", "statistics_from_activations", "calculate_fid_given_activations",
           "calculate_fid_given_paths"]


def calculate_frechet_distance(mu1: Any, sigma1: Any, mu2: Any, sigma2: Any, eps: float = 1e-6) -> np.float64:
    """Fréchet distance between N(mu1, sigma1) and N(mu2, sigma2), pytorch-fid's signature.

    ``eps`` is accepted for compatibility and not used: pytorch-fid adds ``eps * I`` to both
    covariances when ``sqrtm`` of their product is singular, which changes the answer; the exact
    method here (pivoted Cholesky + symmetric eigenvalues in float64) needs no offset, so the
    result is the same whatever ``eps`` is.
    """
    mu1, mu2 = np.atleast_1d(mu1), np.atleast_1d(mu2)
    sigma1, sigma2 = np.atleast_2d(sigma1), np.atleast_2d(sigma2)
    return np.float64(frechet_distance(mu1, sigma1, mu2, sigma2))


def statistics_from_activations(act: Any) -> tuple[np.ndarray, np.ndarray]:
    """(mu, sigma) of an activation matrix (n x d), what pytorch-fid's ``calculate_activation_statistics``
    computes from its Inception activations: ``np.mean(act, axis=0)``, ``np.cov(act, rowvar=False)``.

    Not pytorch-fid's name: that function takes image files and a model; this one takes the activations
    (array, tensor or .npy path), computed in one streaming pass with float64 products.
    """
    stats = FeatureStats.from_features(act)
    return stats.mean, stats.cov


def calculate_fid_given_activations(act1: Any, act2: Any) -> np.float64:
    """FID between two activation matrices (the feature-level part of ``calculate_fid_given_paths``;
    a ganmetrics addition, pytorch-fid has no such function)."""
    mu1, s1 = statistics_from_activations(act1)
    mu2, s2 = statistics_from_activations(act2)
    return calculate_frechet_distance(mu1, s1, mu2, s2)


def calculate_fid_given_paths(paths: Any, batch_size: int, device: Any, dims: int, num_workers: int = 1) -> np.float64:
    """pytorch-fid's ``calculate_fid_given_paths``: FID between two image folders (the top level's bmp, jpg,
    jpeg, pgm, png, ppm, tif, tiff, webp files, as pytorch-fid lists them; here also with upper-case
    extensions) or statistics .npz files, through
    the FID Inception with pytorch-fid's preprocessing (``resize="legacy_pytorch"``). The weights are looked
    up where pytorch-fid keeps them (torch hub's checkpoint folder); features are cached like any ganmetrics
    extraction. ``dims`` must be 2048 (pool3, the FID layer)."""
    from ganmetrics.extraction import run_input

    if len(paths) != 2:
        raise ValueError(f"paths must name two folders or statistics files, got {len(paths)}")
    if int(dims) != 2048:
        raise ValueError(f"dims={dims}: only pool3 (2048) is provided; the other blocks are not FID features")
    ext = "inception-v3"
    sides = []
    for i, path in enumerate(paths):
        if not os.path.exists(path):
            raise RuntimeError(f"Invalid path: {path}")  # pytorch-fid's own error
        if is_image_input(path):
            res, ext = run_input(path, f"paths[{i}]", ext, resize="legacy_pytorch",
                                 device=str(device), batch_size=int(batch_size), workers=int(num_workers),
                                 keep_features=False)
            sides.append(res.stats)
        else:
            sides.append(path)
    return np.float64(fid(sides[0], sides[1]))
