// elementwise.cu: the unary and binary math primitives and where(), on strided operands (stride 0
// for a broadcast one) into a contiguous output. One kernel template per family, instantiated per
// storage type T: unary_kernel, binary_kernel (arithmetic: the output is T), compare_kernel
// (comparisons and logical ops: the output is bool; logical_not is x == 0 with a broadcast zero) and
// where_kernel. The op is a runtime code, the same for every thread, so its switch is a uniform
// branch, not a divergence. Codes follow backend/base.py (UNARY_OPS, BINARY_OPS); tests/test_cuda.py
// checks the enums. 16-bit floats compute in float.
// Integer x % 0 and x // 0 give 0 here (a GPU does not trap); the Tensor layer raises before.
// Not here: fused ops (their own files).
#include "common.cuh"

enum UnaryOp {
  NEG, ABS, SIGN, EXP, LOG, LOG1P, EXPM1, SQRT, RSQRT, SIN, COS, TANH,
  SIGMOID, RELU, ERF, RECIPROCAL, FLOOR, CEIL, ROUND, TRUNC, LOGICAL_NOT
};

enum BinaryOp {
  ADD, SUB, MUL, DIV, POW, MAXIMUM, MINIMUM, REMAINDER,
  EQ, NE, LT, LE, GT, GE, LOGICAL_AND, LOGICAL_OR, LOGICAL_XOR, FLOOR_DIVIDE
};

// Float math in float or double; the integer overload only makes every instantiation compile
// (Python casts integers to float before a float-only op, so it never runs).
#define TT_FLOAT_FN(name, ffn, dfn)                                                        \
  __device__ __forceinline__ float name(float x) { return ffn(x); }                        \
  __device__ __forceinline__ double name(double x) { return dfn(x); }                      \
  template <class C> __device__ __forceinline__ C name(C x) { return C(dfn(double(x))); }

TT_FLOAT_FN(f_exp, expf, exp)
TT_FLOAT_FN(f_log, logf, log)
TT_FLOAT_FN(f_log1p, log1pf, log1p)
TT_FLOAT_FN(f_expm1, expm1f, expm1)
TT_FLOAT_FN(f_sqrt, sqrtf, sqrt)
TT_FLOAT_FN(f_rsqrt, rsqrtf, rsqrt)
TT_FLOAT_FN(f_sin, sinf, sin)
TT_FLOAT_FN(f_cos, cosf, cos)
TT_FLOAT_FN(f_tanh, tanhf, tanh)
TT_FLOAT_FN(f_erf, erff, erf)
TT_FLOAT_FN(f_floor, floorf, floor)   // the rounding ops are the identity on integers
TT_FLOAT_FN(f_ceil, ceilf, ceil)
TT_FLOAT_FN(f_round, rintf, rint)     // half to even, like numpy and torch
TT_FLOAT_FN(f_trunc, truncf, trunc)

// x < 0, written so that the compiler does not warn about it for unsigned char
template <class C> __device__ __forceinline__ bool is_neg(C x) { return i64(x) < 0; }
__device__ __forceinline__ bool is_neg(float x) { return x < 0.0f; }
__device__ __forceinline__ bool is_neg(double x) { return x < 0.0; }

__device__ __forceinline__ float f_abs(float x) { return fabsf(x); }
__device__ __forceinline__ double f_abs(double x) { return fabs(x); }
template <class C> __device__ __forceinline__ C f_abs(C x) { return is_neg(x) ? C(-x) : x; }

template <class C> __device__ C unary_op(int op, C x) {
  switch (op) {
    case NEG: return C(-x);
    case ABS: return f_abs(x);
    case SIGN: return x > C(0) ? C(1) : (is_neg(x) ? C(-1) : x);   // 0 for 0, nan for nan
    case EXP: return f_exp(x);
    case LOG: return f_log(x);
    case LOG1P: return f_log1p(x);
    case EXPM1: return f_expm1(x);
    case SQRT: return f_sqrt(x);
    case RSQRT: return C(1) / f_sqrt(x);
    case SIN: return f_sin(x);
    case COS: return f_cos(x);
    case TANH: return f_tanh(x);
    case SIGMOID: return C(1) / (C(1) + f_exp(C(-x)));
    case RELU: return is_neg(x) ? C(0) : x;                         // keeps nan
    case ERF: return f_erf(x);
    case RECIPROCAL: return C(1) / x;
    case FLOOR: return IsFloat<C>::value ? f_floor(x) : x;
    case CEIL: return IsFloat<C>::value ? f_ceil(x) : x;
    case ROUND: return IsFloat<C>::value ? f_round(x) : x;
    case TRUNC: return IsFloat<C>::value ? f_trunc(x) : x;
  }
  return x;
}

// Integer power by squaring, wrapping on overflow; negative exponents give 0 except for bases
// 1 and -1 (as torch and the CPU kernels).
template <class C> __device__ C int_pow(C base, C e) {
  if (i64(e) < 0) return base == C(1) ? C(1) : (base == C(-1) ? C(e % C(2) ? -1 : 1) : C(0));
  unsigned long long r = 1, b = (unsigned long long)i64(base);
  for (unsigned long long k = (unsigned long long)i64(e); k; k >>= 1, b *= b)
    if (k & 1) r *= b;
  return C(i64(r));
}
__device__ __forceinline__ float pow_op(float a, float b) { return powf(a, b); }
__device__ __forceinline__ double pow_op(double a, double b) { return pow(a, b); }
template <class C> __device__ __forceinline__ C pow_op(C a, C b) { return int_pow(a, b); }

