"""Kernel two-sample metrics: KID (polynomial-kernel MMD) and CMMD (RBF-kernel MMD).

Written once on the engine primitives (:mod:`ganmetrics.engines`): ``kernel_sums`` (float64 GEMM tiles) and
``subset_mmd2`` (one float64 syrk per subset pair on the host); no N x N matrix in Python. With ``group=``
the ring engine computes each pair of shards where the rows live and adds the partial sums in rank order.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ganmetrics import engines
from ganmetrics._image_inputs import accepts_images
from ganmetrics.engines.base import unbiased_mmd2

POLYNOMIAL, RBF = 0, 1


@dataclass(frozen=True)
class KIDResult:
    """KID estimate: ``mean`` over subsets (or the exact full-set value), ``std`` over subsets
    (None for the full-set estimate) and the per-subset ``values``; ``info["engine"]``: where it was computed."""

    mean: float
    std: float | None
    values: np.ndarray = field(repr=False)
    subsets: int | None = None
    subset_size: int | None = None
    info: dict = field(default_factory=dict, repr=False, compare=False)

    def __float__(self) -> float:
        return self.mean


def _poly_args(dim: int, degree: int, gamma: float | None, coef0: float) -> tuple[float, float, int]:
    if isinstance(degree, bool) or int(degree) != degree or not 1 <= int(degree) <= 16:
        raise ValueError(f"degree must be an integer in [1, 16], got {degree}")
    g = 1.0 / dim if gamma is None else float(gamma)
    return g, float(coef0), int(degree)


PRECISIONS = ("float64", "float32")


def _float32_products(precision: str) -> bool:
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be 'float64' or 'float32', got {precision!r}")
    return precision == "float32"


DEFAULT_SUBSET_SIZE = 1000  # torch-fidelity's and clean-fid's
MAX_SUBSET_ROWS = 1 << 26  # subsets x subset_size: two int64 index arrays of this size take 1 GiB


class KIDSubsetWarning(UserWarning):
    """The KID subsets cover both whole sets: every subset is the same, so their spread says nothing."""


@accepts_images("real", "fake")
def kid(
    real: Any,
    fake: Any,
    subsets: int | None = 100,
    subset_size: int | None = None,
    seed: int = 2020,
    *,
    degree: int = 3,
    gamma: float | None = None,
    coef0: float = 1.0,
    precision: str = "float64",
    workspace_bytes: int | None = None,
    progress: bool | None = None,
    group: Any = None,
    engine: str = "auto",
) -> KIDResult:
    """Kernel Inception Distance (Bińkowski et al. 2018, "Demystifying MMD GANs").

    Unbiased MMD^2 with the cubic polynomial kernel k(x, y) = (x.y / d + 1)^3. With ``subsets``
    (default 100) of ``subset_size`` samples per side, drawn without replacement with
    ``numpy.random.RandomState(seed)`` exactly as torch-fidelity draws them (the default seed 2020 is
    torch-fidelity's, so the subsets and the result are the same as its), the result is the mean and
    standard deviation over subsets, as torch-fidelity, clean-fid and torchmetrics report it.
    ``subset_size=None`` means 1000 (their default), or the smaller set's size when a set has fewer
    samples (clean-fid's rule); if that covers both whole sets, every subset would be identical, so
    the KID is computed once over the full sets, ``std`` is None and a :class:`KIDSubsetWarning`
    says so. A ``subset_size`` larger than a set is an error, as in torch-fidelity.
    ``subsets=None`` gives the exact unbiased estimate over the full sets (``std`` is None).

    ``precision="float64"`` (default) forms every dot product in float64. ``precision="float32"``
    forms them with float32 GEMM (about 1.8x faster here) and keeps kernel values and sums in float64;
    README, "What exact means", gives the deviation measured. Lower is better; 0 for identical
    distributions. The estimate is unbiased, so small negative values are legitimate and returned as is.
    ``progress``: a bar on a terminal (None), never (False) or always (True).
    ``group`` (``"default"`` or a torch.distributed ProcessGroup): each rank passes its shards; the subsets are
    drawn on indices into the concatenated sets (the same draws, so the same subsets, as one process), kernel
    sums are computed where the rows live and added up; every rank gets the result. ``engine``: where it runs
    (``"auto"``: host arrays on the host engine, tensors on a device on the torch engine; ``"host"``, ``"torch"``).
    """
    f32 = _float32_products(precision)
    eng = engines.select(real, fake, group=group, engine=engine, workspace_bytes=workspace_bytes, progress=progress,
                         call={"call": "kid", "subsets": subsets, "subset_size": subset_size, "seed": seed,
                               "degree": degree, "gamma": gamma, "coef0": coef0, "precision": precision})
    fr, ff = eng.sets({"real": real, "fake": fake}, what="kid")
    n_real, n_fake = fr.n, ff.n
    g, c0, deg = _poly_args(fr.dim, degree, gamma, coef0)
    if subsets is not None:
        subsets, subset_size = _check_subsets(subsets, subset_size, n_real, n_fake)
        if subset_size == n_real == n_fake:
            warnings.warn(
                f"KID subsets of {subset_size} samples cover both whole sets ({n_real} real, {n_fake} fake): every "
                "subset is the same, so the KID is computed once over the full sets and has no subset spread "
                "(std=None); use more samples than the subset size for a spread",
                KIDSubsetWarning,
                stacklevel=2,
            )
            subsets = None
    kernel = (POLYNOMIAL, g, c0, deg)
    if subsets is None:
        value = unbiased_mmd2(*eng.kernel_sums(fr, ff, kernel, False, f32), n_real, n_fake)
        _require_finite_kid(np.array([value]))
        return KIDResult(float(value), None, np.array([value]), info=eng.info())
    # torch-fidelity's draw: RandomState(seed), for each subset fake indices then real indices
    rng = np.random.RandomState(seed)
    fi, ri = [], []
    for _ in range(subsets):
        fi.append(rng.choice(n_fake, subset_size, replace=False))
        ri.append(rng.choice(n_real, subset_size, replace=False))
    values = eng.subset_mmd2(ff, fr, kernel, np.stack(fi), np.stack(ri), f32, f"KID subsets of {subset_size}")
    _require_finite_kid(values)
    return KIDResult(float(values.mean()), float(values.std()), values, subsets, subset_size, eng.info())


def _require_finite_kid(values: np.ndarray) -> None:
    if not np.all(np.isfinite(values)):
        raise ValueError("the polynomial kernel (x.y / d + 1)^3 overflows float64 for these features (magnitudes "
                         "near 1e50 or more); KID is not scale invariant, so rescale the features as your encoder "
                         "normally produces them")


def _check_subsets(subsets: Any, subset_size: Any, n_real: int, n_fake: int) -> tuple[int, int]:
    smaller = min(n_real, n_fake)
    if subset_size is None:
        subset_size = min(DEFAULT_SUBSET_SIZE, smaller)
    for name, v in (("subsets", subsets), ("subset_size", subset_size)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
            raise TypeError(f"{name} must be an integer, got {type(v).__name__}")
    if subsets < 1:
        raise ValueError(f"subsets must be >= 1, got {subsets}")
    if subset_size < 2:
        raise ValueError(f"subset_size must be >= 2, got {subset_size}")
    if subsets * subset_size > MAX_SUBSET_ROWS:
        raise ValueError(
            f"subsets x subset_size = {subsets * subset_size:,} exceeds {MAX_SUBSET_ROWS:,} (the subset indices alone "
            "would take over 1 GiB); use fewer or smaller subsets"
        )
    if subset_size > smaller:
        raise ValueError(
            f"subset_size = {subset_size} is larger than the smaller set ({smaller} samples); "
            "use a smaller subset_size, subset_size=None (the default: 1000 or the smaller set's size), "
            "or subsets=None for the full-set estimate"
        )
    return int(subsets), int(subset_size)


@accepts_images("real", "fake", default_extractor="clip-vit-l-14-336")
def cmmd(real: Any, fake: Any, *, sigma: float = 10.0, scale: float = 1000.0, normalize: bool = True,
         precision: str = "float64", workspace_bytes: int | None = None, progress: bool | None = None,
         group: Any = None, engine: str = "auto") -> float:
    """CMMD (Jayasumana et al. 2024, "Rethinking FID: towards a better evaluation metric for image generation").

    MMD with the Gaussian RBF kernel exp(-|x - y|^2 / (2 sigma^2)), sigma = 10, between
    L2-normalized embeddings (CLIP in the paper), scaled by 1000 -- the paper's estimator, which
    averages every kernel value including i = j (a V-statistic, >= 0). Lower is better.
    ``precision="float32"`` forms the dot products with float32 GEMM (kernel values and sums in float64).
    ``group``: each rank passes its shards; kernel sums are computed where the rows live and added up.
    ``engine``: where it runs (see :func:`kid`).
    """
    sigma, scale = float(sigma), float(scale)
    if not (np.isfinite(sigma) and sigma * sigma > 0 and np.isfinite(1.0 / (2.0 * sigma * sigma))):
        raise ValueError(f"sigma must be a positive number whose 1 / (2 sigma^2) is finite, got {sigma}")
    if not (np.isfinite(scale) and scale > 0):
        raise ValueError(f"scale must be a positive finite number, got {scale}")
    if sigma <= 0:
        raise ValueError(f"sigma must be positive, got {sigma}")
    f32 = _float32_products(precision)
    eng = engines.select(real, fake, group=group, engine=engine, workspace_bytes=workspace_bytes, progress=progress,
                         call={"call": "cmmd", "sigma": sigma, "scale": scale, "normalize": normalize,
                               "precision": precision})
    fr, ff = eng.sets({"real": real, "fake": fake}, prepare=eng.l2_normalized if normalize else None, what="cmmd")
    gamma = 1.0 / (2.0 * sigma * sigma)
    sxx, syy, sxy = eng.kernel_sums(fr, ff, (RBF, gamma, 1.0, 3), True, f32)
    nr, nf = fr.n, ff.n
    kxx, kyy, kxy = sxx / nr**2, syy / nf**2, sxy / (nr * nf)
    return float(scale * max(kxx + kyy - 2.0 * kxy, 0.0))
