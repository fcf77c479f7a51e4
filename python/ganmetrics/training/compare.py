"""``compare_runs``: several training runs (seeds of a few designs) summarised with across-seed intervals.

Lucic et al. (2018, "Are GANs created equal?") show that one run per design misleads: the spread over seeds is
often larger than the differences between designs. For each design (the runs sharing a label) and metric this
reports the value at each run's best evaluation and at its final one: the mean over the runs, their standard
deviation and Student's t interval for the mean. For each pair of designs evaluated against the same reference
(same fingerprint): the difference of the means with Welch's t interval and, when both hold the same seeds,
the paired t interval of the per-seed differences (the seeds' question -- "is design A better?" -- answered
with an interval that the shared seed noise does not widen).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np

from ganmetrics._io import atomic_write
from ganmetrics.training.dashboard import best_evaluation, lower_is_better
from ganmetrics.training.log import RunLog, read_log


def t_quantile(p: float, df: float) -> float:
    from scipy import stats  # an optional heavy dependency (the training extra)

    return float(stats.t.ppf(p, df))


@dataclass(frozen=True)
class Summary:
    """One design's value of one metric at ``at`` ("best" or "final") over its runs."""

    label: str
    metric: str
    at: str
    values: tuple
    mean: float
    std: float
    low: float
    high: float
    confidence: float

    @property
    def n(self) -> int:
        return len(self.values)


@dataclass(frozen=True)
class PairComparison:
    """``a - b`` for one metric at ``at``: the means' difference with Welch's interval, and with ``paired`` the
    per-seed differences' mean and paired t interval."""

    a: str
    b: str
    metric: str
    at: str
    difference: float
    low: float
    high: float
    paired: bool
    better: str | None  # the design whose interval says it is better, or None when the interval holds 0


def _t_interval(values: np.ndarray, confidence: float) -> tuple[float, float, float, float]:
    mean = float(values.mean())
    if len(values) < 2:
        return mean, math.nan, math.nan, math.nan
    std = float(values.std(ddof=1))
    half = t_quantile(0.5 + confidence / 2, len(values) - 1) * std / math.sqrt(len(values))
    return mean, std, mean - half, mean + half


def welch_interval(a: np.ndarray, b: np.ndarray, confidence: float) -> tuple[float, float, float]:
    """Mean of a minus mean of b, with Welch's t interval (Welch-Satterthwaite degrees of freedom)."""
    d = float(a.mean() - b.mean())
    va, vb = a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)
    se = math.sqrt(va + vb)
    if se == 0:
        return d, d, d
    df = (va + vb) ** 2 / (va ** 2 / (len(a) - 1) + vb ** 2 / (len(b) - 1))
    half = t_quantile(0.5 + confidence / 2, df) * se
    return d, d - half, d + half


@dataclass
class RunComparison:
    """What :func:`compare_runs` returns: ``summaries`` (per design, metric, best/final), ``pairs``, ``runs``
    (label -> logs) and ``notes`` (what could not be compared, and why)."""

    runs: dict
    summaries: list = field(default_factory=list)
    pairs: list = field(default_factory=list)
    notes: list = field(default_factory=list)
    confidence: float = 0.95

    def summary(self, label: str, metric: str, at: str = "best") -> Summary:
        for s in self.summaries:
            if (s.label, s.metric, s.at) == (label, metric, at):
                return s
        raise KeyError(f"no summary for {label!r}, {metric!r} at {at!r}")

    def to_markdown(self) -> str:
        level = round(100 * self.confidence)
        lines = [f"| design | metric | at | runs | mean | std | {level} % interval |", "|---|---|---|---|---|---|---|"]
        for s in self.summaries:
            iv = f"[{s.low:.5g}, {s.high:.5g}]" if math.isfinite(s.low) else "(one run)"
            std = f"{s.std:.3g}" if math.isfinite(s.std) else ""
            lines.append(f"| {s.label} | {s.metric} | {s.at} | {s.n} | {s.mean:.5g} | {std} | {iv} |")
        if self.pairs:
            lines += ["", f"| a - b | metric | at | difference | {level} % interval | method | better |",
                      "|---|---|---|---|---|---|---|"]
            for p in self.pairs:
                lines.append(f"| {p.a} - {p.b} | {p.metric} | {p.at} | {p.difference:.5g} | [{p.low:.5g}, "
                             f"{p.high:.5g}] | {'paired by seed' if p.paired else 'Welch'} | {p.better or 'neither'} |")
        lines += [f"\n{n}" for n in self.notes]
        return "\n".join(lines)


def _groups(runs: Sequence[Any] | Mapping[str, Sequence[Any]]) -> dict[str, list[RunLog]]:
    if isinstance(runs, Mapping):
        out = {str(k): [read_log(r) for r in v] for k, v in runs.items()}
    else:
        if isinstance(runs, (str, os.PathLike)):
            raise TypeError("runs must be a list of run folders (or a mapping label -> folders), not one path")
        out = {}
        for r in runs:
            log = read_log(r)
            out.setdefault(log.label, []).append(log)
    if not out or not any(out.values()):
        raise ValueError("compare_runs needs at least one run")
    for label, logs in out.items():
        empty = [g.path for g in logs if not g.evals]
        if empty:
            raise ValueError(f"run(s) {empty} of {label!r} hold no evaluation")
    return out


