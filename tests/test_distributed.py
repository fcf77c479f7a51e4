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


def _bounds(n, parts, empty_rank=None):
    """Uneven cuts, one rank empty (or none with empty_rank=None)."""
    weights = np.array([0.0 if r == empty_rank else r + 1.0 for r in range(parts)])
    cuts = np.concatenate([[0], np.floor(np.cumsum(weights) / weights.sum() * n).astype(int)])
    cuts[-1] = n
    return cuts


def _dump(folder, rank, out):
    with open(os.path.join(folder, f"rank{rank}.pkl"), "wb") as fh:
        pickle.dump(out, fh)


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
            # every rank holds rows of both sets (uneven): every pair of ranks meets in the radius passes
            frc, ffc = _bounds(len(kr), size), _bounds(len(kf), size)[::-1]
            ffc = len(kf) - ffc  # the other way round: rank 0 holds the most fake rows
            out["full"] = dict(gm.prdc(kr[frc[rank]:frc[rank + 1]], kf[ffc[rank]:ffc[rank + 1]], k=4, group="default"))
            out["full_radii"] = gm.knn_radii(kf[ffc[rank]:ffc[rank + 1]], k=2, group="default")
            out["full_rows"] = (int(ffc[rank]), int(ffc[rank + 1]))
            if size == 4:  # a ProcessGroup of ranks 1-3 (group ranks differ from global ranks): rank 0 stays out
                sub = dist.new_group([1, 2, 3])
                if rank > 0:
                    src, sfc = _bounds(len(kr), 3), _bounds(len(kf), 3)
                    r = rank - 1
                    out["subgroup"] = dict(gm.prdc(kr[src[r]:src[r + 1]], kf[sfc[r]:sfc[r + 1]], k=3, group=sub))
                    out["subgroup_kid"] = gm.kid(kr[src[r]:src[r + 1]], kf[sfc[r]:sfc[r + 1]], subsets=4,
                                                 subset_size=20, group=sub).values
            cr, cf = _continuous_data()
            crc, cfc = _bounds(len(cr), size, empty_rank=size - 1), _bounds(len(cf), size, empty_rank=0)
            out["continuous"] = dict(gm.prdc(cr[crc[rank]:crc[rank + 1]], cf[cfc[rank]:cfc[rank + 1]], k=5,
                                             group="default"))
            _dump(folder, rank, out)
            return
        if mode == "all":
            _dump(folder, rank, _every_metric(rank, size))
            return
        try:
            st = gm.FeatureStats(6)
            if len(my_real):
                st.update(my_real)
            st.all_reduce()
            out = {"n": st.n, "mean": st.mean, "cov": st.cov, "fid": gm.fid(my_real, my_fake, group="default")}
        except ValueError as exc:
            out = {"error": str(exc)}
        if mode == "bad":  # the k-NN and kernel paths: one rank's shard of another width, then a NaN on one rank
            narrow = my_real[:, :5] if rank == 1 else my_real  # rank 2 holds no real rows: its width does not count
            for name, call in (("prdc", lambda: gm.prdc(narrow, np.nan_to_num(my_fake), k=3, group="default")),
                               ("kid", lambda: gm.kid(my_real, my_fake, subsets=3, subset_size=10, group="default"))):
                try:
                    call()
                    out[name] = None
                except ValueError as exc:
                    out[name] = str(exc)
        _dump(folder, rank, out)
    finally:
        dist.destroy_process_group()


