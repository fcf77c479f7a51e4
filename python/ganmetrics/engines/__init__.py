"""Engines: WHERE the numerics run. A metric (``ganmetrics.metrics``) says what is computed, once, on the
primitives of :class:`~ganmetrics.engines.base.Engine`; :func:`select` picks the engine once per call from
where the inputs live and from ``group=``:

- ``host`` (:mod:`.host`): the C++ kernels (``_core``) on host arrays;
- ``torch`` (:mod:`.torch_engine`): the same algorithms in torch operations on the tensors' own device (CUDA,
  ROCm, MPS or the CPU), the default for tensors on a device;
- ``cuda`` (:mod:`.cuda`): the C++/CUDA kernels (``_cuda``) on device arrays, used for CUDA inputs only with
  ``GANMETRICS_ENABLE_UNVERIFIED_CUDA=1`` until they have run on a GPU;
- ``ring`` (:mod:`.ring`): a composite over a local engine and a torch.distributed group, answering the same
  primitives for rows spread over the ranks.

``engine=`` on every metric forces one: ``"host"``, ``"torch"`` (e.g. on CPU tensors: how CI runs every line of
the torch engine), ``"cuda"``; ``"auto"`` (the default) follows the inputs.
"""

from __future__ import annotations

import contextlib
import os
from typing import Any, Iterator

from ganmetrics._cuda_arrays import UNVERIFIED_FLAG, is_device_array
from ganmetrics.engines.base import (DEFAULT_WORKSPACE_BYTES, MAX_WORKSPACE_BYTES, Engine, Set, check_k, describe,
                                     check_same_dim, forced_tiles, tile_kwargs)
from ganmetrics.engines.cuda import CudaEngine
from ganmetrics.engines.host import HostEngine

ENGINES = ("auto", "host", "torch", "cuda")
_forced: str | None = None
_forced_device: str | None = None


@contextlib.contextmanager
def forced_engine(name: str, device: str | None = None) -> Iterator[None]:
    """Test hook: ``engine="auto"`` means ``name`` for every input (how the suites run on every engine); with
    ``device``, the torch engine moves host inputs there (the suites on a GPU)."""
    global _forced, _forced_device
    if name not in ENGINES[1:]:
        raise ValueError(f"forced_engine takes one of {ENGINES[1:]}, got {name!r}")
    saved, _forced, _forced_device = (_forced, _forced_device), name, device
    try:
        yield
    finally:
        _forced, _forced_device = saved


def on_a_device(x: Any) -> bool:
    """Whether x lives on an accelerator: a CUDA array, or a torch tensor on any device but the CPU."""
    if type(x).__module__.startswith("torch") and hasattr(x, "device"):
        return x.device.type != "cpu"
    return is_device_array(x)


def engine_name(engine: Any, *inputs: Any) -> str:
    """The engine ``engine`` ("auto", "host", "torch", "cuda") means for these inputs: "auto" is the host for host
    inputs, and for inputs on a device the torch engine (the custom CUDA kernels with GANMETRICS_ENABLE_UNVERIFIED_CUDA=1)."""
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {', '.join(map(repr, ENGINES))}, got {engine!r}")
    if engine != "auto":
        return engine
    if _forced is not None:
        return _forced
    placed = [on_a_device(x) for x in inputs]
    if any(placed) and not all(placed):
        raise ValueError("the inputs live on different devices (some on a device, some on the host); "
                         "move them to the same place")
    if not placed or not all(placed):
        return "host"
    cuda = all(is_device_array(x) for x in inputs)
    return "cuda" if cuda and os.environ.get(UNVERIFIED_FLAG, "") == "1" else "torch"


def local_engine(*inputs: Any, engine: str = "auto", workspace_bytes: int | None = None,
                 progress: bool | None = None) -> Engine:
    """The engine for inputs held by this process."""
    name = engine_name(engine, *inputs)
    if name == "torch":
        from ganmetrics.engines.torch_engine import TorchEngine  # torch: an optional heavy dependency

        return TorchEngine(_forced_device if engine == "auto" else None, workspace_bytes, progress)
    return (CudaEngine if name == "cuda" else HostEngine)(workspace_bytes, progress)


def select(*inputs: Any, group: Any = None, engine: str = "auto", workspace_bytes: int | None = None,
           progress: bool | None = None, call: dict | None = None) -> Engine:
    """The engine for one call: with ``group`` (``"default"`` or a torch.distributed ProcessGroup) the ring over
    the local engine, else the local engine of where the inputs live (``engine`` forces one).

    ``call``: the call and the arguments every rank must agree on (``{"call": "prdc", "k": 5, ...}``). On a
    ring, before its first collective, the ranks compare it with each other, together with the width and
    dtype of each input (``call["inputs"]`` describes other inputs than those the engine is chosen by): a mismatch is one :class:`~ganmetrics.engines.ring.ShardError` on every rank that
    names the argument and the ranks (never a crash inside the transport, or a value of no rank's call)."""
    local = local_engine(*inputs, engine=engine, workspace_bytes=workspace_bytes, progress=progress)
    if group is None:
        return local
    from ganmetrics.engines import ring  # torch.distributed: an optional heavy dependency

    resolved = ring.resolve_group(group)
    ring.agree(resolved, {"call": "a ganmetrics call", "engine": engine, "inputs": [describe(x) for x in inputs],
                          **(call or {})})
    return ring.RingEngine(local, resolved)


__all__ = ["DEFAULT_WORKSPACE_BYTES", "ENGINES", "MAX_WORKSPACE_BYTES", "CudaEngine", "Engine", "HostEngine", "Set",
           "check_k", "check_same_dim", "describe", "engine_name", "forced_engine", "forced_tiles", "local_engine", "on_a_device", "select",
           "tile_kwargs"]
