"""Alarms of a training monitor: each rule, its threshold and what it reads.

* ``divergence`` (every logged step): a logged scalar is NaN or Inf; or a gradient norm (a scalar whose name
  ends in ``grad_norm``) exceeds ``explode_factor`` (100) times its median over the previous ``window`` (100)
  logged values (once ``window // 2`` are there); or exceeds ``grad_norm_max`` when that is set.
* ``overfitting`` (every logged step): the gap between D's accuracy on its training real images and on held-out
  real images (``d_train_real_acc - d_heldout_real_acc``, each the fraction scored as real; needs ``d_heldout``
  scores), averaged over the last ``window`` steps, exceeds ``heldout_gap_max`` (0.25): D has learned its
  training set, not the distribution. With ``rt_max`` set (off by default), also the mean of ``r_t``
  (StyleGAN2-ADA's mean sign of D on its real training images) over ``window`` steps above it: a discriminator
  that merely wins for a while drives r_t to 1 too (the shipped toy runs, which draw fresh real samples every
  step, average 0.95-1.0 over stretches of 100 steps), so r_t is a bound to set for a finite dataset (ADA
  holds it at 0.6 with augmentation), and it has no meaning for a WGAN critic, whose sign is arbitrary.
* ``collapse`` (every evaluation): recall or coverage falls below ``collapse_fraction`` (0.5) of its best value
  so far (once that best is at least 0.1), its whole interval when it has one (one unlucky draw is not a
  collapse); or more than ``duplicate_share_max`` (0.5) of the generated
  samples have another generated sample within ``duplicate_radius`` (0.1) times the median k-NN radius of the
  real set (the reference's k; needs a reference with k-NN radii).
* ``stalled`` (every evaluation): the interval of ``stall_metric`` (``fid``) now contains its value
  ``stall_evaluations`` (5) evaluations ago: that many evaluations brought no change the interval can see.

An alarm is written to the log, passed to ``callback`` and, for the kinds in ``raise_on``, raised as
:class:`TrainingAlarm` in the training loop (an alarm found by a background evaluation is raised at the next
call to the monitor). Each kind fires once until its condition clears.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from typing import Any

import numpy as np

ALARM_KINDS = ("divergence", "overfitting", "collapse", "stalled")


@dataclass(frozen=True)
class Alarm:
    kind: str
    step: int
    message: str
    value: float
    threshold: float


class TrainingAlarm(RuntimeError):
    """Raised by a monitor for an alarm whose kind is in its ``raise_on``; ``.alarm`` holds it."""

    def __init__(self, alarm: Alarm):
        super().__init__(f"step {alarm.step}: {alarm.kind}: {alarm.message}")
        self.alarm = alarm


@dataclass(frozen=True)
class AlarmRules:
    """Thresholds of the alarms (the module doc gives each rule)."""

    window: int = 100
    explode_factor: float = 100.0
    grad_norm_max: float | None = None
    rt_max: float | None = None
    heldout_gap_max: float = 0.25
    collapse_fraction: float = 0.5
    duplicate_radius: float = 0.1
    duplicate_share_max: float = 0.5
    stall_metric: str = "fid"
    stall_evaluations: int = 5

    def __post_init__(self):
        def bad(name, want):
            return ValueError(f"AlarmRules.{name} must be {want}, got {getattr(self, name)!r}")
        for name in ("window", "stall_evaluations"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise bad(name, "a positive integer")
        for name in ("explode_factor", "duplicate_radius"):
            if not (isinstance(getattr(self, name), (int, float)) and getattr(self, name) > 0):
                raise bad(name, "a positive number")
        if self.grad_norm_max is not None and not self.grad_norm_max > 0:
            raise bad("grad_norm_max", "None or a positive number")
        for name in ("rt_max", "heldout_gap_max", "collapse_fraction", "duplicate_share_max"):
            v = getattr(self, name)
            if name == "rt_max" and v is None:
                continue
            if not (isinstance(v, (int, float)) and 0 <= v <= 1):
                raise bad(name, "a number in [0, 1]" + (" or None" if name == "rt_max" else ""))


class AlarmState:
    """The running quantities the rules read; ``on_step`` and ``on_eval`` return the alarms that fire."""

    def __init__(self, rules: AlarmRules):
        self.rules = rules
        self.history: dict[str, deque] = {}
        self.active: set[tuple[str, str]] = set()  # (kind, cause) currently firing: fire once until it clears
        self.best: dict[str, float] = {}
        self.evals: list[tuple[float, tuple[float, float] | None]] = []

    def _fire(self, out: list, kind: str, cause: str, cond: bool, step: int, message: str, value: float,
              threshold: float) -> None:
        key = (kind, cause)
        if cond and key not in self.active:
            self.active.add(key)
            out.append(Alarm(kind, int(step), message, float(value), float(threshold)))
        elif not cond:
            self.active.discard(key)

    def _mean(self, name: str) -> float | None:
        h = self.history.get(name)
        if not h or len(h) < min(self.rules.window, 10):
            return None
        return float(np.mean(h))

    def on_step(self, step: int, scalars: dict[str, float]) -> list[Alarm]:
        r, out = self.rules, []
        bad = sorted(k for k, v in scalars.items() if not math.isfinite(v))
        self._fire(out, "divergence", "nonfinite", bool(bad), step, f"{', '.join(bad)} not finite"
                   if bad else "", math.nan if bad else 0.0, 0.0)
        for name, v in scalars.items():
            h = self.history.setdefault(name, deque(maxlen=r.window))
            if name.endswith("grad_norm") and math.isfinite(v):
                limits = {} if r.grad_norm_max is None else {r.grad_norm_max: f"grad_norm_max {r.grad_norm_max:g}"}
                if len(h) >= max(1, r.window // 2):
                    median = float(np.median(h))
                    limits[r.explode_factor * median] = f"{r.explode_factor:g} x its recent median {median:.4g}"
                limit = min(limits) if limits else math.inf
                self._fire(out, "divergence", name, v > limit, step,
                           f"{name} = {v:.4g} exceeds {limits[limit]}" if v > limit else "", v, limit)
            if math.isfinite(v):
                h.append(v)
        if "r_t" in scalars and r.rt_max is not None:
            m = self._mean("r_t")
            if m is not None:
                self._fire(out, "overfitting", "r_t", m > r.rt_max, step,
                           f"r_t (mean sign of D on its real training images) averages {m:.3f} over the last "
                           f"{len(self.history['r_t'])} steps, above {r.rt_max:g}", m, r.rt_max)
        if "d_train_real_acc" in scalars and "d_heldout_real_acc" in scalars:
            a, b = self._mean("d_train_real_acc"), self._mean("d_heldout_real_acc")
            if a is not None and b is not None:
                self._fire(out, "overfitting", "heldout", a - b > r.heldout_gap_max, step,
                           f"D scores {a:.1%} of its training real images as real but {b:.1%} of held-out real "
                           f"images (gap {a - b:.3f} > {r.heldout_gap_max:g})", a - b, r.heldout_gap_max)
        return out

    def on_eval(self, step: int, metrics: dict[str, float], intervals: dict[str, Any],
                duplicate_share: float | None) -> list[Alarm]:
        r, out = self.rules, []
        for name in ("recall", "coverage"):
            if name not in metrics or not math.isfinite(metrics[name]):
                continue
            v = metrics[name]
            high = float(intervals[name][1]) if name in intervals else v  # the interval must fall, not one draw
            best = self.best.get(name)
            if best is not None and best >= 0.1:
                self._fire(out, "collapse", name, high < r.collapse_fraction * best, step,
                           f"{name} = {v:.3f} (interval up to {high:.3f}) fell below {r.collapse_fraction:g} of "
                           f"its best {best:.3f}", v, r.collapse_fraction * best)
            self.best[name] = v if best is None else max(best, v)
        if duplicate_share is not None:
            self._fire(out, "collapse", "duplicates", duplicate_share > r.duplicate_share_max, step,
                       f"{duplicate_share:.1%} of the generated samples have a near-duplicate among them "
                       f"(within {r.duplicate_radius:g} x the real set's median k-NN radius)", duplicate_share,
                       r.duplicate_share_max)
        m = r.stall_metric
        if m in metrics:
            iv = intervals.get(m)
            self.evals.append((metrics[m], None if iv is None else (float(iv[0]), float(iv[1]))))
            if len(self.evals) > r.stall_evaluations and iv is not None:
                then = self.evals[-1 - r.stall_evaluations][0]
                lo, hi = self.evals[-1][1]
                self._fire(out, "stalled", m, lo <= then <= hi, step,
                           f"{m}'s interval [{lo:.4g}, {hi:.4g}] still holds its value {then:.4g} of "
                           f"{r.stall_evaluations} evaluations ago", metrics[m], then)
        return out
