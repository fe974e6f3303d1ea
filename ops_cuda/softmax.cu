// softmax.cu: fused softmax / log-softmax over the last dim (forward and backward) and
// cross-entropy from logits (the loss per row and d loss / d logits in one pass). One block per
// row, its threads striding along the row; a row is read three times (max, sum of exp, write),
// from cache for rows of ordinary length. Arrays are flat and contiguous: rows x n values.
// Statistics run in S: double for double, float otherwise (16-bit floats compute in float).
// A row without a finite max (all -inf) follows backend/ref.py: the max counts as 0, so the
// results are the same -inf and nan as there. Left out: online (single-pass) softmax, rows longer
// than the cache (they work, only slower).
#include "common.cuh"

// The max over x[0, n) for the whole block, or 0 when it is not finite.
template <class T, class S> __device__ S row_max(const T* x, i64 n) {
  S m = neg_inf<S>();
  for (i64 j = threadIdx.x; j < n; j += blockDim.x) {
    S v = S(load(x[j]));
    m = v > m ? v : m;
  }
  m = block_max(m);
  return m - m == S(0) ? m : S(0);   // inf - inf and nan - nan are nan
}

// log(sum(exp(x))) over x[0, n) for the whole block.
template <class T, class S> __device__ S row_logsumexp(const T* x, i64 n) {
  S m = row_max<T, S>(x, n), sum = S(0);
  for (i64 j = threadIdx.x; j < n; j += blockDim.x) sum += s_exp(S(load(x[j])) - m);
  return m + s_log(block_sum(sum));
}

// out, x: (rows, n); out = softmax(x), or log_softmax(x) when log_.
template <class T>
__global__ void softmax_kernel(T* out, const T* x, i64 rows, i64 n, int log_) {
  typedef typename Traits<T>::S S;
  for (i64 r = blockIdx.x; r < rows; r += gridDim.x) {
    const T* xr = x + r * n;
    S lse = row_logsumexp<T, S>(xr, n);
    for (i64 j = threadIdx.x; j < n; j += blockDim.x) {
      S y = S(load(xr[j])) - lse;
      out[r * n + j] = store<T>(log_ ? y : s_exp(y));
    }
  }
}

// gx, y, gy: (rows, n); y is the forward's output. softmax: gx = y (gy - sum(gy y));
// log_softmax: gx = gy - exp(y) sum(gy).
template <class T>
__global__ void softmax_backward_kernel(T* gx, const T* y, const T* gy, i64 rows, i64 n, int log_) {
  typedef typename Traits<T>::S S;
  for (i64 r = blockIdx.x; r < rows; r += gridDim.x) {
    const T* yr = y + r * n;
    const T* gr = gy + r * n;
    S dot = S(0);
    for (i64 j = threadIdx.x; j < n; j += blockDim.x) dot += log_ ? S(load(gr[j])) : S(load(gr[j])) * S(load(yr[j]));
    dot = block_sum(dot);
    for (i64 j = threadIdx.x; j < n; j += blockDim.x) {
      S yj = S(load(yr[j])), gj = S(load(gr[j]));
      gx[r * n + j] = store<T>(log_ ? gj - s_exp(yj) * dot : yj * (gj - dot));
    }
  }
}

// loss: (rows,) in S, 0 where target == ignore_index; dlogits: (rows, n) when has_d, else unused;
// logits: (rows, n); target: int64 (rows,). With smoothing e the target distribution is
// q = (1 - e) onehot(target) + e / n, loss = -sum(q log_softmax(x)) and dlogits = scale (softmax(x) - q)
// (the caller folds the mean's 1 / count into scale).
template <class T>
__global__ void cross_entropy_kernel(typename Traits<T>::S* loss, T* dlogits, const T* logits, const i64* target,
                                     i64 rows, i64 n, i64 ignore_index, double smoothing, double scale, int has_d) {
  typedef typename Traits<T>::S S;
  S e = S(smoothing), uniform = S(smoothing / double(n));
  for (i64 r = blockIdx.x; r < rows; r += gridDim.x) {
    const T* xr = logits + r * n;
    i64 t = target[r];
    if (t == ignore_index) {   // the same for the whole block
      if (threadIdx.x == 0) loss[r] = S(0);
      for (i64 j = threadIdx.x; has_d && j < n; j += blockDim.x) dlogits[r * n + j] = store<T>(S(0));
      continue;
    }
    S lse = row_logsumexp<T, S>(xr, n);
    S sum_x = S(0);
    if (smoothing > 0) {
      for (i64 j = threadIdx.x; j < n; j += blockDim.x) sum_x += S(load(xr[j]));
      sum_x = block_sum(sum_x);
    }
    if (threadIdx.x == 0) {
      S l = -(S(1) - e) * (S(load(xr[t])) - lse);
      loss[r] = smoothing > 0 ? l - uniform * (sum_x - S(n) * lse) : l;
    }
    for (i64 j = threadIdx.x; has_d && j < n; j += blockDim.x) {
      S q = (j == t ? S(1) - e : S(0)) + uniform;
      dlogits[r * n + j] = store<T>(S(scale) * (s_exp(S(load(xr[j])) - lse) - q));
    }
  }
}
