"""Type stubs for the compiled CPU kernels (csrc/bindings/core.cpp). Private: use the ganmetrics API."""

from typing import Any

import numpy as np
import numpy.typing as npt

F64 = npt.NDArray[np.float64]

def build_info() -> dict[str, Any]: ...
def set_num_threads(n: int) -> None: ...
def get_num_threads() -> int: ...

# moments: state (mean, m2 lower triangle) is updated in place; the new count is returned
def moments_update(
    mean: F64, m2: F64, n: int, x: np.ndarray, dtype: int, rows: npt.NDArray[np.int64] | None = ..., chunk_rows: int = ...,
    progress: npt.NDArray[np.int64] | None = ...,
) -> tuple[int, int, int, bool]: ...
def moments_merge(mean: F64, m2: F64, n: int, nb: int, mean_b: F64, m2_b: F64) -> int: ...

# linalg
class PsdFactor:
    dim: int
    rank: int
    trace: float
    max_diag: float
    min_eig: float
    method: str

def psd_factor(sigma: F64, name: str, rank_tol: float = ..., psd_tol: float = ..., max_rank: int = ...) -> PsdFactor: ...
def trace_sqrt_product(factor1: PsdFactor, factor2: PsdFactor, force_svd: bool = ...) -> tuple[float, bool, float, float]: ...
def symmetric_eigenvalues(matrix: F64) -> F64: ...
def symmetry_report(matrix: F64) -> tuple[float, float, int, int]: ...

# pairwise
def knn(
    x: np.ndarray, xcode: int, y: np.ndarray, ycode: int, self: bool, center: F64 | None, k: int,
    col_weight: F64 | None = ..., workspace_bytes: int = ..., max_tile_rows: int = ..., max_tile_cols: int = ...,
    progress: npt.NDArray[np.int64] | None = ..., k_y: int = ...,
) -> tuple[F64, npt.NDArray[np.int64], int] | tuple[F64, npt.NDArray[np.int64], int, F64, npt.NDArray[np.int64]]: ...
def cross(
    x: np.ndarray, xcode: int, y: np.ndarray, ycode: int, center: F64 | None, col_radius2: F64 | None = ...,
    row_radius2: F64 | None = ..., col_min: bool = ..., row_min: bool = ..., strict: bool = ...,
    workspace_bytes: int = ..., max_tile_rows: int = ..., max_tile_cols: int = ..., progress: npt.NDArray[np.int64] | None = ...,
    col_multiplicity: npt.NDArray[np.int64] | None = ...,
) -> dict[str, Any]: ...
def kernel_sum(
    x: np.ndarray, xcode: int, y: np.ndarray, ycode: int, self: bool, include_diagonal: bool, kind: int, gamma: float,
    coef0: float = ..., degree: int = ..., workspace_bytes: int = ..., max_tile_rows: int = ..., max_tile_cols: int = ...,
    float32_products: bool = ..., progress: npt.NDArray[np.int64] | None = ...,
) -> float: ...
def mmd_subsets(
    x: np.ndarray, xcode: int, y: np.ndarray, ycode: int, x_index: npt.NDArray[np.int64],
    y_index: npt.NDArray[np.int64], kind: int, gamma: float, coef0: float = ..., degree: int = ...,
    float32_products: bool = ..., progress: npt.NDArray[np.int64] | None = ...,
) -> F64: ...
def pairs_within(
    x: np.ndarray, xcode: int, y: np.ndarray, ycode: int, center: F64 | None, row_radius2: F64 | None = ...,
    col_radius2: F64 | None = ..., workspace_bytes: int = ..., max_tile_rows: int = ..., max_tile_cols: int = ...,
    progress: npt.NDArray[np.int64] | None = ...,
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], F64, int]: ...
