"""Fréchet distance (FID and its relatives for any encoder).

FD = |mu1 - mu2|^2 + tr S1 + tr S2 - 2 tr sqrt(S1^1/2 S2 S1^1/2)

is the squared 2-Wasserstein distance between Gaussians fitted to two feature sets (Heusel et al.
2017, "GANs trained by a two time-scale update rule converge to a local Nash equilibrium").
Range [0, inf); lower is better; 0 for identical statistics.

The trace term is computed in float64 from a pivoted Cholesky factor of S1 and the eigenvalues of
the symmetric matrix L^T S2 L (clamped at 0) -- no ``scipy.linalg.sqrtm``, no eps added to the
diagonal, never complex. A covariance that is clearly not PSD raises ValueError.
"""

from __future__ import annotations

import os
import warnings
from typing import Any, Iterable, Sequence

import numpy as np

from ganmetrics._arrays import is_path
from ganmetrics._native import _core
from ganmetrics.stats import FeatureStats, _square, _vector

# A negative FD larger in magnitude than this fraction of tr S1 + tr S2 + |dmu|^2 is not rounding.
_NEGATIVE_TOL = 1e-9


class SmallSampleWarning(UserWarning):
    """A metric was computed from fewer samples than it needs to be reliable."""


def _as_stats(x: Any, name: str, progress: bool = False) -> FeatureStats:
    if isinstance(x, FeatureStats):
        return x
    if is_path(x) and str(x).endswith(".npz"):
        if not os.path.exists(x):
            raise FileNotFoundError(f"{name}: no such file: {os.fspath(x)}")
        with np.load(x, allow_pickle=False) as z:
            if "mu" in z and "sigma" in z:
                return FeatureStats.from_mapping(z, name)
    return FeatureStats.from_features(x, progress=progress)


def _as_stats_named(x: Any, name: str) -> FeatureStats:
    try:
        return _as_stats(x, name)
    except ValueError as exc:
        msg = str(exc)
        raise ValueError(msg if msg.startswith(name) else f"{name}: {msg}") from None


def _warn_small(stats: FeatureStats, name: str) -> None:
    if stats.n is not None and stats.n <= stats.dim:
        warnings.warn(
            f"{name} has n={stats.n} samples for d={stats.dim} features: its covariance is singular and "
            "the Fréchet distance is strongly biased at this sample size (use n >> d, e.g. 50k for Inception)",
            SmallSampleWarning,
            stacklevel=3,
        )


def _combine(mu1: np.ndarray, tr1: float, mu2: np.ndarray, sigma2: np.ndarray, trace_sqrt: float) -> float:
    diff = mu1 - mu2
    mean_term = float(diff @ diff)
    tr2 = float(np.trace(sigma2))
    fd = mean_term + tr1 + tr2 - 2.0 * trace_sqrt
    if fd < 0.0:
        scale = mean_term + abs(tr1) + abs(tr2)
        if fd < -_NEGATIVE_TOL * max(scale, np.finfo(np.float64).tiny):
            raise ValueError(
                f"the Fréchet distance came out negative ({fd:.6g}); the covariances are not valid "
                "(positive semi-definite) covariance matrices"
            )
        fd = 0.0
    return fd


def _resolve_device(device: str | None, *inputs: Any) -> str:
    if device is None:
        from ganmetrics._cuda_arrays import is_device_array

        return "cuda" if any(is_device_array(x) for x in inputs) else "cpu"
    if device not in ("cpu", "cuda"):
        raise ValueError(f"device must be 'cpu', 'cuda' or None (follow the inputs), got {device!r}")
    return device


