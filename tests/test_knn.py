import numpy as np
import pytest
import torch
from conftest import kth_radius2, prdc_reference, sqdist
from hypothesis import given, settings
from hypothesis import strategies as st

import ganmetrics as gm
from ganmetrics._native import _core
from ganmetrics.engines import forced_tiles

pytestmark = pytest.mark.usefixtures("each_engine")  # every test on the host and the torch engine

TILES = [None, (1, 1), (3, 5), (7, 2), (16, 16)]


def engine_knn(x, y, k, self, tiles=None, weight=None):
    c = np.concatenate([x, y]).astype(np.float64).mean(0)
    r, cc = tiles or (0, 0)
    return _core.knn(x, 2 if x.dtype == np.float32 else 3, y, 2 if y.dtype == np.float32 else 3, self, c, k, weight,
                     max_tile_rows=r, max_tile_cols=cc)


def adversarial_sets(rng):
    """(name, real, fake) cases the engine must get exactly right."""
    base = rng.standard_normal((37, 6)).astype(np.float32)
    dup = np.repeat(base[:9], 4, axis=0)  # every row four times: ties at distance 0
    grid = np.stack(np.meshgrid(np.arange(5.0), np.arange(5.0)), -1).reshape(-1, 2).astype(np.float32)  # many equal distances
    offset = (rng.standard_normal((41, 5)) + 1e4).astype(np.float32)
    yield "random", base, rng.standard_normal((29, 6)).astype(np.float32) + 0.3
    yield "duplicates", dup, dup[::-1].copy()
    yield "grid ties", grid, grid[::2] + np.float32(0.5)
    yield "d=1", rng.standard_normal((33, 1)).astype(np.float32), rng.standard_normal((31, 1)).astype(np.float32)
    yield "huge offset", offset, (rng.standard_normal((39, 5)) + 1e4).astype(np.float32)
    yield "identical", base, base.copy()
    yield "float64", rng.standard_normal((30, 4)), rng.standard_normal((25, 4))


@pytest.mark.parametrize("tiles", TILES)
def test_engine_knn_matches_brute_force(rng, tiles):
    for name, x, y in adversarial_sets(rng):
        for k in (1, 3, len(x) - 1):
            v, idx, _ = engine_knn(x, x, k, True, tiles)
            d = sqdist(x, x)
            np.fill_diagonal(d, np.inf)
            np.testing.assert_array_equal(v, np.sort(d, 1)[:, :k], err_msg=f"{name} k={k}")
            # indices: ordered by (distance, index); the chosen neighbours have the reported distances
            np.testing.assert_array_equal(np.take_along_axis(d, idx, 1), v)
            assert (idx != np.arange(len(x))[:, None]).all()
        v, idx, _ = engine_knn(x, y, 2, False, tiles)
        d = sqdist(x, y)
        np.testing.assert_array_equal(v, np.sort(d, 1)[:, :2], err_msg=name)
        order = np.lexsort((np.broadcast_to(np.arange(len(y)), d.shape), d), axis=1)[:, :2]
        np.testing.assert_array_equal(idx, order, err_msg=name)


@pytest.mark.parametrize("tiles", TILES)
def test_prdc_matches_brute_force_on_adversarial_inputs(rng, tiles):
    for name, real, fake in adversarial_sets(rng):
        for k in (1, 3, min(len(real), len(fake)) - 1):
            if tiles:
                with forced_tiles(*tiles):
                    got = gm.prdc(real, fake, k=k)
            else:
                got = gm.prdc(real, fake, k=k)
            ref = prdc_reference(real, fake, k)
            for key in ref:
                assert got[key] == pytest.approx(ref[key], abs=1e-15), f"{name} k={k} {key}"


def test_identical_sets_are_perfect(rng):
    x = rng.standard_normal((60, 8))
    res = gm.prdc(x, x.copy(), k=4)
    assert res.precision == res.recall == res.coverage == 1.0


def test_mode_collapse(rng):
    real = rng.standard_normal((400, 8)) * 3
    fake = rng.standard_normal((300, 8)) * 0.05  # a tight cluster inside the real set
    res = gm.prdc(real, fake, k=5)
    assert res.precision > 0.95 and res.recall < 0.1 and res.coverage < 0.2


def test_agrees_with_prdc_package_on_tie_free_data(rng):
    prdc_pkg = pytest.importorskip("prdc")
    real = rng.standard_normal((300, 12))
    fake = rng.standard_normal((250, 12)) * 1.1 + 0.2
    ref = prdc_pkg.compute_prdc(real, fake, 5)
    got = gm.prdc(real, fake, k=5)
    for key in ref:
        assert got[key] == pytest.approx(float(ref[key]), abs=1e-12)


