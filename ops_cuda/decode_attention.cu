// decode_attention.cu: attention from the newest t positions to a kv-cache (chapter 12), the CUDA twin
// of ops_c/decode_attention.cpp. Query i of row b sits at key index s - t + i and sees the keys
// max(start[b], 0) <= j <= s - t + i of key/value head h / (nh / nkv) (grouped-query attention without
// repeating the cache); a query that sees no key gets zeros.
// One block per (query head, query) pair and row: its threads score a tile of keys at a time (one key
// per thread, the tile's scores in shared memory), and an online softmax (a running max m and sum l of
// exp(score - m), the output rescaled when m grows) folds each tile into the d outputs, which the
// threads share out by channel. Keys and values are read in place through their (batch, head, row)
// strides. Forward only. Left out: splitting one long cache over several blocks (flash-decoding).
#include "common.cuh"

// out, q: (batch, nh, t, d); k, v: (batch, nkv, >= s, d) at element strides (kb, kh, kr) and (vb, vh, vr);
// start: int64 (batch,), read only when has_start. Grid (min(nh * t, 65535), min(batch, 65535)).
// Dynamic shared: q (d) pre-scaled, o (d), p (blockDim.x) in S.
template <class T>
__global__ void decode_attention_kernel(T* out, const T* q, const T* k, const T* v, const i64* start, int has_start,
                                        i64 batch, i64 nh, i64 nkv, i64 t, i64 s, int d, i64 kb, i64 kh, i64 kr,
                                        i64 vb, i64 vh, i64 vr, double scale) {
  typedef typename Traits<T>::S S;
  S *qs = shared_array<S>(), *os = qs + d, *ps = os + d;
  const S ninf = neg_inf<S>();
  const int tile = blockDim.x;
  for (i64 b = blockIdx.y; b < batch; b += gridDim.y) {
    for (i64 u = blockIdx.x; u < nh * t; u += gridDim.x) {
      const i64 h = u / t, i = u % t, row = (b * nh + h) * t + i;
      const T* kp = k + b * kb + (h / (nh / nkv)) * kh;
      const T* vp = v + b * vb + (h / (nh / nkv)) * vh;
      i64 lo = has_start ? start[b] : 0;
      lo = lo > 0 ? lo : 0;
      const i64 hi = s - t + i + 1;
      __syncthreads();   // the previous (b, u) is done with shared memory
      for (int x = threadIdx.x; x < d; x += tile) qs[x] = S(load(q[row * d + x])) * S(scale), os[x] = S(0);
      S m = ninf, l = S(0);
      for (i64 j0 = lo; j0 < hi; j0 += tile) {
        const int cols = int(min(i64(tile), hi - j0));
        __syncthreads();   // q is staged; the previous tile's p is no longer read
        S score = ninf;
        if (threadIdx.x < cols) {
          const T* kj = kp + (j0 + threadIdx.x) * kr;
          score = S(0);
          for (int x = 0; x < d; ++x) score += qs[x] * S(load(kj[x]));
        }
        const S tile_max = block_max(score), mx = tile_max > m ? tile_max : m;
        const S p = threadIdx.x < cols ? s_exp(score - mx) : S(0);
        ps[threadIdx.x] = p;
        const S alpha = m == ninf ? S(0) : s_exp(m - mx);   // rescales what earlier tiles added
        l = l * alpha + block_sum(p);   // block_sum's barriers also publish ps
        m = mx;
        for (int x = threadIdx.x; x < d; x += tile) {
          S acc = os[x] * alpha;
          for (int c = 0; c < cols; ++c) acc += ps[c] * S(load(vp[(j0 + c) * vr + x]));
          os[x] = acc;
        }
      }
      for (int x = threadIdx.x; x < d; x += tile) out[row * d + x] = store<T>(l > S(0) ? os[x] / l : S(0));
    }
  }
}
