"""The CUDA engine: the C++/CUDA kernels (``ganmetrics._cuda``) on device arrays, on the producer's stream.

Built when a CUDA compiler is found; these kernels have not yet run on a GPU, so they are used only with
``GANMETRICS_ENABLE_UNVERIFIED_CUDA=1`` (:func:`ganmetrics._cuda_arrays.require_cuda`). Every row counts as its
own distinct row here (duplicates are not merged on the device).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ganmetrics._cuda_arrays import DeviceFeatures, as_device_features
from ganmetrics._native import _cuda
from ganmetrics.engines.base import Engine, Multiset, Set, tile_kwargs


class CudaEngine(Engine):
    """The CUDA pairwise kernels on device arrays (torch CUDA tensors, ``__cuda_array_interface__`` objects)."""

    name = "cuda"
    device = "cuda"

    def features(self, x: Any, name: str, min_rows: int = 2) -> DeviceFeatures:
        return as_device_features(x, name, min_rows=min_rows)

    @staticmethod
    def _view(f: DeviceFeatures) -> tuple:
        return (f.ptr, f.rows, f.cols, f.row_stride, f.col_stride, f.code)

    def center(self, *sets: Set) -> np.ndarray:
        total = np.zeros(sets[0].dim)
        for s in sets:
            f = s.local
            _cuda.set_device(f.device)
            means, bad, first = _cuda.column_means(self._view(f), f.stream)
            if bad:
                raise ValueError(f"{f.name} contains {bad} NaN or Inf value(s); the first is in row {first}")
            total += means * f.n
        return total / sum(s.local.n for s in sets)

    def _find_duplicates(self, f: Any) -> Multiset | None:
        return None

    def subset(self, s: Set, idx: np.ndarray, name: str) -> Set:
        raise ValueError("resampling rows (bootstrap intervals) is not done by the custom CUDA kernels; use "
                         "engine='torch' for features on a GPU")

    def distances2_to(self, s: Set, point: np.ndarray, center: np.ndarray) -> np.ndarray:
        raise ValueError("distances to a point (alpha-precision, beta-recall) are not done by the custom CUDA kernels; "
                         "use engine='torch' for features on a GPU")

    def _tiles(self) -> dict:
        """Tile settings; without an explicit budget the CUDA module's own default applies."""
        kw = tile_kwargs(self.workspace_bytes)
        if self.workspace_bytes is None:
            kw.pop("workspace_bytes")
        return kw

    def knn_pass(self, x, y, k: int, center: np.ndarray, weight=None, *, desc: str = ""):
        yv = self._view(x if y is None else y)
        return _cuda.knn(self._view(x), yv, y is None, center, k, weight, x.stream, **self._tiles())

    def cross_pass(self, x, y, center: np.ndarray, *, desc: str = "", **kw) -> dict:
        return _cuda.cross(self._view(x), self._view(y), center, stream=x.stream, **kw, **self._tiles())

    def kernel_sums(self, x: Set, y: Set, kernel: tuple, include_diagonal: bool, float32_products: bool,
                    ) -> tuple[float, float, float]:
        raise ValueError("the kernel metrics (KID, CMMD) have no CUDA kernels yet; pass the features on the CPU")

    def subset_mmd2(self, x: Set, y: Set, kernel: tuple, x_index: np.ndarray, y_index: np.ndarray,
                    float32_products: bool, desc: str = "") -> np.ndarray:
        raise ValueError("the kernel metrics (KID, CMMD) have no CUDA kernels yet; pass the features on the CPU")
