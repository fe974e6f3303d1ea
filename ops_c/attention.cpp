// attention.cpp: fused scaled-dot-product attention, forward and backward, one (batch, head) slice
// at a time: softmax(q k^T * scale) v, optionally causal (query i sees keys j <= i).
// Queries go in blocks of kBlock rows. For a block, the scores against the keys it may see are one
// small matrix product (the packed GEMM of matmul.cpp), the softmax runs along its rows, and a
// second product with v gives the output: the (t, s) matrix never exists, only (kBlock, s) tiles,
// and the forward saves lse = log(sum(exp(scores))) per query. The backward recomputes each tile's
// probabilities from lse (as FlashAttention does) and makes the three gradients with three more
// products per tile. A causal block stops at its last query's keys, so it does about half the work.
// Slices are split over threads (the GEMM then runs single-threaded inside each).
// Not here: masks other than causal, dropout (Python falls back to the composite for those).
#include <cmath>
#include <vector>

#include "dtypes.h"
#include "fused.h"
#include "kernels.h"
#include "parallel.h"
#include "vecmath.h"

namespace tt {
namespace {

constexpr int64_t kBlock = 64;

// A slice's (rows, d) operand widened to the compute type C.
template <class C, class T> void load_block(std::vector<C>& dst, const T* src, int64_t n) {
  dst.resize(n);
  for (int64_t i = 0; i < n; ++i) dst[i] = load(src[i]);
}

// out (M, N) = a (M, K) @ b (K, N), every operand in C with the given (row, column) strides.
template <class C> void product(C* out, const C* a, int64_t a_row, int64_t a_col, const C* b, int64_t b_row,
                                int64_t b_col, int64_t M, int64_t N, int64_t K) {
  constexpr int code = std::is_same_v<C, float> ? kFloat32 : kFloat64;
  matmul(out, code, a, {a_row, a_col}, 0, b, {b_row, b_col}, 0, {}, M, N, K);
}

// How many keys query i sees.
inline int64_t keys_of(int64_t i, int64_t s, bool causal) { return causal ? std::min(i + 1, s) : s; }

// p[r, j] = exp(scale * scores[r, j] - shift[r]) for the keys row r sees, 0 for the rest of the tile.
template <class C> void probabilities(C* p, const C* shift, int64_t rows, int64_t nk, int64_t i0, int64_t s,
                                      bool causal, C scale) {
  for (int64_t r = 0; r < rows; ++r) {
    C* row = p + r * nk;
    int64_t n = keys_of(i0 + r, s, causal);
    for (int64_t j = 0; j < n; ++j) row[j] = exp_c(row[j] * scale - shift[r]);
    for (int64_t j = n; j < nk; ++j) row[j] = C(0);
  }
}

template <class T> void attention_t(T* out, compute_t<T>* lse, const T* q, const T* k, const T* v,
                                    int64_t bh, int64_t t, int64_t s, int64_t d, double scale, bool causal) {
  using C = compute_t<T>;
  const C sc = C(scale);
  parallel_for(bh, 1, [&](int64_t b0, int64_t b1) {
    std::vector<C> qs, ks, vs, scores(kBlock * s), o(kBlock * d), shift(kBlock);
    for (int64_t b = b0; b < b1; ++b) {
      load_block(qs, q + b * t * d, t * d);
      load_block(ks, k + b * s * d, s * d);
      load_block(vs, v + b * s * d, s * d);
      for (int64_t i0 = 0; i0 < t; i0 += kBlock) {
        int64_t rows = std::min(kBlock, t - i0), nk = keys_of(i0 + rows - 1, s, causal);
        product(scores.data(), qs.data() + i0 * d, d, 1, ks.data(), 1, d, rows, nk, d);   // q k^T
        for (int64_t r = 0; r < rows; ++r) {
          const C* row = scores.data() + r * nk;
          int64_t n = keys_of(i0 + r, s, causal);
          // max of row * sc, from the max (or for a negative scale, the min) of row: the same number
          shift[r] = sc >= 0 ? sc * max_of<C>(n, [&](int64_t j) { return row[j]; })
                             : -sc * max_of<C>(n, [&](int64_t j) { return -row[j]; });
        }
        probabilities(scores.data(), shift.data(), rows, nk, i0, s, causal, sc);
        product(o.data(), scores.data(), nk, 1, vs.data(), d, 1, rows, d, nk);             // p v
        for (int64_t r = 0; r < rows; ++r) {
          const C* p = scores.data() + r * nk;
          C l = sum_of<C>(nk, [&](int64_t j) { return p[j]; });
          lse[b * t + i0 + r] = shift[r] + log_c(l);
          T* orow = out + (b * t + i0 + r) * d;
          for (int64_t c = 0; c < d; ++c) orow[c] = store<T>(o[r * d + c] / l);
        }
      }
    }
  });
}

// With p the probabilities, dp = go v^T and D = rowsum(go * out): ds = p * (dp - D) * scale;
// dq = ds k, dk = ds^T q, dv = p^T go, the last two summed over query blocks.
template <class T> void attention_backward_t(T* gq, T* gk, T* gv, const T* go, const T* q, const T* k, const T* v,
                                             const T* out, const compute_t<T>* lse, int64_t bh, int64_t t, int64_t s,
                                             int64_t d, double scale, bool causal) {
  using C = compute_t<T>;
  const C sc = C(scale);
  parallel_for(bh, 1, [&](int64_t b0, int64_t b1) {
    std::vector<C> qs, ks, vs, gos, os, p(kBlock * s), ds(kBlock * s), dq(kBlock * d), part(s * d), dk, dv, D(t);
    for (int64_t b = b0; b < b1; ++b) {
      load_block(qs, q + b * t * d, t * d);
      load_block(ks, k + b * s * d, s * d);
      load_block(vs, v + b * s * d, s * d);
      load_block(gos, go + b * t * d, t * d);
      load_block(os, out + b * t * d, t * d);
      for (int64_t i = 0; i < t; ++i)
        D[i] = sum_of<C>(d, [&](int64_t c) { return gos[i * d + c] * os[i * d + c]; });
      dk.assign(s * d, C(0));
      dv.assign(s * d, C(0));
      for (int64_t i0 = 0; i0 < t; i0 += kBlock) {
        int64_t rows = std::min(kBlock, t - i0), nk = keys_of(i0 + rows - 1, s, causal);
        const C *qb = qs.data() + i0 * d, *gob = gos.data() + i0 * d;
        product(p.data(), qb, d, 1, ks.data(), 1, d, rows, nk, d);              // scores = q k^T
        probabilities(p.data(), lse + b * t + i0, rows, nk, i0, s, causal, sc);
        product(ds.data(), gob, d, 1, vs.data(), 1, d, rows, nk, d);            // dp = go v^T
        for (int64_t r = 0; r < rows; ++r)
          for (int64_t j = 0; j < nk; ++j) ds[r * nk + j] = p[r * nk + j] * (ds[r * nk + j] - D[i0 + r]) * sc;
        product(dq.data(), ds.data(), nk, 1, ks.data(), d, 1, rows, d, nk);     // dq = ds k
        for (int64_t e = 0; e < rows * d; ++e) gq[(b * t + i0) * d + e] = store<T>(dq[e]);
        product(part.data(), ds.data(), 1, nk, qb, d, 1, nk, d, rows);          // ds^T q
        for (int64_t e = 0; e < nk * d; ++e) dk[e] += part[e];
        product(part.data(), p.data(), 1, nk, gob, d, 1, nk, d, rows);          // p^T go
        for (int64_t e = 0; e < nk * d; ++e) dv[e] += part[e];
      }
      for (int64_t e = 0; e < s * d; ++e) {
        gk[b * s * d + e] = store<T>(dk[e]);
        gv[b * s * d + e] = store<T>(dv[e]);
      }
    }
  });
}

}  // namespace

void attention(void* out, void* lse, int dt, const void* q, const void* k, const void* v,
               int64_t bh, int64_t t, int64_t s, int64_t d, double scale, bool causal) {
  visit_float_dtype(dt, [&](auto tag) {
    using T = typename decltype(tag)::type;
    attention_t<T>(static_cast<T*>(out), static_cast<compute_t<T>*>(lse), static_cast<const T*>(q),
                   static_cast<const T*>(k), static_cast<const T*>(v), bh, t, s, d, scale, causal);
  });
}

void attention_backward(void* gq, void* gk, void* gv, int dt, const void* go, const void* q, const void* k,
                        const void* v, const void* out, const void* lse,
                        int64_t bh, int64_t t, int64_t s, int64_t d, double scale, bool causal) {
  visit_float_dtype(dt, [&](auto tag) {
    using T = typename decltype(tag)::type;
    attention_backward_t<T>(static_cast<T*>(gq), static_cast<T*>(gk), static_cast<T*>(gv),
                            static_cast<const T*>(go), static_cast<const T*>(q), static_cast<const T*>(k),
                            static_cast<const T*>(v), static_cast<const T*>(out),
                            static_cast<const compute_t<T>*>(lse), bh, t, s, d, scale, causal);
  });
}

}  // namespace tt
