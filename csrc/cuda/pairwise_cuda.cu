// GPU pairwise engine. Float32 GEMM tiles (cuBLAS, pedantic math: no TF32) carry the same rigorous
// rounding bound as the CPU engine; every decision whose bound straddles its threshold is recomputed in
// float64 from the original values, so decisions equal a float64 brute force.
//
// k smallest per row (and per-column / per-row minima) use three steps:
//   A. over all tiles, the k smallest upper bounds U = a + e of each row (warp-per-row insertion into a
//      sorted list for k > 1, atomicMin on the bit pattern of U >= 0 for minima): U* = the k-th;
//   B. over all tiles again, every pair with lower bound L = a - e <= U* becomes a candidate;
//   C. candidates are recomputed exactly in float64, sorted by (row, value, column), and the first k kept.
// Radius decisions are taken in the epilogue when certain, else queued for an exact recheck.
#include <thrust/execution_policy.h>
#include <thrust/sort.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "cuda/cuda_common.h"
#include "cuda/pairwise_cuda.h"

namespace gm::cuda {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr int kMaxK = 32;

inline unsigned nblocks(int64_t n, int threads = 256) { return unsigned((n + threads - 1) / threads); }

struct BoundCoef {
  double coef, tau;
};

BoundCoef bound_coef(int64_t d) {
  const double u = std::ldexp(1.0, -24), u64 = std::ldexp(1.0, -53);
  const double du = double(d) * u;
  GM_REQUIRE(du < 0.25, "too many features for float32 distance bounds");
  return {1.05 * (du / (1.0 - du) + 4.01 * u + (4.0 * double(d) + 32.0) * u64), 4.0 * double(d) * std::ldexp(1.0, -120)};
}

__device__ __forceinline__ double load_elem(const void* data, DType t, int64_t off) {
  switch (t) {
    case DType::F16: return double(__half2float(static_cast<const __half*>(data)[off]));
    case DType::BF16: return double(__bfloat162float(static_cast<const __nv_bfloat16*>(data)[off]));
    case DType::F32: return double(static_cast<const float*>(data)[off]);
    default: return static_cast<const double*>(data)[off];
  }
}

// ------------------------------------------------------------------ blocks: centred float32 rows + norms
__global__ void fill_block_kernel(MatView v, const double* center, int64_t r0, float* out, double* norm) {
  const int64_t i = blockIdx.x;  // one block per row
  const int64_t d = v.cols;
  __shared__ double partial[256];
  double s = 0.0;
  for (int64_t j = threadIdx.x; j < d; j += blockDim.x) {
    const double x = load_elem(v.data, v.dtype, (r0 + i) * v.row_stride + j * v.col_stride) - (center ? center[j] : 0.0);
    const float f = float(x);
    out[i * d + j] = f;
    s += double(f) * double(f);
  }
  partial[threadIdx.x] = s;
  __syncthreads();
  for (int w = blockDim.x / 2; w > 0; w >>= 1) {  // fixed-order tree: deterministic
    if (threadIdx.x < w) partial[threadIdx.x] += partial[threadIdx.x + w];
    __syncthreads();
  }
  if (threadIdx.x == 0) norm[i] = partial[0];
}

struct Block {
  int64_t begin = 0, rows = 0;
  float* data = nullptr;
  double* norm = nullptr;
};

void fill_block(const MatView& v, const double* center, int64_t begin, int64_t rows, Block& b, cudaStream_t s) {
  b.begin = begin;
  b.rows = rows;
  fill_block_kernel<<<unsigned(rows), 256, 0, s>>>(v, center, begin, b.data, b.norm);
  GM_CUDA(cudaGetLastError());
}

// S (row-major rows x cols) = A B^T for row-major A (rows x d), B (cols x d).
void gemm_tile(cublasHandle_t h, const Block& a, const Block& b, int64_t d, float* S) {
  const float one = 1.0f, zero = 0.0f;
  GM_CUBLAS(cublasSgemm(h, CUBLAS_OP_T, CUBLAS_OP_N, int(b.rows), int(a.rows), int(d), &one, b.data, int(d), a.data,
                        int(d), &zero, S, int(b.rows)));
}

// ------------------------------------------------------------------ step A: k smallest upper bounds
__device__ __forceinline__ bool before(double v1, long long i1, double v2, long long i2) {
  return v1 < v2 || (v1 == v2 && i1 < i2);
}

// One warp per tile row; lane t < k holds the t-th smallest (U, index) of that row so far (global memory between tiles).
__global__ void topk_upper_kernel(const float* S, const double* nq, const double* nr, int64_t rows, int64_t cols,
                                  int64_t i0, int64_t j0, bool self, const double* weight, BoundCoef bc, int k,
                                  double* best_val, long long* best_idx) {
  const int lane = threadIdx.x & 31;
  const int64_t q = (int64_t(blockIdx.x) * blockDim.x + threadIdx.x) >> 5;
  if (q >= rows) return;
  const int64_t gq = i0 + q;
  double my_v = lane < k ? best_val[gq * k + lane] : kInf;
  long long my_i = lane < k ? best_idx[gq * k + lane] : -1;
  for (int64_t c0 = 0; c0 < cols; c0 += 32) {
    const int64_t c = c0 + lane;
    double u = kInf;
    long long gc = j0 + c;
    if (c < cols && !(self && gc == gq)) {
      const double w = weight ? weight[gc] : 1.0;
      if (w > 0.0) {
        const double val = nq[q] + nr[c] - 2.0 * double(S[q * cols + c]);
        u = (val + bc.coef * (nq[q] + nr[c]) + bc.tau) * w;
      }
    }
    const double kth_v = __shfl_sync(0xffffffff, my_v, k - 1);
    const long long kth_i = __shfl_sync(0xffffffff, my_i, k - 1);
    unsigned want = __ballot_sync(0xffffffff, u < kInf && before(u, gc, kth_v, kth_i));
    while (want) {
      const int src = __ffs(want) - 1;
      want &= want - 1;
      const double cv = __shfl_sync(0xffffffff, u, src);
      const long long ci = __shfl_sync(0xffffffff, gc, src);
      const double kv = __shfl_sync(0xffffffff, my_v, k - 1);
      const long long ki = __shfl_sync(0xffffffff, my_i, k - 1);
      if (!before(cv, ci, kv, ki)) continue;
      // insert at position p = number of list entries before (cv, ci)
      const unsigned less = __ballot_sync(0xffffffff, lane < k && before(my_v, my_i, cv, ci));
      const int p = __popc(less);
      const double up_v = __shfl_up_sync(0xffffffff, my_v, 1);
      const long long up_i = __shfl_up_sync(0xffffffff, my_i, 1);
      if (lane < k && lane > p) {
        my_v = up_v;
        my_i = up_i;
      }
      if (lane == p) {
        my_v = cv;
        my_i = ci;
      }
    }
  }
  if (lane < k) {
    best_val[gq * k + lane] = my_v;
    best_idx[gq * k + lane] = my_i;
  }
}

// Minimum of U per row or per column by atomicMin on the bit pattern (U >= 0, so bits order like values).
__global__ void min_upper_kernel(const float* S, const double* nq, const double* nr, int64_t rows, int64_t cols,
                                 int64_t i0, int64_t j0, BoundCoef bc, unsigned long long* row_min,
                                 unsigned long long* col_min) {
  const int64_t idx = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (idx >= rows * cols) return;
  const int64_t q = idx / cols, c = idx % cols;
  const double val = nq[q] + nr[c] - 2.0 * double(S[idx]);
  const double u = fmax(val + bc.coef * (nq[q] + nr[c]) + bc.tau, 0.0);
  const unsigned long long bits = static_cast<unsigned long long>(__double_as_longlong(u));
  if (row_min) atomicMin(&row_min[i0 + q], bits);
  if (col_min) atomicMin(&col_min[j0 + c], bits);
}

// ------------------------------------------------------------------ step B: candidates
struct Cand {
  long long key;  // the row (or column) whose minimum / k smallest are sought
  long long other;
  double value;
};

__global__ void collect_kernel(const float* S, const double* nq, const double* nr, int64_t rows, int64_t cols,
                               int64_t i0, int64_t j0, bool self, const double* weight, BoundCoef bc,
                               const double* row_limit, const double* col_limit, Cand* out, unsigned long long* count,
                               unsigned long long cap, bool by_column) {
  const int64_t idx = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (idx >= rows * cols) return;
  const int64_t q = idx / cols, c = idx % cols, gq = i0 + q, gc = j0 + c;
  if (self && gq == gc) return;
  const double w = weight ? weight[gc] : 1.0;
  if (!(w > 0.0)) return;
  const double val = nq[q] + nr[c] - 2.0 * double(S[idx]);
  const double lo = (val - bc.coef * (nq[q] + nr[c]) - bc.tau) * w;
  const double limit = by_column ? col_limit[gc] : row_limit[gq];
  if (lo > limit) return;
  const unsigned long long slot = atomicAdd(count, 1ull);
  if (slot < cap) out[slot] = by_column ? Cand{gc, gq, 0.0} : Cand{gq, gc, 0.0};
}

// ------------------------------------------------------------------ step C: exact values, selection
__device__ double exact_sqdist_warp(const MatView& x, int64_t q, const MatView& y, int64_t r, int lane) {
  double s = 0.0;
  for (int64_t j = lane; j < x.cols; j += 32) {
    const double t = load_elem(x.data, x.dtype, q * x.row_stride + j * x.col_stride) -
                     load_elem(y.data, y.dtype, r * y.row_stride + j * y.col_stride);
    s += t * t;
  }
  for (int off = 16; off > 0; off >>= 1) s += __shfl_down_sync(0xffffffff, s, off);
  return __shfl_sync(0xffffffff, s, 0);
}

// by_column: key is a column of y and other a row of x.
__global__ void exact_kernel(MatView x, MatView y, Cand* c, int64_t n, const double* weight, bool by_column) {
  const int64_t w = (int64_t(blockIdx.x) * blockDim.x + threadIdx.x) >> 5;
  const int lane = threadIdx.x & 31;
  if (w >= n) return;
  const int64_t q = by_column ? c[w].other : c[w].key;
  const int64_t r = by_column ? c[w].key : c[w].other;
  const double f = exact_sqdist_warp(x, q, y, r, lane);
  if (lane == 0) c[w].value = f * (weight ? weight[r] : 1.0);
}

struct CandLess {
  __host__ __device__ bool operator()(const Cand& a, const Cand& b) const {
    if (a.key != b.key) return a.key < b.key;
    if (a.value != b.value) return a.value < b.value;
    return a.other < b.other;
  }
};

// After sorting: the first k candidates of each key go to out_value/out_index (key-major, k per key).
__global__ void take_first_kernel(const Cand* c, int64_t n, int k, double* out_value, long long* out_index) {
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= n) return;
  if (i > 0 && c[i - 1].key == c[i].key) return;  // not the start of a key's run
  for (int j = 0; j < k && i + j < n && c[i + j].key == c[i].key; ++j) {
    out_value[c[i].key * k + j] = c[i + j].value;
    out_index[c[i].key * k + j] = c[i + j].other;
  }
}

