"""Exactness where it is hard: k-NN decisions at d = 512 and 2048 with many pairs within rounding of a decision.

Every k-NN function is compared with a float64 brute force on sets built so that float32 GEMM distances
cannot decide alone: fake points placed at radius * (1 +- 1e-7) around real points, neighbours at distances
equal to a few ulps, integer grids with a large offset (exact ties). Each test also asserts that the exact
recheck ran (``rechecked_pairs > 0``), so a missing or too small rounding bound fails here.
"""

import numpy as np
import pytest
import torch
from conftest import kth_radius2, prdc_reference, sqdist

import ganmetrics as gm
from ganmetrics.engines import forced_tiles

pytestmark = pytest.mark.usefixtures("each_engine")  # every test on the host and the torch engine

K = 5


def on_spheres(rng, centres, radii2, eps, sign):
    """Points at distance sqrt(radii2) * (1 + sign * eps) from each centre, in random directions (float32)."""
    v = rng.standard_normal(centres.shape)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    pts = centres.astype(np.float64) + v * (np.sqrt(radii2) * (1 + sign * eps))[:, None]
    return pts.astype(np.float32)


def near_radius_sets(d, n=150, seed=0, eps=1e-7, offset=0.0):
    """Real points, and fake points straddling the real k-NN spheres (half just inside, half just outside)."""
    rng = np.random.default_rng(seed)
    real = (rng.standard_normal((n, d)) + offset).astype(np.float32)
    r2 = kth_radius2(real, K)
    pick = rng.permutation(n)
    signs = np.where(np.arange(n) % 2 == 0, -1.0, 1.0)
    fake = on_spheres(rng, real[pick], r2[pick], eps, signs)
    return real, fake


