"""``TrainingMonitor``: what a GAN training loop of any framework feeds with plain numbers and tensors.

    monitor = gm.TrainingMonitor(reference, metrics=["fid", "recall", "coverage"], out="runs/a")
    monitor.log_step(step, g_loss=..., d_loss=..., d_real=D(x).detach(), d_fake=D(G(z)).detach())
    monitor.evaluate(step, G)         # samples drawn now; metrics computed in the background
    monitor.close()                   # waits for the evaluations, writes runs/a/dashboard.html

Evaluations compare the generated samples with a saved :class:`~ganmetrics.Reference`, so the real side is never
recomputed, and report the reference's fixed-real-set bootstrap intervals. The samples are drawn in the calling
thread, at the call (the generator keeps training afterwards), batch by batch under ``torch.no_grad()`` with the
generator in eval mode (restored after), from latents of a fixed seed, so every evaluation sees the same ``z``.
They go to host memory before the call returns: the background evaluation holds no GPU memory (the metrics run
on the host engine), unless the reference's extractor runs on a GPU (``device=`` among ``eval_kw``), which then
holds one extraction batch at a time in the worker. At most ``queue_size`` evaluations wait; a further
``evaluate`` waits for the oldest to finish (the wait is logged as ``waited``).

``background``: ``"thread"`` (default; the C++ kernels release the GIL), ``"process"`` (a spawned process that
loads the reference from its file: the reference must have been saved or loaded from a path, and ``extra`` must
be picklable) or ``"none"`` (every evaluation blocks).

Under torch.distributed (``group=``): every rank feeds ``log_step`` and ``evaluate``; each rank draws its share of
the samples (latents seeded by rank), the shares are gathered to rank 0 through ``group``, and rank 0 alone
evaluates, checks the alarms and writes the log. ``raise_on`` is refused with a group (raising on rank 0 alone
would leave the other ranks waiting); use ``callback`` there.
"""

from __future__ import annotations

import concurrent.futures as cf
import math
import multiprocessing
import os
import threading
import time
from collections import deque
from typing import Any, Callable, Sequence

import numpy as np
import torch

from ganmetrics import __version__
from ganmetrics.metrics.knn import knn_radii
from ganmetrics.reference import Reference
from ganmetrics.report import check_metrics
from ganmetrics.training.dashboard import write_dashboard
from ganmetrics.training.alarms import ALARM_KINDS, Alarm, AlarmRules, AlarmState, TrainingAlarm
from ganmetrics.training.log import LOG_NAME, LogWriter
from ganmetrics.training.signals import discriminator_accuracy, sign_rate

BACKGROUNDS = ("thread", "process", "none")
SCORE_KEYS = ("d_real", "d_fake", "d_heldout")
_WORKER_REFERENCES: dict[str, Reference] = {}  # a process worker's cache: reference path -> loaded reference


def _to_float(key: str, v: Any) -> float:
    if isinstance(v, torch.Tensor):
        if v.numel() != 1:
            raise ValueError(f"log_step: {key} must be a single number, got a tensor of shape {tuple(v.shape)}")
        return float(v.detach().item())
    if isinstance(v, np.ndarray) and v.size == 1:
        return float(v.reshape(()))
    if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)):
        raise TypeError(f"log_step: {key} must be a number or a one-element tensor, got {type(v).__name__}")
    return float(v)


def score_scalars(scores: dict[str, Any], threshold: float) -> dict[str, float]:
    """The scalars logged for D's scores: their means, ``r_t`` (on the training real images), the fraction of
    real images scored as real (training and held-out), and the held-out balanced accuracy against the fakes."""
    out: dict[str, float] = {}
    arrays = {}
    for key, v in scores.items():
        a = v.detach().double().cpu().numpy() if isinstance(v, torch.Tensor) else np.asarray(v, dtype=np.float64)
        a = a.reshape(-1)
        if a.size == 0:
            raise ValueError(f"log_step: {key} holds no scores")
        arrays[key] = a
        out[key] = float(a.mean())  # NaN or Inf stays: the divergence alarm reads it
    finite = {k: a for k, a in arrays.items() if np.isfinite(a).all()}
    if "d_real" in finite:
        out["r_t"] = sign_rate(finite["d_real"], threshold)
        out["d_train_real_acc"] = float((finite["d_real"] > threshold).mean())
    if "d_heldout" in finite:
        out["d_heldout_real_acc"] = float((finite["d_heldout"] > threshold).mean())
        if "d_fake" in finite:
            out["d_accuracy"] = discriminator_accuracy(finite["d_heldout"], finite["d_fake"], threshold)
    return out