// ------------------------------------------------------------------ radius decisions
struct Recheck {
  long long q, c;
  int flags;  // 1: row count against col radius, 2: column "any" against row radius
};

__global__ void radius_kernel(const float* S, const double* nq, const double* nr, int64_t rows, int64_t cols,
                              int64_t i0, int64_t j0, BoundCoef bc, const double* col_r2, const double* row_r2,
                              long long* row_count, int* col_any, Recheck* out, unsigned long long* count,
                              unsigned long long cap) {
  // Certain decisions are the same for <= and <: inside when f <= val + e < R; a pair with val - e <= R that is
  // not certainly inside is rechecked exactly, with the caller's comparison.
  const int lane = threadIdx.x & 31;
  const int64_t q = (int64_t(blockIdx.x) * blockDim.x + threadIdx.x) >> 5;  // one warp per row
  if (q >= rows) return;
  const int64_t gq = i0 + q;
  long long local = 0;
  for (int64_t c = lane; c < cols; c += 32) {
    const int64_t gc = j0 + c;
    const double e = bc.coef * (nq[q] + nr[c]) + bc.tau;
    const double val = nq[q] + nr[c] - 2.0 * double(S[q * cols + c]);
    int flags = 0;
    if (col_r2) {
      const double R = col_r2[gc];
      if (val - e <= R) {
        if (val + e < R) ++local; else flags |= 1;
      }
    }
    if (row_r2 && !col_any[gc]) {
      const double R = row_r2[gq];
      if (val - e <= R) {
        if (val + e < R) col_any[gc] = 1; else flags |= 2;
      }
    }
    if (flags) {
      const unsigned long long slot = atomicAdd(count, 1ull);
      if (slot < cap) out[slot] = Recheck{gq, gc, flags};
    }
  }
  for (int off = 16; off > 0; off >>= 1) local += __shfl_down_sync(0xffffffff, local, off);
  if (lane == 0 && col_r2) row_count[gq] += local;
}

