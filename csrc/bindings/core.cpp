// pybind11 bindings of ganmetrics._core: the only C++ file that includes pybind11 (with cuda.cpp).
// Shapes and dtypes are checked here once; the GIL is released around every kernel.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cblas.h>
#include <omp.h>

#include "common/common.h"
#include "linalg/linalg.h"
#include "moments/moments.h"
#include "pairwise/pairwise.h"
#include "bindings/views.h"


namespace py = pybind11;
using gm::DType;
using gm::MatView;
using gm::bindings::make_view;
using gm::bindings::opt_vector;
using gm::bindings::OptF64;
using gm::bindings::tiles_from;
using gm::bindings::counter_ptr;
using gm::bindings::OptCounter;

namespace {

using gm::bindings::F64Array;

void check_square(const F64Array& s, const char* name) {
  if (s.ndim() != 2 || s.shape(0) != s.shape(1) || s.shape(0) < 1)
    throw std::invalid_argument(std::string(name) + " must be a non-empty square matrix");
}

}  // namespace

PYBIND11_MODULE(_core, m) {
  m.doc() = "ganmetrics compiled kernels (CPU): moments, linalg, pairwise";
  gm::num_threads();  // record the default thread count before anyone overrides it

  m.def("build_info", []() {
    py::dict d;
    d["blas"] = GANMETRICS_BLAS_NAME;
    d["blas_config"] = std::string(scipy_openblas_get_config());
    d["openmp_max_threads"] = omp_get_max_threads();
    d["num_threads"] = gm::num_threads();
    d["blas_threads"] = scipy_openblas_get_num_threads();  // what BLAS uses right now
    return d;
  });
  m.def("set_num_threads", &gm::set_num_threads, py::arg("n"));
  m.def("get_num_threads", &gm::num_threads);

  // ------------------------------------------------------------------ moments
  m.def(
      "moments_update",
      [](F64Array mean, F64Array m2, int64_t n, const py::array& x, int dtype_code,
         std::optional<py::array_t<int64_t, py::array::c_style | py::array::forcecast>> rows, int64_t chunk_rows,
         OptCounter progress) {
        gm::MomentsState st = gm::bindings::moments_state(mean, m2, n);
        gm::MomentsUpdateParams p;
        p.x = make_view(x, dtype_code, "features");
        p.chunk_rows = chunk_rows;
        p.progress = counter_ptr(progress);
        if (rows) {
          p.rows = rows->data();
          p.num_rows = rows->shape(0);
        }
        {
          py::gil_scoped_release nogil;
          gm::moments_update(st, p);
        }
        return py::make_tuple(st.n, p.nonfinite, p.first_nonfinite, p.overflow);
      },
      py::arg("mean"), py::arg("m2"), py::arg("n"), py::arg("x"), py::arg("dtype"), py::arg("rows") = py::none(),
      py::arg("chunk_rows") = 0, py::arg("progress") = py::none());

  m.def(
      "moments_merge",
      [](F64Array mean, F64Array m2, int64_t n, int64_t nb, const F64Array& mean_b, const F64Array& m2_b) {
        gm::MomentsState st = gm::bindings::moments_state(mean, m2, n);
        if (mean_b.shape(0) != st.dim || m2_b.size() != st.dim * st.dim)
          throw std::invalid_argument("cannot merge statistics of different dimensions");
        {
          py::gil_scoped_release nogil;
          gm::moments_merge(st, nb, mean_b.data(), m2_b.data());
        }
        return st.n;
      },
      py::arg("mean"), py::arg("m2"), py::arg("n"), py::arg("nb"), py::arg("mean_b"), py::arg("m2_b"));

  // ------------------------------------------------------------------ linalg
  py::class_<gm::PsdFactor>(m, "PsdFactor")
      .def_readonly("dim", &gm::PsdFactor::dim)
      .def_readonly("rank", &gm::PsdFactor::rank)
      .def_readonly("trace", &gm::PsdFactor::trace)
      .def_readonly("max_diag", &gm::PsdFactor::max_diag)
      .def_readonly("min_eig", &gm::PsdFactor::min_eig)
      .def_readonly("method", &gm::PsdFactor::method);

  m.def(
      "psd_factor",
      [](const F64Array& s, const std::string& name, double rank_tol, double psd_tol, int64_t max_rank) {
        check_square(s, name.c_str());
        if (!(rank_tol >= 0) || !(psd_tol >= 0)) throw std::invalid_argument("tolerances must be >= 0");
        gm::PsdTolerance tol{rank_tol, psd_tol, max_rank};
        py::gil_scoped_release nogil;
        return gm::psd_factor(s.data(), s.shape(0), name.c_str(), tol);
      },
      py::arg("sigma"), py::arg("name"), py::arg("rank_tol") = 0.0, py::arg("psd_tol") = 1e-8,
      py::arg("max_rank") = -1);

  m.def(
      "trace_sqrt_product",
      [](const gm::PsdFactor& f1, const gm::PsdFactor& f2, bool force_svd) {
        if (f1.dim != f2.dim) throw std::invalid_argument("the two factors have different dimensions");
        gm::TraceSqrtResult r;
        {
          py::gil_scoped_release nogil;
          r = gm::trace_sqrt_product(f1, f2, force_svd);
        }
        return py::make_tuple(r.trace_sqrt, r.used_svd, r.min_sv, r.max_sv);
      },
      py::arg("factor1"), py::arg("factor2"), py::arg("force_svd") = false);

  // ------------------------------------------------------------------ pairwise
  m.def(
      "knn",
      [](const py::array& x, int xcode, const py::array& y, int ycode, bool self, const OptF64& center, int64_t k,
         const OptF64& col_weight, int64_t workspace_bytes, int64_t max_tile_rows, int64_t max_tile_cols,
         OptCounter progress, int64_t k_y) -> py::tuple {
        gm::KnnParams p;
        p.x = make_view(x, xcode, "x");
        p.y = self ? p.x : make_view(y, ycode, "y");
        p.self = self;
        p.center = opt_vector(center, p.x.cols, "center");
        p.k = k;
        p.col_weight = opt_vector(col_weight, p.y.rows, "col_weight");
        p.tiles = tiles_from(workspace_bytes, max_tile_rows, max_tile_cols, counter_ptr(progress));
        if (k < 1) throw std::invalid_argument("k must be >= 1");
        if (k_y < 0) throw std::invalid_argument("k_y must be >= 0");
        py::array_t<double> values({p.x.rows, k});
        py::array_t<int64_t> index({p.x.rows, k});
        p.out_value = values.mutable_data();
        p.out_index = index.mutable_data();
        py::array_t<double> y_values({k_y ? p.y.rows : 0, k_y});
        py::array_t<int64_t> y_index({k_y ? p.y.rows : 0, k_y});
        if (k_y) {  // both sides: the k_y nearest rows of x of every row of y, from the same tiles
          p.k_y = k_y;
          p.out_y_value = y_values.mutable_data();
          p.out_y_index = y_index.mutable_data();
        }
        {
          py::gil_scoped_release nogil;
          gm::knn(p);
        }
        if (k_y) return py::make_tuple(values, index, p.rechecked, y_values, y_index);
        return py::make_tuple(values, index, p.rechecked);
      },
      py::arg("x"), py::arg("xcode"), py::arg("y"), py::arg("ycode"), py::arg("self"), py::arg("center"),
      py::arg("k"), py::arg("col_weight") = py::none(), py::arg("workspace_bytes") = int64_t(256) << 20,
      py::arg("max_tile_rows") = 0, py::arg("max_tile_cols") = 0, py::arg("progress") = py::none(),
      py::arg("k_y") = 0);

  m.def(
      "cross",
      [](const py::array& x, int xcode, const py::array& y, int ycode, const OptF64& center,
         const OptF64& col_radius2, const OptF64& row_radius2, bool col_min, bool row_min, bool strict,
         int64_t workspace_bytes, int64_t max_tile_rows, int64_t max_tile_cols, OptCounter progress,
         std::optional<py::array_t<int64_t, py::array::c_style | py::array::forcecast>> col_multiplicity) {
        gm::CrossParams p;
        p.strict = strict;
        p.x = make_view(x, xcode, "x");
        p.y = make_view(y, ycode, "y");
        p.center = opt_vector(center, p.x.cols, "center");
        p.col_radius2 = opt_vector(col_radius2, p.y.rows, "col_radius2");
        p.row_radius2 = opt_vector(row_radius2, p.x.rows, "row_radius2");
        if (col_multiplicity) {
          if (col_multiplicity->ndim() != 1 || col_multiplicity->shape(0) != p.y.rows)
            throw std::invalid_argument("col_multiplicity must have one entry per column row");
          p.col_multiplicity = col_multiplicity->data();
        }
        p.tiles = tiles_from(workspace_bytes, max_tile_rows, max_tile_cols, counter_ptr(progress));
        gm::bindings::CrossOutputs out(p, col_min, row_min);
        {
          py::gil_scoped_release nogil;
          gm::cross(p);
        }
        return out.to_dict(p);
      },
      py::arg("x"), py::arg("xcode"), py::arg("y"), py::arg("ycode"), py::arg("center"),
      py::arg("col_radius2") = py::none(), py::arg("row_radius2") = py::none(), py::arg("col_min") = false,
      py::arg("row_min") = false, py::arg("strict") = false, py::arg("workspace_bytes") = int64_t(256) << 20,
      py::arg("max_tile_rows") = 0, py::arg("max_tile_cols") = 0, py::arg("progress") = py::none(),
      py::arg("col_multiplicity") = py::none());

  m.def(
      "pairs_within",
      [](const py::array& x, int xcode, const py::array& y, int ycode, const OptF64& center,
         const OptF64& row_radius2, const OptF64& col_radius2, int64_t workspace_bytes, int64_t max_tile_rows,
         int64_t max_tile_cols, OptCounter progress) {
        gm::PairsParams p;
        p.x = make_view(x, xcode, "x");
        p.y = make_view(y, ycode, "y");
        p.center = opt_vector(center, p.x.cols, "center");
        p.row_radius2 = opt_vector(row_radius2, p.x.rows, "row_radius2");
        p.col_radius2 = opt_vector(col_radius2, p.y.rows, "col_radius2");
        p.tiles = tiles_from(workspace_bytes, max_tile_rows, max_tile_cols, counter_ptr(progress));
        {
          py::gil_scoped_release nogil;
          gm::pairs_within(p);
        }
        const auto n = static_cast<py::ssize_t>(p.rows.size());
        py::array_t<int64_t> rows(n), cols(n);
        py::array_t<double> values(n);
        std::copy(p.rows.begin(), p.rows.end(), rows.mutable_data());
        std::copy(p.cols.begin(), p.cols.end(), cols.mutable_data());
        std::copy(p.values.begin(), p.values.end(), values.mutable_data());
        return py::make_tuple(rows, cols, values, p.rechecked);
      },
      py::arg("x"), py::arg("xcode"), py::arg("y"), py::arg("ycode"), py::arg("center"),
      py::arg("row_radius2") = py::none(), py::arg("col_radius2") = py::none(),
      py::arg("workspace_bytes") = int64_t(256) << 20, py::arg("max_tile_rows") = 0, py::arg("max_tile_cols") = 0,
      py::arg("progress") = py::none());

  m.def(
      "kernel_sum",
      [](const py::array& x, int xcode, const py::array& y, int ycode, bool self, bool include_diagonal, int kind,
         double gamma, double coef0, int degree, int64_t workspace_bytes, int64_t max_tile_rows, int64_t max_tile_cols,
         bool float32_products, OptCounter progress) {
        gm::KernelSumParams p;
        p.float32_products = float32_products;
        p.x = make_view(x, xcode, "x");
        p.y = self ? p.x : make_view(y, ycode, "y");
        p.self = self;
        p.include_diagonal = include_diagonal;
        p.kernel = gm::KernelSpec{static_cast<gm::KernelKind>(kind), gamma, coef0, degree};
        p.tiles = tiles_from(workspace_bytes, max_tile_rows, max_tile_cols, counter_ptr(progress));
        {
          py::gil_scoped_release nogil;
          gm::kernel_sum(p);
        }
        return p.sum;
      },
      py::arg("x"), py::arg("xcode"), py::arg("y"), py::arg("ycode"), py::arg("self"), py::arg("include_diagonal"),
      py::arg("kind"), py::arg("gamma"), py::arg("coef0") = 1.0, py::arg("degree") = 3,
      py::arg("workspace_bytes") = int64_t(256) << 20, py::arg("max_tile_rows") = 0, py::arg("max_tile_cols") = 0,
      py::arg("float32_products") = false, py::arg("progress") = py::none());

  m.def(
      "mmd_subsets",
      [](const py::array& x, int xcode, const py::array& y, int ycode,
         const py::array_t<int64_t, py::array::c_style | py::array::forcecast>& x_index,
         const py::array_t<int64_t, py::array::c_style | py::array::forcecast>& y_index, int kind, double gamma,
         double coef0, int degree, bool float32_products, OptCounter progress) {
        gm::MmdSubsetsParams p;
        p.float32_products = float32_products;
        p.progress = counter_ptr(progress);
        p.x = make_view(x, xcode, "x");
        p.y = make_view(y, ycode, "y");
        if (x_index.ndim() != 2 || y_index.ndim() != 2 || x_index.shape(0) != y_index.shape(0))
          throw std::invalid_argument("subset indices must be (subsets, size) arrays with equal subset counts");
        p.subsets = x_index.shape(0);
        p.mx = x_index.shape(1);
        p.my = y_index.shape(1);
        for (py::ssize_t i = 0; i < x_index.size(); ++i)
          if (x_index.data()[i] < 0 || x_index.data()[i] >= p.x.rows) throw std::invalid_argument("x index out of range");
        for (py::ssize_t i = 0; i < y_index.size(); ++i)
          if (y_index.data()[i] < 0 || y_index.data()[i] >= p.y.rows) throw std::invalid_argument("y index out of range");
        p.x_index = x_index.data();
        p.y_index = y_index.data();
        p.kernel = gm::KernelSpec{static_cast<gm::KernelKind>(kind), gamma, coef0, degree};
        py::array_t<double> out(p.subsets);
        p.out = out.mutable_data();
        {
          py::gil_scoped_release nogil;
          gm::mmd_subsets(p);
        }
        return out;
      },
      py::arg("x"), py::arg("xcode"), py::arg("y"), py::arg("ycode"), py::arg("x_index"), py::arg("y_index"),
      py::arg("kind"), py::arg("gamma"), py::arg("coef0") = 1.0, py::arg("degree") = 3,
      py::arg("float32_products") = false, py::arg("progress") = py::none());

  m.def(
      "symmetry_report",
      [](const F64Array& s) {
        check_square(s, "matrix");
        gm::SymmetryReport r;
        {
          py::gil_scoped_release nogil;
          r = gm::symmetry_report(s.data(), s.shape(0));
        }
        return py::make_tuple(r.max_asymmetry, r.max_abs, r.nonfinite, r.first_nonfinite_row);
      },
      py::arg("matrix"));

  m.def(
      "symmetric_eigenvalues",
      [](const F64Array& s) {
        check_square(s, "matrix");
        std::vector<double> w;
        {
          py::gil_scoped_release nogil;
          w = gm::symmetric_eigenvalues(s.data(), s.shape(0));
        }
        return py::array_t<double>(py::ssize_t(w.size()), w.data());
      },
      py::arg("matrix"));


}