def near_tie_neighbours(d, groups=20, per_group=8, seed=1, eps=1e-7):
    """Each centre has per_group neighbours at distances equal up to relative eps: the k-th is a near tie."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((groups, d)) * 10
    pts = [centres.astype(np.float32)]
    for g in range(groups):
        v = rng.standard_normal((per_group, d))
        v /= np.linalg.norm(v, axis=1, keepdims=True)
        radius = 2.0 * (1 + eps * rng.integers(-3, 4, size=per_group))
        pts.append((centres[g] + v * radius[:, None]).astype(np.float32))
    return np.concatenate(pts)


def integer_grid(d, n=200, seed=2):
    rng = np.random.default_rng(seed)
    return (rng.integers(0, 3, size=(n, d)) + 1e4).astype(np.float32)  # exact ties everywhere, large offset


CASES = [
    ("d=512 near radii", lambda: near_radius_sets(512)),
    ("d=2048 near radii", lambda: near_radius_sets(2048, n=100, seed=3)),
    ("d=512 near radii, offset 1e3", lambda: near_radius_sets(512, seed=4, offset=1e3)),
    ("d=512 integer grid", lambda: (integer_grid(512), integer_grid(512, seed=5))),
]


def brute_density_coverage(real, fake, k):
    ref = prdc_reference(real, fake, k)
    return ref["density"], ref["coverage"]


@pytest.mark.parametrize("name, build", CASES, ids=[c[0] for c in CASES])
def test_prdc_family_equals_brute_force_near_decisions(name, build):
    real, fake = build()
    ref = prdc_reference(real, fake, K)
    res = gm.prdc(real, fake, k=K)
    for m in ("precision", "recall", "density", "coverage"):
        assert res[m] == ref[m], (name, m, res[m], ref[m])
    assert res.info["rechecked_pairs"] > 0  # the exact path ran
    pr = gm.precision_recall(real, fake, k=K)
    assert (pr.precision, pr.recall) == (ref["precision"], ref["recall"])
    dc = gm.density_coverage(real, fake, k=K)
    assert (dc.density, dc.coverage) == brute_density_coverage(real, fake, K)
    assert dc.info["rechecked_pairs"] > 0 and pr.info["rechecked_pairs"] > 0


def test_near_radius_sets_really_straddle_the_radii():
    real, fake = near_radius_sets(512)
    r2 = kth_radius2(real, K)
    d = sqdist(fake, real)
    closest = d.min(1) / r2[d.argmin(1)] - 1
    # both sides of the sphere, every point within 1e-5 relative of it: float32 GEMM cannot decide alone
    assert (closest < 0).sum() > 20 and (closest > 0).sum() > 20 and np.abs(closest).max() < 1e-5


def test_prdc_decisions_survive_tiles_and_threads():
    real, fake = near_radius_sets(512, seed=6)
    ref = prdc_reference(real, fake, K)
    for tiles in ((7, 5), (64, 3)):
        with forced_tiles(*tiles):
            res = gm.prdc(real, fake, k=K)
        assert [res[m] for m in ref] == [ref[m] for m in ref]


def test_knn_radii_near_tied_neighbours():
    for d in (512, 2048):
        x = near_tie_neighbours(d, groups=10 if d == 2048 else 20)
        for k in (1, 4, 8):
            got = gm.knn_radii(x, k=k) ** 2
            # summation order differs from the reference by an ulp; a wrong neighbour would be 1e-7 off
            np.testing.assert_allclose(got, kth_radius2(x, k), rtol=1e-13, atol=0)


def test_realism_score_near_radii():
    real, fake = near_radius_sets(512, seed=7)
    r2 = kth_radius2(real, 3)
    kept = (r2 <= np.median(r2)) & (r2 > 0)
    d = sqdist(fake, real)
    ref = 1.0 / np.sqrt((d[:, kept] / r2[kept]).min(1))
    got = gm.realism_score(real, fake, k=3)
    np.testing.assert_array_equal(got >= 1, ref >= 1)  # the inside/outside decision is exact
    np.testing.assert_allclose(got, ref, rtol=1e-12)


def test_memorization_ratio_on_the_boundary_is_not_a_copy():
    """d1 = threshold * d2 exactly (threshold 1/2, squared distances 1 and 4): not flagged, the test is strict;
    a hair closer is flagged."""
    d = 512
    train = np.zeros((3, d), np.float32)
    train[1, 0], train[2, 1] = 3, -5  # rows 0, 3 e_0, -5 e_1
    g = np.zeros((2, d), np.float32)
    g[0, 0] = 2  # to 3 e_0: 1, to 0: 4 -- ratio exactly 1/2
    g[1, 0] = 2.0078125  # a hair closer to 3 e_0 (exact in float32)
    res = gm.memorization(train, g, threshold=0.5)
    np.testing.assert_array_equal(res.flagged, [False, True])
    assert res.ratio[0] == 0.5 and res.nearest_train.tolist() == [1, 1]


def test_nn1_accuracy_tie_rule_goes_to_real():
    # fake copies of real samples: each sample's nearest other sample is its twin at 0, in the other set
    rng = np.random.default_rng(10)
    real = rng.standard_normal((30, 512)).astype(np.float32)
    res = gm.nn1_accuracy(real, real.copy())
    assert res.real_accuracy == 0.0 and res.fake_accuracy == 0.0
    # real [0, 1], fake [2, 9]: real 1 has a real neighbour (0) and a fake one (2) both at distance 1 -> real: right
    res = gm.nn1_accuracy(np.array([[0.0], [1.0]], np.float32), np.array([[2.0], [9.0]], np.float32))
    assert res.real_accuracy == 1.0
    # real [10, 0], fake [8, 6]: fake 8 has a fake neighbour (6) and a real one (10) both at 2 -> goes to real: wrong
    res = gm.nn1_accuracy(np.array([[10.0], [0.0]], np.float32), np.array([[8.0], [6.0]], np.float32))
    assert res.fake_accuracy == 0.5


def test_density_and_coverage_count_points_on_the_radius():
    # integer lattice: real k-NN radii and the fake distances are exact, and many fakes lie exactly on a radius
    d = 512
    real = (2 * np.eye(d)[:40]).astype(np.float32)        # pairwise squared distance 8: every 5-NN radius^2 is 8
    fake = real[:25].copy()
    fake[np.arange(25), 100 + np.arange(25)] = 2          # squared distance 4 to its source... inside
    fake[np.arange(25), 200 + np.arange(25)] = 2          # ... now exactly 8: on the radius
    ref = prdc_reference(real, fake, K)
    assert ref["coverage"] == 25 / 40 and ref["density"] == 1 / K  # the boundary counts (<=)
    res = gm.density_coverage(real, fake, k=K)
    assert (res.density, res.coverage) == (ref["density"], ref["coverage"])


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_knn_kid_cmmd_on_half_precision(dtype):
    rng = np.random.default_rng(11)
    real64 = rng.standard_normal((120, 24))
    fake64 = rng.standard_normal((110, 24)) + 0.2
    if dtype == "float16":
        real, fake = real64.astype(np.float16), fake64.astype(np.float16)
        real_exact, fake_exact = real.astype(np.float64), fake.astype(np.float64)
    else:
        real = torch.from_numpy(real64).to(torch.bfloat16)
        fake = torch.from_numpy(fake64).to(torch.bfloat16)
        real_exact, fake_exact = real.double().numpy(), fake.double().numpy()
    ref = prdc_reference(real_exact, fake_exact, 3)
    res = gm.prdc(real, fake, k=3)
    assert [res[m] for m in ref] == [ref[m] for m in ref]
    assert gm.kid(real, fake, subsets=None).mean == pytest.approx(gm.kid(real_exact, fake_exact, subsets=None).mean,
                                                                  rel=1e-12)
    assert gm.cmmd(real, fake) == pytest.approx(gm.cmmd(real_exact, fake_exact), rel=1e-12)
    np.testing.assert_allclose(gm.knn_radii(real, k=3) ** 2, kth_radius2(real_exact, 3), rtol=1e-13, atol=0)


def _nearest(d2: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The k smallest of each row by (value, index), from a float64 brute-force matrix."""
    order = np.lexsort((np.broadcast_to(np.arange(d2.shape[1]), d2.shape), d2), axis=1)[:, :k]
    return np.take_along_axis(d2, order, 1), order


