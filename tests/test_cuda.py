"""The optional CUDA module: it loads (or says why not), reports devices and translates errors.

GPU-only checks are marked ``gpu`` and skipped where no device is visible.
"""

import numpy as np
import pytest

import ganmetrics as gm
from ganmetrics._native import _cuda

needs_module = pytest.mark.skipif(_cuda is None, reason="ganmetrics._cuda was not built")
gpu = pytest.mark.skipif(not gm.cuda_available(), reason="no CUDA device")


def test_build_info_reports_cuda():
    info = gm.build_info()["cuda"]
    assert info["built"] is (_cuda is not None)
    if not gm.cuda_available():
        assert info.get("reason")


@needs_module
def test_error_translation():
    with pytest.raises(MemoryError, match="cudaErrorMemoryAllocation"):
        _cuda.raise_cuda_error(2)  # cudaErrorMemoryAllocation
    with pytest.raises(RuntimeError, match=r"cudaErrorInvalidValue.*\.(cu|cpp):\d+"):
        _cuda.raise_cuda_error(1)
    _cuda.raise_cuda_error(0)
    with pytest.raises(ValueError, match="out of range"):
        _cuda.device_info(_cuda.device_count())


@needs_module
@gpu
@pytest.mark.gpu
def test_devices_are_described():
    info = _cuda.device_info(0)
    assert info["name"] and info["total_memory"] > 0 and info["compute_capability"][0] >= 7


class _FakeCudaArray:
    __cuda_array_interface__ = {"shape": (4, 3), "typestr": "<f4", "data": (0, False), "version": 3, "strides": None}


@pytest.mark.skipif(gm.cuda_available(), reason="checks the message shown without a usable GPU")
def test_device_inputs_without_a_gpu_get_a_clear_error():
    with pytest.raises(ValueError, match="CUDA device"):
        gm.FeatureStats(3).update(_FakeCudaArray())
    with pytest.raises(ValueError, match="CUDA device"):
        gm.fid(_FakeCudaArray(), _FakeCudaArray())
    with pytest.raises(ValueError, match="CUDA device"):
        gm.prdc(_FakeCudaArray(), _FakeCudaArray())
    with pytest.raises(ValueError, match="device must be"):
        gm.frechet_distance(np.zeros(2), np.eye(2), np.zeros(2), np.eye(2), device="gpu")


# ---------------------------------------------------------------------------------------------- on a GPU
torch = pytest.importorskip("torch")
cuda_torch = pytest.mark.skipif(not (gm.cuda_available() and torch.cuda.is_available()),
                                reason="needs a CUDA device and a CUDA build of torch")


def rel(a, b):
    return np.linalg.norm(a - b) / np.linalg.norm(b)


@pytest.fixture(autouse=True)
def _enable_unverified_cuda(monkeypatch, request):
    """The GPU tests are what verifies the CUDA paths: they run them with the opt-in flag set."""
    if request.node.get_closest_marker("gpu"):
        from ganmetrics._cuda_arrays import UNVERIFIED_FLAG

        monkeypatch.setenv(UNVERIFIED_FLAG, "1")


@cuda_torch
@pytest.mark.gpu
@pytest.mark.parametrize("dtype", ["float64", "float32", "float16", "bfloat16"])
def test_gpu_moments_match_cpu(dtype):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((5000, 48)) * 2 + 1e3 * (dtype in ("float64", "float32"))
    t = torch.from_numpy(x).to(getattr(torch, dtype)).cuda()
    host = t.double().cpu().numpy()
    gpu = gm.FeatureStats.from_features(t)
    cpu = gm.FeatureStats.from_features(host)
    tol = 1e-12 if dtype == "float64" else 1e-6
    assert gpu.n == cpu.n == 5000
    assert rel(gpu.cov, np.cov(host, rowvar=False)) < tol
    np.testing.assert_allclose(gpu.mean, host.mean(0), rtol=1e-12, atol=1e-9)


@cuda_torch
@pytest.mark.gpu
def test_gpu_moments_layouts_streams_chunks_and_errors():
    from ganmetrics._native import _cuda

    rng = np.random.default_rng(1)
    x = torch.from_numpy(rng.standard_normal((3001, 40))).cuda()
    ref = np.cov(x.cpu().numpy(), rowvar=False)
    for view in (x[:, ::2], x.T.contiguous().T, x[::3]):
        host = view.cpu().numpy()
        assert rel(gm.FeatureStats.from_features(view).cov, np.cov(host, rowvar=False)) < 1e-12
    s = torch.cuda.Stream()
    with torch.cuda.stream(s):
        st = gm.FeatureStats.from_features(x)
    assert rel(st.cov, ref) < 1e-12
    mean, m2 = np.zeros(40), np.zeros((40, 40))
    n, bad, _ = _cuda.moments_update_device(mean, m2, 0, x.data_ptr(), 3001, 40, 40, 1, 3,
                                            torch.cuda.current_stream().cuda_stream, 7)  # 7-row chunks
    assert n == 3001 and bad == 0
    assert rel(np.tril(m2) + np.tril(m2, -1).T, ref * 3000) < 1e-12
    host = gm.FeatureStats(40).update(x.cpu().numpy(), device="cuda")
    assert rel(host.cov, ref) < 1e-12
    y = x.clone()
    y[1234, 5] = float("nan")
    st = gm.FeatureStats.from_features(x[:10])
    before = st.cov
    with pytest.raises(ValueError, match="row 1234"):
        st.update(y)
    np.testing.assert_array_equal(st.cov, before)


