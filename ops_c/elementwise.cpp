// elementwise.cpp: the unary and binary math primitives and where(). Each op is a tiny functor
// on the compute type (float for the 16-bit floats); one kernel template per arity walks the
// strided operands (strided.h) and applies the op in a tight loop that the compiler vectorises,
// with the op chosen once per call by a switch, never per element. Outputs are contiguous.
// Integer remainder and floor_divide check their divisors for zeros block by block before dividing
// (a RuntimeError saying ZeroDivisionError, as PyTorch), so their loops never divide by zero.
// Not here: fused ops (softmax, ...).

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <stdexcept>

#include "dtypes.h"
#include "kernels.h"
#include "strided.h"
#include "vecmath.h"

namespace tt {
namespace {

template <class C> inline bool is_nan(C x) {
  if constexpr (std::is_floating_point_v<C>) return std::isnan(x);
  else return false;
}

// Every op says whether it needs a floating dtype and whether its result is bool.
struct AnyOp { static constexpr bool kFloatOnly = false, kBoolOut = false; };
struct FloatOp { static constexpr bool kFloatOnly = true, kBoolOut = false; };
struct BoolOp { static constexpr bool kFloatOnly = false, kBoolOut = true; };

// ---- unary ops --------------------------------------------------------------------------------
struct Neg : AnyOp { template <class C> static C f(C x) { return C(-x); } };
struct Abs : AnyOp {
  template <class C> static C f(C x) {
    if constexpr (std::is_floating_point_v<C>) return std::fabs(x);
    else return C(x < 0 ? -x : x);
  }
};
struct Sign : AnyOp {   // 0 for 0, nan for nan
  template <class C> static C f(C x) { return x > 0 ? C(1) : (x < 0 ? C(-1) : x); }
};
struct Exp : FloatOp {
  static float f(float x) { return vexp(x); }
  static double f(double x) { return std::exp(x); }
};
struct Log : FloatOp {
  static float f(float x) { return vlog(x); }
  static double f(double x) { return std::log(x); }
};
struct Log1p : FloatOp { template <class C> static C f(C x) { return std::log1p(x); } };
struct Expm1 : FloatOp { template <class C> static C f(C x) { return std::expm1(x); } };
struct Sqrt : FloatOp { template <class C> static C f(C x) { return std::sqrt(x); } };
struct Rsqrt : FloatOp { template <class C> static C f(C x) { return C(1) / std::sqrt(x); } };
struct Sin : FloatOp { template <class C> static C f(C x) { return std::sin(x); } };
struct Cos : FloatOp { template <class C> static C f(C x) { return std::cos(x); } };
struct Tanh : FloatOp {
  static float f(float x) { return vtanh(x); }
  static double f(double x) { return std::tanh(x); }
};
struct Sigmoid : FloatOp {
  static float f(float x) { return vsigmoid(x); }
  static double f(double x) { return 1.0 / (1.0 + std::exp(-x)); }
};
struct Relu : AnyOp { template <class C> static C f(C x) { return x < 0 ? C(0) : x; } };  // keeps nan
struct Erf : FloatOp { template <class C> static C f(C x) { return std::erf(x); } };
struct Reciprocal : FloatOp { template <class C> static C f(C x) { return C(1) / x; } };
// Rounding ops are the identity on integers; round() is half-to-even, like numpy and torch.
struct Floor : AnyOp {
  template <class C> static C f(C x) { if constexpr (std::is_floating_point_v<C>) return std::floor(x); else return x; }
};
struct Ceil : AnyOp {
  template <class C> static C f(C x) { if constexpr (std::is_floating_point_v<C>) return std::ceil(x); else return x; }
};
struct Round : AnyOp {
  template <class C> static C f(C x) { if constexpr (std::is_floating_point_v<C>) return std::nearbyint(x); else return x; }
};
struct Trunc : AnyOp {
  template <class C> static C f(C x) { if constexpr (std::is_floating_point_v<C>) return std::trunc(x); else return x; }
};
struct LogicalNot : BoolOp { template <class C> static bool f(C x) { return x == C(0); } };

template <class F> void visit_unary_op(int op, F&& f) {
  switch (op) {
    case 0: return f(Neg{});      case 1: return f(Abs{});        case 2: return f(Sign{});
    case 3: return f(Exp{});      case 4: return f(Log{});        case 5: return f(Log1p{});
    case 6: return f(Expm1{});    case 7: return f(Sqrt{});       case 8: return f(Rsqrt{});
    case 9: return f(Sin{});      case 10: return f(Cos{});       case 11: return f(Tanh{});
    case 12: return f(Sigmoid{}); case 13: return f(Relu{});      case 14: return f(Erf{});
    case 15: return f(Reciprocal{}); case 16: return f(Floor{});  case 17: return f(Ceil{});
    case 18: return f(Round{});   case 19: return f(Trunc{});     case 20: return f(LogicalNot{});
  }
  throw std::invalid_argument("unknown unary op code " + std::to_string(op));
}

// ---- binary ops -------------------------------------------------------------------------------
// Integer power by squaring, wrapping on overflow; negative exponents give 0 except for bases
// 1 and -1 (as torch).
template <class C> C int_pow(C base, C exp) {
  if (exp < 0) return base == 1 ? C(1) : (base == C(-1) ? C(exp % 2 ? -1 : 1) : C(0));
  uint64_t r = 1, b = uint64_t(int64_t(base));
  for (uint64_t e = uint64_t(exp); e; e >>= 1, b *= b)
    if (e & 1) r *= b;
  return C(int64_t(r));
}

struct Add : AnyOp { template <class C> static C f(C a, C b) { return C(a + b); } };
struct Sub : AnyOp { template <class C> static C f(C a, C b) { return C(a - b); } };
struct Mul : AnyOp { template <class C> static C f(C a, C b) { return C(a * b); } };
struct Div : FloatOp { template <class C> static C f(C a, C b) { return a / b; } };
struct Pow : AnyOp {
  template <class C> static C f(C a, C b) {
    if constexpr (std::is_floating_point_v<C>) return std::pow(a, b);
    else return int_pow(a, b);
  }
};
struct Maximum : AnyOp {   // nan wins
  template <class C> static C f(C a, C b) { return (a > b || is_nan(a)) ? a : b; }
};
struct Minimum : AnyOp {
  template <class C> static C f(C a, C b) { return (a < b || is_nan(a)) ? a : b; }
};
// Python's %: the result takes the sign of the divisor.
struct Remainder : AnyOp {
  template <class C> static C f(C a, C b) {
    if constexpr (std::is_floating_point_v<C>) {
      C r = std::fmod(a, b);
      if (r == 0) return std::copysign(C(0), b);
      return (r < 0) != (b < 0) ? r + b : r;
    } else {
      if (std::is_signed_v<C> && b == C(-1)) return C(0);   // avoids INT_MIN % -1 trapping
      C r = C(a % b);
      return (r != 0 && ((r < 0) != (b < 0))) ? C(r + b) : r;
    }
  }
};
// Python's //: the quotient rounded toward minus infinity. Floats take the quotient of a - fmod(a, b),
// which is exact, round it to the nearest integer and keep the sign of a / b on a zero, like
// Python and torch; x // 0 is x / 0 (inf or nan).
struct FloorDivide : AnyOp {
  template <class C> static C f(C a, C b) {
    if constexpr (std::is_floating_point_v<C>) {
      if (b == 0) return a / b;
      C m = std::fmod(a, b), q = (a - m) / b;
      if (m != 0 && (b < 0) != (m < 0)) q -= 1;
      if (q == 0) return std::copysign(C(0), a / b);
      C fq = std::floor(q);
      return q - fq > C(0.5) ? fq + 1 : fq;
    } else {
      if (std::is_signed_v<C> && b == C(-1)) return C(uint64_t(0) - uint64_t(int64_t(a)));  // INT_MIN / -1 wraps
      C q = C(a / b);
      return (C(a % b) != 0 && ((a < 0) != (b < 0))) ? C(q - 1) : q;
    }
  }
};
struct Eq : BoolOp { template <class C> static bool f(C a, C b) { return a == b; } };
struct Ne : BoolOp { template <class C> static bool f(C a, C b) { return a != b; } };
struct Lt : BoolOp { template <class C> static bool f(C a, C b) { return a < b; } };
struct Le : BoolOp { template <class C> static bool f(C a, C b) { return a <= b; } };
struct Gt : BoolOp { template <class C> static bool f(C a, C b) { return a > b; } };
struct Ge : BoolOp { template <class C> static bool f(C a, C b) { return a >= b; } };
struct LogicalAnd : BoolOp { template <class C> static bool f(C a, C b) { return a != C(0) && b != C(0); } };
struct LogicalOr : BoolOp { template <class C> static bool f(C a, C b) { return a != C(0) || b != C(0); } };
struct LogicalXor : BoolOp { template <class C> static bool f(C a, C b) { return (a != C(0)) != (b != C(0)); } };

template <class F> void visit_binary_op(int op, F&& f) {
  switch (op) {
    case 0: return f(Add{});      case 1: return f(Sub{});       case 2: return f(Mul{});
    case 3: return f(Div{});      case 4: return f(Pow{});       case 5: return f(Maximum{});
    case 6: return f(Minimum{});  case 7: return f(Remainder{}); case 8: return f(Eq{});
    case 9: return f(Ne{});       case 10: return f(Lt{});       case 11: return f(Le{});
    case 12: return f(Gt{});      case 13: return f(Ge{});       case 14: return f(LogicalAnd{});
    case 15: return f(LogicalOr{}); case 16: return f(LogicalXor{}); case 17: return f(FloorDivide{});
  }
  throw std::invalid_argument("unknown binary op code " + std::to_string(op));
}

// Calls run(Tag<T>) for dtype dt, limited to floating dtypes when Op needs them.
template <class Op, class Run> void visit_op_dtype(int dt, const Run& run) {
  if constexpr (Op::kFloatOnly) visit_float_dtype(dt, run);
  else visit_dtype(dt, run);
}

template <class Op, class T> using out_t = std::conditional_t<Op::kBoolOut, bool, T>;

// ---- kernels ------------------------------------------------------------------------------------
// Each kernel hands for_each_run a lambda that calls its run loop: n elements, the output
// contiguous, inputs stepping by their strides (0 = a broadcast value). The loops are separate
// functions so that __restrict on their parameters tells the compiler the buffers do not
// overlap: it then vectorises them without run-time overlap checks.

template <class Op, class T, class Out>
void unary_run(Out* __restrict o, const T* __restrict x, int64_t n, int64_t sx) {
  if (sx == 1) {
    for (int64_t i = 0; i < n; ++i) o[i] = store<Out>(Op::f(load(x[i])));
  } else {
    for (int64_t i = 0; i < n; ++i) o[i] = store<Out>(Op::f(load(x[i * sx])));
  }
}

template <class Op, class T>
void unary_kernel(void* out, const void* x, const Iter& it) {
  using Out = out_t<Op, T>;
  for_each_run(it, [&](const int64_t* off, int64_t n) {
    unary_run<Op>(static_cast<Out*>(out) + off[0], static_cast<const T*>(x) + off[1], n, it.inner(1));
  });
}

template <class Op, class T, class Out>
void binary_run(Out* __restrict o, const T* __restrict a, const T* __restrict b, int64_t n, int64_t sa, int64_t sb) {
  using C = compute_t<T>;
  if (sa == 1 && sb == 1) {
    for (int64_t i = 0; i < n; ++i) o[i] = store<Out>(Op::f(load(a[i]), load(b[i])));
  } else if (sa == 1 && sb == 0) {   // tensor op scalar, the most common broadcast
    C y = load(b[0]);
    if (std::is_same_v<Op, Pow> && std::is_floating_point_v<C> && y == C(2)) {   // x ** 2
      for (int64_t i = 0; i < n; ++i) o[i] = store<Out>(load(a[i]) * load(a[i]));
    } else {
      for (int64_t i = 0; i < n; ++i) o[i] = store<Out>(Op::f(load(a[i]), y));
    }
  } else if (sa == 0 && sb == 1) {
    C x = load(a[0]);
    for (int64_t i = 0; i < n; ++i) o[i] = store<Out>(Op::f(x, load(b[i])));
  } else {
    for (int64_t i = 0; i < n; ++i) o[i] = store<Out>(Op::f(load(a[i * sa]), load(b[i * sb])));
  }
}

// Integer remainder and floor_divide: each block of a run first checks its divisors for a zero
// (while they are in L1 for the division that follows), so no loop ever divides by zero.
template <class Op, class T> constexpr bool kCheckDivisor =
    (std::is_same_v<Op, Remainder> || std::is_same_v<Op, FloorDivide>) && !is_float_v<T>;

template <class T> bool has_zero(const T* b, int64_t n, int64_t sb) {
  if (sb == 0) return b[0] == T(0);
  int z = 0;   // an int, and a separate unit-stride loop, so that the compiler vectorises it
  if (sb == 1) {
    for (int64_t i = 0; i < n; ++i) z |= b[i] == T(0);
  } else {
    for (int64_t i = 0; i < n; ++i) z |= b[i * sb] == T(0);
  }
  return z != 0;
}

template <class Op, class T>
void binary_kernel(void* out, const void* a, const void* b, const Iter& it) {
  using Out = out_t<Op, T>;
  if constexpr (kCheckDivisor<Op, T>) {
    constexpr int64_t kBlock = 2048;
    std::atomic<bool> zero{false};   // set inside a parallel region, where nothing may throw
    for_each_run(it, [&](const int64_t* off, int64_t n) {
      int64_t sa = it.inner(1), sb = it.inner(2);
      for (int64_t i = 0; i < n && !zero.load(std::memory_order_relaxed); i += kBlock) {
        int64_t m = std::min(kBlock, n - i);
        const T* bi = static_cast<const T*>(b) + off[2] + i * sb;
        if (has_zero(bi, m, sb)) {
          zero.store(true, std::memory_order_relaxed);
          return;
        }
        binary_run<Op>(static_cast<Out*>(out) + off[0] + i, static_cast<const T*>(a) + off[1] + i * sa, bi, m, sa, sb);
      }
    });
    if (zero.load()) throw std::runtime_error(std::string(std::is_same_v<Op, Remainder> ? "remainder" : "floor_divide") +
                                              ": integer division by zero (ZeroDivisionError)");
  } else {
    for_each_run(it, [&](const int64_t* off, int64_t n) {
      binary_run<Op>(static_cast<Out*>(out) + off[0], static_cast<const T*>(a) + off[1],
                     static_cast<const T*>(b) + off[2], n, it.inner(1), it.inner(2));
    });
  }
}

template <class T>
void where_run(T* __restrict o, const bool* __restrict c, const T* __restrict a, const T* __restrict b,
               int64_t n, int64_t sc, int64_t sa, int64_t sb) {
  if (sc == 1 && sa == 1 && sb == 1) {
    for (int64_t i = 0; i < n; ++i) o[i] = c[i] ? a[i] : b[i];
  } else {
    for (int64_t i = 0; i < n; ++i) o[i] = c[i * sc] ? a[i * sa] : b[i * sb];
  }
}

template <class T>
void where_kernel(void* out, const void* cond, const void* a, const void* b, const Iter& it) {
  for_each_run(it, [&](const int64_t* off, int64_t n) {
    where_run(static_cast<T*>(out) + off[0], static_cast<const bool*>(cond) + off[1],
              static_cast<const T*>(a) + off[2], static_cast<const T*>(b) + off[3], n,
              it.inner(1), it.inner(2), it.inner(3));
  });
}

}  // namespace

const std::vector<std::string>& unary_op_names() {
  static const std::vector<std::string> names = {
      "neg", "abs", "sign", "exp", "log", "log1p", "expm1", "sqrt", "rsqrt", "sin", "cos",
      "tanh", "sigmoid", "relu", "erf", "reciprocal", "floor", "ceil", "round", "trunc", "logical_not"};
  return names;
}

const std::vector<std::string>& binary_op_names() {
  static const std::vector<std::string> names = {
      "add", "sub", "mul", "div", "pow", "maximum", "minimum", "remainder", "eq", "ne", "lt", "le",
      "gt", "ge", "logical_and", "logical_or", "logical_xor", "floor_divide"};
  return names;
}

void unary(int op, void* out, int /*out_dt*/, const void* x, int x_dt,
           const Dims& shape, const Dims& x_strides, int64_t x_offset) {
  Iter it = make_iter(shape, {{nullptr, 0}, {x_strides.data(), x_offset}});
  visit_unary_op(op, [&](auto op_tag) {
    using Op = decltype(op_tag);
    visit_op_dtype<Op>(x_dt, [&](auto tag) { unary_kernel<Op, typename decltype(tag)::type>(out, x, it); });
  });
}

void binary(int op, void* out, int /*out_dt*/,
            const void* a, int a_dt, const Dims& a_strides, int64_t a_offset,
            const void* b, int /*b_dt*/, const Dims& b_strides, int64_t b_offset, const Dims& shape) {
  Iter it = make_iter(shape, {{nullptr, 0}, {a_strides.data(), a_offset}, {b_strides.data(), b_offset}});
  visit_binary_op(op, [&](auto op_tag) {
    using Op = decltype(op_tag);
    visit_op_dtype<Op>(a_dt, [&](auto tag) { binary_kernel<Op, typename decltype(tag)::type>(out, a, b, it); });
  });
}

void where(void* out, int dt, const void* cond, const Dims& c_strides, int64_t c_offset,
           const void* a, const Dims& a_strides, int64_t a_offset,
           const void* b, const Dims& b_strides, int64_t b_offset, const Dims& shape) {
  Iter it = make_iter(shape, {{nullptr, 0}, {c_strides.data(), c_offset},
                              {a_strides.data(), a_offset}, {b_strides.data(), b_offset}});
  visit_dtype(dt, [&](auto tag) { where_kernel<typename decltype(tag)::type>(out, cond, a, b, it); });
}

}  // namespace tt