__global__ void recheck_kernel(MatView x, MatView y, const Recheck* r, int64_t n, const double* col_r2,
                               const double* row_r2, bool strict, long long* row_count, int* col_any) {
  const int64_t w = (int64_t(blockIdx.x) * blockDim.x + threadIdx.x) >> 5;
  const int lane = threadIdx.x & 31;
  if (w >= n) return;
  const Recheck p = r[w];
  const double f = exact_sqdist_warp(x, p.q, y, p.c, lane);
  if (lane != 0) return;
  if (p.flags & 1) {
    const double R = col_r2[p.c];
    if (strict ? f < R : f <= R) atomicAdd(reinterpret_cast<unsigned long long*>(&row_count[p.q]), 1ull);
  }
  if (p.flags & 2) {
    const double R = row_r2[p.q];
    if (strict ? f < R : f <= R) col_any[p.c] = 1;
  }
}

__global__ void bits_to_double_kernel(const unsigned long long* bits, double* out, int64_t n) {
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < n) out[i] = __longlong_as_double(static_cast<long long>(bits[i]));
}

__global__ void kth_kernel(const double* best_val, int k, int64_t n, double* out) {
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < n) out[i] = best_val[i * k + (k - 1)];
}

// ------------------------------------------------------------------ driver pieces
struct Tiles {
  int64_t tr, tc;
};

