#include "moments/moments.h"

#include <cblas.h>
#include <omp.h>

#include <algorithm>
#include <vector>

namespace gm {
namespace {

// Adds (nb, mean_b, scatter_b) into the state; scatter_b is the lower triangle of a d x d matrix in T.
template <typename T>
void merge_lower(MomentsState& st, int64_t nb, const double* mean_b, const T* scatter_b) {
  const int64_t d = st.dim;
  if (nb == 0) return;
  const int64_t na = st.n;
  const double n = double(na) + double(nb);
  std::vector<double> delta(d);
  for (int64_t j = 0; j < d; ++j) delta[j] = mean_b[j] - st.mean[j];
  const double coef = double(na) * double(nb) / n;
  double* m2 = st.m2;
#pragma omp parallel for schedule(dynamic, 16) num_threads(num_threads())
  for (int64_t i = 0; i < d; ++i) {
    const double di = coef * delta[i];
    double* row = m2 + i * d;
    const T* brow = scatter_b ? scatter_b + i * d : nullptr;
    if (brow) {
      for (int64_t j = 0; j <= i; ++j) row[j] += double(brow[j]) + di * delta[j];
    } else {
      for (int64_t j = 0; j <= i; ++j) row[j] += di * delta[j];
    }
  }
  const double wb = double(nb) / n;
  for (int64_t j = 0; j < d; ++j) st.mean[j] += wb * delta[j];
  st.n = na + nb;
}

void syrk_lower(int64_t d, int64_t c, const double* z, double* out) {
  scipy_cblas_dsyrk(CblasRowMajor, CblasLower, CblasTrans, blasint(d), blasint(c), 1.0, z, blasint(d), 0.0, out,
                    blasint(d));
}

template <typename T>
void update_impl(MomentsState& st, const MomentsUpdateParams& p) {
  const int64_t d = st.dim;
  const int64_t total = p.rows ? p.num_rows : p.x.rows;
  int64_t chunk = p.chunk_rows > 0 ? p.chunk_rows : 4096;
  chunk = std::max<int64_t>(1, std::min(chunk, total));
  std::vector<T> z(static_cast<size_t>(chunk) * d);
  std::vector<T> scatter;  // allocated on first chunk with more than one row
  std::vector<double> cmean(d), rowbuf(d);
  const int nt = num_threads();
  for (int64_t start = 0; start < total; start += chunk) {
    const int64_t c = std::min(chunk, total - start);
    // chunk mean in float64 (fixed order: deterministic for any thread count)
    std::fill(cmean.begin(), cmean.end(), 0.0);
    for (int64_t i = 0; i < c; ++i) {
      const int64_t r = p.rows ? p.rows[start + i] : start + i;
      load_row<double>(p.x, r, nullptr, rowbuf.data());
      for (int64_t j = 0; j < d; ++j) cmean[j] += rowbuf[j];
    }
    for (int64_t j = 0; j < d; ++j) cmean[j] /= double(c);
    if (c == 1) {
      merge_lower<T>(st, 1, cmean.data(), nullptr);
      continue;
    }
#pragma omp parallel for schedule(static) num_threads(nt)
    for (int64_t i = 0; i < c; ++i) {
      const int64_t r = p.rows ? p.rows[start + i] : start + i;
      load_row<T>(p.x, r, cmean.data(), z.data() + i * d);
    }
    if (scatter.empty()) scatter.resize(static_cast<size_t>(d) * d);
    syrk_lower(d, c, z.data(), scatter.data());
    merge_lower<T>(st, c, cmean.data(), scatter.data());
  }
}

}  // namespace

void moments_update(MomentsState& st, const MomentsUpdateParams& p) {
  GM_ASSERT(st.mean && st.m2 && st.dim > 0);
  GM_REQUIRE(p.x.cols == st.dim, "batch has " + std::to_string(p.x.cols) + " features, the statistics have " +
                                     std::to_string(st.dim));
  if (p.rows) {
    for (int64_t i = 0; i < p.num_rows; ++i)
      GM_REQUIRE(p.rows[i] >= 0 && p.rows[i] < p.x.rows, "row index out of range");
  }
  // Every dtype is widened to float64 before the products: float32 products would leave the covariance
  // ~1e-7 off in relative terms, far outside the Frechet distance's 1e-9 contract (README, "What exact
  // means"), and would make singular covariances (n <= d) look indefinite.
  update_impl<double>(st, p);
}

void moments_merge(MomentsState& st, int64_t nb, const double* mean_b, const double* m2_b) {
  GM_REQUIRE(nb >= 0, "cannot merge a negative count");
  if (nb == 0) return;
  if (st.n == 0) {
    std::copy(mean_b, mean_b + st.dim, st.mean);
    std::copy(m2_b, m2_b + st.dim * st.dim, st.m2);
    st.n = nb;
    return;
  }
  merge_lower<double>(st, nb, mean_b, m2_b);
}

}  // namespace gm
