"""What every engine shares: the set a metric works on, duplicate rows as multisets, tile budgets, and the
algorithms written once over an engine's local kernels.

A metric asks an engine for :class:`Set` objects (validated views of its inputs) and then for the primitives:
``center``, ``radii2`` (exact squared k-NN radius of every row within its own set, itself excluded by index),
``cross`` (one pass of query rows against reference rows: balls containing each query row, its nearest
reference row by (distance, global index); per reference row: covered flag and minimum distance), ``nearest``
(weighted nearest reference row), ``kernel_sums`` / ``subset_mmd2`` (kernel metrics), and the reductions
``total`` / ``concat`` that turn per-row outputs into numbers. A local engine answers them for rows in one
process; the ring (:mod:`ganmetrics.engines.ring`) answers the same calls for rows spread over processes.

Per-row outputs always describe the rows this process holds (``Set.local``); ``Set.n`` is the size of the
whole set and ``Set.start`` the global index of this process's first row.
"""

from __future__ import annotations

import abc
import contextlib
import os
from dataclasses import dataclass, field
from typing import Any, Iterator

import numpy as np

from ganmetrics._arrays import F32, F64, Features

DEFAULT_WORKSPACE_BYTES = 256 << 20
MAX_WORKSPACE_BYTES = 1 << 46  # 64 TiB: anything larger is a mistake, not a budget
_tile_override: tuple[int, int] = (0, 0)


@contextlib.contextmanager
def forced_tiles(rows: int, cols: int) -> Iterator[None]:
    """Test hook: make the engines use tiles of at most ``rows`` x ``cols`` (many small tiles)."""
    global _tile_override
    saved = _tile_override
    _tile_override = (int(rows), int(cols))
    try:
        yield
    finally:
        _tile_override = saved


def check_workspace(workspace_bytes: Any) -> int | None:
    """``workspace_bytes`` checked (None: the engine's default)."""
    if workspace_bytes is None:
        return None
    if isinstance(workspace_bytes, bool) or not isinstance(workspace_bytes, (int, np.integer)):
        raise TypeError(f"workspace_bytes must be an integer number of bytes, got {workspace_bytes!r}")
    wb = int(workspace_bytes)
    if not (1 << 20) <= wb <= MAX_WORKSPACE_BYTES:
        raise ValueError(f"workspace_bytes must be between 1 MiB and 64 TiB, got {wb}")
    return wb


def tile_kwargs(workspace_bytes: int | None) -> dict:
    """The tile settings the kernels take: the workspace budget and the test hook's caps."""
    wb = check_workspace(workspace_bytes)
    return {"workspace_bytes": DEFAULT_WORKSPACE_BYTES if wb is None else wb,
            "max_tile_rows": _tile_override[0], "max_tile_cols": _tile_override[1]}


def check_k(k: Any, name: str, n: int, set_name: str) -> int:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)):
        raise TypeError(f"{name} must be an integer, got {type(k).__name__}")
    k = int(k)
    if k < 1:
        raise ValueError(f"{name} must be >= 1, got {k}")
    if k >= n:
        raise ValueError(f"{name} = {k} must be smaller than the number of {set_name} samples ({n})")
    return k


def check_same_dim(a: Any, b: Any) -> None:
    if a.dim != b.dim:
        raise ValueError(f"{a.name} has {a.dim} features but {b.name} has {b.dim}")


