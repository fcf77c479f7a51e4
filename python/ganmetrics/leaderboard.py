"""Many generators against one reference: a leaderboard with confidence intervals, and paired comparisons.

:func:`evaluate_many` evaluates every generator against a :class:`~ganmetrics.reference.Reference` (the real
side computed once) and attaches to FID and the k-NN metrics the half-sampling interval of
:mod:`ganmetrics.metrics.bootstrap` with the real set held fixed, as a benchmark table holds its reference
fixed: each round subsamples the generated set only, so every round reuses the factored real covariance and
the real k-NN radii. The interval therefore covers the variation from the generated samples.

:func:`~ganmetrics.paired.compare` asks whether generator A beats generator B with a paired bootstrap; the
leaderboard runs it between neighbours in the ranking and marks which are distinguishable at the stated level.
"""

from __future__ import annotations

import csv
import html
import io
import json
import os
from dataclasses import asdict, dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np

from ganmetrics import __version__
from ganmetrics._arrays import Features
from ganmetrics._io import atomic_write
from ganmetrics._progress import steps
from ganmetrics.metrics.bootstrap import Interval, check_interval_args
from ganmetrics.metrics.delta import GeneratorTerms, by_delta
from ganmetrics.paired import INTERVAL_METRICS, LOWER_IS_BETTER, Comparison, _better_key, _delta_comparison, compare
from ganmetrics.reference import Reference
from ganmetrics.report import check_metrics

# ---------------------------------------------------------------------------------------------- leaderboard
@dataclass
class Entry:
    name: str
    values: dict[str, float]
    intervals: dict[str, Interval] = field(default_factory=dict)


