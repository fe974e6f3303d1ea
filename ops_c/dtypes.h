// dtypes.h: the dtype codes shared with Python, the two 16-bit float types (stored as 16 bits,
// computed in float32), the per-type traits the kernels need (compute and accumulator types,
// load/store conversions) and visit_dtype(), which turns a runtime dtype code into a C++ type so
// that every kernel is written once as a template. It leaves out fp8 (not a CPU compute dtype).
#pragma once

#include <climits>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>
#include <type_traits>

#ifdef __F16C__
#include <immintrin.h>
#endif

namespace tt {

// The codes Python passes with every buffer (tinytensor/dtype.py uses the same numbers).
enum DType : int {
  kFloat64 = 0, kFloat32 = 1, kFloat16 = 2, kBFloat16 = 3, kInt64 = 4,
  kInt32 = 5, kInt16 = 6, kInt8 = 7, kUInt8 = 8, kBool = 9,
};

inline uint32_t float_bits(float f) { uint32_t u; std::memcpy(&u, &f, 4); return u; }
inline float bits_float(uint32_t u) { float f; std::memcpy(&f, &u, 4); return f; }

// float32 -> IEEE half with round-to-nearest-even, subnormals, inf and nan.
inline uint16_t float_to_half(float f) {
#ifdef __F16C__
  return _cvtss_sh(f, _MM_FROUND_TO_NEAREST_INT);
#else
  uint32_t u = float_bits(f);
  uint16_t sign = (u >> 16) & 0x8000;
  u &= 0x7fffffffu;
  if (u > 0x7f800000u) return sign | 0x7e00;      // nan stays a (quiet) nan
  if (u >= 0x47800000u) return sign | 0x7c00;     // >= 65536 (and inf) is inf in half
  if (u < 0x38800000u) {                          // below 2^-14: a half subnormal (or zero)
    // Adding 0.5 puts the float's last mantissa bit at 2^-24, the half subnormal step, so the
    // float adder does the round-to-nearest-even for us; the bit difference is the half.
    float shifted = bits_float(u) + 0.5f;
    return sign | uint16_t(float_bits(shifted) - float_bits(0.5f));
  }
  uint32_t odd = (u >> 13) & 1;                   // ties go to the even half
  u += 0xc8000000u + 0xfff + odd;                 // 0xc8000000 = (15 - 127) << 23 rebiases the exponent
  return sign | uint16_t(u >> 13);                // a rounding carry may reach inf: correct
#endif
}

inline float half_to_float(uint16_t h) {
#ifdef __F16C__
  return _cvtsh_ss(h);
#else
  uint32_t sign = uint32_t(h & 0x8000) << 16;
  uint32_t exp = (h >> 10) & 0x1f, mant = h & 0x3ff;
  if (exp == 0) {                                 // zero or subnormal: mant * 2^-24, exact in float
    float v = float(mant) * 5.9604644775390625e-08f;
    return sign ? -v : v;
  }
  if (exp == 31) return bits_float(sign | 0x7f800000u | (mant << 13));  // inf, nan
  return bits_float(sign | ((exp + 112) << 23) | (mant << 13));
#endif
}

// bfloat16 is the top half of a float32: round to nearest even, keep nan a nan.
inline uint16_t float_to_bf16(float f) {
  uint32_t u = float_bits(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return uint16_t((u >> 16) | 0x40);
  return uint16_t((u + 0x7fffu + ((u >> 16) & 1)) >> 16);
}
inline float bf16_to_float(uint16_t b) { return bits_float(uint32_t(b) << 16); }

struct Half {
  uint16_t bits;
  Half() = default;
  explicit Half(float f) : bits(float_to_half(f)) {}
  operator float() const { return half_to_float(bits); }
};

struct BFloat16 {
  uint16_t bits;
  BFloat16() = default;
  explicit BFloat16(float f) : bits(float_to_bf16(f)) {}
  operator float() const { return bf16_to_float(bits); }
};

// ---- traits --------------------------------------------------------------------------------
template <class T> constexpr bool is_half_v = std::is_same_v<T, Half> || std::is_same_v<T, BFloat16>;
template <class T> constexpr bool is_float_v = std::is_floating_point_v<T> || is_half_v<T>;

// The type arithmetic runs in: float for the 16-bit floats, int for bool, else the type itself.
template <class T> struct ComputeType { using type = T; };
template <> struct ComputeType<Half> { using type = float; };
template <> struct ComputeType<BFloat16> { using type = float; };
template <> struct ComputeType<bool> { using type = int32_t; };
template <class T> using compute_t = typename ComputeType<T>::type;

// The type sums and products accumulate in: double for every float (so float32 sums of millions
// of elements stay within ~1e-7 of the exact value), int64 for every integer.
template <class T> using sum_acc_t = std::conditional_t<is_float_v<T>, double, int64_t>;

template <class T> inline compute_t<T> load(T x) { return compute_t<T>(x); }

// double -> float rounded "to odd" (truncate, then set the last bit if anything was cut off).
// Rounding that float again to half gives the correctly rounded result, as numpy's
// float64 -> float16 does; rounding to nearest twice would be off by one ulp now and then.
// bfloat16 deliberately goes double -> float -> bf16, as ml_dtypes and torch do.
inline float to_float_round_odd(double d) {
  float f = float(d);
  if (double(f) == d || d != d) return f;
  uint32_t u = float_bits(f);
  if (std::fabs(double(f)) > std::fabs(d)) u -= 1;   // step back toward zero: truncation
  return bits_float(u | 1);
}

// Float -> integer, defined for every input as NumPy and PyTorch compute it on x86: truncate toward
// zero into int64 for int64 and into int32 for the narrower types (then keep the low bits, so 300.0
// is 44 as uint8); NaN, inf and values outside that int64 or int32 range give its minimum. (A C++
// cast of those is undefined behaviour, so the range test comes first.)
// The bounds are compared in V itself (no widening): an excluded bound maps to the minimum anyway.
template <class T, class V> inline T float_to_int(V v) {
  if constexpr (sizeof(T) == 8) {
    return (v > V(-9223372036854775808.0) && v < V(9223372036854775808.0)) ? T(int64_t(v)) : T(INT64_MIN);
  } else {
    return T((v > V(-2147483649.0) && v < V(2147483648.0)) ? int32_t(v) : INT32_MIN);
  }
}

// Converts a computed value to storage type T: to bool is `!= 0`, float to int as float_to_int,
// to 16-bit floats rounds to even.
template <class T, class V> inline T store(V v) {
  if constexpr (std::is_same_v<T, bool>) {
    return v != V(0);
  } else if constexpr (std::is_integral_v<T> && std::is_floating_point_v<V>) {
    return float_to_int<T>(v);
  } else if constexpr (std::is_same_v<T, Half> && !std::is_same_v<V, float>) {
    return T(to_float_round_odd(double(v)));
  } else if constexpr (is_half_v<T>) {
    return T(float(v));
  } else {
    return T(v);
  }
}

// ---- dispatch: runtime dtype code -> template instantiation --------------------------------
template <class T> struct Tag { using type = T; };

// Calls f(Tag<T>{}) with T the C++ type of dtype code `dt`. Use inside as
// `[&](auto tag) { using T = typename decltype(tag)::type; ... }`.
template <class F> void visit_dtype(int dt, F&& f) {
  switch (dt) {
    case kFloat64: return f(Tag<double>{});
    case kFloat32: return f(Tag<float>{});
    case kFloat16: return f(Tag<Half>{});
    case kBFloat16: return f(Tag<BFloat16>{});
    case kInt64: return f(Tag<int64_t>{});
    case kInt32: return f(Tag<int32_t>{});
    case kInt16: return f(Tag<int16_t>{});
    case kInt8: return f(Tag<int8_t>{});
    case kUInt8: return f(Tag<uint8_t>{});
    case kBool: return f(Tag<bool>{});
  }
  throw std::invalid_argument("unknown dtype code " + std::to_string(dt));
}

// Like visit_dtype, for ops defined only on floating dtypes (exp, log, div, ...).
template <class F> void visit_float_dtype(int dt, F&& f) {
  switch (dt) {
    case kFloat64: return f(Tag<double>{});
    case kFloat32: return f(Tag<float>{});
    case kFloat16: return f(Tag<Half>{});
    case kBFloat16: return f(Tag<BFloat16>{});
  }
  throw std::invalid_argument("this op needs a floating dtype, got dtype code " + std::to_string(dt));
}

}  // namespace tt
