"""Is generator A better than generator B? A paired bootstrap against one reference.

:func:`compare` resamples the real set jointly for both (the same real half-sample in a round is compared with a
half-sample of A and one of B), so the real set's own variation cancels in the difference -- a paired
comparison, tighter than two separate intervals. It returns the difference with its interval and the
probability that A is better. The leaderboard (:mod:`ganmetrics.leaderboard`) runs it between neighbours in its
ranking, and :meth:`ganmetrics.Reference.compare` calls it; it needs of the reference only its real features,
statistics, factored Fréchet side and radii.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from ganmetrics._arrays import Features
from ganmetrics._progress import steps
from ganmetrics.metrics.bootstrap import KNN_METRICS, _interval
from ganmetrics.metrics.frechet import _Reference, _Side
from ganmetrics.engines import HostEngine
from ganmetrics.metrics.knn import exact_radii2, prdc_features
from ganmetrics.metrics.rounds import SideRounds, knn_rounds
from ganmetrics.stats import FeatureStats

INTERVAL_METRICS = ("fid", *KNN_METRICS)
LOWER_IS_BETTER = {"fid", "kid", "kid_std"}


def _better_key(metric: str):
    """Sort key: smaller is better."""
    if metric in LOWER_IS_BETTER:
        return lambda v: v
    if metric == "nn1_accuracy":
        return lambda v: abs(v - 0.5)
    return lambda v: -v


def _idx(rng: np.random.Generator, n: int, m: int) -> np.ndarray:
    return np.sort(rng.choice(n, m, replace=False))


def _sub(f: Features, idx: np.ndarray, name: str) -> Features:
    return Features(np.ascontiguousarray(f.array[idx]), f.code, name)


# ------------------------------------------------------------------------------------------------ compare
@dataclass(frozen=True)
class Comparison:
    """A minus B on ``metric`` (``difference``), its interval [``low``, ``high``] at ``confidence``, and the
    probability that A is better (lower FID/KID, higher precision/recall/density/coverage)."""

    metric: str
    difference: float
    low: float
    high: float
    confidence: float
    prob_a_better: float
    paired: bool
    n_boot: int

    @property
    def distinguishable(self) -> bool:
        """Whether the interval of the difference excludes 0."""
        return self.low > 0 or self.high < 0


def _round_values(metric: str, k: int, real: Features, fakes: Sequence[Features],
                  real_stats: FeatureStats | None = None, fd: _Reference | None = None,
                  radii2: np.ndarray | None = None) -> list[float]:
    """``metric`` of each fake set against one real set, sharing the real side's work between them."""
    if metric == "fid":
        fd = fd or _Reference(_Side.of(real_stats or FeatureStats.from_features(real), "real covariance"))
        return fd.distances([_Side.of(FeatureStats.from_features(f), "fake covariance") for f in fakes])
    r2 = exact_radii2(real, k) if radii2 is None else radii2
    return [prdc_features(real, f, k, progress=False, real_radii2=r2)[metric] for f in fakes]


def compare(ref: Any, fake_a: Any, fake_b: Any, metric: str = "fid", *, n_boot: int = 50,
            fraction: float = 0.5, confidence: float = 0.95, seed: int = 0, k: int | None = None, paired: bool = True,
            force: bool = False, progress: bool | None = None, **image_kw: Any) -> Comparison:
    """A against B on ``metric`` (fid, precision, recall, density, coverage) with a bootstrap that resamples the
    real set jointly for both (``paired=False``: independently for each, for comparison). Needs the real
    features in the reference. Half-sampling as in :func:`ganmetrics.bootstrap`: the interval is that of the
    difference of the expected metrics at these sample sizes."""
    if metric not in INTERVAL_METRICS:
        raise ValueError(f"metric must be one of {', '.join(INTERVAL_METRICS)}, got {metric!r}")
    if ref.features is None:
        raise ValueError("compare resamples the real set: build the reference with keep_features=True (or a "
                         "metric that needs the features)")
    if not 0.0 < fraction < 1.0 or not 0.0 < confidence < 1.0:
        raise ValueError(f"fraction and confidence must be in (0, 1), got {fraction} and {confidence}")
    if isinstance(n_boot, bool) or not isinstance(n_boot, (int, np.integer)) or n_boot < 2:
        raise ValueError(f"n_boot must be an integer >= 2, got {n_boot!r}")
    k = ref.k if k is None else int(k)
    image_kw = dict(image_kw)  # the extractor built for A serves B
    fa = ref._fake(fake_a, force, image_kw, progress)
    fb = ref._fake(fake_b, force, image_kw, progress)
    real = ref.features
    full = _round_values(metric, k, real, [fa, fb], ref.stats, ref.fd_reference() if metric == "fid" else None,
                         ref.radii2.get(k))
    rng = np.random.default_rng(seed)
    m_r, m_a, m_b = (max(k + 2, int(round(fraction * n))) for n in (real.n, fa.n, fb.n))
    draws: dict[str, list[np.ndarray]] = {"real a": [], "a": [], "b": [], "real b": []}
    for _ in range(n_boot):
        draws["real a"].append(_idx(rng, real.n, m_r))
        draws["a"].append(_idx(rng, fa.n, m_a))
        draws["b"].append(_idx(rng, fb.n, m_b))
        draws["real b"].append(draws["real a"][-1] if paired else _idx(rng, real.n, m_r))
    if metric == "fid":
        diffs = []
        for ra, ia, ib, rb in steps(zip(*draws.values()), n_boot, f"paired bootstrap ({metric})", unit="rounds",
                                    progress=progress):
            sa, sb = _sub(fa, ia, "fake A"), _sub(fb, ib, "fake B")
            if paired:
                va, vb = _round_values(metric, k, _sub(real, ra, "real"), [sa, sb])
            else:
                va, vb = _round_values(metric, k, _sub(real, ra, "real"), [sa])[0], _round_values(
                    metric, k, _sub(real, rb, "real"), [sb])[0]
            diffs.append(va - vb)
    else:  # every round of both generators from one augmented pass each (metrics/rounds.py)
        eng = HostEngine(progress=progress)
        fr, sa, sb = eng.sets({"real": real, "fake A": fa, "fake B": fb})
        shared = SideRounds(eng, fr, k, eng.center(fr, sa, sb), draws["real a"], n_boot) if paired else None
        va, _ = knn_rounds(eng, fr, sa, k, draws["real a"], draws["a"], (metric,), real_side=shared)
        vb, _ = knn_rounds(eng, fr, sb, k, draws["real b"], draws["b"], (metric,), real_side=shared)
        diffs = [a[metric] - b[metric] for a, b in zip(va, vb)]
    diffs = np.asarray(diffs)
    iv = _interval(full[0] - full[1], diffs, fraction, confidence)
    scale = np.sqrt(fraction / (1.0 - fraction))
    spread = (full[0] - full[1]) + scale * (diffs - diffs.mean())
    a_better = spread < 0 if metric in LOWER_IS_BETTER else spread > 0
    prob = float(np.mean(a_better) + 0.5 * np.mean(spread == 0))
    return Comparison(metric, iv.value, iv.low, iv.high, confidence, prob, paired, n_boot)
