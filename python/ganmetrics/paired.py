"""Is generator A better than generator B? A paired bootstrap against one reference.

:func:`compare` resamples the real set jointly for both (the same real half-sample in a round is compared with a
half-sample of A and one of B), so the real set's own variation cancels in the difference -- a paired
comparison, tighter than two separate intervals. It returns the difference with its interval and the
probability that A is better. The leaderboard (:mod:`ganmetrics.leaderboard`) runs it between neighbours in its
ranking, and :meth:`ganmetrics.Reference.compare` calls it; it needs of the reference only its real features,
statistics, factored Fréchet side and radii.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any, Sequence

import numpy as np

from ganmetrics._arrays import Features
from ganmetrics._progress import steps
from ganmetrics.metrics.bootstrap import KNN_METRICS, RANGES, Interval, _interval, check_interval_args, delta_interval
from ganmetrics.metrics.frechet import _Reference, _Side
from ganmetrics.engines import HostEngine, check_k
from ganmetrics.metrics.delta import GeneratorTerms, by_delta, normal_quantile, paired_se
from ganmetrics.metrics.rounds import FixedRealFrechet, SideRounds, knn_rounds
from ganmetrics.stats import FeatureStats

INTERVAL_METRICS = ("fid", *KNN_METRICS)
LOWER_IS_BETTER = {"fid", "kid", "kid_std", "memorization", "c2st", "c2st_auc"}  # c2st: toward 0.5


def _better_key(metric: str):
    """Sort key: smaller is better."""
    if metric in LOWER_IS_BETTER:
        return lambda v: v
    if metric == "nn1_accuracy":
        return lambda v: abs(v - 0.5)
    return lambda v: -v


def _idx(rng: np.random.Generator, n: int, m: int) -> np.ndarray:
    return np.sort(rng.choice(n, m, replace=False))


def _draw_size(n: int, k: int, fraction: float) -> int:
    """Rows a half-sampling round draws from a set of ``n``: a share ``fraction``, at least k + 2."""
    return max(k + 2, int(round(fraction * n)))


def round_holds(n: int, k: int, fraction: float) -> bool:
    """Whether a set of ``n`` is large enough for the half-sampling rounds (fewer rows drawn than it holds)."""
    return _draw_size(n, k, fraction) < n


def _round_size(n: int, k: int, fraction: float, name: str) -> int:
    """:func:`_draw_size`, refused where it would draw the whole set."""
    m = _draw_size(n, k, fraction)
    if m >= n:
        raise ValueError(f"{name} has {n} samples: a bootstrap round draws {m} of them without replacement "
                         f"(fraction {fraction}, at least k + 2 = {k + 2}), which needs more samples")
    return m


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
    n_boot: int  # rounds drawn (0 for the delta method)
    method: str = "half-sampling"  # or "delta" (FID, metrics/delta.py)

    @property
    def distinguishable(self) -> bool:
        """Whether the interval of the difference excludes 0."""
        return self.low > 0 or self.high < 0


def _fids(real: Features, fakes: Sequence[Features]) -> list[float]:
    """FID of each fake set against one real set, sharing the real side's factorization between them."""
    fd = _Reference(_Side.of(FeatureStats.from_features(real), "real covariance"))
    return fd.distances([_Side.of(FeatureStats.from_features(f), "fake covariance") for f in fakes])


def compare(ref: Any, fake_a: Any, fake_b: Any, metric: str = "fid", *, n_boot: int = 50,
            fraction: float = 0.5, confidence: float = 0.95, seed: int = 0, k: int | None = None, paired: bool = True,
            force: bool = False, progress: bool | None = None, fid_method: str = "auto", **image_kw: Any) -> Comparison:
    """A against B on ``metric`` (fid, precision, recall, density, coverage) with a bootstrap that resamples the
    real set jointly for both (``paired=False``: independently for each, for comparison). Needs the real
    features in the reference. Half-sampling as in :func:`ganmetrics.bootstrap`: the interval is that of the
    difference of the expected metrics at these sample sizes. ``fid_method`` (FID only; see
    :func:`ganmetrics.bootstrap`): the delta method takes each real row's influence on both FIDs, so the paired
    difference's spread is Var(IF_A - IF_B) / n_real plus the generated sides' own; the probability that A is
    better is then the normal one, Phi(-difference / se)."""
    if metric not in INTERVAL_METRICS:
        raise ValueError(f"metric must be one of {', '.join(INTERVAL_METRICS)}, got {metric!r}")
    if ref.features is None:
        raise ValueError("compare resamples the real set: build the reference with keep_features=True (or a "
                         "metric that needs the features)")
    check_interval_args(n_boot, fraction, confidence, fid_method)
    k = ref.k if k is None else int(k)
    image_kw = dict(image_kw)  # the extractor built for A serves B
    fa = ref._fake(fake_a, force, image_kw, progress)
    fb = ref._fake(fake_b, force, image_kw, progress)
    real = ref.features
    if metric == "fid":
        stats = [FeatureStats.from_features(f) for f in (fa, fb)]
        full = ref.fd_reference().distances([_Side.of(s, "fake covariance") for s in stats])
        terms = [GeneratorTerms(ref.stats, real, s, f, name) for s, f, name in zip(stats, (fa, fb),
                                                                                  ("fake A", "fake B"))]
        found = by_delta(fid_method, lambda: _delta_comparison(*terms, full, confidence, paired))
        if found is not None:
            return found
    else:
        for n, name in ((real.n, "real"), (fa.n, "fake A"), (fb.n, "fake B")):
            check_k(k, "k", n, name)
    rng = np.random.default_rng(seed)
    m_r, m_a, m_b = (_round_size(n, k, fraction, name) for n, name in ((real.n, "real"), (fa.n, "fake A"),
                                                                         (fb.n, "fake B")))
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
                va, vb = _fids(_sub(real, ra, "real"), [sa, sb])
            else:
                va, vb = _fids(_sub(real, ra, "real"), [sa])[0], _fids(_sub(real, rb, "real"), [sb])[0]
            diffs.append(va - vb)
    else:  # the values and every round of both generators from one augmented pass each (metrics/rounds.py)
        eng = HostEngine(progress=progress)
        fr, sa, sb = eng.sets({"real": real, "fake A": fa, "fake B": fb})
        n_of = {"real a": real.n, "a": fa.n, "b": fb.n, "real b": real.n}
        with_full = {key: [np.arange(n_of[key]), *d] for key, d in draws.items()}  # round 0: the full sets
        shared = SideRounds(eng, fr, k, eng.center(fr, sa, sb), with_full["real a"], n_boot + 1) if paired else None
        va, _ = knn_rounds(eng, fr, sa, k, with_full["real a"], with_full["a"], (metric,), real_side=shared)
        vb, _ = knn_rounds(eng, fr, sb, k, with_full["real b"], with_full["b"], (metric,), real_side=shared)
        full = [va[0][metric], vb[0][metric]]
        diffs = [a[metric] - b[metric] for a, b in zip(va[1:], vb[1:])]
    diffs = np.asarray(diffs)
    iv = _interval(full[0] - full[1], diffs, fraction, confidence)
    scale = np.sqrt(fraction / (1.0 - fraction))
    spread = (full[0] - full[1]) + scale * (diffs - diffs.mean())
    a_better = spread < 0 if metric in LOWER_IS_BETTER else spread > 0
    prob = float(np.mean(a_better) + 0.5 * np.mean(spread == 0))
    return Comparison(metric, iv.value, iv.low, iv.high, confidence, prob, paired, n_boot)