@dataclass
class Leaderboard:
    """One row per generator (``entries``, best first by ``sort``), each metric with its interval, and for each
    neighbouring pair in the ranking the paired comparison on ``sort`` (``neighbours``)."""

    entries: list[Entry]
    sort: str
    confidence: float
    metrics: list[str]
    neighbours: list[tuple[str, str, Comparison | None]]  # None: a side given as statistics, not compared
    info: dict

    def _cell(self, e: Entry, m: str) -> str:
        if m not in e.values:
            return ""
        iv = e.intervals.get(m)
        return f"{e.values[m]:.4g}" + (f" [{iv.low:.4g}, {iv.high:.4g}]" if iv else "")

    def _mark(self, i: int) -> str:
        """'>' when entry i is distinguishably better than entry i + 1, '~' when not."""
        if i >= len(self.neighbours) or self.neighbours[i][2] is None:
            return ""
        return ">" if self.neighbours[i][2].distinguishable else "~"

    def to_markdown(self) -> str:
        head = ["rank", "generator", *self.metrics, f"vs next ({self.sort})"]
        lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for i, e in enumerate(self.entries):
            lines.append("| " + " | ".join([str(i + 1), e.name, *(self._cell(e, m) for m in self.metrics),
                                           self._mark(i)]) + " |")
        level = int(round(self.confidence * 100))
        lines += ["", f"Intervals: {level} % half-sampling bootstrap of the generated set (real set fixed). "
                      f"'>': better than the next generator at {level} % (paired bootstrap over the real set, "
                      "interval of the difference excludes 0); '~': not distinguishable."]
        return "\n".join(lines)

    def to_csv(self) -> str:
        buf = io.StringIO()
        w = csv.writer(buf)
        cols = []
        for m in self.metrics:
            cols += [m, f"{m}_low", f"{m}_high"]
        w.writerow(["rank", "generator", *cols, "better_than_next", "prob_better_than_next"])
        for i, e in enumerate(self.entries):
            row = [i + 1, e.name]
            for m in self.metrics:
                iv = e.intervals.get(m)
                row += [e.values.get(m, ""), iv.low if iv else "", iv.high if iv else ""]
            nb = self.neighbours[i][2] if i < len(self.neighbours) else None
            row += [("yes" if nb.distinguishable else "no") if nb else "", nb.prob_a_better if nb else ""]
            w.writerow(row)
        return buf.getvalue()

    def to_dict(self) -> dict:
        return {
            "sort": self.sort, "confidence": self.confidence, "metrics": self.metrics, "info": self.info,
            "entries": [{"rank": i + 1, "name": e.name, "values": e.values,
                         "intervals": {m: asdict(iv) for m, iv in e.intervals.items()}}
                        for i, e in enumerate(self.entries)],
            "neighbours": [{"a": a, "b": b, **(asdict(c) if c else {}),
                            "distinguishable": c.distinguishable if c else None} for a, b, c in self.neighbours],
        }

    def to_json(self, **kwargs: Any) -> str:
        return json.dumps(self.to_dict(), indent=kwargs.pop("indent", 2), **kwargs)

    def plot(self, path: str, order: Sequence[str] | None = None, lines: bool = False) -> str:
        """Each metric with its interval across the generators (in ``order``, default: as given to
        evaluate_many), one panel per metric, every panel naming the generators on its axis, saved as PNG. Points
        only, unless ``lines``: the generators are checkpoints of one run, in training order, joined by lines."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        by_name = {e.name: e for e in self.entries}
        names = list(order or self.info["order"])
        fig, axes = plt.subplots(len(self.metrics), 1, figsize=(max(4.0, 0.7 * len(names) + 2), 2.8 * len(self.metrics)),
                                 squeeze=False, sharex=True)
        x = np.arange(len(names))
        for ax, m in zip(axes[:, 0], self.metrics):
            vals = np.array([by_name[n].values.get(m, np.nan) for n in names], dtype=float)
            lo = np.array([by_name[n].intervals[m].low if m in by_name[n].intervals else v for n, v in zip(names, vals)])
            hi = np.array([by_name[n].intervals[m].high if m in by_name[n].intervals else v for n, v in zip(names, vals)])
            ax.errorbar(x, vals, yerr=[vals - lo, hi - vals], fmt="o-" if lines else "o", capsize=3)
            ax.set_ylabel(m + (" (lower better)" if m in LOWER_IS_BETTER else ""))
            ax.grid(alpha=0.3)
            ax.set_xticks(x)
            ax.set_xticklabels(names, rotation=30, ha="right", fontsize=8)
            ax.tick_params(labelbottom=True)
        fig.tight_layout()
        try:
            with atomic_write(path) as fh:
                fig.savefig(fh, format=os.fspath(path).rsplit(".", 1)[-1].lower() or "png", dpi=110)
        finally:
            plt.close(fig)
        return path

    def to_html(self, folder: str, lines: bool = False) -> str:
        """``folder/index.html`` (the table and the plot) and ``folder/metrics.png`` (``lines``: see :meth:`plot`).
        Returns the page's path."""
        os.makedirs(folder, exist_ok=True)
        self.plot(os.path.join(folder, "metrics.png"), lines=lines)
        rows = []
        for i, e in enumerate(self.entries):
            cells = "".join(f"<td>{html.escape(self._cell(e, m))}</td>" for m in self.metrics)
            rows.append(f"<tr><td>{i + 1}</td><td>{html.escape(e.name)}</td>{cells}<td>{self._mark(i)}</td></tr>")
        head = "".join(f"<th>{html.escape(m)}</th>" for m in self.metrics)
        level = int(round(self.confidence * 100))
        page = (
            "<!doctype html><html><head><meta charset='utf-8'><title>ganmetrics leaderboard</title>"
            "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
            "td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}</style></head><body>"
            f"<h1>Leaderboard ({len(self.entries)} generators, sorted by {html.escape(self.sort)})</h1>"
            f"<table><tr><th>rank</th><th>generator</th>{head}<th>vs next</th></tr>{''.join(rows)}</table>"
            f"<p>Intervals: {level} % half-sampling bootstrap of each generated set against the fixed reference "
            f"({self.info['n_real']} real samples). '&gt;': better than the next generator at {level} % by a paired "
            "bootstrap that resamples the real set jointly for both; '~': not distinguishable.</p>"
            "<img src='metrics.png' alt='each metric with its interval across generators'>"
            f"<p>ganmetrics {html.escape(str(self.info.get('ganmetrics_version', '')))}</p></body></html>")
        path = os.path.join(folder, "index.html")
        with atomic_write(path, "w") as fh:
            fh.write(page)
        return path


