#include "linalg/linalg.h"

#include <cblas.h>
#include <lapacke.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <sstream>
#include <stdexcept>

#include "common/common.h"

namespace gm {
namespace {

// Symmetric matrices are the same in row- and column-major order; LAPACK runs column-major natively,
// so every call below uses LAPACK_COL_MAJOR and avoids LAPACKE's transposed copies.
std::vector<double> eigvals_inplace(std::vector<double>& a, int64_t n) {
  if (n == 0) return {};
  std::vector<double> w(static_cast<size_t>(n));
  // dsyevd with jobz='N' (tridiagonalisation + dsterf); the 2-stage variant was slower here at d=2048.
  const lapack_int info = scipy_LAPACKE_dsyevd(LAPACK_COL_MAJOR, 'N', 'L', lapack_int(n), a.data(), lapack_int(n),
                                               w.data());
  if (info < 0) throw_internal(__FILE__, __LINE__, "dsyevd argument error");
  if (info > 0) throw std::runtime_error("LAPACK dsyevd failed to converge");
  return w;
}

double kInfinity() { return std::numeric_limits<double>::infinity(); }
constexpr double kEps = 0x1p-52;

std::string fmt(double v) {
  std::ostringstream os;
  os.precision(6);
  os << v;
  return os.str();
}

}  // namespace

SymmetryReport symmetry_report(const double* S, int64_t d) {
  SymmetryReport r;
  for (int64_t i = 0; i < d; ++i) {
    bool row_bad = false;
    for (int64_t j = 0; j < d; ++j) {
      const double v = S[i * d + j];
      if (!std::isfinite(v)) {
        row_bad = true;
        ++r.nonfinite;
        continue;
      }
      r.max_abs = std::max(r.max_abs, std::abs(v));
      if (j < i && std::isfinite(S[j * d + i])) r.max_asymmetry = std::max(r.max_asymmetry, std::abs(v - S[j * d + i]));
    }
    if (row_bad && r.first_nonfinite_row < 0) r.first_nonfinite_row = i;
  }
  return r;
}

std::vector<double> symmetric_eigenvalues(const double* S, int64_t d) {
  std::vector<double> a(S, S + d * d);
  return eigvals_inplace(a, d);
}

namespace {

[[noreturn]] void throw_not_psd(const char* name, double min_eig, double max_eig) {
  throw std::invalid_argument(std::string(name) + " is not positive semi-definite: it has an eigenvalue of " +
                              fmt(min_eig) + " (largest eigenvalue " + fmt(max_eig) + ")");
}

// S = V diag(w) V^T; keeps the eigenvalues above the rank tolerance (at most max_rank of them).
void eigen_factor(const double* S, int64_t d, const char* name, const PsdTolerance& tol, PsdFactor& f) {
  std::vector<double> v(S, S + d * d), w(static_cast<size_t>(d));
  const lapack_int info =
      scipy_LAPACKE_dsyevd(LAPACK_COL_MAJOR, 'V', 'L', lapack_int(d), v.data(), lapack_int(d), w.data());
  if (info < 0) throw_internal(__FILE__, __LINE__, "dsyevd argument error");
  if (info > 0) throw std::runtime_error("LAPACK dsyevd failed to converge");
  const double wmax = std::max(w.back(), 0.0);
  f.min_eig = w.front();
  if (w.front() < -tol.psd_tol * wmax) throw_not_psd(name, w.front(), w.back());
  const double cut = (tol.rank_tol > 0 ? tol.rank_tol : double(d) * kEps) * wmax;
  int64_t keep = 0;
  while (keep < d && w[d - 1 - keep] > cut) ++keep;
  if (tol.max_rank >= 0 && keep > tol.max_rank) {
    const double cut_off = w[d - 1 - tol.max_rank];  // the largest eigenvalue the cap would drop
    if (cut_off > tol.psd_tol * wmax) {
      throw std::invalid_argument(std::string(name) + " has rank above " + std::to_string(tol.max_rank) +
                                  " (eigenvalue " + fmt(cut_off) + " of largest " + fmt(wmax) +
                                  "), more than a covariance of " + std::to_string(tol.max_rank + 1) +
                                  " samples can have: the sample count does not match the matrix");
    }
    keep = tol.max_rank;
  }
  f.rank = keep;
  f.method = "eigen";
  f.A.assign(static_cast<size_t>(d * keep), 0.0);
  for (int64_t j = 0; j < keep; ++j) {  // largest first
    const int64_t src = d - 1 - j;
    const double s = std::sqrt(w[src]);
    for (int64_t i = 0; i < d; ++i) f.A[j * d + i] = v[src * d + i] * s;
  }
}

}  // namespace

PsdFactor psd_factor(const double* S, int64_t d, const char* name, const PsdTolerance& tol) {
  GM_ASSERT(d > 0);
  PsdFactor f;
  f.dim = d;
  double min_diag = S[0];
  for (int64_t i = 0; i < d; ++i) {
    const double v = S[i * d + i];
    f.trace += v;
    f.max_diag = std::max(f.max_diag, v);
    min_diag = std::min(min_diag, v);
  }
  if (min_diag < 0.0) {  // decided on S's own eigenvalues: lambda_min >= -psd_tol * lambda_max, or an error
    eigen_factor(S, d, name, tol, f);
    return f;
  }
  if (f.max_diag == 0.0 || tol.max_rank == 0) {  // the zero matrix (or one sample): rank 0
    f.rank = 0;
    f.method = "zero";
    return f;
  }
  const double rank_tol = (tol.rank_tol > 0 ? tol.rank_tol : double(d) * kEps) * f.max_diag;
  const bool may_be_full = tol.max_rank < 0 || tol.max_rank >= d;
  if (may_be_full) {
    f.A.assign(S, S + d * d);
    if (scipy_LAPACKE_dpotrf(LAPACK_COL_MAJOR, 'L', lapack_int(d), f.A.data(), lapack_int(d)) == 0) {
      double min_pivot2 = kInfinity();
      for (int64_t i = 0; i < d; ++i) min_pivot2 = std::min(min_pivot2, f.A[i * d + i] * f.A[i * d + i]);
      if (min_pivot2 > rank_tol) {  // clearly positive definite at this precision: no pivoting needed
        f.rank = d;
        f.lower_triangular = true;
        f.method = "cholesky";
        for (int64_t j = 0; j < d; ++j) std::fill(f.A.begin() + j * d, f.A.begin() + j * d + j, 0.0);
        return f;
      }
    }
  }
  // Singular or nearly so: pivoted Cholesky stops at the numerical rank (capped at max_rank).
  std::vector<double> L(S, S + d * d);
  std::vector<lapack_int> piv(static_cast<size_t>(d), 0);
  lapack_int rank = 0;
  const lapack_int info =
      scipy_LAPACKE_dpstrf(LAPACK_COL_MAJOR, 'L', lapack_int(d), L.data(), lapack_int(d), piv.data(), &rank, rank_tol);
  if (info < 0) throw_internal(__FILE__, __LINE__, "dpstrf argument error");
  int64_t r = rank;
  if (tol.max_rank >= 0) r = std::min<int64_t>(r, tol.max_rank);
  if (r < d) {
    // The factor covers S iff the Schur complement C - L2 L2^T of the block left out is negligible: for a
    // PSD S of this rank it is rounding noise. Anything larger (a clearly negative eigenvalue, or a rank
    // the cap cut off) is settled on S's own eigenvalues below.
    const int64_t m = d - r;
    std::vector<double> schur(static_cast<size_t>(m * m));
    for (int64_t j = 0; j < m; ++j)
      for (int64_t i = 0; i < m; ++i) schur[j * m + i] = S[int64_t(piv[r + i] - 1) * d + (piv[r + j] - 1)];
    if (r > 0)
      scipy_cblas_dsyrk(CblasColMajor, CblasLower, CblasNoTrans, blasint(m), blasint(r), -1.0, L.data() + r,
                        blasint(d), 1.0, schur.data(), blasint(m));
    const std::vector<double> w = eigvals_inplace(schur, m);
    const double bound = std::max(rank_tol, tol.psd_tol * f.max_diag);
    if (w.front() < -bound || w.back() > bound) {
      eigen_factor(S, d, name, tol, f);
      return f;
    }
  }
  f.rank = r;
  f.method = "pivoted";
  f.A.assign(static_cast<size_t>(d * r), 0.0);
  for (int64_t j = 0; j < r; ++j)
    for (int64_t i = j; i < d; ++i) f.A[j * d + (piv[i] - 1)] = L[j * d + i];  // rows back in S's order
  return f;
}

namespace {

// Singular values of the m x n column-major matrix c (destroyed), descending.
std::vector<double> singular_values(std::vector<double>& c, int64_t m, int64_t n) {
  const int64_t k = std::min(m, n);
  std::vector<double> s(static_cast<size_t>(k));
  if (k == 0) return s;
  const lapack_int info = scipy_LAPACKE_dgesdd(LAPACK_COL_MAJOR, 'N', lapack_int(m), lapack_int(n), c.data(),
                                               lapack_int(m), s.data(), nullptr, 1, nullptr, 1);
  if (info < 0) throw_internal(__FILE__, __LINE__, "dgesdd argument error");
  if (info > 0) throw std::runtime_error("LAPACK dgesdd failed to converge");
  return s;
}

// The squared singular values of C lose digits in the smallest ones: a singular value sigma comes out of
// an eigenvalue with absolute error ~ u * sigma_max^2, i.e. sigma itself with error ~ u sigma_max^2 / sigma.
// Below this ratio of smallest to largest eigenvalue the SVD of C is used instead.
constexpr double kGramConditionLimit = 1e-9;

}  // namespace

// An upper bound on lambda_min(G) / lambda_max(G) for G = C^T C, C = L1^T L2 (both lower triangular, d x d):
// a few steps of inverse iteration give a Rayleigh quotient >= lambda_min, of power iteration one <= lambda_max.
// Each step is four triangular solves or products with L1 and L2 (O(d^2)); the start vector is fixed.
double gram_condition_upper(const double* L1, const double* L2, int64_t d) {
  const auto apply_c = [&](std::vector<double>& v) {  // v <- C v = L1^T (L2 v)
    scipy_cblas_dtrmv(CblasColMajor, CblasLower, CblasNoTrans, CblasNonUnit, blasint(d), L2, blasint(d), v.data(), 1);
    scipy_cblas_dtrmv(CblasColMajor, CblasLower, CblasTrans, CblasNonUnit, blasint(d), L1, blasint(d), v.data(), 1);
  };
  const auto apply_ct = [&](std::vector<double>& v) {  // v <- C^T v = L2^T (L1 v)
    scipy_cblas_dtrmv(CblasColMajor, CblasLower, CblasNoTrans, CblasNonUnit, blasint(d), L1, blasint(d), v.data(), 1);
    scipy_cblas_dtrmv(CblasColMajor, CblasLower, CblasTrans, CblasNonUnit, blasint(d), L2, blasint(d), v.data(), 1);
  };
  const auto solve_g = [&](std::vector<double>& v) {  // v <- G^-1 v = L2^-1 L1^-T L1^-1 L2^-T v
    scipy_cblas_dtrsv(CblasColMajor, CblasLower, CblasTrans, CblasNonUnit, blasint(d), L2, blasint(d), v.data(), 1);
    scipy_cblas_dtrsv(CblasColMajor, CblasLower, CblasNoTrans, CblasNonUnit, blasint(d), L1, blasint(d), v.data(), 1);
    scipy_cblas_dtrsv(CblasColMajor, CblasLower, CblasTrans, CblasNonUnit, blasint(d), L1, blasint(d), v.data(), 1);
    scipy_cblas_dtrsv(CblasColMajor, CblasLower, CblasNoTrans, CblasNonUnit, blasint(d), L2, blasint(d), v.data(), 1);
  };
  const auto normalize = [&](std::vector<double>& v) {
    double s = 0.0;
    for (double x : v) s += x * x;
    s = std::sqrt(s);
    if (!(s > 0) || !std::isfinite(s)) return false;
    for (double& x : v) x /= s;
    return true;
  };
  const auto rayleigh = [&](std::vector<double> v) {  // v^T G v = |C v|^2 for a unit v
    apply_c(v);
    double s = 0.0;
    for (double x : v) s += x * x;
    return s;
  };
  std::vector<double> lo(static_cast<size_t>(d)), hi(static_cast<size_t>(d));
  for (int64_t i = 0; i < d; ++i) lo[i] = hi[i] = 1.0 + 0.5 * std::sin(double(i) * 1.234567);
  if (!normalize(lo) || !normalize(hi)) return 1.0;
  for (int it = 0; it < 3; ++it) {
    solve_g(lo);
    apply_c(hi);
    apply_ct(hi);
    if (!normalize(lo) || !normalize(hi)) return 1.0;  // no conclusion: let the Gram route test itself
  }
  const double rq_min = rayleigh(lo), rq_max = rayleigh(hi);
  return rq_max > 0 ? rq_min / rq_max : 1.0;
}

TraceSqrtResult trace_sqrt_product(const PsdFactor& f1, const PsdFactor& f2, bool force_svd) {
  GM_ASSERT(f1.dim == f2.dim);
  const int64_t d = f1.dim, r1 = f1.rank, r2 = f2.rank;
  TraceSqrtResult res;
  if (r1 == 0 || r2 == 0) return res;
  // C = A1^T A2 (r1 x r2, column-major)
  std::vector<double> c(static_cast<size_t>(r1 * r2));
  if (f1.lower_triangular && f2.lower_triangular) {
    c.assign(f2.A.begin(), f2.A.end());  // L1^T L2 = trmm(L1^T, L2)
    scipy_cblas_dtrmm(CblasColMajor, CblasLeft, CblasLower, CblasTrans, CblasNonUnit, blasint(d), blasint(d), 1.0,
                      f1.A.data(), blasint(d), c.data(), blasint(d));
  } else {
    scipy_cblas_dgemm(CblasColMajor, CblasTrans, CblasNoTrans, blasint(r1), blasint(r2), blasint(d), 1.0,
                      f1.A.data(), blasint(d), f2.A.data(), blasint(d), 0.0, c.data(), blasint(r1));
  }
  if (!force_svd && f1.lower_triangular && f2.lower_triangular &&
      gram_condition_upper(f1.A.data(), f2.A.data(), d) < kGramConditionLimit) {
    force_svd = true;  // the Gram route would fail its test: go straight to the SVD
  }
  if (!force_svd) {
    // Gram matrix of the smaller side: G = C^T C (r2 <= r1) or C C^T.
    const bool cols = r2 <= r1;
    const int64_t g = cols ? r2 : r1;
    std::vector<double> gram(static_cast<size_t>(g * g));
    if (cols) {
      scipy_cblas_dsyrk(CblasColMajor, CblasLower, CblasTrans, blasint(r2), blasint(r1), 1.0, c.data(), blasint(r1),
                        0.0, gram.data(), blasint(r2));
    } else {
      scipy_cblas_dsyrk(CblasColMajor, CblasLower, CblasNoTrans, blasint(r1), blasint(r2), 1.0, c.data(),
                        blasint(r1), 0.0, gram.data(), blasint(r1));
    }
    const std::vector<double> ev = eigvals_inplace(gram, g);
    if (ev.back() > 0 && ev.front() >= kGramConditionLimit * ev.back()) {
      double acc = 0.0;  // ascending order: small terms first
      for (double e : ev) acc += std::sqrt(e);
      res.trace_sqrt = acc;
      res.min_sv = std::sqrt(ev.front());
      res.max_sv = std::sqrt(ev.back());
      return res;
    }
  }
  const std::vector<double> s = singular_values(c, r1, r2);
  double acc = 0.0;
  for (auto it = s.rbegin(); it != s.rend(); ++it) acc += *it;
  res.trace_sqrt = acc;
  res.used_svd = true;
  res.min_sv = s.empty() ? 0.0 : s.back();
  res.max_sv = s.empty() ? 0.0 : s.front();
  return res;
}

}  // namespace gm
