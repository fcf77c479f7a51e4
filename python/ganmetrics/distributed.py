"""Metrics over data sharded across processes, on torch.distributed.

Every rank passes its local shard (uneven, or empty) and every rank gets the result of all the shards
together, equal to one process on their concatenation in rank order; no samples are gathered and nothing is
padded with duplicates (the habit that makes torchmetrics' sync double-count samples). Messages travel on
the process group's backend (gloo with CPU tensors; NCCL with CUDA tensors).

- Statistics: the per-rank float64 sufficient statistics (n, mean, M2) are all-gathered and merged in rank
  order with Chan et al.'s formula (:func:`all_reduce_stats`, :func:`subset_stats`).
- k-NN metrics: rows stay where they are and blocks travel around a ring of the ranks (:func:`_ring`); the
  radius passes compute each pair of shards once in both directions (:func:`ring_radii2`), the cross passes
  send real blocks with their radii; every candidate keeps its global index, so decisions and ties are those
  of one process, bit for bit.
- Kernel metrics: subsets drawn on global indices, kernel sums computed where the rows live and added in rank
  order (:func:`kernel_sums`).

A rank whose local work fails (bad input on one shard) does not leave the others waiting in a collective:
every rank first reports success or its error, and then all of them raise the same error, naming the rank.
Collectives time out after the group's timeout (``init_process_group(timeout=...)``).
"""

from __future__ import annotations

import sys
from typing import Any, Callable

import numpy as np


def resolve_group(group: Any):
    """None (no distribution), ``"default"`` (the default process group) or a ProcessGroup."""
    if group is None:
        return None
    import torch.distributed as dist

    if not dist.is_available() or not dist.is_initialized():
        raise ValueError("group= needs torch.distributed initialised (torch.distributed.init_process_group)")
    if isinstance(group, str):
        if group != "default":
            raise ValueError(f"group must be None, 'default' or a ProcessGroup, got {group!r}")
        return dist.group.WORLD
    return group


def _device_for(group) -> Any:
    import torch
    import torch.distributed as dist

    if dist.get_backend(group) == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


class ShardError(ValueError):
    """Raised alike on every rank when the local work of one rank failed (see :func:`guarded`)."""


def guarded(group, fn: Callable[[], Any], what: str) -> Any:
    """``fn()`` on every rank; if it raises on any rank, every rank raises the same ShardError naming the first
    failing rank and its message (so that no rank is left waiting in a later collective)."""
    import torch.distributed as dist

    try:
        result, error = fn(), None
    except (ValueError, TypeError, FileNotFoundError, OSError, MemoryError) as exc:
        result, error = None, f"{type(exc).__name__}: {exc}"
    errors: list = [None] * dist.get_world_size(group)
    dist.all_gather_object(errors, error, group=group)
    for rank, message in enumerate(errors):
        if message is not None:
            raise ShardError(f"{what} failed on rank {rank} of {len(errors)}: {message}")
    return result


