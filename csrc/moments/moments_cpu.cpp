#include "moments/moments.h"

#include <cblas.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <vector>

namespace gm {
namespace {

// Adds (nb, mean_b, scatter_b) into the state; scatter_b is the lower triangle of a d x d matrix (null: one row).
void merge_lower(MomentsState& st, int64_t nb, const double* mean_b, const double* scatter_b) {
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
    const double* brow = scatter_b ? scatter_b + i * d : nullptr;
    if (brow) {
      for (int64_t j = 0; j <= i; ++j) row[j] += brow[j] + di * delta[j];
    } else {
      for (int64_t j = 0; j <= i; ++j) row[j] += di * delta[j];
    }
  }
  const double wb = double(nb) / n;
  for (int64_t j = 0; j < d; ++j) st.mean[j] += wb * delta[j];
  st.n = na + nb;
}


constexpr int64_t kColBlock = 128;  // columns per OpenMP task when loading a chunk

// Rows [start, start + c) of the update (through p.rows when given), columns split among the threads:
// z[i, :] = x[row] - shift, and colsum[j] += z[i, j] in row order (each column summed by one thread, so the
// sums do not depend on the thread count). NaN/Inf values are counted into p.nonfinite / p.first_nonfinite.
void load_chunk(MomentsUpdateParams& p, int64_t start, int64_t c, const double* shift, double* z, double* colsum,
                int nt) {
  const int64_t d = p.x.cols;
  const int64_t blocks = (d + kColBlock - 1) / kColBlock;
  std::vector<int64_t> bad(static_cast<size_t>(blocks), 0), first(static_cast<size_t>(blocks), -1);
#pragma omp parallel for schedule(static) num_threads(nt)
  for (int64_t b = 0; b < blocks; ++b) {
    const int64_t j0 = b * kColBlock, j1 = std::min(d, j0 + kColBlock);
    for (int64_t i = 0; i < c; ++i) {
      const int64_t r = p.rows ? p.rows[start + i] : start + i;
      double* out = z + i * d + j0;
      load_row_cols<double>(p.x, r, j0, j1, shift, out);
      double s = 0.0;
      for (int64_t j = 0; j < j1 - j0; ++j) {
        colsum[j0 + j] += out[j];
        s += out[j] * 0.0;  // NaN iff some value is NaN or +-Inf
      }
      if (std::isnan(s)) {
        for (int64_t j = 0; j < j1 - j0; ++j) bad[b] += std::isfinite(out[j]) ? 0 : 1;
        if (first[b] < 0) first[b] = start + i;
      }
    }
  }
  for (int64_t b = 0; b < blocks; ++b) {
    p.nonfinite += bad[b];
    if (first[b] >= 0 && (p.first_nonfinite < 0 || first[b] < p.first_nonfinite)) p.first_nonfinite = first[b];
  }
}

// Every row of the call is centred on one float64 shift (the mean of its first chunk) and the products are
// accumulated by one float64 syrk per chunk into a running sum (beta = 1): the call's scatter about its own
// mean is that sum minus n (m - shift)(m - shift)^T, merged once into the state with Chan's formula. The
// shift keeps the subtraction benign (|m - shift| is of the order of the spread, not of the mean), and float64
// products keep the covariance within float64 rounding of the exact one for every input dtype.
void update_impl(MomentsState& st, MomentsUpdateParams& p) {
  const int64_t d = st.dim;
  const int64_t total = p.rows ? p.num_rows : p.x.rows;
  if (total == 0) return;
  int64_t chunk = p.chunk_rows > 0 ? p.chunk_rows : 2048;  // measured fastest here at d = 2048
  chunk = std::max<int64_t>(1, std::min(chunk, total));
  const int nt = num_threads();
  std::vector<double> z(static_cast<size_t>(chunk) * d), shift(d, 0.0), colsum(d, 0.0);
  // shift: the float64 mean of the first chunk
  load_chunk(p, 0, chunk, nullptr, z.data(), shift.data(), nt);
  for (int64_t j = 0; j < d; ++j) shift[j] /= double(chunk);
  if (p.nonfinite) return;  // the state stays as it was; the caller reports the first bad row
  if (total == 1) {
    merge_lower(st, 1, shift.data(), nullptr);
    return;
  }
  std::vector<double> acc(static_cast<size_t>(d) * d, 0.0);
  for (int64_t start = 0; start < total; start += chunk) {
    const int64_t c = std::min(chunk, total - start);
    load_chunk(p, start, c, shift.data(), z.data(), colsum.data(), nt);
    if (p.nonfinite) return;
    scipy_cblas_dsyrk(CblasRowMajor, CblasLower, CblasTrans, blasint(d), blasint(c), 1.0, z.data(), blasint(d), 1.0,
                      acc.data(), blasint(d));
    advance_progress(p.progress, c);
  }
  // scatter about the call's own mean, then one merge
  std::vector<double> mean(d);
  for (int64_t j = 0; j < d; ++j) colsum[j] /= double(total);  // m - shift
  const double nn = double(total);
#pragma omp parallel for schedule(dynamic, 16) num_threads(nt)
  for (int64_t i = 0; i < d; ++i) {
    double* row = acc.data() + i * d;
    const double di = nn * colsum[i];
    for (int64_t j = 0; j <= i; ++j) row[j] -= di * colsum[j];
  }
  for (int64_t j = 0; j < d; ++j) mean[j] = shift[j] + colsum[j];
  for (int64_t j = 0; j < d; ++j) {  // a diagonal entry (a sum of squares) or a mean that overflowed
    if (!std::isfinite(acc[j * d + j]) || !std::isfinite(mean[j])) {
      p.overflow = true;
      return;
    }
  }
  if (st.n > 0) {  // the merge adds n_a n_b / n (mean_b - mean_a)^2 to the diagonal
    const double coef = double(st.n) * double(total) / (double(st.n) + double(total));
    for (int64_t j = 0; j < d; ++j) {
      const double dm = mean[j] - st.mean[j];
      if (!std::isfinite(st.m2[j * d + j] + acc[j * d + j] + coef * dm * dm)) {
        p.overflow = true;
        return;
      }
    }
  }
  moments_merge(st, total, mean.data(), acc.data());
}

}  // namespace

void moments_update(MomentsState& st, MomentsUpdateParams& p) {
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
  update_impl(st, p);
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
  merge_lower(st, nb, mean_b, m2_b);
}

}  // namespace gm
