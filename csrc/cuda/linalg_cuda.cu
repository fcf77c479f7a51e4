// Frechet trace term on the GPU in float64: Cholesky of S1 (cuSOLVER potrf), M = L^T S2 L by two
// triangular multiplies (cuBLAS trmm), eigenvalues of M (cuSOLVER syevd, values only). When S1 is
// singular, L = V diag(sqrt(max(lambda, 0))) from S1's eigendecomposition instead. Same contract as the
// CPU path: eigenvalues clamped at 0, a clearly negative one is an error naming the input.
#include <algorithm>
#include <cmath>
#include <sstream>
#include <stdexcept>

#include "cuda/cuda_common.h"
#include "cuda/moments_cuda.h"

namespace gm::cuda {
namespace {

inline unsigned blocks(int64_t n, int threads = 256) { return unsigned((n + threads - 1) / threads); }

// Column-major d x d: zero the strict upper triangle (potrf leaves the input there).
__global__ void zero_upper_kernel(double* a, int64_t d) {
  const int64_t idx = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (idx >= d * d) return;
  const int64_t col = idx / d, row = idx % d;
  if (row < col) a[idx] = 0.0;
}

// L[:, j] *= sqrt(max(w[j], 0))
__global__ void scale_columns_kernel(double* a, const double* w, int64_t d) {
  const int64_t idx = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (idx >= d * d) return;
  const int64_t col = idx / d;
  a[idx] *= sqrt(fmax(w[col], 0.0));
}

__global__ void symmetrize_kernel(double* a, int64_t d) {
  const int64_t idx = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (idx >= d * d) return;
  const int64_t col = idx / d, row = idx % d;
  if (row > col) {
    const double m = 0.5 * (a[idx] + a[row * d + col]);
    a[idx] = m;
    a[row * d + col] = m;
  }
}

std::string fmt(double v) {
  std::ostringstream os;
  os.precision(6);
  os << v;
  return os.str();
}

// Eigenvalues (ascending, to the host) of the symmetric d x d matrix a (destroyed); vectors left in a if wanted.
std::vector<double> syevd(cusolverDnHandle_t h, double* a, int64_t d, bool vectors, double* w_dev, cudaStream_t s) {
  const cusolverEigMode_t jobz = vectors ? CUSOLVER_EIG_MODE_VECTOR : CUSOLVER_EIG_MODE_NOVECTOR;
  int lwork = 0;
  GM_CUSOLVER(cusolverDnDsyevd_bufferSize(h, jobz, CUBLAS_FILL_MODE_LOWER, int(d), a, int(d), w_dev, &lwork));
  DeviceBuffer<double> work(size_t(std::max(lwork, 1)), s);
  DeviceBuffer<int> info(1, s);
  GM_CUSOLVER(cusolverDnDsyevd(h, jobz, CUBLAS_FILL_MODE_LOWER, int(d), a, int(d), w_dev, work.get(), lwork,
                               info.get()));
  int info_h = 0;
  std::vector<double> w(static_cast<size_t>(d));
  GM_CUDA(cudaMemcpyAsync(&info_h, info.get(), sizeof(int), cudaMemcpyDeviceToHost, s));
  GM_CUDA(cudaMemcpyAsync(w.data(), w_dev, sizeof(double) * d, cudaMemcpyDeviceToHost, s));
  GM_CUDA(cudaStreamSynchronize(s));
  if (info_h != 0) throw std::runtime_error("cuSOLVER syevd failed to converge (info " + std::to_string(info_h) + ")");
  return w;
}

}  // namespace

std::vector<TraceSqrt> trace_sqrt_products(const double* S1, int64_t d, const std::vector<const double*>& S2s,
                                           uintptr_t stream_int, const std::string& name1,
                                           const std::vector<std::string>& names2, double psd_tol) {
  GM_REQUIRE(d > 0, "empty covariance");
  GM_REQUIRE(names2.size() == S2s.size(), "one name per sigma2 is needed");
  const cudaStream_t s = reinterpret_cast<cudaStream_t>(stream_int);
  cublasHandle_t bh = cublas_handle(s);
  cusolverDnHandle_t sh = cusolver_handle(s);
  const size_t dd = size_t(d * d);
  DeviceBuffer<double> L(dd, s), W(dd, s), M(dd, s), w(size_t(d), s);
  GM_CUDA(cudaMemcpyAsync(L.get(), S1, sizeof(double) * dd, cudaMemcpyHostToDevice, s));

  // Factor S1: Cholesky when positive definite, otherwise the eigendecomposition.
  bool triangular = false;
  {
    int lwork = 0;
    GM_CUSOLVER(cusolverDnDpotrf_bufferSize(sh, CUBLAS_FILL_MODE_LOWER, int(d), L.get(), int(d), &lwork));
    DeviceBuffer<double> work(size_t(std::max(lwork, 1)), s);
    DeviceBuffer<int> info(1, s);
    GM_CUSOLVER(cusolverDnDpotrf(sh, CUBLAS_FILL_MODE_LOWER, int(d), L.get(), int(d), work.get(), lwork, info.get()));
    int info_h = 0;
    GM_CUDA(cudaMemcpyAsync(&info_h, info.get(), sizeof(int), cudaMemcpyDeviceToHost, s));
    GM_CUDA(cudaStreamSynchronize(s));
    triangular = info_h == 0;
  }
  if (triangular) {
    zero_upper_kernel<<<blocks(int64_t(dd)), 256, 0, s>>>(L.get(), d);
    GM_CUDA(cudaGetLastError());
  } else {
    GM_CUDA(cudaMemcpyAsync(L.get(), S1, sizeof(double) * dd, cudaMemcpyHostToDevice, s));
    const std::vector<double> ev = syevd(sh, L.get(), d, true, w.get(), s);
    const double lmax = std::max(ev.back(), 0.0);
    if (ev.front() < -psd_tol * lmax) {
      throw std::invalid_argument(name1 + " is not positive semi-definite: it has an eigenvalue of " + fmt(ev.front()) +
                                  " (largest " + fmt(ev.back()) + ")");
    }
    scale_columns_kernel<<<blocks(int64_t(dd)), 256, 0, s>>>(L.get(), w.get(), d);
    GM_CUDA(cudaGetLastError());
  }

  std::vector<TraceSqrt> out;
  out.reserve(S2s.size());
  const double one = 1.0, zero = 0.0;
  for (size_t b = 0; b < S2s.size(); ++b) {
    GM_CUDA(cudaMemcpyAsync(W.get(), S2s[b], sizeof(double) * dd, cudaMemcpyHostToDevice, s));
    if (triangular) {
      // M = L^T (S2 L): trmm is out of place in cuBLAS
      GM_CUBLAS(cublasDtrmm(bh, CUBLAS_SIDE_RIGHT, CUBLAS_FILL_MODE_LOWER, CUBLAS_OP_N, CUBLAS_DIAG_NON_UNIT, int(d),
                            int(d), &one, L.get(), int(d), W.get(), int(d), M.get(), int(d)));
      GM_CUBLAS(cublasDtrmm(bh, CUBLAS_SIDE_LEFT, CUBLAS_FILL_MODE_LOWER, CUBLAS_OP_T, CUBLAS_DIAG_NON_UNIT, int(d),
                            int(d), &one, L.get(), int(d), M.get(), int(d), W.get(), int(d)));
    } else {
      GM_CUBLAS(cublasDgemm(bh, CUBLAS_OP_N, CUBLAS_OP_N, int(d), int(d), int(d), &one, W.get(), int(d), L.get(),
                            int(d), &zero, M.get(), int(d)));
      GM_CUBLAS(cublasDgemm(bh, CUBLAS_OP_T, CUBLAS_OP_N, int(d), int(d), int(d), &one, L.get(), int(d), M.get(),
                            int(d), &zero, W.get(), int(d)));
    }
    symmetrize_kernel<<<blocks(int64_t(dd)), 256, 0, s>>>(W.get(), d);
    GM_CUDA(cudaGetLastError());
    const std::vector<double> ev = syevd(sh, W.get(), d, false, w.get(), s);
    TraceSqrt r;
    r.min_eig = ev.front();
    r.max_eig = ev.back();
    if (r.min_eig < -psd_tol * std::max(r.max_eig, 0.0)) {
      throw std::invalid_argument(names2[b] + " is not positive semi-definite: S1^1/2 S2 S1^1/2 has an eigenvalue of " +
                                  fmt(r.min_eig) + " (largest " + fmt(r.max_eig) + ")");
    }
    for (double e : ev) r.trace_sqrt += std::sqrt(std::max(e, 0.0));
    out.push_back(r);
  }
  return out;
}

}  // namespace gm::cuda
