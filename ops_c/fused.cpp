// fused.cpp: row-wise fused kernels (softmax, log-softmax, cross-entropy, layer norm, RMS norm),
// GELU and the AdamW step. A row (one sample's logits, one token's features) fits in L1, so each
// kernel reads it from memory once or twice and does all its arithmetic there; the composites
// they replace make a fresh tensor per step (max, sub, exp, sum, div, ...). Rows are split over
// threads. float16/bfloat16 rows are widened to float into a per-thread scratch row first.
// Not here: attention (attention.cpp); other dims than the last (Python moves them or falls back).
#include <omp.h>

#include <cmath>
#include <limits>
#include <vector>

#include "dtypes.h"
#include "fused.h"
#include "parallel.h"
#include "vecmath.h"

namespace tt {
namespace {

// A row of T seen as compute_t<T>: the storage itself, or a widened copy for 16-bit floats.
template <class T> struct RowReader {
  using C = compute_t<T>;
  std::vector<C> scratch;
  const C* operator()(const T* x, int64_t n) {
    if constexpr (std::is_same_v<T, C>) {
      return x;
    } else {
      scratch.resize(n);
      for (int64_t i = 0; i < n; ++i) scratch[i] = load(x[i]);
      return scratch.data();
    }
  }
};

// An optional (n,) parameter (weight, bias) widened once, or an empty vector for null.
template <class T> std::vector<compute_t<T>> widen(const void* p, int64_t n) {
  std::vector<compute_t<T>> w;
  if (p) {
    const T* x = static_cast<const T*>(p);
    w.assign(n, 0);
    for (int64_t i = 0; i < n; ++i) w[i] = load(x[i]);
  }
  return w;
}

// Splits rows over threads with about kGrain elements per thread at least.
template <class Body> void for_rows(int64_t rows, int64_t n, const Body& body) {
  parallel_for(rows, std::max<int64_t>(1, kGrain / std::max<int64_t>(n, 1)), body);
}

template <class T> void softmax_t(T* out, const T* x, int64_t rows, int64_t n, bool log) {
  using C = compute_t<T>;
  for_rows(rows, n, [&](int64_t r0, int64_t r1) {
    RowReader<T> read;
    std::vector<C> e(n);
    for (int64_t r = r0; r < r1; ++r) {
      const C* xr = read(x + r * n, n);
      T* o = out + r * n;
      C m = max_of<C>(n, [&](int64_t i) { return xr[i]; });
      for (int64_t i = 0; i < n; ++i) e[i] = exp_c(xr[i] - m);
      C s = sum_of<C>(n, [&](int64_t i) { return e[i]; });
      if (log) {
        C shift = m + log_c(s);
        for (int64_t i = 0; i < n; ++i) o[i] = store<T>(xr[i] - shift);
      } else {
        C inv = C(1) / s;
        for (int64_t i = 0; i < n; ++i) o[i] = store<T>(e[i] * inv);
      }
    }
  });
}

template <class T> void softmax_backward_t(T* gx, const T* y, const T* gy, int64_t rows, int64_t n, bool log) {
  using C = compute_t<T>;
  for_rows(rows, n, [&](int64_t r0, int64_t r1) {
    RowReader<T> read_y, read_g;
    for (int64_t r = r0; r < r1; ++r) {
      const C* yr = read_y(y + r * n, n);
      const C* g = read_g(gy + r * n, n);
      T* o = gx + r * n;
      if (log) {   // y = log p: dx = g - p * sum(g)
        C s = sum_of<C>(n, [&](int64_t i) { return g[i]; });
        for (int64_t i = 0; i < n; ++i) o[i] = store<T>(g[i] - exp_c(yr[i]) * s);
      } else {     // y = p: dx = p * (g - sum(g * p))
        C s = sum_of<C>(n, [&](int64_t i) { return g[i] * yr[i]; });
        for (int64_t i = 0; i < n; ++i) o[i] = store<T>(yr[i] * (g[i] - s));
      }
    }
  });
}

// loss = lse - (1 - eps) x[t] - eps / n * sum(x), since the smoothed target q sums to 1;
// d loss / d x = softmax(x) - q, times grad_scale (1 / count for a mean), written in the same pass
// when dlogits is given: backward then has nothing left to do for loss.backward().
template <class T> void cross_entropy_t(T* loss, T* dlogits, const T* x, const int64_t* target,
                                        int64_t rows, int64_t n, int64_t ignore, double smoothing, double grad_scale) {
  using C = compute_t<T>;
  const C eps = C(smoothing), hit = C(1 - smoothing), spread = C(smoothing / n), gs = C(grad_scale);
  for_rows(rows, n, [&](int64_t r0, int64_t r1) {
    RowReader<T> read;
    std::vector<C> e(n);
    for (int64_t r = r0; r < r1; ++r) {
      int64_t t = target[r];
      T* d = dlogits ? dlogits + r * n : nullptr;
      if (t == ignore) {
        loss[r] = store<T>(C(0));
        if (d) for (int64_t i = 0; i < n; ++i) d[i] = store<T>(C(0));
        continue;
      }
      const C* xr = read(x + r * n, n);
      C m = max_of<C>(n, [&](int64_t i) { return xr[i]; });
      for (int64_t i = 0; i < n; ++i) e[i] = exp_c(xr[i] - m);
      C s = sum_of<C>(n, [&](int64_t i) { return e[i]; });
      C lse = m + log_c(s);
      C l = lse - hit * xr[t];
      if (eps != C(0)) l -= spread * sum_of<C>(n, [&](int64_t i) { return xr[i]; });
      loss[r] = store<T>(l);
      if (!d) continue;
      C inv = C(1) / s;
      for (int64_t i = 0; i < n; ++i) d[i] = store<T>((e[i] * inv - spread) * gs);
      d[t] = store<T>((e[t] * inv - spread - hit) * gs);
    }
  });
}

template <class T> void layer_norm_t(T* out, compute_t<T>* mean, compute_t<T>* rstd, const T* x, const void* weight,
                                     const void* bias, int64_t rows, int64_t n, double eps) {
  using C = compute_t<T>;
  std::vector<C> w = widen<T>(weight, n), b = widen<T>(bias, n);
  for_rows(rows, n, [&](int64_t r0, int64_t r1) {
    RowReader<T> read;
    for (int64_t r = r0; r < r1; ++r) {
      const C* xr = read(x + r * n, n);
      T* o = out + r * n;
      C mu = sum_of<C>(n, [&](int64_t i) { return xr[i]; }) / C(n);
      C var = sum_of<C>(n, [&](int64_t i) { return (xr[i] - mu) * (xr[i] - mu); }) / C(n);
      C rs = C(1) / std::sqrt(var + C(eps));
      mean[r] = mu;
      rstd[r] = rs;
      for (int64_t i = 0; i < n; ++i) {
        C y = (xr[i] - mu) * rs;
        if (!w.empty()) y *= w[i];
        if (!b.empty()) y += b[i];
        o[i] = store<T>(y);
      }
    }
  });
}

// Per-thread partial sums over rows for the parameter gradients, merged at the end in double.
struct ColumnSums {
  std::vector<std::vector<double>> parts;
  int64_t n;
  ColumnSums(bool wanted, int64_t n_) : parts(wanted ? num_threads() : 0), n(n_) {}
  double* mine() {
    if (parts.empty()) return nullptr;
    auto& p = parts[omp_in_parallel() ? omp_get_thread_num() : 0];
    if (p.empty()) p.assign(n, 0.0);
    return p.data();
  }
  template <class T> void write(void* dst) const {
    if (!dst) return;
    T* o = static_cast<T*>(dst);
    for (int64_t i = 0; i < n; ++i) {
      double s = 0;
      for (const auto& p : parts) s += p.empty() ? 0.0 : p[i];
      o[i] = store<T>(s);
    }
  }
};

// dx = rstd * (g - mean(g) - xhat * mean(g * xhat)) with g = gy * weight and xhat = (x - mean) * rstd.
template <class T> void layer_norm_backward_t(T* gx, void* gweight, void* gbias, const T* gy, const T* x,
                                              const compute_t<T>* mean, const compute_t<T>* rstd, const void* weight,
                                              int64_t rows, int64_t n) {
  using C = compute_t<T>;
  std::vector<C> w = widen<T>(weight, n);
  ColumnSums gw(gweight != nullptr, n), gb(gbias != nullptr, n);
  for_rows(rows, n, [&](int64_t r0, int64_t r1) {
    RowReader<T> read_x, read_g;
    std::vector<C> xhat(n), g(n);
    double *pw = gw.mine(), *pb = gb.mine();
    for (int64_t r = r0; r < r1; ++r) {
      const C* xr = read_x(x + r * n, n);
      const C* gr = read_g(gy + r * n, n);
      C mu = mean[r], rs = rstd[r];
      for (int64_t i = 0; i < n; ++i) {
        xhat[i] = (xr[i] - mu) * rs;
        g[i] = w.empty() ? gr[i] : gr[i] * w[i];
      }
      if (pw) for (int64_t i = 0; i < n; ++i) pw[i] += double(gr[i] * xhat[i]);
      if (pb) for (int64_t i = 0; i < n; ++i) pb[i] += double(gr[i]);
      C a = sum_of<C>(n, [&](int64_t i) { return g[i]; }) / C(n);
      C c = sum_of<C>(n, [&](int64_t i) { return g[i] * xhat[i]; }) / C(n);
      T* o = gx + r * n;
      for (int64_t i = 0; i < n; ++i) o[i] = store<T>(rs * (g[i] - a - xhat[i] * c));
    }
  });
  gw.write<T>(gweight);
  gb.write<T>(gbias);
}

template <class T> void rms_norm_t(T* out, compute_t<T>* rstd, const T* x, const void* weight, int64_t rows,
                                   int64_t n, double eps) {
  using C = compute_t<T>;
  std::vector<C> w = widen<T>(weight, n);
  for_rows(rows, n, [&](int64_t r0, int64_t r1) {
    RowReader<T> read;
    for (int64_t r = r0; r < r1; ++r) {
      const C* xr = read(x + r * n, n);
      C rs = C(1) / std::sqrt(sum_of<C>(n, [&](int64_t i) { return xr[i] * xr[i]; }) / C(n) + C(eps));
      rstd[r] = rs;
      T* o = out + r * n;
      for (int64_t i = 0; i < n; ++i) o[i] = store<T>(w.empty() ? xr[i] * rs : xr[i] * rs * w[i]);
    }
  });
}

// dx = rstd * g - x * rstd^3 * mean(g * x) with g = gy * weight.
template <class T> void rms_norm_backward_t(T* gx, void* gweight, const T* gy, const T* x, const compute_t<T>* rstd,
                                            const void* weight, int64_t rows, int64_t n) {
  using C = compute_t<T>;
  std::vector<C> w = widen<T>(weight, n);
  ColumnSums gw(gweight != nullptr, n);
  for_rows(rows, n, [&](int64_t r0, int64_t r1) {
    RowReader<T> read_x, read_g;
    std::vector<C> g(n);
    double* pw = gw.mine();
    for (int64_t r = r0; r < r1; ++r) {
      const C* xr = read_x(x + r * n, n);
      const C* gr = read_g(gy + r * n, n);
      C rs = rstd[r];
      for (int64_t i = 0; i < n; ++i) g[i] = w.empty() ? gr[i] : gr[i] * w[i];
      if (pw) for (int64_t i = 0; i < n; ++i) pw[i] += double(gr[i] * xr[i] * rs);
      C c = sum_of<C>(n, [&](int64_t i) { return g[i] * xr[i]; }) / C(n) * rs * rs * rs;
      T* o = gx + r * n;
      for (int64_t i = 0; i < n; ++i) o[i] = store<T>(rs * g[i] - xr[i] * c);
    }
  });
  gw.write<T>(gweight);
}

// GELU(x) = x * Phi(x) and its derivative, in GPT-2's tanh form or the exact erf form. Tanh is a
// template argument so that each loop is straight-line code the compiler vectorises.
constexpr double kSqrt2OverPi = 0.7978845608028654, kGeluA = 0.044715;
template <class C, bool Tanh> TT_INLINE C gelu_cdf(C x) {
  if constexpr (Tanh) return C(0.5) * (C(1) + tanh_c(C(kSqrt2OverPi) * (x + C(kGeluA) * x * x * x)));
  else return C(0.5) * (C(1) + std::erf(x * C(0.7071067811865476)));
}
template <class C, bool Tanh> TT_INLINE C gelu_grad(C x) {
  if constexpr (Tanh) {
    C th = tanh_c(C(kSqrt2OverPi) * (x + C(kGeluA) * x * x * x));
    return C(0.5) * (C(1) + th) + C(0.5) * x * (C(1) - th * th) * C(kSqrt2OverPi) * (C(1) + C(3 * kGeluA) * x * x);
  } else {
    return gelu_cdf<C, false>(x) + x * exp_c(C(-0.5) * x * x) * C(0.3989422804014327);   // 1 / sqrt(2 pi)
  }
}

template <class T, bool Tanh> void gelu_t(T* out, const T* x, int64_t n) {
  using C = compute_t<T>;
  parallel_for(n, kGrain, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) {
      C xi = load(x[i]);
      out[i] = store<T>(xi * gelu_cdf<C, Tanh>(xi));
    }
  });
}

