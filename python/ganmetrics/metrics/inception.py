"""Inception Score (Salimans et al. 2016, "Improved techniques for training GANs")."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ganmetrics._arrays import BF16, F16, as_features
from ganmetrics._image_inputs import accepts_images


@dataclass(frozen=True)
class ScoreResult:
    """Mean and standard deviation (ddof = 0) of a score over splits, and the per-split ``values``."""

    mean: float
    std: float
    values: np.ndarray = field(repr=False)

    def __float__(self) -> float:
        return self.mean


KINDS = ("auto", "probabilities", "logits")


def _row_sum_tolerance(code: int) -> float:
    """How far from 1 a row of stored probabilities may sum: 16 unit roundoffs of the stored dtype (each value
    carries a relative rounding of one; a softmax computed in that dtype a few), at least 1e-4."""
    u = {F16: 2.0**-11, BF16: 2.0**-8}.get(code, 2.0**-24)
    return max(1e-4, 16.0 * u)


def _log_probs(x: np.ndarray, kind: str, code: int) -> np.ndarray:
    """Float64 log-probabilities of rows given as probabilities or logits (``kind``; "auto" decides: rows in
    [0, 1] summing to 1 within the dtype's tolerance are probabilities, rows with a value outside [0, 1] are
    logits, and rows in [0, 1] that do not sum to 1 are neither: an error asking for ``kind``)."""
    tol = _row_sum_tolerance(code)
    in_unit = bool((x >= 0).all() and (x <= 1).all())
    sums = x.sum(1)
    worst = float(np.abs(sums - 1.0).max())
    if kind == "auto":
        if in_unit and worst > tol:
            raise ValueError(f"probs_or_logits: every value lies in [0, 1] like probabilities, but rows sum to "
                             f"{float(sums.min()):.6g}..{float(sums.max()):.6g}, not 1 within {tol:.3g}; normalise the "
                             "rows, or pass kind='logits' if they are logits")
        kind = "probabilities" if in_unit else "logits"
    if kind == "probabilities":
        if not (x >= 0).all():
            raise ValueError("probs_or_logits: kind='probabilities' but some values are negative")
        if worst > tol:
            raise ValueError(f"probs_or_logits: kind='probabilities' but rows sum to {float(sums.min()):.6g}.."
                             f"{float(sums.max()):.6g}, not 1 within {tol:.3g}")
        with np.errstate(divide="ignore"):
            return np.log(x / sums[:, None])
    shifted = x - x.max(1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(1, keepdims=True))


@accepts_images("probs_or_logits", want="logits")
def inception_score(probs_or_logits: Any, splits: int = 10, seed: int | None = 0, *, kind: str = "auto") -> ScoreResult:
    """Inception Score exp(E_x KL(p(y|x) || p(y))), averaged over ``splits`` disjoint splits.

    Input is an (n, classes) array of class probabilities or of logits (a float64 log-softmax is applied).
    ``kind``: ``"probabilities"``, ``"logits"``, or ``"auto"`` (default): rows in [0, 1] that sum to 1
    within the rounding of their dtype (16 unit roundoffs: 0.0078 for float16, at least 1e-4) are
    probabilities, rows with a value outside [0, 1] are logits, and anything else is refused. 0 log 0 = 0.
    Samples are shuffled with ``seed`` before splitting (``seed=None`` keeps the order, as the original
    implementation does). Range [1, classes]; higher is better.
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    f = as_features(probs_or_logits, "probs_or_logits")
    if isinstance(splits, bool) or not isinstance(splits, (int, np.integer)) or splits < 1:
        raise ValueError(f"splits must be a positive integer, got {splits!r}")
    if f.n < splits:
        raise ValueError(f"probs_or_logits has {f.n} samples, fewer than splits = {splits}")
    logp = _log_probs(f.rows(0, f.n).astype(np.float64), kind, f.code)
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
