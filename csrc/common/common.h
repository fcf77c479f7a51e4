// Shared pieces of the kernels: strided matrix views, dtype conversion, error helpers, threads.
// Nothing here knows about Python; the bindings build these PODs from arrays.
#pragma once

#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>

namespace gm {

enum class DType : int { F16 = 0, BF16 = 1, F32 = 2, F64 = 3 };

inline size_t dtype_size(DType t) { return t == DType::F64 ? 8 : t == DType::F32 ? 4 : 2; }

inline const char* dtype_name(DType t) {
  switch (t) {
    case DType::F16: return "float16";
    case DType::BF16: return "bfloat16";
    case DType::F32: return "float32";
    case DType::F64: return "float64";
  }
  return "?";
}

// A read-only strided 2-D array: rows are samples, cols are features. Strides are in elements.
struct MatView {
  const void* data = nullptr;
  int64_t rows = 0;
  int64_t cols = 0;
  int64_t row_stride = 0;
  int64_t col_stride = 1;
  DType dtype = DType::F32;
};

// User mistakes: std::invalid_argument (-> ValueError). Internal invariants: std::logic_error with file:line.
[[noreturn]] void throw_internal(const char* file, int line, const char* what);

#define GM_ASSERT(cond)                                                   \
  do {                                                                    \
    if (!(cond)) ::gm::throw_internal(__FILE__, __LINE__, #cond);         \
  } while (0)

#define GM_REQUIRE(cond, msg)                                             \
  do {                                                                    \
    if (!(cond)) throw std::invalid_argument(msg);                        \
  } while (0)

inline float half_to_float(uint16_t h) {
  const uint32_t sign = uint32_t(h & 0x8000u) << 16;
  uint32_t exp = (h >> 10) & 0x1fu;
  uint32_t mant = h & 0x3ffu;
  uint32_t bits;
  if (exp == 0) {
    if (mant == 0) {
      bits = sign;
    } else {  // subnormal: normalise
      exp = 127 - 15 + 1;
      while ((mant & 0x400u) == 0) {
        mant <<= 1;
        --exp;
      }
      mant &= 0x3ffu;
      bits = sign | (exp << 23) | (mant << 13);
    }
  } else if (exp == 0x1f) {
    bits = sign | 0x7f800000u | (mant << 13);
  } else {
    bits = sign | ((exp + 127 - 15) << 23) | (mant << 13);
  }
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

inline float bf16_to_float(uint16_t b) {
  const uint32_t bits = uint32_t(b) << 16;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

// Element (r, c) of a view as T (exact for every supported dtype when T is double).
template <typename T>
inline T load(const MatView& v, int64_t r, int64_t c) {
  const int64_t off = r * v.row_stride + c * v.col_stride;
  switch (v.dtype) {
    case DType::F16: return T(half_to_float(static_cast<const uint16_t*>(v.data)[off]));
    case DType::BF16: return T(bf16_to_float(static_cast<const uint16_t*>(v.data)[off]));
    case DType::F32: return T(static_cast<const float*>(v.data)[off]);
    case DType::F64: return T(static_cast<const double*>(v.data)[off]);
  }
  return T(0);
}

// Row r of a view converted to T, minus `shift` (may be null), written to out[0..cols).
template <typename T>
void load_row(const MatView& v, int64_t r, const double* shift, T* out);

// Columns [c0, c1) of row r, minus shift[c0..c1) (shift may be null), written to out[0..c1-c0).
template <typename T>
void load_row_cols(const MatView& v, int64_t r, int64_t c0, int64_t c1, const double* shift, T* out);

// Advance an optional progress counter that another thread reads (null: nothing to do).
inline void advance_progress(int64_t* counter, int64_t by) {
  if (counter) __atomic_fetch_add(counter, by, __ATOMIC_RELAXED);
}

// Threads used by the OpenMP loops and by BLAS. 0 = library default.
int num_threads();
void set_num_threads(int n);

// Makes BLAS single-threaded while alive, so that BLAS calls made from inside an OpenMP region (one
// per thread) do not oversubscribe the cores. Create it outside the parallel region. Scopes may overlap
// across threads: the first to open saves the caller's BLAS thread count, the last to close restores it.
class BlasSingleThread {
 public:
  BlasSingleThread();
  ~BlasSingleThread();
  BlasSingleThread(const BlasSingleThread&) = delete;
  BlasSingleThread& operator=(const BlasSingleThread&) = delete;
};

}  // namespace gm
