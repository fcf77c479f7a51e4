"""Each drop-in shim against the original package, wherever the original installs here."""

import importlib.util
import inspect
import multiprocessing as mp
import os

import numpy as np
import pytest
import torch
from conftest import import_peer as original
from conftest import import_with_stub

import ganmetrics as gm
from ganmetrics.compat import clean_fid, prdc as prdc_shim, pytorch_fid, torch_fidelity


def stats(x):
    return x.mean(0), np.cov(x, rowvar=False)


def test_pytorch_fid_well_conditioned(rng):
    pf = original("pytorch_fid.fid_score")
    x = rng.standard_normal((500, 20))
    y = rng.standard_normal((400, 20)) * 1.3 + 0.2
    ours = pytorch_fid.calculate_frechet_distance(*stats(x), *stats(y))
    assert isinstance(ours, np.float64)
    assert ours == pytest.approx(pf.calculate_frechet_distance(*stats(x), *stats(y)), rel=1e-9)
    mu, sigma = pytorch_fid.statistics_from_activations(x.astype(np.float32))
    np.testing.assert_allclose(sigma, np.cov(x.astype(np.float32), rowvar=False), rtol=1e-6, atol=1e-7)
    assert pytorch_fid.calculate_frechet_distance(1.0, 2.0, 0.0, 2.0) == pytest.approx(1.0)  # scalars, as pytorch-fid


def test_pytorch_fid_where_the_original_is_off(rng):
    pf = original("pytorch_fid.fid_score")
    d = 64
    a = rng.standard_normal((d, 20))  # n < d: both covariances singular
    b = rng.standard_normal((d, 30))
    s1, s2 = a @ a.T, b @ b.T
    mu = np.zeros(d)
    exact = np.trace(s1) + np.trace(s2) - 2 * np.sqrt(np.clip(np.linalg.eigvalsh(a.T @ s2 @ a), 0, None)).sum()
    ours = pytorch_fid.calculate_frechet_distance(mu, s1, mu, s2)
    assert np.isfinite(ours) and ours == pytest.approx(exact, rel=1e-9)
    try:
        theirs = pf.calculate_frechet_distance(mu, s1, mu, s2)
    except ValueError:  # "Imaginary component": the original gives up
        return
    assert abs(theirs - exact) > abs(ours - exact)


def test_prdc_shim_strict_reproduces_prdc_with_ties(rng):
    prdc_pkg = original("prdc")
    real = rng.integers(0, 4, size=(200, 3)).astype(np.float64)  # integer grid: many exact ties, exact distances
    fake = rng.integers(0, 4, size=(150, 3)).astype(np.float64)
    theirs = prdc_pkg.compute_prdc(real, fake, 5)
    ours = prdc_shim.compute_prdc(real, fake, 5, strict=True)
    assert set(ours) == {"precision", "recall", "density", "coverage"}
    for key in theirs:
        assert ours[key] == theirs[key], key
    inclusive = prdc_shim.compute_prdc(real, fake, 5)
    assert inclusive["precision"] >= ours["precision"] and inclusive["coverage"] >= ours["coverage"]
    x = rng.standard_normal((100, 4))
    assert prdc_shim.compute_prdc(x, x.copy(), 3)["precision"] == 1.0


def test_clean_fid_functions(rng):
    cf = original("cleanfid.fid")
    x = rng.standard_normal((600, 16))
    y = rng.standard_normal((500, 16)) + 0.1
    assert clean_fid.frechet_distance(*stats(x), *stats(y)) == pytest.approx(cf.frechet_distance(*stats(x), *stats(y)), rel=1e-9)
    np.random.seed(11)
    theirs = cf.kernel_distance(x, y, num_subsets=8, max_subset_size=300)
    np.random.seed(11)
    ours = clean_fid.kernel_distance(x, y, num_subsets=8, max_subset_size=300)
    assert ours == pytest.approx(theirs, rel=1e-9)
    np.random.seed(2)
    assert np.isfinite(clean_fid.kernel_distance(x[:50], y, num_subsets=3))  # subset shrinks to the smaller set


