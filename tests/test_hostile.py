"""Hostile input, faults and concurrency (issue 14): every probe gets a clear error or the exact value."""

import multiprocessing as mp
import os
import stat
import struct
import threading
import zipfile

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import ganmetrics as gm
from ganmetrics.cli import main

pytestmark = pytest.mark.usefixtures("each_engine")  # every test on the host and the torch engine


def run(args, capsys):
    code = main(args)
    out = capsys.readouterr()
    return code, out.out, out.err


# ------------------------------------------------------------------ files
def test_statistics_file_missing_a_key_is_named(tmp_path, rng, capsys):
    np.savez(tmp_path / "s.npz", sigma=np.eye(16))
    np.save(tmp_path / "real.npy", rng.standard_normal((50, 16)))
    code, _, err = run(["fid", str(tmp_path / "s.npz"), str(tmp_path / "real.npy")], capsys)
    assert code == 2 and "lacks key(s) ['mu']" in err and "s.npz" in err
    with pytest.raises(ValueError, match=r"lacks key\(s\) \['sigma'\]"):
        np.savez(tmp_path / "m.npz", mu=np.zeros(16))
        gm.fid(str(tmp_path / "m.npz"), str(tmp_path / "real.npy"))


def test_stats_output_that_is_the_input_is_refused(tmp_path, rng, capsys):
    path = tmp_path / "x.npy"
    x = rng.standard_normal((40, 4))
    np.save(path, x)
    code, _, err = run(["stats", str(path), "-o", str(path)], capsys)
    assert code == 2 and "is the input INPUT" in err
    np.testing.assert_array_equal(np.load(path), x)  # untouched


