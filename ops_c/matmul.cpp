// matmul.cpp: batched matrix multiply. Floats use a packed, cache-blocked GEMM in the style of
// BLIS/GotoBLAS:
//   pack all of B (K x N) into NR-wide micro-panels, KC-deep slice by slice (the threads share
//     it; it stays in L3)
//   for each MC-tall block of A's rows (threads take blocks in turn), for each KC-deep slice:
//     pack A[MC x KC] into MR-tall micro-panels (stays in L2)
//     for each NR-wide micro-panel of the B slice (L1), for each MR-tall micro-panel of A:
//       the micro-kernel keeps an MR x NR tile of C in registers, one rank-1 update per k.
// Packing reads A and B through their strides, so transposed or broadcast operands need no copy.
// The micro-kernel uses GCC vector extensions sized for the widest SIMD unit the compiler
// targets (AVX-512, AVX or SSE), so it is portable C++ that compiles to FMA instructions.
// float16/bfloat16 are packed into float32 and accumulated in a float32 workspace; integer
// dtypes use a plain loop. Threads split a batch of many products, or the row blocks of one (its
// columns when it has few rows).
// Products with at most 8 rows (decoding one token per sequence; 32 for x @ W.T) skip packing:
// SIMD kernels walk B in place, as dot products along K when B's columns are contiguous (x @ W.T)
// and as row updates when its rows are (x @ W).
// Left out: a hand-scheduled assembly kernel, run-time CPU dispatch (we build for the host).
#include <algorithm>
#include <cstring>
#include <vector>

#include "dtypes.h"
#include "kernels.h"
#include "parallel.h"