def _evaluate_job(reference: Reference | str, samples: np.ndarray, metrics: list[str], eval_kw: dict,
                  features: Callable | None, extra: Callable | None, duplicate_radius: float) -> dict:
    """One evaluation (in a worker thread, a worker process or the caller): metrics, intervals, the share of
    near-duplicate samples, and ``extra``'s values."""
    t0 = time.perf_counter()
    if isinstance(reference, str):
        if reference not in _WORKER_REFERENCES:
            _WORKER_REFERENCES[reference] = Reference.load(reference)
        reference = _WORKER_REFERENCES[reference]
    image_kw = {k: v for k, v in eval_kw.items() if k in ("extractor", "resize", "device", "batch_size")}
    rest = {k: v for k, v in eval_kw.items() if k not in image_kw}
    if features is not None:
        feats = features(samples)
        ff = reference._fake(feats.detach().cpu().numpy() if isinstance(feats, torch.Tensor) else feats, True, {},
                             False)
    else:
        if reference.feature_extractor and "extractor" not in image_kw:
            image_kw["extractor"] = reference.feature_extractor  # images go through the reference's own extractor
        ff = reference._fake(samples, False, image_kw, False)
    rep = reference.evaluate(ff.array, metrics, progress=False, **rest)
    out = {"metrics": {m: float(v) for m, v in rep.items()},
           "intervals": {m: [float(iv.low), float(iv.high)] for m, iv in rep.intervals.items()},
           "n_samples": int(ff.n)}
    if rep.intervals:
        out["confidence"] = float(next(iter(rep.intervals.values())).confidence)
    k = reference.k
    if k in reference.radii2 and ff.n >= 2:
        real_radius = math.sqrt(float(np.median(reference.radii2[k])))
        nearest = knn_radii(ff.array, k=1, progress=False)
        out["duplicate_share"] = float((nearest < duplicate_radius * real_radius).mean())
        out["metrics"]["duplicate_share"] = out["duplicate_share"]
    if extra is not None:
        values = extra(samples)
        if not isinstance(values, dict):
            raise TypeError(f"extra must return a dict of name -> number, got {type(values).__name__}")
        for name, v in values.items():
            if name in out["metrics"]:
                raise ValueError(f"extra returned {name!r}, which a metric of the monitor already reports")
            out["metrics"][str(name)] = _to_float(f"extra's {name}", v)
    out["seconds"] = time.perf_counter() - t0
    return out