def _every_metric(rank, size):
    """Every other metric with group= on this rank's shards (ties, duplicates across ranks, an empty rank)."""
    import warnings

    import torch

    from ganmetrics.torchmetrics import FrechetDistance, KernelDistance, PrecisionRecallDensityCoverage

    kr, kf = _knn_data()
    empty = size > 2  # with 2 ranks, an empty rank would leave each set whole on one rank: no pair of ranks to meet
    rc = _bounds(len(kr), size, empty_rank=size - 1 if empty else None)
    fc = _bounds(len(kf), size, empty_rank=0 if empty else None)
    r, f = kr[rc[rank]:rc[rank + 1]], kf[fc[rank]:fc[rank + 1]]
    out = {"real_rows": (int(rc[rank]), int(rc[rank + 1])), "fake_rows": (int(fc[rank]), int(fc[rank + 1]))}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out["realism"] = gm.realism_score(r, f, k=3, group="default")
    out["realism_warned"] = any("coincide" in str(w.message) for w in caught)
    out["nn1"] = dict(gm.nn1_accuracy(r, f, group="default"))
    out["memorization"] = dict(gm.memorization(r, f, group="default"))
    out["authpct"] = dict(gm.authpct(r, f, group="default"))
    out["alpha_precision"] = dict(gm.alpha_precision(r, f, group="default"))
    out["coverage_holes"] = dict(gm.coverage_holes(r, f, k=3, group="default"))
    out["train_neighbours"] = dict(gm.train_neighbours(r, f, k=4, group="default"))
    out["kid"] = gm.kid(r, f, subsets=12, subset_size=25, group="default")
    out["kid_full"] = gm.kid(r, f, subsets=None, group="default")
    out["kid_f32"] = gm.kid(r, f, subsets=5, subset_size=30, precision="float32", group="default")
    out["cmmd"] = gm.cmmd(r + 0.5, f + 0.5, group="default")
    real, fake = _data()
    drc, dfc = _bounds(len(real), size, empty_rank=0), _bounds(len(fake), size, empty_rank=size - 1)
    dr, df = real[drc[rank]:drc[rank + 1]], fake[dfc[rank]:dfc[rank + 1]]
    out["fid_many"] = gm.fid_many(dr, [df, df * 1.01, dr], group="default")
    out["fid_infinity"] = gm.fid_infinity(dr, df, num_points=6, group="default").fids
    out["bootstrap"] = gm.bootstrap(r, f, metrics=("fid", "precision", "recall", "density", "coverage"), n_boot=4,
                                    k=3, group="default")
    out["bootstrap_fake"] = gm.bootstrap(r, f, metrics=("fid", "coverage"), n_boot=3, resample="fake",
                                         group="default")
    # the torchmetrics classes: two updates per side on each rank (none on an empty rank), compute over the ranks
    metrics = {"fd": FrechetDistance(num_features=5), "kd": KernelDistance(subsets=6, subset_size=20),
               "prdc": PrecisionRecallDensityCoverage(k=3)}
    for m in metrics.values():
        for side, rows in ((True, r), (False, f)):
            for part in np.array_split(rows, 2):
                if len(part):
                    m.update(torch.from_numpy(np.asarray(part, dtype=np.float64)), real=side)
    out["tm"] = {"fd": float(metrics["fd"].compute()), "kd": tuple(float(v) for v in metrics["kd"].compute()),
                 "prdc": {key: float(v) for key, v in metrics["prdc"].compute().items()}}
    out["tm_local_rows"] = sum(len(t) for t in metrics["prdc"].real_features)  # no features were gathered
    out["tm_memory"] = metrics["prdc"].compute_info["peak_memory"]
    return out


