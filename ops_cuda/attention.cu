// attention.cu: fused scaled dot-product attention, forward and backward, in the style of
// FlashAttention: the (t, s) matrix of scores is never stored whole. Shapes: q, out, go, gq
// (bh, t, d); k, v, gk, gv (bh, s, d); lse (bh, t), flat and contiguous. causal keeps key j <= query i.
//   forward: a block owns br queries; it walks the keys in tiles of bc, staged in shared memory
//     with the scores of the tile, and keeps per query a running max m, a running sum l of
//     exp(score - m) and the unnormalised output (an "online softmax"). out = o / l, lse = m + log l.
//   backward (as FlashAttention-2): D_i = sum(go_i * out_i) first; then one kernel owns a tile of
//     keys and walks the queries to build gk and gv, and another owns a tile of queries and walks
//     the keys to build gq; each recomputes p = exp(score - lse) from the saved lse. No atomics.
// Tiles live in dynamic shared memory of type S (float, or double for double); backend/cuda.py
// picks br = bc so that they fit in 48 KB. Rows of k are padded to d + 1 values, so that threads
// reading one column of k from consecutive rows hit different banks.
// Left out: dropout, masks other than causal, tensor cores, more than one query tile per block.
#include "common.cuh"

// The dot product of a[0, d) and b[0, d) (both in shared memory).
template <class S> __device__ __forceinline__ S dot(const S* a, const S* b, int d) {
  S acc = S(0);
  for (int x = 0; x < d; ++x) acc += a[x] * b[x];
  return acc;
}

// Stage rows [j0, j0 + cols) of src (rows of d values) into dst with row stride ld; rows up to
// `tile` beyond cols are left alone (the kernels never read them).
template <class T, class S> __device__ void stage(S* dst, int ld, const T* src, i64 j0, int cols, int d) {
  for (int e = threadIdx.x; e < cols * d; e += blockDim.x) dst[(e / d) * ld + e % d] = S(load(src[j0 * d + e]));
}

// out: (bh, t, d); lse: (bh, t) in S; q: (bh, t, d); k, v: (bh, s, d). Grid (ceil(t / br), bh).
// Shared: q (br, d) pre-scaled, o (br, d), k (bc, d + 1), v (bc, d), p (br, bc), m, l, alpha (br).
template <class T>
__global__ void attention_kernel(T* out, typename Traits<T>::S* lse, const T* q, const T* k, const T* v, i64 bh,
                                 i64 t, i64 s, int d, double scale, int causal, int br, int bc) {
  typedef typename Traits<T>::S S;
  S *qs = shared_array<S>(), *os = qs + br * d, *ks = os + br * d, *vs = ks + bc * (d + 1);
  S *ps = vs + bc * d, *ms = ps + br * bc, *ls = ms + br, *al = ls + br;
  const S ninf = neg_inf<S>();
  i64 i0 = i64(blockIdx.x) * br;
  int rows = int(min(i64(br), t - i0));
  for (i64 b = blockIdx.y; b < bh; b += gridDim.y) {
    for (int e = threadIdx.x; e < br * d; e += blockDim.x) {
      qs[e] = e / d < rows ? S(load(q[(b * t + i0) * d + e])) * S(scale) : S(0);
      os[e] = S(0);
    }
    for (int r = threadIdx.x; r < br; r += blockDim.x) ms[r] = ninf, ls[r] = S(0);
    i64 kend = causal ? min(s, i0 + rows) : s;   // keys past the last query are all masked
    for (i64 j0 = 0; j0 < kend; j0 += bc) {
      int cols = int(min(i64(bc), kend - j0));
      __syncthreads();   // the previous tile is no longer read
      stage(ks, d + 1, k + b * s * d, j0, cols, d);
      stage(vs, d, v + b * s * d, j0, cols, d);
      __syncthreads();
      for (int e = threadIdx.x; e < br * bc; e += blockDim.x) {   // scores of the tile
        int r = e / bc, c = e % bc;
        bool keep = r < rows && c < cols && (!causal || j0 + c <= i0 + r);
        ps[e] = keep ? dot(qs + r * d, ks + c * (d + 1), d) : ninf;
      }
      __syncthreads();
      for (int r = threadIdx.x; r < br; r += blockDim.x) {   // online softmax, one thread per query
        S mx = ms[r], sum = S(0);
        for (int c = 0; c < cols; ++c) mx = ps[r * bc + c] > mx ? ps[r * bc + c] : mx;
        for (int c = 0; c < cols; ++c) {
          S p = mx == ninf ? S(0) : s_exp(ps[r * bc + c] - mx);
          ps[r * bc + c] = p;
          sum += p;
        }
        al[r] = mx == ninf ? S(1) : s_exp(ms[r] - mx);   // rescales what earlier tiles added
        ls[r] = ls[r] * al[r] + sum;
        ms[r] = mx;
      }
      __syncthreads();
      for (int e = threadIdx.x; e < br * d; e += blockDim.x) {   // o = o * alpha + p v
        int r = e / d, x = e % d;
        S acc = os[e] * al[r];
        for (int c = 0; c < cols; ++c) acc += ps[r * bc + c] * vs[c * d + x];
        os[e] = acc;
      }
    }
    __syncthreads();
    for (int e = threadIdx.x; e < rows * d; e += blockDim.x) {
      S l = ls[e / d];
      out[(b * t + i0) * d + e] = store<T>(l > S(0) ? os[e] / l : S(0));
    }
    for (int r = threadIdx.x; r < rows; r += blockDim.x) lse[b * t + i0 + r] = ls[r] > S(0) ? ms[r] + s_log(ls[r]) : ninf;
    __syncthreads();   // shared memory is refilled for the next b
  }
}