Tiles tile_sizes(const TileConfig& t, int64_t n, int64_t m, int64_t d) {
  int64_t T = 8192;
  while (T > 256 && 4 * T * T + 8 * T * d + 16 * T > t.workspace_bytes) T -= T / 4;
  Tiles out{std::min(T, n), std::min(T, m)};
  if (t.max_tile_rows > 0) out.tr = std::min(out.tr, t.max_tile_rows);
  if (t.max_tile_cols > 0) out.tc = std::min(out.tc, t.max_tile_cols);
  out.tr = std::max<int64_t>(1, out.tr);
  out.tc = std::max<int64_t>(1, out.tc);
  return out;
}

// Run fn(block_x, block_y, S) over every tile of x against y.
template <typename Fn>
void for_each_tile(const MatView& x, const MatView& y, const double* center, const Tiles& t, cudaStream_t s,
                   cublasHandle_t h, Fn fn) {
  const int64_t d = x.cols;
  DeviceBuffer<float> bx(size_t(t.tr * d), s), by(size_t(t.tc * d), s), S(size_t(t.tr * t.tc), s);
  DeviceBuffer<double> nx(size_t(t.tr), s), ny(size_t(t.tc), s);
  Block a, b;
  a.data = bx.get();
  a.norm = nx.get();
  b.data = by.get();
  b.norm = ny.get();
  for (int64_t i0 = 0; i0 < x.rows; i0 += t.tr) {
    fill_block(x, center, i0, std::min(t.tr, x.rows - i0), a, s);
    for (int64_t j0 = 0; j0 < y.rows; j0 += t.tc) {
      fill_block(y, center, j0, std::min(t.tc, y.rows - j0), b, s);
      gemm_tile(h, a, b, d, S.get());
      fn(a, b, S.get());
    }
  }
}

