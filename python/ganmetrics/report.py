"""``evaluate``: many metrics in one call, sharing statistics and k-NN radii, returned as a Report."""

from __future__ import annotations

import json
import time
from dataclasses import asdict
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from ganmetrics._arrays import as_features
from ganmetrics._image_inputs import accepts_images
from ganmetrics.engines import HostEngine, check_same_dim
from ganmetrics.metrics.bootstrap import Interval, check_interval_args, interval_note, round_sizes, sample_intervals
from ganmetrics.metrics.frechet import _Side, stats_distance, warn_small
from ganmetrics.metrics.kernel import kid
from ganmetrics.metrics.detectability import c2st
from ganmetrics.metrics.knn import nn1_accuracy, prdc_features
from ganmetrics.metrics.novelty import alpha_precision, authpct, memorization
from ganmetrics.metrics.prd import prd
from ganmetrics.metrics.vendi import vendi
from ganmetrics.stats import FeatureStats

KNOWN = ("fid", "kid", "precision", "recall", "density", "coverage", "nn1_accuracy", "vendi", "prd", "memorization",
         "authpct", "alpha_precision", "beta_recall", "authenticity", "c2st")
# the table's names for alpha_precision's integrated scores
ALPHA_BETA = {"alpha_precision": "delta_precision_alpha", "beta_recall": "delta_recall_beta",
              "authenticity": "authenticity"}
DEFAULT_METRICS = ("fid", "kid", "precision", "recall", "density", "coverage")


class Report(dict):
    """Metric name -> value (floats; ``kid_std``, ``prd_f8``/``prd_f1_8`` beside their metric).

    ``intervals``: metric -> :class:`~ganmetrics.metrics.bootstrap.Interval` for FID and the k-NN metrics
    (empty with ``n_boot=0``). ``info`` holds timings and settings. ``to_json()`` and ``to_markdown()`` render it.
    """

    def __init__(self, values: dict, info: dict, intervals: dict[str, Interval] | None = None):
        super().__init__(values)
        self.info = info
        self.intervals = dict(intervals or {})

    def to_json(self, **kwargs) -> str:
        return json.dumps({"metrics": dict(self), "intervals": {m: asdict(iv) for m, iv in self.intervals.items()},
                           "info": self.info}, indent=kwargs.pop("indent", 2), **kwargs)

    def to_markdown(self) -> str:
        if not self.intervals:
            lines = ["| metric | value |", "|---|---|"]
            lines += [f"| {k} | {v:.6g} |" for k, v in self.items()]
        else:
            level = round(100 * next(iter(self.intervals.values())).confidence)
            lines = [f"| metric | value | {level} % interval |", "|---|---|---|"]
            for key, v in self.items():
                iv = self.intervals.get(key)
                lines.append(f"| {key} | {v:.6g} | " + (f"[{iv.low:.6g}, {iv.high:.6g}] |" if iv else " |"))
            lines += ["", f"Intervals: {self.info['intervals']}."]
        if "kid_estimate" in self.info:
            lines += ["", f"KID: {self.info['kid_estimate']}."]
        return "\n".join(lines)


