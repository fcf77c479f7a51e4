"""Novelty: does a generator copy its training set?

Each metric answers per generated sample (flags, distances, scores) beside its summary, so that a person can look
at the samples behind the number (:mod:`ganmetrics.plots`).

- :func:`memorization` -- near-copies by the distance-ratio test (Yoon et al. 2023; Gu et al. 2023).
- :func:`authpct` -- AuthPct (Alaa et al. 2022's authenticity, in percent as dgm-eval reports it; Stein et al. 2023).
- :func:`alpha_precision` -- alpha-precision, beta-recall and authenticity (Alaa et al. 2022), their k-NN form.
- :func:`ct_score` -- the C_T data-copying test (Meehan et al. 2020), with a held-out test set.

The k-NN metrics are written on the engine primitives (exact float64 decisions, every placement: host, torch,
shards over ``group=``). C_T projects and clusters on the host (PCA from float64 moments, scikit-learn's k-means,
seeded) and is one process.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ganmetrics import engines
from ganmetrics._arrays import as_features
from ganmetrics._image_inputs import accepts_images
from ganmetrics.engines import Engine, Set
from ganmetrics.metrics.knn import MetricResult

COPY_RATIO = 1.0 / 3.0  # Yoon et al. 2023 and Gu et al. 2023: a copy is 3x closer to one training sample than to any other


def _pair(a: Any, b: Any, names: tuple[str, str], what: str, workspace_bytes, progress, group, engine,
          **args: Any) -> tuple[Engine, Set, Set]:
    eng = engines.select(a, b, group=group, engine=engine, workspace_bytes=workspace_bytes, progress=progress,
                         call={"call": what, **args})
    sa, sb = eng.sets({names[0]: a, names[1]: b}, what=what)
    return eng, sa, sb


def _count(eng: Engine, flags: np.ndarray) -> int:
    return int(eng.total(np.int64(np.count_nonzero(flags))))


# ---------------------------------------------------------------------------------------------- memorization
def nearest_and_next(eng: Engine, query: Set, ref: Set, center: np.ndarray) -> tuple[np.ndarray, ...]:
    """Per local query row: the squared distance to its nearest reference row, that row's global index (the lowest
    of equal distances) and the squared distance to the nearest reference row *farther* than it (inf where none is):
    reference rows at exactly the nearest distance -- copies of one training sample -- count as one sample. Rows
    whose first k neighbours all tie are asked again with k doubled, so the answer never depends on how many copies
    a training sample has, nor on how the rows are placed."""
    k = min(2, ref.n)
    v, i = eng.cross_neighbours(query, ref, k, center, desc=f"{query.name} x {ref.name} pass")
    d1, nearest = v[:, 0].copy(), i[:, 0].copy()
    d2 = np.full(len(d1), np.inf)
    while True:
        farther = v > d1[:, None]
        has = farther.any(axis=1)
        rows = np.flatnonzero(has)
        d2[rows] = v[rows, np.argmax(farther[rows], axis=1)]
        if k >= ref.n or not _count(eng, ~has):
            return d1, nearest, d2
        k = min(2 * k, ref.n)
        v, _ = eng.cross_neighbours(query, ref, k, center, desc=f"{query.name} x {ref.name} pass (k = {k}, ties)")


@accepts_images("train", "fake")
def train_neighbours(train: Any, fake: Any, k: int = 5, *, workspace_bytes: int | None = None,
                     progress: bool | None = None, group: Any = None, engine: str = "auto") -> MetricResult:
    """The k nearest training samples of every generated sample: ``indices`` (global, by distance then index) and
    ``distances`` (exact float64), shape (generated, k) -- what a nearest-neighbour grid shows."""
    eng, ft, ff = _pair(train, fake, ("train", "fake"), "train_neighbours", workspace_bytes, progress, group, engine,
                        k=k)
    k = engines.check_k(k, "k", ft.n + 1, "train")
    v, i = eng.cross_neighbours(ff, ft, k, eng.center(ft, ff), desc="fake x train pass")
    return MetricResult({"indices": i, "distances": np.sqrt(v)}, {"k": k, **eng.info()})


@accepts_images("train", "fake")
def memorization(train: Any, fake: Any, *, threshold: float = COPY_RATIO, workspace_bytes: int | None = None,
                 progress: bool | None = None, group: Any = None, engine: str = "auto") -> MetricResult:
    """Near-copies of training samples, by the distance-ratio test (Yoon et al. 2023, "Diffusion probabilistic
    models generalize when they fail to memorize"; Gu et al. 2023, "On memorization in diffusion models").

    A generated sample g is a copy when ``d1 < threshold * d2``: d1 is its distance to the nearest training sample,
    d2 its distance to the nearest training sample farther than that one (so that duplicated training images, the
    ones most often memorized, count as one sample). The threshold 1/3 is the papers': a copy is three times closer
    to one training sample than to any other. A fresh sample of the training distribution has a ratio near 1 in
    any feature space of more than a few dimensions (0.77 at the lowest over 900 fresh 32-d Gaussian samples
    against 1,500 training ones), so it is not flagged; an exact copy (d1 = 0) always is. The ratio does not
    depend on the features' scale.

    Returns ``fraction`` (flagged / generated, in [0, 1], lower is better), ``indices`` of the flagged samples,
    and per generated sample: ``flagged``, ``ratio`` (d1 / d2; 1 where no training sample lies farther than the
    nearest), ``nearest_train`` (global index, the lowest of equal distances), ``nearest_distance`` (d1) and
    ``second_distance`` (d2; inf where none). ``group``: each rank passes its shards; ``fraction`` and ``indices``
    are global, the per-sample arrays belong to this rank's generated rows.
    """
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not 0 < threshold <= 1:
        raise ValueError(f"threshold must be a number in (0, 1], got {threshold!r}")
    eng, ft, ff = _pair(train, fake, ("train", "fake"), "memorization", workspace_bytes, progress, group, engine,
                        threshold=float(threshold))
    center = eng.center(ft, ff)
    before = eng.evaluations
    d1, nearest, d2 = nearest_and_next(eng, ff, ft, center)
    second = np.isfinite(d2)
    flagged = (d1 == 0) | (second & (d1 < threshold * threshold * d2))  # on squared distances
    ratio = np.where(second, np.sqrt(d1 / np.where(second, d2, 1.0)), np.where(d1 == 0, 0.0, 1.0))
    indices = eng.concat(np.flatnonzero(flagged) + ff.start)
    values = {
        "fraction": float(len(indices) / ff.n),
        "indices": indices,
        "flagged": flagged,
        "ratio": ratio,
        "nearest_train": nearest,
        "nearest_distance": np.sqrt(d1),
        "second_distance": np.sqrt(d2),
    }
    info = {"rule": "distance ratio d1 / d2 < threshold (Yoon et al. 2023; Gu et al. 2023)",
            "threshold": float(threshold), "no_second_neighbour": _count(eng, np.isinf(d2)),
            "exact_knn_evaluations": int(eng.total(np.int64(eng.evaluations - before))), **eng.info()}
    return MetricResult(values, info)


# ---------------------------------------------------------------------------------------------- authenticity
def _authentic(eng: Engine, fr: Set, ff: Set, center: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray,
                                                                          np.ndarray]:
    """Per local generated row: authentic (its nearest real sample's own 1-NN distance is strictly below the
    distance between them), the nearest real row's global index, d(g, nearest) and that row's 1-NN distance
    (squared)."""
    real_r2 = eng.radii2(fr, 1, center)
    out = eng.cross(ff, fr, center, row_min=True, desc="fake x train pass")
    nearest = np.asarray(out["row_argmin"], np.int64)
    r2_nearest = eng.concat(real_r2)[nearest]
    return r2_nearest < out["row_min"], nearest, out["row_min"], r2_nearest


@accepts_images("train", "fake")
def authpct(train: Any, fake: Any, *, workspace_bytes: int | None = None, progress: bool | None = None,
            group: Any = None, engine: str = "auto") -> MetricResult:
    """AuthPct: the percentage of generated samples that are authentic (Alaa et al. 2022; Stein et al. 2023, as
    dgm-eval's ``compute_authpct``).

    A generated sample g is authentic when its nearest training sample t has a nearer training neighbour than g
    (``|t - NN(t)| < |g - t|``, NN(t) excluding t itself by index, so a duplicated training sample has 0). In
    [0, 100], higher is more novel; two independent samples of one distribution score well below 100 (the
    nearest neighbour relation is often mutual), so compare it with a held-out real set's AuthPct rather than
    with 100. Decisions are taken on exact float64 distances (dgm-eval's float32 ``cdist`` can flip one where
    the two distances agree to float32 rounding).

    Returns ``authpct`` and per generated sample ``authentic``, ``nearest_train`` (global index, the lowest of
    equal distances), ``nearest_distance`` and ``train_nn_distance`` (the nearest training sample's own 1-NN
    distance). ``group``: each rank passes its shards (see :func:`memorization`).
    """
    eng, ft, ff = _pair(train, fake, ("train", "fake"), "authpct", workspace_bytes, progress, group, engine)
    center = eng.center(ft, ff)
    authentic, nearest, d2, r2 = _authentic(eng, ft, ff, center)
    values = {"authpct": 100.0 * _count(eng, authentic) / ff.n, "authentic": authentic, "nearest_train": nearest,
              "nearest_distance": np.sqrt(d2), "train_nn_distance": np.sqrt(r2)}
    return MetricResult(values, eng.info())


def _curve_area(levels: np.ndarray, curve: np.ndarray) -> float:
    """Alaa et al.'s integrated score: 1 - 2 * sum |level - curve| * step (1 when the curve is the diagonal)."""
    step = levels[1] - levels[0] if len(levels) > 1 else 1.0
    return float(1.0 - 2.0 * np.sum(np.abs(levels - curve)) * step)


def _check_levels(alphas: Any) -> np.ndarray:
    if isinstance(alphas, (int, np.integer)) and not isinstance(alphas, bool):
        if alphas < 2:
            raise ValueError(f"alphas must be at least 2 levels, got {alphas}")
        return np.linspace(0.0, 1.0, int(alphas))
    levels = np.asarray(alphas, dtype=np.float64)
    if levels.ndim != 1 or len(levels) < 2 or not np.all(np.isfinite(levels)) or levels.min() < 0 or levels.max() > 1 \
            or np.any(np.diff(levels) <= 0):
        raise ValueError("alphas must be a count (>= 2) or an increasing sequence of at least 2 levels in [0, 1]")
    return levels


@accepts_images("real", "fake")
def alpha_precision(real: Any, fake: Any, *, alphas: Any = 30, workspace_bytes: int | None = None,
                    progress: bool | None = None, group: Any = None, engine: str = "auto") -> MetricResult:
    """alpha-precision, beta-recall and authenticity (Alaa et al. 2022, "How faithful is your synthetic data?"),
    in the k-NN form of the authors' ``compute_alpha_precision`` on features (the centre of the real features in
    place of a one-class embedding's).

    - alpha-precision(a): the share of generated samples inside the real a-support, the ball about the real mean
      holding the fraction a of the real samples (radius: the a-quantile of their distances to it).
    - beta-recall(b): the share of real samples whose nearest generated sample g lies within their own 1-NN
      distance and inside the generated b-support (g's distance to the generated mean at most the b-quantile of
      those distances over the real samples).
    - ``delta_precision_alpha`` / ``delta_recall_beta``: 1 - 2 * sum |a - curve(a)| * step, in [-1, 1] (1 when the
      curve is the diagonal: the supports match at every level); higher is better.
    - ``authenticity``: the share of generated samples whose nearest real sample has a nearer real neighbour
      (:func:`authpct` / 100). The authors' code indexes the real 1-NN distances with generated indices there;
      this is the paper's definition.

    ``alphas``: a number of levels from 0 to 1 (default 30, the authors') or the levels. Returns the two integrated
    scores, ``authenticity``, the ``alphas``, both curves, and per generated sample ``authentic`` and
    ``in_support`` (distance to the real mean, as a quantile level of the real distances). ``group``: each rank
    passes its shards.
    """
    levels = _check_levels(alphas)
    eng, fr, ff = _pair(real, fake, ("real", "fake"), "alpha_precision", workspace_bytes, progress, group, engine,
                        alphas=levels.tolist())
    center = eng.center(fr, ff)
    real_mean, fake_mean = eng.center(fr), eng.center(ff)
    real_to_c = np.sqrt(eng.concat(eng.distances2_to(fr, real_mean, center)))
    fake_to_c = np.sqrt(eng.distances2_to(ff, real_mean, center))
    radii = np.quantile(real_to_c, levels)
    precision_curve = np.array([_count(eng, fake_to_c <= r) for r in radii]) / ff.n

    real_r2 = eng.radii2(fr, 1, center)
    out = eng.cross(fr, ff, center, row_min=True, desc="real x fake pass")
    closest = np.asarray(out["row_argmin"], np.int64)
    fake_to_own = np.sqrt(eng.concat(eng.distances2_to(ff, fake_mean, center)))
    closest_d = fake_to_own[closest]
    beta_radii = np.quantile(eng.concat(closest_d), levels)
    near = out["row_min"] <= real_r2
    recall_curve = np.array([_count(eng, near & (closest_d <= r)) for r in beta_radii]) / fr.n

    authentic, _, _, _ = _authentic(eng, fr, ff, center)
    sorted_real = np.sort(real_to_c)
    values = {
        "delta_precision_alpha": _curve_area(levels, precision_curve),
        "delta_recall_beta": _curve_area(levels, recall_curve),
        "authenticity": _count(eng, authentic) / ff.n,
        "alphas": levels,
        "alpha_precision_curve": precision_curve,
        "beta_recall_curve": recall_curve,
        "authentic": authentic,
        "in_support": np.searchsorted(sorted_real, fake_to_c, side="left") / fr.n,
    }
    return MetricResult(values, {"n_real": fr.n, "n_fake": ff.n, **eng.info()})


# ---------------------------------------------------------------------------------------------- C_T
def mann_whitney_u(x: np.ndarray, y: np.ndarray) -> float:
    """The Mann-Whitney U statistic of ``x`` (scipy.stats.mannwhitneyu's): the rank sum of x in the pooled sample,
    ties given their average rank, minus len(x) (len(x) + 1) / 2."""
    pooled = np.concatenate([x, y])
    _, inverse, counts = np.unique(pooled, return_inverse=True, return_counts=True)
    average_rank = np.cumsum(counts) - (counts - 1) / 2.0
    n1 = len(x)
    return float(average_rank[inverse[:n1]].sum() - n1 * (n1 + 1) / 2.0)


def _zu(lq: np.ndarray, lp: np.ndarray) -> float:
    """Meehan et al.'s Z-scored U of the generated (lq) against the test (lp) distances to the training set, with
    their continuity correction (mean nm/2 - 1/2)."""
    m, n = len(lq), len(lp)
    return (mann_whitney_u(lq, lp) - (n * m / 2.0 - 0.5)) / np.sqrt(n * m * (n + m + 1) / 12.0)


def _pca(train: np.ndarray, others: list[np.ndarray], dim: int) -> tuple[np.ndarray, list[np.ndarray]]:
    """Projection on the training set's top ``dim`` principal axes, from its float64 covariance (exact PCA: the
    same subspace as any exact solver; signs do not change a distance)."""
    mean = train.mean(axis=0)
    centered = train - mean
    cov = centered.T @ centered / max(len(train) - 1, 1)
    _, vecs = np.linalg.eigh(cov)
    axes = vecs[:, ::-1][:, :dim]
    return centered @ axes, [(o - mean) @ axes for o in others]


def _nn1_host(query: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """Exact distance of every query row to its nearest reference row (host engine, float64 rows)."""
    eng = engines.HostEngine()
    sq, sr = eng.sets({"query": query, "ref": ref}, min_rows=1)
    return np.sqrt(eng.cross(sq, sr, eng.center(sq, sr), row_min=True)["row_min"])


def _host_rows(x: Any, name: str) -> np.ndarray:
    f = as_features(x, name, min_rows=2)
    return np.ascontiguousarray(f.rows(0, f.n), dtype=np.float64)


@accepts_images("train", "test", "fake")
def ct_score(train: Any, test: Any, fake: Any, *, cells: int = 3, pca_dim: int | None = 64, tau: float | None = None,
             seed: int = 0, n_init: int = 10) -> MetricResult:
    """The C_T data-copying test (Meehan et al. 2020, "A non-parametric test to detect data-copying in generative
    models"), as dgm-eval's ``compute_CTscore``, seeded.

    The features (projected on the training set's top ``pca_dim`` principal axes when wider) are cut into
    ``cells`` k-means cells of the training set; in each cell the distances of the generated samples to their
    nearest training sample are compared with those of the held-out ``test`` samples by a Z-scored Mann-Whitney U
    test; C_T is the average of the cells' Z weighted by their share of test samples, over the cells holding more
    than ``tau`` of the generated samples (default 20 / generated, dgm-eval's). C_T << 0: generated samples are
    closer to the training set than fresh data is (data copying); >> 0: farther (underfitting); about 0 otherwise.

    Returns ``ct``, per cell ``cell_z``, ``cell_test_share``, ``cell_fake_share``, ``cell_used``, and per generated
    sample ``cell`` and ``train_distance``. scikit-learn's KMeans (``random_state=seed``, ``n_init``) makes the
    cells. One process (the clustering sees every row).
    """
    for name, value, low in (("cells", cells, 1), ("n_init", n_init, 1)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
            raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
    if pca_dim is not None and (isinstance(pca_dim, bool) or not isinstance(pca_dim, (int, np.integer)) or pca_dim < 1):
        raise ValueError(f"pca_dim must be None or an integer >= 1, got {pca_dim!r}")
    t, p, q = _host_rows(train, "train"), _host_rows(test, "test"), _host_rows(fake, "fake")
    for name, a in (("test", p), ("fake", q)):
        if a.shape[1] != t.shape[1]:
            raise ValueError(f"{name} has {a.shape[1]} features, train has {t.shape[1]}")
    if len(t) < cells:
        raise ValueError(f"train has {len(t)} samples, fewer than cells={cells}")
    if tau is None:
        tau = 20.0 / len(q)
    elif isinstance(tau, bool) or not isinstance(tau, (int, float)) or not 0 <= tau < 1:
        raise ValueError(f"tau must be None or a number in [0, 1), got {tau!r}")
    from sklearn.cluster import KMeans  # scikit-learn: the "novelty" extra

    if pca_dim is not None and t.shape[1] > pca_dim:
        t, (p, q) = _pca(t, [p, q], pca_dim)
    km = KMeans(n_clusters=cells, n_init=n_init, random_state=seed).fit(t)
    t_cells, p_cells, q_cells = km.predict(t), km.predict(p), km.predict(q)
    z = np.zeros(cells)
    q_dist = np.zeros(len(q))
    test_share = np.bincount(p_cells, minlength=cells) / len(p)
    fake_share = np.bincount(q_cells, minlength=cells) / len(q)
    for c in range(cells):
        tc, pc, qc = t[t_cells == c], p[p_cells == c], q_cells == c
        if len(tc) == 0 or len(pc) == 0:
            raise ValueError(f"cell {c} of {cells} holds no test and/or training samples; use fewer cells")
        if qc.any():
            q_dist[qc] = _nn1_host(q[qc], tc)
            z[c] = _zu(q_dist[qc], _nn1_host(pc, tc))
    used = fake_share > tau
    if not used.any():
        raise ValueError(f"no cell holds more than tau={tau:.4g} of the generated samples; lower tau or use fewer cells")
    ct = float(test_share[used] @ z[used] / test_share[used].sum())
    values = {"ct": ct, "cell_z": z, "cell_test_share": test_share, "cell_fake_share": fake_share,
              "cell_used": used, "cell": q_cells, "train_distance": q_dist}
    return MetricResult(values, {"cells": cells, "pca_dim": pca_dim, "tau": float(tau), "seed": seed,
                                 "n_train": len(t), "n_test": len(p), "n_fake": len(q)})


# ---------------------------------------------------------------------------------------------- FLS
FLS_STEPS = 100  # dgm-eval's (the FLS repository's) Adam steps, learning rate 0.5, divided by 10 after step 50


def _fls_fit(torch: Any, dists: Any, dim: int, steps: int, lr: float) -> Any:
    """The log-bandwidths of a KDE on the kernel points (columns of ``dists``, squared distances from the data
    rows) that minimize the data's negative log-likelihood, by the FLS repository's procedure: zeros, Adam at
    ``lr`` (divided by 10 after step 50), ``steps`` steps, clamped to [-100, 20] after each step."""
    log_sigmas = torch.zeros(dists.shape[1], dtype=dists.dtype, device=dists.device, requires_grad=True)
    optim = torch.optim.Adam([log_sigmas], lr=lr)
    schedule = torch.optim.lr_scheduler.MultiStepLR(optim, milestones=[50], gamma=0.1)
    for _ in range(steps):
        loss = _fls_nll(torch, dists, log_sigmas, dim).mean()
        optim.zero_grad()
        loss.backward()
        optim.step()
        schedule.step()
        with torch.no_grad():
            log_sigmas.clamp_(-100, 20)
    return log_sigmas.detach()


def _fls_nll(torch: Any, dists: Any, log_sigmas: Any, dim: int) -> Any:
    """Per data row, -log of the mean over kernel points of the isotropic Gaussian density (variance
    exp(log_sigma)), without the (2 pi)^(d/2) constant (it cancels in FLS's difference)."""
    exponent = -0.5 * dists / torch.exp(log_sigmas) - (dim / 2) * log_sigmas - np.log(dists.shape[1])
    return -torch.logsumexp(exponent, dim=1)


def fls(train: Any, baseline: Any, test: Any, fake: Any, *, steps: int = FLS_STEPS, lr: float = 0.5,
        device: Any = None, float32: bool = False, overfit: bool = True) -> MetricResult:
    """Feature Likelihood Score (Jiralerspong et al. 2023, "Feature likelihood score: evaluating the generalization
    of generative models using samples"), as dgm-eval's ``compute_fls`` and ``compute_fls_overfit``.

    A Gaussian KDE is centred on the generated samples, one bandwidth per sample fitted to the ``train`` features
    (maximum likelihood by Adam, the FLS repository's schedule); the same is done with ``baseline`` real samples
    (held out from training) in place of the generated ones. With NLL the mean negative log-likelihood of the
    ``test`` features under each KDE, ``fls = 100 * exp(-2 (NLL_fake - NLL_baseline) / d)``: 100 when the generated
    samples model the test set as well as real samples do, higher is better; poor samples and copies of the
    training set (their bandwidths shrink onto the training points) score lower. ``fls_overfit`` (percent, in
    [-50, 50]): the share of generated samples whose kernel gives the training set more likelihood than the test
    set, minus 50; > 0 points at overfitting (it compares the first min(train, test) rows of each).

    The features of all four sets are standardized together first (their mean and standard deviation), as in the
    source. float64 throughout (``float32=True``: the source's precision), deterministic on a given device; memory
    holds one (train x generated) matrix of squared distances, as the source does. ``device``: where torch runs
    (default CPU). One process.
    """
    import torch  # an optional heavy dependency

    for name, value, low in (("steps", steps, 1),):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
            raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
    if isinstance(lr, bool) or not isinstance(lr, (int, float)) or not np.isfinite(lr) or lr <= 0:
        raise ValueError(f"lr must be a positive number, got {lr!r}")
    sets = {name: _host_rows(x, name) for name, x in
            (("train", train), ("baseline", baseline), ("test", test), ("fake", fake))}
    dim = sets["train"].shape[1]
    for name, a in sets.items():
        if a.shape[1] != dim:
            raise ValueError(f"{name} has {a.shape[1]} features, train has {dim}")
    dtype = torch.float32 if float32 else torch.float64
    t = {name: torch.as_tensor(a, dtype=dtype, device=device or "cpu") for name, a in sets.items()}
    every = torch.cat(list(t.values()))
    mean, std = every.mean(dim=0), every.std(dim=0)
    if bool((std == 0).any()):
        raise ValueError(f"{int((std == 0).sum())} feature(s) are constant over the four sets; FLS standardizes "
                         "each feature and cannot divide by 0")
    t = {name: (x - mean) / std for name, x in t.items()}

    def sq(a, b):
        return torch.cdist(a, b) ** 2  # the source's distances

    gen_sigmas = _fls_fit(torch, sq(t["train"], t["fake"]), dim, steps, lr)
    nll_fake = float(_fls_nll(torch, sq(t["test"], t["fake"]), gen_sigmas, dim).mean())
    base_sigmas = _fls_fit(torch, sq(t["train"], t["baseline"]), dim, steps, lr)
    nll_base = float(_fls_nll(torch, sq(t["test"], t["baseline"]), base_sigmas, dim).mean())
    score = float(100.0 * np.exp(-2.0 * (nll_fake - nll_base) / dim))
    values = {"fls": score, "nll_fake": nll_fake, "nll_baseline": nll_base, "log_bandwidths": gen_sigmas.cpu().numpy()}
    if overfit:
        size = min(len(t["test"]), len(t["train"]))

        def pairwise_ll(x):
            return (-0.5 * sq(x, t["fake"]) / torch.exp(gen_sigmas) - (dim / 2) * gen_sigmas
                    - np.log(len(t["fake"])))

        diff = (torch.logsumexp(pairwise_ll(t["train"][:size]), dim=0)
                - torch.logsumexp(pairwise_ll(t["test"][:size]), dim=0))
        overfit_flags = (diff > 0).cpu().numpy()
        values["fls_overfit"] = float(100.0 * overfit_flags.mean() - 50.0)
        values["overfit"] = overfit_flags
    if not np.isfinite(score):
        raise ValueError(f"FLS is not finite (NLL fake {nll_fake:.6g}, baseline {nll_base:.6g}): the sets are too far "
                         "apart for exp() in float64")
    return MetricResult(values, {"steps": steps, "lr": lr, "dtype": str(dtype).replace("torch.", ""), "dim": dim,
                                 **{f"n_{k}": len(v) for k, v in sets.items()}})