// dsum: (bh * t,) in S = sum over d of go * out, per query row; go, out: (bh * t, d).
template <class T>
__global__ void attention_backward_prep_kernel(typename Traits<T>::S* dsum, const T* go, const T* out, i64 rows,
                                               int d) {
  typedef typename Traits<T>::S S;
  TT_GRID_LOOP(r, rows) {
    S acc = S(0);
    for (int x = 0; x < d; ++x) acc += S(load(go[r * d + x])) * S(load(out[r * d + x]));
    dsum[r] = acc;
  }
}

// For query row r (of the tile at i0) and key c (of the tile at j0), with q, go, k, v staged:
// p = exp(q.k scale - lse) and ds = p (go.v - D); zero where masked.
template <class S> __device__ __forceinline__ void prob_and_dscore(const S* qs, const S* dos, const S* ks,
                                                                   const S* vs, const S* ls, const S* dd, int r,
                                                                   int c, int d, S scale, S& p, S& dsc) {
  p = s_exp(dot(qs + r * d, ks + c * (d + 1), d) * scale - ls[r]);
  dsc = p * (dot(dos + r * d, vs + c * (d + 1), d) - dd[r]);
}

// gk, gv: (bh, s, d); go, q: (bh, t, d); k, v: (bh, s, d); lse, dsum: (bh, t) in S.
// Grid (ceil(s / bc), bh). Shared: k, v (bc, d + 1), dk, dv (bc, d), q, go (br, d), p, ds (br, bc), lse, D (br).
template <class T>
__global__ void attention_backward_kv_kernel(T* gk, T* gv, const T* go, const T* q, const T* k, const T* v,
                                             const typename Traits<T>::S* lse, const typename Traits<T>::S* dsum,
                                             i64 bh, i64 t, i64 s, int d, double scale, int causal, int br, int bc) {
  typedef typename Traits<T>::S S;
  S *ks = shared_array<S>(), *vs = ks + bc * (d + 1), *dk = vs + bc * (d + 1), *dv = dk + bc * d;
  S *qs = dv + bc * d, *dos = qs + br * d, *ps = dos + br * d, *ds = ps + br * bc, *ls = ds + br * bc, *dd = ls + br;
  i64 j0 = i64(blockIdx.x) * bc;
  int cols = int(min(i64(bc), s - j0));
  for (i64 b = blockIdx.y; b < bh; b += gridDim.y) {
    stage(ks, d + 1, k + b * s * d, j0, cols, d);
    stage(vs, d + 1, v + b * s * d, j0, cols, d);
    for (int e = threadIdx.x; e < bc * d; e += blockDim.x) dk[e] = dv[e] = S(0);
    for (i64 i0 = causal ? j0 : 0; i0 < t; i0 += br) {   // under causal, queries before j0 see none of these keys
      int rows = int(min(i64(br), t - i0));
      __syncthreads();
      stage(qs, d, q + b * t * d, i0, rows, d);
      stage(dos, d, go + b * t * d, i0, rows, d);
      for (int r = threadIdx.x; r < rows; r += blockDim.x) ls[r] = lse[b * t + i0 + r], dd[r] = dsum[b * t + i0 + r];
      __syncthreads();
      for (int e = threadIdx.x; e < br * bc; e += blockDim.x) {
        int r = e / bc, c = e % bc;
        S p = S(0), dsc = S(0);
        if (r < rows && c < cols && (!causal || j0 + c <= i0 + r))
          prob_and_dscore(qs, dos, ks, vs, ls, dd, r, c, d, S(scale), p, dsc);
        ps[e] = p;
        ds[e] = dsc;
      }
      __syncthreads();
      for (int e = threadIdx.x; e < cols * d; e += blockDim.x) {   // dv += p^T go, dk += ds^T q
        int c = e / d, x = e % d;
        S av = S(0), ak = S(0);
        for (int r = 0; r < rows; ++r) {
          av += ps[r * bc + c] * dos[r * d + x];
          ak += ds[r * bc + c] * qs[r * d + x];
        }
        dv[e] += av;
        dk[e] += ak;
      }
    }
    __syncthreads();
    for (int e = threadIdx.x; e < cols * d; e += blockDim.x) {
      gk[(b * s + j0) * d + e] = store<T>(dk[e] * S(scale));
      gv[(b * s + j0) * d + e] = store<T>(dv[e]);
    }
    __syncthreads();
  }
}

