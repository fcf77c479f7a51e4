"""A run's self-contained HTML dashboard: the pictures are embedded, so the file can be mailed or archived alone.

Panels: losses, penalties, gradient norms and discriminator health over steps (raw in light, smoothed over
``len / 100`` steps in dark), each evaluated metric with its interval band, the alarms as vertical lines on every
time axis, and a table of the best checkpoint by each metric.
"""

from __future__ import annotations

import base64
import html
import io
import math
import os

import numpy as np

from ganmetrics._io import atomic_write
from ganmetrics.paired import LOWER_IS_BETTER
from ganmetrics.training.log import RunLog, read_log

# beside LOWER_IS_BETTER: what the monitor itself reports
MONITOR_LOWER_IS_BETTER = {"duplicate_share"}
ALARM_COLOURS = {"divergence": "#d62728", "overfitting": "#ff7f0e", "collapse": "#9467bd", "stalled": "#7f7f7f"}


def lower_is_better(metric: str) -> bool:
    return metric in LOWER_IS_BETTER or metric in MONITOR_LOWER_IS_BETTER


def best_evaluation(log: RunLog, metric: str) -> dict | None:
    """The evaluation with the best finite value of ``metric`` (the earliest among equals), or None."""
    sel = [e for e in log.evals if metric in e["metrics"] and math.isfinite(e["metrics"][metric])]
    if not sel:
        return None
    sign = 1 if lower_is_better(metric) else -1
    return min(sel, key=lambda e: (sign * e["metrics"][metric], e["step"]))


def scalar_groups(names: list[str]) -> list[tuple[str, list[str]]]:
    groups = [("losses", [n for n in names if "loss" in n]),
              ("penalties", [n for n in names if n in ("gp", "r1") or "penalty" in n]),
              ("gradient norms", [n for n in names if n.endswith("grad_norm")]),
              ("discriminator health", [n for n in names if n in ("r_t", "d_train_real_acc", "d_heldout_real_acc",
                                                                   "d_accuracy")]),
              ("discriminator scores", [n for n in names if n in ("d_real", "d_fake", "d_heldout")])]
    used = {n for _, g in groups for n in g}
    groups.append(("other scalars", [n for n in names if n not in used]))
    return [(t, g) for t, g in groups if g]


def _png(fig) -> str:
    import matplotlib.pyplot as plt  # an optional heavy dependency

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode()


def _mark_alarms(ax, log: RunLog) -> None:
    for a in log.alarms:
        ax.axvline(a["step"], color=ALARM_COLOURS.get(a["alarm"], "k"), lw=0.8, ls="--", alpha=0.7)


