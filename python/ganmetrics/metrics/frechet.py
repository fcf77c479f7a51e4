"""Fréchet distance (FID and its relatives for any encoder).

FD = |mu1 - mu2|^2 + tr S1 + tr S2 - 2 tr sqrt(S1^1/2 S2 S1^1/2)

is the squared 2-Wasserstein distance between Gaussians fitted to two feature sets (Heusel et al.
2017, "GANs trained by a two time-scale update rule converge to a local Nash equilibrium").
Range [0, inf); lower is better; 0 for identical statistics.

The trace term is computed in float64 as the nuclear norm ||A1^T A2||_* of factors S = A A^T of the
two covariances (Cholesky, pivoted Cholesky at the numerical rank, or an eigendecomposition) -- no
``scipy.linalg.sqrtm``, no eps added to the diagonal, never complex. What counts as rounding follows
the precision each covariance carries; a covariance that is clearly not PSD raises ValueError.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from typing import Any, Iterable, Sequence

import numpy as np

from ganmetrics import engines
from ganmetrics._cuda_arrays import UNVERIFIED_FLAG, require_cuda
from ganmetrics._image_inputs import accepts_images
from ganmetrics._native import _core, _cuda
from ganmetrics._progress import steps
from ganmetrics.stats import (F64_UNIT_ROUNDOFF, FeatureStats, _square, _vector, nested_prefix_stats,
                              stats_of, unit_roundoff_of)

# A negative FD larger in magnitude than this fraction of tr S1 + tr S2 + |dmu|^2 is not rounding.
_NEGATIVE_TOL = 1e-9


class SmallSampleWarning(UserWarning):
    """A metric was computed from fewer samples than it needs to be reliable."""


def warn_small(stats: FeatureStats, name: str) -> None:
    if stats.n is not None and 2 <= stats.n <= stats.dim:
        warnings.warn(
            f"{name} has n={stats.n} samples for d={stats.dim} features: its covariance is singular and "
            "the Fréchet distance is strongly biased at this sample size (use n >> d, e.g. 50k for Inception)",
            SmallSampleWarning,
            stacklevel=3,
        )


def _combine(mu1: np.ndarray, tr1: float, mu2: np.ndarray, tr2: float, trace_sqrt: float, rel_tol: float) -> float:
    diff = mu1 - mu2
    mean_term = float(diff @ diff)
    fd = mean_term + tr1 + tr2 - 2.0 * trace_sqrt
    if fd < 0.0:
        scale = mean_term + abs(tr1) + abs(tr2)
        if fd < -rel_tol * max(scale, np.finfo(np.float64).tiny):
            raise ValueError(
                f"the Fréchet distance came out negative ({fd:.6g}); the covariances are not valid "
                "(positive semi-definite) covariance matrices"
            )
        fd = 0.0
    return fd


def _placement(device: str | None, engine: str, *inputs: Any) -> tuple[str, str]:
    """Where statistics and the distance run: (engine name, torch device). ``device=None`` follows the inputs
    (a tensor on a device: the torch engine there, or the custom CUDA kernels with
    GANMETRICS_ENABLE_UNVERIFIED_CUDA=1); ``device="cuda"`` runs the distance on the GPU with host inputs too."""
    if device not in (None, "cpu", "cuda"):
        raise ValueError(f"device must be 'cpu', 'cuda' or None (follow the inputs), got {device!r}")
    placed = [x for x in inputs if engines.on_a_device(x)]
    if device is None:
        if not placed:
            return engines.engine_name(engine), "cpu"
        return engines.engine_name(engine, *placed), str(getattr(placed[0], "device", "cuda"))
    if device == "cpu":
        if engine == "cuda":
            raise ValueError("engine='cuda' runs on the GPU; device='cpu' contradicts it")
        return ("torch" if engine == "torch" else "host"), "cpu"
    if engine == "host":
        raise ValueError("engine='host' runs on the CPU; device='cuda' contradicts it")
    flagged = os.environ.get(UNVERIFIED_FLAG, "") == "1"
    return ("cuda" if engine == "cuda" or (engine == "auto" and flagged) else "torch"), "cuda"


@dataclass(frozen=True)
class _Side:
    """One side of a Fréchet distance: mean, covariance, the rounding the covariance carries (the unit
    roundoff of the precision it was computed or stored in) and, where known, its sample count."""

    mean: np.ndarray
    cov: np.ndarray
    name: str
    unit_roundoff: float = F64_UNIT_ROUNDOFF
    n: int | None = None

    @classmethod
    def of(cls, stats: FeatureStats, name: str) -> "_Side":
        if stats._sigma is None and (stats.n is None or stats.n < 2):
            side = name.replace(" covariance", "")
            raise ValueError(f"{side} has {stats.n or 0} sample(s); its covariance (and so the Fréchet distance) "
                             "needs at least 2")
        return cls(stats.mean, stats.cov, name, stats.cov_unit_roundoff, stats.n)

    def tolerances(self) -> dict[str, float | int]:
        """How far from positive semi-definite rounding can push this covariance.

        float64 matrices: LAPACK's rank tolerance d * 2u on pivots, and an eigenvalue below
        -1e-8 * largest is not rounding. Matrices carried in lower precision (float32 from
        ``torch.cov``, float16 files) have entries rounded at u, which moves their eigenvalues by about
        u * largest (measured: 0.3 u for a float32 ``torch.cov`` of 1000 x 2048 features, whose true
        spectrum ends near 30 u): eigenvalues below 8 u * largest are taken as noise, and only one below
        -max(1e-8, 64 sqrt(d) u) * largest (-1.7e-4 for float32 at d = 2048) is an error. A
        covariance of n samples has rank <= n - 1.
        """
        d = self.cov.shape[0]
        u = self.unit_roundoff
        rank_tol = 2.0 * d * u if u <= F64_UNIT_ROUNDOFF else 8.0 * u
        psd_tol = min(0.5, max(1e-8, 64.0 * np.sqrt(d) * u))
        max_rank = -1 if self.n is None else max(0, self.n - 1)
        return {"rank_tol": rank_tol, "psd_tol": psd_tol, "max_rank": max_rank}

    def eig_factor(self, scale: float = 1.0) -> np.ndarray:
        """L with scale * cov = L L^T on its numerical rank, from a float64 eigendecomposition on the host (an
        error for an eigenvalue too negative to be rounding)."""
        tol = self.tolerances()
        w, v = np.linalg.eigh(np.asarray(self.cov, np.float64) * scale)
        top = max(float(w[-1]), 0.0)
        if w[0] < -tol["psd_tol"] * max(top, np.finfo(np.float64).tiny):
            raise ValueError(f"{self.name} is not positive semi-definite (eigenvalue {w[0]:.3g} against a largest of "
                             f"{top:.3g})")
        keep = w > tol["rank_tol"] * top
        return v[:, keep] * np.sqrt(w[keep])

    def factor(self, scale: float = 1.0, torch_device: str | None = None) -> Any:
        """Factor of scale * cov (scale: an exact power of two): LAPACK's on the host, or a float64 tensor on
        ``torch_device`` (the torch engine)."""
        cov = self.cov if scale == 1.0 else self.cov * scale
        if torch_device is not None:
            from ganmetrics.engines import torch_engine  # torch: an optional heavy dependency

            return torch_engine.psd_factor(cov, self.name, torch_device, **self.tolerances())
        return _core.psd_factor(cov, self.name, **self.tolerances())


def _finite_trace(side: _Side) -> float:
    tr = float(np.trace(side.cov))
    if not np.isfinite(tr) or not np.isfinite(float(side.mean @ side.mean)):
        raise ValueError(f"{side.name}: its trace or mean overflows float64 (entries near 1e300); divide the features "
                         "by a power of two c = 2^k and the statistics by c and c^2 (the distance scales by c^2)")
    return tr


class _Reference:
    """A factored reference side that many candidates can be compared against.

    ``engine``: "host" (LAPACK), "torch" (torch.linalg in float64 on ``device``: eigendecomposition and
    singular values, the host's tolerances and errors), or "cuda" (the custom kernels: cuSOLVER / cuBLAS,
    batched over the candidates given to :meth:`distances`).
    """

    def __init__(self, ref: _Side, engine: str = "host", device: str = "cpu"):
        self.ref = ref
        self.engine = engine
        self.torch_device = device if engine == "torch" else None
        self.trace = _finite_trace(ref)
        # tr sqrt(S1^1/2 S2 S1^1/2) scales linearly when both covariances are scaled by s: far outside the
        # usual magnitudes, factor 2^-k times the covariances (exact) so that no product over- or underflows
        self.scale = 1.0
        if self.trace > 1e100 or 0.0 < self.trace < 1e-100:
            self.scale = float(np.ldexp(1.0, -int(np.frexp(self.trace)[1])))
        if engine == "cuda":
            require_cuda("device='cuda'")
        else:
            self.factor = ref.factor(self.scale, self.torch_device)

    def _check(self, other: _Side) -> None:
        if other.mean.shape != self.ref.mean.shape:
            raise ValueError(
                f"{other.name} has {other.mean.shape[0]} features, the reference has {self.ref.mean.shape[0]}; "
                "statistics must come from the same feature extractor"
            )

    def distances(self, others: Sequence[_Side]) -> list[float]:
        for other in others:
            self._check(other)
        if self.engine == "cuda":
            traces = _cuda.trace_sqrt_products(np.ascontiguousarray(self.ref.cov),
                                               [np.ascontiguousarray(o.cov) for o in others], 0,
                                               self.ref.name, [o.name for o in others])
            sqrt_terms = [t[0] for t in traces]
        elif self.torch_device is not None:
            from ganmetrics.engines import torch_engine  # torch: an optional heavy dependency

            sqrt_terms = [torch_engine.trace_sqrt_product(self.factor, o.factor(self.scale, self.torch_device))
                          / self.scale for o in others]
        else:
            sqrt_terms = [_core.trace_sqrt_product(self.factor, o.factor(self.scale))[0] / self.scale for o in others]
        out = []
        for other, t in zip(others, sqrt_terms):
            rel_tol = max(_NEGATIVE_TOL, other.tolerances()["psd_tol"], self.ref.tolerances()["psd_tol"])
            out.append(_combine(self.ref.mean, self.trace, other.mean, _finite_trace(other), t, rel_tol))
        return out

    def distance(self, other: _Side) -> float:
        return self.distances([other])[0]


def stats_distance(a: FeatureStats, b: FeatureStats, name_a: str = "real covariance",
                   name_b: str = "fake covariance") -> float:
    """Fréchet distance between two FeatureStats (no extractor or sample-size checks)."""
    return _Reference(_Side.of(a, name_a)).distance(_Side.of(b, name_b))


def frechet_distance(mu1: Any, sigma1: Any, mu2: Any, sigma2: Any, *, device: str | None = None,
                     engine: str = "auto") -> float:
    """Fréchet distance between N(mu1, sigma1) and N(mu2, sigma2), exact in float64.

    Returns a Python float >= 0. Raises ValueError for mismatched shapes, NaN/Inf, a non-symmetric
    matrix or one that is not positive semi-definite (naming which). ``device="cuda"`` computes the
    trace term on the GPU (float64 torch.linalg; the custom cuSOLVER kernels with engine="cuda"); by default it
    runs where the inputs live. ``engine``: "auto", "host", "torch" (e.g. on the CPU), "cuda".
    """
    name, device = _placement(device, engine, mu1, sigma1, mu2, sigma2)
    mu1, sigma1, mu2, sigma2 = (_host(a) for a in (mu1, sigma1, mu2, sigma2))
    m1 = _vector(mu1, "mu1")
    m2 = _vector(mu2, "mu2")
    if m1.shape != m2.shape:
        raise ValueError(f"mu1 has {m1.shape[0]} entries but mu2 has {m2.shape[0]}")
    s1 = _square(sigma1, "sigma1", m1.shape[0])
    s2 = _square(sigma2, "sigma2", m2.shape[0])
    a = _Side(m1, s1, "sigma1", unit_roundoff_of(sigma1))
    b = _Side(m2, s2, "sigma2", unit_roundoff_of(sigma2))
    return _Reference(a, name, device).distance(b)


def _host(a: Any) -> Any:
    """Small statistics arrays (mean, covariance) that live on a GPU are copied to the host."""
    if type(a).__module__.startswith("torch") and getattr(a, "is_cuda", False):
        return a.detach().cpu()
    if hasattr(a, "__cuda_array_interface__") and hasattr(a, "get"):  # CuPy
        return a.get()
    return a


def _check_extractors(a: FeatureStats, b: FeatureStats, name_a: str, name_b: str, force: bool) -> None:
    if force:
        return
    if a.feature_extractor and b.feature_extractor and a.feature_extractor != b.feature_extractor:
        net_a, _, resize_a = a.feature_extractor.rpartition(":")
        net_b, _, resize_b = b.feature_extractor.rpartition(":")
        if net_a and net_a == net_b:
            raise ValueError(
                f"{name_a} was made with resize={resize_a!r} but {name_b} with resize={resize_b!r} (same network "
                f"{net_a!r}); different conventions shift FID by more than many model improvements (pass "
                "force=True to compare anyway)")
        raise ValueError(
            f"{name_a} comes from feature extractor {a.feature_extractor!r} but {name_b} from "
            f"{b.feature_extractor!r}; the distance between them is meaningless (pass force=True to compare anyway)"
        )
    if a.dim != b.dim:
        raise ValueError(f"{name_a} has {a.dim} features but {name_b} has {b.dim}")


@accepts_images("real", "fake", want="stats")
def fid(real: Any, fake: Any, *, force: bool = False, device: str | None = None,
        progress: bool | None = None, group: Any = None, engine: str = "auto") -> float:
    """Fréchet Inception Distance (or FD for any encoder) between two feature sets.

    ``real`` and ``fake`` are each features (array, tensor, .npy/.npz path), a
    :class:`FeatureStats`, or a statistics .npz (pytorch-fid / clean-fid / TTUR / ganmetrics).
    Lower is better; 0 means identical first and second moments. Warns (SmallSampleWarning) when a
    side has n <= d samples, where FID is strongly biased. Features on a CUDA device (torch tensors,
    ``__cuda_array_interface__``) are reduced on the GPU, and the distance is computed there too;
    ``device`` ("cpu" / "cuda") overrides where the distance runs. ``progress``: a bar for statistics of
    large inputs on a terminal (None), never (False) or always (True). ``group`` (``"default"`` or a
    torch.distributed ProcessGroup): each rank passes its shard of ``real`` and ``fake`` (features or
    FeatureStats; shards may be uneven or empty) and every rank gets the FID of all the shards together
    (:mod:`ganmetrics.engines.ring`). ``engine``: where statistics and the distance run (``"auto"``: the host for
    host inputs, the torch engine for tensors on a device; ``"host"``, ``"torch"``, ``"cuda"``).
    """
    eng = engines.select(group=group, call={"call": "fid", "force": force, "engine": engine,
                                            "inputs": [engines.describe(real), engines.describe(fake)]})
    name, device = _placement(device, engine, real, fake)
    a, b = stats_of(eng, real, "real", progress, name), stats_of(eng, fake, "fake", progress, name)
    _check_extractors(a, b, "real", "fake", force)
    warn_small(a, "real")
    warn_small(b, "fake")
    return _Reference(_Side.of(a, "real covariance"), name, device).distance(_Side.of(b, "fake covariance"))


def fid_many(reference: Any, candidates: Iterable[Any] | Sequence[Any], *, force: bool = False,
             device: str | None = None, group: Any = None, engine: str = "auto") -> list[float]:
    """FID of every candidate against one reference, factoring the reference covariance once.

    For benchmark suites comparing many checkpoints with one real set. Each candidate may be
    features, a FeatureStats or a statistics file. Returns a list of floats in the candidates' order.
    On ``device="cuda"`` all trace terms run as one batch on the GPU. ``group``: each rank passes its shard of
    the reference and of every candidate (the same number of candidates on every rank; see :func:`fid`).
    """
    candidates = list(candidates)
    eng = engines.select(group=group, call={"call": "fid_many", "force": force, "engine": engine,
                                            "inputs": [engines.describe(x) for x in (reference, *candidates)]})
    where, device = _placement(device, engine, reference, *candidates)
    ref = stats_of(eng, reference, "reference", None, where)
    warn_small(ref, "reference")
    factored = _Reference(_Side.of(ref, "reference covariance"), where, device)
    sides = []
    for i, cand in enumerate(candidates):
        name = f"candidates[{i}]"
        st = stats_of(eng, cand, name, None, where)
        _check_extractors(ref, st, "reference", name, force)
        warn_small(st, name)
        sides.append(_Side.of(st, f"{name} covariance"))
    return factored.distances(sides) if sides else []


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


@accepts_images("real", "fake")
def fid_infinity(
    real: Any, fake: Any, *, sizes: Sequence[int] | None = None, num_points: int = 15, min_size: int | None = None,
    seed: int = 0, progress: bool | None = None, group: Any = None, engine: str = "auto",
) -> FIDInfinityResult:
    """FD-infinity (Chong & Forsyth 2020, "Effectively unbiased FID and Inception Score and where to find them").

    FID is biased upwards by a term proportional to 1/N. This computes FID between the full real
    set and the first N samples of one seeded shuffle of the fake set, for ``num_points`` (>= 15 by
    default) sizes N evenly spaced from ``min_size`` (default: a tenth of the fake set, the paper's
    5k of 50k) to all fake samples, fits FID = value + slope / N, and returns the intercept.
    The fake statistics of all sizes come from one pass over the fake set and the real covariance is
    factored once. ``real`` may be features, a FeatureStats or a statistics file; ``fake`` must be
    features. Lower is better. ``progress``: bars on a terminal (None), never (False) or always (True).
    ``group``: each rank passes its shards (see :func:`fid`); the shuffle is one of the concatenated fake set, so
    every size holds the same samples as on one process. ``engine``: where it runs (see :func:`fid`).
    """
    eng = engines.select(fake, group=group, engine=engine,
                         call={"inputs": [engines.describe(real), engines.describe(fake)], "call": "fid_infinity", "sizes": None if sizes is None else tuple(int(s) for s in sizes),
                               "num_points": num_points, "min_size": min_size, "seed": seed})
    ref = stats_of(eng, real, "real", progress, eng.moments_engine)
    (ff,) = eng.sets({"fake": fake}, what="fid_infinity")
    n_fake = ff.n
    if ref.n is not None and ref.n <= ref.dim:
        warn_small(ref, "real")
    if ff.dim != ref.dim:
        raise ValueError(f"real has {ref.dim} features but fake has {ff.dim}")
    if sizes is None:
        if isinstance(num_points, bool) or not isinstance(num_points, (int, np.integer)) or num_points < 2:
            raise ValueError(f"num_points must be an integer >= 2, got {num_points!r}")
        if min_size is not None and (isinstance(min_size, bool) or not isinstance(min_size, (int, np.integer))):
            raise ValueError(f"min_size must be an integer, got {min_size!r}")
        lo = max(2, n_fake // 10) if min_size is None else int(min_size)
        if not 2 <= lo < n_fake:
            raise ValueError(f"min_size must be in [2, {n_fake}), got {lo}")
        sizes = np.unique(np.linspace(lo, n_fake, int(num_points)).round().astype(int))
    raw = np.asarray(sizes)
    if raw.ndim != 1 or raw.dtype.kind not in "iu":
        raise ValueError(f"sizes must be a 1-D sequence of integers, got {sizes!r}")
    sizes = np.unique(raw.astype(np.int64))
    if len(sizes) < 2:
        raise ValueError("fid_infinity needs at least 2 distinct sample sizes")
    if sizes[0] < 2 or sizes[-1] > n_fake:
        raise ValueError(f"sizes must lie in [2, {n_fake}], got [{sizes[0]}, {sizes[-1]}]")
    # One pass over the fake set; each prefix is compared with the once-factored real covariance as it forms.
    factored = _Reference(_Side.of(ref, "real covariance"))
    prefixes = nested_prefix_stats(eng, ff, sizes, seed, progress)
    fids = [factored.distance(_Side.of(acc, "fake covariance"))
            for acc in steps(prefixes, len(sizes), "FD-infinity sizes", unit="sizes", progress=progress)]
    return FIDInfinityResult(sizes.astype(np.float64), np.array(fids))
