"""Exact k-NN metrics: precision, recall, density, coverage (and its holes), realism, 1-NN accuracy.

Each metric is written once, on the engine primitives (:mod:`ganmetrics.engines`): exact squared k-NN radii
(``radii2``) and one cross pass (``cross``), whose every decision -- is this point inside that ball, which
neighbour is the k-th -- equals a float64 brute force, for any tile size, thread count, row order, device or
number of processes. Memory is O((N + M) k) plus a fixed tile workspace; the N x M distance matrix is never
built. With ``group=`` each rank passes its shards and the ring engine answers the same primitives.

Semantics (ARCHITECTURE.md): the k-NN radius of a sample excludes the sample itself by index (a
duplicate row is a neighbour at distance 0); a point is inside a ball when its distance is ``<=``
the radius; decisions are taken on exact float64 squared distances sum_i (x_i - y_i)^2.
The ``prdc`` package (Naeem et al.) uses strict ``<``; results differ only where a distance equals
a radius exactly (duplicated samples, identical sets): there ``<=`` gives the natural answer
(identical sets have precision = recall = coverage = 1).
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from ganmetrics import engines
from ganmetrics._image_inputs import accepts_images
from ganmetrics.engines import Engine, Set, check_k

class MetricResult(dict):
    """A dict of metric values that also reads as attributes (``res.precision``).

    ``info`` holds diagnostics: the number of pairs recomputed in float64 and the k used.
    """

    def __init__(self, values: dict, info: dict | None = None):
        super().__init__(values)
        self.info = dict(info or {})

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None

    def __repr__(self) -> str:
        body = ", ".join(f"{k}={v:.6g}" if isinstance(v, float) else f"{k}=..." for k, v in self.items())
        return f"{type(self).__name__}({body})"


# ---------------------------------------------------------------------------------------------- radii
def knn_radii(x: Any, k: int = 5, *, workspace_bytes: int | None = None, progress: bool | None = None,
              group: Any = None, engine: str = "auto") -> np.ndarray:
    """Distance from each sample to its k-th nearest neighbour in the same set (itself excluded).

    Exact float64 Euclidean distances, shape (n,). ``progress``: a bar on a terminal (None), never
    (False) or always (True), as for every slow step in ganmetrics. ``group``: each rank passes its shard and
    gets the radii of its own rows within all the shards together. ``engine``: where it runs -- ``"auto"``
    (host arrays on the host engine, tensors on a device on the torch engine), ``"host"``, ``"torch"``, ``"cuda"``
    (:mod:`ganmetrics.engines`); every engine gives the same decisions.
    """
    eng = engines.select(x, group=group, engine=engine, workspace_bytes=workspace_bytes, progress=progress,
                         call={"call": "knn_radii", "k": k})
    (s,) = eng.sets({"x": x}, what="knn_radii")
    return np.sqrt(eng.radii2(s, check_k(k, "k", s.n, "x"), eng.center(s)))


def exact_radii2(x: Any, k: int, *, workspace_bytes: int | None = None, progress: bool | None = None) -> np.ndarray:
    """Exact squared k-NN radii of every row of ``x`` (itself excluded), float64, through its distinct rows."""
    eng = engines.select(x, workspace_bytes=workspace_bytes, progress=progress)
    (s,) = eng.sets({"x": x})
    return eng.radii2(s, check_k(k, "k", s.n, "x"), eng.center(s))


# ---------------------------------------------------------------------------------------------- PRDC
def real_fake_pass(eng: Engine, fr: Set, ff: Set, k: Any, *, fake_radii: bool, col_min: bool, strict: bool,
                   real_radii2: np.ndarray | None = None) -> tuple[dict, np.ndarray, dict]:
    """The k-NN radius passes and one fake x real cross pass shared by the PRDC metrics.

    ``real_radii2``: the real set's exact squared k-NN radii per row, computed before (a saved reference); the
    real radius pass is then skipped. Returns the cross pass's outputs, the real squared radii (this process's
    rows) and diagnostics. Exact duplicate rows (duplicated samples, a collapsed generator) go through the
    distinct rows: copies are at distance 0 and share every radius, so each decision is the one a pass over all
    rows makes.
    """
    k = check_k(k, "k", fr.n, "real")
    if fake_radii:
        check_k(k, "k", ff.n, "fake")
    center = eng.center(fr, ff)
    before = eng.evaluations
    real_r2 = eng.radii2(fr, k, center) if real_radii2 is None else np.ascontiguousarray(real_radii2, np.float64)
    fake_r2 = eng.radii2(ff, k, center) if fake_radii else None
    out = eng.cross(ff, fr, center, col_radius2=real_r2, row_radius2=fake_r2, col_min=col_min, strict=bool(strict),
                    desc="fake x real pass")
    counts = eng.total(np.array([out["rechecked"], eng.evaluations - before], np.int64))
    info = {"k": k, "strict": bool(strict), "rechecked_pairs": int(counts[0]), "exact_knn_evaluations": int(counts[1]),
            "distinct_real": eng.distinct(fr).total, "distinct_fake": eng.distinct(ff).total, **eng.info()}
    return out, real_r2, info


def _fraction(eng: Engine, flags: np.ndarray, n: int) -> float:
    """The share of true entries over every process's rows (an exact integer count, divided once)."""
    return int(eng.total(np.int64(np.count_nonzero(flags)))) / n


