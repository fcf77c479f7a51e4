#include "pairwise/pairwise.h"

#include <cblas.h>
#include <omp.h>

#include <algorithm>
#include <sstream>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

namespace gm {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr int64_t kColChunk = 64;     // columns per task in the column epilogues

// Rounding-error bound: |a - f| <= coef * (nq + nr) + tau for a = nq + nr - 2 sgemm(q~, r~), where
// q~, r~ are the centred rows rounded to float32 and nq, nr their float64 squared norms.
//  - sgemm: |s~ - q~.r~| <= gamma_d |q~||r~| <= gamma_d (nq + nr) / 2, any summation order, FMA or not;
//  - rounding the centred rows to float32: ||q~ - r~|^2 - |q - r|^2| <= ~4u (nq + nr);
//  - float64 work (centring, norms, a itself, and f's own summation): a few (d + 1) 2^-53 (nq + nr);
//  - tau covers float32 underflow of tiny values.
struct Bound {
  double coef;
  double tau;
  // unscale: 2^(2e) for data scaled by 2^-e before the float32 GEMM (norms are in original units, the
  // absolute underflow allowance is in scaled units)
  Bound(int64_t d, double unscale) {
    const double u = std::ldexp(1.0, -24), u64 = std::ldexp(1.0, -53);
    const double du = double(d) * u;
    GM_REQUIRE(du < 0.25, "too many features (" + std::to_string(d) + ") for float32 distance bounds");
    coef = 1.05 * (du / (1.0 - du) + 4.01 * u + (4.0 * double(d) + 32.0) * u64);
    tau = 4.0 * double(d) * std::ldexp(1.0, -120) * unscale;
  }
  double operator()(double nq, double nr) const { return coef * (nq + nr) + tau; }
};

// Exact power-of-two scaling for the float32 GEMM: every k-NN decision is invariant under it, and it keeps
// float32 values and products far from overflow and underflow whatever the magnitude of the features.
struct Scaling {
  double data = 1.0;     // 2^-e, applied to the centred rows before rounding to float32
  double unscale = 1.0;  // 2^(2e), maps a scaled squared distance or dot product back to original units
};

// Largest finite values whose squared distances, summed over d features, stay finite in float64; below the
// smallest, the float64 squared distances of the exact recheck underflow (their digits are lost).
constexpr int kMaxExponent = 480;
constexpr int kMinExponent = -500;

Scaling scaling_for(const MatView& x, const MatView* y, const double* center, int nt) {
  double mx = 0.0;
  for (const MatView* v : {&x, y}) {
    if (!v) continue;
    const int64_t d = v->cols;
    double vmax = 0.0;
#pragma omp parallel num_threads(nt) reduction(max : vmax)
    {
      std::vector<double> row(static_cast<size_t>(d));
#pragma omp for schedule(static)
      for (int64_t i = 0; i < v->rows; ++i) {
        load_row<double>(*v, i, center, row.data());
        for (int64_t j = 0; j < d; ++j) vmax = std::max(vmax, std::abs(row[j]));
      }
    }
    mx = std::max(mx, vmax);
  }
  Scaling sc;
  if (!(mx > 0.0) || !std::isfinite(mx)) return sc;
  const int e = std::ilogb(mx);  // mx * 2^-e lies in [1, 2)
  if (e > kMaxExponent) {
    std::ostringstream os;
    os.precision(3);
    os << "feature values reach " << mx << " after centring: their squared distances overflow float64; divide "
       << "the features by a power of two (k-NN decisions do not change)";
    throw std::invalid_argument(os.str());
  }
  if (e < kMinExponent) {
    std::ostringstream os;
    os.precision(3);
    os << "feature values are at most " << mx << " after centring: their squared distances underflow float64; "
       << "multiply the features by a power of two (k-NN decisions do not change)";
    throw std::invalid_argument(os.str());
  }
  sc.data = std::ldexp(1.0, -e);
  sc.unscale = std::ldexp(1.0, 2 * e);
  return sc;
}

// Float32 centred rows [begin, begin + rows) of a view and their float64 squared norms.
struct Block {
  int64_t begin = 0;
  int64_t rows = 0;
  std::vector<float> data;
  std::vector<double> norm;
};

void fill_block(const MatView& v, const double* center, const Scaling& sc, int64_t begin, int64_t rows, Block& b,
                int nt) {
  const int64_t d = v.cols;
  b.begin = begin;
  b.rows = rows;
  b.data.resize(static_cast<size_t>(rows * d));
  b.norm.resize(static_cast<size_t>(rows));
  bool finite = true;
#pragma omp parallel num_threads(nt) reduction(&& : finite)
  {
    std::vector<double> row(static_cast<size_t>(d));
#pragma omp for schedule(static)
    for (int64_t i = 0; i < rows; ++i) {
      float* out = b.data.data() + i * d;
      load_row<double>(v, begin + i, center, row.data());
      double s = 0.0;
      for (int64_t j = 0; j < d; ++j) {
        out[j] = float(row[j] * sc.data);  // exact power-of-two scaling, then one rounding
        s += double(out[j]) * double(out[j]);
      }
      b.norm[i] = s * sc.unscale;  // original units
      finite = finite && std::isfinite(b.norm[i]);
    }
  }
  GM_REQUIRE(finite, "feature values are too large for float64 squared distances");
}

void tile_sizes(const TileConfig& t, int64_t n, int64_t m, int64_t d, int64_t& tr, int64_t& tc) {
  int64_t T = 4096;
  while (T > 64 && 4 * T * T + 8 * T * d + 16 * T > t.workspace_bytes) T -= T / 4;
  tr = std::max<int64_t>(1, std::min(T, n));
  tc = std::max<int64_t>(1, std::min(T, m));
  if (t.max_tile_rows > 0) tr = std::min(tr, t.max_tile_rows);
  if (t.max_tile_cols > 0) tc = std::min(tc, t.max_tile_cols);
}

// Rows of a tile per sgemm call / epilogue task: one strip per thread, so that each thread packs the
// column block once per tile (packing costs as much as a 128-row strip's arithmetic at d = 2048).
int64_t strip_rows(int64_t rows, int nt) {
  const int64_t s = (rows + nt - 1) / nt;
  return std::max<int64_t>(1, std::min<int64_t>(rows, (s + 15) / 16 * 16));
}

void sgemm_strip(const Block& a, int64_t r0, int64_t r1, const Block& b, int64_t d, float* S) {
  scipy_cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, blasint(r1 - r0), blasint(b.rows), blasint(d), 1.0f,
                    a.data.data() + r0 * d, blasint(d), b.data.data(), blasint(d), 0.0f, S + r0 * b.rows,
                    blasint(b.rows));
}