@pytest.mark.timeout(240)
@pytest.mark.parametrize("size", [2, 3, 4])
def test_every_other_metric_on_shards_equals_one_process(size, tmp_path):
    """k-NN results identical to the last bit (ties, duplicates across ranks, empty ranks); kernel sums and
    statistics to rounding (the ranks add their partial sums in another order than one process)."""
    import warnings

    from ganmetrics.torchmetrics import FrechetDistance, KernelDistance, PrecisionRecallDensityCoverage

    mp.spawn(_worker, args=(size, str(tmp_path), "all"), nprocs=size, join=True)
    real, fake = _knn_data()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        realism = gm.realism_score(real, fake, k=3)
    nn1, mem = dict(gm.nn1_accuracy(real, fake)), gm.memorization(real, fake)
    novelty = {"authpct": gm.authpct(real, fake), "alpha_precision": gm.alpha_precision(real, fake),
               "coverage_holes": gm.coverage_holes(real, fake, k=3), "train_neighbours": gm.train_neighbours(real, fake, k=4)}
    per_real = {"covered", "nearest_fake", "margin"}  # per real row; the other arrays are per fake row
    kid = gm.kid(real, fake, subsets=12, subset_size=25)
    kid_full = gm.kid(real, fake, subsets=None)
    kid_f32 = gm.kid(real, fake, subsets=5, subset_size=30, precision="float32")
    kernel_scale = float(np.mean((real.astype(np.float64) @ real.T.astype(np.float64) / real.shape[1] + 1) ** 3))
    cmmd = gm.cmmd(real + 0.5, fake + 0.5)
    dreal, dfake = _data()
    fid_many = gm.fid_many(dreal, [dfake, dfake * 1.01, dreal])
    fid_inf = gm.fid_infinity(dreal, dfake, num_points=6).fids
    # FID by half-sampling: what "auto" takes over shards (the delta method reads the rows on the host)
    boot = gm.bootstrap(real, fake, metrics=("fid", "precision", "recall", "density", "coverage"), n_boot=4, k=3,
                        fid_method="half-sampling")
    boot_fake = gm.bootstrap(real, fake, metrics=("fid", "coverage"), n_boot=3, resample="fake",
                             fid_method="half-sampling")
    tm = {"fd": FrechetDistance(num_features=5), "kd": KernelDistance(subsets=6, subset_size=20),
          "prdc": PrecisionRecallDensityCoverage(k=3)}
    import torch

    for m in tm.values():
        m.update(torch.from_numpy(real.astype(np.float64)), real=True)
        m.update(torch.from_numpy(fake.astype(np.float64)), real=False)
    tm_kd = tuple(float(v) for v in tm["kd"].compute())
    tm_prdc = {key: float(v) for key, v in tm["prdc"].compute().items()}
    tm_fd = float(tm["fd"].compute())
    for rank in range(size):
        with open(tmp_path / f"rank{rank}.pkl", "rb") as fh:
            got = pickle.load(fh)
        ra, rb = got["real_rows"]
        fa, fb = got["fake_rows"]
        np.testing.assert_array_equal(got["realism"], realism[fa:fb])
        assert got["realism_warned"] == bool(np.isinf(realism).any())  # every rank warns (a global count)
        assert got["nn1"] == nn1
        m = got["memorization"]
        assert m["fraction"] == mem.fraction
        np.testing.assert_array_equal(m["indices"], mem.indices)
        np.testing.assert_array_equal(m["flagged"], mem.flagged[fa:fb])
        np.testing.assert_array_equal(m["nearest_train"], mem.nearest_train[fa:fb])
        np.testing.assert_array_equal(m["nearest_distance"], mem.nearest_distance[fa:fb])
        for key in ("ratio", "second_distance"):
            np.testing.assert_array_equal(m[key], mem[key][fa:fb])
        for name, whole in novelty.items():  # bit-identical: the same exact distances, global indices, counts
            for key, value in whole.items():
                mine = got[name][key]
                if isinstance(value, np.ndarray) and key not in ("holes", "alphas", "alpha_precision_curve",
                                                                 "beta_recall_curve"):
                    value = value[ra:rb] if key in per_real else value[fa:fb]
                np.testing.assert_array_equal(mine, value, err_msg=f"{name}.{key}")
        np.testing.assert_allclose(got["kid"].values, kid.values, rtol=0, atol=1e-13 * kernel_scale)
        assert (got["kid"].subsets, got["kid"].subset_size) == (12, 25)
        assert got["kid_full"].mean == pytest.approx(kid_full.mean, rel=0, abs=1e-13 * kernel_scale)
        np.testing.assert_allclose(got["kid_f32"].values, kid_f32.values, rtol=0, atol=1e-12 * kernel_scale)
        assert got["cmmd"] == pytest.approx(cmmd, rel=0, abs=1e-12 * 1000)
        np.testing.assert_allclose(got["fid_many"], fid_many, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(got["fid_infinity"], fid_inf, rtol=1e-11)
        for name, ours, theirs in (("both", got["bootstrap"], boot), ("fake", got["bootstrap_fake"], boot_fake)):
            assert ours.keys() == theirs.keys(), name
            for metric in ours:
                for field in ("value", "low", "high", "std", "bias"):
                    a, b = getattr(ours[metric], field), getattr(theirs[metric], field)
                    if metric == "fid":
                        assert a == pytest.approx(b, rel=1e-10, abs=1e-12), (name, metric, field)
                    else:
                        assert a == b, (name, metric, field)
        assert got["tm"]["fd"] == pytest.approx(tm_fd, rel=1e-12)
        assert got["tm"]["kd"] == pytest.approx(tm_kd, rel=0, abs=1e-13 * kernel_scale)
        assert got["tm"]["prdc"] == tm_prdc
        assert got["tm_local_rows"] == rb - ra
        assert [entry["rank"] for entry in got["tm_memory"]] == list(range(size))
        assert all(entry["peak_rss_bytes"] > 0 for entry in got["tm_memory"])


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
        assert got["full"] == dict(gm.prdc(real, fake, k=4))
        if size == 4 and rank > 0:
            assert got["subgroup"] == dict(gm.prdc(real, fake, k=3))
            np.testing.assert_allclose(got["subgroup_kid"], gm.kid(real, fake, subsets=4, subset_size=20).values,
                                       rtol=1e-12, atol=1e-9)
        a, b = got["full_rows"]
        np.testing.assert_array_equal(got["full_radii"], gm.knn_radii(fake, k=2)[a:b])


def _collapsed_data():
    """A real set with a block of copies, and a fake set collapsed onto a few points (one of them a real row)."""
    rng = np.random.default_rng(5)
    real = rng.standard_normal((80, 6))
    real[20:35] = real[2]  # copies of one real row, spread over two ranks
    fake = np.repeat(rng.standard_normal((3, 6)), [40, 25, 5], axis=0)
    fake[60:64] = real[2]  # fake rows that coincide with the copied real row
    return real, fake[rng.permutation(len(fake))]


def _collapsed_worker(rank, size, folder):
    from ganmetrics.engines import forced_tiles

    dist.init_process_group("gloo", init_method=f"file://{folder}/store", rank=rank, world_size=size,
                            timeout=datetime.timedelta(seconds=60))
    try:
        real, fake = _collapsed_data()
        rc, fc = _bounds(len(real), size), _bounds(len(fake), size)[::-1]
        fc = len(fake) - fc
        r, f = real[rc[rank]:rc[rank + 1]], fake[fc[rank]:fc[rank + 1]]
        out = {"real_rows": (int(rc[rank]), int(rc[rank + 1])), "fake_rows": (int(fc[rank]), int(fc[rank + 1]))}
        with forced_tiles(7, 5):  # many small tiles on every rank's local engine
            res = gm.prdc(r, f, k=4, workspace_bytes=1 << 20, group="default")
        out["prdc"], out["info"] = dict(res), res.info
        whole = np.repeat(fake[:1], len(fake), axis=0)  # fully collapsed: the same row on every rank
        out["collapsed"] = dict(gm.prdc(r, whole[fc[rank]:fc[rank + 1]], k=3, group="default"))
        out["radii"] = gm.knn_radii(f, k=6, group="default")
        out["nn1"] = dict(gm.nn1_accuracy(r, f, group="default"))
        mem = gm.memorization(r, f, group="default")
        out["memorization"] = {key: mem[key] for key in ("fraction", "indices", "flagged", "nearest_train")}
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out["realism"] = gm.realism_score(r, f, k=2, group="default")
        _dump(folder, rank, out)
    finally:
        dist.destroy_process_group()


@pytest.mark.timeout(240)
def test_duplicated_and_collapsed_sets_on_a_ring_go_through_distinct_rows(tmp_path):
    """Copies within and across ranks, a collapsed fake set: every value equals one process's to the last bit, and
    each rank took the copies through its distinct rows (the ring's info counts them), with a forced small
    workspace and small tiles on every rank."""
    import warnings

    size = 3
    mp.spawn(_collapsed_worker, args=(size, str(tmp_path)), nprocs=size, join=True)
    real, fake = _collapsed_data()
    want = gm.prdc(real, fake, k=4)
    collapsed = dict(gm.prdc(real, np.repeat(fake[:1], len(fake), axis=0), k=3))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        realism = gm.realism_score(real, fake, k=2)
    mem = gm.memorization(real, fake)
    for rank in range(size):
        with open(tmp_path / f"rank{rank}.pkl", "rb") as fh:
            got = pickle.load(fh)
        fa, fb = got["fake_rows"]
        assert got["prdc"] == dict(want), rank
        assert got["collapsed"] == collapsed, rank
        assert got["info"]["engine"] == "ring(host)" and got["info"]["ranks"] == size
        assert got["info"]["distinct_fake"] <= 4 * size < len(fake)  # at most 4 distinct rows per rank
        np.testing.assert_array_equal(got["radii"], gm.knn_radii(fake, k=6)[fa:fb])
        assert got["nn1"] == dict(gm.nn1_accuracy(real, fake))
        assert got["memorization"]["fraction"] == mem.fraction
        np.testing.assert_array_equal(got["memorization"]["indices"], mem.indices)
        np.testing.assert_array_equal(got["memorization"]["flagged"], mem.flagged[fa:fb])
        np.testing.assert_array_equal(got["memorization"]["nearest_train"], mem.nearest_train[fa:fb])
        np.testing.assert_array_equal(got["realism"], realism[fa:fb])


def _torch_engine_worker(rank, size, folder):
    dist.init_process_group("gloo", init_method=f"file://{folder}/store", rank=rank, world_size=size,
                            timeout=datetime.timedelta(seconds=60))
    try:
        import torch

        real, fake = _collapsed_data()
        rc, fc = _bounds(len(real), size, empty_rank=0), _bounds(len(fake), size)
        r = torch.from_numpy(real[rc[rank]:rc[rank + 1]])
        f = torch.from_numpy(fake[fc[rank]:fc[rank + 1]])
        out = {"fake_rows": (int(fc[rank]), int(fc[rank + 1]))}
        res = gm.prdc(r, f, k=3, group="default", engine="torch")
        out["prdc"], out["engine"] = dict(res), res.info["engine"]
        out["radii"] = gm.knn_radii(f, k=2, group="default", engine="torch")
        mem = gm.memorization(r, f, group="default", engine="torch")
        out["memorization"] = (mem.fraction, mem.indices, mem.nearest_train)
        out["kid"] = gm.kid(r, f, subsets=3, subset_size=20, group="default", engine="torch").values
        out["fid"] = gm.fid(r, f, group="default", engine="torch")
        _dump(folder, rank, out)
    finally:
        dist.destroy_process_group()


@pytest.mark.timeout(240)
def test_the_ring_composes_the_torch_engine(tmp_path):
    """The ring over the torch engine (gloo, CPU tensors: the NCCL code path with other tensors) equals one
    process on the host engine: decisions bit for bit, sums and statistics to rounding."""
    size = 3
    mp.spawn(_torch_engine_worker, args=(size, str(tmp_path)), nprocs=size, join=True)
    real, fake = _collapsed_data()
    mem = gm.memorization(real, fake)
    for rank in range(size):
        with open(tmp_path / f"rank{rank}.pkl", "rb") as fh:
            got = pickle.load(fh)
        fa, fb = got["fake_rows"]
        assert got["engine"] == "ring(torch)"
        assert got["prdc"] == dict(gm.prdc(real, fake, k=3))
        np.testing.assert_array_equal(got["radii"], gm.knn_radii(fake, k=2)[fa:fb])
        assert got["memorization"][0] == mem.fraction
        np.testing.assert_array_equal(got["memorization"][1], mem.indices)
        np.testing.assert_array_equal(got["memorization"][2], mem.nearest_train[fa:fb])
        np.testing.assert_allclose(got["kid"], gm.kid(real, fake, subsets=3, subset_size=20).values, rtol=1e-10,
                                   atol=1e-12)
        assert got["fid"] == pytest.approx(gm.fid(real, fake), rel=1e-10)


@pytest.mark.timeout(240)
def test_a_failing_rank_makes_every_rank_raise_the_same_error(tmp_path):
    mp.spawn(_worker, args=(3, str(tmp_path), "bad"), nprocs=3, join=True)
    errors = []
    for rank in range(3):
        with open(tmp_path / f"rank{rank}.pkl", "rb") as fh:
            errors.append(pickle.load(fh).get("error"))
    assert errors[0] is not None and len(set(errors)) == 1
    assert "failed on rank 1 of 3" in errors[0] and "NaN" in errors[0]
    for name, words in (("prdc", "same feature dimension"), ("kid", "failed on rank 1 of 3")):
        got = [pickle.load(open(tmp_path / f"rank{rank}.pkl", "rb"))[name] for rank in range(3)]
        assert got[0] is not None and len(set(got)) == 1 and words in got[0], (name, got)


def test_group_needs_an_initialised_process_group():
    if dist.is_initialized():
        pytest.skip("a process group is initialised in this process")
    with pytest.raises(ValueError, match="init_process_group"):
        gm.fid(np.zeros((3, 2)), np.ones((3, 2)), group="default")


def _torchrun(argv, nproc, cwd):
    """``torchrun --standalone --nproc_per_node=nproc -m ganmetrics ARGV`` (loopback), one thread per rank."""
    import subprocess
    import sys

    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
           "-m", "ganmetrics", *argv]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    return subprocess.run(cmd, capture_output=True, text=True, timeout=200, cwd=cwd, env=env)


