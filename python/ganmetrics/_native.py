"""Loads the compiled extension modules.

``ganmetrics._core`` links ``libscipy_openblas.so`` from the scipy-openblas32 package. Its RPATH
points there already; loading the library explicitly first makes the import independent of how
the package was installed (wheel, editable, build tree).
"""

from __future__ import annotations

import ctypes
import os
import sys

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



forked_child = False  # set in a process forked from one that had loaded ganmetrics


def _single_threaded_after_fork() -> None:
    """A child forked after the parent ran an OpenMP region (multiprocessing's and DataLoader's default start
    method on Linux) hangs in its first parallel region if it asks libgomp for more than one thread: the
    parent's thread pool does not exist in the child. Such a child therefore runs the kernels on one thread,
    whatever it later asks for (see :func:`ganmetrics.set_num_threads`)."""
    global forked_child
    forked_child = True
    _core.set_num_threads(1)
    torch = sys.modules.get("torch")
    if torch is not None and hasattr(torch, "set_num_threads"):  # torch's OpenMP regions (the torch engine on
        torch.set_num_threads(1)  # the CPU) would hang alike: the child's torch runs on one thread too


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_single_threaded_after_fork)

__all__ = ["_core", "_cuda", "CUDA_IMPORT_ERROR", "forked_child"]
