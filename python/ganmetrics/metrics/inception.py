"""Inception Score (Salimans et al. 2016, "Improved techniques for training GANs")."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ganmetrics._arrays import as_features
from ganmetrics._image_inputs import accepts_images


@dataclass(frozen=True)
class ScoreResult:
    """Mean and standard deviation (ddof = 0) of a score over splits, and the per-split ``values``."""

    mean: float
    std: float
    values: np.ndarray = field(repr=False)

    def __float__(self) -> float:
        return self.mean


def _log_probs(x: np.ndarray) -> np.ndarray:
    """Rows that are probability vectors are used as they are; anything else is treated as logits."""
    is_probs = (x >= 0).all() and (x <= 1).all() and np.allclose(x.sum(1), 1.0, rtol=0, atol=1e-4)
    if is_probs:
        with np.errstate(divide="ignore"):
            return np.log(x / x.sum(1, keepdims=True))
    shifted = x - x.max(1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(1, keepdims=True))


@accepts_images("probs_or_logits", want="logits")
def inception_score(probs_or_logits: Any, splits: int = 10, seed: int | None = 0) -> ScoreResult:
    """Inception Score exp(E_x KL(p(y|x) || p(y))), averaged over ``splits`` disjoint splits.

    Input is an (n, classes) array of class probabilities (rows summing to 1) or of logits (anything
    else; a float64 log-softmax is applied). 0 log 0 = 0. Samples are shuffled with ``seed`` before
    splitting (``seed=None`` keeps the order, as the original implementation does). Range
    [1, classes]; higher is better.
    """
    f = as_features(probs_or_logits, "probs_or_logits")
    if isinstance(splits, bool) or not isinstance(splits, (int, np.integer)) or splits < 1:
        raise ValueError(f"splits must be a positive integer, got {splits!r}")
    if f.n < splits:
        raise ValueError(f"probs_or_logits has {f.n} samples, fewer than splits = {splits}")
    logp = _log_probs(f.rows(0, f.n).astype(np.float64))
    if seed is not None:
        logp = logp[np.random.default_rng(seed).permutation(f.n)]
    bounds = np.cumsum([0] + [len(p) for p in np.array_split(np.arange(f.n), splits)])
    return split_scores(logp, bounds)


def split_scores(logp: np.ndarray, bounds: np.ndarray) -> ScoreResult:
    """Inception Score of each slice logp[bounds[i]:bounds[i+1]] of float64 log-probabilities."""
    values = []
    for a, b in zip(bounds[:-1], bounds[1:]):
        part = logp[a:b]
        p = np.exp(part)
        marginal = p.mean(0)
        with np.errstate(divide="ignore"):
            log_marginal = np.log(marginal)
        # KL(p || marginal) with 0 log 0 = 0 (p = 0 terms dropped)
        safe_logp = np.where(p > 0, part, 0.0)
        safe_logm = np.where(marginal > 0, log_marginal, 0.0)  # marginal = 0 only where every p = 0
        terms = p * (safe_logp - safe_logm)
        values.append(np.exp(terms.sum(1).mean()))
    values = np.asarray(values)
    return ScoreResult(float(values.mean()), float(values.std()), values)
