"""The ring: any metric over rows spread across processes, on torch.distributed.

:class:`RingEngine` is an engine over a local engine, in the manner of faiss's ``IndexShards``: it answers the
same primitives as the engine it wraps, for rows held by the ranks of a process group. Every rank passes its
local shard (uneven, or empty) and gets the result of all the shards together, equal to one process on their
concatenation in rank order; no samples are gathered and nothing is padded with duplicates.

- Statistics: each rank's float64 (n, mean, M2) is all-gathered and merged in rank order with Chan et al.'s
  formula (:meth:`RingEngine.reduce_moments`).
- k-NN: rows stay where they are and blocks travel around a ring of the ranks (:func:`ring`), the next block in
  flight while the current one is computed. The radius pass (:meth:`RingEngine.neighbours`) computes each pair
  of shards once, in both directions, and sends the other rank's rows their neighbours back; cross passes send
  reference blocks with their radii. Duplicated rows go through each rank's distinct rows with multiplicities,
  as on one process; every candidate keeps its global index, so decisions and ties are those of one process.
- Kernel sums: each pair of shards is computed by one rank, partial sums added in rank order.

A rank whose local work fails does not leave the others waiting in a collective: every rank first reports
success or its error (:func:`guarded`), then all raise the same :class:`ShardError`, naming the rank.
Collectives time out after the group's timeout (``init_process_group(timeout=...)``). Messages travel on the
group's backend: gloo with CPU tensors, NCCL with CUDA tensors.
"""

from __future__ import annotations

import sys
import warnings

try:
    import resource
except ImportError:  # not on Windows
    resource = None
from typing import Any, Callable

import numpy as np
import torch
import torch.distributed as dist

from ganmetrics._arrays import F32, F64, Features, as_features
from ganmetrics._native import _core
from ganmetrics.engines.base import (EMPTY_SHARD, Distinct, Engine, Set, find_duplicates, identity_multiset, plain_value,
                                    unbiased_mmd2)

F64_UNIT_ROUNDOFF = 2.0**-53


def resolve_group(group: Any):
    """None (no distribution), ``"default"`` (the default process group) or a ProcessGroup."""
    if group is None:
        return None
    if not dist.is_available() or not dist.is_initialized():
        raise ValueError("group= needs torch.distributed initialised (torch.distributed.init_process_group)")
    if isinstance(group, str):
        if group != "default":
            raise ValueError(f"group must be None, 'default' or a ProcessGroup, got {group!r}")
        return dist.group.WORLD
    return group


class ShardError(ValueError):
    """Raised alike on every rank when the local work of one rank failed (see :func:`guarded`)."""


def guarded(group, fn: Callable[[], Any], what: str) -> Any:
    """``fn()`` on every rank; if it raises on any rank, every rank raises the same ShardError naming the first
    failing rank and its message (so that no rank is left waiting in a later collective)."""
    try:
        result, error = fn(), None
    except (ValueError, TypeError, FileNotFoundError, OSError, MemoryError) as exc:
        result, error = None, f"{type(exc).__name__}: {exc}"
    errors = gather(error, group)
    for rank, message in enumerate(errors):
        if message is not None:
            raise ShardError(f"{what} failed on rank {rank} of {len(errors)}: {message}")
    return result


def _shown(desc: Any) -> str:
    if isinstance(desc, tuple) and len(desc) == 3 and isinstance(desc[1], tuple):
        return f"shape (rows, {', '.join(map(str, desc[1]))}) {desc[2]}"
    return str(desc)


def _merge_empty(values: list) -> list:
    """Each rank's input descriptions with an empty shard replaced by the description the other ranks agree on
    (an empty shard has no width or dtype to disagree with), so that only real differences remain."""
    if not all(isinstance(v, tuple) and len(v) == len(values[0]) for v in values):
        return values
    out = [list(v) for v in values]
    for i in range(len(values[0])):
        found = {v[i] for v in values if v[i] != EMPTY_SHARD}
        if len(found) == 1:
            fill = found.pop()
            for r in range(len(out)):
                out[r][i] = fill
    return [tuple(v) for v in out]


