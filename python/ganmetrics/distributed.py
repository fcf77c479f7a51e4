"""Statistics over data sharded across processes, on torch.distributed.

Every rank passes its local shard; collectives of the process group (gloo for CPU tensors, NCCL for CUDA
ones) carry the per-rank float64 sufficient statistics (n, mean, M2), and each rank merges them in rank
order with Chan et al.'s formula -- exact, no samples gathered, no padding with duplicates (the habit that
makes torchmetrics' sync double-count samples), and the same result on every rank. Shards may be uneven and
ranks may hold no samples at all.

A rank whose local work fails (bad input on one shard) does not leave the others waiting in a collective:
every rank first reports success or its error, and then all of them raise the same error, naming the rank.
Collectives time out after the group's timeout (``init_process_group(timeout=...)``).
"""

from __future__ import annotations

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


def guarded(group, fn: Callable[[], Any], what: str) -> Any:
    """``fn()`` on every rank; if it raises on any rank, every rank raises the same ValueError naming the first
    failing rank and its message (so that no rank is left waiting in a later collective)."""
    import torch.distributed as dist

    try:
        result, error = fn(), None
    except (ValueError, TypeError, FileNotFoundError, OSError) as exc:
        result, error = None, f"{type(exc).__name__}: {exc}"
    errors: list = [None] * dist.get_world_size(group)
    dist.all_gather_object(errors, error, group=group)
    for rank, message in enumerate(errors):
        if message is not None:
            raise ValueError(f"{what} failed on rank {rank} of {len(errors)}: {message}")
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


# ------------------------------------------------------------------------------------------ k-NN on a ring
def _global_rank(group, r: int) -> int:
    import torch.distributed as dist

    return dist.get_global_rank(group, r) if group is not dist.group.WORLD else r


traffic = [0]  # bytes this process sent in the last ring pass (diagnostics: info["bytes_sent"])


def _ring(parts: list[np.ndarray], counts: list[int], group):
    """Yield (source rank, parts of that rank's block) for every rank's block, this rank's first. The blocks
    travel around the ring (rank r sends to r + 1, receives from r - 1); the next block is in flight while the
    caller works on the current one (double buffering). ``counts``: every rank's row count (empty blocks are
    not sent)."""
    import torch
    import torch.distributed as dist

    size, me = dist.get_world_size(group), dist.get_rank(group)
    cur = [torch.from_numpy(np.ascontiguousarray(p)) for p in parts]
    traffic[0] = 0
    for step in range(size):
        src = (me - step) % size
        reqs, nxt = [], None
        if step < size - 1:
            incoming = (me - step - 1) % size
            if counts[src]:
                reqs += [dist.isend(t, _global_rank(group, (me + 1) % size), group=group) for t in cur]
                traffic[0] += sum(t.numel() * t.element_size() for t in cur)
            if counts[incoming]:
                nxt = [torch.empty((counts[incoming],) + tuple(t.shape[1:]), dtype=t.dtype) for t in cur]
                reqs += [dist.irecv(t, _global_rank(group, (me - 1) % size), group=group) for t in nxt]
            else:
                nxt = [torch.empty((0,) + tuple(t.shape[1:]), dtype=t.dtype) for t in cur]
        yield src, [t.numpy() for t in cur]
        for r in reqs:
            r.wait()
        cur = nxt


def _wide(f):
    """float16/bfloat16 rows widened to float32 (exact) so that they travel as one dtype."""
    from ganmetrics._arrays import F32, F64, Features

    if f.code in (F32, F64):
        return f
    return Features(np.ascontiguousarray(f.rows(0, f.n), dtype=np.float32), F32, f.name)


def _merge_topk(vals, gidx, new_vals, new_gidx, k):
    v = np.concatenate([vals, new_vals], axis=1)
    g = np.concatenate([gidx, new_gidx], axis=1)
    order = np.lexsort((g, v), axis=1)[:, :k]  # by distance, then global index
    return np.take_along_axis(v, order, 1), np.take_along_axis(g, order, 1)


def ring_radii2(local, k: int, center: np.ndarray, counts: list[int], group) -> np.ndarray:
    """Exact squared k-NN radii of this rank's rows within the union of every rank's rows (itself excluded)."""
    import torch.distributed as dist

    from ganmetrics._arrays import Features
    from ganmetrics.metrics.knn import _HostEngine

    eng = _HostEngine()
    offsets = np.concatenate([[0], np.cumsum(counts)])
    n = local.n
    vals = np.full((n, 0), np.inf)
    gidx = np.zeros((n, 0), dtype=np.int64)
    me = dist.get_rank(group)
    for src, (block,) in _ring([local.array], counts, group):
        if n == 0 or len(block) == 0:
            continue
        if src == me:
            kk = min(k, n - 1)
            if kk < 1:
                continue
            v, i, _ = eng.knn(local, None, kk, center)
        else:
            other = Features(block, local.code, "block")
            v, i, _ = eng.knn(local, other, min(k, len(block)), center)
        vals, gidx = _merge_topk(vals, gidx, np.asarray(v, dtype=np.float64), np.asarray(i, np.int64) + offsets[src], k)
    if n and vals.shape[1] < k:
        raise ValueError(f"k = {k} needs more than {vals.shape[1]} other samples")
    return vals[:, k - 1] if n else np.zeros(0)


def _shards(group, *sets) -> list[list[tuple[int, int, int, np.ndarray | None]]]:
    """For each set, every rank's (rows, dim, dtype code, float64 column sums or None when empty)."""
    import torch.distributed as dist

    mine = [(f.n, f.dim, f.code, np.asarray(f.array, dtype=np.float64).sum(0) if f.n else None) for f in sets]
    everyone: list = [None] * dist.get_world_size(group)
    dist.all_gather_object(everyone, mine, group=group)
    return [[rank[i] for rank in everyone] for i in range(len(sets))]


