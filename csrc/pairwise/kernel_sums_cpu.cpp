#include <cblas.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "pairwise/pairwise.h"

namespace gm {
namespace {

inline double kernel_value(const KernelSpec& k, double dot, double nx, double ny) {
  if (k.kind == KernelKind::Polynomial) {
    const double b = k.gamma * dot + k.coef0;
    double v = 1.0;
    for (int i = 0; i < k.degree; ++i) v *= b;
    return v;
  }
  return std::exp(-k.gamma * std::max(nx + ny - 2.0 * dot, 0.0));
}

struct Block64 {
  int64_t rows = 0;
  std::vector<double> data, norm;
};

void fill64(const MatView& v, int64_t begin, int64_t rows, Block64& b, int nt) {
  const int64_t d = v.cols;
  b.rows = rows;
  b.data.resize(static_cast<size_t>(rows * d));
  b.norm.resize(static_cast<size_t>(rows));
#pragma omp parallel for schedule(static) num_threads(nt)
  for (int64_t i = 0; i < rows; ++i) {
    double* out = b.data.data() + i * d;
    load_row<double>(v, begin + i, nullptr, out);
    double s = 0.0;
    for (int64_t j = 0; j < d; ++j) s += out[j] * out[j];
    b.norm[i] = s;
  }
}

void check_kernel(const KernelSpec& k) {
  GM_REQUIRE(k.kind == KernelKind::Polynomial || k.kind == KernelKind::Rbf, "unknown kernel");
  GM_REQUIRE(std::isfinite(k.gamma) && std::isfinite(k.coef0), "kernel parameters must be finite");
  GM_REQUIRE(k.kind != KernelKind::Polynomial || (k.degree >= 1 && k.degree <= 16),
             "polynomial degree must be in [1, 16]");
  GM_REQUIRE(k.kind != KernelKind::Rbf || k.gamma > 0, "RBF gamma must be > 0");
}

}  // namespace

void kernel_sum(KernelSumParams& p) {
  GM_REQUIRE(p.x.cols == p.y.cols, "the two feature sets have different dimensions");
  check_kernel(p.kernel);
  const int64_t n = p.x.rows, m = p.y.rows, d = p.x.cols;
  const int nt = num_threads();
  int64_t T = 2048;
  while (T > 64 && 8 * T * T + 16 * T * d > p.tiles.workspace_bytes) T -= T / 4;
  int64_t tr = std::min(T, n), tc = std::min(T, m);
  if (p.tiles.max_tile_rows > 0) tr = std::min(tr, p.tiles.max_tile_rows);
  if (p.tiles.max_tile_cols > 0) tc = std::min(tc, p.tiles.max_tile_cols);
  if (p.self) tr = tc = std::min(tr, tc);
  std::vector<double> G(static_cast<size_t>(tr * tc));
  Block64 bx, by;
  double total = 0.0;
  BlasSingleThread single;
  for (int64_t i0 = 0; i0 < n; i0 += tr) {
    fill64(p.x, i0, std::min(tr, n - i0), bx, nt);
    for (int64_t j0 = p.self ? i0 : 0; j0 < m; j0 += tc) {
      const bool diag = p.self && i0 == j0;
      if (!diag) fill64(p.y, j0, std::min(tc, m - j0), by, nt);
      const Block64& yb = diag ? bx : by;
      const int64_t rows = bx.rows, cols = yb.rows;
      const int64_t srows = std::max<int64_t>(1, (rows + nt - 1) / nt);
      const int64_t strips = (rows + srows - 1) / srows;
      std::vector<double> part(static_cast<size_t>(strips), 0.0);
#pragma omp parallel for schedule(static, 1) num_threads(nt)
      for (int64_t s = 0; s < strips; ++s) {
        const int64_t r0 = s * srows, r1 = std::min(rows, r0 + srows);
        scipy_cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, blasint(r1 - r0), blasint(cols), blasint(d), 1.0,
                          bx.data.data() + r0 * d, blasint(d), yb.data.data(), blasint(d), 0.0,
                          G.data() + r0 * cols, blasint(cols));
        double acc = 0.0;
        for (int64_t q = r0; q < r1; ++q) {
          double row = 0.0;
          const double* g = G.data() + q * cols;
          for (int64_t c = 0; c < cols; ++c) {
            if (diag && c == q && !p.include_diagonal) continue;
            row += kernel_value(p.kernel, g[c], bx.norm[q], yb.norm[c]);
          }
          acc += row;
        }
        part[s] = acc;
      }
      double tile = 0.0;
      for (double v : part) tile += v;
      total += (p.self && !diag) ? 2.0 * tile : tile;  // an off-diagonal tile stands for both halves
    }
  }
  p.sum = total;
}

void mmd_subsets(MmdSubsetsParams& p) {
  GM_REQUIRE(p.x.cols == p.y.cols, "the two feature sets have different dimensions");
  GM_REQUIRE(p.mx >= 2 && p.my >= 2, "each subset needs at least 2 samples");
  check_kernel(p.kernel);
  const int64_t d = p.x.cols, N = p.mx + p.my;
  const int nt = num_threads();
  std::vector<double> Z(static_cast<size_t>(N * d)), K(static_cast<size_t>(N * N)), norm(static_cast<size_t>(N));
  for (int64_t s = 0; s < p.subsets; ++s) {
    const int64_t* xi = p.x_index + s * p.mx;
    const int64_t* yi = p.y_index + s * p.my;
#pragma omp parallel for schedule(static) num_threads(nt)
    for (int64_t i = 0; i < N; ++i) {
      if (i < p.mx) {
        load_row<double>(p.x, xi[i], nullptr, Z.data() + i * d);
      } else {
        load_row<double>(p.y, yi[i - p.mx], nullptr, Z.data() + i * d);
      }
    }
    scipy_cblas_dsyrk(CblasRowMajor, CblasLower, CblasNoTrans, blasint(N), blasint(d), 1.0, Z.data(), blasint(d), 0.0,
                      K.data(), blasint(N));
    for (int64_t i = 0; i < N; ++i) norm[i] = K[i * N + i];
    double sxx = 0.0, syy = 0.0, sxy = 0.0;
#pragma omp parallel for schedule(dynamic, 32) num_threads(nt) reduction(+ : sxx, syy, sxy)
    for (int64_t i = 1; i < N; ++i) {
      double rx = 0.0, rxy = 0.0;
      const double* row = K.data() + i * N;
      const int64_t jx = std::min(i, p.mx);
      for (int64_t j = 0; j < jx; ++j) {
        const double v = kernel_value(p.kernel, row[j], norm[i], norm[j]);
        if (i < p.mx) rx += v; else rxy += v;
      }
      double ry = 0.0;
      for (int64_t j = p.mx; j < i; ++j) ry += kernel_value(p.kernel, row[j], norm[i], norm[j]);
      sxx += rx;
      sxy += rxy;
      syy += ry;
    }
    const double mx = double(p.mx), my = double(p.my);
    p.out[s] = 2.0 * sxx / (mx * (mx - 1.0)) + 2.0 * syy / (my * (my - 1.0)) - 2.0 * sxy / (mx * my);
  }
}

}  // namespace gm