def _value_at(log: RunLog, metric: str, at: str) -> float | None:
    if at == "best":
        e = best_evaluation(log, metric)
        return None if e is None else e["metrics"][metric]
    sel = [e for e in log.evals if metric in e["metrics"]]
    return max(sel, key=lambda e: e["step"])["metrics"][metric] if sel else None


def compare_runs(runs: Sequence[Any] | Mapping[str, Sequence[Any]], metrics: Sequence[str] | None = None, *,
                 confidence: float = 0.95, plot: str | os.PathLike | None = None) -> RunComparison:
    """Summarise training runs (see the module doc). ``runs``: run folders (grouped into designs by the label
    their monitor recorded) or a mapping design -> run folders. ``metrics``: default, every metric all runs
    evaluated. ``plot``: also write one PNG overlaying every run's metrics over steps, a colour per design."""
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence!r}")
    groups = _groups(runs)
    every = [g for logs in groups.values() for g in logs]
    common = set.intersection(*(set(g.metric_names()) for g in every))
    if metrics is None:
        metrics = sorted(common)
    else:
        missing = sorted(set(metrics) - common)
        if missing:
            raise ValueError(f"metrics {missing} are not evaluated in every run")
    out = RunComparison(groups, confidence=confidence)
    values: dict[tuple, dict] = {}
    for label, logs in groups.items():
        for m in metrics:
            for at in ("best", "final"):
                per_run = [(g.seed, _value_at(g, m, at)) for g in logs]
                bad = [g.path for g, (_, v) in zip(logs, per_run) if v is None or not math.isfinite(v)]
                if bad:
                    raise ValueError(f"{m} has no finite value at the {at} evaluation of run(s) {bad}")
                vals = np.array([v for _, v in per_run], dtype=np.float64)
                values[(label, m, at)] = per_run
                mean, std, lo, hi = _t_interval(vals, confidence)
                out.summaries.append(Summary(label, m, at, tuple(vals.tolist()), mean, std, lo, hi, confidence))
    labels = list(groups)
    for i, a in enumerate(labels):
        for b in labels[i + 1:]:
            refs = {g.reference for g in groups[a] + groups[b]}
            if len(refs) != 1 or None in refs:
                out.notes.append(f"{a} and {b} were not all evaluated against one reference: not compared.")
                continue
            seeds_a, seeds_b = [g.seed for g in groups[a]], [g.seed for g in groups[b]]
            paired = (None not in seeds_a and len(set(seeds_a)) == len(seeds_a) >= 2
                      and sorted(seeds_a) == sorted(seeds_b))
            if not paired and (len(seeds_a) < 2 or len(seeds_b) < 2):
                out.notes.append(f"{a} and {b}: an interval needs two runs of each (or the same seeds in both).")
                continue
            for m in metrics:
                for at in ("best", "final"):
                    va, vb = values[(a, m, at)], values[(b, m, at)]
                    if paired:
                        by_seed = dict(vb)
                        diffs = np.array([v - by_seed[s] for s, v in sorted(va)], dtype=np.float64)
                        d, _, lo, hi = _t_interval(diffs, confidence)
                    else:
                        d, lo, hi = welch_interval(np.array([v for _, v in va]), np.array([v for _, v in vb]),
                                                   confidence)
                    better = None
                    if lo > 0 or hi < 0:
                        a_larger = lo > 0
                        better = (b if a_larger else a) if lower_is_better(m) else (a if a_larger else b)
                    out.pairs.append(PairComparison(a, b, m, at, d, lo, hi, paired, better))
    if plot is not None:
        _overlay(groups, metrics, os.fspath(plot))
    return out


def _overlay(groups: dict[str, list[RunLog]], metrics: Sequence[str], path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cols = min(4, len(metrics))
    rows = (len(metrics) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(3.8 * cols, 3 * rows), squeeze=False)
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for ax, m in zip(axes.ravel(), metrics):
        for i, (label, logs) in enumerate(groups.items()):
            for j, g in enumerate(logs):
                steps, v, lo, hi = g.metric(m)
                ax.plot(steps, v, color=colours[i % len(colours)], lw=1, alpha=0.8, label=label if j == 0 else None)
        ax.set_title(m + (" (lower better)" if lower_is_better(m) else ""), fontsize=9)
        ax.set_xlabel("step", fontsize=8)
    for ax in axes.ravel()[len(metrics):]:
        ax.axis("off")
    axes[0, 0].legend(fontsize=8)
    with atomic_write(path) as fh:
        fig.savefig(fh, format="png", dpi=100, bbox_inches="tight")
    plt.close(fig)
