"""Confidence intervals by half-sampling without replacement, with the small-sample bias removed.

Method. Draw ``n_boot`` subsamples without replacement holding a fraction f (default 1/2) of each
set, and compute the metric on each: theta_1..theta_B. Resampling with replacement would duplicate
samples, which shrinks k-NN radii and covariances and biases exactly the metrics in question.
For a statistic whose variance scales as 1/n, subsamples of m = f n drawn without replacement vary
with variance sigma^2/m (1 - f) = sigma^2/n * (1 - f)/f, so ``scale`` = sqrt(f / (1 - f)) (1 for
half-sampling) maps their spread to the spread of the full-sample value. FID, KID's subsets and the
k-NN metrics also shift with the sample size; the interval therefore uses the centred deviations
theta_b - mean(theta), not the raw subsample values:

    [theta_n - scale * q_hi, theta_n - scale * q_lo],   q = quantiles of theta_b - mean(theta)

an interval for the expected value of the metric at the given sample sizes, clipped to the metric's
range ([0, 1] for precision, recall and coverage; [0, inf) for FID and density). ``bias`` estimates how
far that expectation lies from the infinite-sample value, assuming a 1/n bias:
bias = (mean(theta) - theta_n) * f / (1 - f); ``debiased`` = theta_n - bias.

Checked against Monte-Carlo truth (tests/test_bootstrap.py): Gaussian features, d = 4, 1000 samples
per side, fractions 0.5 and 0.3. 90 % intervals for FID contain the Monte-Carlo expected FID in a
share of 100 independent data sets within the binomial band 0.90 +- 3 sd ([0.81, 0.99]); ``std``
is within [0.8, 1.25] of FID's Monte-Carlo standard deviation; ``bias`` averages to the
Monte-Carlo bias within 25 % and ``debiased`` to FID_inf within 3 standard errors.

FID by default (``fid_method="auto"``) takes the delta method of :mod:`ganmetrics.metrics.delta` instead: the same
quantity (an interval for the expected FID at the given sample sizes, with its bias) from one pass over the rows,
where the rounds pay one eigendecomposition each; it passes the same Monte-Carlo tests (tests/test_bootstrap.py,
tests/test_delta.py) and falls back to the rounds where it does not apply (``Interval.method`` says which).
"""

from __future__ import annotations

import math
import warnings

from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np

from ganmetrics import engines
from ganmetrics._image_inputs import accepts_images
from ganmetrics._progress import steps
from ganmetrics.engines import Engine, Set, check_k
from ganmetrics._arrays import Features
from ganmetrics.metrics.delta import SideTerms, by_delta, check_fid_method, normal_quantile, side_terms
from ganmetrics.metrics.frechet import _Reference, _Side, stats_distance
from ganmetrics.metrics.knn import prdc_values, real_fake_pass
from ganmetrics.metrics.rounds import FixedRealFrechet, check_round_k, knn_rounds
from ganmetrics.stats import FeatureStats, stats_of, subset_stats

KNN_METRICS = ("precision", "recall", "density", "coverage")


@dataclass(frozen=True)
class Interval:
    """``value`` on the full sets, the interval [``low``, ``high``] at ``confidence``, the
    bootstrap standard deviation ``std`` (scaled to the full sample size), and the estimated
    small-sample ``bias`` with the ``debiased`` value."""

    value: float
    low: float
    high: float
    confidence: float
    std: float
    bias: float
    debiased: float
    n_boot: int  # rounds drawn (0 for the delta method)
    round_error: float = 0.0  # bound on the rounding error of each round's value (0: the rounds' own exact route)
    method: str = "half-sampling"  # or "delta" (FID's first-order expansion, metrics/delta.py)

    def __float__(self) -> float:
        return self.value


class BiasWarning(UserWarning):
    """A bootstrap bias estimate that carries the debiased value outside the metric's range."""


# The range each metric can take: interval ends are clipped to it.
RANGES = {"fid": (0.0, np.inf), "precision": (0.0, 1.0), "recall": (0.0, 1.0), "coverage": (0.0, 1.0),
          "density": (0.0, np.inf)}


def _check_debiased(full: float, bias: float, bounds: tuple[float, float]) -> None:
    # one message for every metric and value, so the warnings filter shows it once per call site, not per metric
    if not bounds[0] <= full - bias <= bounds[1]:
        warnings.warn("a debiased value (the value minus its estimated small-sample bias) lies outside its metric's "
                      "range: the estimated bias is larger than the distance from the value to the end of the range, "
                      "so this sample size does not resolve it; Interval.debiased is reported unclipped, as an "
                      "estimate", BiasWarning, stacklevel=4)


