"""Inputs in, views out.

Every public function accepts numpy arrays, torch tensors, objects with ``__dlpack__`` or
``__array__``, and paths to ``.npy`` (memory-mapped, never read whole) or ``.npz`` files, in
float16, bfloat16, float32 or float64, C-/F-contiguous or strided. They become a :class:`Features`:
a 2-D numpy view (no copy where a view serves) and the dtype code the kernels dispatch on.
bfloat16 has no numpy type, so it travels as its raw uint16 bits with the code ``BF16``.
"""

from __future__ import annotations

import os
import zipfile
from dataclasses import dataclass
from typing import Any, Iterator

import numpy as np
from ganmetrics._io import check_npz, open_npy

F16, BF16, F32, F64 = 0, 1, 2, 3
_CODE_OF = {np.dtype(np.float16): F16, np.dtype(np.float32): F32, np.dtype(np.float64): F64}
_FINITE_CHUNK_BYTES = 64 << 20


@dataclass(frozen=True)
class Features:
    """A validated 2-D feature array: ``array`` holds the data (uint16 bits for bfloat16)."""

    array: np.ndarray
    code: int
    name: str

    @property
    def n(self) -> int:
        return int(self.array.shape[0])

    @property
    def dim(self) -> int:
        return int(self.array.shape[1])

    @property
    def dtype_name(self) -> str:
        return {F16: "float16", BF16: "bfloat16", F32: "float32", F64: "float64"}[self.code]

    def rows(self, start: int, stop: int) -> np.ndarray:
        """Rows [start, stop) as float32/float64/float16 numpy (bfloat16 widened to float32)."""
        block = self.array[start:stop]
        if self.code == BF16:
            return (block.astype(np.uint32) << 16).view(np.float32)
        return np.asarray(block)

    def chunks(self, rows_per_chunk: int) -> Iterator[tuple[int, int]]:
        for start in range(0, self.n, rows_per_chunk):
            yield start, min(self.n, start + rows_per_chunk)


def is_path(x: Any) -> bool:
    return isinstance(x, (str, os.PathLike))


def _torch_to_numpy(t: Any, name: str) -> tuple[np.ndarray, int]:
    import torch

    if t.device.type != "cpu":
        raise ValueError(
            f"{name} is a tensor on '{t.device}': the host engine reads host arrays; let the metric run where the "
            f"tensor lives (engine='auto' or 'torch'), or pass {name}.cpu()"
        )
    if t.layout != torch.strided:
        raise ValueError(f"{name} is a {t.layout} tensor; features must be a dense tensor (pass {name}.to_dense())")
    t = t.detach()
    if t.dtype == torch.bfloat16:
        return t.view(torch.int16).numpy().view(np.uint16), BF16
    if t.dtype.is_complex:
        raise TypeError(f"{name} has complex dtype {t.dtype}; features must be real numbers")
    return t.numpy(), -1


def _load_path(path: Any, name: str) -> np.ndarray:
    p = os.fspath(path)
    if not os.path.exists(p):
        raise FileNotFoundError(f"{name}: no such file: {p}")
    if p.endswith(".npy"):
        return open_npy(p, name)
    if p.endswith(".npz"):
        keys = list(check_npz(p, name))
        key = next((k for k in ("features", "feats", "x", "arr_0") if k in keys), keys[0] if len(keys) == 1 else None)
        if key is not None:
            try:
                with np.load(p, allow_pickle=False) as z:
                    return z[key]
            except (ValueError, zipfile.BadZipFile, OSError, EOFError) as exc:
                raise ValueError(f"{name}: cannot read {p} as an .npz file ({exc})") from None
        raise ValueError(
            f"{name}: {p} holds arrays {keys}; expected one array, or one named 'features' "
            "(statistics files with 'mu' and 'sigma' are accepted where statistics are)"
        )
    raise ValueError(f"{name}: unsupported file type {p!r}; expected .npy or .npz")


def to_numpy(x: Any, name: str) -> tuple[np.ndarray, int]:
    """Any supported input -> (numpy array, dtype code or -1 when numpy's dtype says it)."""
    if is_path(x):
        return _load_path(x, name), -1
    mod = type(x).__module__
    if mod.startswith("torch"):
        return _torch_to_numpy(x, name)
    if isinstance(x, np.ndarray):
        return x, -1
    if hasattr(x, "__cuda_array_interface__"):
        raise ValueError(
            f"{name} lives on a CUDA device: the host engine reads host arrays; let the metric run where it lives "
            "(engine='auto' or 'torch', with a CUDA build of torch), or copy it to the host"
        )
    if hasattr(x, "__dlpack__"):
        dev = x.__dlpack_device__()[0] if hasattr(x, "__dlpack_device__") else 1
        if dev != 1:  # kDLCPU
            raise ValueError(f"{name} lives on a non-CPU device (DLPack device type {dev}); copy it to the host")
        return np.from_dlpack(x), -1
    try:
        return np.asarray(x), -1
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name}: cannot read {type(x).__name__} as an array ({exc})") from None