def test_invariance_to_order_threads_dtype_views(rng):
    real = rng.standard_normal((150, 10)).astype(np.float32)
    fake = (rng.standard_normal((120, 10)) + 0.4).astype(np.float32)
    base = gm.prdc(real, fake, k=3)
    pr, pf = rng.permutation(150), rng.permutation(120)
    assert gm.prdc(real[pr], fake[pf], k=3) == base
    gm.set_num_threads(1)
    try:
        one = gm.prdc(real, fake, k=3)
    finally:
        gm.set_num_threads(0)
    assert one == base
    assert gm.prdc(np.asfortranarray(real), torch.from_numpy(fake), k=3) == base
    wide = np.zeros((150, 20), dtype=np.float32)
    wide[:, ::2] = real
    assert gm.prdc(wide[:, ::2], fake, k=3) == base
    with forced_tiles(4, 3):
        assert gm.prdc(real, fake, k=3, workspace_bytes=1 << 20) == base


def test_radii_realism_nn1_memorization(rng):
    real = rng.standard_normal((80, 5))
    fake = rng.standard_normal((70, 5)) + 0.5
    np.testing.assert_allclose(gm.knn_radii(real, 3), np.sqrt(kth_radius2(real, 3)), rtol=0, atol=0)
    # realism: max over kept real r of radius(r) / |g - r|, the half with the largest radii dropped
    r2 = kth_radius2(real, 3)
    kept = r2 <= np.median(r2)
    d = np.sqrt(sqdist(fake, real))
    ref = (np.sqrt(r2)[None, kept] / d[:, kept]).max(1)
    np.testing.assert_allclose(gm.realism_score(real, fake, k=3), ref, rtol=1e-12)
    # 1-NN accuracy: leave-one-out on the union
    z = np.concatenate([real, fake])
    dz = sqdist(z, z)
    np.fill_diagonal(dz, np.inf)
    lab = np.r_[np.zeros(80), np.ones(70)]
    acc = (lab[dz.argmin(1)] == lab).mean()
    assert gm.nn1_accuracy(real, fake).accuracy == pytest.approx(acc, abs=1e-15)
    # memorization: copies of training rows are flagged, samples far from every training row are not
    fake2 = np.concatenate([real[:5], fake + 10])
    res = gm.memorization(real, fake2)
    assert list(res.indices) == [0, 1, 2, 3, 4]
    assert res.fraction == pytest.approx(5 / 75)
    assert list(res.nearest_train[:5]) == [0, 1, 2, 3, 4]
    assert np.all(res.nearest_distance[:5] == 0)


def test_nn1_accuracy_extremes(rng):
    real = rng.standard_normal((100, 4))
    far = rng.standard_normal((100, 4)) + 100
    assert gm.nn1_accuracy(real, far).accuracy == 1.0
    same = rng.standard_normal((2000, 2))
    assert abs(gm.nn1_accuracy(same[:1000], same[1000:]).accuracy - 0.5) < 0.05


@pytest.mark.parametrize(
    "call, words",
    [
        (lambda r, f: gm.prdc(r, f, k=30), "k = 30 must be smaller than the number of real samples"),
        (lambda r, f: gm.prdc(r, f, k=0), "k must be >= 1"),
        (lambda r, f: gm.prdc(r, f, k=2.5), "k must be an integer"),
        (lambda r, f: gm.prdc(r[:1], f, k=1), "at least 2"),
        (lambda r, f: gm.prdc(r, f[:, :3], k=2), "4 features but fake has 3"),
        (lambda r, f: gm.prdc(r, np.where(f > 1, np.nan, f), k=2), "fake contains"),
        (lambda r, f: gm.knn_radii(r, k=30), "k = 30"),
    ],
)
def test_errors_before_work(rng, call, words):
    r = rng.standard_normal((30, 4))
    f = rng.standard_normal((40, 4))
    with pytest.raises((ValueError, TypeError), match=words):
        call(r, f)


@settings(max_examples=40, deadline=None)
@given(
    st.integers(2, 40), st.integers(2, 40), st.integers(1, 6), st.integers(1, 5), st.integers(0, 2**31),
    st.sampled_from([0, 1, 2]), st.sampled_from([(0, 0), (1, 2), (5, 3)]),
)
def test_prdc_property(n, m, d, k, seed, quantize, tiles):
    rng = np.random.default_rng(seed)
    real = rng.standard_normal((n, d))
    fake = rng.standard_normal((m, d)) + 0.3
    if quantize:  # coarse values: many exact ties and duplicates
        real, fake = np.round(real * quantize), np.round(fake * quantize)
    k = min(k, n - 1, m - 1)
    if k < 1:
        return
    with forced_tiles(*tiles):
        got = gm.prdc(real.astype(np.float32), fake.astype(np.float32), k=k)
    ref = prdc_reference(real.astype(np.float32), fake.astype(np.float32), k)
    for key in ref:
        assert got[key] == pytest.approx(ref[key], abs=1e-15)
