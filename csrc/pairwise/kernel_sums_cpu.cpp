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

// out (m x n, row-major, leading dimension ldc) = a (m x d) . b (n x d)^T, in T's precision.
inline void gemm_nt(int64_t m, int64_t n, int64_t d, const double* a, const double* b, double* out, int64_t ldc) {
  scipy_cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, blasint(m), blasint(n), blasint(d), 1.0, a, blasint(d),
                    b, blasint(d), 0.0, out, blasint(ldc));
}
inline void gemm_nt(int64_t m, int64_t n, int64_t d, const float* a, const float* b, float* out, int64_t ldc) {
  scipy_cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, blasint(m), blasint(n), blasint(d), 1.0f, a, blasint(d),
                    b, blasint(d), 0.0f, out, blasint(ldc));
}

// Rows of a feature matrix in the product precision T, with their squared norms (float64, from the T values).
template <typename T>
struct Block {
  int64_t rows = 0;
  std::vector<T> data;
  std::vector<double> norm;
};

template <typename T>
void fill_rows(const MatView& v, const int64_t* index, int64_t begin, int64_t rows, Block<T>& b, int64_t offset,
               int nt) {
  const int64_t d = v.cols;
#pragma omp parallel for schedule(static) num_threads(nt)
  for (int64_t i = 0; i < rows; ++i) {
    T* out = b.data.data() + (offset + i) * d;
    load_row<T>(v, index ? index[begin + i] : begin + i, nullptr, out);
    double s = 0.0;
    for (int64_t j = 0; j < d; ++j) s += double(out[j]) * double(out[j]);
    b.norm[offset + i] = s;
  }
}

template <typename T>
void resize(Block<T>& b, int64_t rows, int64_t d) {
  b.rows = rows;
  b.data.resize(static_cast<size_t>(rows * d));
  b.norm.resize(static_cast<size_t>(rows));
}

void check_kernel(const KernelSpec& k) {
  GM_REQUIRE(k.kind == KernelKind::Polynomial || k.kind == KernelKind::Rbf, "unknown kernel");
  GM_REQUIRE(std::isfinite(k.gamma) && std::isfinite(k.coef0), "kernel parameters must be finite");
  GM_REQUIRE(k.kind != KernelKind::Polynomial || (k.degree >= 1 && k.degree <= 16),
             "polynomial degree must be in [1, 16]");
  GM_REQUIRE(k.kind != KernelKind::Rbf || k.gamma > 0, "RBF gamma must be > 0");
}

// Row strips handed to the threads: `rows` rows in strips of `strip`; each strip's cost grows with its
// column count `cols(strip)`, so strips are issued costliest first.
struct Strip {
  int64_t r0, r1, cols;
};

template <typename T>
double kernel_sum_impl(KernelSumParams& p) {
  const int64_t n = p.x.rows, m = p.y.rows, d = p.x.cols;
  const int nt = num_threads();
  // tile of T x T Gram values plus the two row blocks, within the workspace budget
  int64_t tile = 2048;
  while (tile > 64 && int64_t(sizeof(T)) * (tile * tile + 2 * tile * d) > p.tiles.workspace_bytes) tile -= tile / 4;
  int64_t tr = std::min(tile, n), tc = std::min(tile, m);
  if (p.tiles.max_tile_rows > 0) tr = std::min(tr, p.tiles.max_tile_rows);
  if (p.tiles.max_tile_cols > 0) tc = std::min(tc, p.tiles.max_tile_cols);
  if (p.self) tr = tc = std::min(tr, tc);
  constexpr int64_t kStrip = sizeof(T) == 8 ? 128 : 256;
  std::vector<T> gram(static_cast<size_t>(tr * tc));
  Block<T> bx, by;
  std::vector<double> tile_sums;  // one per tile, added in tile order: deterministic for any thread count
  BlasSingleThread single;
  for (int64_t i0 = 0; i0 < n; advance_progress(p.tiles.progress, std::min(tr, n - i0)), i0 += tr) {
    resize(bx, std::min(tr, n - i0), d);
    fill_rows(p.x, nullptr, i0, bx.rows, bx, 0, nt);
    for (int64_t j0 = p.self ? i0 : 0; j0 < m; j0 += tc) {
      const bool diag = p.self && i0 == j0;
      if (!diag) {
        resize(by, std::min(tc, m - j0), d);
        fill_rows(p.y, nullptr, j0, by.rows, by, 0, nt);
      }
      const Block<T>& yb = diag ? bx : by;
      const int64_t rows = bx.rows, cols = yb.rows;
      const int64_t strips = (rows + kStrip - 1) / kStrip;
      std::vector<double> part(static_cast<size_t>(strips), 0.0);
#pragma omp parallel for schedule(dynamic, 1) num_threads(nt)
      for (int64_t s = 0; s < strips; ++s) {
        const int64_t r0 = s * kStrip, r1 = std::min(rows, r0 + kStrip);
        // on a diagonal tile only the columns up to the strip's last row are needed
        const int64_t c1 = diag ? r1 : cols;
        T* g = gram.data() + r0 * tc;
        gemm_nt(r1 - r0, c1, d, bx.data.data() + r0 * d, yb.data.data(), g, tc);
        double acc = 0.0;
        for (int64_t q = r0; q < r1; ++q) {
          const T* row = gram.data() + q * tc;
          const int64_t cend = diag ? q : cols;  // strictly below the diagonal; the diagonal separately
          double racc = 0.0;
          for (int64_t c = 0; c < cend; ++c) racc += kernel_value(p.kernel, double(row[c]), bx.norm[q], yb.norm[c]);
          if (diag) {
            racc *= 2.0;  // the pair (q, c) and (c, q)
            if (p.include_diagonal) racc += kernel_value(p.kernel, double(row[q]), bx.norm[q], bx.norm[q]);
          }
          acc += racc;
        }
        part[s] = acc;
      }
      double t = 0.0;
      for (double v : part) t += v;
      tile_sums.push_back((p.self && !diag) ? 2.0 * t : t);  // an off-diagonal tile stands for both halves
    }
  }
  double total = 0.0;
  for (double v : tile_sums) total += v;
  return total;
}

