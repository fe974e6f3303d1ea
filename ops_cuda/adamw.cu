// adamw.cu: one AdamW step (decoupled weight decay) over many tensors in a single launch. The
// tensors' addresses and sizes go to the GPU as small tables; each thread finds its tensor by
// binary search over the running sizes, so a model of 100 parameters costs one launch, not 100.
// Per element, as backend/ref.py and PyTorch:
//   p = p (1 - lr wd);  m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2
//   p = p - lr / bc1 * m / (sqrt(v / bc2) + eps),  bc1 = 1 - b1^step, bc2 = 1 - b2^step
// Computed in S (float, or double for double parameters). Left out: amsgrad, maximize (the
// optimizer's Python path handles them), mixed dtypes within one call.
#include "common.cuh"

// ptrs: (4, count) the addresses of the params, grads, exp_avgs and exp_avg_sqs (all of type T);
// starts: (count + 1,) running sizes, starts[count] = total elements; all updated in place.
template <class T>
__global__ void adamw_kernel(const unsigned long long* ptrs, const i64* starts, int count, i64 total, double lr,
                             double beta1, double beta2, double eps, double weight_decay, double bc1, double bc2) {
  typedef typename Traits<T>::S S;
  TT_GRID_LOOP(i, total) {
    int lo = 0, hi = count - 1;   // the last tensor starting at or before i (empty ones start where the next does)
    while (lo < hi) {
      int mid = (lo + hi + 1) / 2;
      if (starts[mid] <= i) lo = mid;
      else hi = mid - 1;
    }
    i64 j = i - starts[lo];
    T* p = reinterpret_cast<T*>(ptrs[lo]);
    const T* g = reinterpret_cast<const T*>(ptrs[count + lo]);
    T* m = reinterpret_cast<T*>(ptrs[2 * count + lo]);
    T* v = reinterpret_cast<T*>(ptrs[3 * count + lo]);
    S gj = S(load(g[j]));
    S mj = S(beta1) * S(load(m[j])) + S(1 - beta1) * gj;
    S vj = S(beta2) * S(load(v[j])) + S(1 - beta2) * gj * gj;
    S pj = S(load(p[j])) * S(1 - lr * weight_decay);
    p[j] = store<T>(pj - S(lr / bc1) * mj / (s_sqrt(vj / S(bc2)) + S(eps)));
    m[j] = store<T>(mj);
    v[j] = store<T>(vj);
  }
}
