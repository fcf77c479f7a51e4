"""What this build of ganmetrics is and sees: BLAS, OpenMP threads, CUDA; the CPU kernels' thread count."""

from __future__ import annotations

import numpy as np

from ganmetrics import __version__
from ganmetrics._native import CUDA_IMPORT_ERROR, _core, _cuda


def cuda_available() -> bool:
    """True when ganmetrics._cuda was built, loads, and sees at least one CUDA device."""
    return _cuda is not None and _cuda.device_count() > 0


MAX_THREADS = 1024


def set_num_threads(n: int) -> None:
    """Threads for the CPU kernels (OpenMP and BLAS); 0 restores the default (all cores). At most 1024."""
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)):
        raise TypeError(f"n must be an integer, got {n!r}")
    if not 0 <= int(n) <= MAX_THREADS:
        raise ValueError(f"n must be in [0, {MAX_THREADS}] (0 = the default), got {n}")
    _core.set_num_threads(int(n))


def get_num_threads() -> int:
    return int(_core.get_num_threads())


def build_info() -> dict:
    """How this ganmetrics was built and what it sees: BLAS library, OpenMP threads, CUDA."""
    info = dict(_core.build_info())
    info["version"] = __version__
    if _cuda is None:
        info["cuda"] = {"built": False, "reason": CUDA_IMPORT_ERROR or "built without CUDA"}
    else:
        count = _cuda.device_count()
        info["cuda"] = {
            "built": True,
            "architectures": _cuda.architectures().split(","),
            "runtime_version": _cuda.runtime_version(),
            "driver_version": _cuda.driver_version(),
            "devices": [_cuda.device_info(i) for i in range(count)],
            "available": count > 0,
            "reason": _cuda.unavailable_reason(),
        }
    return info
