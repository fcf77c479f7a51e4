"""The host engine: the C++ kernels (``ganmetrics._core``) on host arrays.

k-NN passes are tiled float32 GEMMs whose every decision -- is this point inside that ball, which neighbour is
the k-th -- is proven or rechecked in float64, so the result equals a float64 brute force for any tile size,
thread count or row order. Kernel sums run on float64 GEMM tiles (or float32 products with float64 sums).
Memory is O((N + M) k) plus a fixed tile workspace; the N x M matrix is never built.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ganmetrics._arrays import Features, as_features
from ganmetrics._native import _core
from ganmetrics._progress import counted
from ganmetrics.engines.base import Engine, Set, host_center, tile_kwargs


class HostEngine(Engine):
    """The CPU kernels on host arrays (numpy, CPU tensors, .npy/.npz files)."""

    name = "host"
    device = "cpu"

    def features(self, x: Any, name: str, min_rows: int = 2) -> Features:
        return as_features(x, name, min_rows=min_rows)

    def center(self, *sets: Set) -> np.ndarray:
        return host_center(*(s.local for s in sets))

    def _tiles(self) -> dict:
        return tile_kwargs(self.workspace_bytes)

    def knn_pass(self, x: Features, y: Features | None, k: int, center: np.ndarray, weight=None, *, desc: str = ""):
        y_arr, y_code = (x.array, x.code) if y is None else (y.array, y.code)
        return counted(lambda c: _core.knn(x.array, x.code, y_arr, y_code, y is None, center, k, weight,
                                           **self._tiles(), progress=c), x.n, desc or "k-NN pass",
                       progress=self.progress)

    def knn_both(self, x: Features, y: Features, k: int, k_y: int, center: np.ndarray):
        """The k nearest rows of y of every row of x and the k_y nearest rows of x of every row of y, from one
        pass (each pair computed once): (values, index, y values, y index, float64 evaluations)."""
        v, i, evaluated, vy, iy = _core.knn(x.array, x.code, y.array, y.code, False, center, k, None, **self._tiles(),
                                            k_y=k_y)
        self.evaluations += int(evaluated)
        return v, i, vy, iy, evaluated

    def cross_pass(self, x: Features, y: Features, center: np.ndarray, *, desc: str = "", **kw) -> dict:
        return counted(lambda c: _core.cross(x.array, x.code, y.array, y.code, center, **kw, **self._tiles(),
                                             progress=c), x.n, desc or "cross pass", progress=self.progress)

    rounds = True

    def pairs_pass(self, x: Features, y: Features, center: np.ndarray, row_radius2: np.ndarray | None,
                   col_radius2: np.ndarray | None, desc: str = "") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        rows, cols, values, evaluated = counted(
            lambda c: _core.pairs_within(x.array, x.code, y.array, y.code, center, row_radius2, col_radius2,
                                         **self._tiles(), progress=c), x.n, desc or "candidate pairs",
            progress=self.progress)
        self.evaluations += int(evaluated)
        return rows, cols, values

    def kernel_sum(self, a: Features, b: Features, self_pass: bool, include_diagonal: bool, kernel: tuple,
                   float32_products: bool, desc: str = "") -> float:
        """The sum of the kernel over the pairs of rows of a and b (within a when ``self_pass``)."""
        if a.n == 0 or b.n == 0:
            return 0.0
        kind, gamma, coef0, degree = kernel
        return float(counted(lambda c: _core.kernel_sum(a.array, a.code, b.array, b.code, self_pass, include_diagonal,
                                                        kind, gamma, coef0, degree, **self._tiles(),
                                                        float32_products=float32_products, progress=c),
                             a.n, desc or "kernel sums", progress=self.progress))

    def kernel_sums(self, x: Set, y: Set, kernel: tuple, include_diagonal: bool, float32_products: bool,
                    ) -> tuple[float, float, float]:
        fx, fy = x.local, y.local
        return (self.kernel_sum(fx, fx, True, include_diagonal, kernel, float32_products, f"kernel sums within {fx.name}"),
                self.kernel_sum(fy, fy, True, include_diagonal, kernel, float32_products, f"kernel sums within {fy.name}"),
                self.kernel_sum(fx, fy, False, False, kernel, float32_products, f"kernel sums {fx.name} x {fy.name}"))

    def subset_mmd2(self, x: Set, y: Set, kernel: tuple, x_index: np.ndarray, y_index: np.ndarray,
                    float32_products: bool, desc: str = "") -> np.ndarray:
        kind, gamma, coef0, degree = kernel
        fx, fy = x.local, y.local
        return counted(lambda c: _core.mmd_subsets(fx.array, fx.code, fy.array, fy.code, x_index, y_index, kind, gamma,
                                                   coef0, degree, float32_products, progress=c),
                       len(x_index), desc or "MMD subsets", unit="subsets", progress=self.progress)
