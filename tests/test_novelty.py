"""Novelty metrics: memorization (distance ratio), AuthPct, alpha-precision / beta-recall, C_T, coverage holes,
nearest training samples -- against float64 brute force, against the source tools' own code (dgm-eval, Alaa et
al.'s repository) and on data whose answer is known."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import kth_radius2, load_peer_module, memorization_reference, sqdist
from hypothesis import given, settings
from hypothesis import strategies as st

import ganmetrics as gm


# ---------------------------------------------------------------------------------------------- data
def gaussian_case(seed=0, d=32, n_train=1500, n_fresh=900, n_copies=300, noise=0.05):
    rng = np.random.default_rng(seed)
    train = rng.standard_normal((n_train, d))
    fresh = rng.standard_normal((n_fresh, d))
    copies = train[rng.integers(0, n_train, n_copies)] + noise * rng.standard_normal((n_copies, d))
    return train, fresh, copies


@st.composite
def tied_sets(draw):
    """Small integer-valued sets: many equal distances, duplicated rows within and across the sets, d = 1."""
    d = draw(st.sampled_from([1, 2, 3, 7]))
    nt, nf = draw(st.integers(2, 40)), draw(st.integers(2, 30))
    seed = draw(st.integers(0, 2**31 - 1))
    rng = np.random.default_rng(seed)
    span = draw(st.sampled_from([1, 2, 4]))
    train = rng.integers(0, span + 1, (nt, d)).astype(np.float32)
    fake = rng.integers(0, span + 1, (nf, d)).astype(np.float32)
    if draw(st.booleans()):
        fake[: min(nf, nt)] = train[: min(nf, nt)]
    return train, fake


# ---------------------------------------------------------------------------------------------- memorization
@settings(max_examples=60, deadline=None)
@given(tied_sets(), st.sampled_from([1 / 3, 0.5, 1.0]))
def test_memorization_equals_brute_force_on_ties_and_duplicates(case, threshold):
    train, fake = case
    flagged, nearest, d1, d2 = memorization_reference(train, fake, threshold)
    res = gm.memorization(train, fake, threshold=threshold, workspace_bytes=None)
    np.testing.assert_array_equal(res.flagged, flagged)
    np.testing.assert_array_equal(res.nearest_train, nearest)
    np.testing.assert_allclose(res.nearest_distance ** 2, d1, rtol=1e-15, atol=0)  # sqrt, then squared again
    np.testing.assert_allclose(res.second_distance ** 2, d2, rtol=1e-15, atol=0)
    assert res.fraction == flagged.mean()
    np.testing.assert_array_equal(res.indices, np.flatnonzero(flagged))
    assert np.all(np.isfinite(res.ratio)) and np.all((res.ratio >= 0) & (res.ratio <= 1))


def test_memorization_every_engine_and_tile(each_engine, rng):
    from ganmetrics.engines import forced_tiles

    train = rng.standard_normal((70, 40)).astype(np.float32)  # n <= d in float32 for the fake set
    fake = np.concatenate([train[:6] + 1e-3, rng.standard_normal((30, 40)).astype(np.float32), train[6:9]])
    flagged, nearest, d1, d2 = memorization_reference(train, fake)
    with forced_tiles(7, 5):  # n not a multiple of the tile
        res = gm.memorization(train, fake)
    np.testing.assert_array_equal(res.flagged, flagged)
    np.testing.assert_array_equal(res.nearest_train, nearest)
    np.testing.assert_allclose(res.nearest_distance ** 2, d1, rtol=1e-12, atol=0)
    np.testing.assert_allclose(res.second_distance ** 2, d2, rtol=1e-12)
    assert res.flagged[:6].all() and res.flagged[-3:].all() and not res.flagged[6:-3].any()


def test_fresh_samples_are_not_flagged_and_copies_are():
    """The issue's measurement: 1,500 training and 900 fresh samples of one 32-d Gaussian, 300 near-copies. The
    old union-of-balls rule flagged 46 % of the fresh samples."""
    train, fresh, copies = gaussian_case()
    res = gm.memorization(train, fresh)
    assert res.fraction == 0.0 and res.ratio.min() > 0.5
    assert gm.memorization(train, copies).fraction == 1.0
    union = (sqdist(fresh, train) <= kth_radius2(train, 1)[None, :]).any(1).mean()
    assert union > 0.4  # what the old definition flagged


def test_known_memorization_rate():
    """A generator that returns exact copies (20 %), perturbed copies (10 %) and fresh samples (70 %)."""
    rng = np.random.default_rng(5)
    train = rng.standard_normal((2000, 64))
    pick = rng.choice(2000, 300, replace=False)
    fake = np.concatenate([train[pick[:200]], train[pick[200:]] + 0.02 * rng.standard_normal((100, 64)),
                           rng.standard_normal((700, 64))])
    order = rng.permutation(1000)
    res = gm.memorization(train, fake[order])
    assert res.fraction == 0.3
    np.testing.assert_array_equal(np.sort(res.indices), np.sort(np.flatnonzero(order < 300)))
    np.testing.assert_array_equal(res.nearest_train[np.argsort(order)[:300]], pick)


def test_a_duplicated_training_image_counts_once():
    """A training image present 40 times (the ones most often memorized): its near-copy is flagged, although the
    40 copies are all at the nearest distance (k is doubled until a farther sample appears)."""
    rng = np.random.default_rng(1)
    train = np.concatenate([rng.standard_normal((300, 16)), np.repeat(rng.standard_normal((1, 16)), 40, axis=0)])
    fake = train[-1:] + 1e-3 * rng.standard_normal((3, 16))
    res = gm.memorization(train, fake)
    assert res.flagged.all() and res.nearest_train.tolist() == [300] * 3
    flagged, _, _, d2 = memorization_reference(train, fake)
    np.testing.assert_allclose(res.second_distance ** 2, d2, rtol=1e-12)
    one = gm.memorization(np.repeat(train[-1:], 5, axis=0), fake)  # no second training sample at all
    assert not one.flagged.any() and np.all(one.ratio == 1.0) and one.info["no_second_neighbour"] == 3
    assert gm.memorization(np.repeat(train[-1:], 5, axis=0), train[-1:].repeat(2, 0)).fraction == 1.0


def test_memorization_is_scale_free_and_checks_its_threshold(rng):
    train, fresh, copies = gaussian_case(d=8, n_train=200, n_fresh=50, n_copies=20)
    fake = np.concatenate([fresh, copies])
    base = gm.memorization(train, fake)
    for c in (1e-30, 1e30):
        np.testing.assert_array_equal(gm.memorization(train * c, fake * c).flagged, base.flagged)
    for bad in (0, -0.1, 1.5, "1/3", True):
        with pytest.raises(ValueError, match="threshold"):
            gm.memorization(train, fake, threshold=bad)
    with pytest.raises(ValueError, match="features"):
        gm.memorization(train, fake[:, :3])


# ---------------------------------------------------------------------------------------------- AuthPct
def authpct_reference(train, fake):
    d = sqdist(fake, train)
    nearest = d.argmin(1)
    return kth_radius2(train, 1)[nearest] < d.min(1)


@settings(max_examples=40, deadline=None)
@given(tied_sets())
def test_authpct_equals_brute_force(case):
    train, fake = case
    authentic = authpct_reference(train, fake)
    res = gm.authpct(train, fake)
    np.testing.assert_array_equal(res.authentic, authentic)
    assert res.authpct == 100.0 * authentic.sum() / len(fake)


@pytest.fixture(scope="module")
def dgm_authpct(tmp_path_factory):
    pytest.importorskip("torch")
    return load_peer_module("layer6ai-labs/dgm-eval", "dgm_eval/metrics/authpct.py", "dgm_authpct", tmp_path_factory)


@pytest.mark.parametrize("seed", [0, 1])
def test_authpct_equals_dgm_eval(dgm_authpct, seed):
    """dgm-eval's compute_authpct on the same features. Its float32 cdist may flip a decision where the two
    distances agree to float32 rounding: such flips are counted against the float64 truth, never hidden."""
    train, fresh, copies = gaussian_case(seed=seed, n_train=600, n_fresh=300, n_copies=100)
    for fake in (fresh, copies, np.concatenate([fresh, copies, train[:50]])):
        train32, fake32 = train.astype(np.float32), fake.astype(np.float32)
        ours = gm.authpct(train32, fake32)
        theirs = dgm_authpct.compute_authpct(train32, fake32)
        truth = authpct_reference(train32, fake32)
        np.testing.assert_array_equal(ours.authentic, truth)
        flips = abs(round(theirs * len(fake) / 100) - int(truth.sum()))
        assert flips <= max(1, len(fake) // 200), (theirs, ours.authpct)
        if flips == 0:
            assert ours.authpct == pytest.approx(theirs, abs=1e-4)  # theirs is a float32 percentage


# ---------------------------------------------------------------------------------------------- alpha / beta
@pytest.fixture(scope="module")
def alaa(tmp_path_factory):
    pytest.importorskip("torch")
    pytest.importorskip("sklearn")
    return load_peer_module("vanderschaarlab/evaluating-generative-models", "metrics/evaluation.py", "alaa_eval",
                            tmp_path_factory)


@pytest.mark.parametrize("shift", [0.0, 0.4])
def test_alpha_precision_beta_recall_equal_the_authors_code(alaa, shift):
    """compute_alpha_precision of Alaa et al.'s repository on the same features, its centre the real mean. Their
    distances to the centres are float32: a generated sample within float32 rounding of a quantile radius may
    count differently (at most one sample per level here). Their authenticity line indexes the real 1-NN
    distances with generated indices; ours is the paper's and is checked against brute force."""
    rng = np.random.default_rng(3)
    real = rng.standard_normal((400, 6))
    fake = rng.standard_normal((350, 6)) * 1.2 + shift
    res = gm.alpha_precision(real, fake)
    alphas, p_curve, b_curve, dp, db, _ = alaa.compute_alpha_precision(real, fake, real.mean(axis=0))
    np.testing.assert_allclose(res.alphas, alphas, rtol=0, atol=0)
    np.testing.assert_allclose(res.alpha_precision_curve, p_curve, rtol=0, atol=1.01 / len(fake))
    np.testing.assert_allclose(res.beta_recall_curve, b_curve, rtol=0, atol=1.01 / len(real))
    assert res.delta_precision_alpha == pytest.approx(dp, abs=2 * 2 / 29 / len(fake) * 30)
    assert res.delta_recall_beta == pytest.approx(db, abs=2 * 2 / 29 / len(real) * 30)
    assert res.authenticity == authpct_reference(real, fake).mean()


