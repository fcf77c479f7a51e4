"""Loads the compiled extension modules.

``ganmetrics._core`` links ``libscipy_openblas.so`` from the scipy-openblas32 package. Its RPATH
points there already; loading the library explicitly first makes the import independent of how
the package was installed (wheel, editable, build tree).
"""

from __future__ import annotations

import ctypes
import os

import scipy_openblas32 as _openblas

ctypes.CDLL(os.path.join(_openblas.get_lib_dir(), _openblas.get_library(fullname=True)), mode=ctypes.RTLD_GLOBAL)

from ganmetrics import _core  # noqa: E402

import importlib.util  # noqa: E402

if importlib.util.find_spec("ganmetrics._cuda") is None:
    _cuda = None
    CUDA_IMPORT_ERROR: str | None = "ganmetrics._cuda was not built (no CUDA compiler was found at build time)"
else:
    try:
        from ganmetrics import _cuda  # noqa: E402
        CUDA_IMPORT_ERROR = None
    except ImportError as exc:  # built, but the CUDA runtime could not be loaded here
        _cuda = None
        CUDA_IMPORT_ERROR = f"ganmetrics._cuda could not be loaded: {exc}"



def _single_threaded_after_fork() -> None:
    """A child forked after the parent ran an OpenMP region (multiprocessing's and DataLoader's default start
    method on Linux) hangs in its first parallel region if it asks libgomp for the parent's thread pool, whose
    threads do not exist in the child. The child therefore runs the kernels on one thread;
    ganmetrics.set_num_threads(n) in the child asks for more again."""
    _core.set_num_threads(1)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_single_threaded_after_fork)

__all__ = ["_core", "_cuda", "CUDA_IMPORT_ERROR"]
