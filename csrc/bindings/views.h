// Array -> kernel-view helpers shared by the binding files (the only files that include pybind11).
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <string>

#include "common/common.h"

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

}  // namespace gm::bindings
