#include "common/common.h"

#include <omp.h>

#include <cblas.h>
#include <mutex>
#include <sstream>

namespace gm {

void throw_internal(const char* file, int line, const char* what) {
  std::ostringstream os;
  os << "ganmetrics internal error at " << file << ":" << line << ": " << what;
  throw std::logic_error(os.str());
}

template <typename T, typename Src, typename Conv>
static void convert_row(const Src* src, int64_t stride, int64_t n, const double* shift, T* out, Conv conv) {
  if (shift) {
    for (int64_t c = 0; c < n; ++c) out[c] = T(double(conv(src[c * stride])) - shift[c]);
  } else {
    for (int64_t c = 0; c < n; ++c) out[c] = T(conv(src[c * stride]));
  }
}

template <typename T>
void load_row(const MatView& v, int64_t r, const double* shift, T* out) {
  const int64_t n = v.cols, s = v.col_stride;
  switch (v.dtype) {
    case DType::F16:
      convert_row(static_cast<const uint16_t*>(v.data) + r * v.row_stride, s, n, shift, out, half_to_float);
      break;
    case DType::BF16:
      convert_row(static_cast<const uint16_t*>(v.data) + r * v.row_stride, s, n, shift, out, bf16_to_float);
      break;
    case DType::F32:
      convert_row(static_cast<const float*>(v.data) + r * v.row_stride, s, n, shift, out, [](float x) { return x; });
      break;
    case DType::F64:
      convert_row(static_cast<const double*>(v.data) + r * v.row_stride, s, n, shift, out, [](double x) { return x; });
      break;
  }
}

template void load_row<float>(const MatView&, int64_t, const double*, float*);
template void load_row<double>(const MatView&, int64_t, const double*, double*);

template <typename T>
void load_row_cols(const MatView& v, int64_t r, int64_t c0, int64_t c1, const double* shift, T* out) {
  MatView part = v;
  part.cols = c1 - c0;
  part.data = static_cast<const char*>(v.data) + c0 * v.col_stride * int64_t(dtype_size(v.dtype));
  load_row<T>(part, r, shift ? shift + c0 : nullptr, out);
}

template void load_row_cols<double>(const MatView&, int64_t, int64_t, int64_t, const double*, double*);

static int g_threads = 0;

// The OpenMP default (OMP_NUM_THREADS or the core count) as seen when first asked, before any override.
static int default_threads() {
  static const int d = omp_get_max_threads();
  return d;
}

int num_threads() { return g_threads > 0 ? g_threads : default_threads(); }

namespace {
std::mutex g_blas_mutex;  // guards the two below
int g_blas_scopes = 0;    // open BlasSingleThread scopes, across threads
int g_blas_saved = 0;     // the BLAS thread count to restore when the last scope closes
}  // namespace

void set_num_threads(int n) {
  GM_REQUIRE(n >= 0 && n <= 1024, "num_threads must be in [0, 1024] (0 restores the default)");
  default_threads();
  g_threads = n;
  // Every parallel region names its thread count (num_threads(num_threads())), so the OpenMP default is left
  // alone: torch, which shares libgomp's setting in this process, keeps its own thread count.
  const int eff = num_threads();
  std::lock_guard<std::mutex> lock(g_blas_mutex);
  if (g_blas_scopes > 0) {
    g_blas_saved = eff;  // applied when the open scopes close
  } else {
    scipy_openblas_set_num_threads(eff);
  }
}

BlasSingleThread::BlasSingleThread() {
  std::lock_guard<std::mutex> lock(g_blas_mutex);
  if (g_blas_scopes++ == 0) {
    g_blas_saved = scipy_openblas_get_num_threads();
    scipy_openblas_set_num_threads(1);
  }
}
BlasSingleThread::~BlasSingleThread() {
  std::lock_guard<std::mutex> lock(g_blas_mutex);
  if (--g_blas_scopes == 0) scipy_openblas_set_num_threads(g_blas_saved);
}

}  // namespace gm
