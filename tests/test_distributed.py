"""Statistics and FID over shards held by several gloo processes (loopback, bounded time) against one process
on the concatenated data."""

from __future__ import annotations

import datetime
import os
import pickle

import numpy as np
import pytest
import torch.distributed as dist
import torch.multiprocessing as mp

import ganmetrics as gm

pytestmark = pytest.mark.skipif(not dist.is_available(), reason="torch.distributed is not available")


def _data():
    rng = np.random.default_rng(7)
    real = rng.standard_normal((101, 6)) * 3 + 1e3  # a large mean offset: merging must stay exact
    real[40:45] = real[3]  # duplicated rows that land on different ranks
    fake = rng.standard_normal((77, 6)) * 2.5 + 1e3 + 0.1
    return real, fake


def _knn_data():
    """Integer-grid features: many exact ties at the radii, duplicated rows on different ranks."""
    rng = np.random.default_rng(11)
    real = rng.integers(0, 4, (90, 5)).astype(np.float32)
    real[60:70] = real[0]
    fake = rng.integers(0, 4, (70, 5)).astype(np.float64)
    fake[50:55] = real[0]
    return real, fake


def _continuous_data():
    from ganmetrics.datasets import inception_like_features

    return inception_like_features(300, 64, seed=0), inception_like_features(260, 64, seed=1, shift=0.05)


def _bounds(n, parts, empty_rank):
    """Uneven cuts, one rank empty."""
    weights = np.array([0.0 if r == empty_rank else r + 1.0 for r in range(parts)])
    cuts = np.concatenate([[0], np.floor(np.cumsum(weights) / weights.sum() * n).astype(int)])
    cuts[-1] = n
    return cuts


def _worker(rank, size, folder, mode):
    dist.init_process_group("gloo", init_method=f"file://{folder}/store", rank=rank, world_size=size,
                            timeout=datetime.timedelta(seconds=60))
    try:
        real, fake = _data()
        rc, fc = _bounds(len(real), size, empty_rank=size - 1), _bounds(len(fake), size, empty_rank=0)
        my_real, my_fake = real[rc[rank]:rc[rank + 1]], fake[fc[rank]:fc[rank + 1]]
        if mode == "bad" and rank == 1:
            my_fake = my_fake.copy()
            my_fake[0, 0] = np.nan
        if mode == "knn":
            kr, kf = _knn_data()
            krc, kfc = _bounds(len(kr), size, empty_rank=0), _bounds(len(kf), size, empty_rank=size - 1)
            out = {}
            for k in (1, 3, 5):
                res = gm.prdc(kr[krc[rank]:krc[rank + 1]], kf[kfc[rank]:kfc[rank + 1]], k=k, group="default")
                out[k] = dict(res)
            mine_r, mine_f = kr[krc[rank]:krc[rank + 1]], kf[kfc[rank]:kfc[rank + 1]]
            out["pr"] = dict(gm.precision_recall(mine_r, mine_f, k=3, group="default"))
            out["dc"] = dict(gm.density_coverage(mine_r, mine_f, k=5, group="default"))
            out["radii"] = gm.knn_radii(mine_r, k=3, group="default")
            out["rows"] = (int(krc[rank]), int(krc[rank + 1]))
            cr, cf = _continuous_data()
            crc, cfc = _bounds(len(cr), size, empty_rank=size - 1), _bounds(len(cf), size, empty_rank=0)
            out["continuous"] = dict(gm.prdc(cr[crc[rank]:crc[rank + 1]], cf[cfc[rank]:cfc[rank + 1]], k=5,
                                             group="default"))
            with open(os.path.join(folder, f"rank{rank}.pkl"), "wb") as fh:
                pickle.dump(out, fh)
            return
        try:
            st = gm.FeatureStats(6)
            if len(my_real):
                st.update(my_real)
            st.all_reduce()
            out = {"n": st.n, "mean": st.mean, "cov": st.cov, "fid": gm.fid(my_real, my_fake, group="default")}
        except ValueError as exc:
            out = {"error": str(exc)}
        with open(os.path.join(folder, f"rank{rank}.pkl"), "wb") as fh:
            pickle.dump(out, fh)
    finally:
        dist.destroy_process_group()


@pytest.mark.timeout(240)
@pytest.mark.parametrize("size", [2, 3, 4])
def test_sharded_statistics_and_fid_equal_one_process(size, tmp_path):
    mp.spawn(_worker, args=(size, str(tmp_path), "good"), nprocs=size, join=True)
    real, fake = _data()
    whole = gm.FeatureStats.from_features(real)
    expect = gm.fid(real, fake)
    for rank in range(size):
        with open(tmp_path / f"rank{rank}.pkl", "rb") as fh:
            got = pickle.load(fh)
        assert got["n"] == len(real)
        np.testing.assert_allclose(got["mean"], whole.mean, rtol=1e-15)
        np.testing.assert_allclose(got["cov"], whole.cov, rtol=1e-12, atol=1e-12 * np.abs(whole.cov).max())
        assert got["fid"] == pytest.approx(expect, rel=1e-12)


@pytest.mark.timeout(240)
@pytest.mark.parametrize("size", [2, 3, 4])
def test_prdc_on_a_ring_equals_one_process(size, tmp_path):
    """Decisions identical: the four values equal one process's to the last bit, ties and duplicates included."""
    mp.spawn(_worker, args=(size, str(tmp_path), "knn"), nprocs=size, join=True)
    real, fake = _knn_data()
    for rank in range(size):
        with open(tmp_path / f"rank{rank}.pkl", "rb") as fh:
            got = pickle.load(fh)
        for k in (1, 3, 5):
            assert got[k] == dict(gm.prdc(real, fake, k=k)), (rank, k)
        assert got["continuous"] == dict(gm.prdc(*_continuous_data(), k=5)), rank
        assert got["pr"] == dict(gm.precision_recall(real, fake, k=3))
        assert got["dc"] == dict(gm.density_coverage(real, fake, k=5))
        a, b = got["rows"]
        np.testing.assert_array_equal(got["radii"], gm.knn_radii(real, k=3)[a:b])


@pytest.mark.timeout(240)
def test_a_failing_rank_makes_every_rank_raise_the_same_error(tmp_path):
    mp.spawn(_worker, args=(3, str(tmp_path), "bad"), nprocs=3, join=True)
    errors = []
    for rank in range(3):
        with open(tmp_path / f"rank{rank}.pkl", "rb") as fh:
            errors.append(pickle.load(fh).get("error"))
    assert errors[0] is not None and len(set(errors)) == 1
    assert "failed on rank 1 of 3" in errors[0] and "NaN" in errors[0]


def test_group_needs_an_initialised_process_group():
    if dist.is_initialized():
        pytest.skip("a process group is initialised in this process")
    with pytest.raises(ValueError, match="init_process_group"):
        gm.fid(np.zeros((3, 2)), np.ones((3, 2)), group="default")
