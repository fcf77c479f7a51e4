import os

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from ganmetrics import FeatureStats


def rel(a, b):
    return np.linalg.norm(a - b) / np.linalg.norm(b)


def test_float64_matches_two_pass_reference(rng):
    x = rng.standard_normal((3000, 40)) @ rng.standard_normal((40, 40)) + 5.0
    s = FeatureStats.from_features(x)
    assert s.n == 3000
    assert rel(s.cov, np.cov(x, rowvar=False)) < 1e-12
    assert np.abs(s.mean - x.mean(0)).max() < 1e-12


def test_float32_with_large_mean_offset(rng):
    x = (rng.standard_normal((20000, 64)) + 1e3).astype(np.float32)
    ref = np.cov(x.astype(np.float64), rowvar=False)
    assert rel(FeatureStats.from_features(x).cov, ref) < 1e-12  # float64 products (README, "Statistics")
    naive = (x.T @ x - len(x) * np.outer(x.mean(0), x.mean(0))) / (len(x) - 1)  # sums of squares in float32
    assert rel(naive, ref) > 1e-3  # the naive way loses the digits this test is about


def test_row_at_a_time_equals_one_batch(rng):
    x = rng.standard_normal((400, 12)) * 3 + 100
    one = FeatureStats(12)
    for row in x:
        one.update(row[None, :])
    batch = FeatureStats.from_features(x)
    assert rel(one.cov, batch.cov) < 1e-12
    assert np.abs(one.mean - batch.mean).max() < 1e-12


@settings(max_examples=25, deadline=None)
@given(st.lists(st.integers(1, 40), min_size=1, max_size=6), st.integers(1, 9), st.integers(0, 2**31))
def test_merge_equals_concatenation(sizes, dim, seed):
    rng = np.random.default_rng(seed)
    parts = [rng.standard_normal((n, dim)) * 2 + 50 for n in sizes]
    merged = FeatureStats(dim)
    for p in parts:
        merged.merge(FeatureStats.from_features(p))
    x = np.concatenate(parts)
    assert merged.n == len(x)
    np.testing.assert_allclose(merged.mean, x.mean(0), rtol=1e-12, atol=1e-12)
    if len(x) >= 2:
        np.testing.assert_allclose(merged.cov, np.cov(x, rowvar=False), rtol=1e-9, atol=1e-9)


def test_dtypes_and_torch(rng):
    x = rng.standard_normal((500, 8))
    ref = np.cov(x.astype(np.float16).astype(np.float64), rowvar=False)
    assert rel(FeatureStats.from_features(x.astype(np.float16)).cov, ref) < 1e-12  # exact inputs, float64 products
    t = torch.from_numpy(x).to(torch.bfloat16)
    ref_bf = np.cov(t.double().numpy(), rowvar=False)
    assert rel(FeatureStats.from_features(t).cov, ref_bf) < 1e-12
    assert rel(FeatureStats.from_features(np.asfortranarray(x)).cov, np.cov(x, rowvar=False)) < 1e-12
    assert rel(FeatureStats.from_features(x[::3]).cov, np.cov(x[::3], rowvar=False)) < 1e-12


def test_update_is_atomic_on_bad_batch(rng):
    s = FeatureStats.from_features(rng.standard_normal((50, 4)))
    before = (s.n, s.mean, s.cov)
    bad = rng.standard_normal((10, 4))
    bad[6, 2] = np.nan
    with pytest.raises(ValueError, match="row 6"):
        s.update(bad)
    with pytest.raises(ValueError, match="5 features"):
        s.update(np.zeros((3, 5)))
    assert s.n == before[0]
    np.testing.assert_array_equal(s.cov, before[2])