def column_sum(f: Features) -> np.ndarray:
    total = np.zeros(f.dim, dtype=np.float64)
    rows = max(1, (32 << 20) // max(1, 8 * f.dim))
    for a, b in f.chunks(rows):
        total += f.rows(a, b).sum(axis=0, dtype=np.float64)
    return total


def host_center(*sets: Features) -> np.ndarray:
    """Mean of the union of host sets: distances are computed on centred data, which keeps float32 error small."""
    return sum(column_sum(f) for f in sets) / sum(f.n for f in sets)


def union(a: Features, b: Features) -> Features:
    """The rows of both sets in one view (widened to the wider dtype when they differ)."""
    if a.code == b.code:
        return Features(np.concatenate([a.array, b.array]), a.code, f"{a.name}+{b.name}")
    wide = np.float64 if F64 in (a.code, b.code) else np.float32
    parts = [f.rows(0, f.n).astype(wide) for f in (a, b)]
    return Features(np.concatenate(parts), F64 if wide is np.float64 else F32, f"{a.name}+{b.name}")


def safe_row_norms(x: np.ndarray) -> np.ndarray:
    """Euclidean norms of the rows without overflow or underflow (each row scaled by its largest |value|)."""
    big = np.abs(x).max(axis=1)
    safe = np.where(big > 0, big, 1.0)
    return big * np.linalg.norm(x / safe[:, None], axis=1)


def unbiased_mmd2(sxx: Any, syy: Any, sxy: Any, m: float, n: float) -> Any:
    """Unbiased MMD^2 from ordered-pair kernel sums (within sets over i != j, all pairs across)."""
    return sxx / (m * (m - 1)) + syy / (n * (n - 1)) - 2.0 * sxy / (m * n)


EMPTY_SHARD = "(an empty shard)"


def describe(x: Any) -> Any:
    """What the ranks must agree on about one input: its width and dtype (not its row count, which shards
    may split unevenly; an empty shard matches any)."""
    if hasattr(x, "cov_unit_roundoff"):  # statistics
        return ("statistics", int(x.dim))
    shape = getattr(x, "shape", None)
    if shape is None:
        return type(x).__name__ if not isinstance(x, (str, os.PathLike)) else "a file"
    shape = tuple(int(s) for s in shape)
    if shape and shape[0] == 0:
        return EMPTY_SHARD
    return (len(shape), shape[1:], str(getattr(x, "dtype", "")).replace("torch.", ""))


def plain_value(value: Any) -> Any:
    """A call argument as a small comparable value (numpy scalars as Python numbers, the rest by repr)."""
    if isinstance(value, (bool, int, float, str, type(None))):
        return value
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (list, tuple)):
        return tuple(plain_value(v) for v in value)
    text = repr(value)
    return text if len(text) <= 200 else text[:200] + "..."


# ---------------------------------------------------------------------------------------------- multisets
@dataclass(frozen=True)
class Multiset:
    """Exact duplicate rows collapsed: the distinct rows (each represented by its first occurrence), how many
    times each occurs, and for every original row the index of its distinct row."""

    rows: Any  # Features (host) or the engine's own view
    counts: np.ndarray
    inverse: np.ndarray
    first: np.ndarray  # original index of each distinct row (its lowest)

    @property
    def merged(self) -> bool:
        """Whether some rows were merged (else every row is its own distinct row)."""
        return self.rows.n < len(self.inverse)


def identity_multiset(f: Any) -> Multiset:
    ids = np.arange(f.n, dtype=np.int64)
    return Multiset(f, np.ones(f.n, np.int64), ids, ids)


def find_duplicates(f: Features) -> Multiset | None:
    """None when every row is distinct. One pass projects the rows on a fixed random direction (float64 BLAS);
    rows with equal projections are compared exactly, so only equal rows are merged (-0.0 equals 0.0)."""
    n, d = f.n, f.dim
    if n < 2:
        return None
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
    return Multiset(Features(np.ascontiguousarray(f.array[firsts]), f.code, f.name), counts.astype(np.int64),
                    inverse.astype(np.int64), firsts.astype(np.int64))


# ---------------------------------------------------------------------------------------------- sets
@dataclass(eq=False)
class Set:
    """One input set as an engine holds it: this process's rows (``local``), the size of the whole set (``n``),
    the global index of the first local row (``start``); the distinct rows are found on first use."""

    name: str
    local: Any  # Features, or a DeviceFeatures for the CUDA engine
    n: int
    start: int = 0
    counts: list[int] | None = None  # rows held by each process (None: all of them here)
    col_sums: list[Any] | None = None  # each process's float64 column sums (None where it holds no rows)
    _distinct: Any = field(default=None, repr=False)

    @property
    def dim(self) -> int:
        return self.local.dim


