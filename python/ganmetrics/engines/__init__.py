"""Engines: WHERE the numerics run. A metric (``ganmetrics.metrics``) says what is computed, once, on the
primitives of :class:`~ganmetrics.engines.base.Engine`; :func:`select` picks the engine once per call from
where the inputs live and from ``group=``:

- ``host`` (:mod:`.host`): the C++ kernels (``_core``) on host arrays;
- ``cuda`` (:mod:`.cuda`): the C++/CUDA kernels (``_cuda``) on device arrays, behind
  ``GANMETRICS_ENABLE_UNVERIFIED_CUDA=1`` until they have run on a GPU;
- ``ring`` (:mod:`.ring`): a composite over a local engine and a torch.distributed group, answering the same
  primitives for rows spread over the ranks.
"""

from __future__ import annotations

from typing import Any

from ganmetrics._cuda_arrays import is_device_array
from ganmetrics.engines.base import (DEFAULT_WORKSPACE_BYTES, MAX_WORKSPACE_BYTES, Engine, Set, check_k,
                                     check_same_dim, forced_tiles, tile_kwargs)
from ganmetrics.engines.cuda import CudaEngine
from ganmetrics.engines.host import HostEngine


def local_engine(*inputs: Any, workspace_bytes: int | None = None, progress: bool | None = None) -> Engine:
    """The engine for inputs held by this process: all on the host, or all on a CUDA device."""
    on_device = [is_device_array(x) for x in inputs]
    if any(on_device) and not all(on_device):
        raise ValueError("the inputs live on different devices (some on a CUDA device, some on the host); "
                         "move them to the same place")
    cls = CudaEngine if on_device and all(on_device) else HostEngine
    return cls(workspace_bytes, progress)


def select(*inputs: Any, group: Any = None, workspace_bytes: int | None = None,
           progress: bool | None = None) -> Engine:
    """The engine for one call: with ``group`` (``"default"`` or a torch.distributed ProcessGroup) the ring over
    the host engine, else the local engine of where the inputs live."""
    if group is None:
        return local_engine(*inputs, workspace_bytes=workspace_bytes, progress=progress)
    from ganmetrics.engines import ring  # torch.distributed: an optional heavy dependency

    return ring.RingEngine(HostEngine(workspace_bytes, progress), ring.resolve_group(group))


__all__ = ["DEFAULT_WORKSPACE_BYTES", "MAX_WORKSPACE_BYTES", "CudaEngine", "Engine", "HostEngine", "Set",
           "check_k", "check_same_dim", "forced_tiles", "local_engine", "select", "tile_kwargs"]
