// Streaming mean and covariance (the "moments" kernel family).
//
// State is (n, mean, M2) in float64, M2 = sum_i (x_i - mean)(x_i - mean)^T; only its lower triangle
// is maintained (row-major d x d). The rows of an update are centred on one float64 shift, their products
// accumulated by float64 BLAS syrk whatever the input dtype, and the update is merged into the state with
// Chan's parallel formula.
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
  int64_t* progress = nullptr;   // optional: advanced (atomically) by the rows folded in
  // out: NaN/Inf values found while reading; when any is found the state is left unchanged
  int64_t nonfinite = 0;
  int64_t first_nonfinite = -1;  // position (within the rows of this update) of the first row holding one
  bool overflow = false;         // out: the squared deviations overflow float64; the state is left unchanged
};

void moments_update(MomentsState& state, MomentsUpdateParams& p);

// state <- state (+) (nb, mean_b, m2_b), Chan et al.'s pairwise update.
void moments_merge(MomentsState& state, int64_t nb, const double* mean_b, const double* m2_b);

}  // namespace gm
