// CUDA moments (streaming mean and covariance) and Frechet trace term. Plain C++ interface.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/common.h"
#include "moments/moments.h"

namespace gm::cuda {

struct NonFinite {
  int64_t count = 0;
  int64_t first_row = -1;
};

// Fold the rows of a matrix that lives on the GPU (view.data is a device pointer) into a host-side
// state (mean and the lower triangle of M2, float64), on `stream` (a cudaStream_t as an integer).
// Rows are checked for NaN/Inf first; if any is found the state is left unchanged and `bad` says where.
void moments_update_device(MomentsState& state, const MatView& x, int64_t chunk_rows, uintptr_t stream,
                           NonFinite& bad);

// The same for a host matrix, streamed through two pinned buffers so that copy and compute overlap.
void moments_update_host(MomentsState& state, const MatView& x, int64_t chunk_rows, uintptr_t stream, NonFinite& bad);

// Column means (float64) of a device matrix, with the NaN/Inf scan; `bad` says where the first bad value is.
void column_means_device(const MatView& x, double* host_out, uintptr_t stream, NonFinite& bad);

struct TraceSqrt {
  double trace_sqrt = 0.0;
  double min_eig = 0.0;
  double max_eig = 0.0;
};

// tr sqrt(S1^1/2 S2_b S1^1/2) for each S2_b, S1 factored once (Cholesky; eigendecomposition when S1 is
// singular). Host float64 matrices in, float64 on the GPU. Throws std::invalid_argument naming the
// input that is not PSD, like the CPU path.
std::vector<TraceSqrt> trace_sqrt_products(const double* S1, int64_t d, const std::vector<const double*>& S2,
                                           uintptr_t stream, const std::string& name1,
                                           const std::vector<std::string>& names2, double psd_tol = 1e-8);

}  // namespace gm::cuda
