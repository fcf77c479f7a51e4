"""The classifier two-sample test: known answers (a shifted mean is detected, one distribution is not), the
permutation p-value's calibration over seeds, the classifier interface and the argument checks."""

from __future__ import annotations

import numpy as np
import pytest

import ganmetrics as gm

pytest.importorskip("sklearn")


def test_a_shifted_mean_is_detected():
    rng = np.random.default_rng(0)
    real = rng.standard_normal((300, 8))
    fake = rng.standard_normal((300, 8))
    fake[:, 0] += 4.0  # detectable by construction: accuracy -> 1
    res = gm.c2st(real, fake, permutations=19)
    assert res.accuracy > 0.95 and res.auc > 0.99
    assert res.p_value == pytest.approx(1 / 20)  # no permuted run comes near
    assert res.p_value_normal < 1e-30
    assert res.scores.shape == (600,) and np.all((res.scores >= 0) & (res.scores <= 1))
    np.testing.assert_array_equal(res.fake_scores, res.scores[300:])
    assert np.all(np.diff(res.fake_scores[res.most_detectable]) <= 0)  # most detectable first
    assert len(res.fold_accuracy) == 5
    again = gm.c2st(real, fake, permutations=19)  # seeded: repeatable to the last bit
    np.testing.assert_array_equal(again.scores, res.scores)
    assert again.p_value == res.p_value


def test_the_same_distribution_gives_chance_accuracy_and_calibrated_p_values():
    """Under the null hypothesis the permutation p-value is uniform: over 40 independent pairs of samples of one
    distribution its empirical distribution stays within binomial bounds of the uniform at 0.1, 0.25, 0.5."""
    rng = np.random.default_rng(1)
    p_values, normal, accuracies = [], [], []
    for seed in range(40):
        real, fake = rng.standard_normal((60, 3)), rng.standard_normal((60, 3))
        res = gm.c2st(real, fake, permutations=19, seed=seed, folds=3)
        p_values.append(res.p_value)
        normal.append(res.p_value_normal)
        accuracies.append(res.accuracy)
    p_values, normal = np.array(p_values), np.array(normal)
    assert np.mean(normal <= 0.1) <= 0.1 + 3 * np.sqrt(0.09 / 40)  # the approximation is not too liberal either
    assert abs(np.mean(accuracies) - 0.5) < 0.05
    for level in (0.1, 0.25, 0.5):
        share = np.mean(p_values <= level)
        sd = np.sqrt(level * (1 - level) / len(p_values))
        assert share <= level + 3 * sd + 1e-12, (level, share)  # valid: never too many rejections
        assert share >= level - 3 * sd - 0.05, (level, share)  # and not useless (p-values step by 1/20)


def test_mlp_and_any_fit_predict_proba_object():
    from sklearn.ensemble import RandomForestClassifier

    rng = np.random.default_rng(2)
    real = rng.standard_normal((200, 4))
    fake = rng.standard_normal((200, 4)) * np.array([1, 1, 1, 4.0])  # a wider spread: no linear boundary finds it
    mlp = gm.c2st(real, fake, classifier="mlp", permutations=0)
    assert mlp.accuracy > 0.7 and mlp.p_value is None and mlp.info["classifier"] == "mlp"
    assert gm.c2st(real, fake, permutations=0).accuracy < 0.6  # the linear default does not see it
    forest = gm.c2st(real, fake, classifier=RandomForestClassifier(n_estimators=30, random_state=0), permutations=0)
    assert forest.accuracy > 0.7 and forest.info["classifier"] == "RandomForestClassifier"

    class Constant:  # not a scikit-learn estimator: deep-copied for every fold
        def fit(self, x, y):
            return self

        def predict_proba(self, x):
            return np.tile([0.5, 0.5], (len(x), 1))

    const = gm.c2st(real, fake, classifier=Constant(), permutations=0)
    assert const.accuracy == 0.5 and const.auc == 0.5


def test_unequal_set_sizes_keep_chance_at_one_half():
    """Accuracy is balanced: with 3 real samples for every generated one, guessing "real" scores 0.5, not 0.75."""
    rng = np.random.default_rng(5)
    real, fake = rng.standard_normal((600, 4)), rng.standard_normal((200, 4))
    res = gm.c2st(real, fake, permutations=0)
    assert abs(res.accuracy - 0.5) < 0.06

    class Majority:
        def fit(self, x, y):
            return self

        def predict_proba(self, x):
            return np.tile([0.9, 0.1], (len(x), 1))

    assert gm.c2st(real, fake, classifier=Majority(), permutations=0).accuracy == 0.5


def test_c2st_relates_to_nn1_accuracy():
    """Both are two-sample tests of the same sets; on well separated sets both reach 1."""
    rng = np.random.default_rng(3)
    real = rng.standard_normal((150, 5))
    fake = rng.standard_normal((150, 5)) + 6
    assert gm.c2st(real, fake, permutations=0).accuracy == 1.0
    assert gm.nn1_accuracy(real, fake).accuracy == 1.0


def test_c2st_checks_its_arguments():
    rng = np.random.default_rng(4)
    real, fake = rng.standard_normal((20, 3)), rng.standard_normal((20, 3))
    for kw, word in (({"folds": 1}, "folds"), ({"folds": 30}, "folds"), ({"permutations": -1}, "permutations"),
                     ({"seed": -1}, "seed"), ({"C": 0}, "C"), ({"classifier": "svm"}, "classifier")):
        with pytest.raises(ValueError, match=word):
            gm.c2st(real, fake, **kw)
    with pytest.raises(TypeError, match="predict_proba"):
        gm.c2st(real, fake, classifier=object())
    with pytest.raises(ValueError, match="features"):
        gm.c2st(real, fake[:, :2])
    bad = real.copy()
    bad[3, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        gm.c2st(bad, fake)

    class Broken:
        def fit(self, x, y):
            return self

        def predict_proba(self, x):
            return np.full((len(x), 2), np.nan)

    with pytest.raises(ValueError, match="NaN"):
        gm.c2st(real, fake, classifier=Broken(), permutations=0)
