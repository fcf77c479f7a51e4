// Symmetric matrix functions in float64 (the "linalg" kernel family).
//
// The Frechet trace term tr sqrt(S1^1/2 S2 S1^1/2) is computed without any matrix square root.
// Each covariance is factored, S = A A^T with A of shape d x rank (Cholesky, pivoted Cholesky, or
// an eigendecomposition when the matrix carries rounding-level indefiniteness). Then
// tr sqrt(S1^1/2 S2 S1^1/2) = ||A1^T A2||_* (the nuclear norm: the eigenvalues of S1^1/2 S2 S1^1/2 are
// the squared singular values of A1^T A2). The singular values come from the eigenvalues of the
// smaller Gram matrix of C = A1^T A2 when C is well conditioned, and from an SVD of C otherwise, so
// that no square root of rounding noise enters the sum.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace gm {

// How much rounding a symmetric matrix carries, and what it may be.
struct PsdTolerance {
  double rank_tol = 0.0;   // pivots / eigenvalues <= rank_tol * (largest) count as zero; 0: d * 2^-52
  double psd_tol = 1e-8;   // an eigenvalue below -psd_tol * largest means "not positive semi-definite"
  int64_t max_rank = -1;   // the rank cannot exceed this (n - 1 for a covariance of n samples); -1: no cap
};

// S = A A^T, A of shape d x rank (column-major, rows in the original order).
struct PsdFactor {
  int64_t dim = 0;
  int64_t rank = 0;
  std::vector<double> A;        // d x rank, column-major
  bool lower_triangular = false;  // A is the full lower-triangular Cholesky factor (rank == d)
  double trace = 0.0;
  double max_diag = 0.0;
  double min_eig = 0.0;         // the matrix's own smallest eigenvalue, where it was computed (method "eigen")
  std::string method;           // "zero", "cholesky", "pivoted" or "eigen"
};

// Factor S (d x d, float64, symmetric). S is accepted iff lambda_min(S) >= -tol.psd_tol * lambda_max(S)
// (decided on S's own eigenvalues whenever a Cholesky factorization does not already prove S PSD);
// otherwise std::invalid_argument, message starting with `name` and giving S's smallest eigenvalue.
PsdFactor psd_factor(const double* S, int64_t d, const char* name, const PsdTolerance& tol);

struct TraceSqrtResult {
  double trace_sqrt = 0.0;  // sum of the singular values of A1^T A2
  bool used_svd = false;    // true when the SVD route was needed
  double min_sv = 0.0, max_sv = 0.0;
};

// tr sqrt(S1^1/2 S2 S1^1/2) from the two factors.
TraceSqrtResult trace_sqrt_product(const PsdFactor& f1, const PsdFactor& f2, bool force_svd = false);

// Largest |S - S^T|, largest |S|, and the number of non-finite entries with the first row holding one.
struct SymmetryReport {
  double max_asymmetry = 0.0;
  double max_abs = 0.0;
  int64_t nonfinite = 0;
  int64_t first_nonfinite_row = -1;
};
SymmetryReport symmetry_report(const double* S, int64_t d);

// All eigenvalues (ascending) of a symmetric d x d matrix (lower triangle read).
std::vector<double> symmetric_eigenvalues(const double* S, int64_t d);

}  // namespace gm
