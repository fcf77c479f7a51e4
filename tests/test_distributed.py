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
