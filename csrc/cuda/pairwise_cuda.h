// The pairwise engine on NVIDIA GPUs: same operations and the same exactness as csrc/pairwise (CPU).
// Plain C++ interface; device pointers and a stream arrive as integers.
#pragma once

#include <cstdint>

#include "common/common.h"
#include "pairwise/pairwise.h"

namespace gm::cuda {

// x and y are device views; p.center (host, may be null) is copied to the device. Outputs are host arrays.
// self: every pair is computed (both halves) on the GPU; the row itself is excluded by index.
void knn_device(KnnParams& p, uintptr_t stream);
void cross_device(CrossParams& p, uintptr_t stream);

}  // namespace gm::cuda
