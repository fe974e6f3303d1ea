// norm.cu: fused layer norm and RMS norm over the last dim, forward and backward. One block per
// row for the row-wise parts (statistics, normalised output, the input gradient); the weight and
// bias gradients sum over rows, so there one thread owns one column and walks down the rows
// (neighbouring threads read neighbouring columns). Arrays are flat and contiguous: x (rows, n),
// weight and bias (n,), mean and rstd (rows,) in S (double for double, float otherwise).
// weight/bias may be absent (has_w, has_b = 0; the pointer is then unused).
// Left out: Welford's one-pass variance (two passes over a row in cache are as fast and exact),
// splitting the column sums over several blocks for very many rows.
#include "common.cuh"

// out: (rows, n) = (x - mean) * rstd * weight + bias; mean, rstd: (rows,) written; x: (rows, n).
template <class T>
__global__ void layer_norm_kernel(T* out, typename Traits<T>::S* mean, typename Traits<T>::S* rstd, const T* x,
                                  const T* w, const T* b, i64 rows, i64 n, double eps, int has_w, int has_b) {
  typedef typename Traits<T>::S S;
  for (i64 r = blockIdx.x; r < rows; r += gridDim.x) {
    const T* xr = x + r * n;
    S sum = S(0), sq = S(0);
    for (i64 j = threadIdx.x; j < n; j += blockDim.x) sum += S(load(xr[j]));
    S mu = block_sum(sum) / S(n);
    for (i64 j = threadIdx.x; j < n; j += blockDim.x) {
      S c = S(load(xr[j])) - mu;
      sq += c * c;
    }
    S rs = S(1) / s_sqrt(block_sum(sq) / S(n) + S(eps));
    for (i64 j = threadIdx.x; j < n; j += blockDim.x) {
      S y = (S(load(xr[j])) - mu) * rs;
      if (has_w) y *= S(load(w[j]));
      if (has_b) y += S(load(b[j]));
      out[r * n + j] = store<T>(y);
    }
    if (threadIdx.x == 0) {
      mean[r] = mu;
      rstd[r] = rs;
    }
  }
}

// gx: (rows, n) = rstd (g - mean(g) - xhat mean(g xhat)) with g = gy * weight, xhat = (x - mean) rstd;
// gy, x: (rows, n); mean, rstd: (rows,) from the forward.
template <class T>
__global__ void layer_norm_backward_kernel(T* gx, const T* gy, const T* x, const typename Traits<T>::S* mean,
                                           const typename Traits<T>::S* rstd, const T* w, i64 rows, i64 n,
                                           int has_w) {
  typedef typename Traits<T>::S S;
  for (i64 r = blockIdx.x; r < rows; r += gridDim.x) {
    const T* gr = gy + r * n;
    const T* xr = x + r * n;
    S mu = mean[r], rs = rstd[r], sg = S(0), sgx = S(0);
    for (i64 j = threadIdx.x; j < n; j += blockDim.x) {
      S g = S(load(gr[j])) * (has_w ? S(load(w[j])) : S(1));
      sg += g;
      sgx += g * (S(load(xr[j])) - mu) * rs;
    }
    sg = block_sum(sg) / S(n);
    sgx = block_sum(sgx) / S(n);
    for (i64 j = threadIdx.x; j < n; j += blockDim.x) {
      S g = S(load(gr[j])) * (has_w ? S(load(w[j])) : S(1));
      S xhat = (S(load(xr[j])) - mu) * rs;
      gx[r * n + j] = store<T>(rs * (g - sg - xhat * sgx));
    }
  }
}

// out: (rows, n) = x * rstd * weight; rstd: (rows,) = 1 / sqrt(mean(x^2) + eps), written.
template <class T>
__global__ void rms_norm_kernel(T* out, typename Traits<T>::S* rstd, const T* x, const T* w, i64 rows, i64 n,
                                double eps, int has_w) {
  typedef typename Traits<T>::S S;
  for (i64 r = blockIdx.x; r < rows; r += gridDim.x) {
    const T* xr = x + r * n;
    S sq = S(0);
    for (i64 j = threadIdx.x; j < n; j += blockDim.x) {
      S v = S(load(xr[j]));
      sq += v * v;
    }
    S rs = S(1) / s_sqrt(block_sum(sq) / S(n) + S(eps));
    for (i64 j = threadIdx.x; j < n; j += blockDim.x)
      out[r * n + j] = store<T>(S(load(xr[j])) * rs * (has_w ? S(load(w[j])) : S(1)));
    if (threadIdx.x == 0) rstd[r] = rs;
  }
}

// gx: (rows, n) = rstd g - x rstd^3 mean(g x) with g = gy * weight; gy, x: (rows, n); rstd: (rows,).
template <class T>
__global__ void rms_norm_backward_kernel(T* gx, const T* gy, const T* x, const typename Traits<T>::S* rstd,
                                         const T* w, i64 rows, i64 n, int has_w) {
  typedef typename Traits<T>::S S;
  for (i64 r = blockIdx.x; r < rows; r += gridDim.x) {
    const T* gr = gy + r * n;
    const T* xr = x + r * n;
    S rs = rstd[r], sgx = S(0);
    for (i64 j = threadIdx.x; j < n; j += blockDim.x)
      sgx += S(load(gr[j])) * (has_w ? S(load(w[j])) : S(1)) * S(load(xr[j]));
    sgx = block_sum(sgx) / S(n);
    for (i64 j = threadIdx.x; j < n; j += blockDim.x) {
      S g = S(load(gr[j])) * (has_w ? S(load(w[j])) : S(1));
      gx[r * n + j] = store<T>(rs * g - S(load(xr[j])) * rs * rs * rs * sgx);
    }
  }
}

// The parameter gradients of both norms, one thread per column j:
// gw: (n,) = sum over rows of gy * xhat, gb: (n,) = sum over rows of gy (each when has_gw / has_gb),
// with xhat = (x - mean) * rstd for layer norm (has_mean) and x * rstd for RMS norm.
template <class T>
__global__ void norm_param_grad_kernel(T* gw, T* gb, const T* gy, const T* x, const typename Traits<T>::S* mean,
                                       const typename Traits<T>::S* rstd, i64 rows, i64 n, int has_mean,
                                       int has_gw, int has_gb) {
  typedef typename Traits<T>::S S;
  TT_GRID_LOOP(j, n) {
    S aw = S(0), ab = S(0);
    for (i64 r = 0; r < rows; ++r) {
      S g = S(load(gy[r * n + j]));
      aw += g * (S(load(x[r * n + j])) - (has_mean ? mean[r] : S(0))) * rstd[r];
      ab += g;
    }
    if (has_gw) gw[j] = store<T>(aw);
    if (has_gb) gb[j] = store<T>(ab);
  }
}