def test_alpha_precision_brute_force_and_extremes(rng):
    real = rng.standard_normal((120, 4))
    fake = rng.standard_normal((90, 4)) + 0.3
    res = gm.alpha_precision(real, fake, alphas=[0.0, 0.25, 0.5, 0.75, 1.0])
    to_c = np.sqrt(((real - real.mean(0)) ** 2).sum(1))
    f_to_c = np.sqrt(((fake - real.mean(0)) ** 2).sum(1))
    np.testing.assert_array_equal(res.alpha_precision_curve,
                                  [(f_to_c <= r).mean() for r in np.quantile(to_c, res.alphas)])
    d = sqdist(real, fake)
    g = d.argmin(1)
    own = np.sqrt(((fake - fake.mean(0)) ** 2).sum(1))[g]
    near = d.min(1) <= kth_radius2(real, 1)
    np.testing.assert_array_equal(res.beta_recall_curve, [(near & (own <= q)).mean() for q in np.quantile(own, res.alphas)])
    same = gm.alpha_precision(real, real.copy())
    assert same.delta_precision_alpha > 0.9 and same.authenticity == 0.0  # copies are never authentic
    for bad in (1, [0.5], [0.2, 0.1], [0, 2], "x"):
        with pytest.raises((ValueError, TypeError)):
            gm.alpha_precision(real, fake, alphas=bad)