template <class T, bool Tanh> void gelu_backward_t(T* gx, const T* gy, const T* x, int64_t n) {
  using C = compute_t<T>;
  parallel_for(n, kGrain, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) gx[i] = store<T>(load(gy[i]) * gelu_grad<C, Tanh>(load(x[i])));
  });
}

// PyTorch's AdamW: p *= 1 - lr * wd; m += (1 - b1) (g - m); v = b2 v + (1 - b2) g^2;
// p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps).
template <class T> void adamw_t(T* p, const T* g, T* m, T* v, int64_t n, double lr, double beta1, double beta2,
                                double eps, double wd, int64_t step) {
  using C = compute_t<T>;
  const C decay = C(1 - lr * wd), b1 = C(1 - beta1), b2 = C(beta2), nb2 = C(1 - beta2);
  const C step_size = C(lr / (1 - std::pow(beta1, double(step))));
  const C inv_bc2_sqrt = C(1 / std::sqrt(1 - std::pow(beta2, double(step)))), e = C(eps);
  parallel_for(n, kGrain, [&](int64_t b, int64_t end) {
    for (int64_t i = b; i < end; ++i) {
      C gi = load(g[i]), mi = load(m[i]), vi = load(v[i]);
      mi += b1 * (gi - mi);
      vi = b2 * vi + nb2 * gi * gi;
      C pi = load(p[i]) * decay - step_size * mi / (std::sqrt(vi) * inv_bc2_sqrt + e);
      m[i] = store<T>(mi);
      v[i] = store<T>(vi);
      p[i] = store<T>(pi);
    }
  });
}

