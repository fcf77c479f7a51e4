"""FID's interval from its first-order expansion (the delta method): about the cost of one evaluation.

FID(mu_a, S_a, mu_b, S_b) = |mu_a - mu_b|^2 + tr S_a + tr S_b - 2 tr sqrt(S_a^1/2 S_b S_a^1/2) is a smooth function of the
two sets' means and covariances wherever the matrix under the root is nonsingular. Each sample x of set b then moves
the estimate by its influence (up to a constant)

    IF_b(x) = 2 (mu_b - mu_a).(x - mu_b) + |x - mu_b|^2 - (x - mu_b)^T L N^-1/2 L^T (x - mu_b),

with S_a = L L^T any factor of the other side's covariance and N = L^T S_b L (whose eigenvalues are those of
S_a^1/2 S_b S_a^1/2; d tr sqrt(N) = tr(N^-1/2 dN) / 2). So Var(FID) ~ Var(IF_b) / n_b, plus Var(IF_a) / n_a when set a
is a sample too: FID is symmetric in its sides and independent sets' contributions add. In N's eigenbasis
(N = U diag(lam) U^T, s = sqrt(lam), w = U^T L^T (x - mu_b)) the last term is sum_j w_j^2 / s_j: one pass over the
rows, streamed in blocks (memory O(block d + d^2)).

The small-sample bias is the second-order term: E|mean_b - mu_a|^2 exceeds |mu_b - mu_a|^2 by tr S_b / n_b, the unbiased
covariance leaves the trace terms unbiased, and the concave root pulls tr sqrt(N) down by
(1 / 4 n_b) sum_ij V_ij / (s_i s_j (s_i + s_j)) (the second divided difference of sqrt at the eigenvalues), where
V_ij = n_b Var(N_ij) in the eigenbasis = mean(w_i^2 w_j^2) - lam_i^2 [i = j]. So

    bias_b = tr S_b / n_b + (1 / 2 n_b) sum_ij V_ij / (s_i s_j (s_i + s_j)).

The interval is value -+ z se, z the normal quantile at the confidence, clipped at 0: an interval for the expected FID
at the given sample sizes, the quantity the half-sampling interval of :mod:`ganmetrics.metrics.bootstrap` covers;
``debiased`` = value - bias. Checked against Monte-Carlo truth in tests/test_delta.py (coverage within the binomial
band, se against the Monte-Carlo spread, bias against the Monte-Carlo bias, on Gaussian and rectified features, fixed
and resampled real sides, d from 4 to 64).

It needs N nonsingular at the precision the covariances carry (smallest eigenvalue above the rank tolerance of
:meth:`ganmetrics.metrics.frechet._Side.tolerances` times the largest; each side with more samples than the rank
of the features, no degenerate direction): otherwise :class:`DeltaUnavailable` says why, and callers asked for ``fid_method="auto"`` use half-sampling rounds.
Rounding: everything is float64 on data scaled by an exact power of two to unit size (no over- or underflow at
1e-150 or 1e150); the interval's own error is far below its statistical width.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from statistics import NormalDist
from typing import Callable, TypeVar

import numpy as np

from ganmetrics._arrays import Features
from ganmetrics._progress import steps
from ganmetrics.metrics.frechet import _Side
from ganmetrics.stats import FeatureStats

# Rows per block of the influence pass: about 4M float64 entries (32 MB) per block array.
_BLOCK_ENTRIES = 1 << 22

FID_METHODS = ("auto", "delta", "half-sampling")
T = TypeVar("T")


class DeltaUnavailable(ValueError):
    """The delta method does not apply to these sets (the message says why)."""


@dataclass(frozen=True)
class SideTerms:
    """One sampled side's share of FID's spread: the ``influence`` of each of its rows (centred, in units of
    ``scale``, an exact power of two, so that no square overflows), its standard error ``se`` = sqrt(Var(influence)
    / n) and its small-sample ``bias`` (both in FID's units)."""

    influence: np.ndarray
    scale: float
    se: float
    bias: float


def check_fid_method(fid_method: str) -> str:
    if fid_method not in FID_METHODS:
        raise ValueError(f"fid_method must be one of {', '.join(map(repr, FID_METHODS))}, got {fid_method!r}")
    return fid_method


def _factor(side: _Side, scale: float) -> np.ndarray:
    """L with scale * cov = L L^T: Cholesky when cov is clearly positive definite, else the eigenvectors on its
    numerical rank (:meth:`_Side.eig_factor`)."""
    cov = np.asarray(side.cov, np.float64) * scale
    top = float(np.max(np.diag(cov))) if cov.size else 0.0
    try:
        low = np.linalg.cholesky(cov)
        if np.min(np.diag(low)) ** 2 > side.tolerances()["rank_tol"] * top:
            return low
    except np.linalg.LinAlgError:
        pass
    return side.eig_factor(scale)


def by_delta(fid_method: str, make: Callable[[], T]) -> T | None:
    """``make()`` (a delta-method result) under ``fid_method``: None for "half-sampling", and for "auto" where the
    method does not apply (:class:`DeltaUnavailable`), so the caller takes the rounds; "delta" raises there."""
    if fid_method == "half-sampling":
        return None
    try:
        return make()
    except DeltaUnavailable:
        if fid_method == "delta":
            raise
        return None


def side_terms(fixed: FeatureStats, varying: FeatureStats, rows: Features, fixed_name: str = "real",
               varying_name: str = "fake", progress: bool | None = False) -> SideTerms:
    """The influence, variance share and bias of the sampled set ``rows`` (whose statistics are ``varying``) on the
    FID against ``fixed`` (see the module doc); ``progress``: a bar over the row blocks."""
    n = varying.n
    if rows.n != n:
        raise ValueError(f"{varying_name}: {rows.n} rows but statistics of {n}")
    if n is None or n < 3:
        raise DeltaUnavailable(f"{varying_name} has {n or 0} samples; the delta method needs at least 3")
    side_a, side_b = _Side.of(fixed, f"{fixed_name} covariance"), _Side.of(varying, f"{varying_name} covariance")
    mu_a, mu_b = np.asarray(side_a.mean, np.float64), np.asarray(side_b.mean, np.float64)
    diff = mu_b - mu_a
    total = float(np.trace(side_a.cov) + np.trace(side_b.cov) + diff @ diff)
    if not np.isfinite(total):
        raise ValueError(f"{fixed_name} and {varying_name}: their traces or means overflow float64")
    if total == 0.0:
        raise DeltaUnavailable(f"{fixed_name} and {varying_name} are one and the same repeated point")
    c = float(np.ldexp(1.0, -int(np.frexp(np.sqrt(total))[1])))  # an exact power of two: unit-sized data
    cov_b = np.asarray(side_b.cov, np.float64) * (c * c)
    low = _factor(side_a, c * c)
    rank = low.shape[1]
    if rank == 0:
        raise DeltaUnavailable(f"{fixed_name} has a zero covariance: FID's root term has no derivative there")
    if n - 1 < rank:
        raise DeltaUnavailable(f"{varying_name} has {n} samples for a rank-{rank} {fixed_name} covariance: the matrix "
                               "under FID's root is singular, where the delta method does not apply")
    m = low.T @ cov_b @ low
    lam, u = np.linalg.eigh((m + m.T) / 2.0)
    rank_tol = max(side_a.tolerances()["rank_tol"], side_b.tolerances()["rank_tol"])
    if lam[-1] <= 0.0 or lam[0] <= rank_tol * lam[-1]:
        raise DeltaUnavailable(f"the matrix under FID's root ({fixed_name} against {varying_name}) is singular to "
                               f"working precision (eigenvalues {max(lam[0], 0.0):.3g} to {lam[-1]:.3g}): a degenerate "
                               "direction, where the delta method does not apply")
    s = np.sqrt(lam)
    proj = low @ u  # x -> w = U^T L^T x
    inv_s = 1.0 / s
    shift = diff * (2.0 * c)
    influence = np.empty(n)
    fourth = np.zeros((rank, rank))
    step = max(1, _BLOCK_ENTRIES // max(rows.dim, rank))
    for a in steps(range(0, n, step), -(-n // step), f"FID influence of {varying_name}", unit="blocks",
                   progress=progress):
        z = (rows.rows(a, min(n, a + step)).astype(np.float64) - mu_b) * c
        w2 = np.square(z @ proj)
        influence[a:a + len(z)] = z @ shift + np.einsum("ij,ij->i", z, z) - w2 @ inv_s
        fourth += w2.T @ w2
    influence -= influence.mean()
    v = fourth / n
    v[np.diag_indices(rank)] -= lam * lam
    root_bias = float(np.sum(v / (s[:, None] * s[None, :] * (s[:, None] + s[None, :])))) / (2.0 * n)
    bias = float(np.trace(cov_b)) / n + root_bias
    back = 1.0 / (c * c)
    return SideTerms(influence, back, float(np.sqrt(influence @ influence / (n - 1) / n)) * back, bias * back)


def paired_se(a: SideTerms, b: SideTerms) -> float:
    """Standard error of the difference of two statistics that the same rows move (influences ``a`` and ``b``)."""
    common = max(a.scale, b.scale)
    d = a.influence * (a.scale / common) - b.influence * (b.scale / common)
    n = len(d)
    return float(np.sqrt(d @ d / (n - 1) / n)) * common


def normal_quantile(confidence: float) -> float:
    """z with P(|Z| <= z) = confidence for a standard normal Z."""
    return NormalDist().inv_cdf(0.5 + confidence / 2.0)


class GeneratorTerms:
    """One generated set's delta-method terms against a real set, each computed on first use and then kept, so that
    its interval and its comparisons with other generators share them: ``own`` (the generated rows' influence, the
    real side fixed) and ``on_real`` (the real rows' influence on this generator's FID; needs ``real_rows``)."""

    def __init__(self, real_stats: FeatureStats, real_rows: Features | None, stats: FeatureStats, rows: Features,
                 name: str):
        self.real_stats, self.real_rows, self.stats, self.rows, self.name = real_stats, real_rows, stats, rows, name

    @cached_property
    def own(self) -> SideTerms:
        return side_terms(self.real_stats, self.stats, self.rows, "real", self.name)

    @cached_property
    def on_real(self) -> SideTerms:
        if self.real_rows is None:
            raise ValueError("the real side's influence needs the real features")
        return side_terms(self.stats, self.real_stats, self.real_rows, self.name, "real")