// Steps B and C for one kind of selection, retried with a larger buffer when candidates overflow it.
void select_exact(const MatView& x, const MatView& y, const double* center, const Tiles& t,
                               cudaStream_t s, cublasHandle_t h, BoundCoef bc, bool self, const double* weight,
                               const double* row_limit, const double* col_limit, bool by_column, int64_t keys, int k,
                               double* out_value, long long* out_index, int64_t& evaluated) {
  unsigned long long cap = static_cast<unsigned long long>(keys) * (k + 16);
  for (;;) {
    DeviceBuffer<Cand> cand(size_t(cap), s);
    DeviceBuffer<unsigned long long> count(1, s);
    GM_CUDA(cudaMemsetAsync(count.get(), 0, sizeof(unsigned long long), s));
    for_each_tile(x, y, center, t, s, h, [&](const Block& a, const Block& b, const float* S) {
      collect_kernel<<<nblocks(a.rows * b.rows), 256, 0, s>>>(S, a.norm, b.norm, a.rows, b.rows, a.begin, b.begin,
                                                               self, weight, bc, row_limit, col_limit, cand.get(),
                                                               count.get(), cap, by_column);
      GM_CUDA(cudaGetLastError());
    });
    unsigned long long n = 0;
    GM_CUDA(cudaMemcpyAsync(&n, count.get(), sizeof(n), cudaMemcpyDeviceToHost, s));
    GM_CUDA(cudaStreamSynchronize(s));
    if (n > cap) {  // every candidate is needed: grow and collect again
      cap = n;
      continue;
    }
    evaluated += int64_t(n);
    exact_kernel<<<nblocks(int64_t(n) * 32), 256, 0, s>>>(x, y, cand.get(), int64_t(n), weight, by_column);
    GM_CUDA(cudaGetLastError());
    thrust::sort(thrust::cuda::par.on(s), cand.get(), cand.get() + n, CandLess());
    take_first_kernel<<<nblocks(int64_t(n)), 256, 0, s>>>(cand.get(), int64_t(n), k, out_value, out_index);
    GM_CUDA(cudaGetLastError());
    return;
  }
}

DeviceBuffer<double> center_on_device(const double* host_center, int64_t d, cudaStream_t s) {
  DeviceBuffer<double> c(host_center ? size_t(d) : 0, s);
  if (host_center) GM_CUDA(cudaMemcpyAsync(c.get(), host_center, sizeof(double) * d, cudaMemcpyHostToDevice, s));
  return c;
}

template <typename T>
DeviceBuffer<T> upload(const T* host, int64_t n, cudaStream_t s) {
  DeviceBuffer<T> b(host ? size_t(n) : 0, s);
  if (host) GM_CUDA(cudaMemcpyAsync(b.get(), host, sizeof(T) * n, cudaMemcpyHostToDevice, s));
  return b;
}

}  // namespace

