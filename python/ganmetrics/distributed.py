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