def _interval(full: float, thetas: np.ndarray, fraction: float, confidence: float,
              bounds: tuple[float, float] = (-np.inf, np.inf), round_error: float = 0.0) -> Interval:
    scale = np.sqrt(fraction / (1.0 - fraction))
    dev = thetas - thetas.mean()
    alpha = (1.0 - confidence) / 2.0
    q_lo, q_hi = np.quantile(dev, [alpha, 1.0 - alpha])
    bias = float((thetas.mean() - full) * fraction / (1.0 - fraction))
    low, high = np.clip([full - scale * q_hi, full - scale * q_lo], *bounds)
    _check_debiased(full, bias, bounds)
    return Interval(
        value=float(full), low=float(low), high=float(high), confidence=confidence,
        std=float(scale * thetas.std(ddof=1)) if len(thetas) > 1 else 0.0, bias=bias, debiased=float(full - bias),
        n_boot=len(thetas), round_error=float(round_error),
    )


def delta_interval(full: float, terms: Sequence[SideTerms], confidence: float,
                   bounds: tuple[float, float] = (0.0, np.inf)) -> Interval:
    """FID's interval from the sampled sides' influence terms (:mod:`ganmetrics.metrics.delta`)."""
    se = math.hypot(*(t.se for t in terms))
    bias = float(sum(t.bias for t in terms))
    half = normal_quantile(confidence) * se
    low, high = np.clip([full - half, full + half], *bounds)
    _check_debiased(full, bias, bounds)
    return Interval(value=float(full), low=float(low), high=float(high), confidence=confidence, std=se, bias=bias,
                    debiased=float(full - bias), n_boot=0, method="delta")


@accepts_images("real", "fake")
def bootstrap(
    real: Any,
    fake: Any,
    metrics: Sequence[str] = ("fid",),
    *,
    n_boot: int = 50,
    fraction: float = 0.5,
    confidence: float = 0.95,
    seed: int = 0,
    k: int = 5,
    resample: str = "both",
    progress: bool | None = None,
    group: Any = None,
    engine: str = "auto",
    fid_method: str = "auto",
) -> dict[str, Interval]:
    """Confidence intervals for FID and/or precision, recall, density, coverage (see module doc).

    ``resample="fake"`` keeps the real set fixed (a fixed reference, as in benchmark tables) and
    lets FID reuse one factorization of the real covariance; ``"both"`` resamples both sets.
    Returns ``{metric: Interval}``. Seeded: the same inputs and seed give the same intervals.
    ``progress``: a bar over the rounds on a terminal (None), never (False) or always (True).
    ``group`` (``"default"`` or a torch.distributed ProcessGroup): each rank passes its shards; the subsamples
    are drawn on indices into the concatenated sets (the same draws as one process), each round's statistics
    are merged over the ranks and its k-NN metrics run on the ring (:mod:`ganmetrics.engines.ring`).
    ``engine``: where it runs (``"auto"``, ``"host"``, ``"torch"``; see :func:`ganmetrics.prdc`).
    ``fid_method``: FID's interval from the delta method (``"delta"``, :mod:`ganmetrics.metrics.delta`: one pass
    over the rows instead of ``n_boot`` rounds, each with an eigendecomposition), from the half-sampling rounds
    (``"half-sampling"``), or ``"auto"``: the delta method where it applies (the features on the host in one
    process, more samples than feature rank, no degenerate direction), else half-sampling. ``Interval.method``
    says which was used. The k-NN metrics always use the rounds; on the host engine their values and every round
    come from one augmented pass (:mod:`ganmetrics.metrics.rounds`).
    """
    metrics = tuple(metrics)
    unknown = [m for m in metrics if m != "fid" and m not in KNN_METRICS]
    if unknown or not metrics:
        raise ValueError(f"bootstrap supports 'fid', {', '.join(map(repr, KNN_METRICS))}; got {list(metrics)}")
    check_interval_args(n_boot, fraction, confidence, fid_method)
    if resample not in ("both", "fake"):
        raise ValueError(f"resample must be 'both' or 'fake', got {resample!r}")
    call = {"call": "bootstrap", "metrics": metrics, "n_boot": n_boot, "fraction": fraction,
            "confidence": confidence, "seed": seed, "k": k, "resample": resample}
    eng = engines.select(real, fake, group=group, engine=engine, progress=progress, call=call)
    fr, ff = eng.sets({"real": real, "fake": fake}, what="bootstrap")
    _, out = sample_intervals(
        eng, fr, ff, metrics, n_boot=n_boot, fraction=fraction, confidence=confidence, seed=seed, k=k,
        resample=resample, fid_method=fid_method, progress=progress,
        quiet=lambda: engines.select(real, fake, group=group, engine=engine, progress=False, call=call))
    return out


