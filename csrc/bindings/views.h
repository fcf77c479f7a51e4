// Array -> kernel-view helpers shared by the binding files (the only files that include pybind11).
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <optional>
#include <string>

#include "common/common.h"
#include "moments/moments.h"
#include "pairwise/pairwise.h"

namespace gm::bindings {

namespace py = pybind11;

// A strided 2-D numpy array as a MatView; dtype_code says how to read its items (bfloat16 arrives as uint16).
inline MatView make_view(const py::array& a, int dtype_code, const char* name) {
  if (a.ndim() != 2) throw std::invalid_argument(std::string(name) + " must be 2-D");
  if (dtype_code < 0 || dtype_code > 3) throw std::invalid_argument(std::string(name) + ": unknown dtype code");
  MatView v;
  v.dtype = static_cast<DType>(dtype_code);
  const py::ssize_t want = (v.dtype == DType::F64) ? 8 : (v.dtype == DType::F32) ? 4 : 2;
  if (a.itemsize() != want)
    throw std::invalid_argument(std::string(name) + ": item size does not match dtype " + gm::dtype_name(v.dtype));
  if (a.strides(0) % want != 0 || a.strides(1) % want != 0)
    throw std::invalid_argument(std::string(name) + ": strides are not a multiple of the item size");
  v.data = a.data();
  v.rows = a.shape(0);
  v.cols = a.shape(1);
  v.row_stride = a.strides(0) / want;
  v.col_stride = a.strides(1) / want;
  return v;
}

using F64Array = py::array_t<double, py::array::c_style>;

// The (n, mean, M2) state held by Python as writable float64 arrays, checked once.
inline MomentsState moments_state(F64Array& mean, F64Array& m2, int64_t n) {
  if (!mean.writeable() || !m2.writeable()) throw std::invalid_argument("statistics arrays must be writable");
  MomentsState st;
  st.dim = mean.shape(0);
  st.n = n;
  if (m2.ndim() != 2 || m2.shape(0) != st.dim || m2.shape(1) != st.dim) throw std::invalid_argument("m2 must be dim x dim");
  st.mean = mean.mutable_data();
  st.m2 = m2.mutable_data();
  return st;
}

using OptF64 = std::optional<py::array_t<double, py::array::c_style | py::array::forcecast>>;

inline const double* opt_vector(const OptF64& a, int64_t len, const char* name) {
  if (!a) return nullptr;
  if (a->ndim() != 1 || a->shape(0) != len)
    throw std::invalid_argument(std::string(name) + " must be a vector of length " + std::to_string(len));
  return a->data();
}

// An optional one-element int64 array that a kernel advances as it works (a Python thread reads it to
// drive a progress bar while the GIL is released).
using OptCounter = std::optional<py::array_t<int64_t, py::array::c_style>>;

inline int64_t* counter_ptr(OptCounter& c) {
  if (!c) return nullptr;
  if (c->size() != 1) throw std::invalid_argument("progress counter must be a one-element int64 array");
  return c->mutable_data();
}

inline gm::TileConfig tiles_from(int64_t workspace_bytes, int64_t max_tile_rows, int64_t max_tile_cols,
                                 int64_t* progress = nullptr) {
  if (workspace_bytes < (1 << 20)) throw std::invalid_argument("workspace_bytes must be at least 1 MiB");
  gm::TileConfig t;
  t.workspace_bytes = workspace_bytes;
  t.max_tile_rows = max_tile_rows;
  t.max_tile_cols = max_tile_cols;
  t.progress = progress;
  return t;
}

// Host outputs of a CrossParams pass: allocated here, attached to the params, returned as a dict.
struct CrossOutputs {
  py::array_t<int64_t> row_count;
  py::array_t<uint8_t> col_any;
  py::array_t<double> col_min_value, row_min_value;
  py::array_t<int64_t> col_argmin, row_argmin;
  bool col_min, row_min;

  CrossOutputs(gm::CrossParams& p, bool want_col_min, bool want_row_min)
      : row_count(p.col_radius2 ? p.x.rows : 0), col_any(p.row_radius2 ? p.y.rows : 0),
        col_min_value(want_col_min ? p.y.rows : 0), row_min_value(want_row_min ? p.x.rows : 0),
        col_argmin(want_col_min ? p.y.rows : 0), row_argmin(want_row_min ? p.x.rows : 0), col_min(want_col_min),
        row_min(want_row_min) {
    if (p.col_radius2) p.row_count = row_count.mutable_data();
    if (p.row_radius2) p.col_any = col_any.mutable_data();
    if (col_min) {
      p.col_min_value = col_min_value.mutable_data();
      p.col_argmin = col_argmin.mutable_data();
    }
    if (row_min) {
      p.row_min_value = row_min_value.mutable_data();
      p.row_argmin = row_argmin.mutable_data();
    }
  }

  py::dict to_dict(const gm::CrossParams& p) const {
    py::dict out;
    if (p.col_radius2) out["row_count"] = row_count;
    if (p.row_radius2) out["col_any"] = col_any.attr("astype")("bool");
    if (col_min) {
      out["col_min"] = col_min_value;
      out["col_argmin"] = col_argmin;
    }
    if (row_min) {
      out["row_min"] = row_min_value;
      out["row_argmin"] = row_argmin;
    }
    out["rechecked"] = p.rechecked;
    return out;
  }
};

}  // namespace gm::bindings