@dataclass(frozen=True)
class Distinct:
    """A set's distinct rows as the engines see them: the local multiset, the global index of the first local
    distinct row, the number of distinct rows in the whole set, whether any process merged rows, and (when it
    did) the multiplicity of every distinct row of the whole set."""

    ms: Multiset
    start: int
    total: int
    merged: bool
    counts: np.ndarray | None = None
    per_process: tuple[int, ...] = ()  # distinct rows held by each process


# ---------------------------------------------------------------------------------------------- the engine
class Engine(abc.ABC):
    """The primitives, written once over a local engine's kernels (``knn_pass``, ``cross_pass``, ...); a local engine
    supplies those, the ring overrides the primitives that must see other processes' rows."""

    name = "engine"
    distributed = False
    moments_engine = "auto"  # what FeatureStats.update is asked for on this engine's rows

    def __init__(self, workspace_bytes: int | None = None, progress: bool | None = None):
        self.workspace_bytes = check_workspace(workspace_bytes)
        self.progress = progress
        self.evaluations = 0  # float64 distances the k-NN passes of this engine evaluated exactly

    # -- validation and reductions (one process: the identity)
    @abc.abstractmethod
    def features(self, x: Any, name: str, min_rows: int = 2) -> Any:
        """``x`` validated as a (samples x features) view for this engine's kernels."""

    def sets(self, inputs: dict[str, Any], *, min_rows: int = 2, prepare: Any = None, what: str = "") -> list[Set]:
        """The named inputs as Sets, validated (dimensions equal); ``prepare(features) -> features`` runs on each."""
        out = []
        for name, x in inputs.items():
            f = self.features(x, name, min_rows)
            out.append(Set(name, prepare(f) if prepare is not None else f, f.n))
        for s in out[1:]:
            check_same_dim(out[0].local, s.local)
        return out

    def local(self, fn: Any, what: str) -> Any:
        """Run local work whose failure every process must learn of (one process: just run it)."""
        return fn()

    def total(self, values: Any) -> np.ndarray:
        """Element-wise sum over the processes (integers exact)."""
        return np.asarray(values)

    def concat(self, a: np.ndarray) -> np.ndarray:
        """Every process's array, concatenated in process order."""
        return a

    def info(self) -> dict:
        return {"engine": self.name}

    # -- distinct rows
    def distinct(self, s: Set) -> Distinct:
        if s._distinct is None:
            ms = self._find_duplicates(s.local) or identity_multiset(s.local)
            s._distinct = Distinct(ms, 0, ms.rows.n, ms.merged, ms.counts, (ms.rows.n,))
        return s._distinct

    def _find_duplicates(self, f: Any) -> Multiset | None:
        return find_duplicates(f)

    def wrap(self, f: Features) -> Any:
        """Host rows (a ring's block) as this engine's own features."""
        return f

    def as_input(self, f: Any, rows: np.ndarray | None = None) -> Any:
        """This engine's features (those ``rows`` of them) as an input the statistics accept."""
        return f if rows is None else Features(f.array[rows], f.code, f.name)

    def l2_normalized(self, f: Features) -> Features:
        """Every row divided by its Euclidean norm, in float64 (an all-zero row is an error naming the set)."""
        x = f.rows(0, f.n).astype(np.float64)
        big = np.abs(x).max(axis=1) if f.n else np.zeros(0)
        zero = np.flatnonzero(big == 0)
        if zero.size:
            raise ValueError(f"{f.name} has {zero.size} all-zero row(s) (first: {zero[0]}); they cannot be "
                             "L2-normalized")
        # each row scaled by its largest |value| first: no norm is ever formed at a subnormal or huge magnitude
        x /= big[:, None]
        x /= np.linalg.norm(x, axis=1)[:, None]
        return Features(x, F64, f.name)

    @abc.abstractmethod
    def center(self, *sets: Set) -> np.ndarray:
        """The mean of the union of the sets (float64): distances are taken on rows centred on it."""

    # -- k-NN radii
    def radii2(self, s: Set, k: int, center: np.ndarray, desc: str = "") -> np.ndarray:
        """Exact squared k-NN radius of every local row of ``s`` within the whole set (itself excluded by index),
        through the distinct rows: a row with c copies has c - 1 neighbours at distance 0, then the other
        distinct rows count with their multiplicity."""
        d = self.distinct(s)
        ms = d.ms
        need = k - (ms.counts - 1)  # neighbours still needed beyond the copies
        out = np.zeros(ms.rows.n)
        if d.total == 1 or not int(self.total(np.int64((need > 0).any()))):
            return out[ms.inverse]
        ku = min(k, d.total - 1)  # enough: each distinct neighbour stands for at least one sample
        distinct = " (distinct rows)" if d.merged else ""
        values, index = self.neighbours(s, ku, center, f"{k}-NN radii of {s.name}{distinct}")
        if len(values):
            if d.merged:
                cumulative = np.cumsum(d.counts[index], axis=1)
                pos = np.argmax(cumulative >= np.maximum(need, 1)[:, None], axis=1)
            else:
                pos = np.full(len(values), k - 1)
            todo = need > 0
            out[todo] = values[todo, pos[todo]]
        return out[ms.inverse]

    def neighbours(self, s: Set, k: int, center: np.ndarray, desc: str) -> tuple[np.ndarray, np.ndarray]:
        """The k nearest distinct rows (squared distances, global distinct indices) of every local distinct row
        of ``s`` within the whole set's distinct rows, itself excluded; ties by index."""
        values, index, evaluated = self.knn_pass(self.distinct(s).ms.rows, None, k, center, desc=desc)
        self.evaluations += int(evaluated)
        return values, index

    # -- one pass of query rows against reference rows
    def cross(self, query: Set, ref: Set, center: np.ndarray, *, col_radius2: np.ndarray | None = None,
              row_radius2: np.ndarray | None = None, col_min: bool = False, row_min: bool = False,
              strict: bool = False, desc: str = "cross pass") -> dict:
        """Per local query row: ``row_count`` (reference rows, with multiplicity, whose ball -- squared radius
        ``col_radius2`` per reference row -- contains it), ``row_min`` / ``row_argmin`` (its nearest reference row;
        the global index of the lowest of equal rows); per local reference row: ``col_any`` (inside some query
        ball of squared radius ``row_radius2``) and ``col_min``; ``rechecked`` (pairs recomputed in float64)."""
        dq, dr = self.distinct(query), self.distinct(ref)
        kw = {"col_multiplicity": dr.ms.counts} if dr.merged else {}
        out = self.cross_pass(dq.ms.rows, dr.ms.rows, center, desc=desc,
                          col_radius2=None if col_radius2 is None else _per_distinct(col_radius2, dr.ms),
                          row_radius2=None if row_radius2 is None else _per_distinct(row_radius2, dq.ms),
                          col_min=col_min, row_min=row_min, strict=bool(strict), **kw)
        return expand(out, dq.ms, dr.ms)

    def cross_neighbours(self, query: Set, ref: Set, k: int, center: np.ndarray,
                         desc: str = "") -> tuple[np.ndarray, np.ndarray]:
        """The k nearest reference rows of every local query row: exact float64 squared distances and global row
        indices, shape (local query rows, k), by (distance, index); every reference row counts (a copy is a
        neighbour of its own)."""
        if query.local.n == 0:
            return np.zeros((0, k)), np.zeros((0, k), np.int64)
        v, i, evaluated = self.knn_pass(query.local, ref.local, k, center, desc=desc)
        self.evaluations += int(evaluated)
        return np.asarray(v, np.float64), np.asarray(i, np.int64) + ref.start

    def distances2_to(self, s: Set, point: np.ndarray, center: np.ndarray) -> np.ndarray:
        """Exact float64 squared distance of every local row of ``s`` to ``point`` (a float64 vector)."""
        if s.local.n == 0:
            return np.zeros(0)
        p = self.wrap(Features(np.ascontiguousarray(point, np.float64)[None, :], F64, "point"))
        v, _, _ = self.knn_pass(self.wrap(s.local), p, 1, center, desc="")
        return np.asarray(v, np.float64)[:, 0]

    def nearest(self, query: Set, ref: Set, center: np.ndarray, weight: np.ndarray, desc: str = "") -> np.ndarray:
        """Per local query row, min over reference rows r of weight[r] * |q - r|^2 (inf where every weight is 0)."""
        v, i, _ = self.knn_pass(query.local, ref.local, 1, center, np.ascontiguousarray(weight), desc=desc)
        return np.where(np.asarray(i)[:, 0] >= 0, np.asarray(v)[:, 0], np.inf)

    # -- statistics
    def reduce_moments(self, n: int, mean: np.ndarray, m2: np.ndarray, unit_roundoff: float, dim: int,
                       extractor: str | None) -> tuple[int, np.ndarray, np.ndarray, float, str | None]:
        """Mergeable statistics (n, mean, M2, rounding, extractor) of the whole set from this process's part."""
        return n, mean, m2, unit_roundoff, extractor

    def local_indices(self, s: Set, idx: np.ndarray) -> np.ndarray:
        """The entries of ``idx`` (global row indices) that fall in this process's rows, as local indices."""
        return np.asarray(idx, dtype=np.int64)

    def subset(self, s: Set, idx: np.ndarray, name: str) -> Set:
        """The rows ``idx`` (sorted global indices) of ``s`` as a new Set (host rows)."""
        f = s.local
        return self.sets({name: Features(f.array[self.local_indices(s, idx)], f.code, name)})[0]

    # -- local kernels a concrete engine provides
    @abc.abstractmethod
    def knn_pass(self, x, y, k, center, weight=None, *, desc: str = ""):
        """The k nearest rows of y (all of x's own rows but itself when y is None) of every row of x:
        (squared distances, indices, float64 evaluations)."""

    rounds = False  # whether pairs_pass exists: half-sampling rounds answered from one pass (metrics/rounds.py)

    def pairs_pass(self, x: Any, y: Any, center: np.ndarray, row_radius2: np.ndarray | None,
                   col_radius2: np.ndarray | None, desc: str = "") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Every pair (row q of x, row c of y) with f(q, c) <= max(row_radius2[q], col_radius2[c]) (a negative
        entry selects nothing), as (q, c, exact float64 f), sorted by (q, c). Engines without it leave
        ``rounds`` False and the rounds are recomputed."""
        raise NotImplementedError(f"the {self.name} engine has no pairs pass")

    @abc.abstractmethod
    def cross_pass(self, x, y, center, *, desc: str = "", **kw) -> dict:
        """One x-by-y pass of the cross kernel (the outputs of :meth:`cross`, over the given rows)."""

    @abc.abstractmethod
    def kernel_sums(self, x: Set, y: Set, kernel: tuple, include_diagonal: bool, float32_products: bool,
                    ) -> tuple[float, float, float]:
        """Kernel sums within x, within y (ordered pairs i != j, and i = j with ``include_diagonal``) and
        across; ``kernel`` = (kind, gamma, coef0, degree)."""

    @abc.abstractmethod
    def subset_mmd2(self, x: Set, y: Set, kernel: tuple, x_index: np.ndarray, y_index: np.ndarray,
                    float32_products: bool, desc: str = "") -> np.ndarray:
        """Unbiased MMD^2 of each pair of subsets (rows of x_index and y_index: global row indices)."""


def _per_distinct(per_row: np.ndarray, ms: Multiset) -> np.ndarray:
    """A per-row array as one entry per distinct row (copies share every radius: the first occurrence's)."""
    a = np.ascontiguousarray(per_row, dtype=np.float64)
    return a if not ms.merged else np.ascontiguousarray(a[ms.first])


def expand(out: dict, mq: Multiset, mr: Multiset) -> dict:
    """A cross pass over distinct rows expanded back to every row (nearest reference: its first occurrence)."""
    res = {"rechecked": int(out["rechecked"])}
    for key in ("row_count", "row_min"):
        if key in out:
            res[key] = np.asarray(out[key])[mq.inverse]
    if "row_argmin" in out:
        res["row_argmin"] = mr.first[np.asarray(out["row_argmin"], np.int64)][mq.inverse]
    for key in ("col_any", "col_min"):
        if key in out:
            res[key] = np.asarray(out[key])[mr.inverse]
    return res