// Candidates for the k smallest values of one row, each known only within [lo, hi].
// Invariant: every value that can be among the k smallest stays (lo <= k-th smallest hi).
struct Cand {
  double lo, hi;
  int64_t idx;
  bool exact;  // lo == hi is the float64 value
};

// Memory per row stays O(k) whatever the ties: when more than hard_ candidates survive the bounds (exact ties
// between distinct rows, e.g. quantized features), they are recomputed in float64 and only the k best by
// (value, index) stay. A candidate dropped then has k better ones and can never be among the final k, in
// whatever order candidates arrive; later ones enter only if their lower bound reaches the k-th exact value.
class TopK {
 public:
  explicit TopK(int64_t k = 1) : cap_(2 * k + 16), hard_(4 * k + 64) {}

  template <typename ExactFn>
  void offer(double lo, double hi, int64_t idx, int64_t k, const ExactFn& exact) {
    if (lo > bound_) return;
    c_.push_back({lo, hi, idx, false});
    if (int64_t(c_.size()) >= cap_) prune(k, exact);
  }

  template <typename ExactFn>
  void prune(int64_t k, const ExactFn& exact) {
    if (int64_t(c_.size()) >= k) {
      std::nth_element(c_.begin(), c_.begin() + (k - 1), c_.end(),
                       [](const Cand& a, const Cand& b) { return a.hi < b.hi; });
      bound_ = std::min(bound_, c_[size_t(k - 1)].hi);
      const double b = bound_;
      c_.erase(std::remove_if(c_.begin(), c_.end(), [b](const Cand& c) { return c.lo > b; }), c_.end());
    }
    if (int64_t(c_.size()) > hard_) resolve(k, exact);
    // Candidates inside the bound (ties): grow up to the hard cap instead of pruning on every offer.
    cap_ = std::min(hard_ + 1, std::max<int64_t>(cap_, 2 * int64_t(c_.size())));
  }