class _Reference:
    """A factored reference (mu1, S1) that many candidates can be compared against.

    On ``device="cuda"`` the factorization and the trace terms run in float64 on the GPU
    (cuSOLVER / cuBLAS), batched over the candidates given to :meth:`distances`.
    """

    def __init__(self, mu: np.ndarray, sigma: np.ndarray, name: str, device: str = "cpu"):
        self.mu = mu
        self.name = name
        self.device = device
        if device == "cuda":
            from ganmetrics._cuda_arrays import require_cuda

            require_cuda("device='cuda'")
            self.sigma = np.ascontiguousarray(sigma)
            self.trace = float(np.trace(sigma))
        else:
            self.factor = _core.psd_factor(sigma, name)
            self.trace = self.factor.trace

    def _check(self, mu2: np.ndarray, name2: str) -> None:
        if mu2.shape != self.mu.shape:
            raise ValueError(
                f"{name2} has {mu2.shape[0]} features, the reference has {self.mu.shape[0]}; "
                "statistics must come from the same feature extractor"
            )

    def distances(self, pairs: Sequence[tuple[np.ndarray, np.ndarray, str]]) -> list[float]:
        for mu2, _, name2 in pairs:
            self._check(mu2, name2)
        if self.device == "cuda":
            from ganmetrics._native import _cuda

            traces = _cuda.trace_sqrt_products(self.sigma, [np.ascontiguousarray(s) for _, s, _ in pairs], 0,
                                               self.name, [n for _, _, n in pairs])
            sqrt_terms = [t[0] for t in traces]
        else:
            sqrt_terms = [_core.trace_sqrt_product(self.factor, s, n)[0] for _, s, n in pairs]
        return [_combine(self.mu, self.trace, mu2, s2, t) for (mu2, s2, _), t in zip(pairs, sqrt_terms)]

    def distance(self, mu2: np.ndarray, sigma2: np.ndarray, name2: str) -> float:
        return self.distances([(mu2, sigma2, name2)])[0]


def frechet_distance(mu1: Any, sigma1: Any, mu2: Any, sigma2: Any, *, device: str | None = None) -> float:
    """Fréchet distance between N(mu1, sigma1) and N(mu2, sigma2), exact in float64.

    Returns a Python float >= 0. Raises ValueError for mismatched shapes, NaN/Inf, a non-symmetric
    matrix or one that is not positive semi-definite (naming which). ``device="cuda"`` computes the
    trace term on the GPU (float64 cuSOLVER); by default it runs where the inputs live.
    """
    device = _resolve_device(device, mu1, sigma1, mu2, sigma2)
    mu1, sigma1, mu2, sigma2 = (_host(a) for a in (mu1, sigma1, mu2, sigma2))
    m1 = _vector(mu1, "mu1")
    m2 = _vector(mu2, "mu2")
    if m1.shape != m2.shape:
        raise ValueError(f"mu1 has {m1.shape[0]} entries but mu2 has {m2.shape[0]}")
    s1 = _square(sigma1, "sigma1", m1.shape[0])
    s2 = _square(sigma2, "sigma2", m2.shape[0])
    return _Reference(m1, s1, "sigma1", device).distance(m2, s2, "sigma2")


def _host(a: Any) -> Any:
    """Small statistics arrays (mean, covariance) that live on a GPU are copied to the host."""
    if type(a).__module__.startswith("torch") and getattr(a, "is_cuda", False):
        return a.detach().cpu().numpy()
    if hasattr(a, "__cuda_array_interface__") and hasattr(a, "get"):  # CuPy
        return a.get()
    return a


def _check_extractors(a: FeatureStats, b: FeatureStats, name_a: str, name_b: str, force: bool) -> None:
    if force:
        return
    if a.feature_extractor and b.feature_extractor and a.feature_extractor != b.feature_extractor:
        raise ValueError(
            f"{name_a} comes from feature extractor {a.feature_extractor!r} but {name_b} from "
            f"{b.feature_extractor!r}; the distance between them is meaningless (pass force=True to compare anyway)"
        )
    if a.dim != b.dim:
        raise ValueError(f"{name_a} has {a.dim} features but {name_b} has {b.dim}")


def fid(real: Any, fake: Any, *, force: bool = False, device: str | None = None) -> float:
    """Fréchet Inception Distance (or FD for any encoder) between two feature sets.

    ``real`` and ``fake`` are each features (array, tensor, .npy/.npz path), a
    :class:`FeatureStats`, or a statistics .npz (pytorch-fid / clean-fid / TTUR / ganmetrics).
    Lower is better; 0 means identical first and second moments. Warns (SmallSampleWarning) when a
    side has n <= d samples, where FID is strongly biased. Features on a CUDA device (torch tensors,
    ``__cuda_array_interface__``) are reduced on the GPU, and the distance is computed there too;
    ``device`` ("cpu" / "cuda") overrides where the distance runs.
    """
    device = _resolve_device(device, real, fake)
    a = _as_stats_named(real, "real")
    b = _as_stats_named(fake, "fake")
    _check_extractors(a, b, "real", "fake", force)
    _warn_small(a, "real")
    _warn_small(b, "fake")
    return _Reference(a.mean, a.cov, "real covariance", device).distance(b.mean, b.cov, "fake covariance")


