#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <mutex>
#include <sstream>
#include <stdexcept>
#include <unordered_map>
#include <vector>

#include "cuda/cuda_common.h"
#include "cuda/moments_cuda.h"

namespace gm::cuda {

// ------------------------------------------------------------------ errors and handles
void check_cublas(cublasStatus_t s, const char* file, int line) {
  if (s == CUBLAS_STATUS_SUCCESS) return;
  std::ostringstream os;
  os << "cuBLAS error " << cublasGetStatusName(s) << " (" << cublasGetStatusString(s) << ") at " << file << ":"
     << line;
  throw CudaError(os.str(), s == CUBLAS_STATUS_ALLOC_FAILED);
}

void check_cusolver(cusolverStatus_t s, const char* file, int line) {
  if (s == CUSOLVER_STATUS_SUCCESS) return;
  std::ostringstream os;
  os << "cuSOLVER error " << static_cast<int>(s) << " at " << file << ":" << line;
  throw CudaError(os.str(), s == CUSOLVER_STATUS_ALLOC_FAILED);
}

namespace {
std::mutex g_handles_mutex;
std::unordered_map<int, cublasHandle_t> g_cublas;
std::unordered_map<int, cusolverDnHandle_t> g_cusolver;

int current_device() {
  int dev = 0;
  GM_CUDA(cudaGetDevice(&dev));
  return dev;
}
}  // namespace

cublasHandle_t cublas_handle(cudaStream_t stream) {
  std::lock_guard<std::mutex> lock(g_handles_mutex);
  const int dev = current_device();
  auto it = g_cublas.find(dev);
  if (it == g_cublas.end()) {
    cublasHandle_t h;
    GM_CUBLAS(cublasCreate(&h));
    // No TF32: float32 GEMMs stay float32 (the numerical contract of the CPU path).
    GM_CUBLAS(cublasSetMathMode(h, CUBLAS_PEDANTIC_MATH));
    it = g_cublas.emplace(dev, h).first;
  }
  GM_CUBLAS(cublasSetStream(it->second, stream));
  return it->second;
}

cusolverDnHandle_t cusolver_handle(cudaStream_t stream) {
  std::lock_guard<std::mutex> lock(g_handles_mutex);
  const int dev = current_device();
  auto it = g_cusolver.find(dev);
  if (it == g_cusolver.end()) {
    cusolverDnHandle_t h;
    GM_CUSOLVER(cusolverDnCreate(&h));
    it = g_cusolver.emplace(dev, h).first;
  }
  GM_CUSOLVER(cusolverDnSetStream(it->second, stream));
  return it->second;
}

// ------------------------------------------------------------------ kernels
namespace {

template <typename T>
__device__ __forceinline__ double to_double(T v);
template <>
__device__ __forceinline__ double to_double<float>(float v) { return double(v); }
template <>
__device__ __forceinline__ double to_double<double>(double v) { return v; }
template <>
__device__ __forceinline__ double to_double<__half>(__half v) { return double(__half2float(v)); }
template <>
__device__ __forceinline__ double to_double<__nv_bfloat16>(__nv_bfloat16 v) { return double(__bfloat162float(v)); }

// Column sums (float64) of rows [r0, r0 + c) and a NaN/Inf scan. One thread per column.
template <typename T>
__global__ void colsum_kernel(const T* x, int64_t r0, int64_t c, int64_t d, int64_t rs, int64_t cs, double* sums,
                              unsigned long long* bad_count, long long* first_bad) {
  const int64_t j = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (j >= d) return;
  double s = 0.0;
  unsigned long long bad = 0;
  long long first = -1;
  for (int64_t i = 0; i < c; ++i) {
    const double v = to_double(x[(r0 + i) * rs + j * cs]);
    if (!isfinite(v)) {
      ++bad;
      if (first < 0) first = r0 + i;
      continue;
    }
    s += v;
  }
  sums[j] = s;
  if (bad) {
    atomicAdd(bad_count, bad);
    atomicMin(first_bad, first);
  }
}

// z[i, j] = x[r0 + i, j] - mean[j], rounded to the working type W (row-major c x d).
template <typename T, typename W>
__global__ void center_kernel(const T* x, int64_t r0, int64_t c, int64_t d, int64_t rs, int64_t cs,
                              const double* mean, W* z) {
  const int64_t idx = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (idx >= c * d) return;
  const int64_t i = idx / d, j = idx % d;
  z[idx] = W(to_double(x[(r0 + i) * rs + j * cs]) - mean[j]);
}

// m2[i, j] += scatter[i, j] + coef * delta[i] * delta[j] for j <= i (row-major lower triangle).
template <typename W>
__global__ void merge_kernel(double* m2, const W* scatter, const double* delta, double coef, int64_t d) {
  const int64_t idx = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (idx >= d * d) return;
  const int64_t i = idx / d, j = idx % d;
  if (j > i) return;
  m2[idx] += (scatter ? double(scatter[idx]) : 0.0) + coef * delta[i] * delta[j];
}

// chunk mean (from sums), delta = chunk_mean - mean, mean += w * delta.
__global__ void mean_update_kernel(double* mean, const double* sums, double* delta, double c, double w, int64_t d) {
  const int64_t j = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (j >= d) return;
  const double cm = sums[j] / c;
  delta[j] = cm - mean[j];
  mean[j] += w * delta[j];
}

__global__ void cm_kernel(const double* sums, double* cmean, double c, int64_t d) {
  const int64_t j = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (j < d) cmean[j] = sums[j] / c;
}

inline unsigned blocks(int64_t n, int threads = 256) { return unsigned((n + threads - 1) / threads); }

void syrk(cublasHandle_t h, int64_t d, int64_t c, const float* z, float* out) {
  // z is row-major c x d = column-major d x c; out = z^T z. Column-major UPPER equals row-major LOWER.
  const float one = 1.0f, zero = 0.0f;
  GM_CUBLAS(cublasSsyrk(h, CUBLAS_FILL_MODE_UPPER, CUBLAS_OP_N, int(d), int(c), &one, z, int(d), &zero, out, int(d)));
}
void syrk(cublasHandle_t h, int64_t d, int64_t c, const double* z, double* out) {
  const double one = 1.0, zero = 0.0;
  GM_CUBLAS(cublasDsyrk(h, CUBLAS_FILL_MODE_UPPER, CUBLAS_OP_N, int(d), int(c), &one, z, int(d), &zero, out, int(d)));
}

// The device-side state for one update call.
struct DeviceState {
  DeviceBuffer<double> mean, m2, sums, delta;
  DeviceBuffer<unsigned long long> bad;
  DeviceBuffer<long long> first_bad;
  DeviceState(int64_t d, cudaStream_t s)
      : mean(size_t(d), s), m2(size_t(d * d), s), sums(size_t(d), s), delta(size_t(d), s), bad(1, s), first_bad(1, s) {}
};

// Call f(typed device pointer) for the view's element type.
template <typename F>
void with_typed(const MatView& v, F&& f) {
  switch (v.dtype) {
    case DType::F16: f(static_cast<const __half*>(v.data)); break;
    case DType::BF16: f(static_cast<const __nv_bfloat16*>(v.data)); break;
    case DType::F32: f(static_cast<const float*>(v.data)); break;
    case DType::F64: f(static_cast<const double*>(v.data)); break;
  }
}

// Column sums of rows [r0, r0 + c) into ds.sums and the NaN/Inf scan; false (with `bad` filled) if any is found.
template <typename T>
bool scan_chunk(const T* x, const MatView& v, int64_t r0, int64_t c, DeviceState& ds, cudaStream_t stream,
                NonFinite& bad) {
  GM_CUDA(cudaMemsetAsync(ds.bad.get(), 0, sizeof(unsigned long long), stream));
  const long long big = (1ll << 62);
  GM_CUDA(cudaMemcpyAsync(ds.first_bad.get(), &big, sizeof(long long), cudaMemcpyHostToDevice, stream));
  colsum_kernel<T><<<blocks(v.cols), 256, 0, stream>>>(x, r0, c, v.cols, v.row_stride, v.col_stride, ds.sums.get(),
                                                       ds.bad.get(), ds.first_bad.get());
  GM_CUDA(cudaGetLastError());
  unsigned long long nbad = 0;
  long long first = -1;
  GM_CUDA(cudaMemcpyAsync(&nbad, ds.bad.get(), sizeof(nbad), cudaMemcpyDeviceToHost, stream));
  GM_CUDA(cudaMemcpyAsync(&first, ds.first_bad.get(), sizeof(first), cudaMemcpyDeviceToHost, stream));
  GM_CUDA(cudaStreamSynchronize(stream));
  if (nbad) {
    bad.count += int64_t(nbad);
    if (bad.first_row < 0) bad.first_row = first;
  }
  return nbad == 0;
}

template <typename T, typename W>
void fold_chunk(const T* x, const MatView& v, int64_t r0, int64_t c, int64_t& n, DeviceState& ds, W* z, W* scatter,
                cudaStream_t stream, cublasHandle_t h, NonFinite& bad) {
  const int64_t d = v.cols;
  if (!scan_chunk(x, v, r0, c, ds, stream, bad)) return;
  const int64_t na = n;
  const double total = double(na) + double(c);
  if (c > 1) {
    // centre on the chunk mean, scatter matrix by syrk in W, then Chan's merge in float64
    DeviceBuffer<double> cmean(size_t(d), stream);
    cm_kernel<<<blocks(d), 256, 0, stream>>>(ds.sums.get(), cmean.get(), double(c), d);
    center_kernel<T, W><<<blocks(c * d), 256, 0, stream>>>(x, r0, c, d, v.row_stride, v.col_stride, cmean.get(), z);
    GM_CUDA(cudaGetLastError());
    syrk(h, d, c, z, scatter);
  }
  mean_update_kernel<<<blocks(d), 256, 0, stream>>>(ds.mean.get(), ds.sums.get(), ds.delta.get(), double(c),
                                                     double(c) / total, d);
  const double coef = double(na) * double(c) / total;
  // a single row has no scatter of its own: only the rank-one term
  merge_kernel<W><<<blocks(d * d), 256, 0, stream>>>(ds.m2.get(), c > 1 ? scatter : nullptr, ds.delta.get(), coef, d);
  GM_CUDA(cudaGetLastError());
  n = na + c;
}

// The device-side (n, mean, M2) of one update call plus its working buffers; the host state is only
// written back by finish(), so a chunk with NaN/Inf leaves it unchanged.
template <typename W>
struct DeviceMoments {
  MomentsState& st;
  cudaStream_t stream;
  cublasHandle_t handle;
  DeviceState ds;
  DeviceBuffer<W> z, scatter;
  int64_t n;

