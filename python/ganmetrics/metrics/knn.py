"""Exact k-NN metrics: precision, recall, density, coverage, realism, 1-NN accuracy, memorization.

All of them run on the pairwise engine (``ganmetrics._core.knn`` / ``cross``): tiled float32 GEMMs
whose every decision -- is this point inside that ball, which neighbour is the k-th -- is proven or
rechecked in float64, so the result equals a float64 brute force, for any tile size, thread count
or row order. Memory is O((N + M) k) plus a fixed tile workspace; the N x M distance matrix is
never built.

Semantics (ARCHITECTURE.md): the k-NN radius of a sample excludes the sample itself by index (a
duplicate row is a neighbour at distance 0); a point is inside a ball when its distance is ``<=``
the radius; decisions are taken on exact float64 squared distances sum_i (x_i - y_i)^2.
The ``prdc`` package (Naeem et al.) uses strict ``<``; results differ only where a distance equals
a radius exactly (duplicated samples, identical sets): there ``<=`` gives the natural answer
(identical sets have precision = recall = coverage = 1).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
import warnings
from typing import Any, Iterator

import numpy as np

from ganmetrics._arrays import F32, F64, Features, as_features
from ganmetrics._native import _core
from ganmetrics._progress import counted
from ganmetrics._image_inputs import accepts_images

DEFAULT_WORKSPACE_BYTES = 256 << 20
_tile_override: tuple[int, int] = (0, 0)


@contextlib.contextmanager
def forced_tiles(rows: int, cols: int) -> Iterator[None]:
    """Test hook: make the engine use tiles of at most ``rows`` x ``cols`` (many small tiles)."""
    global _tile_override
    saved = _tile_override
    _tile_override = (int(rows), int(cols))
    try:
        yield
    finally:
        _tile_override = saved


class MetricResult(dict):
    """A dict of metric values that also reads as attributes (``res.precision``).

    ``info`` holds diagnostics: the number of pairs recomputed in float64 and the k used.
    """

    def __init__(self, values: dict, info: dict | None = None):
        super().__init__(values)
        self.info = dict(info or {})

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None

    def __repr__(self) -> str:
        body = ", ".join(f"{k}={v:.6g}" if isinstance(v, float) else f"{k}=..." for k, v in self.items())
        return f"{type(self).__name__}({body})"


# ---------------------------------------------------------------------------------------------- engines
class _HostEngine:
    """The CPU pairwise engine (``ganmetrics._core``) on host arrays."""

    device = "cpu"

    def features(self, x: Any, name: str) -> Features:
        return as_features(x, name, min_rows=2)

    def center(self, *sets: Features) -> np.ndarray:
        return sum(_column_sum(f) for f in sets) / sum(f.n for f in sets)

    def knn(self, x: Features, y: Features | None, k: int, center: np.ndarray, weight=None, ws=None, *,
            progress: bool | None = False, desc: str = "k-NN pass"):
        y_arr, y_code = (x.array, x.code) if y is None else (y.array, y.code)
        return counted(lambda c: _core.knn(x.array, x.code, y_arr, y_code, y is None, center, k, weight,
                                           **_engine_kwargs(ws), progress=c), x.n, desc, progress=progress)

    def knn_both(self, x: Features, y: Features, k: int, k_y: int, center: np.ndarray, ws=None):
        """The k nearest rows of y of every row of x and the k_y nearest rows of x of every row of y, from one
        pass (each pair computed once): (values, index, y values, y index, float64 evaluations)."""
        v, i, ev, vy, iy = _core.knn(x.array, x.code, y.array, y.code, False, center, k, None, **_engine_kwargs(ws),
                                     k_y=k_y)
        return v, i, vy, iy, ev

    def cross(self, x: Features, y: Features, center: np.ndarray, ws=None, *, progress: bool | None = False,
              desc: str = "cross pass", **kw) -> dict:
        return counted(lambda c: _core.cross(x.array, x.code, y.array, y.code, center, **kw, **_engine_kwargs(ws),
                                             progress=c), x.n, desc, progress=progress)


class _DeviceEngine:
    """The CUDA pairwise engine (``ganmetrics._cuda``) on device arrays, on the producer's stream."""

    device = "cuda"

    def features(self, x: Any, name: str):
        from ganmetrics._cuda_arrays import as_device_features

        return as_device_features(x, name, min_rows=2)

    @staticmethod
    def _view(f) -> tuple:
        return (f.ptr, f.rows, f.cols, f.row_stride, f.col_stride, f.code)

    def center(self, *sets) -> np.ndarray:
        from ganmetrics._native import _cuda

        total = np.zeros(sets[0].dim)
        for f in sets:
            _cuda.set_device(f.device)
            means, bad, first = _cuda.column_means(self._view(f), f.stream)
            if bad:
                raise ValueError(f"{f.name} contains {bad} NaN or Inf value(s); the first is in row {first}")
            total += means * f.n
        return total / sum(f.n for f in sets)

    @staticmethod
    def _tiles(ws: int | None) -> dict:
        """Tile settings; without an explicit budget the CUDA module's own default applies."""
        kw = _engine_kwargs(ws)
        if ws is None:
            kw.pop("workspace_bytes")
        return kw

    def knn(self, x, y, k: int, center: np.ndarray, weight=None, ws=None, *, progress=None, desc: str = ""):
        from ganmetrics._native import _cuda

        yv = self._view(x if y is None else y)
        return _cuda.knn(self._view(x), yv, y is None, center, k, weight, x.stream, **self._tiles(ws))

    def cross(self, x, y, center: np.ndarray, ws=None, *, progress=None, desc: str = "", **kw) -> dict:
        from ganmetrics._native import _cuda

        return _cuda.cross(self._view(x), self._view(y), center, stream=x.stream, **kw, **self._tiles(ws))


