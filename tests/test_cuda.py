"""The optional CUDA module: it loads (or says why not), reports devices and translates errors.

GPU-only checks are marked ``gpu`` and skipped where no device is visible.
"""

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