def agree(group, call: dict) -> None:
    """Every rank's ``call`` (name and arguments) compared before the call's first collective: a difference is
    one ShardError on every rank naming the argument and which ranks passed what."""
    mine = {str(key): plain_value(value) for key, value in call.items()}
    everyone = gather(mine, group)
    world = len(everyone)
    keys = ["call"] + sorted({key for c in everyone for key in c} - {"call"})
    for key in keys:
        values = [c.get(key, "(not given)") for c in everyone]
        if key == "inputs":  # an empty shard's dtype ("(empty)") matches any
            values = _merge_empty(values)
        if all(v == values[0] for v in values):
            continue
        by_value: dict[str, list[int]] = {}
        for rank, v in enumerate(values):
            by_value.setdefault(v if isinstance(v, str) else repr(v), []).append(rank)
        said = "; ".join(f"rank{'s' if len(r) > 1 else ''} {', '.join(map(str, r))}: {v}" for v, r in by_value.items())
        if key == "inputs" and all(isinstance(v, tuple) and len(v) == len(values[0]) for v in values):
            i = next(i for i in range(len(values[0])) if any(v[i] != values[0][i] for v in values))
            by_desc: dict[str, list[int]] = {}
            for rank, v in enumerate(values):
                by_desc.setdefault(_shown(v[i]), []).append(rank)
            said = "; ".join(f"rank{'s' if len(r) > 1 else ''} {', '.join(map(str, r))}: {d}" for d, r in by_desc.items())
            raise ShardError(f"the {world} ranks disagree on input {i + 1} of {mine['call']} ({said}); every rank's "
                             "shard must have the same feature dimension and dtype")
        if key == "call":
            raise ShardError(f"the {world} ranks are not making the same call ({said}); every rank of the group must "
                             "call the same metric at the same time")
        raise ShardError(f"the {world} ranks disagree on {key!r} of {mine['call']} ({said}); every rank must pass "
                         "the same arguments")


# ------------------------------------------------------------------------------------------ transport
def _device_for(group) -> Any:
    if dist.get_backend(group) == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def _global_rank(group, r: int) -> int:
    return dist.get_global_rank(group, r) if group is not dist.group.WORLD else r


def _tensor(a: np.ndarray, device) -> Any:
    """A tensor sharing ``a``'s memory on the CPU (read-only memory maps included: what is sent is never
    written to), or a copy on the group's CUDA device."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
        t = torch.from_numpy(np.ascontiguousarray(a))
    return t if device.type == "cpu" else t.to(device)


def _host(t) -> np.ndarray:
    return t.numpy() if t.device.type == "cpu" else t.cpu().numpy()


def all_reduce_array(a: np.ndarray, op: str, group) -> np.ndarray:
    """Element-wise ``"sum"``, ``"max"`` or ``"min"`` over the ranks of an array of the same shape on every rank
    (integer sums and min/max are exact and order-free; float sums are added in rank order by the callers)."""
    ops = {"sum": dist.ReduceOp.SUM, "max": dist.ReduceOp.MAX, "min": dist.ReduceOp.MIN}
    t = _tensor(np.array(a), _device_for(group))
    dist.all_reduce(t, op=ops[op], group=group)
    return _host(t)


def gather(obj: Any, group) -> list:
    """Every rank's ``obj``, in rank order, on every rank."""
    out: list = [None] * dist.get_world_size(group)
    dist.all_gather_object(out, obj, group=group)
    return out


def offsets(counts: Any) -> np.ndarray:
    """Where each rank's rows start in the concatenation of the shards (and the total, last)."""
    return np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)


