// Tiled pairwise squared distances with fused epilogues (the "pairwise" kernel family).
//
// Distances are never materialised as N x M. Each tile is an sgemm of float32 rows centred on a
// common float64 centre; an epilogue reads the tile once and folds it into per-row / per-column
// reductions. Every decision is exact with respect to the float64 distance
//     f(q, r) = sum_i (x_qi - y_ri)^2     (original values, fixed summation order)
// because each float32 distance a comes with a rigorous bound e (|a - f| <= e, from the
// float32 rounding of the centred inputs and the sgemm accumulation error); pairs whose bound
// straddles a decision threshold are recomputed in float64 ("rechecked").
#pragma once

#include <cstdint>
#include <vector>

#include "common/common.h"

namespace gm {

struct TileConfig {
  int64_t workspace_bytes = 256ll << 20;  // budget for tile buffers
  int64_t max_tile_rows = 0;              // test hooks: force small tiles (0 = from budget)
  int64_t max_tile_cols = 0;
  int64_t* progress = nullptr;            // optional: advanced (atomically) by the rows of x finished
};

// k smallest f(q, c) * w_c per row q of x over the rows c of y, sorted by (value, index).
// self: y is x, and the row itself is excluded by index (the pass then computes each pair once).
// Both sides (x is not y, no weights, out_y_value set): from the same tiles also the k_y smallest f(r, q) per
// row r of y over the rows q of x -- each pair computed once for the two directions.
struct KnnParams {
  MatView x, y;
  bool self = false;
  const double* center = nullptr;      // [d] subtracted before the float32 GEMM (null = 0)
  int64_t k = 1;
  const double* col_weight = nullptr;  // optional [m]: minimise f * w_c; columns with w_c <= 0 are skipped
  double* out_value = nullptr;         // [n*k] exact float64 (weighted) squared distances
  int64_t* out_index = nullptr;        // [n*k] column indices (-1 if fewer than k columns qualify)
  int64_t k_y = 0;                     // both sides: neighbours per row of y
  double* out_y_value = nullptr;       // both sides: [m*k_y] exact float64 squared distances
  int64_t* out_y_index = nullptr;      // both sides: [m*k_y] row indices of x
  TileConfig tiles;
  int64_t rechecked = 0;               // out: pairs recomputed in float64
};
void knn(KnnParams& p);

// One pass over x (rows) against y (columns) with any of these reductions:
//   col_radius2 -> row_count[q] = #{c : f(q,c) <= col_radius2[c]}   (< with strict)
//   row_radius2 -> col_any[c]   = exists q : f(q,c) <= row_radius2[q]  (< with strict)
//   col_min     -> col_min_value[c], col_argmin[c] = min over q of f(q,c) (ties: lowest q)
//   row_min     -> row_min_value[q], row_argmin[q] = min over c of f(q,c) (ties: lowest c)
struct CrossParams {
  MatView x, y;
  const double* center = nullptr;
  const double* col_radius2 = nullptr;
  const double* row_radius2 = nullptr;
  const int64_t* col_multiplicity = nullptr;  // optional [m]: row_count counts column c this many times
  bool strict = false;  // inclusion is f < radius^2 (the prdc package's convention) instead of <=
  int64_t* row_count = nullptr;
  uint8_t* col_any = nullptr;
  double* col_min_value = nullptr;
  int64_t* col_argmin = nullptr;
  double* row_min_value = nullptr;
  int64_t* row_argmin = nullptr;
  TileConfig tiles;
  int64_t rechecked = 0;
};
void cross(CrossParams& p);

// Every pair (q, c) with f(q, c) <= max(row_radius2[q], col_radius2[c]) (a null array or a negative entry
// selects nothing on its side), with its exact float64 f, sorted by (q, c). The candidate lists from which
// half-sampling rounds of the k-NN metrics are answered without another pass over the features.
struct PairsParams {
  MatView x, y;
  const double* center = nullptr;
  const double* row_radius2 = nullptr;
  const double* col_radius2 = nullptr;
  TileConfig tiles;
  std::vector<int64_t> rows, cols;  // out
  std::vector<double> values;       // out: exact f(q, c)
  int64_t rechecked = 0;            // out: pairs computed in float64
};
void pairs_within(PairsParams& p);

// The exact float64 squared distance used for every decision.
double exact_sqdist(const MatView& x, int64_t q, const MatView& y, int64_t r, double* bufq, double* bufr);

}  // namespace gm

namespace gm {

// Kernel sums for MMD-type metrics, computed from float64 GEMM tiles (kernel values are smooth
// functions of dot products, so they need float64 products rather than rechecks).
enum class KernelKind : int { Polynomial = 0, Rbf = 1 };

struct KernelSpec {
  KernelKind kind = KernelKind::Polynomial;
  double gamma = 1.0;  // polynomial: (gamma x.y + coef0)^degree;  rbf: exp(-gamma |x - y|^2)
  double coef0 = 1.0;
  int degree = 3;
};

// sum over pairs (i in x, j in y) of k(x_i, y_j). self: y is x; the pass is symmetric and the
// diagonal i == j is included only if include_diagonal.
struct KernelSumParams {
  MatView x, y;
  bool self = false;
  bool include_diagonal = false;
  bool float32_products = false;  // dot products from float32 GEMM (kernel values and sums stay float64)
  KernelSpec kernel;
  TileConfig tiles;
  double sum = 0.0;  // out
};
void kernel_sum(KernelSumParams& p);

// Unbiased MMD^2 for many subset pairs: subset s uses rows x_index[s*mx .. s*mx+mx) of x and
// y_index[s*my .. ) of y. One fused pass per pair over the stacked subset: row blocks of its Gram matrix
// (float64 GEMM, or float32 with float32_products) reduced through the kernel in float64 as they form.
struct MmdSubsetsParams {
  MatView x, y;
  bool float32_products = false;
  const int64_t* x_index = nullptr;
  const int64_t* y_index = nullptr;
  int64_t subsets = 0, mx = 0, my = 0;
  KernelSpec kernel;
  double* out = nullptr;  // [subsets]
  int64_t* progress = nullptr;  // optional: advanced by the subsets finished
};
void mmd_subsets(MmdSubsetsParams& p);

}  // namespace gm
