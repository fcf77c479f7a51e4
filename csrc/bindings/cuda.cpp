// pybind11 bindings of ganmetrics._cuda. Links the CUDA runtime only (never libtorch).
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "bindings/views.h"
#include "cuda/device.h"
#include "cuda/moments_cuda.h"
#include "cuda/pairwise_cuda.h"

namespace py = pybind11;
using gm::bindings::F64Array;
using gm::bindings::opt_vector;
using gm::bindings::OptF64;
using gm::bindings::tiles_from;

namespace {

gm::MatView device_view(const py::tuple& t, const char* name) {
  // (pointer, rows, cols, row_stride, col_stride, dtype code): strides in elements
  if (t.size() != 6) throw std::invalid_argument(std::string(name) + ": a device view is a 6-tuple");
  gm::MatView v;
  v.data = reinterpret_cast<const void*>(t[0].cast<uintptr_t>());
  v.rows = t[1].cast<int64_t>();
  v.cols = t[2].cast<int64_t>();
  v.row_stride = t[3].cast<int64_t>();
  v.col_stride = t[4].cast<int64_t>();
  const int code = t[5].cast<int>();
  if (code < 0 || code > 3) throw std::invalid_argument(std::string(name) + ": unknown dtype code");
  v.dtype = static_cast<gm::DType>(code);
  return v;
}

}  // namespace

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
  m.def("set_device", &gm::cuda::set_device, py::arg("index"));
  m.def("pointer_device", &gm::cuda::pointer_device, py::arg("ptr"));
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
  // ------------------------------------------------------------------ moments
  m.def(
      "moments_update_device",
      [](F64Array mean, F64Array m2, int64_t n, uintptr_t ptr, int64_t rows, int64_t cols, int64_t row_stride,
         int64_t col_stride, int dtype_code, uintptr_t stream, int64_t chunk_rows) {
        gm::MomentsState st = gm::bindings::moments_state(mean, m2, n);
        if (dtype_code < 0 || dtype_code > 3) throw std::invalid_argument("unknown dtype code");
        gm::MatView v;
        v.data = reinterpret_cast<const void*>(ptr);
        v.rows = rows;
        v.cols = cols;
        v.row_stride = row_stride;
        v.col_stride = col_stride;
        v.dtype = static_cast<gm::DType>(dtype_code);
        gm::cuda::NonFinite bad;
        {
          py::gil_scoped_release nogil;
          gm::cuda::moments_update_device(st, v, chunk_rows, stream, bad);
        }
        return py::make_tuple(st.n, bad.count, bad.first_row);
      },
      py::arg("mean"), py::arg("m2"), py::arg("n"), py::arg("ptr"), py::arg("rows"), py::arg("cols"),
      py::arg("row_stride"), py::arg("col_stride"), py::arg("dtype"), py::arg("stream"), py::arg("chunk_rows") = 0);

  m.def(
      "moments_update_host",
      [](F64Array mean, F64Array m2, int64_t n, const py::array& x, int dtype_code, uintptr_t stream,
         int64_t chunk_rows) {
        gm::MomentsState st = gm::bindings::moments_state(mean, m2, n);
        const gm::MatView v = gm::bindings::make_view(x, dtype_code, "features");
        gm::cuda::NonFinite bad;
        {
          py::gil_scoped_release nogil;
          gm::cuda::moments_update_host(st, v, chunk_rows, stream, bad);
        }
        return py::make_tuple(st.n, bad.count, bad.first_row);
      },
      py::arg("mean"), py::arg("m2"), py::arg("n"), py::arg("x"), py::arg("dtype"), py::arg("stream"),
      py::arg("chunk_rows") = 0);

  // ------------------------------------------------------------------ linalg
  m.def(
      "trace_sqrt_products",
      [](const F64Array& s1, const std::vector<F64Array>& s2s, uintptr_t stream, const std::string& name1,
         const std::vector<std::string>& names2) {
        if (s1.ndim() != 2 || s1.shape(0) != s1.shape(1)) throw std::invalid_argument("sigma1 must be square");
        const int64_t d = s1.shape(0);
        std::vector<const double*> ptrs;
        for (const auto& s2 : s2s) {
          if (s2.ndim() != 2 || s2.shape(0) != d || s2.shape(1) != d)
            throw std::invalid_argument("every sigma2 must have the shape of sigma1");
          ptrs.push_back(s2.data());
        }
        std::vector<gm::cuda::TraceSqrt> res;
        {
          py::gil_scoped_release nogil;
          res = gm::cuda::trace_sqrt_products(s1.data(), d, ptrs, stream, name1, names2);
        }
        py::list out;
        for (const auto& r : res) out.append(py::make_tuple(r.trace_sqrt, r.min_eig, r.max_eig));
        return out;
      },
      py::arg("sigma1"), py::arg("sigma2s"), py::arg("stream"), py::arg("name1"), py::arg("names2"));

  // ------------------------------------------------------------------ pairwise
  m.def(
      "column_means",
      [](const py::tuple& x, uintptr_t stream) {
        const gm::MatView v = device_view(x, "x");
        py::array_t<double> out(v.cols);
        gm::cuda::NonFinite bad;
        {
          py::gil_scoped_release nogil;
          gm::cuda::column_means_device(v, out.mutable_data(), stream, bad);
        }
        return py::make_tuple(out, bad.count, bad.first_row);
      },
      py::arg("x"), py::arg("stream"));

  m.def(
      "knn",
      [](const py::tuple& x, const py::tuple& y, bool self, const OptF64& center, int64_t k, const OptF64& col_weight,
         uintptr_t stream, int64_t workspace_bytes, int64_t max_tile_rows, int64_t max_tile_cols) {
        gm::KnnParams p;
        p.x = device_view(x, "x");
        p.y = self ? p.x : device_view(y, "y");
        p.self = self;
        p.center = opt_vector(center, p.x.cols, "center");
        p.k = k;
        p.col_weight = opt_vector(col_weight, p.y.rows, "col_weight");
        p.tiles = tiles_from(workspace_bytes, max_tile_rows, max_tile_cols);
        py::array_t<double> values({p.x.rows, k});
        py::array_t<int64_t> index({p.x.rows, k});
        p.out_value = values.mutable_data();
        p.out_index = index.mutable_data();
        {
          py::gil_scoped_release nogil;
          gm::cuda::knn_device(p, stream);
        }
        return py::make_tuple(values, index, p.rechecked);
      },
      py::arg("x"), py::arg("y"), py::arg("self"), py::arg("center"), py::arg("k"), py::arg("col_weight"),
      py::arg("stream"), py::arg("workspace_bytes") = int64_t(2) << 30, py::arg("max_tile_rows") = 0,
      py::arg("max_tile_cols") = 0);

  m.def(
      "cross",
      [](const py::tuple& x, const py::tuple& y, const OptF64& center, const OptF64& col_radius2,
         const OptF64& row_radius2, bool col_min, bool row_min, bool strict, uintptr_t stream, int64_t workspace_bytes,
         int64_t max_tile_rows, int64_t max_tile_cols) {
        gm::CrossParams p;
        p.x = device_view(x, "x");
        p.y = device_view(y, "y");
        p.center = opt_vector(center, p.x.cols, "center");
        p.col_radius2 = opt_vector(col_radius2, p.y.rows, "col_radius2");
        p.row_radius2 = opt_vector(row_radius2, p.x.rows, "row_radius2");
        p.strict = strict;
        p.tiles = tiles_from(workspace_bytes, max_tile_rows, max_tile_cols);
        gm::bindings::CrossOutputs out(p, col_min, row_min);
        {
          py::gil_scoped_release nogil;
          gm::cuda::cross_device(p, stream);
        }
        return out.to_dict(p);
      },
      py::arg("x"), py::arg("y"), py::arg("center"), py::arg("col_radius2") = py::none(),
      py::arg("row_radius2") = py::none(), py::arg("col_min") = false, py::arg("row_min") = false,
      py::arg("strict") = false, py::arg("stream") = 0, py::arg("workspace_bytes") = int64_t(2) << 30,
      py::arg("max_tile_rows") = 0, py::arg("max_tile_cols") = 0);

  m.def("raise_cuda_error", [](int code) { gm::cuda::check(code, __FILE__, __LINE__); }, py::arg("code"),
        "Raise the error the module would raise for a failing CUDA call with this cudaError_t code (tests).");
}