def peak_rss_bytes() -> int:
    """This process's peak resident memory: VmHWM on Linux (getrusage's maximum also counts the parent's before
    exec, which inflates every process started by torch.multiprocessing's spawn), else getrusage's."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    if resource is None:
        return 0
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * (1 if sys.platform == "darwin" else 1024)


def memory_of_this_process(rank: int = 0) -> dict:
    """This process's peak resident memory (and peak CUDA allocation, where CUDA is in use)."""
    mine = {"rank": rank, "peak_rss_bytes": peak_rss_bytes()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        mine["peak_cuda_bytes"] = int(torch.cuda.max_memory_allocated())
    return mine


def peak_memory(group) -> list[dict]:
    """Every rank's :func:`memory_of_this_process`, in rank order."""
    return gather(memory_of_this_process(dist.get_rank(group)), group)


def ring(parts: list[np.ndarray], counts: list[tuple[int, ...]], group, sent: list[int], steps: int | None = None,
         needed: Callable[[int, int, int], bool] | None = None):
    """Yield (step, source rank, that rank's parts) for ``steps`` ranks (default: all), this rank's own first
    (step 0), then those of ranks me - 1, me - 2, ... The parts travel around the ring (rank r sends to r + 1 and
    receives from r - 1); the next rank's parts are in flight while the caller works on the current ones (double
    buffering). ``counts[r][i]``: rows of part i on rank r (every rank's part i has the same dtype and trailing
    shape; empty parts are not sent). ``needed(step, rank, source)``: whether ``rank`` uses the parts of
    ``source`` at ``step``; the last hop to a rank that does not is skipped (its parts come back empty). Bytes
    sent are added to ``sent[0]``. On an NCCL group the parts travel as CUDA tensors."""
    size, me = dist.get_world_size(group), dist.get_rank(group)
    steps = size if steps is None else min(steps, size)
    device = _device_for(group)
    cur = [_tensor(p, device) for p in parts]
    for step in range(steps):
        src = (me - step) % size
        reqs, nxt = [], []
        if step < steps - 1:
            incoming = (me - step - 1) % size
            last = step + 1 == steps - 1  # the parts sent now end their journey at the next rank
            send = not (last and needed is not None and not needed(step + 1, (me + 1) % size, src))
            recv = not (last and needed is not None and not needed(step + 1, me, incoming))
            for i, t in enumerate(cur):
                if counts[src][i] and send:
                    reqs.append(dist.isend(t, _global_rank(group, (me + 1) % size), group=group))
                    sent[0] += t.numel() * t.element_size()
            for i, t in enumerate(cur):
                rows = counts[incoming][i] if recv else 0
                buf = torch.empty((rows,) + tuple(t.shape[1:]), dtype=t.dtype, device=device)
                if rows:
                    reqs.append(dist.irecv(buf, _global_rank(group, (me - 1) % size), group=group))
                nxt.append(buf)
        yield step, src, [_host(t) for t in cur]
        for r in reqs:
            r.wait()
        cur = nxt


def owns_pair(step: int, me: int, src: int, size: int) -> bool:
    """Whether rank ``me``, meeting the block of rank ``src`` at ``step`` (src = me - step), computes that pair of
    shards alone. Blocks need only travel half-way round: a pair less than half the ring apart is met first by
    the rank that is at most step < size / 2 past the other; a pair exactly half the ring apart (an even number
    of ranks) is met by both at step size / 2, and given to the lower rank here."""
    return step < size - step or (2 * step == size and me < src)


def halves(size: int, me: int, src: int, n_me: int, n_src: int) -> tuple[int, int, int, int]:
    """The rows this rank computes against the rows of ``src`` at their meeting, in both directions (one engine
    pass): (first, last) of its own rows and (first, last) of the block's. Pairs of ranks half the ring apart (an
    even number of ranks) share the work: the lower rank takes its rows against the block's first half, the
    higher one its second half against the whole block; every other pair is computed whole by the rank that
    meets the block first (:func:`owns_pair`)."""
    if 2 * (me - src) % (2 * size) != size:
        return (0, n_me, 0, n_src)
    if me < src:
        return (0, n_me, 0, n_src // 2)
    return (n_me // 2, n_me, 0, n_src)


def _merge_topk(vals, gidx, new_vals, new_gidx, k):
    v = np.concatenate([vals, new_vals], axis=1)
    g = np.concatenate([gidx, new_gidx], axis=1)
    order = np.lexsort((g, v), axis=1)[:, :k]  # by distance, then global index
    return np.take_along_axis(v, order, 1), np.take_along_axis(g, order, 1)


def _wide(f: Features) -> Features:
    """float16/bfloat16 rows widened to float32 (exact) so that they travel as one dtype."""
    if f.code in (F32, F64):
        return f
    return Features(np.ascontiguousarray(f.rows(0, f.n), dtype=np.float32), F32, f.name)


# ------------------------------------------------------------------------------------------ the engine
class RingEngine(Engine):
    """The primitives over the ranks of ``group``, each rank's local rows computed by ``local`` (the host engine:
    blocks travel as host arrays)."""

    distributed = True

    def __init__(self, local: Engine, group: Any):
        if local.name not in ("host", "torch"):
            raise ValueError(f"the ring composes the host or the torch engine, not {local.name!r}")
        self.local_engine = local
        super().__init__(local.workspace_bytes, local.progress)
        self.group = group
        if local.name == "torch" and local.device is None:
            local.device = _device_for(group)
        self.size, self.rank = dist.get_world_size(group), dist.get_rank(group)
        if self.rank != 0:
            local.progress = False  # bars on rank 0 only
        self.name = f"ring({local.name})"
        self.sent = [0]  # bytes this process sent around the ring

    def info(self) -> dict:
        return {"engine": self.name, "ranks": self.size, "bytes_sent": int(self.sent[0])}

    @property
    def evaluations(self) -> int:  # this rank's share; the metrics add them over the ranks
        return self.local_engine.evaluations

    @evaluations.setter
    def evaluations(self, value: int) -> None:
        self.local_engine.evaluations = value

    # -- the local kernels are the wrapped engine's
    def knn_pass(self, x, y, k, center, weight=None, *, desc: str = ""):
        return self.local_engine.knn_pass(x, y, k, center, weight, desc=desc)

    def cross_pass(self, x, y, center, *, desc: str = "", **kw) -> dict:
        return self.local_engine.cross_pass(x, y, center, desc=desc, **kw)

    # -- validation and reductions
    def features(self, x: Any, name: str, min_rows: int = 2) -> Features:
        """This rank's rows as host Features (what travels; a tensor on a device is copied to the host)."""
        if isinstance(x, torch.Tensor) and x.device.type != "cpu":
            x = x.detach().cpu()
        return _wide(as_features(x, name, min_rows=0))

    def local(self, fn: Callable[[], Any], what: str) -> Any:
        return guarded(self.group, fn, what)

    def sets(self, inputs: dict[str, Any], *, min_rows: int = 2, prepare: Any = None, what: str = "") -> list[Set]:
        """Every rank's shards of the named sets, checked together: one dtype across every rank and set (float64
        when they differ: widening float32 is exact), empty shards shaped (0, d). Raises on every rank alike when
        a set has fewer than ``min_rows`` rows in all or the dimensions differ."""
        what = what or "this metric"

        def local():
            out = [self.features(x, name) for name, x in inputs.items()]
            return [prepare(f) if prepare is not None and f.n else f for f in out]

        mine = self.local(local, what)
        meta = gather([(f.n, f.dim, f.code, np.asarray(f.array, dtype=np.float64).sum(0) if f.n else None)
                       for f in mine], self.group)
        shards = [[rank[i] for rank in meta] for i in range(len(mine))]
        names = list(inputs)
        for name, sh in zip(names, shards):
            total = sum(m[0] for m in sh)
            if total < min_rows:
                raise ValueError(f"{what}: {name} has {total} sample(s) over all ranks; at least {min_rows} are needed")
        dims = {m[1] for sh in shards for m in sh if m[0]}
        if len(dims) != 1:
            detail = ", ".join(f"{name}: {sorted({m[1] for m in sh if m[0]})}" for name, sh in zip(names, shards))
            raise ValueError(f"{what}: every shard must have the same feature dimension, got {detail}")
        d = dims.pop()
        codes = {m[2] for sh in shards for m in sh if m[0]}
        code = F64 if len(codes) > 1 else codes.pop()
        dtype = np.float64 if code == F64 else np.float32
        out = []
        for name, f, sh in zip(names, mine, shards):
            if not f.n:
                f = Features(np.zeros((0, d), dtype=dtype), code, f.name)
            elif f.code != code:
                f = Features(np.asarray(f.array, dtype=dtype).reshape(f.n, d), code, f.name)
            counts = [m[0] for m in sh]
            out.append(Set(name, f, sum(counts), int(offsets(counts)[self.rank]), counts, [m[3] for m in sh]))
        return out

    def total(self, values: Any) -> np.ndarray:
        a = np.asarray(values)
        return all_reduce_array(a.reshape(-1), "sum", self.group).reshape(a.shape)

    def concat(self, a: np.ndarray) -> np.ndarray:
        return np.concatenate(gather(np.asarray(a), self.group))

    def center(self, *sets: Set) -> np.ndarray:
        sums = [c for s in sets for c in s.col_sums if c is not None]
        return sum(sums) / sum(s.n for s in sets)

    def local_indices(self, s: Set, idx: np.ndarray) -> np.ndarray:
        idx = np.asarray(idx, dtype=np.int64)
        lo, hi = s.start, s.start + s.local.n
        return idx[(idx >= lo) & (idx < hi)] - lo

    # -- distinct rows
    def distinct(self, s: Set) -> Distinct:
        if s._distinct is None:
            ms = find_duplicates(s.local) or identity_multiset(s.local)
            per = gather((ms.rows.n, ms.merged), self.group)
            u = [p[0] for p in per]
            merged = any(p[1] for p in per)
            counts = self.concat(ms.counts) if merged else None
            s._distinct = Distinct(ms, int(offsets(u)[self.rank]), int(sum(u)), merged, counts, tuple(u))
        return s._distinct

    # -- k-NN
    def neighbours(self, s: Set, k: int, center: np.ndarray, desc: str) -> tuple[np.ndarray, np.ndarray]:
        """Each pair of rows is computed once: blocks travel half-way round the ring, and the rank that computes a
        pair of shards does both directions in one engine pass (:func:`halves`) and sends the other rank's rows
        their k nearest among its rows (values and global indices); everything merged by (distance, index)."""
        d = self.distinct(s)
        local = d.ms.rows
        counts = list(d.per_process)
        size, me, group = self.size, self.rank, self.group
        starts = offsets(counts)
        n = local.n
        big = np.iinfo(np.int64).max
        vals, gidx = np.full((n, k), np.inf), np.full((n, k), big, dtype=np.int64)

        def merge(rows: slice, v, g):
            vals[rows], gidx[rows] = _merge_topk(vals[rows], gidx[rows], np.asarray(v, np.float64),
                                                 np.asarray(g, np.int64), k)

        device = _device_for(group)
        sends = []
        meets = size // 2 + 1  # steps 0 .. size // 2

        def computes(t: int, r: int, src: int) -> bool:
            return 2 * t == size or owns_pair(t, r, src, size)

        le = self.local_engine
        for step, src, (block,) in ring([local.array], [(c,) for c in counts], group, self.sent, steps=meets,
                                        needed=computes):
            if step == 0:
                if n >= 2:
                    v, i, evaluated = le.knn_pass(le.wrap(local), None, min(k, n - 1), center, desc=desc)
                    le.evaluations += int(evaluated)
                    merge(slice(0, n), v, i + starts[me])
                continue
            if not computes(step, me, src):
                continue
            a0, a1, b0, b1 = halves(size, me, src, n, len(block))
            if a1 <= a0 or b1 <= b0:
                continue
            mine = Features(local.array[a0:a1], local.code, "rows")
            v, i, vy, iy, _ = le.knn_both(le.wrap(mine), le.wrap(Features(block[b0:b1], local.code, "block")),
                                          min(k, b1 - b0), min(k, a1 - a0), center)
            merge(slice(a0, a1), v, i + starts[src] + b0)
            back = [_tensor(np.ascontiguousarray(vy, dtype=np.float64), device),
                    _tensor(np.ascontiguousarray(iy, dtype=np.int64) + starts[me] + a0, device)]
            sends += [dist.isend(t, _global_rank(group, src), group=group, tag=1) for t in back]
            self.sent[0] += sum(t.numel() * t.element_size() for t in back)
        results = []
        for t in range(1, meets):  # the ranks that computed against this rank's rows send them their neighbours
            other = (me + t) % size  # it met this rank's block at its step t
            if not computes(t, other, me):
                continue
            o0, o1, m0, m1 = halves(size, other, me, counts[other], n)
            if o1 > o0 and m1 > m0:
                bufs = [torch.empty((m1 - m0, min(k, o1 - o0)), dtype=dtype, device=device)
                        for dtype in (torch.float64, torch.int64)]
                results.append((m0, m1, bufs, [dist.irecv(b, _global_rank(group, other), group=group, tag=1)
                                               for b in bufs]))
        for m0, m1, bufs, reqs in results:
            for r in reqs:
                r.wait()
            merge(slice(m0, m1), _host(bufs[0]), _host(bufs[1]))
        for r in sends:
            r.wait()
        return vals, gidx

    def cross(self, query: Set, ref: Set, center: np.ndarray, *, col_radius2: np.ndarray | None = None,
              row_radius2: np.ndarray | None = None, col_min: bool = False, row_min: bool = False,
              strict: bool = False, desc: str = "cross pass") -> dict:
        """The query rows stay; the reference rows' distinct blocks travel round the ring with what the pass needs
        of them (squared radii, multiplicities, global index of their first occurrence); counts add up, nearest
        rows merge by (distance, global index), per-reference outputs are all-reduced."""
        dq, dr = self.distinct(query), self.distinct(ref)
        mq, mr = dq.ms, dr.ms
        parts, names = [mr.rows.array], ["rows"]
        if col_radius2 is not None:
            r2 = np.ascontiguousarray(col_radius2, dtype=np.float64)
            parts.append(r2[mr.first] if mr.merged else r2)
            names.append("r2")
        if dr.merged:
            parts.append(mr.counts)
            names.append("counts")
            if row_min:
                parts.append(mr.first + ref.start)
                names.append("first")
        q_r2 = None
        if row_radius2 is not None:
            q_r2 = np.ascontiguousarray(row_radius2, dtype=np.float64)
            q_r2 = np.ascontiguousarray(q_r2[mq.first]) if mq.merged else q_r2
        rows_at = offsets(ref.counts)
        u = mq.rows.n
        row_count = np.zeros(u, dtype=np.int64)
        best_v, best_i = np.full(u, np.inf), np.full(u, np.iinfo(np.int64).max)
        col_any = np.zeros(dr.total, dtype=np.int64)
        col_mins = np.full(dr.total, np.inf)
        d_at = offsets(dr.per_process)
        rechecked = 0
        for _, src, got in ring(parts, [(c,) * len(parts) for c in dr.per_process], self.group, self.sent):
            block = dict(zip(names, got))
            if u == 0 or len(block["rows"]) == 0:
                continue
            kw = {"col_multiplicity": np.ascontiguousarray(block["counts"])} if "counts" in block else {}
            le = self.local_engine
            out = le.cross_pass(le.wrap(mq.rows), le.wrap(Features(block["rows"], mr.rows.code, ref.name)), center,
                                           desc=desc, col_radius2=block.get("r2"), row_radius2=q_r2, col_min=col_min,
                                           row_min=row_min, strict=bool(strict), **kw)
            rechecked += int(out["rechecked"])
            if "row_count" in out:
                row_count += out["row_count"]
            if row_min:
                i = np.asarray(out["row_argmin"], np.int64)
                g = block["first"][i] if "first" in block else i + rows_at[src]
                v = out["row_min"]
                better = (v < best_v) | ((v == best_v) & (g < best_i))  # ties: the lowest global index
                best_v, best_i = np.where(better, v, best_v), np.where(better, g, best_i)
            a, b = d_at[src], d_at[src + 1]
            if "col_any" in out:
                col_any[a:b] = np.maximum(col_any[a:b], np.asarray(out["col_any"], dtype=np.int64))
            if col_min:
                col_mins[a:b] = np.minimum(col_mins[a:b], out["col_min"])
        res: dict = {"rechecked": rechecked, "row_count": row_count[mq.inverse]}
        if row_min:
            res["row_min"], res["row_argmin"] = best_v[mq.inverse], best_i[mq.inverse]
        mine = slice(dr.start, dr.start + mr.rows.n)
        if row_radius2 is not None:
            res["col_any"] = all_reduce_array(col_any, "max", self.group)[mine][mr.inverse] > 0
        if col_min:
            res["col_min"] = all_reduce_array(col_mins, "min", self.group)[mine][mr.inverse]
        return res

    def cross_neighbours(self, query: Set, ref: Set, k: int, center: np.ndarray,
                         desc: str = "") -> tuple[np.ndarray, np.ndarray]:
        """The query rows stay; the reference rows travel round the ring and every block's k nearest merge by
        (distance, global index)."""
        n = query.local.n
        vals, gidx = np.full((n, k), np.inf), np.full((n, k), np.iinfo(np.int64).max, dtype=np.int64)
        le = self.local_engine
        q = le.wrap(query.local) if n else None
        rows_at = offsets(ref.counts)
        for _, src, (block,) in ring([ref.local.array], [(c,) for c in ref.counts], self.group, self.sent):
            if q is None or len(block) == 0:
                continue
            v, i, evaluated = le.knn_pass(q, le.wrap(Features(block, ref.local.code, ref.name)), min(k, len(block)),
                                          center, desc=desc)
            le.evaluations += int(evaluated)
            vals, gidx = _merge_topk(vals, gidx, np.asarray(v, np.float64), np.asarray(i, np.int64) + rows_at[src], k)
        return vals, gidx

    def distances2_to(self, s: Set, point: np.ndarray, center: np.ndarray) -> np.ndarray:
        return self.local_engine.distances2_to(s, point, center)  # this rank's rows: nothing travels

    def nearest(self, query: Set, ref: Set, center: np.ndarray, weight: np.ndarray, desc: str = "") -> np.ndarray:
        best = np.full(query.local.n, np.inf)
        w_all = np.ascontiguousarray(weight, dtype=np.float64)
        le = self.local_engine
        q = le.wrap(query.local) if query.local.n else None
        for _, src, (block, w) in ring([ref.local.array, w_all], [(c, c) for c in ref.counts], self.group,
                                       self.sent):
            if q is None or len(block) == 0 or not (w > 0).any():
                continue
            v, i, _ = le.knn_pass(q, le.wrap(Features(block, ref.local.code, ref.name)), 1, center,
                                  np.ascontiguousarray(w), desc=desc)
            best = np.minimum(best, np.where(np.asarray(i)[:, 0] >= 0, np.asarray(v)[:, 0], np.inf))
        return best

    # -- kernel sums
    def _sums(self, x: Set, y: Set, kernel: tuple, include_diagonal: bool, f32: bool,
              subsets: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
        """Kernel sums over every rank's rows: (within x, within y, x with y) as ordered-pair sums. With
        ``subsets`` = (x indices, y indices), arrays (S, m) of global row indices, the sums of each subset pair:
        shape (S, 3); else shape (3,). Each rank's rows travel half-way round the ring: the rank that meets a block
        (see :func:`owns_pair`) computes every sum between its rows and the block's (within-set sums doubled for
        the two orders). The partial sums are added in rank order, so every rank gets the same numbers."""
        size, me = self.size, self.rank
        xs, ys = offsets(x.counts), offsets(y.counts)
        pick_x, pick_y = ([None], [None]) if subsets is None else subsets
        sums = np.zeros((len(pick_x), 3))
        lx_all, ly_all = x.local, y.local

        def rows(f, idx, start, stop):
            if idx is None:
                return f
            sel = idx[(idx >= start) & (idx < stop)] - start
            return Features(np.ascontiguousarray(f.array[np.sort(sel)]), f.code, f.name)

        def owns(t, r, s):
            return owns_pair(t, r, s, size)

        le = self.local_engine

        def ks(a, b, self_pass, include_diagonal, kernel, f32):
            return le.kernel_sum(le.wrap(a), le.wrap(b), self_pass, include_diagonal, kernel, f32)

        for step, src, (bx, by) in ring([lx_all.array, ly_all.array], list(zip(x.counts, y.counts)), self.group,
                                        self.sent, steps=size // 2 + 1, needed=owns):
            if step and not owns(step, me, src):
                continue
            block_x, block_y = Features(bx, lx_all.code, lx_all.name), Features(by, ly_all.code, ly_all.name)
            for s, (ix, iy) in enumerate(zip(pick_x, pick_y)):
                lx, ly = rows(lx_all, ix, xs[me], xs[me + 1]), rows(ly_all, iy, ys[me], ys[me + 1])
                if step == 0:
                    sums[s, 0] += ks(lx, lx, True, include_diagonal, kernel, f32)
                    sums[s, 1] += ks(ly, ly, True, include_diagonal, kernel, f32)
                    sums[s, 2] += ks(lx, ly, False, False, kernel, f32)
                    continue
                rx, ry = rows(block_x, ix, xs[src], xs[src + 1]), rows(block_y, iy, ys[src], ys[src + 1])
                sums[s, 0] += 2.0 * ks(lx, rx, False, False, kernel, f32)
                sums[s, 1] += 2.0 * ks(ly, ry, False, False, kernel, f32)
                sums[s, 2] += ks(lx, ry, False, False, kernel, f32) + ks(rx, ly, False, False, kernel, f32)
        total = np.zeros_like(sums)
        for part in gather(sums, self.group):
            total += part
        return total if subsets is not None else total[0]

    def kernel_sums(self, x: Set, y: Set, kernel: tuple, include_diagonal: bool, float32_products: bool,
                    ) -> tuple[float, float, float]:
        sxx, syy, sxy = self._sums(x, y, kernel, include_diagonal, float32_products)
        return float(sxx), float(syy), float(sxy)

    def subset_mmd2(self, x: Set, y: Set, kernel: tuple, x_index: np.ndarray, y_index: np.ndarray,
                    float32_products: bool, desc: str = "") -> np.ndarray:
        s = self._sums(x, y, kernel, False, float32_products, subsets=(x_index, y_index))
        return unbiased_mmd2(s[:, 0], s[:, 1], s[:, 2], float(x_index.shape[1]), float(y_index.shape[1]))

    # -- statistics
    def reduce_moments(self, n: int, mean: np.ndarray, m2: np.ndarray, unit_roundoff: float, dim: int,
                       extractor: str | None) -> tuple[int, np.ndarray, np.ndarray, float, str | None]:
        """Every rank's (n, mean, M2) merged in rank order with Chan's formula (float64): the statistics of the
        concatenated shards, the same on every rank."""
        meta = gather((dim, extractor or "", int(n or 0), float(unit_roundoff)), self.group)
        dims = {m[0] for m in meta}
        if len(dims) != 1:
            raise ValueError(f"FeatureStats.all_reduce: the ranks hold statistics of different dimensions "
                             f"{[m[0] for m in meta]}")
        names = {m[1] for m in meta if m[1]}
        if len(names) > 1:
            raise ValueError(f"FeatureStats.all_reduce: the ranks' statistics come from different feature "
                             f"extractors {sorted(names)}")
        device = _device_for(self.group)
        mine_mean = _tensor(np.ascontiguousarray(mean), device)
        mine_m2 = _tensor(np.ascontiguousarray(np.tril(m2)), device)
        means = [torch.empty_like(mine_mean) for _ in range(self.size)]
        m2s = [torch.empty_like(mine_m2) for _ in range(self.size)]
        dist.all_gather(means, mine_mean, group=self.group)
        dist.all_gather(m2s, mine_m2, group=self.group)
        total_n, total_mean, total_m2 = 0, np.zeros(dim), np.zeros((dim, dim))
        u = F64_UNIT_ROUNDOFF
        for (_, _, ni, ui), mi, m2i in zip(meta, means, m2s):
            total_n = int(_core.moments_merge(total_mean, total_m2, total_n, ni, _host(mi).copy(), _host(m2i).copy()))
            u = max(u, ui)
        return total_n, total_mean, total_m2, u, next(iter(names), None)