def fid_many(reference: Any, candidates: Iterable[Any] | Sequence[Any], *, force: bool = False,
             device: str | None = None) -> list[float]:
    """FID of every candidate against one reference, factoring the reference covariance once.

    For benchmark suites comparing many checkpoints with one real set. Each candidate may be
    features, a FeatureStats or a statistics file. Returns a list of floats in the candidates' order.
    On ``device="cuda"`` all trace terms run as one batch on the GPU.
    """
    candidates = list(candidates)
    device = _resolve_device(device, reference, *candidates)
    ref = _as_stats_named(reference, "reference")
    _warn_small(ref, "reference")
    factored = _Reference(ref.mean, ref.cov, "reference covariance", device)
    pairs = []
    for i, cand in enumerate(candidates):
        name = f"candidates[{i}]"
        st = _as_stats_named(cand, name)
        _check_extractors(ref, st, "reference", name, force)
        _warn_small(st, name)
        pairs.append((st.mean, st.cov, f"{name} covariance"))
    return factored.distances(pairs) if pairs else []


class FIDInfinityResult:
    """FD-infinity: the intercept of a linear fit of FID against 1/N.

    ``value`` (the extrapolated FID at infinitely many fake samples), ``slope`` (the 1/N
    coefficient: the bias at N samples is slope / N), ``sizes`` and ``fids`` (the points fitted),
    ``r2`` (coefficient of determination of the fit: close to 1 when FID is linear in 1/N).
    """

    def __init__(self, sizes: np.ndarray, fids: np.ndarray):
        self.sizes = sizes
        self.fids = fids
        inv = 1.0 / sizes
        a = np.stack([np.ones_like(inv), inv], axis=1)
        (self.value, self.slope), *_ = np.linalg.lstsq(a, fids, rcond=None)
        self.value, self.slope = float(self.value), float(self.slope)
        resid = fids - a @ np.array([self.value, self.slope])
        ss = float(((fids - fids.mean()) ** 2).sum())
        self.r2 = 1.0 - float((resid**2).sum()) / ss if ss > 0 else 1.0

    def __float__(self) -> float:
        return self.value

    def __repr__(self) -> str:
        return f"FIDInfinityResult(value={self.value:.6g}, slope={self.slope:.6g}, r2={self.r2:.4f}, points={len(self.sizes)})"


def fid_infinity(
    real: Any, fake: Any, *, sizes: Sequence[int] | None = None, num_points: int = 15, min_size: int | None = None,
    seed: int = 0,
) -> FIDInfinityResult:
    """FD-infinity (Chong & Forsyth 2020, "Effectively unbiased FID and Inception Score and where to find them").

    FID is biased upwards by a term proportional to 1/N. This computes FID between the full real
    set and the first N samples of one seeded shuffle of the fake set, for ``num_points`` (>= 15 by
    default) sizes N evenly spaced from ``min_size`` (default: a tenth of the fake set, the paper's
    5k of 50k) to all fake samples, fits FID = value + slope / N, and returns the intercept.
    The fake statistics of all sizes come from one pass over the fake set and the real covariance is
    factored once. ``real`` may be features, a FeatureStats or a statistics file; ``fake`` must be
    features. Lower is better.
    """
    ref = _as_stats_named(real, "real")
    if ref.n is not None and ref.n <= ref.dim:
        _warn_small(ref, "real")
    from ganmetrics._arrays import as_features

    ff = as_features(fake, "fake", min_rows=2)
    if ff.dim != ref.dim:
        raise ValueError(f"real has {ref.dim} features but fake has {ff.dim}")
    if sizes is None:
        lo = max(2, ff.n // 10) if min_size is None else int(min_size)
        if not 2 <= lo < ff.n:
            raise ValueError(f"min_size must be in [2, {ff.n}), got {lo}")
        sizes = np.unique(np.linspace(lo, ff.n, int(num_points)).round().astype(int))
    sizes = np.unique(np.asarray(sizes, dtype=np.int64))
    if len(sizes) < 2:
        raise ValueError("fid_infinity needs at least 2 distinct sample sizes")
    if sizes[0] < 2 or sizes[-1] > ff.n:
        raise ValueError(f"sizes must lie in [2, {ff.n}], got [{sizes[0]}, {sizes[-1]}]")
    # One pass over the fake set; each prefix is compared with the once-factored real covariance as it forms.
    factored = _Reference(ref.mean, ref.cov, "real covariance")
    fids = [factored.distance(acc.mean, acc.cov, "fake covariance")
            for acc in FeatureStats.iter_nested_prefixes(ff, sizes, seed=seed)]
    return FIDInfinityResult(sizes.astype(np.float64), np.array(fids))
