// strided.cpp: the walkers declared in strided.h (coalescing, the N-d counter, cache tiling
// of transposed operands and the parallel split), compiled once for all kernels.
#include "strided.h"

#include <algorithm>
#include <cstdlib>

namespace tt {

void coalesce(Iter& it) {
  if (it.numel == 0) return;   // nothing will be walked
  int out = 0;
  for (int d = 0; d < it.ndim; ++d) {
    if (it.shape[d] == 1) continue;
    bool merge = out > 0;   // can dim d extend the previous kept dim (out - 1) inwards?
    for (int k = 0; k < it.nops && merge; ++k)
      merge = it.strides[k][out - 1] == it.strides[k][d] * it.shape[d];
    if (merge) {
      it.shape[out - 1] *= it.shape[d];
      for (int k = 0; k < it.nops; ++k) it.strides[k][out - 1] = it.strides[k][d];
    } else {
      it.shape[out] = it.shape[d];
      for (int k = 0; k < it.nops; ++k) it.strides[k][out] = it.strides[k][d];
      ++out;
    }
  }
  it.ndim = out;
}

Iter make_iter(int ndim, const int64_t* shape, std::initializer_list<Operand> ops, bool coalesce_dims) {
  if (ndim > kMaxDims) throw std::invalid_argument("tensors with more than 64 dims are not supported");
  Iter it;
  it.ndim = ndim;
  it.nops = int(ops.size());
  for (int d = 0; d < ndim; ++d) {
    it.shape[d] = shape[d];
    it.numel *= shape[d];
  }
  int k = 0;
  for (const Operand& op : ops) {
    it.offset[k] = op.offset;
    int64_t contiguous = 1;
    for (int d = ndim - 1; d >= 0; --d) {
      it.strides[k][d] = op.strides ? op.strides[d] : contiguous;
      contiguous *= shape[d];
    }
    ++k;
  }
  if (coalesce_dims) coalesce(it);
  return it;
}

void offsets_of(const Iter& it, int ndim, int64_t flat, int64_t* off) {
  for (int k = 0; k < it.nops; ++k) off[k] = it.offset[k];
  for (int d = ndim - 1; d >= 0; --d) {
    int64_t i = flat % it.shape[d];
    flat /= it.shape[d];
    for (int k = 0; k < it.nops; ++k) off[k] += i * it.strides[k][d];
  }
}

void run_range(const Iter& it, int64_t begin, int64_t end, RunFn body) {
  if (begin >= end) return;
  int nd = it.ndim;
  int64_t off[kMaxOperands];
  if (nd == 0) {   // a single element
    for (int k = 0; k < it.nops; ++k) off[k] = it.offset[k];
    return body(off, 1);
  }
  int64_t idx[kMaxDims];   // multi-index of the current run's first element
  for (int k = 0; k < it.nops; ++k) off[k] = it.offset[k];
  for (int64_t d = nd - 1, rest = begin; d >= 0; --d) {
    idx[d] = rest % it.shape[d];
    rest /= it.shape[d];
    for (int k = 0; k < it.nops; ++k) off[k] += idx[d] * it.strides[k][d];
  }
  for (int64_t pos = begin;;) {
    int64_t n = std::min(it.shape[nd - 1] - idx[nd - 1], end - pos);
    body(off, n);
    pos += n;
    if (pos >= end) return;
    // The run ended at the end of its row: go back to the row start, then carry into outer dims.
    for (int k = 0; k < it.nops; ++k) off[k] -= idx[nd - 1] * it.strides[k][nd - 1];
    idx[nd - 1] = 0;
    for (int d = nd - 2; d >= 0; --d) {
      for (int k = 0; k < it.nops; ++k) off[k] += it.strides[k][d];
      if (++idx[d] < it.shape[d]) break;
      for (int k = 0; k < it.nops; ++k) off[k] -= it.shape[d] * it.strides[k][d];
      idx[d] = 0;
    }
  }
}

namespace {

// A dim that some operand walks with a smaller stride than the last dim, when that operand's
// last-dim stride is not 1 (a transposed read or write); -1 if walking rows is fine as is.
int transposed_dim(const Iter& it) {
  int nd = it.ndim;
  if (nd < 2) return -1;
  for (int k = 0; k < it.nops; ++k) {
    int64_t best = std::llabs(it.strides[k][nd - 1]);
    if (best <= 1) continue;
    int dim = -1;
    for (int d = 0; d < nd - 1; ++d) {
      int64_t s = std::llabs(it.strides[k][d]);
      if (s != 0 && s < best) best = s, dim = d;
    }
    if (dim >= 0) return dim;
  }
  return -1;
}

// Moves dim `from` to position `to`, shifting the dims in between (for every operand).
void move_dim(Iter& it, int from, int to) {
  auto move = [&](int64_t* a) {
    int64_t v = a[from];
    if (from < to) std::copy(a + from + 1, a + to + 1, a + from);
    else std::copy_backward(a + to, a + from, a + from + 1);
    a[to] = v;
  };
  move(it.shape);
  for (int k = 0; k < it.nops; ++k) move(it.strides[k]);
}

// Cache-tiled walk for transposed operands. Dim p moves next to the last dim; the kernel then
// gets short runs of kTile elements of the last dim, for every index of dim p in turn, so the
// operand that is contiguous along p reuses the same few cache lines instead of jumping a whole
// row per element. Work units are (outer index, column block) pairs.
void run_tiled(Iter it, int p, RunFn body) {
  constexpr int64_t kTile = 64;
  move_dim(it, p, it.ndim - 2);
  int nd = it.ndim;
  int64_t rows = it.shape[nd - 2], cols = it.shape[nd - 1];
  int64_t blocks = (cols + kTile - 1) / kTile;
  int64_t units = it.numel / (rows * cols) * blocks;
  parallel_for(units, std::max<int64_t>(1, kGrain / (rows * kTile)), [&](int64_t u0, int64_t u1) {
    int64_t off[kMaxOperands];
    for (int64_t u = u0; u < u1; ++u) {
      int64_t j0 = (u % blocks) * kTile, n = std::min(kTile, cols - j0);
      offsets_of(it, nd - 2, u / blocks, off);
      for (int k = 0; k < it.nops; ++k) off[k] += j0 * it.strides[k][nd - 1];
      for (int64_t r = 0; r < rows; ++r) {
        body(off, n);
        for (int k = 0; k < it.nops; ++k) off[k] += it.strides[k][nd - 2];
      }
    }
  });
}

}  // namespace

void for_each_run(const Iter& it, RunFn body) {
  if (it.numel == 0) return;
  int p = transposed_dim(it);
  if (p >= 0) return run_tiled(it, p, body);
  parallel_for(it.numel, kGrain, [&](int64_t begin, int64_t end) { run_range(it, begin, end, body); });
}

}  // namespace tt
