"""Precision and recall for distributions (Sajjadi et al. 2018, "Assessing generative models via precision and recall").

Both sets are clustered together with k-means (nearest-centroid steps run by the pairwise engine,
exact in float64); the cluster histograms P (real) and Q (fake) give the PRD curve
alpha(lambda) = sum_i min(lambda P_i, Q_i), beta(lambda) = alpha(lambda) / lambda over slopes
lambda = tan(angle), angle in (0, pi/2). F_8 summarises recall and F_1/8 precision.
Averaged over ``num_runs`` clusterings with different seeds, as in the authors' code.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ganmetrics._arrays import F64, Features, as_features
from ganmetrics._progress import steps
from ganmetrics.engines import HostEngine, check_same_dim
from ganmetrics.engines.base import host_center, union
from ganmetrics._image_inputs import accepts_images
from ganmetrics._io import atomic_write


@dataclass(frozen=True)
class PRDResult:
    """The PRD curve (``precision``, ``recall`` arrays over ``num_angles`` slopes) and its summaries
    ``f8`` (max F_8, recall-weighted) and ``f1_8`` (max F_1/8, precision-weighted), both in [0, 1]."""

    precision: np.ndarray = field(repr=False)
    recall: np.ndarray = field(repr=False)
    f8: float
    f1_8: float


def _nearest(points: Features, centroids: np.ndarray, center: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    out = HostEngine(progress=False).cross_pass(points, Features(centroids, F64, "centroids"), center, row_min=True)
    return out["row_argmin"], out["row_min"]


def kmeans(x: Features, k: int, *, seed: int, max_iter: int = 100) -> np.ndarray:
    """Lloyd's k-means with k-means++ seeding; returns the label of every row."""
    rng = np.random.default_rng(seed)
    center = host_center(x)
    first = int(rng.integers(x.n))
    centroids = [x.rows(first, first + 1)[0].astype(np.float64)]
    dist2 = None
    for _ in range(1, k):
        _, d2 = _nearest(x, np.asarray(centroids[-1:]), center)
        dist2 = d2 if dist2 is None else np.minimum(dist2, d2)
        total = dist2.sum()
        nxt = int(rng.choice(x.n, p=dist2 / total)) if total > 0 else int(rng.integers(x.n))
        centroids.append(x.rows(nxt, nxt + 1)[0].astype(np.float64))
    cents = np.ascontiguousarray(np.stack(centroids))
    labels = None
    # float64 rows for the centroid sums: all at once when they fit in 256 MB, else in 32 MB chunks
    whole = x.n * x.dim * 8 <= (256 << 20)
    x64 = x.rows(0, x.n).astype(np.float64) if whole else None
    rows = x.n if whole else max(1, (32 << 20) // (8 * x.dim))
    for _ in range(max_iter):
        new, _ = _nearest(x, cents, center)
        if labels is not None and np.array_equal(new, labels):
            break
        labels = new
        sums = np.zeros((k, x.dim))
        for a, b in x.chunks(rows):
            # rows grouped by label, each group summed in row order (deterministic; np.add.at is ~100x slower)
            lab = labels[a:b]
            order = np.argsort(lab, kind="stable")
            present, starts = np.unique(lab[order], return_index=True)
            block = x64[order] if whole else x.rows(a, b)[order].astype(np.float64)
            sums[present] += np.add.reduceat(block, starts, axis=0)
        counts = np.bincount(labels, minlength=k)
        keep = counts > 0  # an emptied cluster keeps its old centroid
        cents[keep] = sums[keep] / counts[keep, None]
        cents = np.ascontiguousarray(cents)
    return labels


MAX_ANGLES = 1_000_000  # the curve's arrays are num_angles x num_clusters
MAX_RUNS = 10_000


def prd_curve(real_hist: np.ndarray, fake_hist: np.ndarray, num_angles: int = 1001, epsilon: float = 1e-10):
    """PRD curve of two histograms (Sajjadi et al.'s ``compute_prd``)."""
    angles = np.linspace(epsilon, np.pi / 2 - epsilon, num_angles)
    slopes = np.tan(angles)
    precision = np.minimum(real_hist[None, :] * slopes[:, None], fake_hist[None, :]).sum(axis=1)
    recall = precision / slopes
    return np.clip(precision, 0, 1), np.clip(recall, 0, 1)


def _f_beta(precision: np.ndarray, recall: np.ndarray, beta: float, eps: float = 1e-10) -> np.ndarray:
    return (1 + beta**2) * (precision * recall) / ((beta**2 * precision) + recall + eps)


@accepts_images("real", "fake")
def prd(
    real: Any, fake: Any, *, num_clusters: int = 20, num_angles: int = 1001, num_runs: int = 10,
    enforce_balance: bool = True, seed: int = 0, progress: bool | None = None,
) -> PRDResult:
    """PRD curve and F_8 / F_1/8 (defaults as in the paper: 20 clusters, 1001 angles, 10 runs).

    ``enforce_balance`` requires equally many real and fake samples, as the authors' code does
    (unequal sets bias the cluster histograms). ``progress``: a bar over the k-means runs on a
    terminal (None), never (False) or always (True).
    """
    fr, ff = as_features(real, "real", min_rows=2), as_features(fake, "fake", min_rows=2)
    check_same_dim(fr, ff)
    if enforce_balance and fr.n != ff.n:
        raise ValueError(f"real has {fr.n} samples and fake {ff.n}; PRD needs equal sizes (or enforce_balance=False)")
    for pname, value, lo, hi in (("num_clusters", num_clusters, 2, None), ("num_angles", num_angles, 3, MAX_ANGLES),
                                 ("num_runs", num_runs, 1, MAX_RUNS)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise TypeError(f"{pname} must be an integer, got {value!r}")
        if value < lo or (hi is not None and value > hi):
            raise ValueError(f"{pname} must be in [{lo}, {hi if hi is not None else 'inf'}], got {value}")
    if num_clusters > min(fr.n, ff.n):
        raise ValueError(f"num_clusters = {num_clusters} is more than the smaller set's {min(fr.n, ff.n)} samples: the "
                         "cluster histograms would be mostly empty and the curve meaningless; use num_clusters <= "
                         f"{min(fr.n, ff.n)} (the paper: 20 clusters, with at least 10 samples per cluster)")
    union_set = union(fr, ff)
    precisions, recalls = [], []
    for run in steps(range(num_runs), num_runs, f"PRD k-means ({num_clusters} clusters)", unit="runs",
                     progress=progress):
        labels = kmeans(union_set, num_clusters, seed=seed + run)
        real_hist = np.bincount(labels[: fr.n], minlength=num_clusters) / fr.n
        fake_hist = np.bincount(labels[fr.n:], minlength=num_clusters) / ff.n
        p, r = prd_curve(real_hist, fake_hist, num_angles)
        precisions.append(p)
        recalls.append(r)
    precision, recall = np.mean(precisions, axis=0), np.mean(recalls, axis=0)
    return PRDResult(precision, recall, float(_f_beta(precision, recall, 8).max()),
                     float(_f_beta(precision, recall, 1 / 8).max()))


def plot_prd(results: dict[str, PRDResult] | PRDResult, ax=None, path: str | None = None):
    """Plot PRD curves (recall on x, precision on y) with matplotlib; optionally save to ``path``."""
    import matplotlib

    if ax is None and path is not None:
        matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    if isinstance(results, PRDResult):
        results = {"model": results}
    if ax is None:
        _, ax = plt.subplots(figsize=(4.5, 4.5))
    for name, res in results.items():
        ax.plot(res.recall, res.precision, label=f"{name} (F8={res.f8:.2f}, F1/8={res.f1_8:.2f})")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.legend(loc="lower left", fontsize=8)
    if path is not None:
        with atomic_write(path) as fh:
            ax.figure.savefig(fh, format=path.rsplit(".", 1)[-1], dpi=120, bbox_inches="tight")
    return ax