def _union_center(*shards) -> np.ndarray:
    """The mean of every row of every set (the engine's centre for its float32 products)."""
    sums = [m[3] for sh in shards for m in sh if m[0]]
    return sum(sums) / sum(m[0] for sh in shards for m in sh)


def prdc(real: Any, fake: Any, k: int, group, strict: bool = False, fake_radii: bool = True) -> tuple[dict, dict]:
    """Precision, recall, density and coverage of every rank's shards together, equal to one process on the
    concatenated data: exact radii from a ring pass over each set, one ring cross pass (real blocks travel with
    their radii), counts and flags combined with all-reduce."""
    import torch
    import torch.distributed as dist

    from ganmetrics._arrays import F64, Features, as_features
    from ganmetrics.metrics.knn import _HostEngine, _check_k

    def local():
        fr = _wide(as_features(real, "real", min_rows=0))
        ff = _wide(as_features(fake, "fake", min_rows=0))
        return fr, ff

    fr, ff = guarded(group, local, "prdc")
    size = dist.get_world_size(group)
    real_shards, fake_shards = _shards(group, fr, ff)
    dims = {m[1] for m in real_shards + fake_shards if m[0]}
    if len(dims) != 1:
        raise ValueError(f"prdc: real and fake shards must have one feature dimension, got {sorted(dims)}")
    codes = {m[2] for m in real_shards + fake_shards if m[0]}
    rc, fc = [m[0] for m in real_shards], [m[0] for m in fake_shards]
    n_real, n_fake = sum(rc), sum(fc)
    k = _check_k(k, "k", n_real, "real")
    if fake_radii:
        _check_k(k, "k", n_fake, "fake")
    d = dims.pop()
    if len(codes) > 1:  # one dtype travels: float64 (widening float32 is exact)
        fr = Features(np.asarray(fr.array, dtype=np.float64).reshape(fr.n, d), F64, "real")
        ff = Features(np.asarray(ff.array, dtype=np.float64).reshape(ff.n, d), F64, "fake")
    fr = fr if fr.n else Features(np.zeros((0, d), dtype=fr.array.dtype), fr.code, "real")
    ff = ff if ff.n else Features(np.zeros((0, d), dtype=ff.array.dtype), ff.code, "fake")
    center = _union_center(real_shards, fake_shards)
    real_r2 = ring_radii2(fr, k, center, rc, group)
    sent = traffic[0]
    fake_r2 = ring_radii2(ff, k, center, fc, group) if fake_radii else None
    sent += traffic[0] if fake_radii else 0
    eng = _HostEngine()
    offsets = np.concatenate([[0], np.cumsum(rc)])
    row_count = np.zeros(ff.n, dtype=np.int64)
    col_any = np.zeros(n_real, dtype=np.int64)
    col_min = np.full(n_real, np.inf)
    rechecked = 0
    for src, (block, r2) in _ring([fr.array, real_r2], rc, group):
        if ff.n == 0 or len(block) == 0:
            continue
        out = eng.cross(ff, Features(block, fr.code, "real"), center, col_radius2=np.ascontiguousarray(r2),
                        row_radius2=fake_r2, col_min=True, strict=bool(strict))
        row_count += out["row_count"]
        a, b = offsets[src], offsets[src + 1]
        if fake_radii:
            col_any[a:b] = np.maximum(col_any[a:b], np.asarray(out["col_any"], dtype=np.int64))
        col_min[a:b] = np.minimum(col_min[a:b], out["col_min"])
        rechecked += int(out["rechecked"])
    sent += traffic[0]
    sums = torch.tensor([int((row_count > 0).sum()), int(row_count.sum()), rechecked], dtype=torch.int64)
    any_t, min_t = torch.from_numpy(col_any), torch.from_numpy(col_min)
    dist.all_reduce(sums, group=group)
    dist.all_reduce(any_t, op=dist.ReduceOp.MAX, group=group)
    dist.all_reduce(min_t, op=dist.ReduceOp.MIN, group=group)
    radii: list = [None] * size
    dist.all_gather_object(radii, real_r2, group=group)
    all_r2 = np.concatenate(radii)
    mins = min_t.numpy()
    covered = mins < all_r2 if strict else mins <= all_r2
    values = {"precision": int(sums[0]) / n_fake}
    if fake_radii:
        values["recall"] = float(np.mean(any_t.numpy() > 0))
    values.update({"density": float(int(sums[1]) / (k * n_fake)), "coverage": float(np.mean(covered))})
    info = {"k": k, "strict": bool(strict), "rechecked_pairs": int(sums[2]), "ranks": size, "bytes_sent": sent}
    return values, info


def knn_radii(x: Any, k: int, group) -> np.ndarray:
    """Exact k-NN radii of this rank's rows within every rank's rows together (itself excluded)."""
    from ganmetrics._arrays import as_features
    from ganmetrics.metrics.knn import _check_k

    f = guarded(group, lambda: _wide(as_features(x, "x", min_rows=0)), "knn_radii")
    (shards,) = _shards(group, f)
    if len({m[1] for m in shards if m[0]}) > 1 or len({m[2] for m in shards if m[0]}) > 1:
        raise ValueError("knn_radii: the shards must share one feature dimension and dtype")
    counts = [m[0] for m in shards]
    k = _check_k(k, "k", sum(counts), "x")
    return np.sqrt(ring_radii2(f, k, _union_center(shards), counts, group))