# ---------------------------------------------------------------------------------------------- C_T
@pytest.fixture(scope="module")
def dgm_ct(tmp_path_factory):
    pytest.importorskip("sklearn")
    pytest.importorskip("scipy")
    return load_peer_module("layer6ai-labs/dgm-eval", "dgm_eval/metrics/ct.py", "dgm_ct", tmp_path_factory)


def _seeded_dgm(module, monkeypatch, seed=0):
    """dgm-eval's k-means and PCA, seeded and exact (its own calls leave both unseeded, and PCA randomized above
    500 x 500): the one change that makes its C_T repeatable, so that it can be compared."""
    from sklearn.cluster import KMeans
    from sklearn.decomposition import PCA

    monkeypatch.setattr(module, "KMeans", lambda n_clusters, n_init: KMeans(n_clusters=n_clusters, n_init=n_init,
                                                                            random_state=seed))
    monkeypatch.setattr(module, "PCA", lambda n_components: PCA(n_components=n_components, svd_solver="full"))
    # its (m, 1) distance columns give scipy's U as a 1-element array, which numpy 2 no longer stores into a float
    # entry: the same statistic from the flattened columns
    from scipy.stats import mannwhitneyu

    monkeypatch.setattr(module, "mannwhitneyu", lambda x, y, alternative: mannwhitneyu(np.ravel(x), np.ravel(y),
                                                                                      alternative=alternative))


