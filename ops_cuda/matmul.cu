// matmul.cu: batched matrix multiply on strided operands (a transposed or broadcast operand needs
// no copy). Two kernels:
//   matmul_kernel<T>: one thread per output element, a plain dot product accumulated in double
//     (floats) or i64 (integers, bool). It serves the dtypes cuBLAS does not: bfloat16, integers, bool.
//   sgemm_tiled: float32 only, the chapter's own GEMM. A block computes a 64 x 64 tile of the output;
//     it walks K in slices of 16, staging a 64 x 16 tile of a and a 16 x 64 tile of b in shared
//     memory, and each of its 256 threads keeps a 4 x 4 block of results in registers. Every value
//     loaded from global memory is then used 64 times, against once in the plain kernel.
// float64/float32/float16 go to cuBLAS (through cupy.matmul) by default; backend/cuda.py says how
// to pick the tiled kernel. Left out: tensor cores, double buffering, vectorised loads.
#include "common.cuh"

// out: contiguous (*batch, m, n); a: strided (*batch, m, k) from a_off, row/col strides sam, sak;
// b: strided (*batch, k, n) from b_off, strides sbk, sbn;
// meta: batch shape (nb), a batch strides (nb), b batch strides (nb).
template <class T>
__global__ void matmul_kernel(T* out, const T* a, const T* b, const i64* meta, int nb, i64 batch, i64 m, i64 n,
                              i64 k, i64 a_off, i64 b_off, i64 sam, i64 sak, i64 sbk, i64 sbn) {
  typedef typename Traits<T>::Acc A;
  TT_GRID_LOOP(i, batch * m * n) {
    i64 col = i % n, row = (i / n) % m, off[2];
    walk<2>(i / (m * n), meta, nb, off);
    const T* pa = a + a_off + off[0] + row * sam;
    const T* pb = b + b_off + off[1] + col * sbn;
    A acc = A(0);
    for (i64 p = 0; p < k; ++p) acc += A(load(pa[p * sak])) * A(load(pb[p * sbk]));
    out[i] = store<T>(acc);
  }
}

#define TILE_M 64
#define TILE_N 64
#define TILE_K 16

// Arguments as matmul_kernel, float32. Grid (ceil(n / 64), ceil(m / 64), batches), 256 threads:
// thread (ty, tx) = (tid / 16, tid % 16) owns output rows ty + 16 i and columns tx + 16 j, i, j < 4,
// so a warp reads 16 consecutive columns of the b tile and one broadcast value of the a tile.
__global__ void sgemm_tiled(float* out, const float* a, const float* b, const i64* meta, int nb, i64 batch,
                            i64 m, i64 n, i64 k, i64 a_off, i64 b_off, i64 sam, i64 sak, i64 sbk, i64 sbn) {
  __shared__ float as[TILE_K][TILE_M + 1];   // the a tile transposed; +1 spreads the stores over banks
  __shared__ float bs[TILE_K][TILE_N];
  int tid = threadIdx.x, tx = tid % 16, ty = tid / 16;
  i64 row0 = i64(blockIdx.y) * TILE_M, col0 = i64(blockIdx.x) * TILE_N;
  for (i64 bi = blockIdx.z; bi < batch; bi += gridDim.z) {
    i64 off[2];
    walk<2>(bi, meta, nb, off);
    const float* pa = a + a_off + off[0];
    const float* pb = b + b_off + off[1];
    float acc[4][4] = {};
    for (i64 k0 = 0; k0 < k; k0 += TILE_K) {
      for (int e = tid; e < TILE_M * TILE_K; e += 256) {   // both tiles hold 1024 values: 4 per thread
        int ka = e % TILE_K, r = e / TILE_K;                // consecutive threads walk a row of a along k
        i64 gr = row0 + r, gka = k0 + ka;
        as[ka][r] = gr < m && gka < k ? pa[gr * sam + gka * sak] : 0.0f;
        int c = e % TILE_N, kb = e / TILE_N;                // ... and a row of b along n
        i64 gc = col0 + c, gkb = k0 + kb;
        bs[kb][c] = gkb < k && gc < n ? pb[gkb * sbk + gc * sbn] : 0.0f;
      }
      __syncthreads();
      for (int p = 0; p < TILE_K; ++p) {
        float av[4], bv[4];
        for (int i = 0; i < 4; ++i) av[i] = as[p][ty + 16 * i];
        for (int j = 0; j < 4; ++j) bv[j] = bs[p][tx + 16 * j];
        for (int i = 0; i < 4; ++i)
          for (int j = 0; j < 4; ++j) acc[i][j] += av[i] * bv[j];
      }
      __syncthreads();
    }
    float* po = out + bi * m * n;
    for (int i = 0; i < 4; ++i)
      for (int j = 0; j < 4; ++j) {
        i64 r = row0 + ty + 16 * i, c = col0 + tx + 16 * j;
        if (r < m && c < n) po[r * n + c] = acc[i][j];
      }
  }
}
