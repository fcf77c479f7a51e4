"""ganmetrics: fast, exact metrics for generative models.

Numbers in float64 where they matter, C++ kernels (BLAS, LAPACK, OpenMP) underneath, memory linear
in the number of samples.
"""

from __future__ import annotations

__version__ = "0.1.0"

from ganmetrics.extraction import extract
from ganmetrics.images import Generator
from ganmetrics.metrics.bootstrap import BiasWarning, Interval, bootstrap
from ganmetrics.metrics.frechet import FIDInfinityResult, SmallSampleWarning, fid, fid_infinity, fid_many, frechet_distance
from ganmetrics.metrics.inception import ScoreResult, inception_score
from ganmetrics.metrics.kernel import KIDResult, cmmd, kid
from ganmetrics.metrics.knn import (
    MetricResult,
    density_coverage,
    coverage_holes,
    knn_radii,
    nn1_accuracy,
    precision_recall,
    prdc,
    realism_score,
)
from ganmetrics.metrics.novelty import alpha_precision, authpct, ct_score, fls, memorization, train_neighbours
from ganmetrics.metrics.detectability import C2STResult, c2st
from ganmetrics.metrics.prd import PRDResult, plot_prd, prd
from ganmetrics.plots import plot_coverage_holes, plot_detectable, plot_nearest_neighbours, plot_realism
from ganmetrics.metrics.vendi import vendi
from ganmetrics.report import Report, evaluate
from ganmetrics.reference import Reference
from ganmetrics.leaderboard import Comparison, Leaderboard, evaluate_many
from ganmetrics.runtime import build_info, cuda_available, get_num_threads, set_num_threads
from ganmetrics.stats import FeatureStats


__all__ = [
    "__version__",
    "FIDInfinityResult",
    "FeatureStats",
    "Generator",
    "BiasWarning",
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
    "alpha_precision",
    "authpct",
    "ct_score",
    "fls",
    "train_neighbours",
    "C2STResult",
    "c2st",
    "coverage_holes",
    "plot_coverage_holes",
    "plot_detectable",
    "plot_nearest_neighbours",
    "plot_realism",
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

# ganmetrics.training needs torch, an optional dependency: it is loaded on first use of these names.
_TRAINING_NAMES = ("TrainingMonitor", "compare_runs")


def __getattr__(name: str):
    if name == "training" or name in _TRAINING_NAMES:
        import ganmetrics.training as training  # torch: an optional heavy dependency

        return training if name == "training" else getattr(training, name)
    raise AttributeError(f"module 'ganmetrics' has no attribute {name!r}")
