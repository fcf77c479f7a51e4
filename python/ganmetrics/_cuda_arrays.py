"""Device inputs: torch CUDA tensors, ``__cuda_array_interface__`` objects (CuPy, Numba, JAX via DLPack
into torch) as raw device pointers with strides, dtype code and the producer's stream.

The extension never links libtorch: it only receives integers (pointer, sizes, strides, stream).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np

from ganmetrics._arrays import BF16, F16, F32, F64
from ganmetrics._native import CUDA_IMPORT_ERROR, _cuda

_TYPESTR = {"<f2": F16, "<f4": F32, "<f8": F64}

# The CUDA kernels are compiled and tested by tests/test_cuda.py, but those tests have not yet run on a
# GPU. Until they have, the GPU paths run only when asked for explicitly.
UNVERIFIED_FLAG = "GANMETRICS_ENABLE_UNVERIFIED_CUDA"


@dataclass(frozen=True)
class DeviceFeatures:
    """A 2-D array on a CUDA device; ``owner`` keeps the memory alive while the kernels read it."""

    ptr: int
    rows: int
    cols: int
    row_stride: int  # elements
    col_stride: int
    code: int
    stream: int
    device: int
    name: str
    owner: Any

    @property
    def n(self) -> int:
        return self.rows

    @property
    def dim(self) -> int:
        return self.cols


def is_device_array(x: Any) -> bool:
    if type(x).__module__.startswith("torch"):
        return bool(getattr(x, "is_cuda", False))
    if hasattr(x, "__cuda_array_interface__"):
        return True
    if hasattr(x, "__dlpack_device__"):
        return x.__dlpack_device__()[0] in (2, 13)  # kDLCUDA, kDLCUDAManaged
    return False


def require_cuda(name: str) -> None:
    if _cuda is None:
        raise ValueError(f"{name} lives on a CUDA device but {CUDA_IMPORT_ERROR}")
    if _cuda.device_count() == 0:
        raise ValueError(f"{name} lives on a CUDA device but no CUDA device is usable: {_cuda.unavailable_reason()}")
    if os.environ.get(UNVERIFIED_FLAG, "") != "1":
        raise ValueError(
            f"{name} needs the CUDA kernels, which are built but have not yet been validated on a GPU; "
            f"move the data to the CPU, or set {UNVERIFIED_FLAG}=1 to run them anyway"
        )


def as_device_features(x: Any, name: str, *, min_rows: int = 1) -> DeviceFeatures:
    """Validate a device array as (samples x features) and describe it for the CUDA kernels."""
    require_cuda(name)
    if not type(x).__module__.startswith("torch") and not hasattr(x, "__cuda_array_interface__"):
        import torch  # DLPack producers (JAX, ...) go through torch's importer

        x = torch.from_dlpack(x)
    if type(x).__module__.startswith("torch"):
        import torch

        t = x.detach()
        codes = {torch.float16: F16, torch.bfloat16: BF16, torch.float32: F32, torch.float64: F64}
        if t.dtype not in codes:
            if t.dtype.is_complex or not (t.dtype.is_floating_point or t.dtype in (torch.int32, torch.int64, torch.bool)):
                raise TypeError(f"{name} has dtype {t.dtype}; expected float16/bfloat16/float32/float64")
            t = t.double()
        if t.dim() != 2:
            raise ValueError(f"{name} must be 2-D (samples x features), got shape {tuple(t.shape)}")
        stream = torch.cuda.current_stream(t.device).cuda_stream
        desc = DeviceFeatures(t.data_ptr(), t.shape[0], t.shape[1], t.stride(0), t.stride(1), codes.get(t.dtype, F64),
                              int(stream), t.device.index or 0, name, t)
    else:
        cai = x.__cuda_array_interface__
        typestr = cai["typestr"]
        if typestr not in _TYPESTR:
            raise TypeError(f"{name} has CUDA array type {typestr!r}; expected float16/float32/float64")
        shape = tuple(cai["shape"])
        if len(shape) != 2:
            raise ValueError(f"{name} must be 2-D (samples x features), got shape {shape}")
        item = int(typestr[2:])
        strides = cai.get("strides") or (shape[1] * item, item)
        ptr = int(cai["data"][0])
        stream = cai.get("stream") or 0  # v3: 1 = legacy default stream, 2 = per-thread default stream
        desc = DeviceFeatures(ptr, shape[0], shape[1], strides[0] // item, strides[1] // item, _TYPESTR[typestr],
                              int(stream), _cuda.pointer_device(ptr) if ptr else 0, name, x)
    if desc.cols < 1:
        raise ValueError(f"{name} has no feature columns")
    if desc.rows < min_rows:
        raise ValueError(f"{name} has {desc.rows} sample(s); at least {min_rows} are needed")
    return desc


def moments_update(mean: np.ndarray, m2: np.ndarray, n: int, f: DeviceFeatures) -> int:
    """Fold a device array into host float64 state on the GPU; NaN/Inf is an error and leaves the state unchanged."""
    _cuda.set_device(f.device)
    new_n, bad, first = _cuda.moments_update_device(mean, m2, n, f.ptr, f.rows, f.cols, f.row_stride, f.col_stride,
                                                    f.code, f.stream)
    if bad:
        raise ValueError(f"{f.name} contains {bad} NaN or Inf value(s); the first is in row {first}")
    return int(new_n)