def smooth(v: np.ndarray) -> tuple[int, np.ndarray]:
    """(w, the running mean of v over w = len / 100 values; NaN and Inf counted as 0)."""
    w = max(1, len(v) // 100)
    finite = np.where(np.isfinite(v), v, np.nan)
    if w == 1:
        return w, finite
    kernel = np.ones(w) / w
    return w, np.convolve(np.nan_to_num(finite), kernel, mode="valid")


def figures(log: RunLog) -> list[tuple[str, str]]:
    """(title, base64 PNG) of each panel."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = []
    for title, names in scalar_groups(log.scalar_names()):
        fig, axes = plt.subplots(1, len(names), figsize=(3.6 * len(names), 2.8), squeeze=False)
        for ax, name in zip(axes[0], names):
            steps, v = log.scalar(name)
            w, sm = smooth(v)
            stride = max(1, len(v) // 1500)  # the raw line thinned to what a panel can show
            ax.plot(steps[::stride], v[::stride], lw=0.6, color="#9ecae1")
            if w > 1:
                ax.plot(steps[w - 1:], sm, lw=1.2, color="#08519c")
            _mark_alarms(ax, log)
            ax.set_title(name, fontsize=9)
            ax.set_xlabel("step", fontsize=8)
            if name.endswith("grad_norm") and np.nanmin(np.where(v > 0, v, np.nan), initial=np.inf) < np.inf:
                ax.set_yscale("log")
        fig.tight_layout()
        out.append((title, _png(fig)))
    metrics = log.metric_names()
    if metrics:
        cols = min(4, len(metrics))
        rows = (len(metrics) + cols - 1) // cols
        fig, axes = plt.subplots(rows, cols, figsize=(3.6 * cols, 2.8 * rows), squeeze=False)
        for ax, name in zip(axes.ravel(), metrics):
            steps, v, lo, hi = log.metric(name)
            ax.plot(steps, v, marker="o", ms=3, color="#d94801")
            if np.isfinite(lo).any():
                ax.fill_between(steps, lo, hi, color="#fdae6b", alpha=0.5, lw=0)
            best = best_evaluation(log, name)
            if best is not None:
                ax.plot([best["step"]], [best["metrics"][name]], marker="*", ms=10, color="k")
            _mark_alarms(ax, log)
            ax.set_title(name + (" (lower better)" if lower_is_better(name) else ""), fontsize=9)
            ax.set_xlabel("step", fontsize=8)
        for ax in axes.ravel()[len(metrics):]:
            ax.axis("off")
        fig.tight_layout()
        out.append(("metrics (band: interval; star: best)", _png(fig)))
    return out


def write_dashboard(run: str | os.PathLike, path: str | os.PathLike | None = None) -> str:
    """Write the dashboard of a run folder (default ``RUN/dashboard.html``), atomically; returns its path."""
    log = read_log(run)
    run_dir = os.path.dirname(os.path.abspath(log.path))
    path = os.path.join(run_dir, "dashboard.html") if path is None else os.fspath(path)
    if os.path.abspath(path) == os.path.abspath(log.path):
        raise ValueError(f"path {path} is the run log itself; choose another file")
    title = html.escape(log.label)
    parts = ["<!doctype html><html><head><meta charset='utf-8'>", f"<title>{title}: training</title><style>",
             "body{font-family:sans-serif;max-width:1500px;margin:1.5em auto;padding:0 1em;color:#222}"
             "table{border-collapse:collapse;font-size:13px;margin:.8em 0}td,th{border:1px solid #ccc;"
             "padding:3px 7px;text-align:left}th{background:#f2f2f2}img{max-width:100%}",
             "</style></head><body>", f"<h1>{title}</h1>"]
    last = max(log.steps) if log.steps else None
    parts.append(f"<p>{len(log.steps)} logged steps (last: {last}), {len(log.evals)} evaluations, "
                 f"{len(log.alarms)} alarms" + (", last line of the log incomplete (a killed writer)"
                                                if log.truncated else "") + ".</p>")
    rows = []
    for m in log.metric_names():
        b = best_evaluation(log, m)
        if b is None:
            continue
        iv = b.get("intervals", {}).get(m)
        rows.append(f"<tr><td>{html.escape(m)}</td><td>{b['step']}</td><td>{b['metrics'][m]:.6g}</td><td>"
                    + (f"[{iv[0]:.6g}, {iv[1]:.6g}]" if iv else "") + "</td></tr>")
    if rows:
        parts.append("<h2>Best checkpoint by each metric</h2><table><tr><th>metric</th><th>step</th><th>value</th>"
                     "<th>interval</th></tr>" + "".join(rows) + "</table>")
    if log.alarms:
        parts.append("<h2>Alarms</h2><table><tr><th>step</th><th>alarm</th><th>message</th></tr>" + "".join(
            f"<tr><td>{a['step']}</td><td style='color:{ALARM_COLOURS.get(a['alarm'], '#000')}'>"
            f"{html.escape(a['alarm'])}</td><td>{html.escape(a['message'])}</td></tr>" for a in log.alarms)
            + "</table><p>Dashed lines on the plots mark them (colours as in this table).</p>")
    for name, png in figures(log):
        parts.append(f"<h2>{html.escape(name)}</h2><img alt='{html.escape(name)}' src='data:image/png;base64,{png}'>")
    parts.append("</body></html>")
    with atomic_write(path, "w") as fh:
        fh.write("\n".join(parts))
    return path
