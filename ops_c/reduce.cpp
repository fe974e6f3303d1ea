// reduce.cpp: sum, prod, max, min, argmax, argmin over the last n_reduce dims of a strided
// tensor (Python moves the reduced dims to the end). Each reduction is a small "reducer" struct
// (an accumulator with init/add/merge/finish); one kernel template walks the tensor in one of
// two orders, picked from the strides:
//   inner: the reduced dims are the fast ones (sum over the last dim of a row-major matrix):
//          each output reduces its own run of elements (vectorised for contiguous runs);
//   outer: a kept dim is the fast one (sum over the first dim): whole rows are accumulated into
//          a vector of accumulators, so memory is still read row by row, vectorised across it.
// Sums go blockwise (nearly pairwise) with double across blocks, integers in int64: float32 sums
// of millions of elements stay within ~1e-7 of the exact value.
// Not here: mean/var/logsumexp (composites in Python), reducing over zero elements for max/min.
#include <cmath>
#include <limits>

#include "dtypes.h"
#include "kernels.h"
#include "strided.h"

namespace tt {
namespace {

template <class C> inline bool is_nan(C x) {
  if constexpr (std::is_floating_point_v<C>) return std::isnan(x);
  else return false;
}

// Folds the run x[0], x[s], ..., x[(n - 1) s] using kLanes independent partial results, which the compiler
// keeps in a few SIMD registers: consecutive steps then do not wait for each other (a single
// accumulator would be bound by the latency of one add per element). Lanes merge as a tree.
template <class Acc, class T, class Step>
Acc fold_lanes(const T* x, int64_t n, int64_t s, Acc init, const Step& step) {
  constexpr int kLanes = 16;
  Acc part[kLanes];
  for (int j = 0; j < kLanes; ++j) part[j] = init;
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes)
    for (int j = 0; j < kLanes; ++j) part[j] = step(part[j], Acc(load(x[(i + j) * s])));
  for (; i < n; ++i) part[0] = step(part[0], Acc(load(x[i * s])));
  for (int w = kLanes / 2; w > 0; w /= 2)
    for (int j = 0; j < w; ++j) part[j] = step(part[j], part[j + w]);
  return part[0];
}

// ---- reducers: Acc, init(), add(acc, x, index), merge(earlier, later), finish(acc) -------------
template <class T> struct SumR {
  using Acc = sum_acc_t<T>;
  using Out = T;
  static Acc init() { return Acc(0); }
  static void add(Acc& acc, T x, int64_t) { acc += Acc(load(x)); }
  static Acc merge(Acc a, Acc b) { return a + b; }
  static Out finish(Acc acc) { return store<T>(acc); }
  // A whole run (step s) at once, in blocks of 1024 summed with lanes and then added to acc:
  // nearly pairwise, so the rounding error grows with log(n), not n. float32/16/bf16 blocks
  // add in float (twice the SIMD width of double), and the blocks in double.
  static void add_run(Acc& acc, const T* x, int64_t n, int64_t s, int64_t) {
    using P = std::conditional_t<std::is_same_v<compute_t<T>, float>, float, Acc>;
    auto plus = [](P a, P b) { return a + b; };
    constexpr int64_t kBlock = 1024;
    for (int64_t b = 0; b < n; b += kBlock) {
      int64_t m = std::min(kBlock, n - b);
      acc += s == 1 ? fold_lanes(x + b, m, 1, P(0), plus) : fold_lanes(x + b * s, m, s, P(0), plus);
    }
  }
  // Four contiguous rows (step s apart) into acc[0, len): added pairwise in float first, so
  // the double accumulators are read and written once per four rows.
  static void add_4_rows(Acc* acc, int64_t len, const T* r, int64_t s) {
    using P = std::conditional_t<std::is_same_v<compute_t<T>, float>, float, Acc>;
    for (int64_t j = 0; j < len; ++j)
      acc[j] += Acc((P(load(r[j])) + P(load(r[s + j]))) + (P(load(r[2 * s + j])) + P(load(r[3 * s + j]))));
  }
};

template <class T> struct ProdR {
  using Acc = sum_acc_t<T>;
  using Out = T;
  static Acc init() { return Acc(1); }
  static void add(Acc& acc, T x, int64_t) { acc *= Acc(load(x)); }
  static Acc merge(Acc a, Acc b) { return a * b; }
  static Out finish(Acc acc) { return store<T>(acc); }
  static void add_run(Acc& acc, const T* x, int64_t n, int64_t s, int64_t) {
    auto times = [](Acc a, Acc b) { return a * b; };
    acc *= s == 1 ? fold_lanes(x, n, 1, Acc(1), times) : fold_lanes(x, n, s, Acc(1), times);
  }
};

// max (kSign = 1) and min (kSign = -1); nan propagates.
template <class T, int kSign> struct ExtremumR {
  using Acc = compute_t<T>;
  using Out = T;
  static bool better(Acc a, Acc b) { return kSign > 0 ? a > b : a < b; }
  static Acc init() {   // -inf/+inf for floats, so an all-infinite input reduces to itself
    using L = std::numeric_limits<Acc>;
    if constexpr (L::has_infinity) return kSign > 0 ? -L::infinity() : L::infinity();
    return kSign > 0 ? L::lowest() : L::max();
  }
  static Acc pick(Acc a, Acc b) { return better(b, a) || is_nan(b) ? b : a; }   // a nan in a stays
  static void add(Acc& acc, T x, int64_t) { acc = pick(acc, load(x)); }
  static Acc merge(Acc a, Acc b) { return pick(a, b); }
  static Out finish(Acc acc) { return store<T>(acc); }
  // A whole run at once; contiguous runs use OpenMP simd, which lets the compiler vectorise
  // the max (nan is tracked apart, as a max reduction ignores it).
  static void add_run(Acc& acc, const T* x, int64_t n, int64_t s, int64_t) {
    if (s != 1) {
      for (int64_t i = 0; i < n; ++i) add(acc, x[i * s], 0);
      return;
    }
    Acc m = init();
    int nan = 0;
    if constexpr (kSign > 0) {
#pragma omp simd reduction(max : m) reduction(| : nan)
      for (int64_t i = 0; i < n; ++i) {
        Acc v = load(x[i]);
        m = v > m ? v : m;
        nan |= is_nan(v);
      }
    } else {
#pragma omp simd reduction(min : m) reduction(| : nan)
      for (int64_t i = 0; i < n; ++i) {
        Acc v = load(x[i]);
        m = v < m ? v : m;
        nan |= is_nan(v);
      }
    }
    acc = nan ? pick(acc, std::numeric_limits<Acc>::quiet_NaN()) : pick(acc, m);
  }
};

// argmax / argmin: the first index of the extreme value; the first nan counts as extreme.
template <class T, int kSign> struct ArgR {
  struct Acc {
    compute_t<T> v;
    int64_t i;   // -1 while nothing has been seen
  };
  using Out = int64_t;
  static Acc init() { return {compute_t<T>(0), -1}; }
  static bool takes(const Acc& a, const Acc& b) {   // does later b replace earlier a?
    if (b.i < 0) return false;
    if (a.i < 0) return true;
    if (is_nan(a.v)) return false;
    return is_nan(b.v) || (kSign > 0 ? b.v > a.v : b.v < a.v);
  }
  static void add(Acc& acc, T x, int64_t i) {
    Acc b{load(x), i};
    if (takes(acc, b)) acc = b;
  }
  static Acc merge(Acc a, Acc b) { return takes(a, b) ? b : a; }
  static Out finish(Acc acc) { return acc.i; }
  static void add_run(Acc& acc, const T* x, int64_t n, int64_t s, int64_t i0) {
    for (int64_t i = 0; i < n; ++i) add(acc, x[i * s], i0 + i);
  }
};

template <class F> void visit_reducer(int op, int dt, F&& f) {
  auto run = [&](auto tag) {
    using T = typename decltype(tag)::type;
    switch (op) {
      case 0: return f(SumR<T>{}, tag);
      case 1: return f(ProdR<T>{}, tag);
      case 2: return f(ExtremumR<T, 1>{}, tag);
      case 3: return f(ExtremumR<T, -1>{}, tag);
      case 4: return f(ArgR<T, 1>{}, tag);
      case 5: return f(ArgR<T, -1>{}, tag);
    }
    throw std::invalid_argument("unknown reduce op code " + std::to_string(op));
  };
  visit_dtype(dt, run);
}

// ---- the two walking orders ---------------------------------------------------------------------
// kept: the output space, operands (0 out: contiguous, 1 x); red: the reduced space, operand 0 x
// (offset 0: element offsets relative to the output's first element in x).

// Reduces the reduced elements with C-order index [r0, r1) of the output whose x offset is base.
template <class R, class T>
typename R::Acc reduce_range(const T* x, int64_t base, const Iter& red, int64_t r0, int64_t r1) {
  typename R::Acc acc = R::init();
  int64_t pos = r0, s = red.inner(0);
  run_range(red, r0, r1, [&](const int64_t* off, int64_t n) {
    R::add_run(acc, x + base + off[0], n, s, pos);
    pos += n;
  });
  return acc;
}

template <class R, class T>
void reduce_inner(typename R::Out* out, const T* x, const Iter& kept, const Iter& red) {
  int64_t n_out = kept.numel, n_red = red.numel;
  if (n_out < num_threads()) {   // few outputs: split each reduction across the threads
    for (int64_t o = 0; o < n_out; ++o) {
      int64_t off[kMaxOperands];
      offsets_of(kept, kept.ndim, o, off);
      auto part = [&](int64_t r0, int64_t r1) { return reduce_range<R>(x, off[1], red, r0, r1); };
      out[o] = R::finish(parallel_reduce(n_red, kGrain, R::init(), part, R::merge));
    }
    return;
  }
  parallel_for(n_out, std::max<int64_t>(1, kGrain / std::max<int64_t>(n_red, 1)), [&](int64_t o0, int64_t o1) {
    run_range(kept, o0, o1, [&](const int64_t* off, int64_t n) {
      for (int64_t j = 0; j < n; ++j)
        out[off[0] + j] = R::finish(reduce_range<R>(x, off[1] + j * kept.inner(1), red, 0, n_red));
    });
  });
}

// Adds reduced rows [r0, r1) into acc[0, len): row r starts at x[base + offset of r in red] and
// its j-th kept element is at step j * ks. The ks == 1 loop vectorises across the row.
template <class R, class T>
void add_rows(typename R::Acc* acc, int64_t len, const T* x, int64_t base, int64_t ks,
              const Iter& red, int64_t r0, int64_t r1) {
  int64_t pos = r0, s = red.inner(0);
  run_range(red, r0, r1, [&](const int64_t* off, int64_t n) {
    const T* row = x + base + off[0];
    int64_t i = 0;
    if constexpr (std::is_same_v<R, SumR<T>>) {
      for (; ks == 1 && i + 4 <= n; i += 4) R::add_4_rows(acc, len, row + i * s, s);
      pos += i;
    }
    for (; i < n; ++i, ++pos) {
      if (ks == 1) {
        for (int64_t j = 0; j < len; ++j) R::add(acc[j], row[i * s + j], pos);
      } else {
        for (int64_t j = 0; j < len; ++j) R::add(acc[j], row[i * s + j * ks], pos);
      }
    }
  });
}

template <class R, class T>
void reduce_outer(typename R::Out* out, const T* x, const Iter& kept, const Iter& red) {
  using Acc = typename R::Acc;
  constexpr int64_t kChunk = 2048;   // accumulators per work unit: stays in L1
  int kd = kept.ndim;
  int64_t cols = kept.shape[kd - 1], ks = kept.strides[1][kd - 1], n_red = red.numel;
  int64_t chunks = (cols + kChunk - 1) / kChunk, units = kept.numel / cols * chunks;
  // Unit u covers kept outputs [first, first + len) of one row of the last kept dim.
  auto unit = [&](int64_t u, int64_t& first, int64_t& len, int64_t& base) {
    int64_t j0 = (u % chunks) * kChunk, off[kMaxOperands];
    offsets_of(kept, kd - 1, u / chunks, off);
    first = off[0] + j0, len = std::min(kChunk, cols - j0), base = off[1] + j0 * ks;
  };
  if (units >= num_threads() || n_red * kChunk < 2 * kGrain) {
    parallel_for(units, std::max<int64_t>(1, kGrain / (n_red * std::min(cols, kChunk) + 1)), [&](int64_t u0, int64_t u1) {
      std::vector<Acc> acc(std::min(cols, kChunk));
      for (int64_t u = u0, first, len, base; u < u1; ++u) {
        unit(u, first, len, base);
        std::fill(acc.begin(), acc.begin() + len, R::init());
        add_rows<R>(acc.data(), len, x, base, ks, red, 0, n_red);
        for (int64_t j = 0; j < len; ++j) out[first + j] = R::finish(acc[j]);
      }
    });
    return;
  }
  for (int64_t u = 0, first, len, base; u < units; ++u) {   // few units: split the reduced rows
    unit(u, first, len, base);
    using Accs = std::vector<Acc>;
    auto part = [&](int64_t r0, int64_t r1) {
      Accs acc(len, R::init());
      add_rows<R>(acc.data(), len, x, base, ks, red, r0, r1);
      return acc;
    };
    auto merge = [](Accs a, const Accs& b) {
      for (size_t j = 0; j < a.size(); ++j) a[j] = R::merge(a[j], b[j]);
      return a;
    };
    Accs acc = parallel_reduce(n_red, std::max<int64_t>(1, kGrain / len), Accs(len, R::init()), part, merge);
    for (int64_t j = 0; j < len; ++j) out[first + j] = R::finish(acc[j]);
  }
}

}  // namespace