def test_torch_fidelity_calculate_metrics(rng):
    tf_fid = original("torch_fidelity.metric_fid")
    tf_kid = import_with_stub("torch_fidelity.metric_kid")
    tf_prc = import_with_stub("torch_fidelity.metric_prc")
    tf_isc = import_with_stub("torch_fidelity.metric_isc")
    gen = rng.standard_normal((1200, 10)) + 0.2
    real = rng.standard_normal((1100, 10))
    logits = rng.standard_normal((1200, 7)) * 2
    out = torch_fidelity.calculate_metrics(
        input1={"features": gen, "logits": logits}, input2=real, fid=True, kid=True, prc=True, isc=True,
        kid_subset_size=500, cuda=False, verbose=False,
    )
    g, r = torch.from_numpy(gen), torch.from_numpy(real)
    fid_ref = tf_fid.fid_statistics_to_metric(
        tf_fid.fid_features_to_statistics(g), tf_fid.fid_features_to_statistics(r), False
    )["frechet_inception_distance"]
    assert out["frechet_inception_distance"] == pytest.approx(fid_ref, rel=1e-9)
    kid_ref = tf_kid.kid_features_to_metric(g, r, kid_subsets=100, kid_subset_size=500, rng_seed=2020, verbose=False,
                                            kid_degree=3, kid_gamma=None, kid_coef0=1)
    assert out["kernel_inception_distance_mean"] == pytest.approx(kid_ref["kernel_inception_distance_mean"], rel=1e-9)
    assert out["kernel_inception_distance_std"] == pytest.approx(kid_ref["kernel_inception_distance_std"], rel=1e-9)
    prc_ref = tf_prc.prc_features_to_metric(g, r, prc_neighborhood=3, prc_batch_size=10000, save_cpu_ram=False, verbose=False)
    for key in ("precision", "recall", "f_score"):  # torch-fidelity averages in float32: same decisions, rounded
        assert out[key] == pytest.approx(prc_ref[key], abs=1e-6), key
    assert round(out["precision"] * 1200) == round(prc_ref["precision"] * 1200)
    isc_ref = tf_isc.isc_features_to_metric(torch.from_numpy(logits), splits=10, shuffle=True, rng_seed=2020)
    assert out["inception_score_mean"] == pytest.approx(isc_ref["inception_score_mean"], rel=1e-10)
    assert out["inception_score_std"] == pytest.approx(isc_ref["inception_score_std"], rel=1e-9)
    with pytest.raises(TypeError, match="unexpected"):
        torch_fidelity.calculate_metrics(input1=gen, input2=real, fid=True, not_an_option=1)
    with pytest.raises(ValueError, match="logits"):
        torch_fidelity.calculate_metrics(input1=gen, input2=real, isc=True, fid=True)
    alone = torch_fidelity.calculate_metrics(input1=logits, isc=True)  # ISC alone: the array is the logits
    assert alone["inception_score_mean"] == pytest.approx(out["inception_score_mean"], rel=1e-12)


# ------------------------------------------------------------------ torchmetrics Metric classes
tm = pytest.importorskip("ganmetrics.torchmetrics") if importlib.util.find_spec("torchmetrics") else None


@pytest.mark.skipif(tm is None, reason="torchmetrics is not installed")
def test_metric_classes_match_functions(rng):
    real = rng.standard_normal((300, 6))
    fake = rng.standard_normal((250, 6)) + 0.4
    fd, kd, pr = tm.FrechetDistance(6), tm.KernelDistance(subsets=5, subset_size=100), tm.PrecisionRecallDensityCoverage(k=3)
    for m in (fd, kd, pr):
        for a in range(0, 300, 70):
            m.update(torch.from_numpy(real[a:a + 70]), real=True)
        for a in range(0, 250, 90):
            m.update(torch.from_numpy(fake[a:a + 90]), real=False)
    assert float(fd.compute()) == pytest.approx(gm.fid(real, fake), rel=1e-10)
    mean, std = kd.compute()
    ref = gm.kid(real, fake, subsets=5, subset_size=100, seed=2020)  # the documented default seed
    assert float(mean) == pytest.approx(ref.mean) and float(std) == pytest.approx(ref.std)
    res = pr.compute()
    assert float(res["coverage"]) == gm.prdc(real, fake, k=3).coverage
    with pytest.raises(ValueError, match="dimensions"):
        fd.update(torch.zeros(3, 5), real=False)