template <class T> T* as(void* p) { return static_cast<T*>(p); }
template <class T> const T* as(const void* p) { return static_cast<const T*>(p); }

}  // namespace

void softmax(void* out, int dt, const void* x, int64_t rows, int64_t n, bool log) {
  visit_float_dtype(dt, [&](auto tag) {
    using T = typename decltype(tag)::type;
    softmax_t<T>(as<T>(out), as<T>(x), rows, n, log);
  });
}

void softmax_backward(void* gx, int dt, const void* y, const void* gy, int64_t rows, int64_t n, bool log) {
  visit_float_dtype(dt, [&](auto tag) {
    using T = typename decltype(tag)::type;
    softmax_backward_t<T>(as<T>(gx), as<T>(y), as<T>(gy), rows, n, log);
  });
}

void cross_entropy(void* loss, void* dlogits, int dt, const void* logits, const int64_t* target,
                   int64_t rows, int64_t n, int64_t ignore_index, double label_smoothing, double grad_scale) {
  visit_float_dtype(dt, [&](auto tag) {
    using T = typename decltype(tag)::type;
    cross_entropy_t<T>(as<T>(loss), as<T>(dlogits), as<T>(logits), target, rows, n, ignore_index, label_smoothing,
                       grad_scale);
  });
}

void layer_norm(void* out, void* mean, void* rstd, int dt, const void* x, const void* weight, const void* bias,
                int64_t rows, int64_t n, double eps) {
  visit_float_dtype(dt, [&](auto tag) {
    using T = typename decltype(tag)::type;
    using C = compute_t<T>;
    layer_norm_t<T>(as<T>(out), as<C>(mean), as<C>(rstd), as<T>(x), weight, bias, rows, n, eps);
  });
}