@pytest.mark.parametrize("d", [5, 80])
def test_ct_score_equals_dgm_eval(dgm_ct, monkeypatch, d):
    _seeded_dgm(dgm_ct, monkeypatch)
    rng = np.random.default_rng(d)
    train, test = rng.standard_normal((600, d)), rng.standard_normal((300, d))
    for fake in (rng.standard_normal((400, d)), train[:400] + 0.05 * rng.standard_normal((400, d))):
        ours = gm.ct_score(train, test, fake)
        theirs = dgm_ct.compute_CTscore(train, test, fake)
        assert ours.ct == pytest.approx(float(np.ravel(theirs)[0]), rel=1e-9, abs=1e-9)


def test_mann_whitney_u_equals_scipy(rng):
    from scipy.stats import mannwhitneyu

    from ganmetrics.metrics.novelty import mann_whitney_u

    for x, y in ((rng.standard_normal(30), rng.standard_normal(45)),
                 (rng.integers(0, 4, 25).astype(float), rng.integers(0, 4, 18).astype(float))):
        assert mann_whitney_u(x, y) == mannwhitneyu(x, y, alternative="less").statistic


def test_ct_score_detects_copying_and_checks_its_input():
    rng = np.random.default_rng(2)
    train, test = rng.standard_normal((800, 10)), rng.standard_normal((400, 10))
    fresh = gm.ct_score(train, test, rng.standard_normal((400, 10)))
    copied = gm.ct_score(train, test, train[:400] + 0.02 * rng.standard_normal((400, 10)))
    assert abs(fresh.ct) < 3 and copied.ct < -10
    assert copied.cell.shape == (400,) and copied.cell_used.any()
    assert gm.ct_score(train, test, train[:400], seed=1).ct == gm.ct_score(train, test, train[:400], seed=1).ct
    with pytest.raises(ValueError, match="cells"):
        gm.ct_score(train, test, fresh.cell[:, None] * 1.0, cells=0)
    with pytest.raises(ValueError, match="features"):
        gm.ct_score(train, test[:, :3], train[:10])
    with pytest.raises(ValueError, match="tau"):
        gm.ct_score(train, test, train[:50], tau=0.99)


# ---------------------------------------------------------------------------------------------- per-sample k-NN
@settings(max_examples=40, deadline=None)
@given(tied_sets(), st.integers(1, 4))
def test_coverage_holes_and_train_neighbours_equal_brute_force(case, k):
    real, fake = case
    if len(real) <= k:
        return
    d = sqdist(fake, real)
    rr = kth_radius2(real, k)
    res = gm.coverage_holes(real, fake, k=k)
    covered = d.min(0) <= rr
    np.testing.assert_array_equal(res.covered, covered)
    assert res.coverage == covered.mean()
    assert set(res.holes.tolist()) == set(np.flatnonzero(~covered).tolist())
    m = res.margin[res.holes]
    assert np.all(m[:-1] >= m[1:]) and np.all(m > 1)  # the farthest first; a hole lies outside its ball
    if len(fake) >= 2:
        assert res.coverage == gm.density_coverage(real, fake, k=k).coverage
    kk = min(k, len(real) - 1)
    nb = gm.train_neighbours(real, fake, k=kk)
    order = np.lexsort((np.broadcast_to(np.arange(len(real)), d.shape), d), axis=1)[:, :kk]
    np.testing.assert_array_equal(nb.indices, order)
    np.testing.assert_allclose(nb.distances ** 2, np.take_along_axis(d, order, 1), rtol=1e-15, atol=0)


def test_novelty_metrics_take_tensors_on_the_torch_engine(rng):
    torch = pytest.importorskip("torch")
    train, fresh, copies = gaussian_case(d=12, n_train=300, n_fresh=80, n_copies=40)
    fake = np.concatenate([fresh, copies])
    t, f = torch.from_numpy(train), torch.from_numpy(fake)
    for fn in (gm.memorization, gm.authpct, gm.alpha_precision, gm.coverage_holes):
        host, dev = fn(train, fake), fn(t, f, engine="torch")
        assert dev.info["engine"] == "torch"
        for key, value in host.items():
            np.testing.assert_array_equal(np.asarray(dev[key]), np.asarray(value), err_msg=f"{fn.__name__}.{key}")


# ---------------------------------------------------------------------------------------------- in the tables
NOVELTY_TABLE = ["memorization", "authpct", "alpha_precision", "beta_recall", "authenticity", "c2st"]