// Python's %: the result takes the sign of the divisor.
__device__ __forceinline__ float rem_op(float a, float b) {
  float r = fmodf(a, b);
  if (r == 0.0f) return copysignf(0.0f, b);
  return (r < 0.0f) != (b < 0.0f) ? r + b : r;
}
__device__ __forceinline__ double rem_op(double a, double b) {
  double r = fmod(a, b);
  if (r == 0.0) return copysign(0.0, b);
  return (r < 0.0) != (b < 0.0) ? r + b : r;
}
template <class C> __device__ __forceinline__ C rem_op(C a, C b) {
  if (b == C(0) || (i64(C(-1)) < 0 && b == C(-1))) return C(0);   // signed types: INT_MIN % -1 overflows
  C r = C(a % b);
  return (r != C(0) && ((i64(r) < 0) != (i64(b) < 0))) ? C(r + b) : r;
}

// Python's //, rounded toward minus infinity. Floats: the exact quotient of a - fmod(a, b),
// rounded to the nearest integer, keeping the sign of a / b on a zero; x // 0 is x / 0.
template <class F> __device__ __forceinline__ F floordiv_float(F a, F b) {
  if (b == F(0)) return a / b;
  F m = fmod(a, b), q = (a - m) / b;
  if (m != F(0) && (b < F(0)) != (m < F(0))) q -= F(1);
  if (q == F(0)) return copysign(F(0), a / b);
  F fq = floor(q);
  return q - fq > F(0.5) ? fq + F(1) : fq;
}
__device__ __forceinline__ float floordiv_op(float a, float b) { return floordiv_float(a, b); }
__device__ __forceinline__ double floordiv_op(double a, double b) { return floordiv_float(a, b); }
template <class C> __device__ __forceinline__ C floordiv_op(C a, C b) {
  if (b == C(0)) return C(0);
  if (i64(C(-1)) < 0 && b == C(-1)) return C(0ULL - (unsigned long long)i64(a));   // INT_MIN / -1 wraps
  C q = C(a / b);
  return (C(a % b) != C(0) && (is_neg(a) != is_neg(b))) ? C(q - C(1)) : q;
}

template <class C> __device__ C binary_op(int op, C a, C b) {
  switch (op) {
    case ADD: return C(a + b);
    case SUB: return C(a - b);
    case MUL: return C(a * b);
    case DIV: return C(a / b);
    case POW: return pow_op(a, b);
    case MAXIMUM: return (a > b || is_nan(a)) ? a : b;   // nan wins
    case MINIMUM: return (a < b || is_nan(a)) ? a : b;
    case REMAINDER: return rem_op(a, b);
    case FLOOR_DIVIDE: return floordiv_op(a, b);
  }
  return a;
}

template <class C> __device__ bool compare_op(int op, C a, C b) {
  switch (op) {
    case EQ: return a == b;
    case NE: return a != b;
    case LT: return a < b;
    case LE: return a <= b;
    case GT: return a > b;
    case GE: return a >= b;
    case LOGICAL_AND: return a != C(0) && b != C(0);
    case LOGICAL_OR: return a != C(0) || b != C(0);
    case LOGICAL_XOR: return (a != C(0)) != (b != C(0));
  }
  return false;
}

// out: contiguous (n,) = op(x); x: strided over meta's shape, from x_off;
// meta: shape (nd), x strides (nd).
template <class T>
__global__ void unary_kernel(T* out, const T* x, const i64* meta, int nd, i64 n, i64 x_off, int op) {
  TT_GRID_LOOP(i, n) {
    i64 off[1];
    walk<1>(i, meta, nd, off);
    out[i] = store<T>(unary_op(op, load(x[x_off + off[0]])));
  }
}

// out: contiguous (n,) = op(a, b); a, b: strided over one shape (broadcast by stride 0);
// meta: shape (nd), a strides (nd), b strides (nd).
template <class T>
__global__ void binary_kernel(T* out, const T* a, const T* b, const i64* meta, int nd, i64 n, i64 a_off, i64 b_off,
                              int op) {
  TT_GRID_LOOP(i, n) {
    i64 off[2];
    walk<2>(i, meta, nd, off);
    out[i] = store<T>(binary_op(op, load(a[a_off + off[0]]), load(b[b_off + off[1]])));
  }
}

// out: contiguous bool (n,) = op(a, b) for a comparison or logical op; a, b, meta: as binary_kernel.
template <class T>
__global__ void compare_kernel(bool* out, const T* a, const T* b, const i64* meta, int nd, i64 n, i64 a_off,
                               i64 b_off, int op) {
  TT_GRID_LOOP(i, n) {
    i64 off[2];
    walk<2>(i, meta, nd, off);
    out[i] = compare_op(op, load(a[a_off + off[0]]), load(b[b_off + off[1]]));
  }
}

// out: contiguous (n,) = cond ? a : b; cond (bool), a, b: strided over one shape;
// meta: shape (nd), cond strides (nd), a strides (nd), b strides (nd).
template <class T>
__global__ void where_kernel(T* out, const bool* cond, const T* a, const T* b, const i64* meta, int nd, i64 n,
                             i64 c_off, i64 a_off, i64 b_off) {
  TT_GRID_LOOP(i, n) {
    i64 off[3];
    walk<3>(i, meta, nd, off);
    out[i] = cond[c_off + off[0]] ? a[a_off + off[1]] : b[b_off + off[2]];
  }
}