void layer_norm_backward(void* gx, void* gweight, void* gbias, int dt, const void* gy, const void* x,
                         const void* mean, const void* rstd, const void* weight, int64_t rows, int64_t n) {
  visit_float_dtype(dt, [&](auto tag) {
    using T = typename decltype(tag)::type;
    using C = compute_t<T>;
    layer_norm_backward_t<T>(as<T>(gx), gweight, gbias, as<T>(gy), as<T>(x), as<C>(mean), as<C>(rstd), weight,
                             rows, n);
  });
}

void rms_norm(void* out, void* rstd, int dt, const void* x, const void* weight, int64_t rows, int64_t n, double eps) {
  visit_float_dtype(dt, [&](auto tag) {
    using T = typename decltype(tag)::type;
    rms_norm_t<T>(as<T>(out), as<compute_t<T>>(rstd), as<T>(x), weight, rows, n, eps);
  });
}

void rms_norm_backward(void* gx, void* gweight, int dt, const void* gy, const void* x, const void* rstd,
                       const void* weight, int64_t rows, int64_t n) {
  visit_float_dtype(dt, [&](auto tag) {
    using T = typename decltype(tag)::type;
    rms_norm_backward_t<T>(as<T>(gx), gweight, as<T>(gy), as<T>(x), as<compute_t<T>>(rstd), weight, rows, n);
  });
}

