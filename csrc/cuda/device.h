// CUDA runtime helpers for ganmetrics._cuda: device discovery and error translation.
// Plain C++ interface; only device.cu includes the CUDA headers.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

namespace gm::cuda {

// A CUDA error that is not the user's fault. `out_of_memory` lets the bindings raise MemoryError.
class CudaError : public std::runtime_error {
 public:
  CudaError(const std::string& what, bool out_of_memory) : std::runtime_error(what), out_of_memory_(out_of_memory) {}
  bool out_of_memory() const { return out_of_memory_; }

 private:
  bool out_of_memory_;
};

struct DeviceInfo {
  int index = 0;
  std::string name;
  int major = 0, minor = 0;
  int64_t total_memory = 0;
  int multiprocessors = 0;
};

// Number of visible devices; 0 when there is no driver or no device (never throws for those).
int device_count();
// Why device_count() is 0 ("" when devices are visible).
std::string unavailable_reason();
DeviceInfo device_info(int index);
int runtime_version();
int driver_version();  // 0 without a driver
// Make `index` the current device of the calling thread.
void set_device(int index);
// The device that owns a device pointer (-1 for host memory).
int pointer_device(uintptr_t ptr);
// Raises CudaError for a failing runtime call; used by tests of the error path.
void check(int error_code, const char* file, int line);

}  // namespace gm::cuda