BOTH_CASES = [  # (name, points, rows of x (the rest are y), k, k_y, forced tiles)
    ("d=512 near-tied neighbours", lambda: near_tie_neighbours(512), 90, 3, 4, None),
    ("integer grid + 1e4, ties", lambda: integer_grid(6, n=230), 117, 5, 2, None),
    ("d=1 with duplicates", lambda: np.repeat(np.random.default_rng(5).standard_normal((60, 1)), 3, 0).astype(np.float32),
     100, 4, 7, None),
    ("small tiles, n not a multiple", lambda: near_radius_sets(64, n=97)[0], 50, 3, 3, (13, 11)),
    ("k_y = every row of x", lambda: integer_grid(3, n=40), 20, 2, 20, (7, 5)),
]


@pytest.mark.parametrize("name, build, cut, k, k_y, tiles", BOTH_CASES, ids=[c[0] for c in BOTH_CASES])
def test_knn_both_directions_equals_brute_force(name, build, cut, k, k_y, tiles):
    """One pass of the engine gives each row of x its k nearest rows of y and each row of y its k_y nearest rows
    of x (what the ring's radius passes use), both equal to a float64 brute force, ties by index."""
    from ganmetrics._arrays import as_features
    from ganmetrics.engines import HostEngine

    pts = build()
    x, y = as_features(pts[:cut], "x"), as_features(pts[cut:], "y")
    center = np.concatenate([x.array, y.array]).astype(np.float64).mean(0)
    with forced_tiles(*(tiles or (0, 0))):
        v, i, vy, iy, evaluated = HostEngine().knn_both(x, y, k, k_y, center)
        plain = HostEngine().knn_pass(y, x, k_y, center)
    d2 = sqdist(x.array, y.array)
    want_v, want_i = _nearest(d2, k)
    want_vy, want_iy = _nearest(d2.T, k_y)
    np.testing.assert_array_equal(i, want_i)
    np.testing.assert_array_equal(iy, want_iy)
    np.testing.assert_allclose(v, want_v, rtol=1e-14, atol=0)
    np.testing.assert_allclose(vy, want_vy, rtol=1e-14, atol=0)
    np.testing.assert_array_equal(vy, plain[0])  # the same float64 values as a pass from y's side
    np.testing.assert_array_equal(iy, plain[1])
    assert evaluated > 0


def test_knn_both_directions_refuses_what_it_cannot_do():
    from ganmetrics._native import _core

    x = np.random.default_rng(0).standard_normal((10, 3)).astype(np.float32)
    from ganmetrics._arrays import as_features

    f = as_features(x, "x")
    with pytest.raises(ValueError, match="k_y = 11"):
        _core.knn(f.array, f.code, f.array[:5], f.code, False, None, 2, k_y=11)
    with pytest.raises(ValueError, match="no weights"):
        _core.knn(f.array, f.code, f.array[:5], f.code, False, None, 2, np.ones(5), k_y=2)