def _engine(*inputs: Any):
    """The engine for these inputs: all on the host, or all on a CUDA device."""
    from ganmetrics._cuda_arrays import is_device_array

    on_device = [is_device_array(x) for x in inputs]
    if any(on_device) and not all(on_device):
        raise ValueError("the inputs live on different devices (some on a CUDA device, some on the host); "
                         "move them to the same place")
    return _DeviceEngine() if all(on_device) and on_device else _HostEngine()


# ---------------------------------------------------------------------------------------------- helpers
def _check_k(k: Any, name: str, n: int, set_name: str) -> int:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)):
        raise TypeError(f"{name} must be an integer, got {type(k).__name__}")
    k = int(k)
    if k < 1:
        raise ValueError(f"{name} must be >= 1, got {k}")
    if k >= n:
        raise ValueError(f"{name} = {k} must be smaller than the number of {set_name} samples ({n})")
    return k


def _check_same_dim(a, b) -> None:
    if a.dim != b.dim:
        raise ValueError(f"{a.name} has {a.dim} features but {b.name} has {b.dim}")


def _column_sum(f: Features) -> np.ndarray:
    total = np.zeros(f.dim, dtype=np.float64)
    rows = max(1, (32 << 20) // max(1, 8 * f.dim))
    for a, b in f.chunks(rows):
        total += f.rows(a, b).sum(axis=0, dtype=np.float64)
    return total


def _center(*sets: Features) -> np.ndarray:
    """Mean of the union: distances are computed on centred data, which keeps float32 error small."""
    return _HostEngine().center(*sets)


MAX_WORKSPACE_BYTES = 1 << 46  # 64 TiB: anything larger is a mistake, not a budget


def _engine_kwargs(workspace_bytes: int | None) -> dict:
    if workspace_bytes is not None and (isinstance(workspace_bytes, bool)
                                        or not isinstance(workspace_bytes, (int, np.integer))):
        raise TypeError(f"workspace_bytes must be an integer number of bytes, got {workspace_bytes!r}")
    wb = DEFAULT_WORKSPACE_BYTES if workspace_bytes is None else int(workspace_bytes)
    if not (1 << 20) <= wb <= MAX_WORKSPACE_BYTES:
        raise ValueError(f"workspace_bytes must be between 1 MiB and 64 TiB, got {wb}")
    return {"workspace_bytes": wb, "max_tile_rows": _tile_override[0], "max_tile_cols": _tile_override[1]}


def _union(a: Features, b: Features) -> Features:
    if a.code == b.code:
        return Features(np.concatenate([a.array, b.array]), a.code, f"{a.name}+{b.name}")
    wide = np.float64 if F64 in (a.code, b.code) else np.float32
    parts = [f.rows(0, f.n).astype(wide) for f in (a, b)]
    return Features(np.concatenate(parts), F64 if wide is np.float64 else F32, f"{a.name}+{b.name}")


@dataclass(frozen=True)
class _Multiset:
    """Exact duplicate rows collapsed: the distinct rows (each represented by its first occurrence), how many
    times each occurs, and for every original row the index of its distinct row."""

    rows: Features
    counts: np.ndarray
    inverse: np.ndarray
    first: np.ndarray  # original index of each distinct row (its lowest)

    @property
    def merged(self) -> bool:
        """Whether some rows were merged (else every row is its own distinct row)."""
        return self.rows.n < len(self.inverse)


def _multiset(f: Features) -> _Multiset | None:
    """None when every row is distinct. One pass projects the rows on a fixed random direction (float64 BLAS);
    rows with equal projections are compared exactly, so only equal rows are merged (-0.0 equals 0.0)."""
    n, d = f.n, f.dim
    direction = np.random.default_rng(0x5EED).standard_normal(d)
    proj = np.empty(n)
    step = max(1, (32 << 20) // (8 * d))
    for a, b in f.chunks(step):
        proj[a:b] = f.rows(a, b).astype(np.float64) @ direction
    order = np.argsort(proj, kind="stable")  # ties keep index order: a group's first member is its first row
    sorted_proj = proj[order]
    if not (sorted_proj[1:] == sorted_proj[:-1]).any():
        return None
    group = np.arange(n)  # group[i] = original index of the distinct row that row i equals
    run_starts = np.flatnonzero(np.concatenate([[True], sorted_proj[1:] != sorted_proj[:-1]]))
    run_ends = np.append(run_starts[1:], n)
    for s0, e0 in zip(run_starts[run_ends - run_starts > 1], run_ends[run_ends - run_starts > 1]):
        pending = order[s0:e0]  # in index order (stable sort)
        while len(pending):
            rep = int(pending[0])
            rep_row = f.rows(rep, rep + 1)[0]
            same = np.empty(len(pending), dtype=bool)
            for a in range(0, len(pending), step):  # compared in blocks: bounded memory for any run
                block = Features(f.array[pending[a:a + step]], f.code, f.name).rows(0, len(pending[a:a + step]))
                same[a:a + step] = (block == rep_row).all(axis=1)
            group[pending[same]] = rep
            pending = pending[~same]
    firsts, inverse, counts = np.unique(group, return_inverse=True, return_counts=True)
    if len(firsts) == n:
        return None
    return _Multiset(Features(np.ascontiguousarray(f.array[firsts]), f.code, f.name), counts.astype(np.int64),
                     inverse.astype(np.int64), firsts.astype(np.int64))


def _identity(f: Features) -> _Multiset:
    ids = np.arange(f.n, dtype=np.int64)
    return _Multiset(f, np.ones(f.n, np.int64), ids, ids)


def _distinct(f, eng) -> _Multiset:
    """The distinct rows of a set (CPU engine; the CUDA engine takes every row as its own)."""
    return (_multiset(f) if eng.device == "cpu" else None) or _identity(f)


def _radii2_multiset(ms: _Multiset, k: int, center: np.ndarray, ws: int | None, eng,
                     progress: bool | None) -> tuple[np.ndarray, int]:
    """Exact k-NN radii^2 of every distinct row within the full multiset (the row itself excluded once), and
    the number of float64 distances evaluated: a row with c copies has c - 1 neighbours at distance 0, then
    the other distinct rows count with their multiplicity (with every count 1, the plain k-NN radii)."""
    u = ms.rows.n
    need = k - (ms.counts - 1)  # neighbours still needed beyond the copies
    out = np.zeros(u)
    if u == 1 or not (need > 0).any():
        return out, 0
    ku = min(k, u - 1)  # enough: each distinct neighbour stands for at least one sample
    distinct = " (distinct rows)" if ms.merged else ""
    values, index, evaluated = eng.knn(ms.rows, None, ku, center, ws=ws, progress=progress,
                                       desc=f"{k}-NN radii of {ms.rows.name}{distinct}")
    cumulative = np.cumsum(ms.counts[index], axis=1)
    pos = np.argmax(cumulative >= np.maximum(need, 1)[:, None], axis=1)
    todo = need > 0
    out[todo] = values[todo, pos[todo]]
    return out, int(evaluated)


# ---------------------------------------------------------------------------------------------- metrics
def knn_radii(x: Any, k: int = 5, *, workspace_bytes: int | None = None, progress: bool | None = None,
              group: Any = None) -> np.ndarray:
    """Distance from each sample to its k-th nearest neighbour in the same set (itself excluded).

    Exact float64 Euclidean distances, shape (n,). ``progress``: a bar on a terminal (None), never
    (False) or always (True), as for every slow step in ganmetrics. ``group``: each rank passes its shard and
    gets the radii of its own rows within all the shards together.
    """
    if group is not None:
        from ganmetrics import distributed

        return distributed.knn_radii(x, k, distributed.resolve_group(group))
    eng = _engine(x)
    f = eng.features(x, "x")
    return np.sqrt(exact_radii2(f, _check_k(k, "k", f.n, "x"), eng, workspace_bytes, progress))


def exact_radii2(f, k: int, eng=None, workspace_bytes: int | None = None, progress: bool | None = None) -> np.ndarray:
    """Exact squared k-NN radii of every row of ``f`` (itself excluded), float64, through its distinct rows."""
    eng = eng or _engine(f.array)
    ms = _distinct(f, eng)
    return _radii2_multiset(ms, k, eng.center(f), workspace_bytes, eng, progress)[0][ms.inverse]


def _real_fake_pass(real: Any, fake: Any, k: Any, *, fake_radii: bool, col_min: bool, strict: bool,
                    workspace_bytes: int | None, progress: bool | None = None, real_radii2: np.ndarray | None = None
                    ) -> tuple[dict, np.ndarray, Features, dict]:
    """Validation, the k-NN radius passes and one fake x real cross pass shared by the PRDC metrics.

    ``real_radii2``: the real set's exact squared k-NN radii per row, computed before (a saved reference);
    the real radius pass is then skipped. Returns the cross pass's outputs, the real squared radii, the fake
    features and diagnostics.
    """
    eng = _engine(real, fake)
    fr, ff = eng.features(real, "real"), eng.features(fake, "fake")
    _check_same_dim(fr, ff)
    k = _check_k(k, "k", fr.n, "real")
    if fake_radii:
        _check_k(k, "k", ff.n, "fake")
    center = eng.center(fr, ff)
    # Exact duplicate rows (duplicated samples, a collapsed generator) go through the distinct rows: radii of
    # multisets, counts that weigh each real row by its multiplicity, outputs expanded back to every row. Copies
    # are at distance 0 and share every radius, so each decision is the one a pass over all rows makes.
    mr, mf = _distinct(fr, eng), _distinct(ff, eng)
    if real_radii2 is None:
        real_r2, evaluated = _radii2_multiset(mr, k, center, workspace_bytes, eng, progress)
    else:  # copies share their radius: the first occurrence's stands for its distinct row
        real_r2, evaluated = np.ascontiguousarray(real_radii2, dtype=np.float64)[mr.first], 0
    fake_r2 = None
    if fake_radii:
        fake_r2, ev = _radii2_multiset(mf, k, center, workspace_bytes, eng, progress)
        evaluated += ev
    weights = {"col_multiplicity": mr.counts} if mr.merged else {}
    out = eng.cross(mf.rows, mr.rows, center, workspace_bytes, col_radius2=real_r2, row_radius2=fake_r2,
                    col_min=col_min, strict=bool(strict), progress=progress, desc="fake x real pass", **weights)
    out = dict(out, row_count=out["row_count"][mf.inverse])
    for key in ("col_any", "col_min"):
        if key in out:
            out[key] = out[key][mr.inverse]
    info = {"k": k, "strict": bool(strict), "rechecked_pairs": int(out["rechecked"]),
            "exact_knn_evaluations": evaluated, "distinct_real": mr.rows.n, "distinct_fake": mf.rows.n}
    return out, real_r2[mr.inverse], ff, info


@accepts_images("real", "fake")
def prdc(real: Any, fake: Any, k: int = 5, *, strict: bool = False, workspace_bytes: int | None = None,
         progress: bool | None = None, group: Any = None) -> MetricResult:
    """Precision, recall, density and coverage with k nearest neighbours, from one cross pass.

    - precision (Kynkäänniemi et al. 2019): fraction of fake samples inside some real k-NN ball.
    - recall: fraction of real samples inside some fake k-NN ball.
    - density (Naeem et al. 2020): mean number of real balls containing a fake sample, divided by k;
      about 1 for matching distributions, can exceed 1.
    - coverage (Naeem et al. 2020): fraction of real samples whose ball contains some fake sample.

    Precision, recall and coverage lie in [0, 1]; higher is better for all four. ``strict=True``
    uses the ``prdc`` package's strict ``<`` for every inclusion (including coverage) instead of ``<=``.
    ``group`` (``"default"`` or a torch.distributed ProcessGroup): each rank passes its shards of ``real`` and
    ``fake`` (uneven or empty) and gets the values of all shards together, equal to one process on the
    concatenated data (blocks travel around a ring of the ranks; :mod:`ganmetrics.distributed`).
    """
    if group is not None:
        from ganmetrics import distributed

        values, info = distributed.prdc(real, fake, k, distributed.resolve_group(group), strict)
        return MetricResult(values, info)
    return _prdc_result(*_real_fake_pass(real, fake, k, fake_radii=True, col_min=True, strict=strict,
                                         workspace_bytes=workspace_bytes, progress=progress))


def _prdc_result(out: dict, real_r2: np.ndarray, ff: Features, info: dict) -> MetricResult:
    count = out["row_count"]
    covered = out["col_min"] < real_r2 if info["strict"] else out["col_min"] <= real_r2
    values = {
        "precision": float(np.mean(count > 0)),
        "recall": float(np.mean(out["col_any"])),
        "density": float(count.sum() / (info["k"] * ff.n)),
        "coverage": float(np.mean(covered)),
    }
    return MetricResult(values, info)


@accepts_images("real", "fake")
def precision_recall(real: Any, fake: Any, k: int = 3, *, workspace_bytes: int | None = None,
                     progress: bool | None = None, group: Any = None) -> MetricResult:
    """Improved precision and recall (Kynkäänniemi et al. 2019), k = 3 as in the paper.

    Precision: fraction of fake samples inside the real manifold (union of real k-NN balls);
    recall: fraction of real samples inside the fake manifold. Both in [0, 1], higher is better.
    """
    if group is not None:  # each rank passes its shards (see prdc)
        from ganmetrics import distributed

        values, info = distributed.prdc(real, fake, k, distributed.resolve_group(group))
        return MetricResult({key: values[key] for key in ("precision", "recall")}, info)
    out, _, _, info = _real_fake_pass(real, fake, k, fake_radii=True, col_min=False, strict=False,
                                      workspace_bytes=workspace_bytes, progress=progress)
    values = {"precision": float(np.mean(out["row_count"] > 0)), "recall": float(np.mean(out["col_any"]))}
    return MetricResult(values, info)


@accepts_images("real", "fake")
def density_coverage(real: Any, fake: Any, k: int = 5, *, workspace_bytes: int | None = None,
                     progress: bool | None = None, group: Any = None) -> MetricResult:
    """Density and coverage (Naeem et al. 2020), k = 5 as in the paper; only real k-NN balls are needed.

    Density: mean count of real balls containing each fake sample, divided by k (about 1 when the
    distributions match; higher means fakes crowd dense real regions). Coverage: fraction of real
    samples whose ball contains at least one fake sample, in [0, 1]. Higher is better.
    """
    if group is not None:  # each rank passes its shards (see prdc)
        from ganmetrics import distributed

        values, info = distributed.prdc(real, fake, k, distributed.resolve_group(group), fake_radii=False)
        return MetricResult({key: values[key] for key in ("density", "coverage")}, info)
    out, real_r2, ff, info = _real_fake_pass(real, fake, k, fake_radii=False, col_min=True, strict=False,
                                             workspace_bytes=workspace_bytes, progress=progress)
    values = {
        "density": float(out["row_count"].sum() / (info["k"] * ff.n)),
        "coverage": float(np.mean(out["col_min"] <= real_r2)),
    }
    return MetricResult(values, info)


@accepts_images("real", "fake")
def realism_score(real: Any, fake: Any, k: int = 3, *, workspace_bytes: int | None = None,
                  progress: bool | None = None, group: Any = None) -> np.ndarray:
    """Realism score of every fake sample (Kynkäänniemi et al. 2019, section 5).

    R(g) = max over real r of radius_k(r) / |g - r|, over the real samples whose k-NN radius is at
    most the median radius (the half with the largest balls is discarded, as in the paper, to
    reduce the effect of outliers). R >= 1 means g lies inside some real ball; higher is more
    realistic. A fake sample that coincides with a kept real sample gets +inf, with a warning.
    ``group``: each rank passes its shards and gets the scores of its own fake rows against all the real
    shards together (the median radius is the global one).
    """
    if group is not None:
        from ganmetrics import distributed

        score, hits = distributed.realism_score(real, fake, k, distributed.resolve_group(group))
        _warn_coinciding(hits)
        return score
    eng = _engine(real, fake)
    fr, ff = eng.features(real, "real"), eng.features(fake, "fake")
    _check_same_dim(fr, ff)
    k = _check_k(k, "k", fr.n, "real")
    center = eng.center(fr, ff)
    mr = _distinct(fr, eng)
    real_r2 = _radii2_multiset(mr, k, center, workspace_bytes, eng, progress)[0][mr.inverse]
    kept = (real_r2 <= np.median(real_r2)) & (real_r2 > 0)
    if not kept.any():
        raise ValueError("every real k-NN radius is 0 (too many duplicated real samples for this k)")
    weight = np.where(kept, 1.0 / np.where(kept, real_r2, 1.0), 0.0)
    values, _, _ = eng.knn(ff, fr, 1, center, weight, workspace_bytes, progress=progress, desc="fake x real pass")
    best = values[:, 0]  # min over kept r of |g - r|^2 / radius(r)^2
    with np.errstate(divide="ignore"):
        score = 1.0 / np.sqrt(best)
    _warn_coinciding(int(np.isinf(score).sum()))
    return score


def _warn_coinciding(hits: int) -> None:
    if hits:
        warnings.warn(f"{hits} fake sample(s) coincide with real samples; their realism score is +inf", stacklevel=3)


@accepts_images("real", "fake")
def nn1_accuracy(real: Any, fake: Any, *, workspace_bytes: int | None = None,
                 progress: bool | None = None, group: Any = None) -> MetricResult:
    """Leave-one-out 1-nearest-neighbour two-sample test accuracy on the union of both sets.

    Each sample is classified real/fake by its nearest other sample. 0.5 is ideal (the sets are
    indistinguishable); 1.0 means perfectly separable; well below 0.5 suggests the fake samples copy
    the real ones. Returns ``accuracy``, ``real_accuracy`` and ``fake_accuracy``. Exact ties in
    distance go to the lower index of [real; fake], i.e. towards a real neighbour.
    ``group``: each rank passes its shards (see :func:`prdc`).
    """
    if group is not None:
        from ganmetrics import distributed

        return MetricResult(*distributed.nn1_accuracy(real, fake, distributed.resolve_group(group)))
    eng = _engine(real, fake)
    fr, ff = eng.features(real, "real"), eng.features(fake, "fake")
    _check_same_dim(fr, ff)
    center = eng.center(fr, ff)
    # nearest neighbour within each set (self excluded) and across: one cross pass gives both directions
    mr, mf = _distinct(fr, eng), _distinct(ff, eng)
    d_rr = _radii2_multiset(mr, 1, center, workspace_bytes, eng, progress)[0][mr.inverse]
    d_ff = _radii2_multiset(mf, 1, center, workspace_bytes, eng, progress)[0][mf.inverse]
    cross = eng.cross(mr.rows, mf.rows, center, workspace_bytes, row_min=True, col_min=True, progress=progress,
                      desc="real x fake pass")
    out = {"row_min": cross["row_min"][mr.inverse], "col_min": cross["col_min"][mf.inverse]}
    real_ok = d_rr <= out["row_min"]  # a tie goes to the real neighbour (lower union index)
    fake_ok = d_ff < out["col_min"]
    values = {
        "accuracy": float((real_ok.sum() + fake_ok.sum()) / (fr.n + ff.n)),
        "real_accuracy": float(real_ok.mean()),
        "fake_accuracy": float(fake_ok.mean()),
    }
    return MetricResult(values, {"n_real": fr.n, "n_fake": ff.n})


@accepts_images("train", "fake")
def memorization(train: Any, fake: Any, *, workspace_bytes: int | None = None,
                 progress: bool | None = None, group: Any = None) -> MetricResult:
    """Copy detection: generated samples closer to a training sample than its own nearest neighbour.

    A fake sample g is flagged when some training sample t has |g - t| <= |t - NN(t)|, the distance
    from t to its nearest other training sample. Returns ``fraction`` (flagged / fake), ``indices``
    of the flagged fake samples, ``flagged`` (bool per fake sample), and per fake sample the index of
    its nearest training sample and the distance to it (``nearest_train``, ``nearest_distance``).
    ``group``: each rank passes its shards; ``fraction`` and ``indices`` (into the concatenated fake set) are
    global, ``flagged``, ``nearest_train`` (an index into the concatenated training set) and
    ``nearest_distance`` belong to this rank's fake rows.
    """
    if group is not None:
        from ganmetrics import distributed

        return MetricResult(*distributed.memorization(train, fake, distributed.resolve_group(group)))
    eng = _engine(train, fake)
    ft, ff = eng.features(train, "train"), eng.features(fake, "fake")
    _check_same_dim(ft, ff)
    center = eng.center(ft, ff)
    mt, mf = _distinct(ft, eng), _distinct(ff, eng)
    train_r2, _ = _radii2_multiset(mt, 1, center, workspace_bytes, eng, progress)
    out = eng.cross(mf.rows, mt.rows, center, workspace_bytes, col_radius2=train_r2, row_min=True,
                    progress=progress, desc="fake x train pass")
    flagged = (out["row_count"] > 0)[mf.inverse]
    values = {
        "fraction": float(flagged.mean()),
        "indices": np.flatnonzero(flagged),
        "flagged": flagged,
        "nearest_train": mt.first[out["row_argmin"]][mf.inverse],  # the lowest index among equal rows
        "nearest_distance": np.sqrt(out["row_min"])[mf.inverse],
    }
    return MetricResult(values, {"rechecked_pairs": int(out["rechecked"])})
