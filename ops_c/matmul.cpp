// matmul.cpp: batched matrix multiply. Floats use a packed, cache-blocked GEMM in the style of
// BLIS/GotoBLAS:
//   for each NC-wide column panel of B, for each KC-deep slice of K:
//     pack B[KC x NC] into NR-wide micro-panels (stays in L2/L3)
//     for each MC-tall block of A: pack A[MC x KC] into MR-tall micro-panels (stays in L2)
//       for each NR x MR tile: the micro-kernel keeps an MR x NR block of C in registers
//       and streams the two micro-panels (B's from L1), one rank-1 update per k.
// Packing reads A and B through their strides, so transposed or broadcast operands need no copy.
// The micro-kernel uses GCC vector extensions sized for the widest SIMD unit the compiler
// targets (AVX-512, AVX or SSE), so it is portable C++ that compiles to FMA instructions.
// float16/bfloat16 are packed into float32 and accumulated in a float32 workspace; integer
// dtypes use a plain loop. Threads split the batch, or the rows/columns of a single product.
#include <algorithm>
#include <cstring>
#include <vector>

#include "dtypes.h"
#include "kernels.h"
#include "parallel.h"

namespace tt {
namespace {

#if defined(__AVX512F__)
constexpr int kVecBytes = 64, kMR = 12;   // 32 vector registers: 24 accumulators
#elif defined(__AVX__)
constexpr int kVecBytes = 32, kMR = 6;    // 16 vector registers: 12 accumulators
#else
constexpr int kVecBytes = 16, kMR = 6;
#endif

// Blocking sizes for compute type C (float or double).
template <class C> struct Blocking {
  typedef C Vec __attribute__((vector_size(kVecBytes)));
  static constexpr int W = kVecBytes / sizeof(C);  // lanes per vector
  static constexpr int MR = kMR, NR = 2 * W;       // register tile of C
  static constexpr int64_t KC = 256;               // depth of a packed slice (B micro-panel: L1)
  static constexpr int64_t MC = 16 * kMR;          // rows of a packed A block (L2)
  static constexpr int64_t NC = 4096;              // columns of a packed B panel (L3)
};

template <class V, class C> inline V load_vec(const C* p) { V v; std::memcpy(&v, p, sizeof(V)); return v; }
template <class V, class C> inline void store_vec(C* p, V v) { std::memcpy(p, &v, sizeof(V)); }

inline int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// A per-thread, 64-byte aligned scratch buffer of at least n elements (slot 0: B, slot 1: A).
template <class C> C* scratch(int slot, int64_t n) {
  static thread_local std::vector<char> buffers[2];
  std::vector<char>& buf = buffers[slot];
  size_t bytes = size_t(n) * sizeof(C) + 64;
  if (buf.size() < bytes) buf.resize(bytes);
  return reinterpret_cast<C*>((reinterpret_cast<uintptr_t>(buf.data()) + 63) & ~uintptr_t(63));
}

// c (MR, NR) with row stride ldc  =  [c +] sum over k of ap[k] (MR,) outer bp[k] (NR,).
// ap: packed A micro-panel (kc, MR); bp: packed B micro-panel (kc, NR).
template <class C>
void micro_kernel(int64_t kc, const C* __restrict ap, const C* __restrict bp, C* __restrict c,
                  int64_t ldc, bool accumulate) {
  using B = Blocking<C>;
  using V = typename B::Vec;
  V acc0[B::MR], acc1[B::MR];   // left and right halves of each row of the tile
  for (int i = 0; i < B::MR; ++i) acc0[i] = acc1[i] = V{};
  for (int64_t k = 0; k < kc; ++k) {
    V b0 = load_vec<V>(bp), b1 = load_vec<V>(bp + B::W);
#pragma GCC unroll 16
    for (int i = 0; i < B::MR; ++i) {
      acc0[i] += ap[i] * b0;
      acc1[i] += ap[i] * b1;
    }
    ap += B::MR;
    bp += B::NR;
  }
  for (int i = 0; i < B::MR; ++i) {
    C* row = c + i * ldc;
    if (accumulate) {
      acc0[i] += load_vec<V>(row);
      acc1[i] += load_vec<V>(row + B::W);
    }
    store_vec(row, acc0[i]);
    store_vec(row + B::W, acc1[i]);
  }
}

// dst: MR-tall micro-panels (ceil(mc / MR), kc, MR), zero-padded;
// a: (mc, kc) with row step sm and column step sk.
template <class T, class C>
void pack_a(C* dst, const T* a, int64_t sm, int64_t sk, int64_t mc, int64_t kc) {
  constexpr int MR = Blocking<C>::MR;
  for (int64_t i0 = 0; i0 < mc; i0 += MR) {
    int64_t mr = std::min<int64_t>(MR, mc - i0);
    for (int64_t k = 0; k < kc; ++k, dst += MR) {
      const T* col = a + i0 * sm + k * sk;
      for (int64_t r = 0; r < mr; ++r) dst[r] = C(load(col[r * sm]));
      for (int64_t r = mr; r < MR; ++r) dst[r] = C(0);
    }
  }
}

// dst: NR-wide micro-panels (ceil(nc / NR), kc, NR), zero-padded;
// b: (kc, nc) with row step sk and column step sn.
template <class T, class C>
void pack_b(C* dst, const T* b, int64_t sk, int64_t sn, int64_t kc, int64_t nc) {
  constexpr int NR = Blocking<C>::NR;
  for (int64_t j0 = 0; j0 < nc; j0 += NR) {
    int64_t nr = std::min<int64_t>(NR, nc - j0);
    for (int64_t k = 0; k < kc; ++k, dst += NR) {
      const T* row = b + k * sk + j0 * sn;
      if (sn == 1) {
        for (int64_t j = 0; j < nr; ++j) dst[j] = C(load(row[j]));
      } else {
        for (int64_t j = 0; j < nr; ++j) dst[j] = C(load(row[j * sn]));
      }
      for (int64_t j = nr; j < NR; ++j) dst[j] = C(0);
    }
  }
}

// c (mc, nc) with row stride ldc [+]= packed A block (mc, kc) @ packed B panel (kc, nc).
template <class C>
void macro_kernel(C* c, int64_t ldc, const C* apack, const C* bpack, int64_t mc, int64_t nc, int64_t kc,
                  bool accumulate) {
  constexpr int MR = Blocking<C>::MR, NR = Blocking<C>::NR;
  for (int64_t jr = 0; jr < nc; jr += NR) {
    for (int64_t ir = 0; ir < mc; ir += MR) {
      const C* ap = apack + ir * kc;
      const C* bp = bpack + jr * kc;
      C* tile = c + ir * ldc + jr;
      int64_t mr = std::min<int64_t>(MR, mc - ir), nr = std::min<int64_t>(NR, nc - jr);
      if (mr == MR && nr == NR) {
        micro_kernel(kc, ap, bp, tile, ldc, accumulate);
        continue;
      }
      alignas(64) C edge[MR * NR];   // a partial tile: compute it whole, keep the valid part
      micro_kernel(kc, ap, bp, edge, NR, false);
      for (int64_t i = 0; i < mr; ++i)
        for (int64_t j = 0; j < nr; ++j)
          tile[i * ldc + j] = accumulate ? tile[i * ldc + j] + edge[i * NR + j] : edge[i * NR + j];
    }
  }
}

// One single-threaded product: c (M, N) row stride ldc = a (M, K) @ b (K, N), a and b strided.
template <class T, class C>
void gemm(C* c, int64_t ldc, const T* a, int64_t sam, int64_t sak, const T* b, int64_t sbk, int64_t sbn,
          int64_t M, int64_t N, int64_t K) {
  using B = Blocking<C>;
  if (K == 0) {
    for (int64_t i = 0; i < M; ++i) std::fill_n(c + i * ldc, N, C(0));
    return;
  }
  C* bpack = scratch<C>(0, B::KC * ceil_div(std::min(N, B::NC), B::NR) * B::NR);
  C* apack = scratch<C>(1, B::KC * ceil_div(std::min(M, B::MC), B::MR) * B::MR);
  for (int64_t jc = 0; jc < N; jc += B::NC) {
    int64_t nc = std::min(B::NC, N - jc);
    for (int64_t pc = 0; pc < K; pc += B::KC) {
      int64_t kc = std::min(B::KC, K - pc);
      pack_b(bpack, b + pc * sbk + jc * sbn, sbk, sbn, kc, nc);
      for (int64_t ic = 0; ic < M; ic += B::MC) {
        int64_t mc = std::min(B::MC, M - ic);
        pack_a(apack, a + ic * sam + pc * sak, sam, sak, mc, kc);
        macro_kernel(c + ic * ldc + jc, ldc, apack, bpack, mc, nc, kc, pc > 0);
      }
    }
  }
}

// a (K,) step sa . b (K,) step sb, accumulated in C with 16 independent lanes when both are
// contiguous (the compiler turns the lanes into SIMD registers).
template <class T, class C>
C dot(const T* a, int64_t sa, const T* b, int64_t sb, int64_t K) {
  if (sa != 1 || sb != 1) {
    C s = 0;
    for (int64_t k = 0; k < K; ++k) s += C(load(a[k * sa])) * C(load(b[k * sb]));
    return s;
  }
  constexpr int kLanes = 16;
  C part[kLanes] = {};
  int64_t k = 0;
  for (; k + kLanes <= K; k += kLanes)
    for (int j = 0; j < kLanes; ++j) part[j] += C(load(a[k + j])) * C(load(b[k + j]));
  for (; k < K; ++k) part[0] += C(load(a[k])) * C(load(b[k]));
  C s = 0;
  for (int j = 0; j < kLanes; ++j) s += part[j];
  return s;
}

// Products with a few rows or columns (a vector times a matrix, e.g. one token at inference):
// packing would mostly pad the register tile with zeros, and reading B once is the whole cost
// anyway, so walk B directly. c (M, N) row stride ldc = a (M, K) @ b (K, N), both strided.
constexpr int64_t kSmall = 8;   // at most this many rows go to gemm_small

template <class T, class C>
void gemm_small(C* c, int64_t ldc, const T* a, int64_t sam, int64_t sak, const T* b, int64_t sbk, int64_t sbn,
                int64_t M, int64_t N, int64_t K) {
  if (sbn != 1 || N <= 4) {   // columns of b are what is contiguous (x @ W.T): dot products,
    for (int64_t j = 0; j < N; ++j)   // each column of b read once, while it is in L1
      for (int64_t i = 0; i < M; ++i) c[i * ldc + j] = dot<T, C>(a + i * sam, sak, b + j * sbn, sbk, K);
    return;
  }
  constexpr int64_t kCols = 512;   // c[:, j0:j0 + kCols] stays in L1 while all of K streams by
  for (int64_t j0 = 0; j0 < N; j0 += kCols) {
    int64_t nj = std::min(kCols, N - j0);
    for (int64_t i = 0; i < M; ++i) std::fill_n(c + i * ldc + j0, nj, C(0));
    // Rows of b are contiguous: c[i, :] += a[i, k] * b[k, :], four k at a time so that each
    // element of c is loaded and stored once per four multiply-adds.
    int64_t k = 0;
    for (; k + 4 <= K; k += 4) {
      const T* b0 = b + k * sbk + j0;
      for (int64_t i = 0; i < M; ++i) {
        const T* ai = a + i * sam + k * sak;
        C a0 = C(load(ai[0])), a1 = C(load(ai[sak])), a2 = C(load(ai[2 * sak])), a3 = C(load(ai[3 * sak]));
        C* ci = c + i * ldc + j0;
        for (int64_t j = 0; j < nj; ++j)
          ci[j] += a0 * C(load(b0[j])) + a1 * C(load(b0[sbk + j])) + a2 * C(load(b0[2 * sbk + j])) +
                   a3 * C(load(b0[3 * sbk + j]));
      }
    }
    for (; k < K; ++k) {
      const T* bk = b + k * sbk + j0;
      for (int64_t i = 0; i < M; ++i) {
        C aik = C(load(a[i * sam + k * sak]));
        C* ci = c + i * ldc + j0;
        for (int64_t j = 0; j < nj; ++j) ci[j] += aik * C(load(bk[j]));
      }
    }
  }
}

// Element offset of batch entry `bi` (C-order over batch) for an operand with these strides.
int64_t batch_offset(const Dims& batch, const Dims& strides, int64_t bi) {
  int64_t off = 0;
  for (int64_t d = int64_t(batch.size()) - 1; d >= 0; --d) {
    off += (bi % batch[d]) * strides[d];
    bi /= batch[d];
  }
  return off;
}

struct MatmulArgs {
  const Dims& a_strides;  // (*batch, M, K) strides
  int64_t a_offset;
  const Dims& b_strides;  // (*batch, K, N) strides
  int64_t b_offset;
  const Dims& batch;
  int64_t M, N, K;
};

// Floats: out (*batch, M, N) through a compute-type C workspace unless T is C already.
template <class T, class C>
void matmul_packed(T* out, const T* a, const T* b, const MatmulArgs& p) {
  using B = Blocking<C>;
  size_t nd = p.batch.size();
  int64_t nbatch = 1, M = p.M, N = p.N, K = p.K;
  for (int64_t s : p.batch) nbatch *= s;
  if (nbatch * M * N == 0) return;
  std::vector<C> workspace;
  C* c = reinterpret_cast<C*>(out);
  if constexpr (!std::is_same_v<T, C>) {
    workspace.resize(nbatch * M * N);
    c = workspace.data();
  }
  // Work units: (batch entry, row block, column block). With fewer batch entries than threads,
  // each product is cut along its longer side so that every thread gets a share.
  int64_t tm = 1, tn = 1, nt = num_threads();
  if (nbatch < nt) {
    int64_t want = ceil_div(nt, nbatch);
    if (N >= M) tn = std::min(want, ceil_div(N, B::NR));
    else tm = std::min(want, ceil_div(M, B::MR));
  }
  int64_t units = nbatch * tm * tn, unit_flops = M * N * K / (tm * tn) + 1;
  parallel_for(units, std::max<int64_t>(1, (int64_t(1) << 20) / unit_flops), [&](int64_t u0, int64_t u1) {
    for (int64_t u = u0; u < u1; ++u) {
      int64_t bi = u / (tm * tn), ti = u % (tm * tn) / tn, tj = u % tn;
      int64_t m0 = ceil_div(M, B::MR) * ti / tm * B::MR, m1 = std::min(M, ceil_div(M, B::MR) * (ti + 1) / tm * B::MR);
      int64_t n0 = ceil_div(N, B::NR) * tj / tn * B::NR, n1 = std::min(N, ceil_div(N, B::NR) * (tj + 1) / tn * B::NR);
      if (m0 >= m1 || n0 >= n1) continue;
      const T* ab = a + p.a_offset + batch_offset(p.batch, p.a_strides, bi) + m0 * p.a_strides[nd];
      const T* bb = b + p.b_offset + batch_offset(p.batch, p.b_strides, bi) + n0 * p.b_strides[nd + 1];
      auto product = (m1 - m0 <= kSmall || n1 - n0 <= 4) ? gemm_small<T, C> : gemm<T, C>;
      product(c + bi * M * N + m0 * N + n0, N, ab, p.a_strides[nd], p.a_strides[nd + 1],
              bb, p.b_strides[nd], p.b_strides[nd + 1], m1 - m0, n1 - n0, K);
    }
  });
  if constexpr (!std::is_same_v<T, C>) {
    parallel_for(nbatch * M * N, kGrain, [&](int64_t i0, int64_t i1) {
      for (int64_t i = i0; i < i1; ++i) out[i] = store<T>(c[i]);
    });
  }
}

// Integers (and bool): a plain row-times-matrix loop accumulating in int64.
template <class T>
void matmul_simple(T* out, const T* a, const T* b, const MatmulArgs& p) {
  using Acc = sum_acc_t<T>;
  size_t nd = p.batch.size();
  int64_t nbatch = 1, M = p.M, N = p.N, K = p.K;
  for (int64_t s : p.batch) nbatch *= s;
  int64_t sam = p.a_strides[nd], sak = p.a_strides[nd + 1], sbk = p.b_strides[nd], sbn = p.b_strides[nd + 1];
  parallel_for(nbatch * M, std::max<int64_t>(1, kGrain / (N * K + 1)), [&](int64_t r0, int64_t r1) {
    std::vector<Acc> acc(N);
    for (int64_t r = r0; r < r1; ++r) {
      int64_t bi = r / M, i = r % M;
      const T* arow = a + p.a_offset + batch_offset(p.batch, p.a_strides, bi) + i * sam;
      const T* bmat = b + p.b_offset + batch_offset(p.batch, p.b_strides, bi);
      std::fill(acc.begin(), acc.end(), Acc(0));
      for (int64_t k = 0; k < K; ++k) {
        Acc aik = Acc(load(arow[k * sak]));
        for (int64_t j = 0; j < N; ++j) acc[j] += aik * Acc(load(bmat[k * sbk + j * sbn]));
      }
      for (int64_t j = 0; j < N; ++j) out[r * N + j] = store<T>(acc[j]);
    }
  });
}

}  // namespace

void matmul(void* out, int dt, const void* a, const Dims& a_strides, int64_t a_offset,
            const void* b, const Dims& b_strides, int64_t b_offset,
            const Dims& batch, int64_t M, int64_t N, int64_t K) {
  MatmulArgs p{a_strides, a_offset, b_strides, b_offset, batch, M, N, K};
  visit_dtype(dt, [&](auto tag) {
    using T = typename decltype(tag)::type;
    T* o = static_cast<T*>(out);
    const T* pa = static_cast<const T*>(a);
    const T* pb = static_cast<const T*>(b);
    if constexpr (std::is_same_v<T, double>) matmul_packed<T, double>(o, pa, pb, p);
    else if constexpr (is_float_v<T>) matmul_packed<T, float>(o, pa, pb, p);
    else matmul_simple<T>(o, pa, pb, p);
  });
}

}  // namespace tt