@pytest.mark.skipif(tm is None, reason="torchmetrics is not installed")
def test_reset_real_features(rng):
    real = rng.standard_normal((200, 4))
    m = tm.FrechetDistance(4, reset_real_features=False)
    m.update(torch.from_numpy(real), real=True)
    for shift in (0.1, 0.5):
        fake = rng.standard_normal((150, 4)) + shift
        m.update(torch.from_numpy(fake), real=False)
        assert float(m.compute()) == pytest.approx(gm.fid(real, fake), rel=1e-10)
        m.reset()
    m2 = tm.FrechetDistance(4)
    m2.update(torch.from_numpy(real), real=True)
    m2.reset()
    m2.update(torch.from_numpy(real), real=False)
    with pytest.raises(ValueError, match="at least 2 real"):
        m2.compute()


def _worker(rank, world, init_file, out_dir):
    import torch.distributed as dist

    from conftest import import_with_stub as _stub  # noqa: F401  (keeps torchmetrics importable here too)
    import ganmetrics.torchmetrics as tmx

    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    rng = np.random.default_rng(0)
    real = rng.standard_normal((301, 5)) * 2 + 100
    fake = rng.standard_normal((203, 5)) + 100.5
    metrics = [tmx.FrechetDistance(5), tmx.PrecisionRecallDensityCoverage(k=4)]
    for m in metrics:
        m.update(torch.from_numpy(real[rank::world]), real=True)
        m.update(torch.from_numpy(fake[rank::world]), real=False)
    fd = float(metrics[0].compute())
    pr = {k: float(v) for k, v in metrics[1].compute().items()}
    if rank == 0:
        np.save(os.path.join(out_dir, "out.npy"), np.array([fd, pr["precision"], pr["recall"], pr["density"], pr["coverage"]]))
    dist.destroy_process_group()


@pytest.mark.skipif(tm is None, reason="torchmetrics is not installed")
def test_distributed_sync_equals_one_process(tmp_path):
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_worker, args=(r, 2, str(tmp_path / "init"), str(tmp_path))) for r in range(2)]
    env_path = os.environ.get("PYTHONPATH", "")
    os.environ["PYTHONPATH"] = os.path.dirname(__file__) + (os.pathsep + env_path if env_path else "")
    try:
        for p in procs:
            p.start()
        for p in procs:
            p.join(120)
    finally:
        os.environ["PYTHONPATH"] = env_path
    assert all(p.exitcode == 0 for p in procs)
    got = np.load(tmp_path / "out.npy")
    rng = np.random.default_rng(0)
    real = rng.standard_normal((301, 5)) * 2 + 100
    fake = rng.standard_normal((203, 5)) + 100.5
    ref = gm.prdc(real, fake, k=4)
    assert got[0] == pytest.approx(gm.fid(real, fake), rel=1e-9)
    np.testing.assert_array_equal(got[1:], [ref.precision, ref.recall, ref.density, ref.coverage])


# ------------------------------------------------------------------ same names, same signatures, same types
SHIMS = [("pytorch_fid", "pytorch_fid.fid_score"), ("clean_fid", "cleanfid.fid"), ("prdc", "prdc"),
         ("torch_fidelity", "torch_fidelity")]