def check_interval_args(n_boot: Any, fraction: float, confidence: float, fid_method: str,
                        allow_zero: bool = False) -> None:
    """The interval settings shared by every caller; ``allow_zero``: ``n_boot=0`` means values only."""
    if allow_zero and isinstance(n_boot, (int, np.integer)) and not isinstance(n_boot, bool) and n_boot == 0:
        pass
    elif isinstance(n_boot, bool) or not isinstance(n_boot, (int, np.integer)) or n_boot < 2:
        zero = "0 (no intervals) or " if allow_zero else ""
        raise ValueError(f"n_boot must be {zero}an integer >= 2, got {n_boot!r}")
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"fraction must be in (0, 1), got {fraction}")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    check_fid_method(fid_method)


def interval_note(intervals: dict[str, Interval], n_boot: int, fraction: float, resampled: str,
                  skipped: Sequence[str] = (), k: int = 5) -> str:
    """One line saying how a table's intervals were made (``skipped``: metrics whose sets were too small)."""
    level = round(100 * next(iter(intervals.values())).confidence) if intervals else 95
    parts = []
    delta = [m for m, iv in intervals.items() if iv.method == "delta"]
    if delta:
        parts.append(f"{', '.join(delta)} by the delta method")
    rounds = [m for m, iv in intervals.items() if iv.method == "half-sampling"]
    if rounds:
        parts.append(f"{', '.join(rounds)} from {n_boot} half-sampling rounds of {fraction:g} of the samples")
    if skipped:
        parts.append(f"none for {', '.join(skipped)}: a round of {fraction:g} of the samples cannot hold the k + 1 "
                     f"= {k + 1} they need")
    return f"{level} % intervals, {resampled}: " + "; ".join(parts) if parts else "none"


def round_sizes(n_real: int, n_fake: int, fraction: float, resample: str) -> tuple[int, int]:
    """Rows each half-sampling round draws from the real and the fake set (the whole real set when it is fixed)."""
    return (n_real if resample == "fake" else max(2, int(round(fraction * n_real))),
            max(2, int(round(fraction * n_fake))))


def sample_intervals(eng: Engine, fr: Set, ff: Set, metrics: Sequence[str], *, n_boot: int, fraction: float,
                     confidence: float, seed: int, k: int, resample: str, fid_method: str, progress: bool | None,
                     quiet: Callable[[], Engine] | None = None, stats: tuple[FeatureStats, FeatureStats] | None = None,
                     fid_value: float | None = None) -> tuple[dict[str, float], dict[str, Interval]]:
    """The intervals of ``metrics`` (FID and the k-NN metrics, validated) between two sets on ``eng`` (see
    :func:`bootstrap`), and the k-NN metrics' values, which on the host engine come from the same pass as their
    rounds. ``quiet``: an engine without bars for the recomputed rounds (default ``eng``); ``stats`` and
    ``fid_value``: the sets' statistics and FID when already computed."""
    n_real, n_fake = fr.n, ff.n
    rng = np.random.default_rng(seed)
    m_real, m_fake = round_sizes(n_real, n_fake, fraction, resample)
    real_idx = [np.arange(n_real) if resample == "fake" else np.sort(rng.choice(n_real, m_real, replace=False))
                for _ in range(n_boot)]
    fake_idx = [np.sort(rng.choice(n_fake, m_fake, replace=False)) for _ in range(n_boot)]
    out: dict[str, Interval] = {}
    if "fid" in metrics:
        out["fid"] = _fid_interval(eng, fr, ff, real_idx, fake_idx, resample, fraction, confidence, progress,
                                   fid_method, stats, fid_value)
    knn = [m for m in metrics if m in KNN_METRICS]
    full: dict[str, float] = {}
    if knn:
        k = check_k(check_k(k, "k", n_real, "real"), "k", n_fake, "fake")
        if eng.rounds and not eng.distributed:  # the values and every round from one augmented pass (rounds.py)
            check_round_k(k, [m_fake] if resample == "fake" else [m_real, m_fake], "real or fake")
            real_draws = None if resample == "fake" else [np.arange(n_real), *real_idx]
            values, _ = knn_rounds(eng, fr, ff, k, real_draws, [np.arange(n_fake), *fake_idx], knn)
            full, per_round = values[0], values[1:]
        else:
            full = dict(prdc_values(eng, fr, ff, *real_fake_pass(eng, fr, ff, k, fake_radii=True, col_min=True,
                                                                 strict=False)))
            per_round = recomputed_rounds(quiet() if quiet else eng, fr, ff, k, real_idx, fake_idx, knn, progress)
        for m in knn:
            out[m] = _interval(full[m], np.asarray([r[m] for r in per_round]), fraction, confidence, RANGES[m])
    return {m: full[m] for m in knn}, {m: out[m] for m in metrics}


