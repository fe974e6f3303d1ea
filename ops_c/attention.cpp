// attention.cpp: fused scaled-dot-product attention, forward and backward, for one (batch, head)
// slice at a time: softmax(q k^T * scale) v, optionally causal (query i sees keys j <= i).
// The forward keeps one row of scores (s values) per query instead of the (t, s) matrix, and
// saves lse = log(sum(exp(scores))) per query; the backward recomputes each row of
// probabilities from it (as FlashAttention does), so the (t, s) matrix never exists either.
// Keys and values are copied transposed into a scratch (d, s) block per slice so that every
// inner loop runs along contiguous memory and vectorises. Slices are split over threads.
// Not here: masks other than causal, dropout (Python falls back to the composite for those).
#include <vector>

#include "dtypes.h"
#include "fused.h"
#include "parallel.h"
#include "vecmath.h"

namespace tt {
namespace {

// The slice's operands widened to the compute type C; `transposed` gives a (d, rows) copy.
template <class C, class T> void load_block(std::vector<C>& dst, const T* src, int64_t rows, int64_t d, bool transposed) {
  dst.resize(rows * d);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < d; ++c) dst[transposed ? c * rows + r : r * d + c] = load(src[r * d + c]);
}

// y += a * x over n elements; __restrict tells the compiler y and x never overlap, so it vectorises.
template <class C> inline void axpy(C* __restrict y, C a, const C* __restrict x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] += a * x[i];
}

// scores[j] = scale * q . k_j for j < n_keys, from kt (d, s): d passes along contiguous key rows.
template <class C> void score_row(C* scores, const C* q, const C* kt, int64_t n_keys, int64_t s, int64_t d, C scale) {
  for (int64_t j = 0; j < n_keys; ++j) scores[j] = 0;
  for (int64_t c = 0; c < d; ++c) axpy(scores, q[c] * scale, kt + c * s, n_keys);
}

template <class T> void attention_t(T* out, compute_t<T>* lse, const T* q, const T* k, const T* v,
                                    int64_t bh, int64_t t, int64_t s, int64_t d, double scale, bool causal) {
  using C = compute_t<T>;
  parallel_for(bh, std::max<int64_t>(1, kGrain / std::max<int64_t>(t * s * d / 16, 1)), [&](int64_t b0, int64_t b1) {
    std::vector<C> qs, kt, vs, p(s), o(d);
    for (int64_t b = b0; b < b1; ++b) {
      load_block(qs, q + b * t * d, t, d, false);
      load_block(kt, k + b * s * d, s, d, true);
      load_block(vs, v + b * s * d, s, d, false);
      for (int64_t i = 0; i < t; ++i) {
        int64_t n_keys = causal ? std::min(i + 1, s) : s;
        score_row(p.data(), qs.data() + i * d, kt.data(), n_keys, s, d, C(scale));
        C m = max_of(p.data(), n_keys);
        for (int64_t j = 0; j < n_keys; ++j) p[j] = exp_c(p[j] - m);
        C l = sum_of<C>(n_keys, [&](int64_t j) { return p[j]; });
        for (int64_t c = 0; c < d; ++c) o[c] = 0;
        for (int64_t j = 0; j < n_keys; ++j) axpy(o.data(), p[j], vs.data() + j * d, d);
        T* orow = out + (b * t + i) * d;
        for (int64_t c = 0; c < d; ++c) orow[c] = store<T>(o[c] / l);
        lse[b * t + i] = m + log_c(l);
      }
    }
  });
}

// With p = softmax row, dp_j = go . v_j and D = go . out: ds_j = p_j (dp_j - D);
// dq = scale * sum_j ds_j k_j, dk_j += scale * ds_j q, dv_j += p_j go.
template <class T> void attention_backward_t(T* gq, T* gk, T* gv, const T* go, const T* q, const T* k, const T* v,
                                             const T* out, const compute_t<T>* lse, int64_t bh, int64_t t, int64_t s,
                                             int64_t d, double scale, bool causal) {
  using C = compute_t<T>;
  const C sc = C(scale);
  parallel_for(bh, std::max<int64_t>(1, kGrain / std::max<int64_t>(t * s * d / 16, 1)), [&](int64_t b0, int64_t b1) {
    std::vector<C> qs, ks, kt, vt, gos, os, dk, dv, p(s), ds(s), dq(d);
    for (int64_t b = b0; b < b1; ++b) {
      load_block(qs, q + b * t * d, t, d, false);
      load_block(ks, k + b * s * d, s, d, false);
      load_block(kt, k + b * s * d, s, d, true);
      load_block(vt, v + b * s * d, s, d, true);
      load_block(gos, go + b * t * d, t, d, false);
      load_block(os, out + b * t * d, t, d, false);
      dk.assign(s * d, C(0));
      dv.assign(s * d, C(0));
      for (int64_t i = 0; i < t; ++i) {
        int64_t n_keys = causal ? std::min(i + 1, s) : s;
        const C *qi = qs.data() + i * d, *goi = gos.data() + i * d, *oi = os.data() + i * d;
        score_row(p.data(), qi, kt.data(), n_keys, s, d, sc);
        C li = lse[b * t + i];
        for (int64_t j = 0; j < n_keys; ++j) p[j] = exp_c(p[j] - li);
        score_row(ds.data(), goi, vt.data(), n_keys, s, d, C(1));   // dp_j = go . v_j
        C D = sum_of<C>(d, [&](int64_t c) { return goi[c] * oi[c]; });
        for (int64_t j = 0; j < n_keys; ++j) ds[j] = p[j] * (ds[j] - D);
        for (int64_t c = 0; c < d; ++c) dq[c] = 0;
        for (int64_t j = 0; j < n_keys; ++j) {
          axpy(dq.data(), ds[j] * sc, ks.data() + j * d, d);
          axpy(dk.data() + j * d, ds[j] * sc, qi, d);
          axpy(dv.data() + j * d, p[j], goi, d);
        }
        T* gqi = gq + (b * t + i) * d;
        for (int64_t c = 0; c < d; ++c) gqi[c] = store<T>(dq[c]);
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