def test_truncated_npz(tmp_path, rng, capsys):
    np.savez(tmp_path / "s.npz", mu=np.zeros(8), sigma=np.eye(8))
    data = (tmp_path / "s.npz").read_bytes()
    (tmp_path / "t.npz").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="t.npz is not a readable .npz"):
        gm.FeatureStats.load(tmp_path / "t.npz")
    np.save(tmp_path / "x.npy", rng.standard_normal((20, 8)))
    code, _, err = run(["fid", str(tmp_path / "t.npz"), str(tmp_path / "x.npy")], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1 and "t.npz" in err


@pytest.mark.parametrize("key, value, words", [
    ("n", np.str_("many"), "key 'n' must be one integer"),
    ("n", np.array([3, 4]), "key 'n' must be one integer"),
    ("feature_extractor", np.array(["a", "b"]), "key 'feature_extractor' must be one string"),
])
def test_malformed_statistics_keys_are_named(tmp_path, key, value, words):
    np.savez(tmp_path / "s.npz", mu=np.zeros(3), sigma=np.eye(3), **{key: value})
    with pytest.raises(ValueError, match=words) as info:
        gm.FeatureStats.load(tmp_path / "s.npz")
    assert "s.npz" in str(info.value)


def test_npz_declaring_gigabytes_is_refused_before_reading(tmp_path):
    # a tiny zip whose array header declares 100000 x 100000 float64 (80 GB)
    header = np.lib.format.header_data_from_array_1_0(np.zeros((1, 1)))
    header["shape"] = (100000, 100000)
    raw = np.lib.format.MAGIC_PREFIX + bytes([1, 0])
    text = repr(header).encode("latin1")
    text += b" " * ((64 - (len(raw) + 2 + len(text) + 1) % 64) % 64) + b"\n"
    payload = raw + struct.pack("<H", len(text)) + text + b"\0" * 1024
    import io

    mu = io.BytesIO()
    np.save(mu, np.zeros(100000))
    with zipfile.ZipFile(tmp_path / "bomb.npz", "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("mu.npy", mu.getvalue())
        zf.writestr("sigma.npy", payload)
    with pytest.raises(ValueError, match=r"array 'sigma' \(shape \(100000, 100000\), float64\) declares 74\.5 GiB"):
        gm.FeatureStats.load(tmp_path / "bomb.npz")
    with pytest.raises(ValueError, match="GANMETRICS_NPZ_MAX_BYTES"):
        gm.fid(str(tmp_path / "bomb.npz"), str(tmp_path / "bomb.npz"))


def test_saving_keeps_mode_follows_links_and_sweeps_killed_writes(tmp_path, rng):
    s = gm.FeatureStats.from_features(rng.standard_normal((30, 3)))
    target = tmp_path / "s.npz"
    s.save(target)
    os.chmod(target, 0o600)
    s.save(target)
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o600  # re-saving keeps the mode
    link = tmp_path / "link.npz"
    os.symlink(target, link)
    s.save(link)
    assert os.path.islink(link) and os.path.realpath(link) == str(target)  # the link stays, its target is written
    dead = mp.get_context("fork").Process(target=lambda: None)
    dead.start()
    dead.join()  # a process id that no longer exists
    stale = tmp_path / f".s.npz.{dead.pid}.abc123.tmp"
    stale.write_bytes(b"partial")
    s.save(target)
    assert not stale.exists()  # what a killed writer left behind is swept on the next save
    assert gm.FeatureStats.load(target).n == 30


def test_unwritable_outputs_are_one_line_errors(tmp_path, rng, capsys):
    np.save(tmp_path / "x.npy", rng.standard_normal((20, 3)))
    code, _, err = run(["stats", str(tmp_path / "x.npy"), "-o", str(tmp_path)], capsys)
    assert code == 2 and "is a folder" in err
    code, _, err = run(["stats", str(tmp_path / "x.npy"), "-o", str(tmp_path / "no" / "such" / "dir" / "s.npz")], capsys)
    assert code == 2 and err.startswith("ganmetrics: error:") and len(err.strip().splitlines()) == 1


# ------------------------------------------------------------------ parameters
@pytest.mark.parametrize("call, exc, words", [
    (lambda x: gm.set_num_threads(50000), ValueError, r"n must be in \[0, 1024\]"),
    (lambda x: gm.kid(x, x, subsets=10**9, subset_size=10), ValueError, "exceeds"),
    (lambda x: gm.prd(x, x, num_angles=10**8), ValueError, "num_angles must be in"),
    (lambda x: gm.cmmd(x, x, sigma=1e-300), ValueError, "sigma must be"),
    (lambda x: gm.cmmd(x, x, scale=float("nan")), ValueError, "scale must be a positive finite number"),
    (lambda x: gm.vendi(x, q=float("nan")), ValueError, "q must be"),
    (lambda x: gm.prdc(x, x, workspace_bytes=2**64), ValueError, "workspace_bytes must be between"),
    (lambda x: gm.FeatureStats(2.7), TypeError, "dim must be an integer"),
])
def test_parameters_get_one_clear_error(rng, call, exc, words):
    x = rng.standard_normal((30, 4))
    with pytest.raises(exc, match=words):
        call(x)
    assert gm.get_num_threads() >= 1


# ------------------------------------------------------------------ threads and fork
@pytest.mark.timeout(120)
def test_feature_stats_updated_from_two_threads(rng):
    x = rng.standard_normal((32000, 24))
    stats = gm.FeatureStats(24)
    halves = [x[:16000], x[16000:]]
    threads = [threading.Thread(target=lambda h=h: [stats.update(h[i:i + 500]) for i in range(0, 16000, 500)])
               for h in halves]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert stats.n == 32000
    np.testing.assert_allclose(stats.cov, np.cov(x, rowvar=False), rtol=1e-10, atol=1e-12)


@pytest.mark.timeout(120)
def test_blas_threads_are_restored_after_concurrent_calls(rng):
    before = gm.build_info()["blas_threads"]
    x, y = rng.standard_normal((1500, 32)), rng.standard_normal((1500, 32))
    threads = [threading.Thread(target=lambda: gm.prdc(x, y, k=5)) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert gm.build_info()["blas_threads"] == before


# ------------------------------------------------------------------ extreme magnitudes
def test_knn_decisions_are_invariant_to_power_of_two_scaling(rng):
    from conftest import kth_radius2, prdc_reference

    real, fake = rng.standard_normal((300, 32)), rng.standard_normal((280, 32)) + 0.2
    base = gm.prdc(real, fake, k=5)
    for c in (2.0**100, 2.0**-100, 2.0**400):
        res = gm.prdc(real * c, fake * c, k=5)
        assert [res[m] for m in ("precision", "recall", "density", "coverage")] == \
            [base[m] for m in ("precision", "recall", "density", "coverage")], c
        np.testing.assert_array_equal(gm.knn_radii(real * c, k=5), gm.knn_radii(real, k=5) * c)
    # the probes: only the fake set scaled by 1e30 (truth: no fake sample near a real one)
    ref = prdc_reference(real, fake * 1e30, 5)
    res = gm.prdc(real, fake * 1e30, k=5)
    assert [res[m] for m in ref] == [ref[m] for m in ref] and res.precision == 0 and res.density == 0
    np.testing.assert_allclose(gm.knn_radii(real * 1e30, k=5) ** 2, kth_radius2(real * 1e30, 5), rtol=1e-13)
    mem = gm.memorization(real * 1e30, fake * 1e30)
    assert mem.fraction == gm.memorization(real, fake).fraction
    assert gm.prd(real * 2.0**100, fake[:300 - 20] * 2.0**100, enforce_balance=False).f8 == \
        gm.prd(real, fake[:280], enforce_balance=False).f8
    with pytest.raises(ValueError, match="overflow float64; divide the features by a power of two"):
        gm.prdc(real * 1e160, fake * 1e160, k=5)


def test_fid_and_kernel_metrics_at_extreme_magnitudes(rng):
    x, y = rng.standard_normal((300, 8)), rng.standard_normal((300, 8)) + 0.3
    fid = gm.fid(x, y)
    for c in (2.0**400, 1e150, 1e-150):
        assert gm.fid(x * c, y * c) / c**2 == pytest.approx(fid, rel=1e-12)  # FD scales with c^2
        assert gm.vendi(x * c) == pytest.approx(gm.vendi(x), rel=1e-12)
        assert gm.cmmd(x * c, y * c) == pytest.approx(gm.cmmd(x, y), rel=1e-12)
    with pytest.raises(ValueError, match="squared deviations overflow float64"):
        gm.fid(x * 1e200, y * 1e200)
    stats = gm.FeatureStats.from_features(x)
    with pytest.raises(ValueError, match="overflow"):
        stats.update(x * 1e200)
    assert stats.n == 300 and np.isfinite(stats.cov).all()  # unchanged by the refused update
    with pytest.raises(ValueError, match="polynomial kernel"):
        gm.kid(x * 1e150, y * 1e150, subsets=None)


# ------------------------------------------------------------------ duplicates and collapse
@st.composite
def duplicated_sets(draw):
    d = draw(st.integers(1, 12))
    seed = draw(st.integers(0, 2**31 - 1))
    rng = np.random.default_rng(seed)
    base = rng.standard_normal((draw(st.integers(1, 6)), d)).astype(np.float32)
    nr, nf = draw(st.integers(8, 60)), draw(st.integers(2, 60))
    mode = draw(st.sampled_from(["collapsed fake", "both from few rows", "shared rows", "integer grid"]))
    if mode == "collapsed fake":
        real = rng.standard_normal((nr, d)).astype(np.float32)
        fake = np.repeat(base[:1], nf, 0)
    elif mode == "both from few rows":
        real, fake = base[rng.integers(0, len(base), nr)], base[rng.integers(0, len(base), nf)] + np.float32(0.25)
    elif mode == "shared rows":
        real = np.concatenate([base[rng.integers(0, len(base), nr // 2)], rng.standard_normal((nr - nr // 2, d))])
        fake = np.concatenate([base[rng.integers(0, len(base), nf // 2)], rng.standard_normal((nf - nf // 2, d))])
    else:
        real = rng.integers(0, 2, (nr, d)).astype(np.float32)
        fake = rng.integers(0, 2, (nf, d)).astype(np.float32)
    k = draw(st.integers(1, max(1, min(nr, nf) - 1)))
    return real.astype(np.float32), fake.astype(np.float32), k


@settings(max_examples=80, deadline=None)
@given(duplicated_sets(), st.booleans())
def test_duplicated_rows_give_the_brute_force_answer(case, strict):
    from conftest import kth_radius2, memorization_reference, sqdist

    real, fake, k = case
    rr, fr = kth_radius2(real, k), kth_radius2(fake, k)
    d = sqdist(fake, real)
    inside = (d < rr[None, :]) if strict else (d <= rr[None, :])
    ref = {"precision": inside.any(1).mean(), "density": inside.sum() / (k * len(fake)),
           "recall": ((d < fr[:, None]) if strict else (d <= fr[:, None])).any(0).mean(),
           "coverage": ((d.min(0) < rr) if strict else (d.min(0) <= rr)).mean()}
    res = gm.prdc(real, fake, k=k, strict=strict)
    assert [res[m] for m in ref] == [ref[m] for m in ref]
    np.testing.assert_allclose(gm.knn_radii(real, k=k) ** 2, rr, rtol=1e-13, atol=0)
    nn1 = gm.nn1_accuracy(real, fake)
    rr1, fr1 = kth_radius2(real, 1), kth_radius2(fake, 1)
    expect = ((rr1 <= d.min(0)).sum() + (fr1 < d.min(1)).sum()) / (len(real) + len(fake))
    assert nn1.accuracy == expect
    mem = gm.memorization(real, fake)
    flagged, lowest, _, _ = memorization_reference(real, fake)
    np.testing.assert_array_equal(mem.flagged, flagged)
    np.testing.assert_array_equal(mem.nearest_train, lowest)  # ties: the lowest training index


def test_a_collapsed_generator_costs_linear_memory(each_engine):
    """README: a fully collapsed fake set (every sample the same) costs what a normal one does, not N^2."""
    from test_claims import PEAK_SCRIPT

    script = PEAK_SCRIPT.replace(
        "fake = rng.standard_normal((n, 64), dtype=np.float32) + np.float32(0.1)",
        "fake = np.repeat(rng.standard_normal((1, 64), dtype=np.float32), n, 0)")
    assert script != PEAK_SCRIPT
    import json
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", script, "16000", each_engine], capture_output=True, text=True,
                         check=True)
    peak_mb = json.loads(out.stdout.strip().splitlines()[-1])["peak_kb"] / 1024
    assert peak_mb < 64, peak_mb  # before: every tied pair was kept, 12 GB at 20k


def test_ties_between_distinct_rows_cost_linear_memory():
    """Every pair of distinct rows equidistant (one-hot rows): each row's candidate list is resolved exactly
    when it overflows, so memory stays O(k) per row (before: all n^2 tied pairs, 96 MB at n = 2000)."""
    import json
    import subprocess
    import sys
    import textwrap

    script = textwrap.dedent("""
        import json
        import numpy as np
        import ganmetrics as gm

        def status(field):
            with open("/proc/self/status") as fh:
                return next(int(l.split()[1]) for l in fh if l.startswith(field))

        x = np.eye(2000, dtype=np.float32)
        gm.knn_radii(x[:50, :50], k=5)
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        before = status("VmRSS")
        r = gm.knn_radii(x, k=5, workspace_bytes=8 << 20)
        print(json.dumps({"peak_kb": status("VmHWM") - before, "radii": sorted(set(r.round(12).tolist()))}))
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    res = json.loads(out.stdout.strip().splitlines()[-1])
    assert res["radii"] == [round(float(np.sqrt(2.0)), 12)]
    assert res["peak_kb"] / 1024 < 40, res["peak_kb"] / 1024