  DeviceMoments(MomentsState& state, int64_t chunk, cudaStream_t s)
      : st(state), stream(s), handle(cublas_handle(s)), ds(state.dim, s), z(size_t(chunk * state.dim), s),
        scatter(size_t(state.dim * state.dim), s), n(state.n) {
    GM_CUDA(cudaMemcpyAsync(ds.mean.get(), st.mean, sizeof(double) * st.dim, cudaMemcpyHostToDevice, stream));
    GM_CUDA(cudaMemcpyAsync(ds.m2.get(), st.m2, sizeof(double) * st.dim * st.dim, cudaMemcpyHostToDevice, stream));
  }

  // Fold rows [r0, r0 + c) of a device view.
  void fold(const MatView& v, int64_t r0, int64_t c, NonFinite& bad) {
    with_typed(v, [&](auto x) { fold_chunk(x, v, r0, c, n, ds, z.get(), scatter.get(), stream, handle, bad); });
  }

  void finish() {
    GM_CUDA(cudaMemcpyAsync(st.mean, ds.mean.get(), sizeof(double) * st.dim, cudaMemcpyDeviceToHost, stream));
    GM_CUDA(cudaMemcpyAsync(st.m2, ds.m2.get(), sizeof(double) * st.dim * st.dim, cudaMemcpyDeviceToHost, stream));
    GM_CUDA(cudaStreamSynchronize(stream));
    st.n = n;
  }
};

int64_t default_chunk(const MatView& v, int64_t chunk_rows) {
  if (chunk_rows > 0) return chunk_rows;
  // ~256 MB of working-precision rows per syrk, at least 1024 rows
  return std::max<int64_t>(1024, (int64_t(256) << 20) / std::max<int64_t>(1, v.cols * 8));
}

template <typename W>
void update_device_impl(MomentsState& st, const MatView& v, int64_t chunk, cudaStream_t stream, NonFinite& bad) {
  DeviceMoments<W> dm(st, chunk, stream);
  for (int64_t r0 = 0; r0 < v.rows && bad.count == 0; r0 += chunk) dm.fold(v, r0, std::min(chunk, v.rows - r0), bad);
  if (bad.count == 0) dm.finish();
}

template <typename W>
void update_host_impl(MomentsState& st, const MatView& v, int64_t chunk, cudaStream_t stream, NonFinite& bad) {
  const int64_t d = v.cols;
  const int64_t item = (v.dtype == DType::F64) ? 8 : (v.dtype == DType::F32) ? 4 : 2;
  const size_t chunk_bytes = size_t(chunk * d * item);
  // Two pinned staging buffers: while the GPU folds chunk i, the CPU packs chunk i + 1 into the other.
  void* pinned[2] = {nullptr, nullptr};
  cudaEvent_t copied[2] = {nullptr, nullptr};
  struct Cleanup {
    void** p;
    cudaEvent_t* e;
    ~Cleanup() {
      for (int i = 0; i < 2; ++i) {
        if (p[i]) cudaFreeHost(p[i]);
        if (e[i]) cudaEventDestroy(e[i]);
      }
    }
  } cleanup{pinned, copied};
  for (int i = 0; i < 2; ++i) {
    GM_CUDA(cudaMallocHost(&pinned[i], chunk_bytes));
    GM_CUDA(cudaEventCreateWithFlags(&copied[i], cudaEventDisableTiming));
  }
  DeviceBuffer<unsigned char> dev0(chunk_bytes, stream), dev1(chunk_bytes, stream);
  unsigned char* dev[2] = {dev0.get(), dev1.get()};
  DeviceMoments<W> dm(st, chunk, stream);
  const unsigned char* src = static_cast<const unsigned char*>(v.data);
  for (int64_t r0 = 0, i = 0; r0 < v.rows && bad.count == 0; r0 += chunk, ++i) {
    const int64_t c = std::min(chunk, v.rows - r0);
    const int b = int(i & 1);
    GM_CUDA(cudaEventSynchronize(copied[b]));  // the last copy out of this pinned buffer has finished
    unsigned char* dst = static_cast<unsigned char*>(pinned[b]);
    for (int64_t r = 0; r < c; ++r) {  // pack rows of any strides contiguously
      if (v.col_stride == 1) {
        std::memcpy(dst + r * d * item, src + (r0 + r) * v.row_stride * item, size_t(d * item));
      } else {
        for (int64_t j = 0; j < d; ++j)
          std::memcpy(dst + (r * d + j) * item, src + ((r0 + r) * v.row_stride + j * v.col_stride) * item,
                      size_t(item));
      }
    }
    GM_CUDA(cudaMemcpyAsync(dev[b], dst, size_t(c * d * item), cudaMemcpyHostToDevice, stream));
    GM_CUDA(cudaEventRecord(copied[b], stream));
    MatView part;
    part.data = dev[b];
    part.rows = c;
    part.cols = d;
    part.row_stride = d;
    part.col_stride = 1;
    part.dtype = v.dtype;
    NonFinite part_bad;
    dm.fold(part, 0, c, part_bad);
    if (part_bad.count) {
      bad.count = part_bad.count;
      bad.first_row = r0 + part_bad.first_row;
    }
  }
  if (bad.count == 0) dm.finish();
}

void update(MomentsState& st, const MatView& v, int64_t chunk_rows, uintptr_t stream_int, NonFinite& bad, bool host) {
  GM_REQUIRE(v.cols == st.dim, "batch has " + std::to_string(v.cols) + " features, the statistics have " +
                                   std::to_string(st.dim));
  if (v.rows == 0) return;
  const cudaStream_t stream = reinterpret_cast<cudaStream_t>(stream_int);
  const int64_t chunk = std::min(default_chunk(v, chunk_rows), v.rows);
  if (v.dtype == DType::F64) {
    host ? update_host_impl<double>(st, v, chunk, stream, bad) : update_device_impl<double>(st, v, chunk, stream, bad);
  } else {
    host ? update_host_impl<float>(st, v, chunk, stream, bad) : update_device_impl<float>(st, v, chunk, stream, bad);
  }
}

}  // namespace

void moments_update_device(MomentsState& st, const MatView& v, int64_t chunk_rows, uintptr_t stream, NonFinite& bad) {
  update(st, v, chunk_rows, stream, bad, false);
}

void moments_update_host(MomentsState& st, const MatView& v, int64_t chunk_rows, uintptr_t stream, NonFinite& bad) {
  update(st, v, chunk_rows, stream, bad, true);
}

void column_means_device(const MatView& v, double* host_out, uintptr_t stream_int, NonFinite& bad) {
  const cudaStream_t stream = reinterpret_cast<cudaStream_t>(stream_int);
  const int64_t d = v.cols;
  DeviceState ds(d, stream);
  std::vector<double> total(static_cast<size_t>(d), 0.0), part(static_cast<size_t>(d));
  const int64_t chunk = std::max<int64_t>(1, std::min<int64_t>(v.rows, 65536));
  for (int64_t r0 = 0; r0 < v.rows; r0 += chunk) {
    const int64_t c = std::min(chunk, v.rows - r0);
    bool ok = true;
    with_typed(v, [&](auto x) { ok = scan_chunk(x, v, r0, c, ds, stream, bad); });
    if (!ok) return;
    GM_CUDA(cudaMemcpyAsync(part.data(), ds.sums.get(), sizeof(double) * d, cudaMemcpyDeviceToHost, stream));
    GM_CUDA(cudaStreamSynchronize(stream));
    for (int64_t j = 0; j < d; ++j) total[size_t(j)] += part[size_t(j)];
  }
  for (int64_t j = 0; j < d; ++j) host_out[j] = total[size_t(j)] / double(v.rows);
}

}  // namespace gm::cuda