def evaluate_many(ref: Reference, fakes: Mapping[str, Any] | Sequence[Any], metrics: Sequence[str] | None = None, *,
                  sort: str | None = None, n_boot: int = 50, fraction: float = 0.5, confidence: float = 0.95,
                  seed: int = 0, k: int | None = None, compare_neighbours: bool = True, force: bool = False,
                  progress: bool | None = None, fid_method: str = "auto", **image_kw: Any) -> Leaderboard:
    """Every generator in ``fakes`` (a dict name -> features/images, or a list: named "0", "1", ...) against
    ``ref``; ``n_boot=0`` skips the intervals and comparisons. ``sort``: the ranking metric (default the
    first of ``metrics``). ``fid_method``: FID's intervals and comparisons by the delta method or half-sampling
    (see :func:`ganmetrics.bootstrap`); with intervals on, the k-NN values and their rounds share one pass."""
    named = dict(fakes) if isinstance(fakes, Mapping) else {str(i): f for i, f in enumerate(fakes)}
    if not named:
        raise ValueError("fakes is empty")
    metrics = check_metrics(ref.metrics if metrics is None else metrics)
    sort = sort or metrics[0]
    if sort not in metrics:
        raise ValueError(f"sort={sort!r} is not one of the metrics {metrics}")
    k = ref.k if k is None else int(k)
    check_interval_args(n_boot, fraction, confidence, fid_method, allow_zero=True)
    boot = n_boot > 0
    image_kw = dict(image_kw)  # the extractor built for the first image input serves the others
    entries, feats, terms = [], {}, {}
    for name, fake in steps(named.items(), len(named), "evaluating generators", unit="generators", progress=progress):
        stats = ref._fake_stats(fake, force)
        if stats is not None:  # a statistics file: FID without an interval (resampling needs the features)
            entries.append(Entry(name, dict(ref._evaluate_stats(stats, metrics, k, seed))))
            continue
        ref._require(metrics, k)
        ff = ref._fake(fake, force, image_kw, progress)
        feats[name] = ff
        rep = ref._evaluate_features(ff, metrics, k, seed=seed, progress=progress, n_boot=n_boot, fraction=fraction,
                                     confidence=confidence, fid_method=fid_method, name=name, terms=terms)
        entries.append(Entry(name, dict(rep), rep.intervals))
    key = _better_key(sort)
    entries.sort(key=lambda e: key(e.values[sort]))
    neighbours = []
    if boot and compare_neighbours and sort in INTERVAL_METRICS and ref.features is not None:
        for a, b in zip(entries, entries[1:]):
            if a.name not in feats or b.name not in feats:
                neighbours.append((a.name, b.name, None))
                continue
            neighbours.append((a.name, b.name, _neighbours(ref, a, b, feats, terms, n_boot, fraction, confidence, seed,
                                                           k, fid_method, sort)))
    info = {"n_real": ref.n, "n_boot": n_boot, "fraction": fraction, "k": k, "order": list(named),
            "fid_method": fid_method, "feature_extractor": ref.feature_extractor, "ganmetrics_version": __version__}
    return Leaderboard(entries, sort, confidence, metrics, neighbours, info)


def _neighbours(ref: Reference, a: Entry, b: Entry, feats: dict[str, Features], terms: dict[str, GeneratorTerms],
                n_boot: int, fraction: float, confidence: float, seed: int, k: int, fid_method: str,
                sort: str) -> Comparison:
    """The paired comparison of two neighbours in the ranking on ``sort`` (FID by the delta method from the terms
    the generators' intervals already computed, where it applies)."""
    if sort == "fid":
        found = by_delta(fid_method, lambda: _delta_comparison(terms[a.name], terms[b.name],
                                                               [a.values["fid"], b.values["fid"]], confidence, True))
        if found is not None:
            return found
    return compare(ref, feats[a.name], feats[b.name], sort, n_boot=n_boot, fraction=fraction, confidence=confidence,
                   seed=seed, k=k, progress=False, fid_method="half-sampling")