// gq: (bh, t, d); the rest as attention_backward_kv_kernel. Grid (ceil(t / br), bh).
// Shared: q, go, dq (br, d), k, v (bc, d + 1), ds (br, bc), lse, D (br).
template <class T>
__global__ void attention_backward_q_kernel(T* gq, const T* go, const T* q, const T* k, const T* v,
                                            const typename Traits<T>::S* lse, const typename Traits<T>::S* dsum,
                                            i64 bh, i64 t, i64 s, int d, double scale, int causal, int br, int bc) {
  typedef typename Traits<T>::S S;
  S *qs = shared_array<S>(), *dos = qs + br * d, *dq = dos + br * d, *ks = dq + br * d, *vs = ks + bc * (d + 1);
  S *ds = vs + bc * (d + 1), *ls = ds + br * bc, *dd = ls + br;
  i64 i0 = i64(blockIdx.x) * br;
  int rows = int(min(i64(br), t - i0));
  for (i64 b = blockIdx.y; b < bh; b += gridDim.y) {
    stage(qs, d, q + b * t * d, i0, rows, d);
    stage(dos, d, go + b * t * d, i0, rows, d);
    for (int e = threadIdx.x; e < br * d; e += blockDim.x) dq[e] = S(0);
    for (int r = threadIdx.x; r < rows; r += blockDim.x) ls[r] = lse[b * t + i0 + r], dd[r] = dsum[b * t + i0 + r];
    i64 kend = causal ? min(s, i0 + rows) : s;
    for (i64 j0 = 0; j0 < kend; j0 += bc) {
      int cols = int(min(i64(bc), kend - j0));
      __syncthreads();
      stage(ks, d + 1, k + b * s * d, j0, cols, d);
      stage(vs, d + 1, v + b * s * d, j0, cols, d);
      __syncthreads();
      for (int e = threadIdx.x; e < br * bc; e += blockDim.x) {
        int r = e / bc, c = e % bc;
        S p = S(0), dsc = S(0);
        if (r < rows && c < cols && (!causal || j0 + c <= i0 + r))
          prob_and_dscore(qs, dos, ks, vs, ls, dd, r, c, d, S(scale), p, dsc);
        ds[e] = dsc;
      }
      __syncthreads();
      for (int e = threadIdx.x; e < rows * d; e += blockDim.x) {   // dq += ds k
        int r = e / d, x = e % d;
        S acc = S(0);
        for (int c = 0; c < cols; ++c) acc += ds[r * bc + c] * ks[c * (d + 1) + x];
        dq[e] += acc;
      }
    }
    __syncthreads();
    for (int e = threadIdx.x; e < rows * d; e += blockDim.x) gq[(b * t + i0) * d + e] = store<T>(dq[e] * S(scale));
    __syncthreads();
  }
}