void gelu(void* out, int dt, const void* x, int64_t n, bool tanh) {
  visit_float_dtype(dt, [&](auto tag) {
    using T = typename decltype(tag)::type;
    if (tanh) gelu_t<T, true>(as<T>(out), as<T>(x), n);
    else gelu_t<T, false>(as<T>(out), as<T>(x), n);
  });
}

void gelu_backward(void* gx, int dt, const void* gy, const void* x, int64_t n, bool tanh) {
  visit_float_dtype(dt, [&](auto tag) {
    using T = typename decltype(tag)::type;
    if (tanh) gelu_backward_t<T, true>(as<T>(gx), as<T>(gy), as<T>(x), n);
    else gelu_backward_t<T, false>(as<T>(gx), as<T>(gy), as<T>(x), n);
  });
}

void adamw(const std::vector<void*>& params, const std::vector<const void*>& grads,
           const std::vector<void*>& exp_avgs, const std::vector<void*>& exp_avg_sqs,
           const std::vector<int64_t>& sizes, int dt, double lr, double beta1, double beta2, double eps,
           double weight_decay, int64_t step) {
  visit_float_dtype(dt, [&](auto tag) {
    using T = typename decltype(tag)::type;
    for (size_t i = 0; i < params.size(); ++i)
      adamw_t<T>(as<T>(params[i]), as<T>(grads[i]), as<T>(exp_avgs[i]), as<T>(exp_avg_sqs[i]), sizes[i],
                 lr, beta1, beta2, eps, weight_decay, step);
  });
}

}  // namespace tt