  template <typename ExactFn>
  void resolve(int64_t k, const ExactFn& exact) {
    for (Cand& c : c_) {
      if (!c.exact) {
        c.lo = c.hi = exact(c.idx);
        c.exact = true;
        ++evaluated_;
      }
    }
    const auto before = [](const Cand& a, const Cand& b) { return a.lo < b.lo || (a.lo == b.lo && a.idx < b.idx); };
    const size_t kk = std::min<size_t>(size_t(k), c_.size());
    std::partial_sort(c_.begin(), c_.begin() + kk, c_.end(), before);
    c_.resize(kk);
    if (kk == size_t(k)) bound_ = std::min(bound_, c_.back().lo);
  }

  const std::vector<Cand>& candidates() const { return c_; }
  int64_t evaluated() const { return evaluated_; }

 private:
  std::vector<Cand> c_;
  double bound_ = kInf;
  int64_t cap_, hard_;
  int64_t evaluated_ = 0;  // float64 values computed while resolving
};

// Exact k smallest of a TopK: every surviving candidate in float64, ordered by (value, index).
template <typename ExactFn>
int64_t finalize(TopK& acc, int64_t k, const ExactFn& exact, double* out_value, int64_t* out_index) {
  acc.prune(k, exact);
  std::vector<std::pair<double, int64_t>> ex;
  ex.reserve(acc.candidates().size());
  int64_t evaluated = acc.evaluated();
  for (const Cand& c : acc.candidates()) {
    ex.emplace_back(c.exact ? c.lo : exact(c.idx), c.idx);
    evaluated += c.exact ? 0 : 1;
  }
  const size_t kk = std::min<size_t>(static_cast<size_t>(k), ex.size());
  std::partial_sort(ex.begin(), ex.begin() + kk, ex.end());
  for (size_t i = 0; i < size_t(k); ++i) {
    out_value[i] = i < kk ? ex[i].first : kInf;
    out_index[i] = i < kk ? ex[i].second : -1;
  }
  return evaluated;
}

void check_pair(const MatView& x, const MatView& y) {
  GM_REQUIRE(x.cols == y.cols, "the two feature sets have different dimensions (" + std::to_string(x.cols) +
                                   " and " + std::to_string(y.cols) + ")");
  GM_REQUIRE(x.rows >= 1 && y.rows >= 1, "empty feature set");
}

}  // namespace

double exact_sqdist(const MatView& x, int64_t q, const MatView& y, int64_t r, double* bufq, double* bufr) {
  load_row<double>(x, q, nullptr, bufq);
  load_row<double>(y, r, nullptr, bufr);
  double s = 0.0;
  for (int64_t j = 0; j < x.cols; ++j) {
    const double t = bufq[j] - bufr[j];
    s += t * t;
  }
  return s;
}