def all_reduce_stats(stats, group: Any = "default"):
    """Merge every rank's FeatureStats into ``stats`` in place (rank order, Chan's formula, float64); every
    rank ends with the statistics of the concatenated shards. Returns ``stats``."""
    import torch
    import torch.distributed as dist

    from ganmetrics.stats import FeatureStats

    group = resolve_group(group)
    if group is None:
        return stats

    def local() -> tuple[int, str]:
        stats._require_mergeable()
        return stats.dim, stats.feature_extractor or ""

    dim, name = guarded(group, local, "FeatureStats.all_reduce")
    size = dist.get_world_size(group)
    meta: list = [None] * size
    dist.all_gather_object(meta, (dim, name, int(stats.n or 0), float(stats.cov_unit_roundoff)), group=group)
    dims = {m[0] for m in meta}
    if len(dims) != 1:
        raise ValueError(f"FeatureStats.all_reduce: the ranks hold statistics of different dimensions "
                         f"{[m[0] for m in meta]}")
    names = {m[1] for m in meta if m[1]}
    if len(names) > 1:
        raise ValueError(f"FeatureStats.all_reduce: the ranks' statistics come from different feature extractors "
                         f"{sorted(names)}")
    device = _device_for(group)
    mean = torch.from_numpy(np.ascontiguousarray(stats._mean)).to(device)
    m2 = torch.from_numpy(np.ascontiguousarray(np.tril(stats._m2))).to(device)
    means = [torch.empty_like(mean) for _ in range(size)]
    m2s = [torch.empty_like(m2) for _ in range(size)]
    dist.all_gather(means, mean, group=group)
    dist.all_gather(m2s, m2, group=group)
    merged = FeatureStats(dim, next(iter(names), None))
    for (_, _, n, u), mi, m2i in zip(meta, means, m2s):
        part = FeatureStats(dim)
        part._n, part._mean, part._m2 = n, mi.cpu().numpy().copy(), m2i.cpu().numpy().copy()
        part._unit_roundoff = u
        merged.merge(part)
    with stats._lock:
        stats._n, stats._mean, stats._m2 = merged._n, merged._mean, merged._m2
        stats._unit_roundoff = merged._unit_roundoff
        stats.feature_extractor = merged.feature_extractor
    return stats


def sharded_stats(x: Any, name: str, group, progress: bool | None = None):
    """The statistics of every rank's shard ``x`` together (an empty shard: 0 rows of the right width)."""
    from ganmetrics._arrays import as_features
    from ganmetrics.stats import FeatureStats

    def local():
        if isinstance(x, FeatureStats):
            return x.copy()
        f = as_features(x, name, min_rows=0)
        st = FeatureStats(f.dim)
        return st.update(f, progress=progress) if f.n else st

    return all_reduce_stats(guarded(group, local, f"statistics of {name}"), group)


# ------------------------------------------------------------------------------------------ transport
def _global_rank(group, r: int) -> int:
    import torch.distributed as dist

    return dist.get_global_rank(group, r) if group is not dist.group.WORLD else r


def _tensor(a: np.ndarray, device) -> Any:
    """A tensor sharing ``a``'s memory on the CPU (read-only memory maps included: what is sent is never
    written to), or a copy on the group's CUDA device."""
    import warnings

    import torch

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
        t = torch.from_numpy(np.ascontiguousarray(a))
    return t if device.type == "cpu" else t.to(device)


def _host(t) -> np.ndarray:
    return t.numpy() if t.device.type == "cpu" else t.cpu().numpy()


def all_reduce_array(a: np.ndarray, op: str, group) -> np.ndarray:
    """Element-wise ``"sum"``, ``"max"`` or ``"min"`` over the ranks of an array of the same shape on every rank
    (integer sums and min/max are exact and order-free; float sums use :func:`gather` instead)."""
    import torch.distributed as dist

    ops = {"sum": dist.ReduceOp.SUM, "max": dist.ReduceOp.MAX, "min": dist.ReduceOp.MIN}
    t = _tensor(np.array(a), _device_for(group))
    dist.all_reduce(t, op=ops[op], group=group)
    return _host(t)


def gather(obj: Any, group) -> list:
    """Every rank's ``obj``, in rank order, on every rank."""
    import torch.distributed as dist

    out: list = [None] * dist.get_world_size(group)
    dist.all_gather_object(out, obj, group=group)
    return out


def rank_of(group) -> int:
    import torch.distributed as dist

    return dist.get_rank(group)


def offsets(counts: list[int]) -> np.ndarray:
    """Where each rank's rows start in the concatenation of the shards (and the total, last)."""
    return np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)


def local_indices(idx: np.ndarray, counts: list[int], group) -> np.ndarray:
    """The entries of ``idx`` (global row indices) that fall in this rank's shard, as local row indices, in order."""
    o = offsets(counts)
    lo, hi = o[rank_of(group)], o[rank_of(group) + 1]
    idx = np.asarray(idx, dtype=np.int64)
    return idx[(idx >= lo) & (idx < hi)] - lo


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
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * (1 if sys.platform == "darwin" else 1024)


