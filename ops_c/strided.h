// strided.h: walking strided tensors. An Iter is one iteration space (a shape) shared by up to
// four operands, each with its own element strides and start offset: the output of an
// elementwise op, its inputs, a copy's source and destination. make_iter() coalesces the space
// (drops size-1 dims, merges dims that every operand walks as one), so a contiguous tensor of
// any shape becomes a single flat loop. for_each_run() then hands the kernel "runs": n elements
// along the last dim, where the kernel's own tight loop does the work. Parallel splitting and
// cache tiling of transposed operands live here, so kernels never deal with either.
#pragma once

#include <cstdint>
#include <cstdlib>
#include <initializer_list>
#include <stdexcept>
#include <vector>

#include "parallel.h"

namespace tt {

using Dims = std::vector<int64_t>;

constexpr int kMaxDims = 64;      // numpy's limit; checked in make_iter
constexpr int kMaxOperands = 4;   // where() has the most: out, cond, a, b

// One operand of an Iter: its element strides (one per dim; nullptr means C-contiguous, as
// for the outputs of compute kernels) and the element offset of its first element.
struct Operand {
  const int64_t* strides;
  int64_t offset;
};

struct Iter {
  int ndim = 0;
  int nops = 0;
  int64_t numel = 1;
  int64_t shape[kMaxDims];
  int64_t strides[kMaxOperands][kMaxDims];
  int64_t offset[kMaxOperands];

  // The stride of operand k along the last (innermost) dim: the step inside a run.
  int64_t inner(int k) const { return ndim ? strides[k][ndim - 1] : 0; }
};

// Merges dims so the walk has as few dims as possible: drops size-1 dims and folds a dim into
// the next one when every operand steps over it exactly as one step of a longer inner dim.
// The C-order flat index of each element is unchanged.
void coalesce(Iter& it);

// The iteration space over shape[0:ndim] walked by `ops`, coalesced unless told otherwise.
Iter make_iter(int ndim, const int64_t* shape, std::initializer_list<Operand> ops, bool coalesce_dims = true);

inline Iter make_iter(const Dims& shape, std::initializer_list<Operand> ops, bool coalesce_dims = true) {
  return make_iter(int(shape.size()), shape.data(), ops, coalesce_dims);
}

// A non-owning reference to a kernel's run loop, body(off, n). The walkers below take one, so
// they are compiled once (in strided.cpp) for every kernel instead of once per kernel; the cost
// is one indirect call per run, and a run is a whole row or chunk of elements.
class RunFn {
 public:
  template <class F>
  RunFn(const F& f)  // NOLINT: implicit on purpose, kernels pass their lambda directly
      : obj_(&f), call_([](const void* obj, const int64_t* off, int64_t n) { (*static_cast<const F*>(obj))(off, n); }) {}
  void operator()(const int64_t* off, int64_t n) const { call_(obj_, off, n); }

 private:
  const void* obj_;
  void (*call_)(const void*, const int64_t*, int64_t);
};

// Element offsets (into off[]) of the element with C-order index `flat` within dims [0, ndim).
void offsets_of(const Iter& it, int ndim, int64_t flat, int64_t* off);

// Serially walks the elements with C-order index in [begin, end), calling body(off, n) for
// each run of n elements along the last dim; off[k] is operand k's offset of the run's first
// element, and operand k steps by it.inner(k) inside the run. Runs come in C order.
void run_range(const Iter& it, int64_t begin, int64_t end, RunFn body);

// Walks the whole space, in parallel when it is large, calling body(off, n) for each run (see
// run_range). Runs may come in any order and from several threads, so body must not depend on
// either. An operand read or written across its rows (transposed) is walked in cache tiles.
void for_each_run(const Iter& it, RunFn body);

}  // namespace tt