@cuda_torch
@pytest.mark.gpu
def test_gpu_frechet_matches_cpu():
    rng = np.random.default_rng(2)
    d = 256
    a, b = rng.standard_normal((d, d + 50)), rng.standard_normal((d, d + 80))
    s1, s2 = a @ a.T / d, b @ b.T / d
    mu1, mu2 = rng.standard_normal(d), rng.standard_normal(d)
    cpu = gm.frechet_distance(mu1, s1, mu2, s2)
    assert gm.frechet_distance(mu1, s1, mu2, s2, device="cuda") == pytest.approx(cpu, rel=1e-9)
    low = a[:, :40] @ a[:, :40].T  # singular S1: the eigendecomposition route
    assert gm.frechet_distance(mu1, low, mu2, s2, device="cuda") == pytest.approx(
        gm.frechet_distance(mu1, low, mu2, s2), rel=1e-7)
    cands = [s2, s1, b[:, :100] @ b[:, :100].T]
    stats = [gm.FeatureStats.from_mean_cov(mu2, c, n=1000) for c in cands]
    ref = gm.FeatureStats.from_mean_cov(mu1, s1, n=1000)
    assert gm.fid_many(ref, stats, device="cuda") == pytest.approx(gm.fid_many(ref, stats), rel=1e-9)
    bad = s2 - 2 * np.abs(np.linalg.eigvalsh(s2)).max() * np.ones((d, d)) / d
    for device in ("cpu", "cuda"):
        with pytest.raises(ValueError, match="sigma2 is not positive semi-definite"):
            gm.frechet_distance(mu1, s1, mu2, bad, device=device)
    x = torch.from_numpy(rng.standard_normal((4000, 64))).float().cuda()
    y = torch.from_numpy(rng.standard_normal((3000, 64)) + 0.1).float().cuda()
    assert gm.fid(x, y) == pytest.approx(gm.fid(x.cpu().numpy(), y.cpu().numpy()), rel=1e-6)


@cuda_torch
@pytest.mark.gpu
@pytest.mark.parametrize("tiles", [None, (7, 5), (64, 33)])
def test_gpu_pairwise_engine_matches_cpu_engine(tiles):
    from test_knn import adversarial_sets

    from ganmetrics.engines import forced_tiles

    rng = np.random.default_rng(5)
    for name, real, fake in adversarial_sets(rng):
        r, f = torch.from_numpy(real).cuda(), torch.from_numpy(fake).cuda()
        for k in (1, 3, min(len(real), len(fake)) - 1):
            ctx = forced_tiles(*tiles) if tiles else __import__("contextlib").nullcontext()
            with ctx:
                gpu = gm.prdc(r, f, k=k)
                gpu_strict = gm.prdc(r, f, k=k, strict=True)
            assert dict(gpu) == dict(gm.prdc(real, fake, k=k)), (name, k)
            assert dict(gpu_strict) == dict(gm.prdc(real, fake, k=k, strict=True)), (name, k)
        np.testing.assert_array_equal(gm.knn_radii(r, 2), gm.knn_radii(real, 2))
        assert dict(gm.nn1_accuracy(r, f)) == dict(gm.nn1_accuracy(real, fake))
        np.testing.assert_allclose(gm.realism_score(r, f), gm.realism_score(real, fake), rtol=1e-12)
        mem_gpu, mem_cpu = gm.memorization(r, f), gm.memorization(real, fake)
        np.testing.assert_array_equal(mem_gpu["flagged"], mem_cpu["flagged"])
        np.testing.assert_array_equal(mem_gpu["nearest_train"], mem_cpu["nearest_train"])


@cuda_torch
@pytest.mark.gpu
def test_gpu_pairwise_is_deterministic_and_follows_the_stream():
    rng = np.random.default_rng(6)
    real = torch.from_numpy(rng.standard_normal((3000, 64)).astype(np.float32)).cuda()
    fake = torch.from_numpy((rng.standard_normal((2500, 64)) + 0.2).astype(np.float32)).cuda()
    first = gm.prdc(real, fake, k=5)
    s = torch.cuda.Stream()
    with torch.cuda.stream(s):
        second = gm.prdc(real, fake, k=5)
    assert dict(first) == dict(second) == dict(gm.prdc(real.cpu().numpy(), fake.cpu().numpy(), k=5))
    with pytest.raises(ValueError, match="different devices"):
        gm.prdc(real, fake.cpu(), k=5)