@accepts_images("real", "fake")
def evaluate(
    real: Any, fake: Any, metrics: Sequence[str] = DEFAULT_METRICS, *, k: int = 5, seed: int = 0,
    kid_subsets: int | None = 100, kid_subset_size: int | None = None, kid_seed: int = 2020,
    progress: bool | None = None, n_boot: int = 50, fraction: float = 0.5, confidence: float = 0.95,
    fid_method: str = "auto",
) -> Report:
    """Compute several metrics between two feature sets, doing shared work once.

    ``metrics`` from: fid, kid, precision, recall, density, coverage, nn1_accuracy, vendi (of
    the fake set), prd; the novelty metrics memorization (the share of copies, :func:`ganmetrics.memorization`)
    and authpct, which read ``real`` as the generator's training set; alpha_precision, beta_recall and
    authenticity (:func:`ganmetrics.alpha_precision`'s integrated scores); c2st (the accuracy of
    :func:`ganmetrics.c2st`, seeded by ``seed``, with ``c2st_auc`` beside it; its permutation p-value is that
    function's). The four k-NN metrics share one set of radii and one cross pass. KID follows
    :func:`ganmetrics.kid` (subsets of 1000, or of the smaller set's size; computed once over the full
    sets, with a warning, when the subsets would cover both whole sets); ``info["kid_estimate"]`` says
    which estimate was made. FID warns (SmallSampleWarning) when a set has n <= d samples.
    ``progress``: bars for the slow steps on a terminal (None), never (False) or always (True).

    Intervals: FID and the k-NN metrics come with the intervals of :func:`ganmetrics.bootstrap` (both sets
    resampled, ``n_boot`` rounds of a ``fraction`` of each, seeded by ``seed``; FID by ``fid_method``) in
    ``Report.intervals``, equal to that function's; the k-NN values and their rounds share one augmented pass, so
    they cost about a quarter more than the values alone. ``n_boot=0``: values only. Sets too small for a round
    to hold k + 1 samples get the k-NN values without intervals, and ``info["intervals"]`` says so.
    """
    check_metrics(metrics)
    check_interval_args(n_boot, fraction, confidence, fid_method, allow_zero=True)
    fr, ff = as_features(real, "real", min_rows=2), as_features(fake, "fake", min_rows=2)
    skipped: list[str] = []

    def source(fid_value, stats, knn):
        eng = HostEngine(progress=progress)
        sr, sf = eng.sets({"real": fr, "fake": ff})
        if knn and min(round_sizes(fr.n, ff.n, fraction, "both")) <= k:
            skipped.extend(knn)  # a round could not hold k + 1 samples: the values without intervals
            knn = []
        names = (["fid"] if stats is not None else []) + knn
        if not names:
            return {}, {}
        return sample_intervals(eng, sr, sf, names, n_boot=n_boot, fraction=fraction, confidence=confidence,
                                seed=seed, k=k, resample="both", fid_method=fid_method, progress=progress,
                                stats=stats, fid_value=fid_value)
    rep = _evaluate(fr, ff, metrics, k=k, seed=seed, kid_subsets=kid_subsets, kid_subset_size=kid_subset_size,
                    kid_seed=kid_seed, progress=progress, intervals=source if n_boot else None)
    if n_boot:
        rep.info["intervals"] = interval_note(rep.intervals, n_boot, fraction, "both sets resampled", skipped, k)
    return rep


def check_metrics(metrics: Sequence[str] | str) -> list[str]:
    """Metric names, deduplicated in order; a string is one name or a comma-separated list (never its letters)."""
    if isinstance(metrics, str):
        metrics = [m.strip() for m in metrics.split(",") if m.strip()]
    else:
        try:
            metrics = list(metrics)
        except TypeError:
            raise TypeError(f"metrics must be metric names (strings), got {metrics!r}") from None
        if not all(isinstance(m, str) for m in metrics):
            raise TypeError(f"metrics must be metric names (strings), got {metrics!r}")
    metrics = list(dict.fromkeys(metrics))
    if not metrics:
        raise ValueError("metrics names no metric")
    unknown = [m for m in metrics if m not in KNOWN]
    if unknown:
        raise ValueError(f"unknown metric(s) {unknown}; choose from {list(KNOWN)}")
    return metrics


