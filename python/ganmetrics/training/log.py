"""A training run's log: append-only JSON Lines, one record per line, written with one ``write`` call each.

Records (every one a JSON object with a ``kind``):

* ``run``: written when a monitor opens the log (version, start time, metrics, label, seed, the reference's
  fingerprint); a resumed run appends another.
* ``step``: ``step`` and the scalars logged at it (``g_loss``, ``d_loss``, ``r_t``, ...).
* ``eval``: ``step``, ``metrics`` (name -> value), ``intervals`` (name -> [low, high]), ``confidence``,
  ``n_samples``, ``seconds``.
* ``alarm``: ``step``, ``alarm`` (its kind), ``message``, ``value``, ``threshold``.

A process killed mid-write leaves at most its last line incomplete; :func:`read_log` drops such a last line
(and says so in ``RunLog.truncated``) but refuses a damaged line anywhere else, naming the file and line.
"""

from __future__ import annotations

import csv
import json
import math
import os
import threading
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ganmetrics._io import atomic_write

LOG_NAME = "log.jsonl"
KINDS = ("run", "step", "eval", "alarm")


def _plain(v: Any) -> Any:
    """JSON-ready: numpy scalars and 0-d tensors to Python numbers; NaN and Inf as strings JSON can hold."""
    if hasattr(v, "item") and getattr(v, "ndim", getattr(v, "dim", lambda: 0)) in (0, ()):
        v = v.item()
    if isinstance(v, (bool, np.bool_)):
        return bool(v)
    if isinstance(v, (int, np.integer)):
        return int(v)
    if isinstance(v, (float, np.floating)):
        v = float(v)
        return v if math.isfinite(v) else ("nan" if math.isnan(v) else ("inf" if v > 0 else "-inf"))
    if isinstance(v, dict):
        return {str(k): _plain(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    if v is None or isinstance(v, str):
        return v
    raise TypeError(f"cannot log a {type(v).__name__}: log numbers, strings, lists or dicts of them")


def _number(v: Any) -> Any:
    if isinstance(v, str) and v in ("nan", "inf", "-inf"):
        return float(v)
    if isinstance(v, dict):
        return {k: _number(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_number(x) for x in v]
    return v


class LogWriter:
    """Appends records to ``path`` (created with its folder); thread-safe; each record is one ``os.write`` of
    one line on a file opened with O_APPEND, so a killed process leaves whole lines behind."""

    def __init__(self, path: str):
        folder = os.path.dirname(os.path.abspath(path))
        os.makedirs(folder, exist_ok=True)
        if os.path.exists(path) and not os.path.isfile(path):
            raise ValueError(f"the run log {path} exists and is not a file")
        self.path = path
        self._lock = threading.Lock()
        self._fd: int | None = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        if os.fstat(self._fd).st_size:
            self._end_partial_line()

    def _end_partial_line(self) -> None:
        """A previous process killed mid-line: end that line so the next record starts on its own."""
        with open(self.path, "rb") as fh:
            fh.seek(-1, os.SEEK_END)
            if fh.read(1) != b"\n":
                os.write(self._fd, b"\n")

    def write(self, record: dict) -> None:
        if record.get("kind") not in KINDS:
            raise ValueError(f"a log record's kind must be one of {KINDS}, got {record.get('kind')!r}")
        line = (json.dumps(_plain(record), separators=(",", ":"), allow_nan=False) + "\n").encode()
        with self._lock:
            if self._fd is None:
                raise ValueError(f"the run log {self.path} is closed")
            os.write(self._fd, line)

    def close(self) -> None:
        with self._lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None


@dataclass
class RunLog:
    """A run's records, read back: ``runs`` (headers), ``steps`` (step -> scalars), ``evals`` (in order),
    ``alarms``; ``truncated``: the last line was incomplete (a killed writer) and was left out."""

    path: str
    runs: list = field(default_factory=list)
    steps: dict = field(default_factory=dict)
    evals: list = field(default_factory=list)
    alarms: list = field(default_factory=list)
    truncated: bool = False

    @property
    def label(self) -> str:
        for r in reversed(self.runs):
            if r.get("label"):
                return str(r["label"])
        return os.path.basename(os.path.dirname(os.path.abspath(self.path)))

    @property
    def seed(self) -> Any:
        return next((r["seed"] for r in reversed(self.runs) if r.get("seed") is not None), None)

    @property
    def reference(self) -> Any:
        return next((r["reference"] for r in reversed(self.runs) if r.get("reference")), None)

    def scalar(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """(steps, values) of one logged scalar, in step order."""
        pairs = sorted((s, v[name]) for s, v in self.steps.items() if name in v)
        return (np.array([p[0] for p in pairs], dtype=np.int64), np.array([p[1] for p in pairs], dtype=np.float64))

    def scalar_names(self) -> list[str]:
        return sorted({k for v in self.steps.values() for k in v})

    def metric(self, name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(steps, values, lows, highs) of one evaluated metric (NaN bounds where no interval was computed)."""
        sel = sorted((e for e in self.evals if name in e["metrics"]), key=lambda e: e["step"])
        iv = [e.get("intervals", {}).get(name, [math.nan, math.nan]) for e in sel]
        return (np.array([e["step"] for e in sel], dtype=np.int64),
                np.array([e["metrics"][name] for e in sel], dtype=np.float64),
                np.array([b[0] for b in iv], dtype=np.float64), np.array([b[1] for b in iv], dtype=np.float64))

    def metric_names(self) -> list[str]:
        return sorted({k for e in self.evals for k in e["metrics"]})


def _check_record(rec: Any, where: str) -> dict:
    if not isinstance(rec, dict) or rec.get("kind") not in KINDS:
        raise ValueError(f"{where}: not a ganmetrics run-log record (kind must be one of {KINDS})")
    kind = rec["kind"]
    if kind != "run":
        step = rec.get("step")
        if isinstance(step, bool) or not isinstance(step, int) or step < 0:
            raise ValueError(f"{where}: a {kind} record needs a non-negative integer step, got {step!r}")
    if kind == "step":
        for k, v in rec.items():
            if k not in ("kind", "step") and not (isinstance(v, (int, float)) and not isinstance(v, bool)):
                raise ValueError(f"{where}: step scalar {k!r} is not a number ({v!r})")
    if kind == "eval":
        metrics, intervals = rec.get("metrics"), rec.get("intervals", {})
        if not isinstance(metrics, dict) or not all(isinstance(v, (int, float)) and not isinstance(v, bool)
                                                    for v in metrics.values()):
            raise ValueError(f"{where}: an eval record needs metrics as a name -> number mapping")
        if not isinstance(intervals, dict) or not all(
                isinstance(b, list) and len(b) == 2 and all(isinstance(x, (int, float)) for x in b)
                for b in intervals.values()):
            raise ValueError(f"{where}: an eval record's intervals must map names to [low, high]")
    return rec


def run_log_path(run: str | os.PathLike) -> str:
    """The log file of a run folder (or the file itself)."""
    run = os.fspath(run)
    return os.path.join(run, LOG_NAME) if os.path.isdir(run) else run


def read_log(run: str | os.PathLike) -> RunLog:
    """Read a run folder's log (or a log file), checking every record (see the module doc)."""
    path = run_log_path(run)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no run log at {path}")
    with open(path, "rb") as fh:
        data = fh.read()
    lines = data.split(b"\n")
    out = RunLog(path)
    last = len(lines) - 1
    while last >= 0 and not lines[last].strip():
        last -= 1
    for i, raw in enumerate(lines[:last + 1]):
        if not raw.strip():
            continue
        where = f"{path}, line {i + 1}"
        try:
            rec = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            if i == last and not data.endswith(b"\n"):
                out.truncated = True  # the writer was killed in the middle of its last line
                break
            if i < last and lines[i + 1].startswith(b'{"kind":"run"'):
                out.truncated = True  # a killed writer's last line, ended by the monitor that resumed the run
                continue
            raise ValueError(f"{where} is not valid JSON ({exc})") from None
        rec = _check_record(_number(rec), where)
        kind = rec.pop("kind")
        if kind == "run":
            out.runs.append(rec)
        elif kind == "step":
            step = rec.pop("step")
            out.steps.setdefault(step, {}).update(rec)
        elif kind == "eval":
            out.evals.append(rec)
        else:
            out.alarms.append(rec)
    return out


def export_csv(run: str | os.PathLike, path: str | os.PathLike) -> str:
    """One row per step that has scalars or an evaluation: the scalars, each metric and its interval bounds.
    Written atomically; ``path`` must not be the log itself."""
    log = read_log(run)
    path = os.fspath(path)
    if os.path.abspath(path) == os.path.abspath(log.path):
        raise ValueError(f"path {path} is the run log itself; choose another file")
    scalars, metrics = log.scalar_names(), log.metric_names()
    by_step: dict[int, dict] = {s: dict(v) for s, v in log.steps.items()}
    for e in log.evals:
        row = by_step.setdefault(e["step"], {})
        for m, v in e["metrics"].items():
            row[m] = v
            lo, hi = e.get("intervals", {}).get(m, ("", ""))
            row[f"{m}_low"], row[f"{m}_high"] = lo, hi
    header = ["step"] + scalars + [c for m in metrics for c in (m, f"{m}_low", f"{m}_high")]
    with atomic_write(path, "w") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        for s in sorted(by_step):
            w.writerow([s] + [by_step[s].get(c, "") for c in header[1:]])
    return path
