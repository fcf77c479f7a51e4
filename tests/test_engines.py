"""The engines under the metrics: which engine a call gets, and the torch engine's kernels against a float64 brute
force and against the host engine (bit for bit for every decision), on CPU tensors -- the same code that runs
on a GPU. The metric suites (test_knn*, test_precision, test_frechet, test_hostile, test_claims) run whole on
both engines through the ``each_engine`` fixture."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import kth_radius2, prdc_reference, sqdist
from hypothesis import given, settings
from hypothesis import strategies as st
from test_knn import adversarial_sets

import ganmetrics as gm
from ganmetrics.engines import HostEngine, engine_name, forced_engine, forced_tiles

torch = pytest.importorskip("torch")
from ganmetrics.engines.torch_engine import TorchEngine, TorchFeatures  # noqa: E402


def _tf(a):
    return TorchFeatures(torch.from_numpy(np.ascontiguousarray(a)), "x")


def test_the_engine_follows_the_inputs_or_the_request():
    x = np.zeros((4, 2))
    assert engine_name("auto", x) == "host"
    assert engine_name("auto", torch.zeros(4, 2)) == "host"  # a CPU tensor: the host kernels
    assert engine_name("torch", x) == "torch"
    with pytest.raises(ValueError, match="engine must be one of"):
        engine_name("gpu", x)
    with pytest.raises(ValueError, match="forced_engine takes"):
        with forced_engine("auto"):
            pass
    rng = np.random.default_rng(0)
    real, fake = rng.standard_normal((40, 3)), rng.standard_normal((30, 3))
    assert gm.prdc(real, fake, k=3).info["engine"] == "host"
    res = gm.prdc(torch.from_numpy(real), torch.from_numpy(fake), k=3, engine="torch")
    assert res.info["engine"] == "torch" and dict(res) == dict(gm.prdc(real, fake, k=3))
    assert gm.kid(real, fake, subsets=3, subset_size=10, engine="torch").info["engine"] == "torch"
    with pytest.raises(ValueError, match="fake is on meta but the other inputs are on cpu"):
        gm.prdc(torch.from_numpy(real), torch.zeros((30, 3), device="meta"), k=3, engine="torch")


def test_tf32_is_off_during_a_pass_and_restored_after():
    saved = torch.backends.cuda.matmul.allow_tf32, torch.get_float32_matmul_precision()
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.set_float32_matmul_precision("high")
    seen = []
    real_mm = torch.mm

    def spy(a, b):
        seen.append((torch.backends.cuda.matmul.allow_tf32, torch.get_float32_matmul_precision()))
        return real_mm(a, b)

    try:
        torch.mm = spy
        gm.knn_radii(np.random.default_rng(1).standard_normal((30, 4)), k=2, engine="torch")
        assert seen and set(seen) == {(False, "highest")}
        assert torch.backends.cuda.matmul.allow_tf32 and torch.get_float32_matmul_precision() == "high"
    finally:
        torch.mm = real_mm
        torch.backends.cuda.matmul.allow_tf32 = saved[0]
        torch.set_float32_matmul_precision(saved[1])


def _same(got, want, summation, err_msg):
    """The host's float64 values exactly (the host's order of summation), or to rounding (the tree of a GPU)."""
    if summation == "sequential":
        np.testing.assert_array_equal(got, want, err_msg=err_msg)
    else:
        np.testing.assert_allclose(got, want, rtol=4e-16 * 16, atol=0, err_msg=err_msg)


@pytest.mark.parametrize("summation", ["sequential", "tree"])
@pytest.mark.parametrize("tiles", [None, (1, 1), (3, 5), (7, 2)])
def test_torch_knn_pass_matches_brute_force_and_the_host(rng, tiles, summation):
    """Both orders of the float64 recheck (the CPU's and a GPU's) on CPU tensors: the same neighbours as the host."""
    eng, host = TorchEngine(summation=summation), HostEngine()
    for name, x, y in adversarial_sets(rng):
        c = np.concatenate([x, y]).astype(np.float64).mean(0)
        with forced_tiles(*(tiles or (0, 0))):
            for k in (1, 3, len(x) - 1):
                v, idx, _ = eng.knn_pass(_tf(x), None, k, c)
                d = sqdist(x, x)
                np.fill_diagonal(d, np.inf)
                _same(v, np.sort(d, 1)[:, :k], summation, f"{name} k={k}")
                hv, hi, _ = host.knn_pass(host.features(x, "x"), None, k, c)
                np.testing.assert_array_equal(idx, hi, err_msg=name)
                _same(v, hv, summation, name)
            w = np.linspace(0.0, 2.0, len(y))  # weights, some zero: realism's weighted nearest row
            v, idx, _ = eng.knn_pass(_tf(x), _tf(y), 2, c, w)
            hv, hi, _ = host.knn_pass(host.features(x, "x"), host.features(y, "y"), 2, c, w)
            np.testing.assert_array_equal(idx, hi, err_msg=name)
            _same(v, hv, summation, name)


@pytest.mark.parametrize("summation", ["sequential", "tree"])
@pytest.mark.parametrize("tiles", [None, (2, 3), (7, 5)])
@pytest.mark.parametrize("strict", [False, True])
def test_torch_cross_pass_equals_the_host(rng, tiles, strict, summation):
    eng, host = TorchEngine(summation=summation), HostEngine()
    for name, real, fake in adversarial_sets(rng):
        c = np.concatenate([real, fake]).astype(np.float64).mean(0)
        mult = np.arange(len(real)) % 3 + 1
        kw = dict(col_min=True, row_min=True, strict=strict, col_multiplicity=mult)

        def radii(e, x):  # each engine's own radii, as a metric passes them (ties at a radius are then exact ties)
            f = _tf(x) if e is eng else e.features(x, "x")
            return np.ascontiguousarray(e.knn_pass(f, None, 2, c)[0][:, 1])

        with forced_tiles(*(tiles or (0, 0))):
            got = eng.cross_pass(_tf(fake), _tf(real), c, col_radius2=radii(eng, real), row_radius2=radii(eng, fake),
                                 **kw)
            want = host.cross_pass(host.features(fake, "f"), host.features(real, "r"), c,
                                   col_radius2=radii(host, real), row_radius2=radii(host, fake), **kw)
        if summation == "sequential":  # and the brute force's radii give the same counts
            np.testing.assert_array_equal(radii(eng, real), kth_radius2(real, 2))
        for key in ("row_count", "col_any", "row_argmin", "col_argmin"):
            np.testing.assert_array_equal(np.asarray(got[key]), np.asarray(want[key]), err_msg=f"{name} {key}")
        for key in ("row_min", "col_min"):
            _same(np.asarray(got[key]), np.asarray(want[key]), summation, f"{name} {key}")


@settings(max_examples=40, deadline=None)
@given(n=st.integers(3, 24), m=st.integers(2, 20), d=st.integers(1, 6), k=st.integers(1, 5),
       levels=st.sampled_from([2, 3, 1000]), scale=st.sampled_from([2.0**-100, 1.0, 2.0**100]), seed=st.integers(0, 2**16))
def test_torch_prdc_equals_a_float64_brute_force(n, m, d, k, levels, scale, seed):
    """Random shapes, quantised values (ties everywhere, duplicated rows), n = k + 1, d = 1, tiny and huge
    magnitudes: precision, recall, density and coverage of the torch engine equal the float64 definition."""
    k = min(k, n - 1, m - 1) if m > 1 else 1
    if m - 1 < 1:
        return
    rng = np.random.default_rng(seed)
    real = rng.integers(0, levels, (n, d)).astype(np.float64) * scale
    fake = rng.integers(0, levels, (m, d)).astype(np.float64) * scale
    got = gm.prdc(real, fake, k=k, engine="torch")
    want = prdc_reference(real / scale, fake / scale, k)  # exact: integers times a power of two (~1e-30, ~1e30)
    for key in ("precision", "recall", "density", "coverage"):
        assert got[key] == pytest.approx(want[key], abs=1e-12), (key, got, want)
    assert dict(got) == dict(gm.prdc(real, fake, k=k, engine="host"))


def test_torch_statistics_and_frechet_distance_follow_the_contract(rng):
    """float64 products of centred chunks (any input dtype; huge offsets), and the Fréchet distance from
    torch.linalg within 1e-9 (tr S1 + tr S2) of the nuclear-norm truth, n < d included."""
    for dtype in (torch.float64, torch.float32, torch.float16, torch.bfloat16):
        x = torch.from_numpy(rng.standard_normal((300, 12)) * 3 + 1e3).to(dtype)
        a = gm.FeatureStats(12).update(x, engine="torch")
        b = gm.FeatureStats(12).update(x.double().numpy())
        assert a.n == b.n == 300
        np.testing.assert_allclose(a.mean, b.mean, rtol=1e-15)
        np.testing.assert_allclose(a.cov, b.cov, rtol=0, atol=1e-12 * np.abs(b.cov).max())
    for n, d in ((40, 64), (300, 64), (65, 64)):
        real, fake = rng.standard_normal((n, d)), rng.standard_normal((n + 7, d)) * 1.3 + 0.1
        xc, yc = real - real.mean(0), fake - fake.mean(0)
        nuclear = np.linalg.svd(xc @ yc.T, compute_uv=False).sum() / np.sqrt((n - 1) * (n + 6))
        s1, s2 = np.cov(real, rowvar=False), np.cov(fake, rowvar=False)
        dmu = real.mean(0) - fake.mean(0)
        truth = dmu @ dmu + np.trace(s1) + np.trace(s2) - 2 * nuclear
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            got = gm.fid(torch.from_numpy(real), torch.from_numpy(fake), engine="torch")
        assert got == pytest.approx(truth, abs=1e-9 * (np.trace(s1) + np.trace(s2))), (n, d)
    with pytest.raises(ValueError, match="sigma1 is not positive semi-definite"):
        gm.frechet_distance(np.zeros(3), -np.eye(3), np.zeros(3), np.eye(3), engine="torch")


def test_torch_kernel_metrics_equal_the_float64_definition(rng):
    real, fake = rng.standard_normal((60, 5)), rng.standard_normal((50, 5)) + 0.2
    with forced_tiles(7, 9):
        full = gm.kid(real, fake, subsets=None, engine="torch").mean
        cm = gm.cmmd(real, fake, engine="torch")
        f32 = gm.kid(real, fake, subsets=None, precision="float32", engine="torch").mean
    kxx = (real @ real.T / 5 + 1) ** 3
    kyy = (fake @ fake.T / 5 + 1) ** 3
    kxy = (real @ fake.T / 5 + 1) ** 3
    want = ((kxx.sum() - np.trace(kxx)) / (60 * 59) + (kyy.sum() - np.trace(kyy)) / (50 * 49) - 2 * kxy.mean())
    assert full == pytest.approx(want, rel=0, abs=1e-12 * kxx.mean())
    assert f32 == pytest.approx(want, rel=0, abs=1e-5 * kxx.mean())
    assert cm == pytest.approx(gm.cmmd(real, fake, engine="host"), rel=0, abs=1e-12 * 1000)


def test_torch_distinct_rows_are_the_hosts(rng):
    """A collapsed set and copies go through the same distinct rows (first occurrences, multiplicities)."""
    x = rng.standard_normal((50, 4))
    x[10:30] = x[3]
    x[40:] = x[0]
    x[35] = -0.0 * x[35]  # -0.0 equals 0.0
    x[36] = 0.0 * x[36]
    host = HostEngine()._find_duplicates(host_features := HostEngine().features(x, "x"))
    mine = TorchEngine()._find_duplicates(_tf(x))
    del host_features
    for key in ("counts", "inverse", "first"):
        np.testing.assert_array_equal(getattr(mine, key), getattr(host, key))
    np.testing.assert_array_equal(mine.rows.t.numpy(), host.rows.array)