def _evaluate(fr, ff, metrics: Sequence[str], *, k: int, seed: int, kid_subsets, kid_subset_size, kid_seed: int,
              progress: bool | None, real_stats: FeatureStats | None = None, fd_reference=None,
              real_radii2: np.ndarray | None = None, intervals: IntervalSource | None = None) -> Report:
    """``evaluate`` on validated features; a saved reference passes what it holds of the real side (its
    statistics, the factored Fréchet reference, its exact squared k-NN radii) and that work is skipped.
    ``intervals``: called once, after FID, with FID's value and the two sets' statistics (None without FID) and
    the k-NN metrics asked for; it returns their values (computed with their rounds) and the intervals."""
    metrics = check_metrics(metrics)
    if fr is not None:
        check_same_dim(fr, ff)
    values: dict[str, float] = {}
    timings: dict[str, float] = {}

    def timed(name, fn):
        t0 = time.perf_counter()
        out = fn()
        timings[name] = round(time.perf_counter() - t0, 4)
        return out

    stats: tuple[FeatureStats, FeatureStats] | None = None
    if "fid" in metrics:
        def _fid():
            a = real_stats if real_stats is not None else FeatureStats.from_features(fr, progress=progress)
            b = FeatureStats.from_features(ff, progress=progress)
            warn_small(a, "real")
            warn_small(b, "fake")
            if fd_reference is not None:
                return (a, b), fd_reference.distance(_Side.of(b, "fake covariance"))
            return (a, b), stats_distance(a, b)

        stats, values["fid"] = timed("fid", _fid)
    knn = [m for m in ("precision", "recall", "density", "coverage") if m in metrics]
    knn_values: dict[str, float] = {}
    found: dict[str, Interval] = {}
    if intervals is not None and (knn or stats is not None):
        knn_values, found = timed("intervals", lambda: intervals(values.get("fid"), stats, knn))
    if "kid" in metrics:
        res = timed("kid", lambda: kid(fr, ff, subsets=kid_subsets, subset_size=kid_subset_size, seed=kid_seed,
                                              progress=progress))
        values["kid"] = res.mean
        if res.std is not None:
            values["kid_std"] = res.std
            kid_estimate = f"mean over {res.subsets} subsets of {res.subset_size} per side (seed {kid_seed})"
        else:
            kid_estimate = f"unbiased estimate over the full sets ({fr.n} real, {ff.n} fake); no subset spread"
    if knn_values:
        values.update(knn_values)
    elif knn:
        res = timed("prdc", lambda: prdc_features(fr, ff, k, progress=progress, real_radii2=real_radii2))
        values.update({m: res[m] for m in knn})
    if "nn1_accuracy" in metrics:
        values["nn1_accuracy"] = timed("nn1_accuracy", lambda: nn1_accuracy(fr, ff, progress=progress).accuracy)
    if "memorization" in metrics:
        values["memorization"] = timed("memorization", lambda: memorization(fr, ff, progress=progress).fraction)
    if "authpct" in metrics:
        values["authpct"] = timed("authpct", lambda: authpct(fr, ff, progress=progress).authpct)
    ab = [m for m in ALPHA_BETA if m in metrics]
    if ab:
        res = timed("alpha_precision", lambda: alpha_precision(fr, ff, progress=progress))
        values.update({m: res[ALPHA_BETA[m]] for m in ab})
    if "c2st" in metrics:
        res = timed("c2st", lambda: c2st(fr, ff, permutations=0, seed=seed, progress=progress))
        values["c2st"], values["c2st_auc"] = res.accuracy, res.auc
    if "vendi" in metrics:
        values["vendi"] = timed("vendi", lambda: vendi(ff))
    if "prd" in metrics:
        res = timed("prd", lambda: prd(fr, ff, enforce_balance=False, seed=seed, progress=progress))
        values["prd_f8"], values["prd_f1_8"] = res.f8, res.f1_8
    n_real = real_stats.n if real_stats is not None else fr.n
    info = {"n_real": n_real, "n_fake": ff.n, "dim": ff.dim, "k": k, "seed": seed, "seconds": timings,
            "engine": "host"}
    if "kid" in metrics:
        info["kid_estimate"] = kid_estimate
    return Report(values, info, found)


# (FID's value, the sets' statistics, the k-NN metrics asked for) -> (their values, the intervals)
IntervalSource = Callable[[Optional[float], Optional[Tuple[FeatureStats, FeatureStats]], List[str]],
                          Tuple[Dict[str, float], Dict[str, Interval]]]