void knn_device(KnnParams& p, uintptr_t stream_int) {
  GM_REQUIRE(p.x.cols == p.y.cols, "the two feature sets have different dimensions");
  const int64_t n = p.x.rows, m = p.y.rows, d = p.x.cols, k = p.k;
  GM_REQUIRE(k >= 1 && k <= kMaxK, "k must be in [1, " + std::to_string(kMaxK) + "] on the GPU");
  GM_REQUIRE(p.self ? k <= n - 1 : k <= m, "k is too large for the number of samples");
  const cudaStream_t s = reinterpret_cast<cudaStream_t>(stream_int);
  cublasHandle_t h = cublas_handle(s);
  const BoundCoef bc = bound_coef(d);
  const Tiles t = tile_sizes(p.tiles, n, m, d);
  DeviceBuffer<double> center = center_on_device(p.center, d, s);
  DeviceBuffer<double> weight = upload(p.col_weight, m, s);
  const double* w = p.col_weight ? weight.get() : nullptr;
  // A: k smallest upper bounds per row
  DeviceBuffer<double> best_val(size_t(n * k), s), limit(size_t(n), s);
  DeviceBuffer<long long> best_idx(size_t(n * k), s);
  {
    std::vector<double> inf(static_cast<size_t>(n * k), kInf);
    std::vector<long long> none(static_cast<size_t>(n * k), -1);
    GM_CUDA(cudaMemcpyAsync(best_val.get(), inf.data(), sizeof(double) * n * k, cudaMemcpyHostToDevice, s));
    GM_CUDA(cudaMemcpyAsync(best_idx.get(), none.data(), sizeof(long long) * n * k, cudaMemcpyHostToDevice, s));
    for_each_tile(p.x, p.y, p.center ? center.get() : nullptr, t, s, h, [&](const Block& a, const Block& b, const float* S) {
      topk_upper_kernel<<<nblocks(a.rows * 32), 256, 0, s>>>(S, a.norm, b.norm, a.rows, b.rows, a.begin, b.begin,
                                                             p.self, w, bc, int(k), best_val.get(), best_idx.get());
      GM_CUDA(cudaGetLastError());
    });
    GM_CUDA(cudaStreamSynchronize(s));  // the host vectors above must outlive the copies
  }
  kth_kernel<<<nblocks(n), 256, 0, s>>>(best_val.get(), int(k), n, limit.get());
  GM_CUDA(cudaGetLastError());
  // B + C: exact k smallest by (value, index); rows with fewer than k qualifying columns keep inf / -1
  DeviceBuffer<double> out_v(size_t(n * k), s);
  DeviceBuffer<long long> out_i(size_t(n * k), s);
  {
    std::vector<double> inf(static_cast<size_t>(n * k), kInf);
    std::vector<long long> none(static_cast<size_t>(n * k), -1);
    GM_CUDA(cudaMemcpyAsync(out_v.get(), inf.data(), sizeof(double) * n * k, cudaMemcpyHostToDevice, s));
    GM_CUDA(cudaMemcpyAsync(out_i.get(), none.data(), sizeof(long long) * n * k, cudaMemcpyHostToDevice, s));
    int64_t evaluated = 0;
    select_exact(p.x, p.y, p.center ? center.get() : nullptr, t, s, h, bc, p.self, w, limit.get(), nullptr, false,
                      n, int(k), out_v.get(), out_i.get(), evaluated);
    p.rechecked = evaluated;
    GM_CUDA(cudaMemcpyAsync(p.out_value, out_v.get(), sizeof(double) * n * k, cudaMemcpyDeviceToHost, s));
    GM_CUDA(cudaMemcpyAsync(p.out_index, out_i.get(), sizeof(long long) * n * k, cudaMemcpyDeviceToHost, s));
    GM_CUDA(cudaStreamSynchronize(s));
  }
}