def _cli_json(argv, capsys):
    import json

    from ganmetrics.cli import main

    assert main(argv) == 0
    return json.loads(capsys.readouterr().out)


@pytest.mark.timeout(600)
def test_torchrun_splits_feature_files_and_image_folders_between_ranks(tmp_path, capsys):
    """`torchrun -m ganmetrics fid|kid|prdc|stats` gives what one process gives; rank 0 alone prints and writes;
    a share that fails makes every rank stop with one error line."""
    import json

    from PIL import Image

    from ganmetrics.datasets import inception_like_features

    np.save(tmp_path / "real.npy", inception_like_features(203, 16, seed=0).astype(np.float32))
    np.save(tmp_path / "fake.npy", inception_like_features(151, 16, seed=1, shift=0.1).astype(np.float32))
    np.save(tmp_path / "few.npy", inception_like_features(3, 16, seed=2).astype(np.float32))  # fewer rows than ranks
    rng = np.random.default_rng(0)
    for name, n in (("real_images", 13), ("fake_images", 3)):  # 3 fake images on 4 ranks: one rank has none
        (tmp_path / name).mkdir()
        for i in range(n):
            Image.fromarray(rng.integers(0, 256, (28, 28, 3), dtype=np.uint8)).save(tmp_path / name / f"{i:02d}.png")
    for argv, nproc in ((["fid", "real.npy", "fake.npy"], 3), (["prdc", "real.npy", "fake.npy", "--k", "3"], 3),
                        (["kid", "real.npy", "fake.npy", "--subsets", "7", "--subset-size", "50"], 2),
                        (["fid", "few.npy", "fake.npy"], 4)):
        run = _torchrun([*argv, "--json", "--quiet"], nproc, tmp_path)
        assert run.returncode == 0, run.stderr
        got = json.loads(run.stdout)  # one JSON document: only rank 0 printed
        want = _cli_json([*[str(tmp_path / a) if a.endswith(".npy") else a for a in argv], "--json", "--quiet"], capsys)
        got.pop("seconds"), want.pop("seconds")
        if argv[0] == "prdc":
            assert got == want
        else:
            assert got.keys() == want.keys()
            for key in want:
                assert got[key] == pytest.approx(want[key], rel=1e-10), key
    # novelty: copies and AuthPct over the shards, the same decisions as one process (C_T and --html refuse)
    np.save(tmp_path / "copies.npy", np.concatenate([np.load(tmp_path / "real.npy")[:40] + np.float32(1e-3),
                                                    np.load(tmp_path / "fake.npy")]))
    run = _torchrun(["novelty", "real.npy", "copies.npy", "--json", "--quiet"], 3, tmp_path)
    assert run.returncode == 0, run.stderr
    got = json.loads(run.stdout)
    want = _cli_json(["novelty", str(tmp_path / "real.npy"), str(tmp_path / "copies.npy"), "--json", "--quiet"], capsys)
    for out in (got, want):
        out.pop("seconds"), out.pop("most_copy_like", None)
    assert got == want and got["copies"] >= 40
    run = _torchrun(["novelty", "real.npy", "copies.npy", "--test", "fake.npy", "--quiet"], 2, tmp_path)
    assert run.returncode != 0 and "one process" in run.stderr
    images = ["fid", "real_images", "fake_images", "--extractor", "digits", "--workers", "0", "--cache-dir", "cache",
              "--json", "--quiet"]
    run = _torchrun(images, 4, tmp_path)
    assert run.returncode == 0, run.stderr
    got = json.loads(run.stdout)
    want = _cli_json([str(tmp_path / a) if a.endswith(("_images", "cache")) else a for a in images], capsys)
    assert (got["images_real"], got["images_fake"], got["n_real"], got["n_fake"]) == (13, 3, 13, 3)
    # the network's float32 features depend on batch composition and thread count (~1e-7 relative): the ranks
    # run other batches than one process, so the FID agrees to float32 feature noise, not to 1e-12
    assert got["fid"] == pytest.approx(want["fid"], rel=1e-5)
    run = _torchrun(["stats", "real_images", "-o", "stats.npz", "--extractor", "digits", "--workers", "0", "--no-cache",
                     "--json", "--quiet"], 3, tmp_path)
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)["images_input"] == 13
    one = gm.FeatureStats.load(tmp_path / "stats.npz")
    assert one.n == 13 and one.feature_extractor == want["extractor"]
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("stats")) == ["stats.npz"]
    (tmp_path / "real_images" / "12.png").write_bytes(b"not a png")  # in the last rank's share
    run = _torchrun(images, 2, tmp_path)
    assert run.returncode != 0
    errors = [line for line in run.stderr.splitlines() if line.startswith("ganmetrics: error:")]
    assert len(errors) == 1 and "failed on rank 1 of 2" in errors[0] and "12.png" in errors[0], run.stderr