def recomputed_rounds(eng: Engine, fr: Set, ff: Set, k: int, real_idx, fake_idx, names, progress=None
                      ) -> list[dict[str, float]]:
    """Each round's k-NN metrics recomputed from the drawn rows (engines without a pairs pass, and the reference
    the one-pass rounds are tested against)."""
    rounds = []
    for ri, fi in steps(zip(real_idx, fake_idx), len(fake_idx), "bootstrap rounds (PRDC)", unit="rounds",
                        progress=progress):
        res = _prdc(eng, eng.subset(fr, ri, "real"), eng.subset(ff, fi, "fake"), k)
        rounds.append({m: res[m] for m in names})
    return rounds


def _prdc(eng: Engine, fr: Set, ff: Set, k: int):
    return prdc_values(eng, fr, ff, *real_fake_pass(eng, fr, ff, k, fake_radii=True, col_min=True, strict=False))


def _fid_interval(eng: Engine, fr: Set, ff: Set, real_idx, fake_idx, resample, fraction, confidence,
                  progress, fid_method: str = "auto", stats: tuple[FeatureStats, FeatureStats] | None = None,
                  fid_value: float | None = None) -> Interval:
    if stats is None:
        stats = (stats_of(eng, eng.as_input(fr.local), "real", engine=eng.moments_engine),
                 stats_of(eng, eng.as_input(ff.local), "fake", engine=eng.moments_engine))
    real_full, fake_full = stats
    ref = _Reference(_Side.of(real_full, "real covariance"))
    full = ref.distance(_Side.of(fake_full, "fake covariance")) if fid_value is None else fid_value
    on_host = isinstance(ff.local, Features) and isinstance(fr.local, Features) and not eng.distributed
    if not on_host and fid_method == "delta":
        raise ValueError("fid_method='delta' reads the rows on the host in one process: use engine='host' "
                         "without a group, or fid_method='half-sampling'")

    def delta() -> Interval:
        terms = [side_terms(real_full, fake_full, ff.local, "real", "fake", progress)]
        if resample == "both":
            terms.append(side_terms(fake_full, real_full, fr.local, "fake", "real", progress))
        return delta_interval(full, terms, confidence, RANGES["fid"])

    iv = by_delta(fid_method, delta) if on_host else None
    if iv is not None:
        return iv
    rounds = len(fake_idx)
    if resample == "fake" and eng.rounds and not eng.distributed:  # the fake rows projected once (rounds.py)
        fd = FixedRealFrechet(real_full, ff.local)
        thetas, errors = zip(*(fd.distance(i) for i in steps(fake_idx, rounds, "bootstrap rounds (FID)",
                                                                unit="rounds", progress=progress)))
        return _interval(full, np.asarray(thetas), fraction, confidence, RANGES["fid"], max(errors))
    fake_stats = subset_stats(eng, ff, fake_idx)
    if resample == "fake":
        thetas = [ref.distance(_Side.of(s, "fake covariance"))
                  for s in steps(fake_stats, rounds, "bootstrap rounds (FID)", unit="rounds", progress=progress)]
    else:
        real_stats = subset_stats(eng, fr, real_idx)
        thetas = [stats_distance(r, f) for r, f in steps(zip(real_stats, fake_stats), rounds, "bootstrap rounds (FID)",
                                                          unit="rounds", progress=progress)]
    return _interval(full, np.asarray(thetas), fraction, confidence, RANGES["fid"])