def test_large_npy_streams_in_blocks(tmp_path, rng, monkeypatch):
    import ganmetrics.stats as stats_mod

    monkeypatch.setattr(stats_mod, "_BLOCK_BYTES", 4096)  # many blocks
    x = rng.standard_normal((1000, 16)).astype(np.float32) + 7
    path = tmp_path / "f.npy"
    np.save(path, x)
    s = FeatureStats.from_features(str(path))
    assert s.n == 1000
    assert rel(s.cov, np.cov(x.astype(np.float64), rowvar=False)) < 1e-12  # float64 products, blocks of any size
    x[900, 3] = np.inf
    np.save(path, x)
    with pytest.raises(ValueError, match="row 900"):
        FeatureStats.from_features(str(path))


def test_save_load_roundtrip_and_foreign_files(tmp_path, rng):
    x = rng.standard_normal((100, 6))
    s = FeatureStats.from_features(x, feature_extractor="inception-v3")
    s.save(tmp_path / "s.npz")
    t = FeatureStats.load(tmp_path / "s.npz")
    assert t.n == 100 and t.feature_extractor == "inception-v3"
    np.testing.assert_array_equal(t.cov, s.cov)
    assert not [p for p in os.listdir(tmp_path) if p.endswith(".tmp")]
    # pytorch-fid / TTUR files carry only mu and sigma
    np.savez(tmp_path / "pf.npz", mu=x.mean(0), sigma=np.cov(x, rowvar=False))
    u = FeatureStats.load(tmp_path / "pf.npz")
    assert u.n is None and rel(u.cov, s.cov) < 1e-14
    with pytest.raises(ValueError, match="cannot be updated"):
        u.update(x)
    np.savez(tmp_path / "bad.npz", mu=x.mean(0))
    with pytest.raises(ValueError, match=r"lacks key\(s\) \['sigma'\]"):
        FeatureStats.load(tmp_path / "bad.npz")
    np.savez(tmp_path / "shape.npz", mu=x.mean(0), sigma=np.eye(5))
    with pytest.raises(ValueError, match="shape"):
        FeatureStats.load(tmp_path / "shape.npz")
    np.savez(tmp_path / "nan.npz", mu=np.full(6, np.nan), sigma=np.eye(6))
    with pytest.raises(ValueError, match="NaN"):
        FeatureStats.load(tmp_path / "nan.npz")
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}], dtype=object))
    with pytest.raises(ValueError):
        FeatureStats.load(tmp_path / "obj.npy")


def test_save_failure_leaves_no_file(tmp_path, rng, monkeypatch):
    s = FeatureStats.from_features(rng.standard_normal((10, 3)))

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", boom)
    with pytest.raises(OSError):
        s.save(tmp_path / "out.npz")
    assert os.listdir(tmp_path) == []


def test_batched_subsets_labels_prefixes(rng):
    x = rng.standard_normal((300, 5)) + 3
    subsets = [rng.choice(300, 120, replace=True), np.arange(0, 300, 7), np.array([4, 4, 9])]
    for st_, idx in zip(FeatureStats.of_subsets(x, subsets), subsets):
        assert st_.n == len(idx)
        np.testing.assert_allclose(st_.cov, np.cov(x[idx], rowvar=False), rtol=1e-10, atol=1e-12)
    labels = rng.integers(0, 4, 300)
    per = FeatureStats.by_label(x, labels)
    assert sorted(per) == [0, 1, 2, 3]
    for c, st_ in per.items():
        np.testing.assert_allclose(st_.mean, x[labels == c].mean(0), rtol=1e-12)
    sizes = [10, 50, 300]
    order = np.random.default_rng(5).permutation(300)
    for st_, n in zip(FeatureStats.nested_prefixes(x, sizes, seed=5), sizes):
        np.testing.assert_allclose(st_.cov, np.cov(x[order[:n]], rowvar=False), rtol=1e-10, atol=1e-12)
    with pytest.raises(ValueError, match="outside"):
        FeatureStats.of_subsets(x, [np.array([300])])


def test_covariance_needs_two_samples():
    s = FeatureStats(3).update(np.ones((1, 3)))
    with pytest.raises(ValueError, match="at least 2"):
        _ = s.cov
