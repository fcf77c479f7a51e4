"""The Fréchet distance's precision contract (README, "What exact means").

From features of any float dtype and any n >= 2 (n <= d, dead or constant columns, duplicated rows),
the value is within 1e-9 * (tr S1 + tr S2) of the float64 truth, the nuclear norm of Xc Yc^T; never an
error for rounding-level indefiniteness. Given matrices are judged by the rounding their own precision
carries; a clearly indefinite one is an error that reports its own smallest eigenvalue.
"""

import re
import warnings

import numpy as np
import pytest
import torch
from conftest import frechet_truth
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import ganmetrics as gm
from ganmetrics.datasets import inception_like_features
from ganmetrics.metrics.frechet import SmallSampleWarning

pytestmark = pytest.mark.usefixtures("each_engine")  # every test on the host and the torch engine

CONTRACT = 1e-9


def fid_quiet(*args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SmallSampleWarning)
        return gm.fid(*args, **kwargs)


def assert_exact(x, y, value):
    truth, scale = frechet_truth(to64(x), to64(y))
    assert abs(value - truth) <= CONTRACT * scale + 1e-300, (value, truth, scale)


def to64(a):
    if isinstance(a, torch.Tensor):
        return a.double().numpy()
    return np.asarray(a, dtype=np.float64)


def cast(x64, dtype):
    if dtype == "bfloat16":
        return torch.from_numpy(x64).to(torch.bfloat16)
    return x64.astype(dtype)