def prdc_values(eng: Engine, fr: Set, ff: Set, out: dict, real_r2: np.ndarray, info: dict,
                names: tuple[str, ...] = ("precision", "recall", "density", "coverage")) -> MetricResult:
    """Precision, recall, density and coverage (those in ``names``) from the pass of :func:`real_fake_pass`."""
    count = out["row_count"]
    values = {}
    if "precision" in names:
        values["precision"] = _fraction(eng, count > 0, ff.n)
    if "recall" in names:
        values["recall"] = _fraction(eng, out["col_any"], fr.n)
    if "density" in names:
        values["density"] = float(int(eng.total(np.int64(count.sum()))) / (info["k"] * ff.n))
    if "coverage" in names:
        covered = out["col_min"] < real_r2 if info["strict"] else out["col_min"] <= real_r2
        values["coverage"] = _fraction(eng, covered, fr.n)
    return MetricResult(values, info)


def prdc_features(fr: Any, ff: Any, k: int, *, progress: bool | None = None,
                  real_radii2: np.ndarray | None = None) -> MetricResult:
    """PRDC of two host feature sets on the host engine; ``real_radii2``: the real set's exact squared k-NN radii
    when a saved reference holds them (its radius pass is then skipped)."""
    eng = engines.HostEngine(progress=progress)
    sr, sf = eng.sets({"real": fr, "fake": ff})
    return prdc_values(eng, sr, sf, *real_fake_pass(eng, sr, sf, k, fake_radii=True, col_min=True, strict=False,
                                                    real_radii2=real_radii2))


def _real_fake(real: Any, fake: Any, what: str, workspace_bytes: int | None, progress: bool | None,
               group: Any, engine: str, **args: Any) -> tuple[Engine, Set, Set]:
    eng = engines.select(real, fake, group=group, engine=engine, workspace_bytes=workspace_bytes, progress=progress,
                         call={"call": what, **args})
    fr, ff = eng.sets({"real": real, "fake": fake}, what=what)
    return eng, fr, ff


@accepts_images("real", "fake")
def prdc(real: Any, fake: Any, k: int = 5, *, strict: bool = False, workspace_bytes: int | None = None,
         progress: bool | None = None, group: Any = None, engine: str = "auto") -> MetricResult:
    """Precision, recall, density and coverage with k nearest neighbours, from one cross pass.

    - precision (Kynkäänniemi et al. 2019): fraction of fake samples inside some real k-NN ball.
    - recall: fraction of real samples inside some fake k-NN ball.
    - density (Naeem et al. 2020): mean number of real balls containing a fake sample, divided by k;
      about 1 for matching distributions, can exceed 1.
    - coverage (Naeem et al. 2020): fraction of real samples whose ball contains some fake sample.

    Precision, recall and coverage lie in [0, 1]; higher is better for all four. ``strict=True``
    uses the ``prdc`` package's strict ``<`` for every inclusion (including coverage) instead of ``<=``.
    ``group`` (``"default"`` or a torch.distributed ProcessGroup): each rank passes its shards of ``real`` and
    ``fake`` (uneven or empty) and gets the values of all shards together, equal to one process on the
    concatenated data (blocks travel around a ring of the ranks; :mod:`ganmetrics.engines.ring`). ``engine``:
    where it runs (see :func:`knn_radii`); ``res.info["engine"]`` names the engine that computed it.
    """
    eng, fr, ff = _real_fake(real, fake, "prdc", workspace_bytes, progress, group, engine, k=k,
                             strict=strict)
    return prdc_values(eng, fr, ff, *real_fake_pass(eng, fr, ff, k, fake_radii=True, col_min=True, strict=strict))