class _InterfaceOnly:
    """A non-torch device array: only __cuda_array_interface__ (as CuPy, Numba or JAX arrays expose it)."""

    def __init__(self, tensor):
        self._keep = tensor  # owns the memory
        self.__cuda_array_interface__ = tensor.__cuda_array_interface__


@cuda_torch
@pytest.mark.gpu
def test_gpu_orders_after_an_unsynchronised_producer_stream():
    """The producer's work is still queued on a side stream (held back by a sleep kernel) when ganmetrics is
    called inside that stream: reading on any other stream without waiting would see unfinished data."""
    rng = np.random.default_rng(7)
    src_r = torch.from_numpy(rng.standard_normal((4000, 64)).astype(np.float32)).cuda()
    src_f = torch.from_numpy((rng.standard_normal((3500, 64)) + 0.2).astype(np.float32)).cuda()
    torch.cuda.synchronize()
    side = torch.cuda.Stream()
    with torch.cuda.stream(side):
        real = torch.zeros_like(src_r)
        fake = torch.zeros_like(src_f)
        torch.cuda._sleep(200_000_000)  # ~0.1 s of GPU time before the copies run
        real.copy_(src_r)
        fake.copy_(src_f)
        stats = gm.FeatureStats.from_features(real)  # no synchronize before the calls
        res = gm.prdc(real, fake, k=5)
    host_r, host_f = src_r.cpu().numpy(), src_f.cpu().numpy()
    assert rel(stats.cov, np.cov(host_r, rowvar=False)) < 1e-12
    assert dict(res) == dict(gm.prdc(host_r, host_f, k=5))


@cuda_torch
@pytest.mark.gpu
@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_gpu_knn_half_precision_and_strided_inputs(dtype):
    rng = np.random.default_rng(8)
    real = torch.from_numpy(rng.standard_normal((900, 96))).to(getattr(torch, dtype)).cuda()
    fake = torch.from_numpy(rng.standard_normal((800, 96)) + 0.2).to(getattr(torch, dtype)).cuda()
    for r, f in ((real, fake), (real[:, ::2], fake[:, ::2]), (real[::3], fake[::2])):
        host_r, host_f = r.double().cpu().numpy(), f.double().cpu().numpy()
        assert dict(gm.prdc(r, f, k=3)) == dict(gm.prdc(host_r, host_f, k=3))
        np.testing.assert_array_equal(gm.knn_radii(r, k=3), gm.knn_radii(host_r, k=3))


@cuda_torch
@pytest.mark.gpu
def test_gpu_accepts_non_torch_device_arrays():
    rng = np.random.default_rng(9)
    real = torch.from_numpy(rng.standard_normal((1200, 32)).astype(np.float32)).cuda()
    fake = torch.from_numpy((rng.standard_normal((1100, 32)) + 0.1).astype(np.float32)).cuda()
    host_r, host_f = real.cpu().numpy(), fake.cpu().numpy()
    assert dict(gm.prdc(_InterfaceOnly(real), _InterfaceOnly(fake), k=5)) == dict(gm.prdc(host_r, host_f, k=5))
    assert rel(gm.FeatureStats.from_features(_InterfaceOnly(real)).cov, np.cov(host_r, rowvar=False)) < 1e-12


@cuda_torch
@pytest.mark.gpu
def test_gpu_inputs_reach_the_torch_engine_without_the_enable_flag(monkeypatch):
    """Without GANMETRICS_ENABLE_UNVERIFIED_CUDA, CUDA tensors run on the torch engine; the custom kernels run only
    when asked for with the flag."""
    from ganmetrics._cuda_arrays import UNVERIFIED_FLAG

    monkeypatch.delenv(UNVERIFIED_FLAG, raising=False)
    x = torch.randn((40, 4), device="cuda")
    assert gm.prdc(x, x + 0.1, k=3).info["engine"] == "torch"
    assert gm.FeatureStats.from_features(x).n == 40
    assert gm.frechet_distance(np.zeros(2), np.eye(2), np.zeros(2), np.eye(2), device="cuda") == pytest.approx(0.0)
    for call in (lambda: gm.prdc(x, x, k=3, engine="cuda"),
                 lambda: gm.FeatureStats.from_features(x, engine="cuda")):
        with pytest.raises(ValueError, match=UNVERIFIED_FLAG):
            call()


@cuda_torch
@pytest.mark.gpu
def test_gpu_decisions_near_radii_at_high_dimension():
    """The near-tie sets of test_knn_exact (d = 512 and 2048, points at radius * (1 +- 1e-7), integer lattices)
    through the CUDA engine: every decision equals the float64 brute force, and the recheck runs."""
    from conftest import prdc_reference
    from test_knn_exact import CASES, K

    for name, build in CASES:
        real, fake = build()
        res = gm.prdc(torch.from_numpy(real).cuda(), torch.from_numpy(fake).cuda(), k=K)
        ref = prdc_reference(real, fake, K)
        assert [res[m] for m in ref] == [ref[m] for m in ref], name
        assert res.info["rechecked_pairs"] > 0, name
