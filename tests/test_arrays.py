import numpy as np
import pytest
import torch

import ganmetrics as gm
from ganmetrics._arrays import BF16, F16, F32, F64, as_features


def test_numpy_dtypes_and_views(rng):
    x = rng.standard_normal((20, 5))
    for dt, code in [(np.float16, F16), (np.float32, F32), (np.float64, F64)]:
        f = as_features(x.astype(dt), "x")
        assert f.code == code and f.array.shape == (20, 5)
    a = x.astype(np.float32)
    assert np.shares_memory(as_features(a, "x").array, a)  # no copy
    fa = np.asfortranarray(a)
    assert np.shares_memory(as_features(fa, "x").array, fa)
    strided = a[::2, ::3]
    assert np.shares_memory(as_features(strided, "x").array, a)


def test_integer_input_is_widened_to_float64():
    f = as_features(np.arange(12).reshape(6, 2), "x")
    assert f.code == F64


def test_torch_inputs(rng):
    x = rng.standard_normal((30, 4)).astype(np.float32)
    t = torch.from_numpy(x).requires_grad_(True)
    f = as_features(t, "x")
    assert f.code == F32 and np.shares_memory(f.array, x)
    b = torch.from_numpy(x).to(torch.bfloat16)
    fb = as_features(b, "x")
    assert fb.code == BF16
    np.testing.assert_array_equal(fb.rows(0, 30), b.float().numpy())


def test_dlpack_and_paths(tmp_path, rng):
    x = rng.standard_normal((10, 3))
    class OnlyDlpack:
        def __init__(self, a):
            self._a = a

        def __dlpack__(self, **kw):
            return self._a.__dlpack__(**kw)

        def __dlpack_device__(self):
            return self._a.__dlpack_device__()

    f = as_features(OnlyDlpack(x), "x")
    assert f.code == F64 and np.shares_memory(f.array, x)
    np.save(tmp_path / "a.npy", x)
    f = as_features(str(tmp_path / "a.npy"), "x")
    assert isinstance(f.array, np.memmap)
    np.savez(tmp_path / "b.npz", features=x, other=x[:2])
    np.testing.assert_array_equal(as_features(tmp_path / "b.npz", "x").array, x)


@pytest.mark.parametrize(
    "bad, exc, words",
    [
        (np.zeros(5), ValueError, "2-D"),
        (np.array([["a", "b"]]), TypeError, "non-numeric"),
        (np.zeros((3, 2), dtype=complex), TypeError, "complex"),
        ("missing.npy", FileNotFoundError, "no such file"),
        ("file.txt", FileNotFoundError, "no such file"),
    ],
)
def test_bad_inputs_are_named(bad, exc, words):
    with pytest.raises(exc, match=words):
        as_features(bad, "real")


def test_nan_reports_count_and_first_row():
    x = np.zeros((10, 3))
    x[4, 1] = np.nan
    x[7, 0] = np.inf
    with pytest.raises(ValueError, match=r"real contains 2 NaN or Inf value\(s\); the first is in row 4"):
        as_features(x, "real")
    b = torch.zeros((6, 2), dtype=torch.bfloat16)
    b[3, 1] = float("nan")
    with pytest.raises(ValueError, match="row 3"):
        as_features(b, "fake")


def test_cuda_like_inputs_get_a_clear_error():
    class FakeCudaArray:
        __cuda_array_interface__ = {"shape": (2, 2), "typestr": "<f4", "data": (0, False), "version": 3}

    with pytest.raises(ValueError, match="CUDA device"):
        as_features(FakeCudaArray(), "real")


def test_build_info_and_threads():
    info = gm.build_info()
    assert info["blas"] == "scipy-openblas32" and info["openmp_max_threads"] >= 1
    assert "cuda" in info
    before = gm.get_num_threads()
    gm.set_num_threads(1)
    assert gm.get_num_threads() == 1
    gm.set_num_threads(0)
    assert gm.get_num_threads() == before
    with pytest.raises(ValueError):
        gm.set_num_threads(-1)