def check_finite(f: Features, offset: int = 0) -> None:
    """Raise ValueError naming the input, the count of non-finite values and the first bad row.

    ``offset`` is added to reported row numbers when ``f`` is a block of a larger input.
    """
    if f.code == BF16:
        # exponent bits all ones <=> Inf or NaN
        bad_fn = lambda block: (block & 0x7F80) == 0x7F80  # noqa: E731
    else:
        bad_fn = lambda block: ~np.isfinite(block)  # noqa: E731
    rows_per_chunk = max(1, _FINITE_CHUNK_BYTES // max(1, f.dim * f.array.itemsize))
    count, first = 0, None
    for a, b in f.chunks(rows_per_chunk):
        bad = bad_fn(np.asarray(f.array[a:b]))
        if bad.any():
            rows = np.flatnonzero(bad.any(axis=1))
            count += int(bad.sum())
            if first is None:
                first = offset + a + int(rows[0])
    if count:
        raise ValueError(f"{f.name} contains {count} NaN or Inf value(s); the first is in row {first}")


TINY = 2.0**-500  # below it, squared differences of features lose their digits to float64 underflow


def max_abs(f: Features) -> float:
    """The largest |value| of a float64 feature array (0 for other dtypes, which cannot underflow float64)."""
    if f.code != F64 or f.n == 0:
        return 0.0
    rows_per_chunk = max(1, _FINITE_CHUNK_BYTES // max(1, f.dim * 8))
    return max(float(np.abs(np.asarray(f.array[a:b])).max()) for a, b in f.chunks(rows_per_chunk))


def refuse_tiny(mx: float, name: str, what: str) -> None:
    """One clear error when every value is below :data:`TINY` (but not all zero): ``what`` (squared deviations,
    squared distances) would underflow float64 silently. Scaling by a power of two is exact and the metrics
    scale with it (FID by c^2; k-NN decisions not at all)."""
    if 0.0 < mx < TINY:
        raise ValueError(f"{name}: every feature value is below {TINY:.3g} (the largest is {mx:.3g}): its {what} "
                         "underflow float64; multiply the features by a power of two c = 2^k (k-NN decisions do not "
                         "change; the Fréchet distance scales by c^2)")


def as_features(x: Any, name: str, *, min_rows: int = 1, check: bool = True) -> Features:
    """Validate ``x`` as a (samples x features) array and return a :class:`Features` view."""
    if isinstance(x, Features):
        if x.n < min_rows:
            raise ValueError(f"{x.name} has {x.n} sample(s); at least {min_rows} are needed")
        if check:
            check_finite(x)
        return x
    if x is None:
        raise ValueError(f"{name} is None; expected an array of features")
    if type(x).__name__ == "FeatureStats":
        raise TypeError(f"{name} is a FeatureStats (a mean and covariance); this metric needs the features themselves")
    arr, code = to_numpy(x, name)
    if code == -1:
        if arr.dtype.kind == "c":
            raise TypeError(f"{name} has complex dtype {arr.dtype}; features must be real numbers")
        if arr.dtype.kind not in "fiub":
            raise TypeError(f"{name} has non-numeric dtype {arr.dtype}; expected float16/bfloat16/float32/float64")
        if arr.dtype not in _CODE_OF:  # integers, booleans, float128: no kernel of their own -> float64
            arr = arr.astype(np.float64)
        code = _CODE_OF[arr.dtype]
    if arr.ndim != 2:
        raise ValueError(f"{name} must be 2-D (samples x features), got shape {tuple(arr.shape)}")
    if arr.shape[1] < 1:
        raise ValueError(f"{name} has no feature columns (shape {tuple(arr.shape)})")
    if arr.shape[0] < min_rows:
        raise ValueError(f"{name} has {arr.shape[0]} sample(s); at least {min_rows} are needed")
    if arr.strides[0] % arr.itemsize or arr.strides[1] % arr.itemsize:
        arr = np.ascontiguousarray(arr)  # byte-misaligned views (rare): the kernels need element strides
    if not arr.dtype.isnative:
        arr = arr.astype(arr.dtype.newbyteorder("="))
    f = Features(arr, code, name)
    if check:
        check_finite(f)
    return f