class TrainingMonitor:
    """Logs a GAN's training and evaluates its generator against a saved reference (see the module doc).

    ``reference``: a :class:`~ganmetrics.Reference` or the path of a saved one. ``metrics``: those of
    :func:`ganmetrics.evaluate` the reference holds (default: the reference's). ``out``: the run folder
    (``log.jsonl``, ``dashboard.html``, ``tensorboard/``); an existing log is appended to (a resumed run).
    ``n_samples``: samples per evaluation when a generator is given (default: the reference's n).
    ``latent_dim``: the generator's input size (default: its ``z_dim`` or ``latent_dim`` attribute).
    ``n_boot``, ``confidence``: the intervals (``n_boot=0``: none; the ``stalled`` alarm needs them).
    ``rules``: :class:`AlarmRules`; ``callback(alarm)``: called for each alarm; ``raise_on``: alarm kinds raised
    as :class:`TrainingAlarm`. ``d_threshold``: the score above which D calls a sample real (0 for logits).
    ``features(samples)``: maps the generated samples into the reference's feature space (your own encoder; default:
    the samples are features, or images read by the reference's extractor). ``extra(samples) -> dict``: more
    values for each evaluation, from the samples as drawn (computed where the evaluation runs).
    ``tensorboard``: also write TensorBoard events (needs the ``tensorboard`` package). ``eval_kw``: keywords of
    ``Reference.evaluate`` (``k``, ``kid_subsets``, ...) and, for images, of :func:`ganmetrics.extract`.
    """

    def __init__(self, reference: Reference | str | os.PathLike, metrics: Sequence[str] | None = None,
                 out: str | os.PathLike = "runs/run", *, label: str | None = None, seed: int | None = None,
                 n_samples: int | None = None, latent_dim: int | None = None, sample_batch_size: int = 256,
                 n_boot: int = 50, confidence: float = 0.95, background: str = "thread", queue_size: int = 2,
                 rules: AlarmRules | None = None, callback: Callable[[Alarm], Any] | None = None,
                 raise_on: Sequence[str] = (), d_threshold: float = 0.0, features: Callable | None = None,
                 extra: Callable | None = None,
                 tensorboard: bool = False, group: Any = None, eval_seed: int = 0, **eval_kw: Any):
        if isinstance(reference, (str, os.PathLike)):
            reference = Reference.load(reference)
        if not isinstance(reference, Reference):
            raise TypeError(f"reference must be a ganmetrics.Reference or the path of a saved one, got "
                            f"{type(reference).__name__}")
        self.reference = reference
        self.metrics = check_metrics(reference.metrics if metrics is None else metrics)
        reference._require(self.metrics, int(eval_kw.get("k", reference.k)))
        if background not in BACKGROUNDS:
            raise ValueError(f"background must be one of {BACKGROUNDS}, got {background!r}")
        if background == "process" and not reference.path:
            raise ValueError("background='process' loads the reference from its file in the worker: save it "
                             "(Reference.save) or load it from a path first")
        for name, v, low in (("queue_size", queue_size, 1), ("sample_batch_size", sample_batch_size, 1),
                             ("n_boot", n_boot, 0)):
            if isinstance(v, bool) or not isinstance(v, int) or v < low:
                raise ValueError(f"{name} must be an integer >= {low}, got {v!r}")
        if n_samples is not None and (isinstance(n_samples, bool) or not isinstance(n_samples, int) or n_samples < 2):
            raise ValueError(f"n_samples must be an integer >= 2, got {n_samples!r}")
        if not 0 < confidence < 1:
            raise ValueError(f"confidence must be in (0, 1), got {confidence!r}")
        unknown = sorted(set(raise_on) - set(ALARM_KINDS))
        if unknown:
            raise ValueError(f"raise_on names unknown alarm kinds {unknown}; the kinds are {ALARM_KINDS}")
        if group is not None and raise_on:
            raise ValueError("raise_on cannot be used with a group: rank 0 alone would raise and the other ranks "
                             "would wait for it; use callback= and stop every rank yourself")
        for name, fn in (("callback", callback), ("features", features), ("extra", extra)):
            if fn is not None and not callable(fn):
                raise TypeError(f"{name} must be callable, got {type(fn).__name__}")
        self.rules = rules if rules is not None else AlarmRules()
        if not isinstance(self.rules, AlarmRules):
            raise TypeError(f"rules must be an AlarmRules, got {type(self.rules).__name__}")
        self.out = os.fspath(out)
        self.label = label if label is not None else os.path.basename(os.path.abspath(self.out))
        self.n_samples = reference.n if n_samples is None else n_samples
        self.latent_dim, self.sample_batch_size, self.eval_seed = latent_dim, sample_batch_size, eval_seed
        self.d_threshold, self.features, self.extra, self.callback = float(d_threshold), features, extra, callback
        self.raise_on = tuple(raise_on)
        self.eval_kw = dict(eval_kw, n_boot=n_boot, confidence=confidence)
        self.group = group
        self.rank, self.world = self._placement(group)
        self.background = background
        self.alarms: list[Alarm] = []
        self.results: list[dict] = []
        self._state = AlarmState(self.rules)
        self._lock = threading.Lock()
        self._to_raise: list[Alarm] = []
        self._error: BaseException | None = None
        self._pending: deque = deque()
        self._queue_size = queue_size
        self._closed = False
        self._writer: LogWriter | None = None
        self._tb = None
        self._pool: cf.Executor | None = None
        if self.rank == 0:
            self._writer = LogWriter(os.path.join(self.out, LOG_NAME))
            self._writer.write({"kind": "run", "version": __version__, "started": time.time(), "label": self.label,
                                "seed": seed, "metrics": self.metrics, "reference": reference.fingerprint(),
                                "n_samples": self.n_samples, "world_size": self.world})
            if tensorboard:
                self._tb = self._tensorboard()
            if background == "thread":
                self._pool = cf.ThreadPoolExecutor(1, thread_name_prefix="ganmetrics-monitor")
            elif background == "process":
                self._pool = cf.ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"))

    @staticmethod
    def _placement(group: Any) -> tuple[int, int]:
        if group is None:
            return 0, 1
        import torch.distributed as dist

        if not dist.is_available() or not dist.is_initialized():
            raise ValueError("group= needs an initialised torch.distributed process group")
        g = None if group == "default" else group
        return dist.get_rank(g), dist.get_world_size(g)

    def _tensorboard(self):
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError as exc:
            raise ImportError("tensorboard=True needs the tensorboard package: pip install tensorboard "
                              f"(or ganmetrics[tensorboard]) ({exc})") from None
        return SummaryWriter(log_dir=os.path.join(self.out, "tensorboard"))

    # ------------------------------------------------------------------------------------------ steps
    def log_step(self, step: int, **values: Any) -> dict[str, float]:
        """Record the scalars of one training step (numbers or one-element tensors; ``d_real``, ``d_fake`` and
        ``d_heldout`` may be D's score tensors of the real training batch, the generated batch and held-out real
        images, from which ``r_t`` and the accuracies are derived). Returns what was logged."""
        self._check_open()
        step = self._check_step(step)
        scores = {k: values.pop(k) for k in SCORE_KEYS if k in values and not self._is_scalar(values[k])}
        scalars = {k: _to_float(k, v) for k, v in values.items()}
        scalars.update(score_scalars(scores, self.d_threshold))
        if self.rank == 0:
            self._writer.write({"kind": "step", "step": step, **scalars})
            if self._tb is not None:
                with self._lock:
                    for k, v in scalars.items():
                        self._tb.add_scalar(f"train/{k}", v, step)
            with self._lock:
                fired = self._state.on_step(step, scalars)
            self._alarm(fired)
        self._raise_pending()
        return scalars

    @staticmethod
    def _is_scalar(v: Any) -> bool:
        if isinstance(v, torch.Tensor):
            return v.numel() == 1 and v.dim() == 0
        return np.ndim(v) == 0

    @staticmethod
    def _check_step(step: Any) -> int:
        if isinstance(step, bool) or not isinstance(step, (int, np.integer)) or step < 0:
            raise ValueError(f"step must be a non-negative integer, got {step!r}")
        return int(step)

    # ------------------------------------------------------------------------------------------ evaluations
    def evaluate(self, step: int, generator: Any, *, block: bool = False) -> dict | None:
        """Evaluate the generator at ``step``: ``generator`` is a ``torch.nn.Module`` (called on latents of
        ``latent_dim``), a callable ``f(n)`` returning ``n`` samples, or the samples themselves (array or tensor:
        features, or images when the reference has an extractor). ``block``: wait and return the record
        (``{"step", "metrics", "intervals", ...}``); otherwise it is written to the log when done and ``None``
        is returned (rank 0 with ``block=True`` returns it; other ranks return ``None``)."""
        self._check_open()
        step = self._check_step(step)
        samples = self._draw(generator)
        if self.group is not None:
            samples = self._gather(samples)
            if self.rank != 0:
                return None
        job = (self.reference.path if self.background == "process" else self.reference, samples, self.metrics,
               self.eval_kw, self.features, self.extra, self.rules.duplicate_radius)
        if block or self._pool is None:
            record = self._finish(step, 0.0, _evaluate_job(*job))
            self._raise_pending()
            return record
        waited = 0.0
        while len(self._pending) >= self._queue_size:
            t0 = time.perf_counter()
            self._pending.popleft().wait()
            waited += time.perf_counter() - t0
        finished = threading.Event()  # set once the record is written (a future's result comes before its callbacks)
        future = self._pool.submit(_evaluate_job, *job)
        future.add_done_callback(lambda f, s=step, w=waited: self._done(s, w, f, finished))
        self._pending.append(finished)
        self._raise_pending()
        return None

    def _draw(self, generator: Any) -> np.ndarray:
        n = self.n_samples if self.group is None else self._share(self.n_samples)
        if isinstance(generator, torch.nn.Module):
            return self._sample_module(generator, n)
        if isinstance(generator, torch.Tensor):
            return generator.detach().cpu().numpy()
        if isinstance(generator, np.ndarray) or not callable(generator):
            return np.asarray(generator)
        out = generator(n)
        if isinstance(out, torch.Tensor):
            out = out.detach().cpu().numpy()
        out = np.asarray(out)
        if out.ndim < 1 or out.shape[0] != n:
            raise ValueError(f"the sampling function returned {out.shape[0] if out.ndim else 'no'} samples "
                             f"when asked for {n}")
        return out

    def _share(self, n: int) -> int:
        return n // self.world + (1 if self.rank < n % self.world else 0)

    @torch.no_grad()
    def _sample_module(self, gen: torch.nn.Module, n: int) -> np.ndarray:
        z_dim = self.latent_dim or getattr(gen, "z_dim", None) or getattr(gen, "latent_dim", None)
        if not isinstance(z_dim, int) or z_dim < 1:
            raise ValueError("the generator's latent size is unknown: pass latent_dim= to the monitor (or give "
                             "the module a z_dim attribute)")
        param = next(gen.parameters(), None)
        device = param.device if param is not None else torch.device("cpu")
        rng = torch.Generator(device="cpu").manual_seed(self.eval_seed * 1_000_003 + self.rank)
        was_training = gen.training
        gen.eval()
        try:
            parts = []
            for a in range(0, n, self.sample_batch_size):
                z = torch.randn(min(self.sample_batch_size, n - a), z_dim, generator=rng)
                parts.append(gen(z.to(device)).detach().float().cpu())
        finally:
            gen.train(was_training)
        return torch.cat(parts).numpy()

    def _gather(self, samples: np.ndarray) -> np.ndarray:
        import torch.distributed as dist

        g = None if self.group == "default" else self.group
        parts = [None] * self.world if self.rank == 0 else None
        dist.gather_object(samples, parts, dst=0, group=g)
        if self.rank != 0:
            return samples
        shapes = {p.shape[1:] for p in parts if len(p)}
        if len(shapes) > 1:
            raise ValueError(f"the ranks' samples have different shapes {sorted(map(str, shapes))}")
        return np.concatenate([p for p in parts if len(p)])

    def _done(self, step: int, waited: float, future: cf.Future, finished: threading.Event) -> None:
        try:
            self._finish(step, waited, future.result())
        except BaseException as exc:  # the training loop sees it at its next call
            with self._lock:
                self._error = exc
        finally:
            finished.set()

    def _finish(self, step: int, waited: float, result: dict) -> dict:
        record = {"kind": "eval", "step": step, **result, "waited": waited}
        self._writer.write(record)
        record = dict(record)
        record.pop("kind")
        with self._lock:
            self.results.append(record)
            if self._tb is not None:
                for m, v in result["metrics"].items():
                    self._tb.add_scalar(f"eval/{m}", v, step)
            fired = self._state.on_eval(step, result["metrics"], result["intervals"], result.get("duplicate_share"))
        self._alarm(fired)
        return record

    # ------------------------------------------------------------------------------------------ alarms
    def _alarm(self, fired: list[Alarm]) -> None:
        for a in fired:
            self._writer.write({"kind": "alarm", "step": a.step, "alarm": a.kind, "message": a.message,
                                "value": a.value, "threshold": a.threshold})
            with self._lock:
                self.alarms.append(a)
                if self._tb is not None:
                    self._tb.add_text("alarms", f"{a.kind}: {a.message}", a.step)
                if a.kind in self.raise_on:
                    self._to_raise.append(a)
            if self.callback is not None:
                self.callback(a)

    def _raise_pending(self) -> None:
        with self._lock:
            error, self._error = self._error, None
            alarm = self._to_raise.pop(0) if self._to_raise else None
        if error is not None:
            raise RuntimeError(f"a background evaluation failed: {error}") from error
        if alarm is not None:
            raise TrainingAlarm(alarm)

    # ------------------------------------------------------------------------------------------ closing
    def wait(self) -> None:
        """Wait for every queued evaluation; raise what they found (an error, an alarm in ``raise_on``)."""
        while self._pending:
            self._pending.popleft().wait()  # an error is recorded by _done and raised below
        self._raise_pending()

    def dashboard(self, path: str | os.PathLike | None = None) -> str | None:
        """Write the run's HTML dashboard (default ``out/dashboard.html``; needs matplotlib). Rank 0 only."""
        if self.rank != 0:
            return None
        return write_dashboard(self.out, path)

    def close(self, dashboard: bool = True) -> None:
        """Wait for the evaluations, close the files and write the dashboard (``dashboard=False``: not); then
        raise what the last evaluations found (an error, an alarm in ``raise_on``), if anything."""
        if self._closed:
            return
        found: BaseException | None = None
        try:
            self.wait()
        except BaseException as exc:  # the files are closed and the dashboard written first
            found = exc
        self._closed = True
        if self._pool is not None:
            self._pool.shutdown(wait=True)
        if self._tb is not None:
            self._tb.close()
        if self._writer is not None:
            self._writer.close()
        if dashboard:
            self.dashboard()
        if found is not None:
            raise found

    def _check_open(self) -> None:
        if self._closed:
            raise ValueError("this TrainingMonitor is closed")

    def __enter__(self) -> "TrainingMonitor":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
            return
        try:  # the loop failed (or an alarm stopped it): keep the log, draw what it holds, keep its error
            self.close()
        except Exception:
            pass
