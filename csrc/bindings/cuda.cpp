// pybind11 bindings of ganmetrics._cuda. Links the CUDA runtime only (never libtorch).
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "cuda/device.h"

namespace py = pybind11;

PYBIND11_MODULE(_cuda, m) {
  m.doc() = "ganmetrics compiled kernels (CUDA)";

  // CUDA failures: out of memory -> MemoryError, anything else -> RuntimeError with file:line.
  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const gm::cuda::CudaError& e) {
      if (e.out_of_memory()) {
        PyErr_SetString(PyExc_MemoryError, e.what());
      } else {
        PyErr_SetString(PyExc_RuntimeError, e.what());
      }
    }
  });

  m.def("device_count", &gm::cuda::device_count);
  m.def("unavailable_reason", &gm::cuda::unavailable_reason);
  m.def("runtime_version", &gm::cuda::runtime_version);
  m.def("driver_version", &gm::cuda::driver_version);
  m.def("architectures", []() { return std::string(GANMETRICS_CUDA_ARCHS); });
  m.def(
      "device_info",
      [](int index) {
        const gm::cuda::DeviceInfo info = gm::cuda::device_info(index);
        py::dict d;
        d["index"] = info.index;
        d["name"] = info.name;
        d["compute_capability"] = py::make_tuple(info.major, info.minor);
        d["total_memory"] = info.total_memory;
        d["multiprocessors"] = info.multiprocessors;
        return d;
      },
      py::arg("index") = 0);
  m.def("raise_cuda_error", [](int code) { gm::cuda::check(code, __FILE__, __LINE__); }, py::arg("code"),
        "Raise the error the module would raise for a failing CUDA call with this cudaError_t code (tests).");
}
