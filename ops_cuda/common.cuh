// common.cuh: what every kernel in ops_cuda/ shares. The ten storage types and how they load into
// the type arithmetic runs in (float for __half and __nv_bfloat16, int for bool) and store back
// (to bool is != 0, float to int truncates, to 16-bit floats rounds to nearest even); the strided
// walk from a C-order element index to the offset of that element in each operand; grid-stride
// loops; block-wide sums and maxima. Written for NVRTC (CuPy's RawModule) and nvcc alike, so it
// uses no C++ standard library: only the CUDA headers for the 16-bit float types.
// Left out: fp8 (a later chapter), complex numbers.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>

typedef long long i64;
typedef __half half;
typedef __nv_bfloat16 bf16;

#define TT_THREADS 256   // threads per block of the elementwise and row kernels

// ---- type traits (no <type_traits> under NVRTC) ---------------------------------------------
template <class A, class B> struct Same { static constexpr bool value = false; };
template <class A> struct Same<A, A> { static constexpr bool value = true; };

// C: the type arithmetic runs in; Acc: the type sums and products accumulate in (double for every
// float, i64 for every integer, as the CPU kernels); S: the type of a fused kernel's statistics.
template <class T> struct Traits { typedef T C; typedef i64 Acc; typedef float S; static constexpr bool fp = false; };
template <> struct Traits<double> { typedef double C; typedef double Acc; typedef double S; static constexpr bool fp = true; };
template <> struct Traits<float> { typedef float C; typedef double Acc; typedef float S; static constexpr bool fp = true; };
template <> struct Traits<half> { typedef float C; typedef double Acc; typedef float S; static constexpr bool fp = true; };
template <> struct Traits<bf16> { typedef float C; typedef double Acc; typedef float S; static constexpr bool fp = true; };
template <> struct Traits<bool> { typedef int C; typedef i64 Acc; typedef float S; static constexpr bool fp = false; };

template <class V> struct IsFloat { static constexpr bool value = Same<V, float>::value || Same<V, double>::value; };

// ---- load and store ---------------------------------------------------------------------------
template <class T> __device__ __forceinline__ typename Traits<T>::C load(T x) { return (typename Traits<T>::C)x; }
__device__ __forceinline__ float load(half x) { return __half2float(x); }
__device__ __forceinline__ float load(bf16 x) { return __bfloat162float(x); }

// A computed value v into storage type To, with the CPU kernels' rules (ops_c/dtypes.h store()).
template <class To, class V> __device__ __forceinline__ To store(V v) {
  if constexpr (Same<To, bool>::value) {
    return v != V(0);
  } else if constexpr (Same<To, half>::value) {
    if constexpr (Same<V, double>::value) return __double2half(v);   // one rounding, as numpy
    else return __float2half_rn(float(v));
  } else if constexpr (Same<To, bf16>::value) {
    return __float2bfloat16_rn(float(v));                           // via float, as ml_dtypes
  } else if constexpr (!Traits<To>::fp && IsFloat<V>::value) {
    return To(i64(v));                                              // truncate toward zero
  } else {
    return To(v);
  }
}

template <class C> __device__ __forceinline__ bool is_nan(C x) { return x != x; }   // false for integers

template <class S> __device__ __forceinline__ S neg_inf();
template <> __device__ __forceinline__ float neg_inf<float>() { return __int_as_float(0xff800000); }
template <> __device__ __forceinline__ double neg_inf<double>() { return __longlong_as_double(i64(0xfff0000000000000ull)); }

// ---- strided walk -----------------------------------------------------------------------------
// meta holds shape[nd] and then, per operand, its strides[nd] (in elements). off[k] receives the
// offset of C-order element i in operand k (the caller adds the operand's storage offset).
template <int K> __device__ __forceinline__ void walk(i64 i, const i64* meta, int nd, i64* off) {
  for (int k = 0; k < K; ++k) off[k] = 0;
  for (int d = nd - 1; d >= 0; --d) {
    i64 n = meta[d], idx = d ? i % n : i;
    i = d ? i / n : 0;
    for (int k = 0; k < K; ++k) off[k] += idx * meta[(k + 1) * nd + d];
  }
}

// for (i = first element of this thread; i < n; i += all threads of the grid)
#define TT_GRID_LOOP(i, n) \
  for (i64 i = blockIdx.x * (i64)blockDim.x + threadIdx.x; i < (n); i += (i64)blockDim.x * gridDim.x)

// ---- block-wide reductions (blockDim.x a multiple of 32, at most 1024); every thread gets the result
template <class S> __device__ __forceinline__ S warp_sum(S v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

template <class S> __device__ __forceinline__ S warp_max(S v) {
  for (int o = 16; o > 0; o >>= 1) {
    S w = __shfl_xor_sync(0xffffffffu, v, o);
    v = w > v ? w : v;
  }
  return v;
}

template <class S> __device__ S block_sum(S v) {
  __shared__ S part[32];
  int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  v = warp_sum(v);
  __syncthreads();   // a previous call may still be reading part
  if (lane == 0) part[warp] = v;
  __syncthreads();
  return warp_sum(lane < int(blockDim.x >> 5) ? part[lane] : S(0));
}

template <class S> __device__ S block_max(S v) {
  __shared__ S part[32];
  int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  v = warp_max(v);
  __syncthreads();
  if (lane == 0) part[warp] = v;
  __syncthreads();
  return warp_max(lane < int(blockDim.x >> 5) ? part[lane] : neg_inf<S>());
}

// Dynamic shared memory of a kernel, seen as an array of S (declared once, as double for alignment).
template <class S> __device__ __forceinline__ S* shared_array() {
  extern __shared__ double tt_dynamic_smem[];
  return reinterpret_cast<S*>(tt_dynamic_smem);
}

// ---- math in a fused kernel's statistics type S (float or double) -------------------------
__device__ __forceinline__ float s_exp(float x) { return expf(x); }
__device__ __forceinline__ double s_exp(double x) { return exp(x); }
__device__ __forceinline__ float s_log(float x) { return logf(x); }
__device__ __forceinline__ double s_log(double x) { return log(x); }
__device__ __forceinline__ float s_sqrt(float x) { return sqrtf(x); }
__device__ __forceinline__ double s_sqrt(double x) { return sqrt(x); }
__device__ __forceinline__ float s_tanh(float x) { return tanhf(x); }
__device__ __forceinline__ double s_tanh(double x) { return tanh(x); }
__device__ __forceinline__ float s_erf(float x) { return erff(x); }
__device__ __forceinline__ double s_erf(double x) { return erf(x); }