@st.composite
def feature_pair(draw):
    d = draw(st.integers(1, 48))
    n1 = draw(st.integers(2, 3 * d + 2))
    n2 = draw(st.sampled_from([n1, max(2, d), d + 1, max(2, d - 1), draw(st.integers(2, 3 * d + 2))]))
    kind = draw(st.sampled_from(["full", "low_rank", "dead_columns", "duplicates", "constant", "offset"]))
    dtype = draw(st.sampled_from(["float64", "float32", "float16", "bfloat16"]))
    seed = draw(st.integers(0, 2**31 - 1))
    rng = np.random.default_rng(seed)

    def make(n):
        scales = 1.0 / (1.0 + np.arange(d)) ** 0.8
        x = rng.standard_normal((n, d)) * scales
        if kind == "low_rank":
            r = max(1, d // 3)
            x = rng.standard_normal((n, r)) @ rng.standard_normal((r, d)) / np.sqrt(r)
        elif kind == "dead_columns":
            x[:, rng.random(d) < 0.4] = 0.0
        elif kind == "duplicates":
            x = x[rng.integers(0, max(1, n // 2), size=n)]
        elif kind == "constant":
            x[:] = x[0]
        elif kind == "offset":
            x = x + 50.0
        return x

    return cast(make(n1), dtype), cast(make(n2) + 0.1, dtype)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(feature_pair())
def test_fid_is_exact_for_every_dtype_rank_and_sample_size(pair):
    x, y = pair
    assert_exact(x, y, fid_quiet(x, y))


@pytest.mark.parametrize("dtype", ["float32", "float16"])
@pytest.mark.parametrize("n", [500, 1000, 2048, 2049])
def test_fid_at_d_2048_near_and_below_the_dimension(dtype, n):
    x = inception_like_features(n, 2048, seed=1).astype(dtype)
    y = inception_like_features(n, 2048, seed=2, shift=0.02).astype(dtype)
    value = fid_quiet(x, y)
    assert_exact(x, y, value)
    assert value == pytest.approx(fid_quiet(y, x), rel=1e-12, abs=1e-12)  # symmetric, whichever side is singular


def test_fid_of_unequal_sizes_is_exact_in_both_orders():
    big = inception_like_features(6000, 2048, seed=3)
    small = inception_like_features(1000, 2048, seed=4, shift=0.05)
    for a, b in ((big, small), (small, big)):
        assert_exact(a, b, fid_quiet(a, b))


def test_statistics_keep_float64_products_for_float32_features(rng):
    # float32 features with a large mean: the covariance equals the float64 two-pass one to 1e-12
    x = (rng.standard_normal((3000, 64)) + 1e3).astype(np.float32)
    cov = gm.FeatureStats.from_features(x).cov
    ref = np.cov(x.astype(np.float64), rowvar=False)
    assert np.abs(cov - ref).max() <= 1e-12 * np.abs(ref).max()


def test_float32_sigma_from_torch_cov_is_accepted():
    x = torch.from_numpy(inception_like_features(1000, 2048, seed=5))
    y = torch.from_numpy(inception_like_features(1000, 2048, seed=6, shift=0.05))
    s1, s2 = torch.cov(x.T), torch.cov(y.T)  # float32, rank 999 of 2048, rounding-level negative eigenvalues
    assert float(torch.linalg.eigvalsh(s1.double()).min()) < 0  # the case this guards
    value = gm.frechet_distance(x.mean(0), s1, y.mean(0), s2)
    truth, scale = frechet_truth(x.numpy(), y.numpy())
    # measured 1.3e-10 here (torchmetrics' float64 eigvals route on the same matrices: 7.5e-7)
    assert np.isfinite(value) and abs(value - truth) <= 1e-8 * scale
    stats = gm.FeatureStats.from_mean_cov(x.mean(0), s1)
    assert stats.cov_unit_roundoff == 2.0**-24


def test_singular_float64_sigma_with_rounding_noise_is_accepted(rng):
    d = 256
    a = rng.standard_normal((d, 100))
    s = a @ a.T / 100  # rank 100
    noise = rng.standard_normal((d, d)) * 1e-12 * np.abs(s).max()
    noisy = s + (noise + noise.T) / 2
    assert np.linalg.eigvalsh(noisy).min() < 0
    mu = np.zeros(d)
    exact = gm.frechet_distance(mu, s, mu, s + np.eye(d) * 0.01)
    value = gm.frechet_distance(mu, noisy, mu, s + np.eye(d) * 0.01)
    assert value == pytest.approx(exact, rel=1e-5)


def spectrum_matrix(rng, d, eigenvalues):
    q = np.linalg.qr(rng.standard_normal((d, d)))[0]
    return (q * eigenvalues) @ q.T


@pytest.mark.parametrize("factor, ok", [(0.9, True), (1.1, False)])
def test_psd_threshold_at_its_edge_float64(rng, factor, ok):
    d = 40
    lam = np.linspace(1.0, 0.1, d)
    lam[-1] = -factor * 1e-8  # lambda_max = 1, threshold -1e-8 * lambda_max
    s = spectrum_matrix(rng, d, lam)
    s = (s + s.T) / 2
    mu = np.zeros(d)
    if ok:
        assert np.isfinite(gm.frechet_distance(mu, s, mu, np.eye(d)))
    else:
        with pytest.raises(ValueError, match="sigma1 is not positive semi-definite"):
            gm.frechet_distance(mu, s, mu, np.eye(d))


@pytest.mark.parametrize("factor, ok", [(0.9, True), (1.1, False)])
def test_psd_threshold_at_its_edge_float32(rng, factor, ok):
    d = 64
    tol = 64 * np.sqrt(d) * 2.0**-24  # README: float32 matrices, -64 sqrt(d) u * lambda_max
    lam = np.linspace(1.0, 0.1, d)
    lam[-1] = -factor * tol
    s = spectrum_matrix(rng, d, lam).astype(np.float32)
    mu = np.zeros(d)
    if ok:
        assert np.isfinite(gm.frechet_distance(mu, np.eye(d), mu, s))
    else:
        with pytest.raises(ValueError, match="sigma2 is not positive semi-definite"):
            gm.frechet_distance(mu, np.eye(d), mu, s)


def test_clearly_indefinite_matrix_reports_its_own_eigenvalue(rng):
    d = 300
    lam = np.geomspace(1.0, 1e-6, d)
    lam[-1] = -1e-3
    s = spectrum_matrix(rng, d, lam)
    s = (s + s.T) / 2
    own = np.linalg.eigvalsh(s).min()
    mu = np.zeros(d)
    for sigma in (s, s.astype(np.float32)):
        with pytest.raises(ValueError, match="sigma1 is not positive semi-definite") as info:
            gm.frechet_distance(mu, sigma, mu, np.eye(d))
        reported = float(re.search(r"eigenvalue of (-?[0-9.e+-]+)", str(info.value)).group(1))
        assert reported == pytest.approx(own, rel=1e-3)


def test_negative_diagonal_is_judged_on_eigenvalues(rng):
    s = np.diag([1.0, 0.5, -0.2])
    with pytest.raises(ValueError, match=r"sigma2 is not positive semi-definite: it has an eigenvalue of -0.2"):
        gm.frechet_distance(np.zeros(3), np.eye(3), np.zeros(3), s)


@pytest.mark.parametrize("bad, words", [
    (lambda s: s + np.triu(np.ones_like(s), 1) * 0.5, "not symmetric"),
    (lambda s: np.where(np.eye(len(s)) > 0, np.nan, s), "NaN or Inf"),
])
def test_invalid_matrices_still_raise(rng, bad, words):
    s = np.cov(rng.standard_normal((50, 5)), rowvar=False)
    with pytest.raises(ValueError, match=words):
        gm.frechet_distance(np.zeros(5), bad(s), np.zeros(5), s)


def test_covariance_of_more_rank_than_n_minus_1_is_inconsistent(rng):
    s = np.cov(rng.standard_normal((100, 20)), rowvar=False)
    stats = gm.FeatureStats.from_mean_cov(np.zeros(20), s, n=5)  # a rank-20 matrix cannot come from 5 samples
    with pytest.raises(ValueError, match="sample count does not match"):
        gm.fid(stats, gm.FeatureStats.from_mean_cov(np.zeros(20), s))


def test_bfloat16_and_grad_tensors_as_statistics(rng):
    x = rng.standard_normal((400, 16))
    mu, s = torch.from_numpy(x.mean(0)), torch.from_numpy(np.cov(x, rowvar=False))
    ref = gm.frechet_distance(mu, s, mu + 0.1, s)
    assert gm.frechet_distance(mu.requires_grad_(), s.requires_grad_(), mu.detach() + 0.1, s.detach()) == \
        pytest.approx(ref, rel=1e-12)
    assert gm.frechet_distance(mu.to(torch.bfloat16), s.to(torch.bfloat16), (mu.detach() + 0.1).to(torch.bfloat16),
                               s.detach().to(torch.bfloat16)) == pytest.approx(ref, rel=0.05)


def test_stats_file_keeps_the_precision_of_its_covariance(tmp_path, rng):
    x = rng.standard_normal((300, 10))
    st32 = gm.FeatureStats.from_mean_cov(x.mean(0), np.cov(x, rowvar=False).astype(np.float32), n=300)
    st32.save(tmp_path / "s.npz")
    assert gm.FeatureStats.load(tmp_path / "s.npz").cov_unit_roundoff == 2.0**-24
    np.savez(tmp_path / "f32.npz", mu=x.mean(0), sigma=np.cov(x, rowvar=False).astype(np.float32))  # pytorch-fid style
    assert gm.FeatureStats.load(tmp_path / "f32.npz").cov_unit_roundoff == 2.0**-24
    assert gm.FeatureStats.from_features(x.astype(np.float32)).cov_unit_roundoff == 2.0**-53


# ------------------------------------------------------------------ where users met the old contract
def test_bootstrap_fid_with_halves_below_the_dimension(rng):
    real = rng.standard_normal((300, 256)).astype(np.float32)
    fake = (rng.standard_normal((300, 256)) + 0.05).astype(np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SmallSampleWarning)
        out = gm.bootstrap(real, fake, ["fid"], n_boot=4, seed=0)
    assert np.isfinite(out["fid"].value) and out["fid"].low <= out["fid"].high


def test_compat_fid_given_activations_below_the_dimension(rng):
    from ganmetrics.compat import pytorch_fid

    a = rng.standard_normal((300, 512)).astype(np.float32)
    b = (rng.standard_normal((300, 512)) + 0.1).astype(np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SmallSampleWarning)
        value = pytorch_fid.calculate_fid_given_activations(a, b)
    truth, scale = frechet_truth(a, b)
    assert abs(float(value) - truth) <= CONTRACT * scale


def test_torchmetrics_class_and_fid_infinity_below_the_dimension(rng):
    tm = pytest.importorskip("ganmetrics.torchmetrics")
    x = rng.standard_normal((200, 300)).astype(np.float32)
    y = (rng.standard_normal((180, 300)) + 0.05).astype(np.float32)
    m = tm.FrechetDistance(300)
    m.update(torch.from_numpy(x), real=True)
    m.update(torch.from_numpy(y), real=False)
    with pytest.warns(SmallSampleWarning):
        value = float(m.compute())
    assert_exact(x, y, value)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SmallSampleWarning)
        res = gm.fid_infinity(x, y, num_points=5, min_size=50)
    assert np.all(np.isfinite(res.fids))


def test_example_command_below_the_dimension(capsys):
    from ganmetrics.cli import main

    assert main(["example", "--n", "300", "--dim", "512"]) == 0