def _delta_comparison(a: GeneratorTerms, b: GeneratorTerms, full: Sequence[float], confidence: float,
                      paired: bool) -> Comparison:
    """FID(A) - FID(B) with the delta method's interval (see :func:`compare`)."""
    # paired: the same real rows move both FIDs; unpaired: as if each had its own real sample
    shared = paired_se(a.on_real, b.on_real) if paired else math.hypot(a.on_real.se, b.on_real.se)
    se = math.hypot(shared, a.own.se, b.own.se)
    diff = full[0] - full[1]
    half = normal_quantile(confidence) * se
    if se > 0:
        prob = NormalDist().cdf(-diff / se)  # lower FID is better
    else:
        prob = 1.0 if diff < 0 else 0.0 if diff > 0 else 0.5
    return Comparison("fid", float(diff), float(diff - half), float(diff + half), confidence, float(prob), paired, 0,
                      "delta")


def fixed_real_intervals(ref: Any, ff: Features, metrics: Sequence[str], fid_value: float | None, k: int,
                         n_boot: int, fraction: float, confidence: float, seed: int, fid_method: str,
                         terms: GeneratorTerms | None) -> tuple[dict[str, float], dict[str, Interval]]:
    """Intervals against a reference's fixed real set (``metrics``: FID, with its value ``fid_value`` and the
    generator's delta ``terms``, and k-NN metrics), and the k-NN values: those and every round come from one
    augmented pass that reuses the real radii; FID takes the delta method (:func:`ganmetrics.bootstrap`'s
    ``fid_method``) or rounds that reuse the real factorization."""
    knn = [x for x in metrics if x in KNN_METRICS]
    if knn:
        check_k(k, "k", ff.n, "fake")
    rng = np.random.default_rng(seed)
    drawn: list[np.ndarray] = []

    def draws() -> list[np.ndarray]:  # drawn once, when a half-sampling interval first needs them
        if not drawn:
            m = _round_size(ff.n, k, fraction, "fake")
            drawn.extend(_idx(rng, ff.n, m) for _ in range(n_boot))
        return drawn

    out: dict[str, Interval] = {}
    if "fid" in metrics:
        out["fid"] = _fixed_fid_interval(ref, ff, fid_value, draws, confidence, fid_method, terms)
    knn_values: dict[str, float] = {}
    if knn:
        eng = HostEngine(progress=False)
        fr, fs = eng.sets({"real": ref.features, "fake": ff})
        per_round, _ = knn_rounds(eng, fr, fs, k, None, [np.arange(ff.n), *draws()], knn,
                                  real_radii2=ref.radii2.get(k))
        knn_values = per_round[0]
        share = len(draws()[0]) / ff.n  # the share drawn (above fraction where k + 2 rows set the floor)
        for x in knn:
            out[x] = _interval(knn_values[x], np.asarray([r[x] for r in per_round[1:]]), share, confidence,
                               RANGES[x])
    return knn_values, {x: out[x] for x in metrics}


def _fixed_fid_interval(ref: Any, ff: Features, value: float, draws, confidence: float, fid_method: str,
                        terms: GeneratorTerms) -> Interval:
    iv = by_delta(fid_method, lambda: delta_interval(value, [terms.own], confidence, RANGES["fid"]))
    if iv is not None:
        return iv
    fd = FixedRealFrechet(ref.stats, ff)
    idx = draws()
    thetas, errors = zip(*(fd.distance(i) for i in idx))
    return _interval(value, np.asarray(thetas), len(idx[0]) / ff.n, confidence, RANGES["fid"], max(errors))