@accepts_images("real", "fake")
def precision_recall(real: Any, fake: Any, k: int = 3, *, workspace_bytes: int | None = None,
                     progress: bool | None = None, group: Any = None, engine: str = "auto") -> MetricResult:
    """Improved precision and recall (Kynkäänniemi et al. 2019), k = 3 as in the paper.

    Precision: fraction of fake samples inside the real manifold (union of real k-NN balls);
    recall: fraction of real samples inside the fake manifold. Both in [0, 1], higher is better.
    ``group``: each rank passes its shards (see :func:`prdc`).
    """
    eng, fr, ff = _real_fake(real, fake, "precision_recall", workspace_bytes, progress, group, engine, k=k)
    out, real_r2, info = real_fake_pass(eng, fr, ff, k, fake_radii=True, col_min=False, strict=False)
    return prdc_values(eng, fr, ff, out, real_r2, info, ("precision", "recall"))


@accepts_images("real", "fake")
def density_coverage(real: Any, fake: Any, k: int = 5, *, workspace_bytes: int | None = None,
                     progress: bool | None = None, group: Any = None, engine: str = "auto") -> MetricResult:
    """Density and coverage (Naeem et al. 2020), k = 5 as in the paper; only real k-NN balls are needed.

    Density: mean count of real balls containing each fake sample, divided by k (about 1 when the
    distributions match; higher means fakes crowd dense real regions). Coverage: fraction of real
    samples whose ball contains at least one fake sample, in [0, 1]. Higher is better.
    ``group``: each rank passes its shards (see :func:`prdc`).
    """
    eng, fr, ff = _real_fake(real, fake, "density_coverage", workspace_bytes, progress, group, engine, k=k)
    out, real_r2, info = real_fake_pass(eng, fr, ff, k, fake_radii=False, col_min=True, strict=False)
    return prdc_values(eng, fr, ff, out, real_r2, info, ("density", "coverage"))


@accepts_images("real", "fake")
def coverage_holes(real: Any, fake: Any, k: int = 5, *, workspace_bytes: int | None = None,
                   progress: bool | None = None, group: Any = None, engine: str = "auto") -> MetricResult:
    """Coverage per real sample (Naeem et al. 2020): which real samples no generated sample comes near.

    Returns ``coverage`` (as :func:`density_coverage`), and per real sample ``covered`` (some generated sample
    lies within its k-NN ball), ``nearest_fake`` (global index) and ``margin`` (distance to the nearest generated
    sample over the ball's radius: > 1 for a hole, the larger the farther; inf where the radius is 0 and the
    sample is not covered). ``holes``: the uncovered real samples, the largest margin first. ``group``: each rank
    passes its shards; ``holes`` and ``coverage`` are global, the per-sample arrays are this rank's real rows.
    """
    eng, fr, ff = _real_fake(real, fake, "coverage_holes", workspace_bytes, progress, group, engine, k=k)
    k = check_k(k, "k", fr.n, "real")
    center = eng.center(fr, ff)
    real_r2 = eng.radii2(fr, k, center)
    out = eng.cross(fr, ff, center, row_min=True, desc="real x fake pass")
    covered = out["row_min"] <= real_r2
    with np.errstate(divide="ignore", invalid="ignore"):
        margin = np.where(real_r2 > 0, np.sqrt(out["row_min"] / np.where(real_r2 > 0, real_r2, 1.0)),
                          np.where(covered, 0.0, np.inf))
    holes = eng.concat(np.flatnonzero(~covered) + fr.start)
    all_margin = eng.concat(margin)
    holes = holes[np.argsort(-all_margin[holes], kind="stable")]
    values = {"coverage": _fraction(eng, covered, fr.n), "covered": covered, "nearest_fake": out["row_argmin"],
              "margin": margin, "holes": holes}
    return MetricResult(values, {"k": k, **eng.info()})