def memory_of_this_process(rank: int = 0) -> dict:
    """This process's peak resident memory (and peak CUDA allocation, where CUDA is in use)."""
    import torch

    mine = {"rank": rank, "peak_rss_bytes": peak_rss_bytes()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        mine["peak_cuda_bytes"] = int(torch.cuda.max_memory_allocated())
    return mine


def peak_memory(group) -> list[dict]:
    """Every rank's :func:`memory_of_this_process`, in rank order."""
    return gather(memory_of_this_process(rank_of(group)), group)


traffic = [0]  # bytes this process sent in the last ring pass (diagnostics: info["bytes_sent"])


def _ring(parts: list[np.ndarray], counts: list[tuple[int, ...]], group, steps: int | None = None,
          needed: Callable[[int, int, int], bool] | None = None):
    """Yield (step, source rank, that rank's parts) for ``steps`` ranks (default: all), this rank's own first
    (step 0), then those of ranks me - 1, me - 2, ... The parts travel around the ring (rank r sends to r + 1 and
    receives from r - 1); the next rank's parts are in flight while the caller works on the current ones (double
    buffering). ``counts[r][i]``: rows of part i on rank r (every rank's part i has the same dtype and trailing
    shape; empty parts are not sent). ``needed(step, rank, source)``: whether ``rank`` uses the parts of
    ``source`` at ``step``; the last hop to a rank that does not is skipped (its parts come back empty). On an
    NCCL group the parts travel as CUDA tensors."""
    import torch
    import torch.distributed as dist

    size, me = dist.get_world_size(group), dist.get_rank(group)
    steps = size if steps is None else min(steps, size)
    device = _device_for(group)
    cur = [_tensor(p, device) for p in parts]
    traffic[0] = 0
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
                    traffic[0] += t.numel() * t.element_size()
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


def _owns_pair(step: int, me: int, src: int, size: int) -> bool:
    """Whether rank ``me``, meeting the block of rank ``src`` at ``step`` (src = me - step), computes that pair of
    shards alone. Blocks need only travel half-way round: a pair less than half the ring apart is met first by
    the rank that is at most step < size / 2 past the other; a pair exactly half the ring apart (an even number
    of ranks) is met by both at step size / 2, and given to the lower rank here."""
    return step < size - step or (2 * step == size and me < src)


# ------------------------------------------------------------------------------------------ shards
def _wide(f):
    """float16/bfloat16 rows widened to float32 (exact) so that they travel as one dtype."""
    from ganmetrics._arrays import F32, F64, Features

    if f.code in (F32, F64):
        return f
    return Features(np.ascontiguousarray(f.rows(0, f.n), dtype=np.float32), F32, f.name)


def _shards(group, *sets) -> list[list[tuple[int, int, int, np.ndarray | None]]]:
    """For each set, every rank's (rows, dim, dtype code, float64 column sums or None when empty)."""
    mine = [(f.n, f.dim, f.code, np.asarray(f.array, dtype=np.float64).sum(0) if f.n else None) for f in sets]
    everyone = gather(mine, group)
    return [[rank[i] for rank in everyone] for i in range(len(sets))]


def _union_center(*shards) -> np.ndarray:
    """The mean of every row of every set (the engine's centre for its float32 products)."""
    sums = [m[3] for sh in shards for m in sh if m[0]]
    return sum(sums) / sum(m[0] for sh in shards for m in sh)


def shard_sets(inputs: dict[str, Any], group, what: str, min_rows: int = 2, prepare: Callable | None = None):
    """Every rank's shards of the named sets, checked together: the local Features (one dtype across every rank
    and set, empty shards shaped (0, d)), every rank's row counts per set, and the centre of the union.
    ``prepare(features) -> features`` runs on each local shard first (inside the error guard). Raises on every
    rank alike when a set has fewer than ``min_rows`` rows in all or the dimensions differ."""
    from ganmetrics._arrays import F64, Features, as_features

    def local():
        out = [_wide(as_features(x, name, min_rows=0)) for name, x in inputs.items()]
        return [prepare(f) if prepare is not None and f.n else f for f in out]

    sets = guarded(group, local, what)
    shards = _shards(group, *sets)
    names = list(inputs)
    dims = {m[1] for sh in shards for m in sh if m[0]}
    for name, sh in zip(names, shards):
        total = sum(m[0] for m in sh)
        if total < min_rows:
            raise ValueError(f"{what}: {name} has {total} sample(s) over all ranks; at least {min_rows} are needed")
    if len(dims) != 1:
        detail = ", ".join(f"{name}: {sorted({m[1] for m in sh if m[0]})}" for name, sh in zip(names, shards))
        raise ValueError(f"{what}: every shard must have the same feature dimension, got {detail}")
    d = dims.pop()
    codes = {m[2] for sh in shards for m in sh if m[0]}
    code = F64 if len(codes) > 1 else codes.pop()  # one dtype travels: float64 (widening float32 is exact)
    dtype = np.float64 if code == F64 else np.float32
    fixed = []
    for f in sets:
        if not f.n:
            f = Features(np.zeros((0, d), dtype=dtype), code, f.name)
        elif f.code != code:
            f = Features(np.asarray(f.array, dtype=dtype).reshape(f.n, d), code, f.name)
        fixed.append(f)
    counts = [[m[0] for m in sh] for sh in shards]
    return fixed, counts, _union_center(*shards)


# ------------------------------------------------------------------------------------------ k-NN on a ring
def _merge_topk(vals, gidx, new_vals, new_gidx, k):
    v = np.concatenate([vals, new_vals], axis=1)
    g = np.concatenate([gidx, new_gidx], axis=1)
    order = np.lexsort((g, v), axis=1)[:, :k]  # by distance, then global index
    return np.take_along_axis(v, order, 1), np.take_along_axis(g, order, 1)


def _engine():
    from ganmetrics.metrics.knn import _HostEngine

    return _HostEngine()


def _halves(size: int, me: int, src: int, n_me: int, n_src: int) -> tuple[int, int, int, int]:
    """The rows this rank computes against the rows of ``src`` at their meeting, in both directions (one engine
    pass): (first, last) of its own rows and (first, last) of the block's. Pairs of ranks half the ring apart (an
    even number of ranks) share the work: the lower rank takes its rows against the block's first half, the
    higher one its second half against the whole block; every other pair is computed whole by the rank that
    meets the block first (:func:`_owns_pair`)."""
    if 2 * (me - src) % (2 * size) != size:
        return (0, n_me, 0, n_src)
    if me < src:
        return (0, n_me, 0, n_src // 2)
    return (n_me // 2, n_me, 0, n_src)


def ring_radii2(local, k: int, center: np.ndarray, counts: list[int], group) -> np.ndarray:
    """Exact squared k-NN radii of this rank's rows within the union of every rank's rows (itself excluded).

    Each pair of rows is computed once: blocks travel half-way round the ring, and the rank that computes a pair
    of shards does both directions in one engine pass (:func:`_halves`) and sends the other rank's rows their
    k nearest among its rows (values and global indices); everything is merged by (distance, global index)."""
    import torch
    import torch.distributed as dist

    from ganmetrics._arrays import Features

    eng = _engine()
    size, me = len(counts), rank_of(group)
    starts = offsets(counts)
    n = local.n
    big = np.iinfo(np.int64).max
    vals, gidx = np.full((n, k), np.inf), np.full((n, k), big, dtype=np.int64)

    def merge(rows: slice, v, g):
        vals[rows], gidx[rows] = _merge_topk(vals[rows], gidx[rows], np.asarray(v, np.float64), np.asarray(g, np.int64),
                                             k)

    device = _device_for(group)
    sends = []
    meets = size // 2 + 1  # steps 0 .. size // 2

    def computes(t: int, r: int, s: int) -> bool:
        return 2 * t == size or _owns_pair(t, r, s, size)

    for step, src, (block,) in _ring([local.array], [(c,) for c in counts], group, steps=meets, needed=computes):
        if step == 0:
            if n >= 2:
                v, i, _ = eng.knn(local, None, min(k, n - 1), center)
                merge(slice(0, n), v, i + starts[me])
            continue
        if not computes(step, me, src):
            continue
        a0, a1, b0, b1 = _halves(size, me, src, n, len(block))
        if a1 <= a0 or b1 <= b0:
            continue
        mine = Features(local.array[a0:a1], local.code, "rows")
        v, i, vy, iy, _ = eng.knn_both(mine, Features(block[b0:b1], local.code, "block"), min(k, b1 - b0),
                                       min(k, a1 - a0), center)
        merge(slice(a0, a1), v, i + starts[src] + b0)
        back = [_tensor(np.ascontiguousarray(vy, dtype=np.float64), device),
                _tensor(np.ascontiguousarray(iy, dtype=np.int64) + starts[me] + a0, device)]
        sends += [dist.isend(t, _global_rank(group, src), group=group, tag=1) for t in back]
        traffic[0] += sum(t.numel() * t.element_size() for t in back)
    results = []
    for t in range(1, meets):  # the ranks that computed against this rank's rows send them their neighbours
        other = (me + t) % size  # it met this rank's block at its step t
        if not computes(t, other, me):
            continue
        o0, o1, m0, m1 = _halves(size, other, me, counts[other], n)
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
    if n and not np.isfinite(vals[:, k - 1]).all():
        raise ValueError(f"k = {k} needs more than {int(np.isfinite(vals).sum(1).min())} other samples")
    return vals[:, k - 1].copy() if n else np.zeros(0)


def prdc(real: Any, fake: Any, k: int, group, strict: bool = False, fake_radii: bool = True) -> tuple[dict, dict]:
    """Precision, recall, density and coverage of every rank's shards together, equal to one process on the
    concatenated data: exact radii from a ring pass over each set, one ring cross pass (real blocks travel with
    their radii), counts and flags combined with all-reduce."""
    from ganmetrics._arrays import Features
    from ganmetrics.metrics.knn import _check_k

    (fr, ff), (rc, fc), center = shard_sets({"real": real, "fake": fake}, group, "prdc")
    n_real, n_fake = sum(rc), sum(fc)
    k = _check_k(k, "k", n_real, "real")
    if fake_radii:
        _check_k(k, "k", n_fake, "fake")
    real_r2 = ring_radii2(fr, k, center, rc, group)
    sent = traffic[0]
    fake_r2 = ring_radii2(ff, k, center, fc, group) if fake_radii else None
    sent += traffic[0] if fake_radii else 0
    eng = _engine()
    starts = offsets(rc)
    row_count = np.zeros(ff.n, dtype=np.int64)
    col_any = np.zeros(n_real, dtype=np.int64)
    col_min = np.full(n_real, np.inf)
    rechecked = 0
    for _, src, (block, r2) in _ring([fr.array, real_r2], [(c, c) for c in rc], group):
        if ff.n == 0 or len(block) == 0:
            continue
        out = eng.cross(ff, Features(block, fr.code, "real"), center, col_radius2=np.ascontiguousarray(r2),
                        row_radius2=fake_r2, col_min=True, strict=bool(strict))
        row_count += out["row_count"]
        a, b = starts[src], starts[src + 1]
        if fake_radii:
            col_any[a:b] = np.maximum(col_any[a:b], np.asarray(out["col_any"], dtype=np.int64))
        col_min[a:b] = np.minimum(col_min[a:b], out["col_min"])
        rechecked += int(out["rechecked"])
    sent += traffic[0]
    sums = all_reduce_array(np.array([int((row_count > 0).sum()), int(row_count.sum()), rechecked], np.int64),
                            "sum", group)
    any_all = all_reduce_array(col_any, "max", group)
    mins = all_reduce_array(col_min, "min", group)
    all_r2 = np.concatenate(gather(real_r2, group))
    covered = mins < all_r2 if strict else mins <= all_r2
    values = {"precision": int(sums[0]) / n_fake}
    if fake_radii:
        values["recall"] = float(np.mean(any_all > 0))
    values.update({"density": float(int(sums[1]) / (k * n_fake)), "coverage": float(np.mean(covered))})
    info = {"k": k, "strict": bool(strict), "rechecked_pairs": int(sums[2]), "ranks": len(rc), "bytes_sent": sent}
    return values, info


def knn_radii(x: Any, k: int, group) -> np.ndarray:
    """Exact k-NN radii of this rank's rows within every rank's rows together (itself excluded)."""
    from ganmetrics.metrics.knn import _check_k

    (f,), (counts,), center = shard_sets({"x": x}, group, "knn_radii")
    k = _check_k(k, "k", sum(counts), "x")
    return np.sqrt(ring_radii2(f, k, center, counts, group))


def realism_score(real: Any, fake: Any, k: int, group) -> tuple[np.ndarray, int]:
    """Realism scores of this rank's fake rows against every rank's real rows (see
    :func:`ganmetrics.realism_score`), and how many fake rows over all ranks coincide with a kept real row."""
    from ganmetrics._arrays import Features
    from ganmetrics.metrics.knn import _check_k

    (fr, ff), (rc, fc), center = shard_sets({"real": real, "fake": fake}, group, "realism_score")
    k = _check_k(k, "k", sum(rc), "real")
    all_r2 = np.concatenate(gather(ring_radii2(fr, k, center, rc, group), group))
    kept = (all_r2 <= np.median(all_r2)) & (all_r2 > 0)
    if not kept.any():
        raise ValueError("every real k-NN radius is 0 (too many duplicated real samples for this k)")
    weight = np.where(kept, 1.0 / np.where(kept, all_r2, 1.0), 0.0)
    starts = offsets(rc)
    best = np.full(ff.n, np.inf)  # min over kept r of |g - r|^2 / radius(r)^2
    eng = _engine()
    for _, src, (block,) in _ring([fr.array], [(c,) for c in rc], group):
        w = weight[starts[src]:starts[src + 1]]
        if ff.n == 0 or len(block) == 0 or not (w > 0).any():
            continue
        v, i, _ = eng.knn(ff, Features(block, fr.code, "real"), 1, center, np.ascontiguousarray(w))
        best = np.minimum(best, np.where(np.asarray(i)[:, 0] >= 0, np.asarray(v)[:, 0], np.inf))
    with np.errstate(divide="ignore"):
        score = 1.0 / np.sqrt(best)
    hits = int(all_reduce_array(np.array([np.isinf(score).sum()], np.int64), "sum", group)[0])
    return score, hits


def nn1_accuracy(real: Any, fake: Any, group) -> tuple[dict, dict]:
    """Leave-one-out 1-NN accuracy over every rank's shards (see :func:`ganmetrics.nn1_accuracy`)."""
    from ganmetrics._arrays import Features

    (fr, ff), (rc, fc), center = shard_sets({"real": real, "fake": fake}, group, "nn1_accuracy")
    d_rr = ring_radii2(fr, 1, center, rc, group)
    d_ff = ring_radii2(ff, 1, center, fc, group)
    starts = offsets(fc)
    row_min = np.full(fr.n, np.inf)  # nearest fake of each local real row
    col_min = np.full(sum(fc), np.inf)  # nearest local real row of every fake row
    eng = _engine()
    for _, src, (block,) in _ring([ff.array], [(c,) for c in fc], group):
        if fr.n == 0 or len(block) == 0:
            continue
        out = eng.cross(fr, Features(block, ff.code, "fake"), center, row_min=True, col_min=True)
        row_min = np.minimum(row_min, out["row_min"])
        a, b = starts[src], starts[src + 1]
        col_min[a:b] = np.minimum(col_min[a:b], out["col_min"])
    me = rank_of(group)
    col_min = all_reduce_array(col_min, "min", group)[starts[me]:starts[me + 1]]
    real_ok = d_rr <= row_min  # a tie goes to the real neighbour (lower union index)
    fake_ok = d_ff < col_min
    ok = all_reduce_array(np.array([real_ok.sum(), fake_ok.sum()], np.int64), "sum", group)
    n_real, n_fake = sum(rc), sum(fc)
    values = {"accuracy": float(int(ok.sum()) / (n_real + n_fake)), "real_accuracy": float(int(ok[0]) / n_real),
              "fake_accuracy": float(int(ok[1]) / n_fake)}
    return values, {"n_real": n_real, "n_fake": n_fake, "ranks": len(rc)}


def memorization(train: Any, fake: Any, group) -> tuple[dict, dict]:
    """Copy detection over every rank's shards (see :func:`ganmetrics.memorization`). ``fraction`` and
    ``indices`` (positions in the concatenated fake set) are global; ``flagged``, ``nearest_train`` (an index
    into the concatenated training set) and ``nearest_distance`` are for this rank's fake rows."""
    from ganmetrics._arrays import Features

    (ft, ff), (tc, fc), center = shard_sets({"train": train, "fake": fake}, group, "memorization")
    train_r2 = ring_radii2(ft, 1, center, tc, group)
    starts = offsets(tc)
    count = np.zeros(ff.n, dtype=np.int64)
    best_v = np.full(ff.n, np.inf)
    best_i = np.full(ff.n, np.iinfo(np.int64).max)
    rechecked = 0
    eng = _engine()
    for _, src, (block, r2) in _ring([ft.array, train_r2], [(c, c) for c in tc], group):
        if ff.n == 0 or len(block) == 0:
            continue
        out = eng.cross(ff, Features(block, ft.code, "train"), center, col_radius2=np.ascontiguousarray(r2),
                        row_min=True)
        count += out["row_count"]
        v, i = out["row_min"], np.asarray(out["row_argmin"], np.int64) + starts[src]
        better = (v < best_v) | ((v == best_v) & (i < best_i))  # ties: the lowest global index, as one process
        best_v, best_i = np.where(better, v, best_v), np.where(better, i, best_i)
        rechecked += int(out["rechecked"])
    flagged = count > 0
    me = rank_of(group)
    first = offsets(fc)[me]
    indices = np.concatenate(gather(np.flatnonzero(flagged) + first, group))
    values = {"fraction": float(len(indices) / sum(fc)), "indices": indices, "flagged": flagged,
              "nearest_train": best_i, "nearest_distance": np.sqrt(best_v)}
    rechecked = int(all_reduce_array(np.array([rechecked], np.int64), "sum", group)[0])
    return values, {"rechecked_pairs": rechecked, "ranks": len(tc)}


# ------------------------------------------------------------------------------------------ kernel sums
def _kernel_sum(a, b, self_pass: bool, include_diagonal: bool, kernel: tuple, f32: bool) -> float:
    from ganmetrics._native import _core
    from ganmetrics.metrics.knn import _engine_kwargs

    if a.n == 0 or b.n == 0:
        return 0.0
    kind, gamma, coef0, degree = kernel
    return float(_core.kernel_sum(a.array, a.code, b.array, b.code, self_pass, include_diagonal, kind, gamma, coef0,
                                  degree, **_engine_kwargs(None), float32_products=f32, progress=None))


def kernel_sums(x, y, x_counts: list[int], y_counts: list[int], kernel: tuple, include_diagonal: bool, f32: bool,
                group, subsets: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
    """Kernel sums over every rank's rows: (within x, within y, x with y) as ordered-pair sums (within a set each
    pair i != j counts twice; the diagonal only with ``include_diagonal``). With ``subsets`` = (x indices, y
    indices), arrays (S, m) of global row indices, the sums of each subset pair: shape (S, 3); else shape (3,).
    Each rank's rows travel half-way round the ring: the rank that meets a block (see :func:`_owns_pair`) computes
    every sum between its rows and the block's (within-set sums doubled for the two orders). The ranks' partial
    sums are added in rank order, so every rank gets the same numbers."""
    from ganmetrics._arrays import Features

    size, me = len(x_counts), rank_of(group)
    xs, ys = offsets(x_counts), offsets(y_counts)
    if subsets is None:
        pick_x = pick_y = [None]
    else:
        pick_x, pick_y = subsets
    sums = np.zeros((len(pick_x), 3))

    def rows(f, idx, start, stop):
        if idx is None:
            return f
        sel = idx[(idx >= start) & (idx < stop)] - start
        return Features(np.ascontiguousarray(f.array[np.sort(sel)]), f.code, f.name)

    def owns(t, r, s):
        return _owns_pair(t, r, s, size)

    for step, src, (bx, by) in _ring([x.array, y.array], list(zip(x_counts, y_counts)), group, steps=size // 2 + 1,
                                     needed=owns):
        if step and not owns(step, me, src):
            continue
        block_x, block_y = Features(bx, x.code, x.name), Features(by, y.code, y.name)
        for s, (ix, iy) in enumerate(zip(pick_x, pick_y)):
            lx, ly = rows(x, ix, xs[me], xs[me + 1]), rows(y, iy, ys[me], ys[me + 1])
            if step == 0:
                sums[s, 0] += _kernel_sum(lx, lx, True, include_diagonal, kernel, f32)
                sums[s, 1] += _kernel_sum(ly, ly, True, include_diagonal, kernel, f32)
                sums[s, 2] += _kernel_sum(lx, ly, False, False, kernel, f32)
                continue
            rx, ry = rows(block_x, ix, xs[src], xs[src + 1]), rows(block_y, iy, ys[src], ys[src + 1])
            sums[s, 0] += 2.0 * _kernel_sum(lx, rx, False, False, kernel, f32)
            sums[s, 1] += 2.0 * _kernel_sum(ly, ry, False, False, kernel, f32)
            sums[s, 2] += _kernel_sum(lx, ry, False, False, kernel, f32) + _kernel_sum(rx, ly, False, False, kernel, f32)
    total = np.zeros_like(sums)
    for part in gather(sums, group):
        total += part
    return total if subsets is not None else total[0]


# ------------------------------------------------------------------------------------------ statistics of subsets
def subset_stats(f, subsets: list[np.ndarray], counts: list[int], group, progress: bool | None = None) -> list:
    """The FeatureStats of each subset (global row indices into the concatenated shards) over every rank."""
    from ganmetrics.stats import FeatureStats

    local = [local_indices(s, counts, group) for s in subsets]
    parts = FeatureStats.of_subsets(f, local, progress=progress) if f.n else [FeatureStats(f.dim) for _ in local]
    return [all_reduce_stats(p, group) for p in parts]


def nested_prefixes(f, sizes, seed: int | None, counts: list[int], group, progress: bool | None = None):
    """Like :meth:`FeatureStats.iter_nested_prefixes` over every rank's shards: the first ``sizes[i]`` rows of one
    seeded shuffle of the concatenated rows (the same shuffle as one process), one running FeatureStats."""
    from ganmetrics.stats import FeatureStats, prefix_segments

    acc = FeatureStats(f.dim)
    for part in subset_stats(f, prefix_segments(sum(counts), sizes, seed), counts, group, progress):
        acc.merge(part)
        yield acc
