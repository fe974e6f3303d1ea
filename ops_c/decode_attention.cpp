// decode_attention.cpp: attention from the newest t positions of each sequence to every key and value
// kept in a kv-cache (chapter 12): the step of generation, where t is 1 (or a few tokens: a
// speculative draft, a padded prompt). Query i of a row sits at key index s - t + i and sees the keys
// start[b] <= j <= s - t + i (causal aligned bottom-right; start > 0 skips a row's left padding).
// Grouped-query attention is native: query head h reads key/value head h / (nh / nkv), so the cache
// keeps only nkv heads and nothing is repeated. Keys and values are read in place from the cache
// buffers through their (batch, head, row) strides (the last dim contiguous): no copy of the cache.
// Per (row, query head), one query at a time: its scores against the keys it sees (one vector of at
// most s values, never a (t, s) matrix, kept 64-byte aligned: unaligned it ran 40% slower), their
// softmax, and the weighted sum of the value rows, 16 channels at a time held in registers.
// The (batch x heads) pairs are split over threads. Forward only: generation needs no gradient
// (tinytensor/nn/functional.py runs the differentiable composite when one is wanted).
#include <algorithm>
#include <cstdint>
#include <vector>

#include "dtypes.h"
#include "fused.h"
#include "parallel.h"
#include "vecmath.h"

namespace tt {
namespace {

// The softmax-weighted sum of value rows for one query: out (d,) from q (d,) pre-scaled, keys and
// values rows [lo, hi) of kb and vb (row stride kr, vr), scores a scratch of at least hi - lo values.
template <class T, class C>
void attend_one(T* out, const C* q, const T* kb, int64_t kr, const T* vb, int64_t vr, int64_t lo, int64_t hi,
                int64_t d, C* scores) {
  if (lo >= hi) {  // a query that sees no key (a padding position): zeros, as the masked math path
    for (int64_t c = 0; c < d; ++c) out[c] = store<T>(C(0));
    return;
  }
  const int64_t n = hi - lo;
  for (int64_t j = 0; j < n; ++j) {
    const T* kj = kb + (lo + j) * kr;
    scores[j] = sum_of<C>(d, [&](int64_t c) { return q[c] * load(kj[c]); });
  }
  const C m = max_of<C>(n, [&](int64_t j) { return scores[j]; });
  for (int64_t j = 0; j < n; ++j) scores[j] = exp_c(scores[j] - m);
  const C l = sum_of<C>(n, [&](int64_t j) { return scores[j]; });
  const T* v0 = vb + lo * vr;
  for (int64_t c0 = 0; c0 < d; c0 += kLanes) {  // sum_j p_j v_j, kLanes channels at a time kept in registers
    const int64_t w = std::min<int64_t>(kLanes, d - c0);
    C acc[kLanes] = {};
    if (w == kLanes) {  // a fixed trip count: one vector multiply-add per key
      for (int64_t j = 0; j < n; ++j)
        for (int c = 0; c < kLanes; ++c) acc[c] += scores[j] * load(v0[j * vr + c0 + c]);
    } else {
      for (int64_t j = 0; j < n; ++j)
        for (int64_t c = 0; c < w; ++c) acc[c] += scores[j] * load(v0[j * vr + c0 + c]);
    }
    for (int64_t c = 0; c < w; ++c) out[c0 + c] = store<T>(acc[c] / l);
  }
}

// The first 64-byte aligned address at or after p (scratch vectors get 64 / sizeof(C) spare elements).
template <class C> C* aligned64(C* p) {
  return reinterpret_cast<C*>((reinterpret_cast<uintptr_t>(p) + 63) & ~uintptr_t(63));
}

template <class T>
void decode_attention_t(T* out, const T* q, const T* k, const T* v, const int64_t* start, int64_t batch, int64_t nh,
                        int64_t nkv, int64_t t, int64_t s, int64_t d, const Strides3& ks, const Strides3& vs,
                        double scale) {
  using C = compute_t<T>;
  const int64_t group = nh / nkv;
  const int64_t grain = std::max<int64_t>(1, kGrain / std::max<int64_t>(1, t * s * d));
  parallel_for(batch * nh, grain, [&](int64_t u0, int64_t u1) {
    std::vector<C> qs(d), scratch(s + 64 / sizeof(C));
    C* scores = aligned64(scratch.data());
    for (int64_t u = u0; u < u1; ++u) {
      const int64_t b = u / nh, h = u % nh, g = h / group;
      const T* kb = k + b * ks.batch + g * ks.head;
      const T* vb = v + b * vs.batch + g * vs.head;
      const int64_t lo = std::max<int64_t>(start ? start[b] : 0, 0);
      for (int64_t i = 0; i < t; ++i) {
        const T* qi = q + (u * t + i) * d;
        for (int64_t c = 0; c < d; ++c) qs[c] = load(qi[c]) * C(scale);
        attend_one(out + (u * t + i) * d, qs.data(), kb, ks.row, vb, vs.row, lo, s - t + i + 1, d, scores);
      }
    }
  });
}

}  // namespace

void decode_attention(void* out, int dt, const void* q, const void* k, const void* v, const int64_t* start,
                      int64_t batch, int64_t nh, int64_t nkv, int64_t t, int64_t s, int64_t d, const Strides3& ks,
                      const Strides3& vs, double scale) {
  visit_float_dtype(dt, [&](auto tag) {
    using T = typename decltype(tag)::type;
    decode_attention_t<T>(static_cast<T*>(out), static_cast<const T*>(q), static_cast<const T*>(k),
                          static_cast<const T*>(v), start, batch, nh, nkv, t, s, d, ks, vs, scale);
  });
}

}  // namespace tt