# ---------------------------------------------------------------------------------------------- the others
@accepts_images("real", "fake")
def realism_score(real: Any, fake: Any, k: int = 3, *, workspace_bytes: int | None = None,
                  progress: bool | None = None, group: Any = None, engine: str = "auto") -> np.ndarray:
    """Realism score of every fake sample (Kynkäänniemi et al. 2019, section 5).

    R(g) = max over real r of radius_k(r) / |g - r|, over the real samples whose k-NN radius is at
    most the median radius (the half with the largest balls is discarded, as in the paper, to
    reduce the effect of outliers). R >= 1 means g lies inside some real ball; higher is more
    realistic. A fake sample that coincides with a kept real sample gets +inf, with a warning.
    ``group``: each rank passes its shards and gets the scores of its own fake rows against all the real
    shards together (the median radius is the global one).
    """
    eng, fr, ff = _real_fake(real, fake, "realism_score", workspace_bytes, progress, group, engine, k=k)
    k = check_k(k, "k", fr.n, "real")
    center = eng.center(fr, ff)
    real_r2 = eng.radii2(fr, k, center)
    median = np.median(eng.concat(real_r2))
    kept = (real_r2 <= median) & (real_r2 > 0)
    if not int(eng.total(np.int64(kept.any()))):
        raise ValueError("every real k-NN radius is 0 (too many duplicated real samples for this k)")
    weight = np.where(kept, 1.0 / np.where(kept, real_r2, 1.0), 0.0)
    best = eng.nearest(ff, fr, center, weight, desc="fake x real pass")  # min over kept r of |g - r|^2 / r_k(r)^2
    with np.errstate(divide="ignore"):
        score = 1.0 / np.sqrt(best)
    hits = int(eng.total(np.int64(np.isinf(score).sum())))
    if hits:
        warnings.warn(f"{hits} fake sample(s) coincide with real samples; their realism score is +inf", stacklevel=3)
    return score


@accepts_images("real", "fake")
def nn1_accuracy(real: Any, fake: Any, *, workspace_bytes: int | None = None,
                 progress: bool | None = None, group: Any = None, engine: str = "auto") -> MetricResult:
    """Leave-one-out 1-nearest-neighbour two-sample test accuracy on the union of both sets.

    Each sample is classified real/fake by its nearest other sample. 0.5 is ideal (the sets are
    indistinguishable); 1.0 means perfectly separable; well below 0.5 suggests the fake samples copy
    the real ones. Returns ``accuracy``, ``real_accuracy`` and ``fake_accuracy``. Exact ties in
    distance go to the lower index of [real; fake], i.e. towards a real neighbour.
    ``group``: each rank passes its shards (see :func:`prdc`).
    """
    eng, fr, ff = _real_fake(real, fake, "nn1_accuracy", workspace_bytes, progress, group, engine)
    center = eng.center(fr, ff)
    # nearest neighbour within each set (self excluded) and across: one cross pass gives both directions
    d_rr = eng.radii2(fr, 1, center)
    d_ff = eng.radii2(ff, 1, center)
    out = eng.cross(fr, ff, center, row_min=True, col_min=True, desc="real x fake pass")
    real_ok = int(eng.total(np.int64(np.count_nonzero(d_rr <= out["row_min"]))))  # a tie goes to the real side
    fake_ok = int(eng.total(np.int64(np.count_nonzero(d_ff < out["col_min"]))))
    values = {
        "accuracy": float((real_ok + fake_ok) / (fr.n + ff.n)),
        "real_accuracy": float(real_ok / fr.n),
        "fake_accuracy": float(fake_ok / ff.n),
    }
    return MetricResult(values, {"n_real": fr.n, "n_fake": ff.n, **eng.info()})
