"""Half-sampling rounds from one augmented pass (metrics/rounds.py) against the recomputing path.

Every k-NN round must equal, bit for bit, the metrics recomputed on the drawn rows (same draws); FID rounds with a
fixed real side must lie within their stated rounding bound of the factored-reference route."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import ganmetrics as gm
from ganmetrics import engines
from ganmetrics.metrics import rounds as R
from ganmetrics._arrays import as_features
from ganmetrics.engines.base import forced_tiles
from ganmetrics.metrics.bootstrap import RANGES, _interval, recomputed_rounds
from ganmetrics.metrics.frechet import _Side
from ganmetrics.metrics.knn import prdc_features
from ganmetrics.paired import _idx, _sub
from ganmetrics.stats import FeatureStats

NAMES = ("precision", "recall", "density", "coverage")


def _draws(n_real, n_fake, n_boot, resample, seed=0, fraction=0.5):
    rng = np.random.default_rng(seed)
    mr, mf = max(2, int(round(fraction * n_real))), max(2, int(round(fraction * n_fake)))
    ri = [np.arange(n_real) if resample == "fake" else np.sort(rng.choice(n_real, mr, replace=False))
          for _ in range(n_boot)]
    fi = [np.sort(rng.choice(n_fake, mf, replace=False)) for _ in range(n_boot)]
    return ri, fi


def _both_ways(real, fake, k, resample="both", n_boot=6, seed=0, workspace_bytes=None):
    eng = engines.HostEngine(progress=False, workspace_bytes=workspace_bytes)
    fr, ff = eng.sets({"real": real, "fake": fake})
    ri, fi = _draws(fr.n, ff.n, n_boot, resample, seed)
    fast, info = R.knn_rounds(eng, fr, ff, k, None if resample == "fake" else ri, fi, NAMES)
    slow = recomputed_rounds(engines.HostEngine(progress=False), fr, ff, k, ri, fi, NAMES)
    return fast, slow, info


def _cases():
    rng = np.random.default_rng(7)
    g = lambda n, d, dt=np.float32: rng.standard_normal((n, d)).astype(dt)  # noqa: E731
    base = rng.standard_normal((60, 5))
    modes = rng.standard_normal((3, 4))
    return {
        "float32": (g(301, 8), g(257, 8) + 0.2, 5),
        "float64": (g(200, 6, np.float64), g(180, 6, np.float64), 3),
        "ties (quantized)": (np.round(g(300, 3) * 2), np.round(g(260, 3) * 2), 5),
        "duplicated real": (np.concatenate([base] * 3), g(150, 5, np.float64), 5),
        "collapsed fake": (g(200, 4, np.float64), np.repeat(modes, 70, axis=0), 5),
        "d = 1": (g(90, 1), g(70, 1), 4),
        "draw of k + 1": (g(13, 3), g(12, 3), 5),
        "huge": (g(120, 5, np.float64) * 1e100, g(110, 5, np.float64) * 1e100, 3),
        "tiny": (g(120, 5, np.float64) * 1e-140, g(110, 5, np.float64) * 1e-140, 3),
        "n <= d (float32)": (g(40, 64), g(36, 64), 3),
    }


@pytest.mark.parametrize("resample", ["both", "fake"])
@pytest.mark.parametrize("case", list(_cases()))
def test_rounds_equal_recomputed(case, resample):
    real, fake, k = _cases()[case]
    fast, slow, info = _both_ways(real, fake, k, resample)
    assert fast == slow
    assert info["candidate_pairs"] >= 0


def test_short_lists_and_small_tiles(monkeypatch):
    """Rows whose neighbour list runs out get longer lists (in blocks); tiles smaller than the sets."""
    monkeypatch.setattr(R, "DEPTH_FACTOR", 0)
    monkeypatch.setattr(R, "_LONG_BLOCK", 500)
    rng = np.random.default_rng(3)
    for k in (6, 9):
        real = np.round(rng.standard_normal((230, 3)) * 2).astype(np.float32)
        fake = rng.standard_normal((190, 3)).astype(np.float32)
        with forced_tiles(37, 29):
            fast, slow, info = _both_ways(real, fake, k, "both", n_boot=5, seed=k)
        assert info["list_depth"]["real"] == 8
        assert fast == slow


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(n_real=st.integers(8, 40), n_fake=st.integers(8, 40), d=st.integers(1, 4), k=st.integers(1, 3),
       levels=st.integers(1, 4), seed=st.integers(0, 2**16), resample=st.sampled_from(["both", "fake"]))
def test_rounds_property(n_real, n_fake, d, k, levels, seed, resample):
    """Integer-valued features on few levels: many exact ties and duplicates, yet every round is equal."""
    rng = np.random.default_rng(seed)
    real = rng.integers(0, levels + 1, (n_real, d)).astype(np.float64)
    fake = rng.integers(0, levels + 1, (n_fake, d)).astype(np.float64)
    if k >= min(n_real, n_fake) // 2:
        return
    fast, slow, _ = _both_ways(real, fake, k, resample, n_boot=4, seed=seed)
    assert fast == slow


def test_bootstrap_host_equals_recomputing_engine():
    """gm.bootstrap on the host (one pass) equals the torch engine (rounds recomputed): same intervals."""
    pytest.importorskip("torch")
    rng = np.random.default_rng(11)
    real, fake = rng.standard_normal((160, 6)), rng.standard_normal((140, 6)) + 0.3
    for resample in ("both", "fake"):
        a = gm.bootstrap(real, fake, NAMES, n_boot=5, resample=resample, engine="host", progress=False)
        b = gm.bootstrap(real, fake, NAMES, n_boot=5, resample=resample, engine="torch", progress=False)
        assert a == b


def test_leaderboard_intervals_against_recomputed():
    rng = np.random.default_rng(5)
    real = rng.standard_normal((400, 16)).astype(np.float32)
    fake = (rng.standard_normal((300, 16)) * 1.1 + 0.1).astype(np.float32)
    ref = gm.Reference.build(real, metrics=["fid", *NAMES], k=5)
    board = gm.evaluate_many(ref, {"g": fake}, n_boot=6, progress=False, fid_method="half-sampling")
    got = board.entries[0].intervals
    # the k-NN values come from the rounds' own pass (its full-set round): the values of a plain evaluation
    assert {m: board.entries[0].values[m] for m in NAMES} == {m: gm.prdc(real, fake, k=5)[m] for m in NAMES}
    # recompute: the same draws, each round's PRDC from the drawn rows and FID through the factored reference
    f = as_features(fake, "fake")
    rng0 = np.random.default_rng(0)
    idx = [_idx(rng0, f.n, 150) for _ in range(6)]
    rows = [prdc_features(ref.features, _sub(f, i, "fake"), 5, progress=False, real_radii2=ref.radii2[5]) for i in idx]
    full = board.entries[0].values
    for m in NAMES:
        assert got[m] == _interval(full[m], np.asarray([r[m] for r in rows]), 0.5, 0.95, RANGES[m])
    old = ref.fd_reference().distances([_Side.of(s, "fake covariance") for s in FeatureStats.of_subsets(f, idx)])
    fd = R.FixedRealFrechet(ref.stats, f)
    for i, o in zip(idx, old):
        value, bound = fd.distance(i)
        assert abs(value - o) <= bound + 1e-12 * max(1.0, abs(o))
        assert bound < 1e-6 * max(1.0, abs(o))
    want = _interval(full["fid"], np.asarray(old), 0.5, 0.95, RANGES["fid"])
    for end in ("low", "high"):  # half-sampling: scale = 1
        assert abs(getattr(got["fid"], end) - getattr(want, end)) <= 2 * got["fid"].round_error + 1e-9
    assert got["fid"].round_error > 0


@pytest.mark.parametrize("paired", [True, False])
def test_compare_knn_against_recomputed(paired):
    rng = np.random.default_rng(9)
    real = rng.standard_normal((300, 8))
    a, b = rng.standard_normal((200, 8)) + 0.1, rng.standard_normal((220, 8)) * 1.2
    ref = gm.Reference.build(real, metrics=["fid", *NAMES], k=5)
    fr, fa, fb = (as_features(x, n) for x, n in ((real, "real"), (a, "fake A"), (b, "fake B")))
    for metric in ("recall", "coverage"):
        got = ref.compare(a, b, metric, n_boot=6, paired=paired, progress=False)
        rng0 = np.random.default_rng(0)
        diffs = []
        for _ in range(6):
            ra, ia, ib = _idx(rng0, 300, 150), _idx(rng0, 200, 100), _idx(rng0, 220, 110)
            rb = ra if paired else _idx(rng0, 300, 150)
            va = prdc_features(_sub(fr, ra, "real"), _sub(fa, ia, "a"), 5, progress=False)[metric]
            vb = prdc_features(_sub(fr, rb, "real"), _sub(fb, ib, "b"), 5, progress=False)[metric]
            diffs.append(va - vb)
        full = [prdc_features(fr, x, 5, progress=False)[metric] for x in (fa, fb)]
        want = _interval(full[0] - full[1], np.asarray(diffs), 0.5, 0.95)
        assert (got.low, got.high, got.difference) == (want.low, want.high, want.value)


def test_round_k_too_large_is_refused():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="bootstrap round"):
        gm.bootstrap(rng.standard_normal((12, 3)), rng.standard_normal((12, 3)), ["precision"], k=6, n_boot=3,
                     progress=False)
