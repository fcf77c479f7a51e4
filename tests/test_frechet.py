import warnings

import numpy as np
import pytest
from conftest import frechet_reference
from hypothesis import given, settings
from hypothesis import strategies as st

import ganmetrics as gm
from ganmetrics import FeatureStats, SmallSampleWarning

pytestmark = pytest.mark.usefixtures("each_engine")  # every test on the host and the torch engine


def random_cov(rng, d, rank=None, scale=1.0):
    a = rng.standard_normal((d, rank or d + 5))
    return scale * (a @ a.T) / a.shape[1]


def test_matches_float64_reference(rng):
    for d in (1, 2, 17, 64):
        mu1, mu2 = rng.standard_normal(d), rng.standard_normal(d)
        s1, s2 = random_cov(rng, d), random_cov(rng, d, scale=3.0)
        got = gm.frechet_distance(mu1, s1, mu2, s2)
        assert isinstance(got, float)
        assert got == pytest.approx(frechet_reference(mu1, s1, mu2, s2), rel=1e-10, abs=1e-10)


def test_singular_sigma1_is_handled(rng):
    # S1 = A A^T of rank 10: S1^1/2 S2 S1^1/2 has the non-zero eigenvalues of A^T S2 A. (An
    # eigendecomposition-based sqrt of S1 would add sqrt(rounding noise) ~ 1e-8 relative.)
    d = 40
    a = rng.standard_normal((d, 10))
    s1 = a @ a.T
    s2 = random_cov(rng, d, rank=25)
    mu = np.zeros(d)
    exact = np.trace(s1) + np.trace(s2) - 2 * np.sqrt(np.clip(np.linalg.eigvalsh(a.T @ s2 @ a), 0, None)).sum()
    got = gm.frechet_distance(mu, s1, mu, s2)
    assert got == pytest.approx(exact, rel=1e-10)
    assert gm.frechet_distance(mu, s2, mu, s1) == pytest.approx(exact, rel=1e-7)
    assert gm.frechet_distance(mu, np.zeros((d, d)), mu, s2) == pytest.approx(np.trace(s2), rel=1e-12)


def test_identical_inputs_give_zero(rng):
    s = random_cov(rng, 30)
    mu = rng.standard_normal(30)
    assert gm.frechet_distance(mu, s, mu, s) == pytest.approx(0.0, abs=1e-9)
    assert gm.frechet_distance(mu, s, mu, s) >= 0.0


def test_not_psd_is_an_error_naming_the_input(rng):
    s = random_cov(rng, 10)
    bad = s.copy()
    bad -= 2 * np.abs(np.linalg.eigvalsh(s)).max() * np.outer(np.ones(10), np.ones(10)) / 10
    mu = np.zeros(10)
    with pytest.raises(ValueError, match="sigma1 is not positive semi-definite"):
        gm.frechet_distance(mu, bad, mu, s)
    with pytest.raises(ValueError, match="sigma2 is not positive semi-definite"):
        gm.frechet_distance(mu, s, mu, bad)
    with pytest.raises(ValueError, match="sigma1 is not positive semi-definite"):
        gm.frechet_distance(np.zeros(2), np.array([[1.0, 2.0], [2.0, 1.0]]), np.zeros(2), np.eye(2))


@pytest.mark.parametrize(
    "args, words",
    [
        ((np.zeros(3), np.eye(3), np.zeros(4), np.eye(4)), "mu1 has 3 entries but mu2 has 4"),
        ((np.zeros(3), np.eye(4), np.zeros(3), np.eye(3)), "sigma1 must have shape"),
        ((np.zeros(3), np.triu(np.ones((3, 3))), np.zeros(3), np.eye(3)), "sigma1 is not symmetric"),
        ((np.array([np.nan, 0, 0]), np.eye(3), np.zeros(3), np.eye(3)), "mu1 contains 1 NaN"),
        ((np.zeros(3), np.eye(3), np.zeros(3), np.full((3, 3), np.inf)), "sigma2 contains 9 NaN"),
    ],
)
def test_bad_arguments(args, words):
    with pytest.raises(ValueError, match=words):
        gm.frechet_distance(*args)


def test_fid_from_features_stats_and_files(tmp_path, rng):
    x = rng.standard_normal((400, 8))
    y = rng.standard_normal((300, 8)) * 1.5 + 0.2
    ref = frechet_reference(x.mean(0), np.cov(x, rowvar=False), y.mean(0), np.cov(y, rowvar=False))
    assert gm.fid(x, y) == pytest.approx(ref, rel=1e-10)
    sx = FeatureStats.from_features(x)
    sx.save(tmp_path / "x.npz")
    np.save(tmp_path / "y.npy", y)
    assert gm.fid(str(tmp_path / "x.npz"), str(tmp_path / "y.npy")) == pytest.approx(ref, rel=1e-10)
    assert gm.fid_many(x, [y, x, sx]) == pytest.approx([ref, 0.0, 0.0], rel=1e-10, abs=1e-9)


def test_feature_extractor_mismatch(rng):
    x = rng.standard_normal((50, 4))
    a = FeatureStats.from_features(x, feature_extractor="inception")
    b = FeatureStats.from_features(x, feature_extractor="dinov2")
    with pytest.raises(ValueError, match="feature extractor"):
        gm.fid(a, b)
    assert gm.fid(a, b, force=True) == pytest.approx(0.0, abs=1e-9)
    with pytest.raises(ValueError, match="features"):
        gm.fid(x, rng.standard_normal((50, 5)))


def test_small_n_warns_but_is_exact(rng):
    x = rng.standard_normal((20, 30))
    y = rng.standard_normal((25, 30)) + 1
    with pytest.warns(SmallSampleWarning, match="strongly biased"):
        got = gm.fid(x, y)
    ref = frechet_reference(x.mean(0), np.cov(x, rowvar=False), y.mean(0), np.cov(y, rowvar=False))
    assert got == pytest.approx(ref, rel=1e-8)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        gm.fid(rng.standard_normal((100, 3)), rng.standard_normal((100, 3)))


def test_huge_mean_offset(rng):
    x = rng.standard_normal((2000, 10)) + 1e6
    y = rng.standard_normal((2000, 10)) + 1e6 + 0.5
    ref = frechet_reference(x.mean(0), np.cov(x, rowvar=False), y.mean(0), np.cov(y, rowvar=False))
    assert gm.fid(x, y) == pytest.approx(ref, rel=1e-6)


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 12), st.integers(0, 2**31), st.floats(1e-3, 1e3))
def test_properties(d, seed, scale):
    rng = np.random.default_rng(seed)
    mu1, mu2 = rng.standard_normal(d), rng.standard_normal(d)
    s1, s2 = random_cov(rng, d, scale=scale), random_cov(rng, d, rank=max(1, d // 2), scale=scale)
    ab = gm.frechet_distance(mu1, s1, mu2, s2)
    ba = gm.frechet_distance(mu2, s2, mu1, s1)
    assert ab >= 0 and np.isfinite(ab)
    assert ab == pytest.approx(ba, rel=1e-7, abs=1e-9 * scale)
    assert ab == pytest.approx(frechet_reference(mu1, s1, mu2, s2), rel=1e-7, abs=1e-9 * scale)
