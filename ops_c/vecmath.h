// vecmath.h: float32 exp, log, tanh and sigmoid written as straight-line arithmetic (no
// branches, no libm calls), so that the compiler vectorises loops over them: libm's expf is a
// function call per element. Each is within ~2 ulp of the exact result (checked against float64
// numpy by the kernel tests); float64 keeps using libm. Special values (inf, nan, zero,
// subnormals) are handled with selects at the end, which vectorise as blends. At the end: the same
// functions over a kernel's compute type (float or double), and lane-parallel sums and maxima.
#pragma once

#include <cmath>
#include <cstdint>
#include <limits>

#include "dtypes.h"

namespace tt {

// Forced inlining: a loop vectorises only if every call in its body is inlined, and GCC's size
// heuristics stop inlining these in longer loop bodies (the GELU backward ran 10x slower).
#define TT_INLINE inline __attribute__((always_inline))

// ln 2 split in two: kLn2Hi has only 9 significant bits, so n * kLn2Hi is exact for |n| < 2^15.
constexpr float kLn2Hi = 0.693359375f;
constexpr float kLn2Lo = -2.12194440e-4f;

// 2^n for integer n in [-126, 127], built directly from the exponent bits.
TT_INLINE float pow2i(int32_t n) { return bits_float(uint32_t(n + 127) << 23); }

// exp(x) = 2^n * exp(r) with n = round(x / ln2) and |r| <= ln2 / 2, where a degree-7 Taylor
// polynomial is accurate to 6e-9. The 2^n scaling is done in two halves so that results in the
// subnormal range (x down to -104) and up to overflow (x > 88.7 gives inf) come out right.
TT_INLINE float vexp(float x) {
  float xc = x > -104.0f ? (x < 89.0f ? x : 89.0f) : -104.0f;   // also maps nan to -104
  float n = std::nearbyint(xc * 1.44269504088896341f);
  float r = (xc - n * kLn2Hi) - n * kLn2Lo;
  float p = 1.0f / 5040;
  p = p * r + 1.0f / 720;
  p = p * r + 1.0f / 120;
  p = p * r + 1.0f / 24;
  p = p * r + 1.0f / 6;
  p = p * r + 0.5f;
  p = p * r + 1.0f;
  p = p * r + 1.0f;
  int32_t ni = int32_t(n), n1 = ni / 2;
  float e = p * pow2i(n1) * pow2i(ni - n1);
  return x == x ? e : x;
}

// log(x) = e ln2 + log(m) with x = m 2^e and m in [sqrt(1/2), sqrt(2)). With f = m - 1 and
// s = f / (2 + f): log(m) = 2 atanh(s) = f - s (f - R(s^2)), R a short odd-series tail
// (|s| <= 0.172, so four terms reach 2e-9). Subnormal inputs are first scaled by 2^23.
TT_INLINE float vlog(float x) {
  bool tiny = x < std::numeric_limits<float>::min();
  float xs = tiny ? x * 8388608.0f : x;
  uint32_t u = float_bits(xs);
  int32_t e = int32_t((u >> 23) & 0xff) - 127 - (tiny ? 23 : 0);
  float m = bits_float((u & 0x7fffffu) | 0x3f800000u);   // mantissa in [1, 2)
  bool big = m > 1.41421356f;
  m = big ? m * 0.5f : m;
  e += big ? 1 : 0;
  float f = m - 1.0f;   // exact
  float s = f / (2.0f + f);
  float z = s * s;
  float R = z * (2.0f / 3 + z * (2.0f / 5 + z * (2.0f / 7 + z * (2.0f / 9))));
  float logm = f - s * (f - R);
  float fe = float(e);
  float res = fe * kLn2Hi + (logm + fe * kLn2Lo);
  // Special inputs by a bitwise blend: a plain `cond ? res : special` would make GCC move the
  // arithmetic into a branch (floating point ops may trap) and then not vectorise the loop.
  const float inf = std::numeric_limits<float>::infinity();
  float special = x == 0 ? -inf : (x == inf ? inf : std::numeric_limits<float>::quiet_NaN());
  uint32_t keep = uint32_t(0) - uint32_t((x > 0) & (x < inf));   // all ones for finite x > 0
  return bits_float((float_bits(res) & keep) | (float_bits(special) & ~keep));
}

// tanh: an odd Taylor series near 0 (|x| < 0.4, seven terms, error < 4e-9), and
// (1 - e) / (1 + e) with e = exp(-2|x|) elsewhere, where 1 - e no longer cancels badly.
TT_INLINE float vtanh(float x) {
  float a = std::fabs(x);
  float e = vexp(-2.0f * a);
  float far = std::copysign((1.0f - e) / (1.0f + e), x);
  float z = x * x;
  float p = 21844.0f / 6081075;
  p = p * z - 1382.0f / 155925;
  p = p * z + 62.0f / 2835;
  p = p * z - 17.0f / 315;
  p = p * z + 2.0f / 15;
  p = p * z - 1.0f / 3;
  float near = x + x * z * p;
  // a bitwise blend rather than `a < 0.4f ? near : far` (nan falls to far, which is nan): inlined into
  // a longer expression, the select would become a branch and stop the loop from vectorising
  uint32_t pick_near = uint32_t(0) - uint32_t(a < 0.4f);
  return bits_float((float_bits(near) & pick_near) | (float_bits(far) & ~pick_near));
}

// sigmoid(x) = 1 / (1 + exp(-x)); exp overflowing to inf correctly gives 0.
TT_INLINE float vsigmoid(float x) { return 1.0f / (1.0f + vexp(-x)); }

// exp, log and tanh in the compute type: the vectorisable float versions, libm for double.
template <class C> TT_INLINE C exp_c(C x) {
  if constexpr (std::is_same_v<C, float>) return vexp(x); else return std::exp(x);
}
template <class C> TT_INLINE C log_c(C x) {
  if constexpr (std::is_same_v<C, float>) return vlog(x); else return std::log(x);
}
template <class C> TT_INLINE C tanh_c(C x) {
  if constexpr (std::is_same_v<C, float>) return vtanh(x); else return std::tanh(x);
}

// Sums and maxima with 16 independent lanes, which the compiler keeps in SIMD registers.
constexpr int kLanes = 16;
template <class C, class Op, class F> C fold(int64_t n, C init, const Op& op, const F& value) {
  C part[kLanes];
  for (int l = 0; l < kLanes; ++l) part[l] = init;
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes)
    for (int l = 0; l < kLanes; ++l) part[l] = op(part[l], value(i + l));
  for (; i < n; ++i) part[0] = op(part[0], value(i));
  for (int w = kLanes / 2; w > 0; w /= 2)
    for (int l = 0; l < w; ++l) part[l] = op(part[l], part[l + w]);
  return part[0];
}
template <class C, class F> C sum_of(int64_t n, const F& value) {
  return fold<C>(n, C(0), [](C a, C b) { return a + b; }, value);
}
// GCC vectorises fold()'s lanes for a sum but not for a maximum (a conditional), so here the lanes
// are one explicit vector: value(i) should be a plain load (x[i]) for the lanes to be one load too.
template <class C, class F> C max_of(int64_t n, const F& value) {
  typedef C V __attribute__((vector_size(kLanes * sizeof(C))));
  constexpr C lowest = -std::numeric_limits<C>::infinity();
  V part = V{} + lowest;
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    V v;
    for (int l = 0; l < kLanes; ++l) v[l] = value(i + l);
    part = part > v ? part : v;
  }
  C m = lowest;
  for (int l = 0; l < kLanes; ++l) m = m > part[l] ? m : part[l];
  for (; i < n; ++i) m = m > value(i) ? m : value(i);
  return m;
}

}  // namespace tt