void knn(KnnParams& p) {
  check_pair(p.x, p.y);
  const int64_t n = p.x.rows, m = p.y.rows, d = p.x.cols, k = p.k;
  GM_REQUIRE(k >= 1, "k must be >= 1");
  if (p.self) {
    GM_ASSERT(p.x.data == p.y.data && n == m);
    GM_REQUIRE(k <= n - 1, "k = " + std::to_string(k) + " must be smaller than the number of samples (" +
                               std::to_string(n) + ")");
  } else {
    GM_REQUIRE(k <= m, "k = " + std::to_string(k) + " exceeds the number of reference samples (" +
                           std::to_string(m) + ")");
  }
  const bool both = p.out_y_value != nullptr;
  if (both) {
    GM_REQUIRE(!p.self && !p.col_weight && p.out_y_index, "both sides need two sets, no weights and both outputs");
    GM_REQUIRE(p.k_y >= 1 && p.k_y <= n, "k_y = " + std::to_string(p.k_y) + " must be in [1, " + std::to_string(n) +
                                             "] (the rows of x)");
  }
  const int nt = num_threads();
  const Scaling sc = scaling_for(p.x, p.self ? nullptr : &p.y, p.center, nt);
  const Bound bound(d, sc.unscale);
  int64_t tr, tc;
  tile_sizes(p.tiles, n, m, d, tr, tc);
  if (p.self) {
    // Symmetric pass: one tiling for both axes. Diagonal tiles are computed whole, so use at least ~8
    // blocks (tiles of >= 1024 rows keep sgemm efficient) to stay near half the work of a full pass.
    const int64_t target = std::max<int64_t>(1024, ((n + 7) / 8 + 255) / 256 * 256);
    tr = tc = std::min({tr, tc, target});
  }
  std::vector<TopK> acc(static_cast<size_t>(n), TopK(k));
  std::vector<TopK> acc_y(static_cast<size_t>(both ? m : 0), TopK(both ? p.k_y : 1));
  std::vector<float> S(static_cast<size_t>(tr * tc));
  Block bx, by;
  const double* w = p.col_weight;
  {
    BlasSingleThread single;  // one sgemm per OpenMP task
    for (int64_t i0 = 0; i0 < n; advance_progress(p.tiles.progress, std::min(tr, n - i0)), i0 += tr) {
      fill_block(p.x, p.center, sc, i0, std::min(tr, n - i0), bx, nt);
      for (int64_t j0 = p.self ? i0 : 0; j0 < m; j0 += tc) {
        const bool diag = p.self && j0 == i0;
        if (!diag) fill_block(p.y, p.center, sc, j0, std::min(tc, m - j0), by, nt);
        const Block& yb = diag ? bx : by;
        const int64_t rows = bx.rows, cols = yb.rows;
        const int64_t srows = strip_rows(rows, nt);
        const int64_t strips = (rows + srows - 1) / srows;
#pragma omp parallel for schedule(dynamic, 1) num_threads(nt)
        for (int64_t s = 0; s < strips; ++s) {
          const int64_t r0 = s * srows, r1 = std::min(rows, r0 + srows);
          std::vector<double> bq(static_cast<size_t>(d)), br(static_cast<size_t>(d));
          sgemm_strip(bx, r0, r1, yb, d, S.data());
          for (int64_t q = r0; q < r1; ++q) {
            const int64_t gq = i0 + q;
            const double nq = bx.norm[q];
            const float* srow = S.data() + q * cols;
            TopK& a = acc[gq];
            const auto exact = [&](int64_t c) {
              return exact_sqdist(p.x, gq, p.y, c, bq.data(), br.data()) * (w ? w[c] : 1.0);
            };
            for (int64_t c = 0; c < cols; ++c) {
              const int64_t gc = j0 + c;
              if (p.self && gc == gq) continue;
              const double wc = w ? w[gc] : 1.0;
              if (!(wc > 0.0)) continue;
              const double nr = yb.norm[c];
              const double val = nq + nr - 2.0 * sc.unscale * double(srow[c]);
              const double e = bound(nq, nr);
              a.offer((val - e) * wc, (val + e) * wc, gc, k, exact);
            }
          }
        }
        if ((p.self && !diag) || both) {  // the transposed half: rows of block j meet the rows of block i
          // self: into the same accumulators (rows of y are rows of x); both sides: into those of y's rows
          std::vector<TopK>& tacc = both ? acc_y : acc;
          const MatView& trow = both ? p.y : p.x;
          const MatView& tcol = both ? p.x : p.y;
          const int64_t tk = both ? p.k_y : k;
          const int64_t chunks = (cols + kColChunk - 1) / kColChunk;
#pragma omp parallel for schedule(dynamic, 1) num_threads(nt)
          for (int64_t ch = 0; ch < chunks; ++ch) {
            const int64_t c0 = ch * kColChunk, c1 = std::min(cols, c0 + kColChunk);
            std::vector<double> bq(static_cast<size_t>(d)), br(static_cast<size_t>(d));
            for (int64_t q = 0; q < rows; ++q) {
              const int64_t gq = i0 + q;
              const double wq = w ? w[gq] : 1.0;
              if (!(wq > 0.0)) continue;
              const double nq = bx.norm[q];
              const float* srow = S.data() + q * cols;
              for (int64_t c = c0; c < c1; ++c) {
                const double nr = yb.norm[c];
                const double val = nq + nr - 2.0 * sc.unscale * double(srow[c]);
                const double e = bound(nq, nr);
                const int64_t r = j0 + c;  // row r of y (of x in the self pass) meets row gq of x
                tacc[r].offer((val - e) * wq, (val + e) * wq, gq, tk, [&](int64_t col) {
                  return exact_sqdist(trow, r, tcol, col, bq.data(), br.data()) * (w ? w[col] : 1.0);
                });
              }
            }
          }
        }
      }
    }
  }
  int64_t evaluated = 0;
#pragma omp parallel num_threads(nt) reduction(+ : evaluated)
  {
    std::vector<double> bq(static_cast<size_t>(d)), br(static_cast<size_t>(d));
#pragma omp for schedule(dynamic, 64)
    for (int64_t q = 0; q < n; ++q) {
      auto exact = [&](int64_t c) { return exact_sqdist(p.x, q, p.y, c, bq.data(), br.data()) * (w ? w[c] : 1.0); };
      evaluated += finalize(acc[q], k, exact, p.out_value + q * k, p.out_index + q * k);
    }
    if (both) {
#pragma omp for schedule(dynamic, 64)
      for (int64_t r = 0; r < m; ++r) {
        auto exact = [&](int64_t c) { return exact_sqdist(p.y, r, p.x, c, bq.data(), br.data()); };
        evaluated += finalize(acc_y[r], p.k_y, exact, p.out_y_value + r * p.k_y, p.out_y_index + r * p.k_y);
      }
    }
  }
  p.rechecked = evaluated;
}

