#include <cuda_runtime.h>

#include <sstream>

#include "cuda/device.h"

namespace gm::cuda {

void check(int code, const char* file, int line) {
  const cudaError_t err = static_cast<cudaError_t>(code);
  if (err == cudaSuccess) return;
  std::ostringstream os;
  os << "CUDA error " << cudaGetErrorName(err) << " (" << cudaGetErrorString(err) << ") at " << file << ":" << line;
  throw CudaError(os.str(), err == cudaErrorMemoryAllocation);
}

#define GM_CUDA_CHECK(expr) ::gm::cuda::check(static_cast<int>(expr), __FILE__, __LINE__)

int device_count() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError();  // clear the sticky "no driver / no device" error
    return 0;
  }
  return n;
}

std::string unavailable_reason() {
  int n = 0;
  const cudaError_t err = cudaGetDeviceCount(&n);
  if (err != cudaSuccess) {
    cudaGetLastError();
    return std::string(cudaGetErrorName(err)) + ": " + cudaGetErrorString(err);
  }
  return n > 0 ? "" : "no CUDA device is visible";
}

DeviceInfo device_info(int index) {
  const int n = device_count();
  if (index < 0 || index >= n) {
    throw std::invalid_argument("device index " + std::to_string(index) + " is out of range (" + std::to_string(n) +
                                " CUDA devices visible)");
  }
  cudaDeviceProp prop;
  GM_CUDA_CHECK(cudaGetDeviceProperties(&prop, index));
  DeviceInfo info;
  info.index = index;
  info.name = prop.name;
  info.major = prop.major;
  info.minor = prop.minor;
  info.total_memory = static_cast<int64_t>(prop.totalGlobalMem);
  info.multiprocessors = prop.multiProcessorCount;
  return info;
}

void set_device(int index) {
  const int n = device_count();
  if (index < 0 || index >= n) {
    throw std::invalid_argument("device index " + std::to_string(index) + " is out of range (" + std::to_string(n) +
                                " CUDA devices visible)");
  }
  GM_CUDA_CHECK(cudaSetDevice(index));
}

int pointer_device(uintptr_t ptr) {
  cudaPointerAttributes attr;
  GM_CUDA_CHECK(cudaPointerGetAttributes(&attr, reinterpret_cast<const void*>(ptr)));
  return (attr.type == cudaMemoryTypeDevice || attr.type == cudaMemoryTypeManaged) ? attr.device : -1;
}

int runtime_version() {
  int v = 0;
  GM_CUDA_CHECK(cudaRuntimeGetVersion(&v));
  return v;
}

int driver_version() {
  int v = 0;
  if (cudaDriverGetVersion(&v) != cudaSuccess) {
    cudaGetLastError();
    return 0;
  }
  return v;
}

}  // namespace gm::cuda
