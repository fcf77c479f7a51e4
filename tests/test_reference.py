"""Saved references, evaluate_many's leaderboard and the paired comparison."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile

import numpy as np
import pytest

import ganmetrics as gm
from ganmetrics.datasets import inception_like_features
from ganmetrics.reference import FORMAT_VERSION, Reference

ALL = ["fid", "kid", "precision", "recall", "density", "coverage", "nn1_accuracy", "vendi", "prd"]


@pytest.fixture(scope="module")
def sets():
    real = inception_like_features(1200, 48, seed=0)
    real[100:130] = real[0]  # duplicated rows: the multiset path of the k-NN engine
    fakes = {
        "same": inception_like_features(900, 48, seed=1),
        "shifted": inception_like_features(900, 48, seed=2, shift=0.15),
        "dropped": inception_like_features(900, 48, seed=3, mode_drop=0.4),
    }
    return real, fakes


def assert_same_report(a, b):
    assert list(a) == list(b)
    for m in a:
        assert b[m] == a[m], m  # the same operations on the same numbers: equal to the last bit


@pytest.mark.parametrize("mmap", [True, False])
def test_reference_evaluate_equals_evaluate_also_after_save_and_load(sets, tmp_path, mmap):
    real, fakes = sets
    ref = Reference.build(real, metrics=ALL, k=[5, 3])
    path = ref.save(tmp_path / "r.gmref")
    loaded = Reference.load(path, mmap=mmap)
    assert isinstance(loaded.features.array, np.memmap) == mmap
    for fake in fakes.values():
        for k in (5, 3):
            expect = gm.evaluate(real, fake, metrics=ALL, k=k, kid_subsets=20, kid_subset_size=300)
            for r in (ref, loaded):
                assert_same_report(expect, r.evaluate(fake, k=k, kid_subsets=20, kid_subset_size=300))
    np.testing.assert_array_equal(loaded.stats.cov, ref.stats.cov)
    assert loaded.stats.cov_unit_roundoff == ref.stats.cov_unit_roundoff


def test_fid_only_reference_holds_no_features(sets, tmp_path):
    real, fakes = sets
    ref = Reference.build(real, metrics=["fid"])
    assert ref.features is None and ref.radii2 == {}
    loaded = Reference.load(ref.save(tmp_path / "fid.gmref"))
    assert loaded.evaluate(fakes["same"])["fid"] == gm.evaluate(real, fakes["same"], metrics=["fid"])["fid"]
    with pytest.raises(ValueError, match="need the real features"):
        loaded.evaluate(fakes["same"], metrics=["fid", "precision"])
    with pytest.raises(ValueError, match="compare resamples the real set"):
        loaded.compare(fakes["same"], fakes["shifted"])
    ref5 = Reference.build(real, metrics=["precision"], k=5)
    with pytest.raises(ValueError, match="not k = 3"):
        ref5.evaluate(fakes["same"], k=3)


def _rewrite(path, out, edit):
    with zipfile.ZipFile(path) as zin, zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as zout:
        for info in zin.infolist():
            data = zin.read(info.filename)
            zout.writestr(info.filename, edit(info.filename, data))


def test_refusals(sets, tmp_path):
    real, _ = sets
    ref = Reference.build(real, metrics=["fid", "precision"], feature_extractor="inception-v3-tf-2015-12-05:pool3:clean")
    path = ref.save(tmp_path / "r.gmref")
    with pytest.raises(ValueError, match="made with feature extractor .*clean.* not .*legacy_tensorflow"):
        Reference.load(path, feature_extractor="inception-v3-tf-2015-12-05:pool3:legacy_tensorflow")

    def newer(name, data):
        if name != "header.json":
            return data
        h = json.loads(data)
        h["format_version"] = FORMAT_VERSION + 1
        return json.dumps(h).encode()

    _rewrite(path, tmp_path / "newer.gmref", newer)
    with pytest.raises(ValueError, match="newer ganmetrics"):
        Reference.load(tmp_path / "newer.gmref")
    raw = bytearray(open(path, "rb").read())
    raw[len(raw) // 2] ^= 0xFF  # one flipped byte inside the features
    (tmp_path / "flipped.gmref").write_bytes(bytes(raw))
    with pytest.raises(ValueError, match="damaged|not a readable"):
        Reference.load(tmp_path / "flipped.gmref")
    (tmp_path / "cut.gmref").write_bytes(bytes(raw[: len(raw) // 3]))
    with pytest.raises(ValueError, match="not a readable reference"):
        Reference.load(tmp_path / "cut.gmref")
    np.savez(tmp_path / "other.npz", mu=np.zeros(3))
    with pytest.raises(ValueError, match="not a ganmetrics reference"):
        Reference.load(tmp_path / "other.npz")
    with pytest.raises(FileNotFoundError):
        Reference.load(tmp_path / "none.gmref")


def test_reference_from_images_refuses_another_extractor(tmp_path):
    from PIL import Image

    from ganmetrics.extractors import ModuleExtractor

    rng = np.random.default_rng(0)
    for name, n in (("real", 30), ("fake", 25)):
        os.makedirs(tmp_path / name)
        for i in range(n):
            Image.fromarray(rng.integers(0, 256, (12, 12, 3), dtype=np.uint8)).save(tmp_path / name / f"{i}.png")

    def net(x):
        return x.mean(dim=(2, 3))

    ext = ModuleExtractor(net, "mean-colour-v1")
    ref = Reference.build(str(tmp_path / "real"), metrics=["fid", "precision"], k=3, extractor=ext, cache=False)
    assert ref.feature_extractor == "mean-colour-v1"
    got = ref.evaluate(str(tmp_path / "fake"), extractor=ext, cache=False)
    real_f = gm.extract(str(tmp_path / "real"), extractor=ext, cache=False)
    fake_f = gm.extract(str(tmp_path / "fake"), extractor=ext, cache=False)
    assert_same_report(gm.evaluate(real_f, fake_f, metrics=["fid", "precision"], k=3), got)
    other = ModuleExtractor(net, "mean-colour-v2")
    with pytest.raises(ValueError, match="mean-colour-v1.*mean-colour-v2"):
        ref.evaluate(str(tmp_path / "fake"), extractor=other, cache=False)
    assert ref.evaluate(str(tmp_path / "fake"), extractor=other, cache=False, force=True)["fid"] == got["fid"]


def test_leaderboard_outputs_and_ranking(sets, tmp_path):
    real, fakes = sets
    ref = Reference.build(real, metrics=["fid", "precision", "recall", "coverage"], k=5)
    board = gm.evaluate_many(ref, fakes, n_boot=20)
    assert [e.name for e in board.entries][0] == "same"  # lowest FID first
    fids = [e.values["fid"] for e in board.entries]
    assert fids == sorted(fids)
    for e in board.entries:
        expect = gm.evaluate(real, fakes[e.name], metrics=board.metrics, k=5)
        assert e.values == dict(expect)
        for m in board.metrics:
            iv = e.intervals[m]
            assert iv.low <= e.values[m] <= iv.high
            # FID's interval by the delta method (one pass), the k-NN metrics' by 20 half-sampling rounds
            assert (iv.method, iv.n_boot) == (("delta", 0) if m == "fid" else ("half-sampling", 20))
    assert len(board.neighbours) == 2 and board.neighbours[0][2].distinguishable
    by_precision = gm.evaluate_many(ref, fakes, sort="precision", n_boot=0)
    precisions = [e.values["precision"] for e in by_precision.entries]
    assert precisions == sorted(precisions, reverse=True) and by_precision.neighbours == []
    md = board.to_markdown()
    assert sum(line.startswith("| ") for line in md.splitlines()) == 4 and "'>'" in md
    rows = board.to_csv().strip().splitlines()
    assert rows[0].startswith("rank,generator,fid,fid_low,fid_high") and len(rows) == 4
    data = json.loads(board.to_json())
    assert [e["name"] for e in data["entries"]] == [e.name for e in board.entries]
    page = board.to_html(str(tmp_path / "html"))
    assert os.path.getsize(tmp_path / "html" / "metrics.png") > 1000 and "metrics.png" in open(page).read()
    with pytest.raises(ValueError, match="sort="):
        gm.evaluate_many(ref, fakes, sort="kid")
    # a generator given as a statistics file: FID only, no interval, no comparison
    gm.FeatureStats.from_features(fakes["shifted"]).save(tmp_path / "shifted_stats.npz")
    fid_ref = Reference.build(real, metrics=["fid"], keep_features=True)
    mixed = gm.evaluate_many(fid_ref, {"same": fakes["same"], "stats": str(tmp_path / "shifted_stats.npz")}, n_boot=5)
    by_name = {e.name: e for e in mixed.entries}
    assert by_name["stats"].values["fid"] == gm.fid(real, str(tmp_path / "shifted_stats.npz"))
    assert by_name["stats"].intervals == {} and mixed.neighbours[0][2] is None
    assert "stats" in mixed.to_markdown() and json.loads(mixed.to_json())["neighbours"][0]["distinguishable"] is None
    with pytest.raises(ValueError, match="serve FID only"):
        ref.evaluate(str(tmp_path / "shifted_stats.npz"))


def _gaussian(n, d, shift, seed):
    return np.random.default_rng(seed).standard_normal((n, d)) + shift


def test_paired_comparison_covers_the_true_difference():
    """Gaussian data, d = 4, unit covariance: E[FID(R, A)] - E[FID(R, B)] = |dA|^2 - |dB|^2 exactly (the bias
    terms have the same distribution for A and B). 90 % paired intervals over 100 independent data sets cover
    it at a rate inside the binomial band 0.90 +- 3 sd; the paired intervals are narrower than unpaired ones
    (the generated sets are 3x the real one here, so that the real set's variation, which pairing cancels, is a
    large part of the total)."""
    d, n, n_fake = 4, 400, 1200
    da, db = np.full(d, 0.10), np.full(d, 0.14)
    truth = float(da @ da - db @ db)
    covered, paired_w, unpaired_w = 0, [], []
    for rep in range(100):
        real = _gaussian(n, d, 0.0, 3 * rep)
        a, b = _gaussian(n_fake, d, da, 3 * rep + 1), _gaussian(n_fake, d, db, 3 * rep + 2)
        ref = Reference.build(real, metrics=["fid"], keep_features=True)
        c = ref.compare(a, b, "fid", n_boot=50, confidence=0.9, seed=rep)
        covered += c.low <= truth <= c.high
        paired_w.append(c.high - c.low)
        if rep < 20:
            u = ref.compare(a, b, "fid", n_boot=50, confidence=0.9, seed=rep, paired=False)
            unpaired_w.append(u.high - u.low)
    assert 81 <= covered <= 99, covered
    assert np.mean(paired_w[:20]) < 0.8 * np.mean(unpaired_w), (np.mean(paired_w[:20]), np.mean(unpaired_w))


def test_comparison_probability_and_knn_metric(sets):
    real, fakes = sets
    ref = Reference.build(real, metrics=["fid", "precision", "coverage"], k=5)
    c = ref.compare(fakes["same"], fakes["shifted"], "fid", n_boot=20)
    assert c.difference < 0 and c.prob_a_better > 0.95 and c.distinguishable
    c2 = ref.compare(fakes["shifted"], fakes["same"], "fid", n_boot=20)
    assert c2.difference == pytest.approx(-c.difference, rel=1e-12) and c2.prob_a_better < 0.05
    p = ref.compare(fakes["same"], fakes["shifted"], "precision", n_boot=10)
    full = [gm.prdc(real, fakes[x], k=5)["precision"] for x in ("same", "shifted")]
    assert p.difference == pytest.approx(full[0] - full[1], abs=1e-15) and p.prob_a_better > 0.9
    with pytest.raises(ValueError, match="metric must be one of"):
        ref.compare(fakes["same"], fakes["shifted"], "kid")


def test_cli_reference_and_leaderboard(sets, tmp_path):
    real, fakes = sets
    np.save(tmp_path / "real.npy", real)
    for name, f in fakes.items():
        np.save(tmp_path / f"{name}.npy", f)
    run = [sys.executable, "-m", "ganmetrics"]
    out = subprocess.run(run + ["reference", str(tmp_path / "real.npy"), "-o", str(tmp_path / "r.gmref"),
                                "--metrics", "fid,precision,recall", "--json"], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    out = subprocess.run(run + ["leaderboard", str(tmp_path / "r.gmref"), *(str(tmp_path / f"{n}.npy") for n in fakes),
                                "--n-boot", "5", "--json", "--csv", str(tmp_path / "b.csv"), "--html",
                                str(tmp_path / "h")], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["entries"][0]["name"] == "same.npy" and (tmp_path / "h" / "index.html").exists()
    expect = gm.evaluate(real, fakes["same"], metrics=["fid", "precision", "recall"])
    assert data["entries"][0]["values"] == dict(expect)
    assert data["entries"][0]["intervals"]["fid"]["method"] == "delta" and data["info"]["fid_method"] == "auto"
    rounds = subprocess.run(run + ["leaderboard", str(tmp_path / "r.gmref"), str(tmp_path / "same.npy"), "--n-boot", "5",
                                   "--fid-method", "half-sampling", "--json"], capture_output=True, text=True)
    assert rounds.returncode == 0, rounds.stderr
    assert json.loads(rounds.stdout)["entries"][0]["intervals"]["fid"]["method"] == "half-sampling"
    bad = subprocess.run(run + ["leaderboard", str(tmp_path / "real.npy"), str(tmp_path / "same.npy")],
                         capture_output=True, text=True)
    assert bad.returncode == 2 and "not a readable reference" in bad.stderr