template <typename T>
void mmd_subsets_impl(MmdSubsetsParams& p) {
  const int64_t d = p.x.cols, N = p.mx + p.my;
  const int nt = num_threads();
  constexpr int64_t kStrip = sizeof(T) == 8 ? 128 : 256;  // measured best for dgemm / sgemm here
  const int64_t strips = (N + kStrip - 1) / kStrip;
  Block<T> z;
  resize(z, N, d);
  // per-thread Gram strip: kStrip rows x N columns
  std::vector<std::vector<T>> gram(static_cast<size_t>(nt), std::vector<T>(static_cast<size_t>(kStrip * N)));
  std::vector<double> sxx(strips), syy(strips), sxy(strips);
  BlasSingleThread single;
  for (int64_t s = 0; s < p.subsets; ++s) {
    fill_rows(p.x, p.x_index + s * p.mx, 0, p.mx, z, 0, nt);
    fill_rows(p.y, p.y_index + s * p.my, 0, p.my, z, p.mx, nt);
#pragma omp parallel for schedule(dynamic, 1) num_threads(nt)
    for (int64_t b = strips - 1; b >= 0; --b) {  // longest strips first
      const int64_t r0 = b * kStrip, r1 = std::min(N, r0 + kStrip);
      T* g = gram[static_cast<size_t>(omp_get_thread_num())].data();
      // rows r0..r1 against columns 0..r1 (the lower triangle of the stacked Gram matrix, plus a sliver)
      gemm_nt(r1 - r0, r1, d, z.data.data() + r0 * d, z.data.data(), g, N);
      double ax = 0.0, ay = 0.0, axy = 0.0;
      for (int64_t i = r0; i < r1; ++i) {
        const T* row = g + (i - r0) * N;
        const int64_t jx = std::min(i, p.mx);
        double rx = 0.0;
        for (int64_t j = 0; j < jx; ++j) rx += kernel_value(p.kernel, double(row[j]), z.norm[i], z.norm[j]);
        if (i < p.mx) {
          ax += rx;
        } else {
          axy += rx;
          double ry = 0.0;
          for (int64_t j = p.mx; j < i; ++j) ry += kernel_value(p.kernel, double(row[j]), z.norm[i], z.norm[j]);
          ay += ry;
        }
      }
      sxx[b] = ax;
      syy[b] = ay;
      sxy[b] = axy;
    }
    double tx = 0.0, ty = 0.0, txy = 0.0;
    for (int64_t b = 0; b < strips; ++b) {
      tx += sxx[b];
      ty += syy[b];
      txy += sxy[b];
    }
    const double mx = double(p.mx), my = double(p.my);
    p.out[s] = 2.0 * tx / (mx * (mx - 1.0)) + 2.0 * ty / (my * (my - 1.0)) - 2.0 * txy / (mx * my);
    advance_progress(p.progress, 1);
  }
}

}  // namespace

void kernel_sum(KernelSumParams& p) {
  GM_REQUIRE(p.x.cols == p.y.cols, "the two feature sets have different dimensions");
  check_kernel(p.kernel);
  p.sum = p.float32_products ? kernel_sum_impl<float>(p) : kernel_sum_impl<double>(p);
}

void mmd_subsets(MmdSubsetsParams& p) {
  GM_REQUIRE(p.x.cols == p.y.cols, "the two feature sets have different dimensions");
  GM_REQUIRE(p.mx >= 2 && p.my >= 2, "each subset needs at least 2 samples");
  check_kernel(p.kernel);
  if (p.float32_products) {
    mmd_subsets_impl<float>(p);
  } else {
    mmd_subsets_impl<double>(p);
  }
}

}  // namespace gm
