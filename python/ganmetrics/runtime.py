"""What this build of ganmetrics is and sees: BLAS, OpenMP threads, CUDA; the CPU kernels' thread count."""

from __future__ import annotations

import warnings

import numpy as np

from ganmetrics import __version__
from ganmetrics import _native
from ganmetrics._native import CUDA_IMPORT_ERROR, _core, _cuda


def cuda_available() -> bool:
    """True when ganmetrics._cuda was built, loads, and sees at least one CUDA device."""
    return _cuda is not None and _cuda.device_count() > 0


MAX_THREADS = 1024


def set_num_threads(n: int) -> None:
    """Threads for ganmetrics' CPU kernels (its OpenMP regions and BLAS calls); 0 restores the default (all
    cores). At most 1024. torch's own thread count is left alone (``torch.set_num_threads`` sets that).

    In a process forked from one that had loaded ganmetrics (multiprocessing's and DataLoader's default
    start method on Linux), the kernels stay on one thread whatever is asked, with a warning: libgomp cannot
    start threads in such a child. Start workers with the ``spawn`` or ``forkserver`` method to use more."""
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)):
        raise TypeError(f"n must be an integer, got {n!r}")
    if not 0 <= int(n) <= MAX_THREADS:
        raise ValueError(f"n must be in [0, {MAX_THREADS}] (0 = the default), got {n}")
    if _native.forked_child and int(n) != 1:
        warnings.warn("this process was forked after ganmetrics was loaded: OpenMP (libgomp) cannot start threads in "
                      "it, so ganmetrics' kernels stay on one thread; use the 'spawn' or 'forkserver' start method "
                      "for parallel workers", RuntimeWarning, stacklevel=2)
        n = 1
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