def compatible(ours: inspect.Signature, theirs: inspect.Signature) -> bool:
    """Every parameter of the original, in order, with its kind and default; ours may only add
    parameters that have defaults (or take **kwargs where the original does)."""
    o = list(ours.parameters.values())
    t = list(theirs.parameters.values())
    if t and t[-1].kind is inspect.Parameter.VAR_KEYWORD:  # torch-fidelity: calculate_metrics(**kwargs)
        return any(p.kind is inspect.Parameter.VAR_KEYWORD for p in o)
    if len(o) < len(t):
        return False
    for a, b in zip(o, t):
        if (a.name, a.kind, a.default) != (b.name, b.kind, b.default):
            return False
    return all(p.default is not inspect.Parameter.empty or p.kind is inspect.Parameter.VAR_KEYWORD for p in o[len(t):])


@pytest.mark.parametrize("ours_name, theirs_name", SHIMS)
def test_every_shim_has_the_original_signature(ours_name, theirs_name):
    theirs = original(theirs_name)
    ours = importlib.import_module(f"ganmetrics.compat.{ours_name}")
    shared = [n for n in ours.__all__ if hasattr(theirs, n)]
    assert shared, f"no function of {theirs_name} is shimmed"
    for name in shared:
        assert compatible(inspect.signature(getattr(ours, name)), inspect.signature(getattr(theirs, name))), name


def test_shims_return_the_originals_types(rng):
    a, b = rng.standard_normal((300, 8)), rng.standard_normal((280, 8)) + 0.2
    stats = (a.mean(0), np.cov(a, rowvar=False), b.mean(0), np.cov(b, rowvar=False))
    pf, cf, pr = original("pytorch_fid.fid_score"), original("cleanfid.fid"), original("prdc")
    assert type(pytorch_fid.calculate_frechet_distance(*stats)) is type(pf.calculate_frechet_distance(*stats))
    assert type(clean_fid.frechet_distance(*stats)) is type(cf.frechet_distance(*stats))
    assert type(clean_fid.kernel_distance(a, b, num_subsets=3, max_subset_size=100)) is \
        type(cf.kernel_distance(a, b, num_subsets=3, max_subset_size=100))
    theirs, ours = pr.compute_prdc(a, b, 3), prdc_shim.compute_prdc(a, b, 3)
    assert list(ours) == list(theirs) and [type(v) for v in ours.values()] == [type(v) for v in theirs.values()]


@pytest.mark.skipif(tm is None, reason="torchmetrics is not installed")
def test_metric_classes_match_torchmetrics_own(rng):
    """ganmetrics.torchmetrics against torchmetrics' FrechetInceptionDistance / KernelInceptionDistance, both fed
    features through an identity 'extractor' (torchmetrics accepts any nn.Module with num_features)."""
    from torchmetrics.image.fid import FrechetInceptionDistance
    from torchmetrics.image.kid import KernelInceptionDistance

    d = 8

    class Identity(torch.nn.Module):
        num_features = d

        def forward(self, x):
            return x

    real = torch.from_numpy(rng.standard_normal((500, d)))
    fake = torch.from_numpy(rng.standard_normal((500, d)) * 1.2 + 0.3)
    # KID with one subset of all 500 samples per side: both draw every sample, so both give the full-set
    # unbiased MMD, whatever order their random draws put the rows in
    metrics = [(FrechetInceptionDistance(feature=Identity()), tm.FrechetDistance(d)),
               (KernelInceptionDistance(feature=Identity(), subsets=1, subset_size=500),
                tm.KernelDistance(subsets=1, subset_size=500))]
    for pair in metrics:
        for m in pair:
            for a in range(0, 500, 200):  # uneven batches
                m.update(real[a:a + 200], real=True)
                m.update(fake[a:a + 200], real=False)
    (theirs_fid, ours_fid), (theirs_kid, ours_kid) = metrics
    assert float(ours_fid.compute()) == pytest.approx(float(theirs_fid.compute()), rel=1e-6)
    with pytest.warns(UserWarning, match="cover both whole sets"):
        ours_mean, _ = ours_kid.compute()
    assert float(ours_mean) == pytest.approx(float(theirs_kid.compute()[0]), rel=1e-6)
