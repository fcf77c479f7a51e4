"""Detectability: can generated samples be told apart from real ones?

:func:`c2st` is the classifier two-sample test (Lopez-Paz & Oquab 2017, "Revisiting classifier two-sample tests"):
a classifier learns real from generated features, and its held-out accuracy says how detectable the generator is.
0.5: no classifier of this kind tells them apart; 1.0: every sample is told apart. :func:`~ganmetrics.nn1_accuracy` is
the same test with the leave-one-out 1-nearest-neighbour classifier (exact and parameter-free, but weak in high
dimension); a trained classifier finds differences spread over many features that the nearest neighbour misses.

The classifiers are scikit-learn's (the ``novelty`` extra); the folds, the classifier's own randomness and the
permutations are seeded, so a call is repeatable to the last bit.
"""

from __future__ import annotations

import copy
import math
from typing import Any

import numpy as np

from ganmetrics._arrays import as_features
from ganmetrics._image_inputs import accepts_images
from ganmetrics._progress import progress_bar
from ganmetrics.metrics.knn import MetricResult

CLASSIFIERS = ("logistic", "mlp")


class C2STResult(MetricResult):
    """``accuracy`` (out-of-fold, balanced, in [0, 1]; 0.5 = undetectable), ``auc`` (ROC AUC of the out-of-fold scores),
    ``p_value`` (permutation test of accuracy <= 0.5; None without permutations), ``p_value_normal`` (its
    normal approximation, always given), ``scores`` (per sample of
    [real; fake], the out-of-fold probability of being generated), ``real_scores``, ``fake_scores``,
    ``most_detectable`` (generated samples' indices, most confidently detected first) and ``fold_accuracy``."""


