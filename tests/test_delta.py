"""FID's delta-method interval (metrics/delta.py): its formulas against a plain float64 numpy reference, and its
intervals against Monte-Carlo truth with the real side fixed (a benchmark reference) and in paired comparisons.

Coverage over R data sets is Binomial(R, p): accepted within 3 binomial standard deviations of the nominal rate on
both sides (too wide fails as well as too narrow)."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest

import ganmetrics as gm
from ganmetrics._arrays import as_features
from ganmetrics.metrics import delta as D
from ganmetrics.stats import FeatureStats

R = 100


def _band(p=0.9, reps=R, z=3.0):
    half = z * np.sqrt(p * (1 - p) / reps)
    return p - half, p + half


def _sqrt_psd(a):
    w, v = np.linalg.eigh(a)
    return (v * np.sqrt(np.clip(w, 0, None))) @ v.T


def fid_reference(mu_a, cov_a, mu_b, cov_b):
    """Plain float64 FD: the root term from the eigenvalues of S_a^1/2 S_b S_a^1/2."""
    h = _sqrt_psd(cov_a)
    lam = np.linalg.eigvalsh(h @ cov_b @ h)
    d = mu_a - mu_b
    return float(d @ d + np.trace(cov_a) + np.trace(cov_b) - 2 * np.sqrt(np.clip(lam, 0, None)).sum())


def _stats(x):
    return FeatureStats.from_features(x)


@pytest.mark.parametrize("block", [None, 7])  # 7 entries per block: one row per block, n not a multiple of it
def test_influence_is_the_derivative_of_fid(monkeypatch, block):
    if block:
        monkeypatch.setattr(D, "_BLOCK_ENTRIES", block)
    rng = np.random.default_rng(0)
    a = rng.standard_normal((50, 3)) @ np.diag([1.0, 0.5, 2.0])
    b = rng.standard_normal((41, 3)) * 1.3 + 0.4
    sa, sb = _stats(a), _stats(b)
    terms = D.side_terms(sa, sb, as_features(b, "fake"))
    mu_b, cov_b = b.mean(0), np.cov(b, rowvar=False)
    eps = 1e-5
    g = []
    for x in b:  # d/de FID at (mu_b + e z, cov_b + e (z z^T - cov_b)), central differences
        z = x - mu_b
        up = fid_reference(sa.mean, sa.cov, mu_b + eps * z, cov_b + eps * (np.outer(z, z) - cov_b))
        down = fid_reference(sa.mean, sa.cov, mu_b - eps * z, cov_b - eps * (np.outer(z, z) - cov_b))
        g.append((up - down) / (2 * eps))
    g = np.asarray(g) - np.mean(g)
    np.testing.assert_allclose(terms.influence * terms.scale, g, rtol=0, atol=1e-6 * np.abs(g).max())
    assert terms.se == pytest.approx(np.sqrt(g.var(ddof=1) / len(b)), rel=1e-6)


def test_bias_against_the_formula_in_loops():
    rng = np.random.default_rng(1)
    a = rng.standard_normal((60, 4))
    b = rng.standard_normal((45, 4)) * np.array([1.0, 2.0, 0.5, 1.5]) + 0.2
    sa, sb32 = _stats(a), _stats(b.astype(np.float32))
    got = D.side_terms(sa, sb32, as_features(b.astype(np.float32), "fake"))  # float32 rows, widened per block
    bf = b.astype(np.float32).astype(np.float64)
    low = np.linalg.cholesky(sa.cov)
    lam, u = np.linalg.eigh(low.T @ sb32.cov @ low)
    w = (bf - sb32.mean) @ low @ u
    s = np.sqrt(lam)
    n = len(b)
    root = 0.0
    for i in range(4):
        for j in range(4):
            v = np.mean(w[:, i] ** 2 * w[:, j] ** 2) - (lam[i] ** 2 if i == j else 0.0)
            root += v / (s[i] * s[j] * (s[i] + s[j]))
    want = np.trace(sb32.cov) / n + root / (2 * n)
    assert got.bias == pytest.approx(want, rel=1e-9)


def test_bias_matches_the_wishart_limit_on_gaussians():
    """Isotropic Gaussians against a fixed identity-like reference: E tr sqrt of a sample covariance falls short by
    d (d + 1) sqrt(c) / (4 n) (second order), plus tr S / n from the mean."""
    rng = np.random.default_rng(2)
    d, n, c = 6, 4000, 1.7
    real = _stats(rng.standard_normal((200000, d)))
    fake = rng.standard_normal((n, d)) * np.sqrt(c)
    got = D.side_terms(real, _stats(fake), as_features(fake, "fake")).bias
    assert got == pytest.approx(d * c / n + d * (d + 1) * np.sqrt(c) / (4 * n), rel=0.05)


def _gauss(rng, n, d, scale, shift):
    return rng.standard_normal((n, d)) * np.sqrt(scale) + shift


def _rectified(rng, n, d, scale, shift):
    return (np.maximum(rng.standard_normal((n, d)) + 0.5, 0.0) - 0.5) * np.sqrt(scale) + shift


@pytest.mark.parametrize("d,n,draw", [(4, 1000, _gauss), (16, 400, _rectified)])
def test_fixed_reference_intervals_against_monte_carlo(d, n, draw):
    """evaluate_many's FID interval (real set fixed, as a benchmark holds it): coverage of E[FID_n | reference]
    within the binomial band, se against the Monte-Carlo spread, bias against the Monte-Carlo bias."""
    rng = np.random.default_rng(d)
    spectrum = 1.0 / np.arange(1, d + 1)
    real = draw(rng, 4 * n, d, spectrum, 0.0)
    ref = gm.Reference.build(real, metrics=["fid"])
    fake_scale, fake_shift = 1.3 * spectrum, 0.1
    mc = np.array([gm.fid(real, draw(rng, n, d, fake_scale, fake_shift)) for _ in range(1000)])
    expected, sd = mc.mean(), mc.std(ddof=1)
    big = gm.fid(real, draw(rng, 400 * n, d, fake_scale, fake_shift))  # FID_inf, up to a bias of 1/400th
    ivs = [gm.evaluate_many(ref, {"g": draw(rng, n, d, fake_scale, fake_shift)}, ["fid"], confidence=0.9,
                            progress=False).entries[0].intervals["fid"] for _ in range(R)]
    assert {iv.method for iv in ivs} == {"delta"} and {iv.n_boot for iv in ivs} == {0}
    hits = sum(iv.low <= expected <= iv.high for iv in ivs) / R
    lo, hi = _band()
    assert lo <= hits <= hi, hits
    assert 0.8 <= np.mean([iv.std for iv in ivs]) / sd <= 1.25
    bias = np.array([iv.bias for iv in ivs])
    true_bias = expected - big
    assert true_bias > 3 * sd / np.sqrt(1000)
    assert abs(bias.mean() - true_bias) <= 0.25 * true_bias + 3 * sd / np.sqrt(1000) + 3 * bias.std() / np.sqrt(R)


def test_paired_comparison_against_monte_carlo():
    """compare(..., "fid") by the delta method: the difference's interval covers E[FID_A - FID_B] within the band,
    and the paired interval is narrower than the unpaired one (the real set's own variation cancels)."""
    rng = np.random.default_rng(11)
    d, n = 4, 600

    def sets():
        return (rng.standard_normal((n, d)), rng.standard_normal((n, d)) * 1.2 + 0.25,
                rng.standard_normal((n, d)) * 1.25 + 0.3)

    diffs = []
    for _ in range(1000):
        real, a, b = sets()
        diffs.append(gm.fid(real, a) - gm.fid(real, b))
    expected = np.mean(diffs)
    hits, width_paired, width_unpaired = 0, [], []
    for _ in range(R):
        real, a, b = sets()
        ref = gm.Reference.build(real, metrics=["fid"], keep_features=True)
        cp = ref.compare(a, b, "fid", confidence=0.9, progress=False)
        cu = ref.compare(a, b, "fid", confidence=0.9, progress=False, paired=False)
        assert (cp.method, cp.n_boot, cu.method) == ("delta", 0, "delta")
        assert cp.difference == pytest.approx(ref.evaluate(a, ["fid"])["fid"] - ref.evaluate(b, ["fid"])["fid"])
        hits += cp.low <= expected <= cp.high
        width_paired.append(cp.high - cp.low)
        width_unpaired.append(cu.high - cu.low)
    lo, hi = _band()
    assert lo <= hits / R <= hi, hits
    assert np.mean(width_paired) < 0.9 * np.mean(width_unpaired)


def test_leaderboard_neighbours_by_the_delta_method():
    rng = np.random.default_rng(4)
    real = rng.standard_normal((800, 6))
    fakes = {"near": rng.standard_normal((700, 6)) + 0.05, "far": rng.standard_normal((700, 6)) * 1.5 + 0.5}
    ref = gm.Reference.build(real, metrics=["fid", "precision"], k=5)
    board = gm.evaluate_many(ref, fakes, ["fid", "precision"], n_boot=10, progress=False)
    (a, b, c), = board.neighbours
    assert (a, b) == ("near", "far") and c.method == "delta" and c.distinguishable and c.prob_a_better > 0.99
    assert c == ref.compare(fakes["near"], fakes["far"], "fid", progress=False)
    assert board.info["fid_method"] == "auto"
    rounds = gm.evaluate_many(ref, fakes, ["fid"], n_boot=10, progress=False, fid_method="half-sampling")
    assert rounds.neighbours[0][2].method == "half-sampling" and rounds.neighbours[0][2].n_boot == 10
    assert rounds.entries[0].intervals["fid"].method == "half-sampling"


def test_falls_back_where_the_delta_method_does_not_apply():
    rng = np.random.default_rng(5)
    real = rng.standard_normal((300, 8))
    few = rng.standard_normal((6, 8))  # 6 samples, rank-8 reference: the root's matrix is singular
    iv = gm.bootstrap(real, few, ["fid"], resample="fake", n_boot=5, progress=False)["fid"]
    assert iv.method == "half-sampling" and iv.n_boot == 5
    with pytest.raises(D.DeltaUnavailable, match="6 samples for a rank-8 real covariance"):
        gm.bootstrap(real, few, ["fid"], resample="fake", n_boot=5, progress=False, fid_method="delta")
    collapsed = np.repeat(rng.standard_normal((1, 8)), 50, axis=0)  # a zero fake covariance
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        iv = gm.bootstrap(real, collapsed, ["fid"], resample="fake", n_boot=5, progress=False)["fid"]
    assert iv.method == "half-sampling" and iv.low == iv.high == pytest.approx(iv.value)
    with pytest.raises(D.DeltaUnavailable, match="singular"):
        gm.bootstrap(real, collapsed, ["fid"], resample="fake", n_boot=5, progress=False, fid_method="delta")
    with pytest.raises(ValueError, match="fid_method must be one of"):
        gm.bootstrap(real, few, ["fid"], fid_method="bootstrap")
    with pytest.raises(ValueError, match="fid_method must be one of"):
        gm.evaluate_many(gm.Reference.build(real, metrics=["fid"]), [few], fid_method="exact")
    with pytest.raises(ValueError, match="fid_method='delta' reads the rows on the host"):
        gm.bootstrap(real, real[::-1], ["fid"], engine="torch", fid_method="delta", progress=False)
    torch_iv = gm.bootstrap(real, real[:200] + 0.1, ["fid"], engine="torch", n_boot=4, progress=False)["fid"]
    assert torch_iv.method == "half-sampling"  # "auto" off the host: the rounds


@pytest.mark.parametrize("scale", [2.0**200, 2.0**-460, 1e100, 1e-140])
def test_scale_equivariance_at_extreme_magnitudes(scale):
    rng = np.random.default_rng(6)
    real, fake = rng.standard_normal((400, 5)), rng.standard_normal((300, 5)) * 1.2 + 0.3
    unit = gm.bootstrap(real, fake, ["fid"], progress=False)["fid"]
    big = gm.bootstrap(real * scale, fake * scale, ["fid"], progress=False)["fid"]
    assert big.method == unit.method == "delta"
    for field in ("value", "low", "high", "std", "bias"):
        assert np.isfinite(getattr(big, field))
        assert getattr(big, field) == pytest.approx(getattr(unit, field) * scale**2, rel=1e-9), field


@pytest.mark.parametrize("dtype", [np.float32, np.float16])
def test_low_precision_features(dtype):
    rng = np.random.default_rng(7)
    real = rng.standard_normal((500, 6)).astype(dtype)
    fake = (rng.standard_normal((400, 6)) + 0.2).astype(dtype)
    iv = gm.bootstrap(real, fake, ["fid"], progress=False)["fid"]
    wide = gm.bootstrap(real.astype(np.float64), fake.astype(np.float64), ["fid"], progress=False)["fid"]
    assert iv.method == "delta" and iv.std == pytest.approx(wide.std, rel=1e-6)
    assert iv.low < iv.value < iv.high


def test_evaluate_reports_the_intervals_of_bootstrap(rng):
    """gm.evaluate and Reference.evaluate carry intervals by default: those of gm.bootstrap with the same seed (both
    sets resampled; a reference's real set fixed), the k-NN values unchanged by coming from the rounds' pass."""
    real = rng.standard_normal((300, 6))
    fake = rng.standard_normal((260, 6)) * 1.1 + 0.2
    names = ["fid", "precision", "recall", "density", "coverage"]
    rep = gm.evaluate(real, fake, names + ["kid"], seed=3, n_boot=8, kid_subsets=5, kid_subset_size=100)
    boot = gm.bootstrap(real, fake, names, n_boot=8, seed=3)
    assert rep.intervals == boot and list(rep.intervals) == names
    assert rep.intervals["fid"].method == "delta" and rep.intervals["coverage"].n_boot == 8
    plain = gm.evaluate(real, fake, names, n_boot=0)
    assert plain.intervals == {} and "intervals" not in plain.info
    assert dict(plain) == {m: rep[m] for m in names} and dict(plain) == pytest.approx(dict(gm.prdc(real, fake)) | {
        "fid": gm.fid(real, fake)}, rel=1e-12, abs=0)
    md = rep.to_markdown()
    assert "| metric | value | 95 % interval |" in md and "fid by the delta method" in md
    assert f"[{boot['recall'].low:.6g}, {boot['recall'].high:.6g}]" in md and "| kid |" in md
    js = json.loads(rep.to_json())
    assert js["intervals"]["density"]["high"] == boot["density"].high
    assert js["intervals"]["fid"]["method"] == "delta"

    ref = gm.Reference.build(real, metrics=names)
    got = ref.evaluate(fake, seed=3, n_boot=8)
    fixed = gm.bootstrap(real, fake, names, n_boot=8, seed=3, resample="fake")
    for m in names:
        a, b = got.intervals[m], fixed[m]
        assert (a.method, a.n_boot) == (b.method, b.n_boot)
        for field in ("value", "low", "high", "std", "bias"):
            assert getattr(a, field) == pytest.approx(getattr(b, field), rel=1e-9, abs=1e-12), (m, field)
    assert "real set fixed" in got.info["intervals"]
    half = gm.evaluate(real, fake, ["fid"], n_boot=8, seed=3, fid_method="half-sampling")
    assert half.intervals["fid"] == gm.bootstrap(real, fake, ["fid"], n_boot=8, seed=3,
                                                 fid_method="half-sampling")["fid"]
    for bad, msg in (({"n_boot": 1}, "n_boot must be 0"), ({"fraction": 1.0}, "fraction"),
                     ({"fid_method": "jackknife"}, "fid_method")):
        with pytest.raises(ValueError, match=msg):
            gm.evaluate(real, fake, **bad)
        with pytest.raises(ValueError, match=msg):
            ref.evaluate(fake, **bad)


def test_small_sets_keep_their_values_when_a_round_cannot_hold_k_plus_one(rng):
    """Intervals on by default must not turn a valid small evaluation into an error: the k-NN values come without
    intervals, saying why; the reference's rounds, floored at k + 2 rows, scale by the share actually drawn."""
    real, fake = rng.standard_normal((10, 3)), rng.standard_normal((9, 3)) + 0.3
    rep = gm.evaluate(real, fake, ["fid", "precision", "coverage"])
    assert list(rep.intervals) == ["fid"] and "none for precision, coverage" in rep.info["intervals"]
    assert dict(rep) == pytest.approx({"fid": gm.fid(real, fake)} | {m: gm.prdc(real, fake)[m]
                                                                     for m in ("precision", "coverage")})
    ref = gm.Reference.build(real, metrics=["fid", "density"])
    got = ref.evaluate(fake, n_boot=6, fid_method="half-sampling")  # rounds of k + 2 = 7 of 9 rows
    assert got.intervals["density"].value == gm.prdc(real, fake)["density"] and got.intervals["fid"].n_boot == 6
    plain = ref.evaluate(fake, n_boot=0, metrics=["density"])
    assert got["density"] == plain["density"] and got.intervals["density"].n_boot == 6
    small = gm.Reference.build(real[:8], metrics=["precision"])
    assert small.evaluate(fake[:6]).intervals == {}  # 6 fake rows: a round of k + 2 = 7 cannot be drawn