void cross(CrossParams& p) {
  check_pair(p.x, p.y);
  const int64_t n = p.x.rows, m = p.y.rows, d = p.x.cols;
  GM_ASSERT(!p.col_radius2 || p.row_count);
  GM_ASSERT(!p.row_radius2 || p.col_any);
  GM_ASSERT(!p.col_min_value || p.col_argmin);
  GM_ASSERT(!p.row_min_value || p.row_argmin);
  const bool strict = p.strict;
  auto inside = [strict](double f, double R) { return strict ? f < R : f <= R; };
  const int nt = num_threads();
  const Scaling sc = scaling_for(p.x, &p.y, p.center, nt);
  const Bound bound(d, sc.unscale);
  int64_t tr, tc;
  tile_sizes(p.tiles, n, m, d, tr, tc);
  if (p.col_radius2) std::fill(p.row_count, p.row_count + n, int64_t(0));
  if (p.row_radius2) std::fill(p.col_any, p.col_any + m, uint8_t(0));
  std::vector<TopK> row_acc(p.row_min_value ? size_t(n) : 0);
  std::vector<TopK> col_acc(p.col_min_value ? size_t(m) : 0);
  std::vector<float> S(static_cast<size_t>(tr * tc));
  Block bx, by;
  int64_t rechecked = 0;
  {
    BlasSingleThread single;
    for (int64_t i0 = 0; i0 < n; advance_progress(p.tiles.progress, std::min(tr, n - i0)), i0 += tr) {
      fill_block(p.x, p.center, sc, i0, std::min(tr, n - i0), bx, nt);
      for (int64_t j0 = 0; j0 < m; j0 += tc) {
        fill_block(p.y, p.center, sc, j0, std::min(tc, m - j0), by, nt);
        const int64_t rows = bx.rows, cols = by.rows;
        const int64_t srows = strip_rows(rows, nt);
        const int64_t strips = (rows + srows - 1) / srows;
#pragma omp parallel num_threads(nt) reduction(+ : rechecked)
        {
          std::vector<double> bq(static_cast<size_t>(d)), br(static_cast<size_t>(d));
#pragma omp for schedule(dynamic, 1)
          for (int64_t s = 0; s < strips; ++s) {
            const int64_t r0 = s * srows, r1 = std::min(rows, r0 + srows);
            sgemm_strip(bx, r0, r1, by, d, S.data());
            if (!p.col_radius2 && !p.row_min_value) continue;
            for (int64_t q = r0; q < r1; ++q) {
              const int64_t gq = i0 + q;
              const double nq = bx.norm[q];
              const float* srow = S.data() + q * cols;
              int64_t count = 0;
              for (int64_t c = 0; c < cols; ++c) {
                const int64_t gc = j0 + c;
                const double nr = by.norm[c];
                const double val = nq + nr - 2.0 * sc.unscale * double(srow[c]);
                const double e = bound(nq, nr);
                if (p.col_radius2) {
                  const double R = p.col_radius2[gc];
                  if (val - e <= R) {  // else certainly outside: f >= val - e > R
                    if (val + e < R) {  // certainly inside: f <= val + e < R
                      count += p.col_multiplicity ? p.col_multiplicity[gc] : 1;
                    } else {
                      ++rechecked;
                      if (inside(exact_sqdist(p.x, gq, p.y, gc, bq.data(), br.data()), R))
                        count += p.col_multiplicity ? p.col_multiplicity[gc] : 1;
                    }
                  }
                }
                if (p.row_min_value)
                  row_acc[gq].offer(val - e, val + e, gc, 1, [&](int64_t col) {
                    return exact_sqdist(p.x, gq, p.y, col, bq.data(), br.data());
                  });
              }
              if (p.col_radius2) p.row_count[gq] += count;
            }
          }
          if (p.row_radius2 || p.col_min_value) {
            const int64_t chunks = (cols + kColChunk - 1) / kColChunk;
#pragma omp for schedule(dynamic, 1)
            for (int64_t ch = 0; ch < chunks; ++ch) {
              const int64_t c0 = ch * kColChunk, c1 = std::min(cols, c0 + kColChunk);
              for (int64_t q = 0; q < rows; ++q) {
                const int64_t gq = i0 + q;
                const double nq = bx.norm[q];
                const double Rq = p.row_radius2 ? p.row_radius2[gq] : 0.0;
                const float* srow = S.data() + q * cols;
                for (int64_t c = c0; c < c1; ++c) {
                  const int64_t gc = j0 + c;
                  const double nr = by.norm[c];
                  const double val = nq + nr - 2.0 * sc.unscale * double(srow[c]);
                  const double e = bound(nq, nr);
                  if (p.row_radius2 && !p.col_any[gc] && val - e <= Rq) {
                    if (val + e < Rq) {
                      p.col_any[gc] = 1;
                    } else {
                      ++rechecked;
                      if (inside(exact_sqdist(p.x, gq, p.y, gc, bq.data(), br.data()), Rq)) p.col_any[gc] = 1;
                    }
                  }
                  if (p.col_min_value)
                    col_acc[gc].offer(val - e, val + e, gq, 1, [&](int64_t row) {
                      return exact_sqdist(p.x, row, p.y, gc, bq.data(), br.data());
                    });
                }
              }
            }
          }
        }
      }
    }
  }
#pragma omp parallel num_threads(nt) reduction(+ : rechecked)
  {
    std::vector<double> bq(static_cast<size_t>(d)), br(static_cast<size_t>(d));
    if (p.row_min_value) {
#pragma omp for schedule(dynamic, 64)
      for (int64_t q = 0; q < n; ++q) {
        auto exact = [&](int64_t c) { return exact_sqdist(p.x, q, p.y, c, bq.data(), br.data()); };
        rechecked += finalize(row_acc[q], 1, exact, p.row_min_value + q, p.row_argmin + q);
      }
    }
    if (p.col_min_value) {
#pragma omp for schedule(dynamic, 64)
      for (int64_t c = 0; c < m; ++c) {
        auto exact = [&](int64_t q) { return exact_sqdist(p.x, q, p.y, c, bq.data(), br.data()); };
        rechecked += finalize(col_acc[c], 1, exact, p.col_min_value + c, p.col_argmin + c);
      }
    }
  }
  p.rechecked = rechecked;
}

