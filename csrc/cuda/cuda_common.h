// Error checking for CUDA runtime, cuBLAS and cuSOLVER calls (every call goes through a macro with file:line),
// cached library handles, and the device-side strided matrix view. Included only by .cu files.
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <cusolverDn.h>

#include <cstdint>
#include <string>

#include "common/common.h"
#include "cuda/device.h"

namespace gm::cuda {

void check_cublas(cublasStatus_t s, const char* file, int line);
void check_cusolver(cusolverStatus_t s, const char* file, int line);

#define GM_CUDA(expr) ::gm::cuda::check(static_cast<int>(expr), __FILE__, __LINE__)
#define GM_CUBLAS(expr) ::gm::cuda::check_cublas((expr), __FILE__, __LINE__)
#define GM_CUSOLVER(expr) ::gm::cuda::check_cusolver((expr), __FILE__, __LINE__)

// Handles are expensive to create: one per device, bound to the caller's stream at each use.
cublasHandle_t cublas_handle(cudaStream_t stream);
cusolverDnHandle_t cusolver_handle(cudaStream_t stream);

// Stream-ordered device buffer (cudaMallocAsync / cudaFreeAsync on the caller's stream).
template <typename T>
class DeviceBuffer {
 public:
  DeviceBuffer(size_t n, cudaStream_t stream) : n_(n), stream_(stream) {
    if (n_) GM_CUDA(cudaMallocAsync(reinterpret_cast<void**>(&ptr_), n_ * sizeof(T), stream_));
  }
  ~DeviceBuffer() {
    if (ptr_) cudaFreeAsync(ptr_, stream_);
  }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  DeviceBuffer(DeviceBuffer&& o) noexcept : ptr_(o.ptr_), n_(o.n_), stream_(o.stream_) { o.ptr_ = nullptr; }
  DeviceBuffer& operator=(DeviceBuffer&&) = delete;
  T* get() const { return ptr_; }
  size_t size() const { return n_; }

 private:
  T* ptr_ = nullptr;
  size_t n_;
  cudaStream_t stream_;
};

}  // namespace gm::cuda