namespace tt {
namespace {

#if defined(__AVX512F__)
constexpr int kVecBytes = 64, kMR = 12;   // 32 vector registers: 24 accumulators, 2 for B, 1 for A
#elif defined(__AVX__)
constexpr int kVecBytes = 32, kMR = 6;    // 16 vector registers: 12 accumulators
#else
constexpr int kVecBytes = 16, kMR = 6;
#endif

// Blocking sizes for compute type C (float or double), tuned on a 2-core AVX-512 Xeon
// (32 KB L1d, 1 MB L2 per core, shared L3). A 12 x 32 tile does 24 FMAs per 2 vector loads and
// 12 broadcasts, which the two load ports sustain at the FMA units' full rate.
template <class C> struct Blocking {
  typedef C Vec __attribute__((vector_size(kVecBytes)));
  static constexpr int W = kVecBytes / sizeof(C);  // lanes per vector
  static constexpr int MR = kMR, NR = 2 * W;       // register tile of C
  static constexpr int64_t KC = 256;    // depth of a K slice: long enough to amortise the C tile's load/store
  static constexpr int64_t MC = 16 * kMR;   // rows of a packed A block: 192 x 256 floats = 192 KB of L2
  // B is packed whole (then each A block runs against all of it with no more waiting between
  // threads) up to this many elements, 16 MB of floats (2048 x 2048); beyond, in parts that fit.
  static constexpr int64_t BPACK = int64_t(1) << 22;
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

// c (ROWS, NR) with row stride ldc  =  [c +] sum over k of ap[k] (ROWS,) outer bp[k] (NR,).
// ap: packed A micro-panel (kc, MR), of which the first ROWS rows are used; bp: packed B
// micro-panel (kc, NR). ROWS is MR except at the bottom edge, where 4 or 8 spares the FMAs on
// padding rows (a 64-row matrix would otherwise spend 1/6 of its time on zeros).
template <class C, int ROWS>
void micro_kernel(int64_t kc, const C* __restrict ap, const C* __restrict bp, C* __restrict c,
                  int64_t ldc, bool accumulate) {
  using B = Blocking<C>;
  using V = typename B::Vec;
  // The C tile is touched only after the k loop and is usually in L3 or memory by then (it was
  // last seen one K slice ago): asking for its lines now hides that wait behind the FMAs. Each
  // row is NR * sizeof(C) = 128 bytes, so first, middle and last element cover its 2-3 lines.
  for (int i = 0; i < ROWS; ++i) {
    __builtin_prefetch(c + i * ldc, 1);
    __builtin_prefetch(c + i * ldc + B::W, 1);
    __builtin_prefetch(c + i * ldc + B::NR - 1, 1);
  }
  V acc0[ROWS], acc1[ROWS];   // left and right halves of each row of the tile
  for (int i = 0; i < ROWS; ++i) acc0[i] = acc1[i] = V{};
  for (int64_t k = 0; k < kc; ++k) {
    V b0 = load_vec<V>(bp), b1 = load_vec<V>(bp + B::W);
#pragma GCC unroll 16
    for (int i = 0; i < ROWS; ++i) {
      acc0[i] += ap[i] * b0;
      acc1[i] += ap[i] * b1;
    }
    ap += B::MR;
    bp += B::NR;
  }
  for (int i = 0; i < ROWS; ++i) {
    C* row = c + i * ldc;
    if (accumulate) {
      acc0[i] += load_vec<V>(row);
      acc1[i] += load_vec<V>(row + B::W);
    }
    store_vec(row, acc0[i]);
    store_vec(row + B::W, acc1[i]);
  }
}

// A partial tile (mr < MR rows or nr < NR columns): computed whole into a buffer with the
// smallest kernel that covers mr, then the valid part is added or copied into c.
template <class C>
void edge_tile(int64_t kc, const C* ap, const C* bp, C* c, int64_t ldc, int64_t mr, int64_t nr, bool accumulate) {
  constexpr int MR = Blocking<C>::MR, NR = Blocking<C>::NR;
  alignas(64) C edge[MR * NR];
  if (mr <= MR / 3) micro_kernel<C, MR / 3>(kc, ap, bp, edge, NR, false);
  else if (mr <= 2 * MR / 3) micro_kernel<C, 2 * MR / 3>(kc, ap, bp, edge, NR, false);
  else micro_kernel<C, MR>(kc, ap, bp, edge, NR, false);
  for (int64_t i = 0; i < mr; ++i)
    for (int64_t j = 0; j < nr; ++j) c[i * ldc + j] = accumulate ? c[i * ldc + j] + edge[i * NR + j] : edge[i * NR + j];
}

// Lanes i0..i3 of the 8-lane concatenation of x and y (vectors of 4 C). GCC before 12 has only
// __builtin_shuffle, clang only __builtin_shufflevector.
template <class C, int i0, int i1, int i2, int i3, class V4>
inline V4 shuffle4(V4 x, V4 y) {
#if defined(__clang__) || __GNUC__ >= 12
  return __builtin_shufflevector(x, y, i0, i1, i2, i3);
#else
  typedef std::conditional_t<sizeof(C) == 4, int32_t, int64_t> I __attribute__((vector_size(sizeof(V4))));
  return __builtin_shuffle(x, y, I{i0, i1, i2, i3});
#endif
}

// Four lanes, each contiguous along k and si apart, into dst[k * R + 0..3] for k < kc: 4 x 4
// blocks are transposed in registers (8 shuffles), so that both the loads and the stores are
// 4-wide; element by element, the scattered stores would cost a cycle each.
template <int R, class T, class C>
void pack_4_lanes(C* __restrict dst, const T* s, int64_t si, int64_t kc) {
  typedef C V4 __attribute__((vector_size(4 * sizeof(C))));
  auto row = [&](int64_t l, int64_t k) {   // lane l at depths k..k+3
    if constexpr (std::is_same_v<T, C>) return load_vec<V4>(s + l * si + k);
    else return V4{C(load(s[l * si + k])), C(load(s[l * si + k + 1])), C(load(s[l * si + k + 2])),
                   C(load(s[l * si + k + 3]))};
  };
  int64_t k = 0;
  for (; k + 4 <= kc; k += 4) {
    V4 r0 = row(0, k), r1 = row(1, k), r2 = row(2, k), r3 = row(3, k);
    V4 t0 = shuffle4<C, 0, 4, 1, 5>(r0, r1), t1 = shuffle4<C, 2, 6, 3, 7>(r0, r1);   // r0[0] r1[0] r0[1] r1[1]...
    V4 t2 = shuffle4<C, 0, 4, 1, 5>(r2, r3), t3 = shuffle4<C, 2, 6, 3, 7>(r2, r3);
    store_vec(dst + (k + 0) * R, shuffle4<C, 0, 1, 4, 5>(t0, t2));   // lanes 0-3 at depth k
    store_vec(dst + (k + 1) * R, shuffle4<C, 2, 3, 6, 7>(t0, t2));
    store_vec(dst + (k + 2) * R, shuffle4<C, 0, 1, 4, 5>(t1, t3));
    store_vec(dst + (k + 3) * R, shuffle4<C, 2, 3, 6, 7>(t1, t3));
  }
  for (; k < kc; ++k)
    for (int l = 0; l < 4; ++l) dst[k * R + l] = C(load(s[l * si + k]));
}

// Packs n lanes (rows of A, or columns of B) into R-lane micro-panels (ceil(n / R), kc, R),
// zero-padded: dst[panel][k][r] = src[(panel * R + r) * si + k * sk]. The loop order follows
// whichever stride is 1, so that reads stream through memory in order:
// - lanes contiguous (B, or A.T, row-major): one k at a time, the run of all n lanes. Walking
//   down k inside one panel instead would jump a whole matrix row per 128 bytes read, across
//   4 KB pages where the hardware prefetcher gives up, and run at memory latency, not bandwidth.
// - depth contiguous (A, or B.T, row-major): four lanes at a time, all kc of them.
template <int R, class T, class C>
void pack(C* __restrict dst, const T* src, int64_t si, int64_t sk, int64_t n, int64_t kc) {
  int64_t full = n / R * R;   // lanes in whole panels; the last panel may be partial
  if (si == 1) {
    for (int64_t k = 0; k < kc; ++k) {
      const T* s = src + k * sk;
      C* d = dst + k * R;
      for (int64_t i0 = 0; i0 < full; i0 += R) {
        if constexpr (std::is_same_v<T, C>) std::memcpy(d + i0 * kc, s + i0, R * sizeof(C));  // a few vector moves
        else for (int l = 0; l < R; ++l) d[i0 * kc + l] = C(load(s[i0 + l]));
      }
      if (full < n) {
        for (int64_t l = 0; l < R; ++l) d[full * kc + l] = full + l < n ? C(load(s[full + l])) : C(0);
      }
    }
    return;
  }
  for (int64_t i0 = 0; i0 < n; i0 += R, src += R * si, dst += kc * R) {
    int64_t r = std::min<int64_t>(R, n - i0), l = 0;
    if constexpr (R % 4 == 0 && 4 * sizeof(C) <= kVecBytes) {   // whole 4-lane vectors fit the SIMD unit
      if (sk == 1)
        for (; l + 4 <= r; l += 4) pack_4_lanes<R>(dst + l, src + l * si, si, kc);
    }
    for (; l < r; ++l)
      for (int64_t k = 0; k < kc; ++k) dst[k * R + l] = C(load(src[l * si + k * sk]));
    for (int64_t k = 0; k < kc && r < R; ++k) std::fill(dst + k * R + r, dst + k * R + R, C(0));
  }
}

// c (mc, nc) with row stride ldc [+]= packed A block (mc, kc) @ packed B panel (kc, nc).
// Each B micro-panel is loaded once and reused against every A micro-panel of the block.
// The next B micro-panel usually sits in L3, and the first tile to use it would wait for all of
// it at once; so every tile of the current one prefetches its share of the next, into L1.
template <class C>
void macro_kernel(C* c, int64_t ldc, const C* apack, const C* bpack, int64_t mc, int64_t nc, int64_t kc,
                  bool accumulate) {
  constexpr int MR = Blocking<C>::MR, NR = Blocking<C>::NR;
  constexpr int64_t kLine = 64 / sizeof(C);   // elements per cache line
  int64_t lines = NR * kc / kLine, per_tile = ceil_div(lines, ceil_div(mc, MR));
  for (int64_t jr = 0; jr < nc; jr += NR) {
    const C* next = bpack + (jr + NR) * kc;   // micro-panels are contiguous in bpack
    for (int64_t ir = 0; ir < mc; ir += MR) {
      if (jr + NR < nc) {
        int64_t l0 = ir / MR * per_tile, l1 = std::min(lines, l0 + per_tile);
        for (int64_t l = l0; l < l1; ++l) __builtin_prefetch(next + l * kLine);
      }
      const C* ap = apack + ir * kc;
      const C* bp = bpack + jr * kc;
      C* tile = c + ir * ldc + jr;
      int64_t mr = std::min<int64_t>(MR, mc - ir), nr = std::min<int64_t>(NR, nc - jr);
      if (mr == MR && nr == NR) micro_kernel<C, MR>(kc, ap, bp, tile, ldc, accumulate);
      else edge_tile(kc, ap, bp, tile, ldc, mr, nr, accumulate);
    }
  }
}

// Calls body(i) for every i in [0, n). Inside a parallel region (team) the calling threads share
// the i dynamically, and all wait at the end until every body has returned; alone, a plain loop,
// so that one-thread products pay nothing to OpenMP.
template <class F>
void team_for(bool team, int64_t n, const F& body) {
  if (!team) {
    for (int64_t i = 0; i < n; ++i) body(i);
    return;
  }
#pragma omp for schedule(dynamic)
  for (int64_t i = 0; i < n; ++i) body(i);
}

// c (M, N) row stride ldc = a (M, K) @ b (K, N), a and b strided, on up to nt threads.
// The threads first pack all of B together (each packs some runs of columns), then take blocks
// of A's rows in turn; a block is packed one K slice at a time and multiplied by every B panel
// of that slice. So neither operand is packed twice, and the threads wait for each other only
// once, after B is packed: on a busy machine, where another process may take a core from one of
// our threads for milliseconds, every wait is expensive. There are a multiple of nt A blocks of
// nearly equal height, so that the threads finish together when both run at full speed.
// (The wait after packing is why this is a raw OpenMP team rather than parallel_for.)
// With too few rows for an A block per thread, the threads split the columns instead.
// A B larger than BPACK elements goes in parts of ng columns x kg rows, one after another.
template <class T, class C>
void gemm(C* c, int64_t ldc, const T* a, int64_t sam, int64_t sak, const T* b, int64_t sbk, int64_t sbn,
          int64_t M, int64_t N, int64_t K, int nt) {
  using B = Blocking<C>;
  constexpr int MR = B::MR, NR = B::NR;
  constexpr int64_t kPackCols = 8 * NR;   // B is packed in 1 KB runs of a row, for pack() to stream
  if (K == 0) {
    for (int64_t i = 0; i < M; ++i) std::fill_n(c + i * ldc, N, C(0));
    return;
  }
  int64_t mtiles = ceil_div(M, MR);
  int64_t nblocks = std::min(mtiles, ceil_div(ceil_div(mtiles, B::MC / MR), nt) * nt);
  if (nt > 1 && nblocks <= nt) {
    // Too few rows for every thread to have an A block of its own (the products of generation,
    // one short sequence): split the columns instead. Each thread packs its own share of B and
    // all of A, which is small, and no thread waits for another before the end.
    int64_t panels = ceil_div(N, NR);
    nt = int(std::min<int64_t>(nt, panels));
#pragma omp parallel num_threads(nt)
    {
      int64_t t = omp_get_thread_num();
      int64_t j0 = panels * t / nt * NR, j1 = std::min(N, panels * (t + 1) / nt * NR);
      if (j0 < j1) gemm<T, C>(c + j0, ldc, a, sam, sak, b + j0 * sbn, sbk, sbn, M, j1 - j0, K, 1);
    }
    return;
  }
  // K slices of equal depth: K = 384 gives 192 + 192 rather than 256 + 128.
  int64_t kc_max = ceil_div(K, ceil_div(K, B::KC));
  int64_t ng_max = std::min(ceil_div(N, NR) * NR, std::max<int64_t>(NR, B::BPACK / K / NR * NR));
  int64_t kg_max = std::min(K, std::max<int64_t>(1, B::BPACK / ng_max / kc_max) * kc_max);
  int64_t chunks = ceil_div(ng_max, kPackCols), slices = ceil_div(kg_max, kc_max);
  C* bpack = scratch<C>(0, kg_max * ng_max);   // the slice at depth pc starts at bpack + (pc - pg) * ngpad
  auto run = [&](bool team) {   // the whole product, run by every thread of the team
    C* apack = scratch<C>(1, kc_max * ceil_div(mtiles, nblocks) * MR);
    for (int64_t jg = 0; jg < N; jg += ng_max) {
      int64_t ng = std::min(ng_max, N - jg), ngpad = ceil_div(ng, NR) * NR;
      for (int64_t pg = 0; pg < K; pg += kg_max) {
        int64_t kg = std::min(kg_max, K - pg);
        team_for(team, slices * chunks, [&](int64_t item) {
          int64_t pc = pg + item / chunks * kc_max, j = item % chunks * kPackCols;
          if (pc >= pg + kg || j >= ng) return;
          int64_t kc = std::min(kc_max, pg + kg - pc);
          pack<NR>(bpack + (pc - pg) * ngpad + j * kc, b + pc * sbk + (jg + j) * sbn, sbn, sbk,
                   std::min(kPackCols, ng - j), kc);
        });
        team_for(team, nblocks, [&](int64_t blk) {
          int64_t i0 = mtiles * blk / nblocks * MR, i1 = std::min(M, mtiles * (blk + 1) / nblocks * MR);
          for (int64_t pc = pg; pc < pg + kg; pc += kc_max) {
            int64_t kc = std::min(kc_max, pg + kg - pc);
            pack<MR>(apack, a + i0 * sam + pc * sak, sam, sak, i1 - i0, kc);
            macro_kernel(c + i0 * ldc + jg, ldc, apack, bpack + (pc - pg) * ngpad, i1 - i0, ng, kc, pc > 0);
          }
        });
      }
    }
  };
  if (nt == 1) {
    run(false);
    return;
  }
#pragma omp parallel num_threads(nt)
  run(true);
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
// anyway, so walk B directly. Two SIMD kernels for float and double, by which side of B is
// contiguous, and a plain loop for everything else.
constexpr int64_t kSmall = 8;      // at most this many rows go to gemm_small,
constexpr int64_t kSmallDot = 32;  // and this many when B's columns are contiguous (gemm_small_dot)
// Rows of a per tile of the small kernels: 4 x 4 accumulators and the loads fit AVX-512's 32 vector
// registers, 2 x 4 the 16 of AVX.
constexpr int kTileRows = kVecBytes >= 64 ? 4 : 2;

// v, kept in a register. GCC's tuning for AMD cores folds every use of a loaded vector into its
// multiply-add as a memory operand, that is, loads it again for each use; in the small kernels
// below that made the load ports, not the FMA units, the limit (32 loads per 16 FMAs).
template <class V> inline V in_register(V v) {
#if defined(__x86_64__) || defined(__i386__)
  asm("" : "+v"(v));
#endif
  return v;
}

// The sum of the lanes of v: its two halves added as vectors, until two lanes are left.
template <class C, class V> inline C lane_sum(V v) {
  if constexpr (sizeof(V) == 2 * sizeof(C)) {
    return v[0] + v[1];
  } else {
    typedef C Half __attribute__((vector_size(sizeof(V) / 2)));
    Half lo, hi;
    std::memcpy(&lo, &v, sizeof(Half));
    std::memcpy(&hi, reinterpret_cast<const char*>(&v) + sizeof(Half), sizeof(Half));
    return lane_sum<C>(lo + hi);
  }
}

// c (R, J) row stride ldc = a (R, K) row stride sam @ b (K, J) column stride sbn, where rows of a
// and columns of b are contiguous along K (x @ W.T with W (N, K) row-major): R x J dot products
// at once, each of the J column loads reused by R rows and each row load by J columns; one vector
// of partial sums per output, summed across its lanes at the end, and the last K % W scalar.
// The columns `ahead` elements on (the caller's next tile) are fetched into L2 meanwhile: the
// hardware prefetcher does not follow J runs of memory read side by side.
template <class C, int R, int J>
void dot_tile(C* c, int64_t ldc, const C* a, int64_t sam, const C* b, int64_t sbn, int64_t K, int64_t ahead) {
  using V = typename Blocking<C>::Vec;
  constexpr int W = Blocking<C>::W;
  V acc[R][J];
  for (int r = 0; r < R; ++r)
    for (int j = 0; j < J; ++j) acc[r][j] = V{};
  int64_t k = 0;
  for (; k + W <= K; k += W) {
    V bj[J];
    for (int j = 0; j < J; ++j) {
      bj[j] = in_register(load_vec<V>(b + j * sbn + k));
      __builtin_prefetch(b + ahead + j * sbn + k, 0, 2);
    }
    for (int r = 0; r < R; ++r) {
      V ar = in_register(load_vec<V>(a + r * sam + k));
      for (int j = 0; j < J; ++j) acc[r][j] += ar * bj[j];
    }
  }
  for (int r = 0; r < R; ++r)
    for (int j = 0; j < J; ++j) {
      C s = lane_sum<C>(acc[r][j]);
      for (int64_t kk = k; kk < K; ++kk) s += a[r * sam + kk] * b[j * sbn + kk];
      c[r * ldc + j] = s;
    }
}

// a (K,) . b (K,), both contiguous, with four vector accumulators (one alone would wait on the
// multiply-add latency), the last K % W scalar.
template <class C>
C dot_contiguous(const C* a, const C* b, int64_t K) {
  using V = typename Blocking<C>::Vec;
  constexpr int W = Blocking<C>::W;
  V acc0{}, acc1{}, acc2{}, acc3{};
  int64_t k = 0;
  for (; k + 4 * W <= K; k += 4 * W) {
    acc0 += load_vec<V>(a + k) * load_vec<V>(b + k);
    acc1 += load_vec<V>(a + k + W) * load_vec<V>(b + k + W);
    acc2 += load_vec<V>(a + k + 2 * W) * load_vec<V>(b + k + 2 * W);
    acc3 += load_vec<V>(a + k + 3 * W) * load_vec<V>(b + k + 3 * W);
  }
  for (; k + W <= K; k += W) acc0 += load_vec<V>(a + k) * load_vec<V>(b + k);
  C s = lane_sum<C>((acc0 + acc1) + (acc2 + acc3));
  for (; k < K; ++k) s += a[k] * b[k];
  return s;
}

// c (M, N) = a (M, K) @ b (K, N) with rows of a and columns of b contiguous (sak = sbk = 1).
// B is read once, J = 4 columns (4 rows of W, in L1) at a time, against every row of a in turn.
// A single row of a does one column at a time instead: then B is read strictly in order, which
// the hardware prefetcher follows best, and with so little arithmetic per element of B, a B that
// is not in cache (a model's weights, one layer after another) streams from memory at full speed.
template <class C>
void gemm_small_dot(C* c, int64_t ldc, const C* a, int64_t sam, const C* b, int64_t sbn, int64_t M, int64_t N,
                    int64_t K) {
  if (M == 1) {
    for (int64_t j = 0; j < N; ++j) c[j] = dot_contiguous(a, b + j * sbn, K);
    return;
  }
  constexpr int J = 4, R = kTileRows;
  auto rows = [&](auto cols, int64_t j) {   // c[:, j:j + cols] over all rows, R at a time
    constexpr int NJ = decltype(cols)::value;
    const C* bj = b + j * sbn;
    int64_t ahead = j + NJ + J <= N ? NJ * sbn : 0;   // the next tile's columns, if it is a whole one
    int64_t i = 0;
    for (; i + R <= M; i += R) dot_tile<C, R, NJ>(c + i * ldc + j, ldc, a + i * sam, sam, bj, sbn, K, ahead);
    const C* ai = a + i * sam;
    C* ci = c + i * ldc + j;
    switch (M - i) {
      case 3: dot_tile<C, 3, NJ>(ci, ldc, ai, sam, bj, sbn, K, ahead); break;
      case 2: dot_tile<C, 2, NJ>(ci, ldc, ai, sam, bj, sbn, K, ahead); break;
      case 1: dot_tile<C, 1, NJ>(ci, ldc, ai, sam, bj, sbn, K, ahead); break;
      default: break;
    }
  };
  int64_t j = 0;
  for (; j + J <= N; j += J) rows(std::integral_constant<int, J>{}, j);
  for (; j < N; ++j) rows(std::integral_constant<int, 1>{}, j);
}

// c (R, n) row stride ldc [+]= a (R, KB) strided @ b (KB, n) row stride sbk, rows of b contiguous
// (x @ W with W (K, N) row-major): the R x KB values of a wait in registers, broadcast, while the
// KB rows of b stream by one vector at a time; each vector of c is loaded and stored once per
// KB * R multiply-adds. Meanwhile the rows `ahead` elements further on (the caller's next block)
// are fetched into L2: a run of a row is only a few KB, too short for the hardware prefetcher.
// The last n % W columns are plain arithmetic.
template <class C, int R, int KB>
void axpy_rows(C* c, int64_t ldc, const C* a, int64_t sam, int64_t sak, const C* b, int64_t sbk, int64_t n,
               int64_t ahead, bool accumulate) {
  using V = typename Blocking<C>::Vec;
  constexpr int W = Blocking<C>::W;
  V ar[R][KB];
  for (int r = 0; r < R; ++r)
    for (int q = 0; q < KB; ++q) ar[r][q] = V{} + a[r * sam + q * sak];
  int64_t j = 0;
  for (; j + W <= n; j += W) {
    V bq[KB];
    for (int q = 0; q < KB; ++q) {
      bq[q] = in_register(load_vec<V>(b + q * sbk + j));
      __builtin_prefetch(b + ahead + q * sbk + j, 0, 2);
    }
    for (int r = 0; r < R; ++r) {
      V acc = accumulate ? load_vec<V>(c + r * ldc + j) : V{};
      for (int q = 0; q < KB; ++q) acc += ar[r][q] * bq[q];
      store_vec(c + r * ldc + j, acc);
    }
  }
  for (; j < n; ++j)
    for (int r = 0; r < R; ++r) {
      C acc = accumulate ? c[r * ldc + j] : C(0);
      for (int q = 0; q < KB; ++q) acc += a[r * sam + q * sak] * b[q * sbk + j];
      c[r * ldc + j] = acc;
    }
}

// c (M, N) = a (M, K) strided @ b (K, N) with rows of b contiguous (sbn = 1), for M <= kSmall:
// rows of b are read in order, KB = 4 at a time, each run of them against every row of a (kTileRows
// at once) while it is in L1; c[:, j0:j0 + cols] stays in L1 meanwhile (16 KB: 4096 floats wide
// for one row of a, so that a row of b is a long run of memory, 512 for eight).
template <class C>
void gemm_small_axpy(C* c, int64_t ldc, const C* a, int64_t sam, int64_t sak, const C* b, int64_t sbk, int64_t M,
                     int64_t N, int64_t K) {
  constexpr int KB = 4;
  int64_t cols = std::max<int64_t>(Blocking<C>::W, 16384 / sizeof(C) / M);
  auto block = [&](auto kb, int64_t k, int64_t j0, int64_t nj) {   // c[:, j0:j0 + nj] [+]= rows k.. of b
    constexpr int NK = decltype(kb)::value;
    int64_t ahead = k + NK + KB <= K ? NK * sbk : 0;   // the next block of KB rows, if there is one
    auto rows = [&](auto r, int64_t i) {
      constexpr int R = decltype(r)::value;
      axpy_rows<C, R, NK>(c + i * ldc + j0, ldc, a + i * sam + k * sak, sam, sak, b + k * sbk + j0, sbk, nj, ahead,
                          k > 0);
    };
    int64_t i = 0;
    for (; i + kTileRows <= M; i += kTileRows) rows(std::integral_constant<int, kTileRows>{}, i);
    switch (M - i) {
      case 3: rows(std::integral_constant<int, 3>{}, i); break;
      case 2: rows(std::integral_constant<int, 2>{}, i); break;
      case 1: rows(std::integral_constant<int, 1>{}, i); break;
      default: break;
    }
  };
  for (int64_t j0 = 0; j0 < N; j0 += cols) {
    int64_t nj = std::min(cols, N - j0), k = 0;
    for (; k + KB <= K; k += KB) block(std::integral_constant<int, KB>{}, k, j0, nj);
    for (; k < K; ++k) block(std::integral_constant<int, 1>{}, k, j0, nj);
  }
}

// Any strides and dtypes (float16/bfloat16 are widened element by element): dot products, or
// for contiguous rows of b, c[i, :] += a[i, k] * b[k, :] over L1-sized runs of columns.
template <class T, class C>
void gemm_small_strided(C* c, int64_t ldc, const T* a, int64_t sam, int64_t sak, const T* b, int64_t sbk,
                        int64_t sbn, int64_t M, int64_t N, int64_t K) {
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

// c (M, N) row stride ldc = a (M, K) @ b (K, N), both strided, on the calling thread: the SIMD
// kernels where T is the compute type and the layout allows, else the strided loop.
template <class T, class C>
void gemm_small(C* c, int64_t ldc, const T* a, int64_t sam, int64_t sak, const T* b, int64_t sbk, int64_t sbn,
                int64_t M, int64_t N, int64_t K) {
  if constexpr (std::is_same_v<T, C>) {
    if (sak == 1 && sbk == 1) return gemm_small_dot(c, ldc, a, sam, b, sbn, M, N, K);
    if (sbn == 1 && M <= kSmall && K > 0) return gemm_small_axpy(c, ldc, a, sam, sak, b, sbk, M, N, K);
  }
  gemm_small_strided(c, ldc, a, sam, sak, b, sbk, sbn, M, N, K);
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

// Whether a product goes to gemm_small rather than the packed GEMM: a few rows or columns, and up
// to kSmallDot rows for the dot-product kernel, which until then beats packing (that copies all of
// B once per product: as much memory traffic as the whole product when few rows share it).
template <class T, class C>
bool use_small(int64_t M, int64_t N, int64_t sak, int64_t sbk) {
  bool dot_kernel = std::is_same_v<T, C> && sak == 1 && sbk == 1;
  return M <= kSmall || N <= 4 || (dot_kernel && M <= kSmallDot);
}

// Below this many multiply-adds per thread a product uses fewer threads. Waking a thread costs a
// few microseconds, and on a busy machine a thread of ours may wait for a core for a whole
// time slice (milliseconds): 2^21 multiply-adds (20-40 us on one core) is worth that risk.
constexpr int64_t kMinWork = int64_t(1) << 21;

// gemm_small with c split along its longer side, one slice per thread (parallel_for), with at
// least kMinWork multiply-adds each; columns are split on whole vectors so that only the last
// slice has an edge. Inside a parallel region (a batch of products), all on the calling thread.
template <class T, class C>
void gemm_small_parallel(C* c, int64_t ldc, const T* a, int64_t sam, int64_t sak, const T* b, int64_t sbk,
                         int64_t sbn, int64_t M, int64_t N, int64_t K) {
  bool by_rows = M > N;
  int64_t len = by_rows ? M : N, unit = by_rows ? 1 : Blocking<C>::W;
  int64_t work_per_unit = std::max<int64_t>(1, unit * (by_rows ? N : M) * K);
  parallel_for(ceil_div(len, unit), ceil_div(kMinWork, work_per_unit), [&](int64_t u0, int64_t u1) {
    int64_t s0 = u0 * unit, s1 = std::min(len, u1 * unit);
    if (by_rows) gemm_small(c + s0 * ldc, ldc, a + s0 * sam, sam, sak, b, sbk, sbn, s1 - s0, N, K);
    else gemm_small(c + s0, ldc, a, sam, sak, b + s0 * sbn, sbk, sbn, M, s1 - s0, K);
  });
}

// Floats: out (*batch, M, N) through a compute-type C workspace unless T is C already.
template <class T, class C>
void matmul_packed(T* out, const T* a, const T* b, const MatmulArgs& p) {
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
  int64_t sam = p.a_strides[nd], sak = p.a_strides[nd + 1], sbk = p.b_strides[nd], sbn = p.b_strides[nd + 1];
  int64_t work = nbatch * M * N * std::max<int64_t>(K, 1);
  int nt = omp_in_parallel() ? 1 : int(std::clamp<int64_t>(work / kMinWork, 1, num_threads()));
  auto product = [&](int64_t bi, int threads) {   // batch entry bi on `threads` threads
    const T* ab = a + p.a_offset + batch_offset(p.batch, p.a_strides, bi);
    const T* bb = b + p.b_offset + batch_offset(p.batch, p.b_strides, bi);
    if (use_small<T, C>(M, N, sak, sbk)) gemm_small_parallel(c + bi * M * N, N, ab, sam, sak, bb, sbk, sbn, M, N, K);
    else gemm(c + bi * M * N, N, ab, sam, sak, bb, sbk, sbn, M, N, K, threads);
  };
  // Many products (attention's batch x heads): each thread takes whole products and packs its own
  // operands, with no barriers at all. A few (3 on 2 threads would leave one thread idle a third of
  // the time): one after another, each on every thread.
  if (nt > 1 && nbatch >= nt && (nbatch % nt == 0 || nbatch >= 4 * nt)) {
#pragma omp parallel for num_threads(nt) schedule(guided)
    for (int64_t bi = 0; bi < nbatch; ++bi) product(bi, 1);
  } else {
    for (int64_t bi = 0; bi < nbatch; ++bi) product(bi, nt);
  }
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
