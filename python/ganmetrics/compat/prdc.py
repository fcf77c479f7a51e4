"""The ``prdc`` package's ``compute_prdc`` (Naeem et al. 2020), exact and in linear memory.

The original builds full N x N distance matrices (about 1.6 GB at 10k samples, 30 GB at 50k);
this one streams. ``strict=True`` reproduces prdc's strict ``<`` inclusion everywhere (ties
included); the default is ganmetrics' ``<=`` (identical sets score 1). The two differ only where
a distance equals a k-NN radius exactly.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ganmetrics.metrics.knn import prdc as _prdc

__all__ = ["compute_prdc"]


def compute_prdc(real_features: Any, fake_features: Any, nearest_k: int, strict: bool = False) -> dict:
    """``{'precision', 'recall', 'density', 'coverage'}`` as numpy float64, prdc's signature and keys."""
    res = _prdc(real_features, fake_features, k=nearest_k, strict=strict)
    return {key: np.float64(res[key]) for key in ("precision", "recall", "density", "coverage")}