const std::vector<std::string>& reduce_op_names() {
  static const std::vector<std::string> names = {"sum", "prod", "max", "min", "argmax", "argmin"};
  return names;
}

void reduce(int op, void* out, int /*out_dt*/, const void* x, int x_dt,
            const Dims& shape, const Dims& x_strides, int64_t x_offset, int n_reduce) {
  int nk = int(shape.size()) - n_reduce;
  Iter kept = make_iter(nk, shape.data(), {{nullptr, 0}, {x_strides.data(), x_offset}});
  Iter red = make_iter(n_reduce, shape.data() + nk, {{x_strides.data() + nk, 0}});
  if (kept.numel == 0) return;
  // Outer order when x steps through memory faster along the last kept dim than along the
  // innermost reduced dim (e.g. the reduced dim is the first dim of a row-major matrix).
  bool outer = kept.ndim > 0 && red.ndim > 0 && red.numel > 0 &&
               std::llabs(kept.inner(1)) < std::llabs(red.inner(0));
  visit_reducer(op, x_dt, [&](auto reducer, auto tag) {
    using R = decltype(reducer);
    using T = typename decltype(tag)::type;
    auto* o = static_cast<typename R::Out*>(out);
    if (outer) reduce_outer<R>(o, static_cast<const T*>(x), kept, red);
    else reduce_inner<R>(o, static_cast<const T*>(x), kept, red);
  });
}

}  // namespace tt
