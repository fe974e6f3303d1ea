// activation.cu: fused GELU, forward and backward, exact (with erf) or the tanh approximation:
//   exact: gelu(x) = x cdf(x), cdf(x) = (1 + erf(x / sqrt 2)) / 2, gelu'(x) = cdf(x) + x exp(-x^2 / 2) / sqrt(2 pi)
//   tanh:  cdf(x) ~ (1 + tanh(u)) / 2 with u = sqrt(2 / pi) (x + 0.044715 x^3)
// Flat contiguous arrays of n values, computed in S (float, or double for double).
// Left out: other activations (they are composites of the primitives).
#include "common.cuh"

// y = gelu(x) and dy = gelu'(x), in S.
template <class S> __device__ __forceinline__ void gelu_parts(S x, int tanh_, S& y, S& dy) {
  const S c = S(0.7978845608028654), k = S(0.044715);   // sqrt(2 / pi)
  if (tanh_) {
    S th = s_tanh(c * (x + k * x * x * x)), cdf = S(0.5) * (S(1) + th);
    y = x * cdf;
    dy = cdf + S(0.5) * x * (S(1) - th * th) * c * (S(1) + S(3) * k * x * x);
  } else {
    S cdf = S(0.5) * (S(1) + s_erf(x * S(0.7071067811865476)));   // 1 / sqrt 2
    y = x * cdf;
    dy = cdf + x * s_exp(S(-0.5) * x * x) * S(0.3989422804014327);   // 1 / sqrt(2 pi)
  }
}

// out, x: (n,); out = gelu(x).
template <class T>
__global__ void gelu_kernel(T* out, const T* x, i64 n, int tanh_) {
  typedef typename Traits<T>::S S;
  TT_GRID_LOOP(i, n) {
    S y, dy;
    gelu_parts(S(load(x[i])), tanh_, y, dy);
    out[i] = store<T>(y);
  }
}

// gx, gy, x: (n,); gx = gy * gelu'(x).
template <class T>
__global__ void gelu_backward_kernel(T* gx, const T* gy, const T* x, i64 n, int tanh_) {
  typedef typename Traits<T>::S S;
  TT_GRID_LOOP(i, n) {
    S y, dy;
    gelu_parts(S(load(x[i])), tanh_, y, dy);
    gx[i] = store<T>(S(load(gy[i])) * dy);
  }
}
