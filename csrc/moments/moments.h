// Streaming mean and covariance (the "moments" kernel family).
//
// State is (n, mean, M2) in float64, M2 = sum_i (x_i - mean)(x_i - mean)^T; only its lower triangle
// is maintained (row-major d x d). Each chunk of rows is centred on its own float64 mean, its
// scatter matrix is computed with BLAS syrk in the working precision (float32 for float16/bfloat16/
// float32 input, float64 for float64 input), and the chunk is merged with Chan's parallel formula.
#pragma once

#include <cstdint>

#include "common/common.h"

namespace gm {

struct MomentsState {
  int64_t dim = 0;
  int64_t n = 0;          // in/out
  double* mean = nullptr; // [dim], in/out
  double* m2 = nullptr;   // [dim*dim], lower triangle in/out
};

struct MomentsUpdateParams {
  MatView x;                     // rows to add (all of them when `rows` is null)
  const int64_t* rows = nullptr; // optional row indices into x
  int64_t num_rows = 0;          // number of indices in `rows`
  int64_t chunk_rows = 0;        // rows per syrk chunk (0 = default)
};

void moments_update(MomentsState& state, const MomentsUpdateParams& p);

// state <- state (+) (nb, mean_b, m2_b), Chan et al.'s pairwise update.
void moments_merge(MomentsState& state, int64_t nb, const double* mean_b, const double* m2_b);

}  // namespace gm
