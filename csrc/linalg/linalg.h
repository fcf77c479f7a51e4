// Symmetric matrix functions in float64 (the "linalg" kernel family).
//
// The Frechet trace term tr sqrt(S1^1/2 S2 S1^1/2) is computed without any matrix square root:
// S1 = P L L^T P^T by pivoted Cholesky (which also handles a singular S1, rank r <= d), and the
// non-zero eigenvalues of S1^1/2 S2 S1^1/2 are those of the symmetric r x r matrix
// M = L^T (P^T S2 P) L. The trace term is the sum of the square roots of M's eigenvalues,
// clamped at 0; a clearly negative eigenvalue means an input is not PSD and is reported.
#pragma once

#include <cstdint>
#include <vector>

namespace gm {

// Cholesky factor of a symmetric PSD matrix S (d x d, float64; symmetric, so row- and column-major
// storage coincide): P^T S P = L L^T. Plain Cholesky when S is clearly positive definite, pivoted
// Cholesky with LAPACK's rank tolerance otherwise.
struct PsdFactor {
  int64_t dim = 0;
  int64_t rank = 0;
  std::vector<double> L;    // d x rank, column-major, lower trapezoidal (zeros above the diagonal)
  std::vector<int> perm;    // perm[i] = original index of pivoted row i (0-based); empty = identity
  double trace = 0.0;
  double max_diag = 0.0;
  double min_schur_eig = 0.0;  // smallest eigenvalue of the part of S the factor did not take (0 if full rank)
};

// Factor S. Throws std::invalid_argument (message starts with `name`) if S is not PSD:
// an eigenvalue of the unfactored Schur complement below -psd_tol * max_diag.
PsdFactor psd_factor(const double* S, int64_t d, const char* name, double psd_tol = 1e-8);

struct TraceSqrtResult {
  double trace_sqrt = 0.0;  // sum of sqrt(max(eig, 0))
  double min_eig = 0.0;
  double max_eig = 0.0;
};

// tr sqrt(S1^1/2 S2 S1^1/2) for S1 given by its factor. Throws std::invalid_argument naming `name2` if
// an eigenvalue of L^T S2 L is below -psd_tol * its largest eigenvalue.
TraceSqrtResult trace_sqrt_product(const PsdFactor& f1, const double* S2, const char* name2,
                                   double psd_tol = 1e-8);

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
