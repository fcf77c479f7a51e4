"""ganmetrics: fast, exact metrics for generative models.

Numbers in float64 where they matter, C++ kernels (BLAS, LAPACK, OpenMP) underneath, memory linear
in the number of samples.
"""

from __future__ import annotations

__version__ = "0.1.0"

import numpy as _np

from ganmetrics._native import CUDA_IMPORT_ERROR as _CUDA_IMPORT_ERROR
from ganmetrics._native import _core, _cuda
from ganmetrics.extraction import extract
from ganmetrics.images import Generator
from ganmetrics.metrics.bootstrap import Interval, bootstrap
from ganmetrics.metrics.frechet import FIDInfinityResult, SmallSampleWarning, fid, fid_infinity, fid_many, frechet_distance
from ganmetrics.metrics.inception import ScoreResult, inception_score
from ganmetrics.metrics.kernel import KIDResult, cmmd, kid
from ganmetrics.metrics.knn import (
    MetricResult,
    density_coverage,
    knn_radii,
    memorization,
    nn1_accuracy,
    precision_recall,
    prdc,
    realism_score,
)
from ganmetrics.metrics.prd import PRDResult, plot_prd, prd
from ganmetrics.metrics.vendi import vendi
from ganmetrics.report import Report, evaluate
from ganmetrics.reference import Reference
from ganmetrics.leaderboard import Comparison, Leaderboard, evaluate_many
from ganmetrics.stats import FeatureStats


def cuda_available() -> bool:
    """True when ganmetrics._cuda was built, loads, and sees at least one CUDA device."""
    return _cuda is not None and _cuda.device_count() > 0


MAX_THREADS = 1024


def set_num_threads(n: int) -> None:
    """Threads for the CPU kernels (OpenMP and BLAS); 0 restores the default (all cores). At most 1024."""
    if isinstance(n, bool) or not isinstance(n, (int, _np.integer)):
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
        info["cuda"] = {"built": False, "reason": _CUDA_IMPORT_ERROR or "built without CUDA"}
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


__all__ = [
    "__version__",
    "FIDInfinityResult",
    "FeatureStats",
    "Generator",
    "Interval",
    "KIDResult",
    "PRDResult",
    "Report",
    "Reference",
    "Leaderboard",
    "Comparison",
    "evaluate_many",
    "ScoreResult",
    "bootstrap",
    "cmmd",
    "evaluate",
    "extract",
    "fid_infinity",
    "inception_score",
    "kid",
    "plot_prd",
    "prd",
    "vendi",
    "MetricResult",
    "density_coverage",
    "knn_radii",
    "memorization",
    "nn1_accuracy",
    "precision_recall",
    "prdc",
    "realism_score",
    "SmallSampleWarning",
    "build_info",
    "cuda_available",
    "fid",
    "fid_many",
    "frechet_distance",
    "get_num_threads",
    "set_num_threads",
]
