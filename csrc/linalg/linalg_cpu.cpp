#include "linalg/linalg.h"

#include <cblas.h>
#include <lapacke.h>

#include <algorithm>
#include <cmath>
#include <sstream>
#include <stdexcept>

#include "common/common.h"

namespace gm {
namespace {

std::vector<double> eigvals_inplace(std::vector<double>& a, int64_t n) {
  std::vector<double> w(static_cast<size_t>(std::max<int64_t>(n, 1)));
  if (n == 0) return {};
  // dsyevr with jobz='N' (values only): the fastest symmetric driver for eigenvalues in OpenBLAS' LAPACK.
  lapack_int m = 0;
  std::vector<lapack_int> isuppz(static_cast<size_t>(2 * n), 0);
  const lapack_int info = scipy_LAPACKE_dsyevr(LAPACK_ROW_MAJOR, 'N', 'A', 'L', lapack_int(n), a.data(),
                                               lapack_int(n), 0.0, 0.0, 0, 0, 0.0, &m, w.data(), nullptr, 1,
                                               isuppz.data());
  if (info < 0) throw_internal(__FILE__, __LINE__, "dsyevr argument error");
  if (info > 0) throw std::runtime_error("LAPACK dsyevr failed to converge");
  w.resize(static_cast<size_t>(m));
  return w;
}

std::string fmt(double v) {
  std::ostringstream os;
  os.precision(6);
  os << v;
  return os.str();
}

}  // namespace

std::vector<double> symmetric_eigenvalues(const double* S, int64_t d) {
  std::vector<double> a(S, S + d * d);
  return eigvals_inplace(a, d);
}

PsdFactor psd_factor(const double* S, int64_t d, const char* name, double psd_tol) {
  GM_ASSERT(d > 0);
  PsdFactor f;
  f.dim = d;
  std::vector<double> a(S, S + d * d);
  for (int64_t i = 0; i < d; ++i) {
    f.trace += S[i * d + i];
    f.max_diag = std::max(f.max_diag, S[i * d + i]);
  }
  double min_diag = S[0];
  for (int64_t i = 0; i < d; ++i) min_diag = std::min(min_diag, S[i * d + i]);
  if (min_diag < -psd_tol * std::max(f.max_diag, 0.0) || f.max_diag < 0.0) {
    throw std::invalid_argument(std::string(name) + " is not positive semi-definite: it has a negative diagonal entry (" +
                                fmt(min_diag) + ")");
  }
  if (f.max_diag == 0.0) {  // the zero matrix: rank 0
    f.rank = 0;
    return f;
  }
  std::vector<lapack_int> piv(static_cast<size_t>(d), 0);
  lapack_int rank = 0;
  const lapack_int info =
      scipy_LAPACKE_dpstrf(LAPACK_ROW_MAJOR, 'L', lapack_int(d), a.data(), lapack_int(d), piv.data(), &rank, -1.0);
  if (info < 0) throw_internal(__FILE__, __LINE__, "dpstrf argument error");
  f.rank = rank;
  f.perm.resize(static_cast<size_t>(d));
  for (int64_t i = 0; i < d; ++i) f.perm[i] = piv[i] - 1;
  const int64_t r = rank;
  f.L.assign(static_cast<size_t>(d * r), 0.0);
  for (int64_t i = 0; i < d; ++i)
    for (int64_t j = 0; j <= std::min(i, r - 1); ++j) f.L[i * r + j] = a[i * d + j];
  if (r < d) {
    // The factor covers S exactly iff the Schur complement C - L2 L2^T of the unfactored block is zero;
    // for a PSD S it is PSD with a tiny diagonal. A clearly negative eigenvalue there proves S indefinite
    // (its most negative eigenvalue is at most S's own).
    const int64_t m = d - r;
    std::vector<double> schur(static_cast<size_t>(m * m));
    for (int64_t i = 0; i < m; ++i)
      for (int64_t j = 0; j < m; ++j) schur[i * m + j] = S[int64_t(f.perm[r + i]) * d + f.perm[r + j]];
    scipy_cblas_dsyrk(CblasRowMajor, CblasLower, CblasNoTrans, blasint(m), blasint(r), -1.0, f.L.data() + r * r,
                      blasint(r), 1.0, schur.data(), blasint(m));
    const std::vector<double> w = eigvals_inplace(schur, m);
    f.min_schur_eig = w.empty() ? 0.0 : w.front();
    if (f.min_schur_eig < -psd_tol * f.max_diag) {
      throw std::invalid_argument(std::string(name) + " is not positive semi-definite: it has an eigenvalue of about " +
                                  fmt(f.min_schur_eig) + " (largest diagonal entry " + fmt(f.max_diag) + ")");
    }
  }
  return f;
}

TraceSqrtResult trace_sqrt_product(const PsdFactor& f1, const double* S2, const char* name2, double psd_tol) {
  const int64_t d = f1.dim, r = f1.rank;
  TraceSqrtResult res;
  if (r == 0) return res;
  // S2p[:, :r] L1 + S2p[:, r:] L2, with S2p = P^T S2 P
  std::vector<double> s2p(static_cast<size_t>(d * d));
  for (int64_t i = 0; i < d; ++i) {
    const double* src = S2 + int64_t(f1.perm[i]) * d;
    double* dst = s2p.data() + i * d;
    for (int64_t j = 0; j < d; ++j) dst[j] = src[f1.perm[j]];
  }
  // W = S2p L  (d x r)
  std::vector<double> w(static_cast<size_t>(d * r));
  for (int64_t i = 0; i < d; ++i) std::copy(s2p.data() + i * d, s2p.data() + i * d + r, w.data() + i * r);
  scipy_cblas_dtrmm(CblasRowMajor, CblasRight, CblasLower, CblasNoTrans, CblasNonUnit, blasint(d), blasint(r), 1.0,
                    f1.L.data(), blasint(r), w.data(), blasint(r));
  if (r < d) {
    scipy_cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, blasint(d), blasint(r), blasint(d - r), 1.0,
                      s2p.data() + r, blasint(d), f1.L.data() + r * r, blasint(r), 1.0, w.data(), blasint(r));
  }
  // M = L^T W = L1^T W[:r] + L2^T W[r:]  (r x r)
  std::vector<double> m(w.begin(), w.begin() + r * r);
  scipy_cblas_dtrmm(CblasRowMajor, CblasLeft, CblasLower, CblasTrans, CblasNonUnit, blasint(r), blasint(r), 1.0,
                    f1.L.data(), blasint(r), m.data(), blasint(r));
  if (r < d) {
    scipy_cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, blasint(r), blasint(r), blasint(d - r), 1.0,
                      f1.L.data() + r * r, blasint(r), w.data() + r * r, blasint(r), 1.0, m.data(), blasint(r));
  }
  for (int64_t i = 0; i < r; ++i)
    for (int64_t j = 0; j < i; ++j) m[i * r + j] = 0.5 * (m[i * r + j] + m[j * r + i]);
  const std::vector<double> ev = eigvals_inplace(m, r);
  res.min_eig = ev.front();
  res.max_eig = ev.back();
  if (res.min_eig < -psd_tol * std::max(res.max_eig, 0.0)) {
    throw std::invalid_argument(std::string(name2) +
                                " is not positive semi-definite: S1^1/2 S2 S1^1/2 has an eigenvalue of " +
                                fmt(res.min_eig) + " (largest " + fmt(res.max_eig) + ")");
  }
  // Sum small-to-large for accuracy.
  double acc = 0.0;
  for (double e : ev) acc += std::sqrt(std::max(e, 0.0));
  res.trace_sqrt = acc;
  return res;
}

}  // namespace gm