def test_novelty_metrics_in_evaluate_references_and_leaderboards(tmp_path):
    pytest.importorskip("sklearn")
    train, fresh, copies = gaussian_case(d=10, n_train=400, n_fresh=150, n_copies=50)
    fake = np.concatenate([fresh, copies])
    rep = gm.evaluate(train, fake, metrics=["fid", *NOVELTY_TABLE], n_boot=0)
    ab = gm.alpha_precision(train, fake)
    c2 = gm.c2st(train, fake, permutations=0)
    assert rep["memorization"] == gm.memorization(train, fake).fraction == 0.25
    assert rep["authpct"] == gm.authpct(train, fake).authpct
    assert (rep["alpha_precision"], rep["beta_recall"], rep["authenticity"]) == (
        ab.delta_precision_alpha, ab.delta_recall_beta, ab.authenticity)
    assert (rep["c2st"], rep["c2st_auc"]) == (c2.accuracy, c2.auc)
    ref = gm.Reference.build(train, metrics=["fid", *NOVELTY_TABLE])
    ref.save(tmp_path / "train.gmref")
    back = gm.Reference.load(tmp_path / "train.gmref")
    via_ref = back.evaluate(fake, n_boot=0)
    assert {m: via_ref[m] for m in NOVELTY_TABLE} == {m: rep[m] for m in NOVELTY_TABLE}
    board = gm.evaluate_many(back, {"fresh": fresh, "with copies": fake}, metrics=["memorization", "c2st"],
                             sort="memorization", n_boot=0)
    assert [e.name for e in board.entries] == ["fresh", "with copies"]  # lower memorization ranks first
    with pytest.raises(ValueError, match="real features"):
        gm.Reference.build(train, metrics=["fid"], keep_features=False).evaluate(fake, metrics=["memorization"])


# ---------------------------------------------------------------------------------------------- FLS
@pytest.fixture(scope="module")
def dgm_fls(tmp_path_factory):
    """dgm-eval's fls.py with its CUDA placement patched to the CPU (its only change)."""
    import importlib.util

    from conftest import peer_file

    pytest.importorskip("torch")
    source = open(peer_file("layer6ai-labs/dgm-eval", "dgm_eval/metrics/fls.py", tmp_path_factory)).read()
    assert source.count(".cuda()") == 4 and source.count('device="cuda"') == 1
    path = tmp_path_factory.mktemp("fls_cpu") / "fls_cpu.py"
    path.write_text(source.replace(".cuda()", "").replace('device="cuda"', 'device="cpu"'))
    spec = importlib.util.spec_from_file_location("dgm_fls_cpu", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _fls_sets(seed=0, d=16, n=150, fake=None):
    rng = np.random.default_rng(seed)
    train, baseline, test = (rng.standard_normal((n, d)) for _ in range(3))
    return train, baseline, test, rng.standard_normal((n, d)) * 1.1 if fake is None else fake


@pytest.mark.parametrize("kind", ["fresh", "copies"])
def test_fls_equals_dgm_eval(dgm_fls, kind):
    train, baseline, test, fake = _fls_sets()
    if kind == "copies":
        fake = train + 1e-3 * np.random.default_rng(1).standard_normal(train.shape)
    f32 = [a.astype(np.float32) for a in (train, baseline, test, fake)]
    theirs, theirs_overfit = dgm_fls.compute_fls(*f32), dgm_fls.compute_fls_overfit(*f32)
    ours32 = gm.fls(*f32, float32=True)
    assert ours32.fls == pytest.approx(theirs, rel=1e-4)  # the same float32 arithmetic, up to operation order
    assert ours32.fls_overfit == pytest.approx(theirs_overfit, abs=100 / len(fake) + 1e-9)
    ours = gm.fls(train, baseline, test, fake)  # float64
    assert ours.fls == pytest.approx(theirs, rel=1e-3)
    if kind == "copies":
        assert ours.fls < 50 and ours.fls_overfit > 40  # copies: worse than real samples, overfitting flagged
    else:
        assert 50 < ours.fls < 150 and abs(ours.fls_overfit) < 15


def test_fls_is_deterministic_and_checks_its_input():
    train, baseline, test, fake = _fls_sets(d=6, n=60)
    a, b = gm.fls(train, baseline, test, fake), gm.fls(train, baseline, test, fake)
    assert a.fls == b.fls and np.array_equal(a.log_bandwidths, b.log_bandwidths)
    same = gm.fls(train, baseline, test, baseline.copy())
    assert same.fls == pytest.approx(100.0, rel=1e-12)  # the generated set is the baseline: exactly 100
    with pytest.raises(ValueError, match="features"):
        gm.fls(train, baseline, test[:, :3], fake)
    with pytest.raises(ValueError, match="steps"):
        gm.fls(train, baseline, test, fake, steps=0)
    const = train.copy()
    for x in (const, baseline, test, fake):
        x[:, 0] = 1.0
    with pytest.raises(ValueError, match="constant"):
        gm.fls(const, baseline, test, fake)