void cross_device(CrossParams& p, uintptr_t stream_int) {
  GM_REQUIRE(p.x.cols == p.y.cols, "the two feature sets have different dimensions");
  const int64_t n = p.x.rows, m = p.y.rows, d = p.x.cols;
  const cudaStream_t s = reinterpret_cast<cudaStream_t>(stream_int);
  cublasHandle_t h = cublas_handle(s);
  const BoundCoef bc = bound_coef(d);
  const Tiles t = tile_sizes(p.tiles, n, m, d);
  DeviceBuffer<double> center = center_on_device(p.center, d, s);
  const double* cptr = p.center ? center.get() : nullptr;
  DeviceBuffer<double> col_r2 = upload(p.col_radius2, m, s), row_r2 = upload(p.row_radius2, n, s);
  int64_t rechecked = 0;
  if (p.col_radius2 || p.row_radius2) {
    unsigned long long cap = static_cast<unsigned long long>(n + m) * 4 + 1024;
    for (;;) {
      DeviceBuffer<long long> row_count(size_t(n), s);
      DeviceBuffer<int> col_any(size_t(m), s);
      DeviceBuffer<Recheck> queue(size_t(cap), s);
      DeviceBuffer<unsigned long long> count(1, s);
      GM_CUDA(cudaMemsetAsync(row_count.get(), 0, sizeof(long long) * n, s));
      GM_CUDA(cudaMemsetAsync(col_any.get(), 0, sizeof(int) * m, s));
      GM_CUDA(cudaMemsetAsync(count.get(), 0, sizeof(unsigned long long), s));
      for_each_tile(p.x, p.y, cptr, t, s, h, [&](const Block& a, const Block& b, const float* S) {
        radius_kernel<<<nblocks(a.rows * 32), 256, 0, s>>>(S, a.norm, b.norm, a.rows, b.rows, a.begin, b.begin, bc,
                                                           p.col_radius2 ? col_r2.get() : nullptr,
                                                           p.row_radius2 ? row_r2.get() : nullptr, row_count.get(),
                                                           col_any.get(), queue.get(), count.get(), cap);
        GM_CUDA(cudaGetLastError());
      });
      unsigned long long nq = 0;
      GM_CUDA(cudaMemcpyAsync(&nq, count.get(), sizeof(nq), cudaMemcpyDeviceToHost, s));
      GM_CUDA(cudaStreamSynchronize(s));
      if (nq > cap) {  // every borderline pair must be rechecked: grow the queue and run the pass again
        cap = nq;
        continue;
      }
      rechecked += int64_t(nq);
      recheck_kernel<<<nblocks(int64_t(nq) * 32), 256, 0, s>>>(p.x, p.y, queue.get(), int64_t(nq),
                                                               p.col_radius2 ? col_r2.get() : nullptr,
                                                               p.row_radius2 ? row_r2.get() : nullptr, p.strict,
                                                               row_count.get(), col_any.get());
      GM_CUDA(cudaGetLastError());
      std::vector<int> any(static_cast<size_t>(m));
      if (p.col_radius2)
        GM_CUDA(cudaMemcpyAsync(p.row_count, row_count.get(), sizeof(long long) * n, cudaMemcpyDeviceToHost, s));
      GM_CUDA(cudaMemcpyAsync(any.data(), col_any.get(), sizeof(int) * m, cudaMemcpyDeviceToHost, s));
      GM_CUDA(cudaStreamSynchronize(s));
      if (p.row_radius2)
        for (int64_t c = 0; c < m; ++c) p.col_any[c] = uint8_t(any[size_t(c)] != 0);
      break;
    }
  }
  if (p.col_min_value || p.row_min_value) {
    // A: minima of the upper bounds by atomicMin on bit patterns
    const unsigned long long inf_bits = 0x7ff0000000000000ull;
    std::vector<unsigned long long> init(static_cast<size_t>(std::max(n, m)), inf_bits);
    DeviceBuffer<unsigned long long> rmin(p.row_min_value ? size_t(n) : 0, s), cmin(p.col_min_value ? size_t(m) : 0, s);
    if (p.row_min_value) GM_CUDA(cudaMemcpyAsync(rmin.get(), init.data(), 8 * n, cudaMemcpyHostToDevice, s));
    if (p.col_min_value) GM_CUDA(cudaMemcpyAsync(cmin.get(), init.data(), 8 * m, cudaMemcpyHostToDevice, s));
    for_each_tile(p.x, p.y, cptr, t, s, h, [&](const Block& a, const Block& b, const float* S) {
      min_upper_kernel<<<nblocks(a.rows * b.rows), 256, 0, s>>>(S, a.norm, b.norm, a.rows, b.rows, a.begin, b.begin,
                                                                bc, p.row_min_value ? rmin.get() : nullptr,
                                                                p.col_min_value ? cmin.get() : nullptr);
      GM_CUDA(cudaGetLastError());
    });
    GM_CUDA(cudaStreamSynchronize(s));  // `init` outlives the copies
    for (int side = 0; side < 2; ++side) {
      const bool by_column = side == 1;
      if (by_column ? !p.col_min_value : !p.row_min_value) continue;
      const int64_t keys = by_column ? m : n;
      DeviceBuffer<double> limit(size_t(keys), s), out_v(size_t(keys), s);
      DeviceBuffer<long long> out_i(size_t(keys), s);
      bits_to_double_kernel<<<nblocks(keys), 256, 0, s>>>(by_column ? cmin.get() : rmin.get(), limit.get(), keys);
      GM_CUDA(cudaGetLastError());
      int64_t evaluated = 0;
      select_exact(p.x, p.y, cptr, t, s, h, bc, false, nullptr, by_column ? nullptr : limit.get(),
                        by_column ? limit.get() : nullptr, by_column, keys, 1, out_v.get(), out_i.get(), evaluated);
      rechecked += evaluated;
      double* hv = by_column ? p.col_min_value : p.row_min_value;
      int64_t* hi = by_column ? p.col_argmin : p.row_argmin;
      GM_CUDA(cudaMemcpyAsync(hv, out_v.get(), sizeof(double) * keys, cudaMemcpyDeviceToHost, s));
      GM_CUDA(cudaMemcpyAsync(hi, out_i.get(), sizeof(long long) * keys, cudaMemcpyDeviceToHost, s));
      GM_CUDA(cudaStreamSynchronize(s));
    }
  }
  p.rechecked = rechecked;
}

}  // namespace gm::cuda