void pairs_within(PairsParams& p) {
  check_pair(p.x, p.y);
  const int64_t n = p.x.rows, m = p.y.rows, d = p.x.cols;
  const int nt = num_threads();
  const Scaling sc = scaling_for(p.x, &p.y, p.center, nt);
  const Bound bound(d, sc.unscale);
  int64_t tr, tc;
  tile_sizes(p.tiles, n, m, d, tr, tc);
  struct Found {
    std::vector<int64_t> q, c;
    std::vector<double> f;
  };
  std::vector<Found> found(static_cast<size_t>(nt));
  std::vector<float> S(static_cast<size_t>(tr * tc));
  Block bx, by;
  int64_t rechecked = 0;
  {
    BlasSingleThread single;
    for (int64_t i0 = 0; i0 < n; advance_progress(p.tiles.progress, std::min(tr, n - i0)), i0 += tr) {
      fill_block(p.x, p.center, sc, i0, std::min(tr, n - i0), bx, nt);
      for (int64_t j0 = 0; j0 < m; j0 += tc) {
        fill_block(p.y, p.center, sc, j0, std::min(tc, m - j0), by, nt);
        const int64_t rows = bx.rows, cols = by.rows;
        const int64_t srows = strip_rows(rows, nt);
        const int64_t strips = (rows + srows - 1) / srows;
#pragma omp parallel num_threads(nt) reduction(+ : rechecked)
        {
          std::vector<double> bq(static_cast<size_t>(d)), br(static_cast<size_t>(d));
          Found& mine = found[static_cast<size_t>(omp_get_thread_num())];
#pragma omp for schedule(dynamic, 1)
          for (int64_t s = 0; s < strips; ++s) {
            const int64_t r0 = s * srows, r1 = std::min(rows, r0 + srows);
            sgemm_strip(bx, r0, r1, by, d, S.data());
            for (int64_t q = r0; q < r1; ++q) {
              const int64_t gq = i0 + q;
              const double nq = bx.norm[q];
              const double Rq = p.row_radius2 ? p.row_radius2[gq] : -1.0;
              const float* srow = S.data() + q * cols;
              for (int64_t c = 0; c < cols; ++c) {
                const int64_t gc = j0 + c;
                const double R = std::max(Rq, p.col_radius2 ? p.col_radius2[gc] : -1.0);
                if (R < 0.0) continue;
                const double val = nq + by.norm[c] - 2.0 * sc.unscale * double(srow[c]);
                if (val - bound(nq, by.norm[c]) > R) continue;  // certainly outside: f >= val - e > R
                ++rechecked;
                const double f = exact_sqdist(p.x, gq, p.y, gc, bq.data(), br.data());
                if (f <= R) {
                  mine.q.push_back(gq);
                  mine.c.push_back(gc);
                  mine.f.push_back(f);
                }
              }
            }
          }
        }
      }
    }
  }
  std::vector<std::pair<std::pair<int64_t, int64_t>, double>> all;
  size_t total = 0;
  for (const Found& f : found) total += f.q.size();
  all.reserve(total);
  for (Found& f : found) {
    for (size_t i = 0; i < f.q.size(); ++i) all.push_back({{f.q[i], f.c[i]}, f.f[i]});
    f = Found();
  }
  std::sort(all.begin(), all.end());
  p.rows.resize(total);
  p.cols.resize(total);
  p.values.resize(total);
  for (size_t i = 0; i < total; ++i) {
    p.rows[i] = all[i].first.first;
    p.cols[i] = all[i].first.second;
    p.values[i] = all[i].second;
  }
  p.rechecked = rechecked;
}

}  // namespace gm