def _classifier(classifier: Any, seed: int, C: float) -> Any:
    """The estimator to fit on each fold (a fresh copy per fold)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if isinstance(classifier, str):
        if classifier == "logistic":
            return make_pipeline(StandardScaler(), LogisticRegression(C=C, class_weight="balanced", max_iter=2000))
        if classifier == "mlp":
            return make_pipeline(StandardScaler(), MLPClassifier(hidden_layer_sizes=(128,), alpha=1e-3, max_iter=500,
                                                                 random_state=seed))
        raise ValueError(f"classifier must be one of {', '.join(CLASSIFIERS)} or an object with fit and predict_proba, "
                         f"got {classifier!r}")
    if not (callable(getattr(classifier, "fit", None)) and callable(getattr(classifier, "predict_proba", None))):
        raise TypeError("classifier must be 'logistic', 'mlp' or an object with fit(X, y) and predict_proba(X) "
                        f"(scikit-learn's estimator interface), got {type(classifier).__name__}")
    return classifier


def _fresh(est: Any) -> Any:
    try:
        from sklearn.base import clone

        return clone(est)
    except TypeError:  # not a scikit-learn estimator: a deep copy of the object as given
        return copy.deepcopy(est)


def _out_of_fold(est: Any, x: np.ndarray, y: np.ndarray, folds: list) -> np.ndarray:
    scores = np.empty(len(y))
    for train_idx, test_idx in folds:
        model = _fresh(est)
        model.fit(x[train_idx], y[train_idx])
        proba = np.asarray(model.predict_proba(x[test_idx]), dtype=np.float64)
        if proba.ndim != 2 or proba.shape != (len(test_idx), 2):
            raise ValueError(f"classifier.predict_proba returned shape {proba.shape}; (samples, 2) was expected")
        scores[test_idx] = proba[:, 1]
    if not np.all(np.isfinite(scores)):
        raise ValueError("classifier.predict_proba returned NaN or Inf")
    return scores


def _accuracy(scores: np.ndarray, y: np.ndarray) -> float:
    """Balanced accuracy: the mean of the accuracies on real and on generated samples (0.5 is chance at any sizes)."""
    fake = y == 1
    return float(0.5 * (np.mean(scores[fake] > 0.5) + np.mean(scores[~fake] <= 0.5)))


def _check_int(name: str, value: Any, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
    return int(value)


@accepts_images("real", "fake")
def c2st(real: Any, fake: Any, *, classifier: Any = "logistic", folds: int = 5, permutations: int = 100,
         seed: int = 0, C: float = 1.0, progress: bool | None = None) -> C2STResult:
    """Classifier two-sample test of real against generated features (Lopez-Paz & Oquab 2017).

    The samples of both sets are split into ``folds`` stratified folds (shuffled with ``seed``); a classifier
    trained on the other folds scores each held-out sample with its probability of being generated. ``accuracy``
    (score > 0.5 read as "generated"; balanced: the mean of the accuracies on the real and on the generated
    samples, so that chance is 0.5 whatever the set sizes) and ``auc`` are taken over every sample's out-of-fold
    score: 0.5 means the classifier cannot tell the sets apart, 1.0 that it always can (lower is better for a generator; well below
    0.5 points at a classifier that fits noise, not at a better generator). ``p_value`` comes from ``permutations``
    runs of the same procedure with the labels shuffled: (1 + runs at least as accurate) / (1 + permutations), a
    valid p-value for "the sets come from one distribution"; its cost is ``permutations`` times the test's (at
    10,000 x 2048 per set the logistic test takes about 100 s on 2 cores: pass ``permutations=0`` there and read
    ``p_value_normal``, the normal approximation of Lopez-Paz & Oquab, which treats the out-of-fold predictions
    as independent -- close to the permutation p-value in the tests, but an approximation).

    ``classifier``: ``"logistic"`` (default: standardized features, L2-regularized logistic regression with
    inverse strength ``C`` and balanced class weights, lbfgs -- deterministic), ``"mlp"`` (one hidden layer of 128 ReLUs, Adam, weight decay 1e-3, at most 500 epochs, seeded), or any
    object with ``fit(X, y)`` and ``predict_proba(X)`` (label 1 = generated; copied fresh for every fold).
    One process: every sample's features are on the host.
    """
    folds = _check_int("folds", folds, 2)
    permutations = _check_int("permutations", permutations, 0)
    seed = _check_int("seed", seed, 0)
    if isinstance(C, bool) or not isinstance(C, (int, float)) or not np.isfinite(C) or C <= 0:
        raise ValueError(f"C must be a positive number, got {C!r}")
    fr, ff = as_features(real, "real", min_rows=2), as_features(fake, "fake", min_rows=2)
    if fr.dim != ff.dim:
        raise ValueError(f"real has {fr.dim} features, fake has {ff.dim}")
    if min(fr.n, ff.n) < folds:
        raise ValueError(f"folds={folds} needs at least {folds} samples in each set; real has {fr.n}, fake {ff.n}")
    est = _classifier(classifier, seed, float(C))
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedKFold

    x = np.concatenate([fr.rows(0, fr.n), ff.rows(0, ff.n)]).astype(np.float64)
    y = np.concatenate([np.zeros(fr.n, np.int64), np.ones(ff.n, np.int64)])
    split = list(StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed).split(x, y))
    scores = _out_of_fold(est, x, y, split)
    accuracy = _accuracy(scores, y)
    fold_accuracy = np.array([_accuracy(scores[t], y[t]) for _, t in split])
    p_value = None
    if permutations:
        rng = np.random.default_rng(seed)
        hits = 0
        with progress_bar(permutations, "c2st permutations", unit="permutations", enabled=progress) as pb:
            for _ in range(permutations):
                yp = rng.permutation(y)
                sp = list(StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed).split(x, yp))
                hits += _accuracy(_out_of_fold(est, x, yp, sp), yp) >= accuracy
                pb.update(1)
        p_value = (1 + hits) / (1 + permutations)
    fake_scores = scores[fr.n:]
    # Lopez-Paz & Oquab's null: held-out accuracy ~ normal about 1/2; for the balanced accuracy its standard
    # deviation is sqrt(1 / n_real + 1 / n_fake) / 4
    z = (accuracy - 0.5) / (0.25 * np.sqrt(1.0 / fr.n + 1.0 / ff.n))
    values = {
        "accuracy": accuracy,
        "auc": float(roc_auc_score(y, scores)),
        "p_value": p_value,
        "p_value_normal": float(0.5 * math.erfc(z / math.sqrt(2.0))),
        "scores": scores,
        "real_scores": scores[:fr.n],
        "fake_scores": fake_scores,
        "most_detectable": np.argsort(-fake_scores, kind="stable"),
        "fold_accuracy": fold_accuracy,
    }
    name = classifier if isinstance(classifier, str) else type(classifier).__name__
    return C2STResult(values, {"classifier": name, "folds": folds, "permutations": permutations, "seed": seed,
                               "n_real": fr.n, "n_fake": ff.n})
