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
"""

from __future__ import annotations

import warnings

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from ganmetrics import engines
from ganmetrics._image_inputs import accepts_images
from ganmetrics._progress import steps
from ganmetrics.engines import Engine, Set
from ganmetrics.metrics.frechet import _Reference, _Side, stats_distance
from ganmetrics.metrics.knn import prdc_values, real_fake_pass
from ganmetrics.metrics.rounds import FixedRealFrechet, check_round_k, knn_rounds
from ganmetrics.stats import stats_of, subset_stats

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
    n_boot: int
    round_error: float = 0.0  # bound on the rounding error of each round's value (0: the rounds' own exact route)

    def __float__(self) -> float:
        return self.value


class BiasWarning(UserWarning):
    """A bootstrap bias estimate that carries the debiased value outside the metric's range."""


# The range each metric can take: interval ends are clipped to it.
RANGES = {"fid": (0.0, np.inf), "precision": (0.0, 1.0), "recall": (0.0, 1.0), "coverage": (0.0, 1.0),
          "density": (0.0, np.inf)}


def _interval(full: float, thetas: np.ndarray, fraction: float, confidence: float,
              bounds: tuple[float, float] = (-np.inf, np.inf), round_error: float = 0.0) -> Interval:
    scale = np.sqrt(fraction / (1.0 - fraction))
    dev = thetas - thetas.mean()
    alpha = (1.0 - confidence) / 2.0
    q_lo, q_hi = np.quantile(dev, [alpha, 1.0 - alpha])
    bias = float((thetas.mean() - full) * fraction / (1.0 - fraction))
    low, high = np.clip([full - scale * q_hi, full - scale * q_lo], *bounds)
    if not bounds[0] <= full - bias <= bounds[1]:
        warnings.warn(f"the debiased value {full - bias:.6g} (value {full:.6g} minus its bootstrap bias estimate "
                      f"{bias:.6g}) lies outside the metric's range [{bounds[0]}, {bounds[1]}]: the bias estimate is "
                      "larger than the value itself, i.e. the sets cannot be told apart at this sample size; it is "
                      "reported unclipped, as an estimate", BiasWarning, stacklevel=3)
    return Interval(
        value=float(full), low=float(low), high=float(high), confidence=confidence,
        std=float(scale * thetas.std(ddof=1)) if len(thetas) > 1 else 0.0, bias=bias, debiased=float(full - bias),
        n_boot=len(thetas), round_error=float(round_error),
    )


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
    """
    metrics = tuple(metrics)
    unknown = [m for m in metrics if m != "fid" and m not in KNN_METRICS]
    if unknown or not metrics:
        raise ValueError(f"bootstrap supports 'fid', {', '.join(map(repr, KNN_METRICS))}; got {list(metrics)}")
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"fraction must be in (0, 1), got {fraction}")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    if isinstance(n_boot, bool) or not isinstance(n_boot, (int, np.integer)) or n_boot < 2:
        raise ValueError(f"n_boot must be an integer >= 2, got {n_boot!r}")
    if resample not in ("both", "fake"):
        raise ValueError(f"resample must be 'both' or 'fake', got {resample!r}")
    call = {"call": "bootstrap", "metrics": metrics, "n_boot": n_boot, "fraction": fraction,
            "confidence": confidence, "seed": seed, "k": k, "resample": resample}
    eng = engines.select(real, fake, group=group, engine=engine, progress=progress, call=call)
    fr, ff = eng.sets({"real": real, "fake": fake}, what="bootstrap")
    n_real, n_fake = fr.n, ff.n
    rng = np.random.default_rng(seed)
    m_real = n_real if resample == "fake" else max(2, int(round(fraction * n_real)))
    m_fake = max(2, int(round(fraction * n_fake)))
    real_idx = [np.arange(n_real) if resample == "fake" else np.sort(rng.choice(n_real, m_real, replace=False))
                for _ in range(n_boot)]
    fake_idx = [np.sort(rng.choice(n_fake, m_fake, replace=False)) for _ in range(n_boot)]
    out: dict[str, Interval] = {}
    if "fid" in metrics:
        out["fid"] = _fid_interval(eng, fr, ff, real_idx, fake_idx, resample, fraction, confidence, progress)
    knn = [m for m in metrics if m in KNN_METRICS]
    if knn:
        out_pass, real_r2, info = real_fake_pass(eng, fr, ff, k, fake_radii=True, col_min=True, strict=False)
        full = prdc_values(eng, fr, ff, out_pass, real_r2, info)
        real_draws = None if resample == "fake" else real_idx
        if eng.rounds and not eng.distributed:  # every round from one augmented pass (metrics/rounds.py)
            check_round_k(k, [m_fake] if resample == "fake" else [m_real, m_fake], "real or fake")
            per_round, _ = knn_rounds(eng, fr, ff, k, real_draws, fake_idx, knn,
                                      real_radii2=real_r2 if real_draws is None else None)
        else:
            quiet = engines.select(real, fake, group=group, engine=engine, progress=False, call=call)
            per_round = recomputed_rounds(quiet, fr, ff, k, real_idx, fake_idx, knn, progress)
        for m in knn:
            out[m] = _interval(full[m], np.asarray([r[m] for r in per_round]), fraction, confidence, RANGES[m])
    return out


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
                  progress) -> Interval:
    real_full = stats_of(eng, eng.as_input(fr.local), "real", engine=eng.moments_engine)
    fake_full = stats_of(eng, eng.as_input(ff.local), "fake", engine=eng.moments_engine)
    ref = _Reference(_Side.of(real_full, "real covariance"))
    full = ref.distance(_Side.of(fake_full, "fake covariance"))
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
