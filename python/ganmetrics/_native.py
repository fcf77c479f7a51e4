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

try:
    from ganmetrics import _cuda  # noqa: E402
    CUDA_IMPORT_ERROR: str | None = None
except ImportError as exc:  # built without CUDA, or the CUDA runtime could not load
    _cuda = None
    CUDA_IMPORT_ERROR = str(exc)

__all__ = ["_core", "_cuda", "CUDA_IMPORT_ERROR"]
