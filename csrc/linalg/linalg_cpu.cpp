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

PsdFactor psd_factor(const double* S, int64_t d, const char* name, double psd_tol) {
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
  if (min_diag < -psd_tol * std::max(f.max_diag, 0.0) || f.max_diag < 0.0) {
    throw std::invalid_argument(std::string(name) +
                                " is not positive semi-definite: it has a negative diagonal entry (" + fmt(min_diag) +
                                ")");
  }
  if (f.max_diag == 0.0) {  // the zero matrix: rank 0
    f.rank = 0;
    return f;
  }
  // LAPACK's default rank tolerance for pivoted Cholesky.
  const double tol = double(d) * std::ldexp(1.0, -52) * f.max_diag;
  f.L.assign(S, S + d * d);
  if (scipy_LAPACKE_dpotrf(LAPACK_COL_MAJOR, 'L', lapack_int(d), f.L.data(), lapack_int(d)) == 0) {
    double min_pivot2 = kInfinity();
    for (int64_t i = 0; i < d; ++i) min_pivot2 = std::min(min_pivot2, f.L[i * d + i] * f.L[i * d + i]);
    if (min_pivot2 > tol) {  // clearly positive definite: no pivoting needed
      f.rank = d;
      for (int64_t j = 0; j < d; ++j) std::fill(f.L.begin() + j * d, f.L.begin() + j * d + j, 0.0);
      return f;
    }
  }
  // Singular or nearly so: pivoted Cholesky stops at the numerical rank.
  f.L.assign(S, S + d * d);
  std::vector<lapack_int> piv(static_cast<size_t>(d), 0);
  lapack_int rank = 0;
  const lapack_int info =
      scipy_LAPACKE_dpstrf(LAPACK_COL_MAJOR, 'L', lapack_int(d), f.L.data(), lapack_int(d), piv.data(), &rank, -1.0);
  if (info < 0) throw_internal(__FILE__, __LINE__, "dpstrf argument error");
  const int64_t r = rank;
  f.rank = r;
  f.perm.resize(static_cast<size_t>(d));
  for (int64_t i = 0; i < d; ++i) f.perm[i] = piv[i] - 1;
  f.L.resize(static_cast<size_t>(d * r));  // first r columns
  for (int64_t j = 0; j < r; ++j) std::fill(f.L.begin() + j * d, f.L.begin() + j * d + j, 0.0);
  if (r < d) {
    // The factor covers S exactly iff the Schur complement C - L2 L2^T of the unfactored block is zero;
    // for a PSD S it is PSD with a tiny diagonal. A clearly negative eigenvalue there proves S indefinite
    // (its most negative eigenvalue is at most S's own).
    const int64_t m = d - r;
    std::vector<double> schur(static_cast<size_t>(m * m));
    for (int64_t j = 0; j < m; ++j)
      for (int64_t i = 0; i < m; ++i) schur[j * m + i] = S[int64_t(f.perm[r + i]) * d + f.perm[r + j]];
    scipy_cblas_dsyrk(CblasColMajor, CblasLower, CblasNoTrans, blasint(m), blasint(r), -1.0, f.L.data() + r,
                      blasint(d), 1.0, schur.data(), blasint(m));
    const std::vector<double> w = eigvals_inplace(schur, m);
    f.min_schur_eig = w.empty() ? 0.0 : w.front();
    if (f.min_schur_eig < -psd_tol * f.max_diag) {
      throw std::invalid_argument(std::string(name) +
                                  " is not positive semi-definite: it has an eigenvalue of about " +
                                  fmt(f.min_schur_eig) + " (largest diagonal entry " + fmt(f.max_diag) + ")");
    }
  }
  return f;
}

TraceSqrtResult trace_sqrt_product(const PsdFactor& f1, const double* S2, const char* name2, double psd_tol) {
  const int64_t d = f1.dim, r = f1.rank;
  TraceSqrtResult res;
  if (r == 0) return res;
  std::vector<double> m(static_cast<size_t>(r * r));
  if (f1.perm.empty()) {
    // Full rank, no pivoting: M = L^T S2 L with two triangular multiplies (2 d^3 flops).
    std::vector<double> w(S2, S2 + d * d);
    scipy_cblas_dtrmm(CblasColMajor, CblasRight, CblasLower, CblasNoTrans, CblasNonUnit, blasint(d), blasint(d), 1.0,
                      f1.L.data(), blasint(d), w.data(), blasint(d));
    scipy_cblas_dtrmm(CblasColMajor, CblasLeft, CblasLower, CblasTrans, CblasNonUnit, blasint(d), blasint(d), 1.0,
                      f1.L.data(), blasint(d), w.data(), blasint(d));
    m.swap(w);
  } else {
    // Pivoted, rank r: M = L^T (P^T S2 P) L with L of shape d x r.
    std::vector<double> s2p(static_cast<size_t>(d * d));
    for (int64_t j = 0; j < d; ++j) {
      const double* src = S2 + int64_t(f1.perm[j]) * d;
      double* dst = s2p.data() + j * d;
      for (int64_t i = 0; i < d; ++i) dst[i] = src[f1.perm[i]];
    }
    std::vector<double> w(static_cast<size_t>(d * r));
    scipy_cblas_dgemm(CblasColMajor, CblasNoTrans, CblasNoTrans, blasint(d), blasint(r), blasint(d), 1.0, s2p.data(),
                      blasint(d), f1.L.data(), blasint(d), 0.0, w.data(), blasint(d));
    scipy_cblas_dgemm(CblasColMajor, CblasTrans, CblasNoTrans, blasint(r), blasint(r), blasint(d), 1.0, f1.L.data(),
                      blasint(d), w.data(), blasint(d), 0.0, m.data(), blasint(r));
  }
  for (int64_t j = 0; j < r; ++j)
    for (int64_t i = j + 1; i < r; ++i) m[j * r + i] = 0.5 * (m[j * r + i] + m[i * r + j]);
  const std::vector<double> ev = eigvals_inplace(m, r);
  res.min_eig = ev.front();
  res.max_eig = ev.back();
  if (res.min_eig < -psd_tol * std::max(res.max_eig, 0.0)) {
    throw std::invalid_argument(std::string(name2) +
                                " is not positive semi-definite: S1^1/2 S2 S1^1/2 has an eigenvalue of " +
                                fmt(res.min_eig) + " (largest " + fmt(res.max_eig) + ")");
  }
  double acc = 0.0;  // ascending order: small terms first
  for (double e : ev) acc += std::sqrt(std::max(e, 0.0));
  res.trace_sqrt = acc;
  return res;
}

}  // namespace gm
