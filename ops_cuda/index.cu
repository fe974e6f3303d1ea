// index.cu: reads and writes through an int64 index tensor. gather (and index_select, which is
// gather with the index broadcast over the other dims) reads into a contiguous out; scatter_add
// (and index_add, likewise) adds into a strided out with atomics, since several source elements
// can land on one output element. The trick in both, as in ops_c/index.cpp: x (or out) gets stride
// 0 along `dim`, and idx * dim_stride is added per element instead.
// Indices are trusted to be in range and non-negative (Python checks and wraps them). The order
// of the atomic additions is not fixed, so float results can differ in the last bits run to run.
#include "common.cuh"

// An atomic *p += v for every storage type. float, double, int and long long have hardware
// atomics; the 8- and 16-bit types (and the 16-bit floats, so that any GPU works) swap the
// 32-bit word that holds them with compare-and-swap until no other thread got in between.
__device__ __forceinline__ void atomic_add(float* p, float v) { atomicAdd(p, v); }
__device__ __forceinline__ void atomic_add(double* p, double v) { atomicAdd(p, v); }
__device__ __forceinline__ void atomic_add(int* p, int v) { atomicAdd(p, v); }
__device__ __forceinline__ void atomic_add(i64* p, i64 v) {
  atomicAdd(reinterpret_cast<unsigned long long*>(p), (unsigned long long)v);   // two's complement wraps alike
}

// The bits of an 8- or 16-bit value, and back.
__device__ __forceinline__ unsigned int to_bits(half v) { return __half_as_ushort(v); }
__device__ __forceinline__ unsigned int to_bits(bf16 v) { return __bfloat16_as_ushort(v); }
template <class T> __device__ __forceinline__ unsigned int to_bits(T v) {
  return sizeof(T) == 1 ? (unsigned int)(unsigned char)v : (unsigned int)(unsigned short)v;
}
template <class T> __device__ __forceinline__ T from_bits(unsigned int b) {
  if constexpr (Same<T, half>::value) return __ushort_as_half((unsigned short)b);
  else if constexpr (Same<T, bf16>::value) return __ushort_as_bfloat16((unsigned short)b);
  else if constexpr (Same<T, bool>::value) return b != 0;
  else if constexpr (sizeof(T) == 1) return T((unsigned char)b);
  else return T((unsigned short)b);
}

template <class T> __device__ void atomic_add(T* p, T v) {
  static_assert(sizeof(T) <= 2, "the wider types have their own overloads");
  size_t addr = reinterpret_cast<size_t>(p);
  unsigned int* word = reinterpret_cast<unsigned int*>(addr & ~size_t(3));
  unsigned int shift = unsigned(addr & 3) * 8, mask = (sizeof(T) == 1 ? 0xffu : 0xffffu) << shift;
  unsigned int old = *word, seen;
  do {
    seen = old;
    T sum = store<T>(load(from_bits<T>((seen & mask) >> shift)) + load(v));
    old = atomicCAS(word, seen, (seen & ~mask) | (to_bits(sum) << shift));
  } while (old != seen);
}

// out: contiguous (n,) over the index's shape = x[..., idx[...], ...];
// idx: int64 strided from i_off; x: strided from x_off, its `dim` stride zeroed (dim_stride is the real one);
// meta: shape (nd), idx strides (nd), x strides (nd).
template <class T>
__global__ void gather_kernel(T* out, const T* x, const i64* idx, const i64* meta, int nd, i64 n,
                              i64 i_off, i64 x_off, i64 dim_stride) {
  TT_GRID_LOOP(i, n) {
    i64 off[2];
    walk<2>(i, meta, nd, off);
    out[i] = x[x_off + off[1] + idx[i_off + off[0]] * dim_stride];
  }
}

// out[..., idx[...], ...] += src[...] over the index's shape; out: strided from o_off, its `dim`
// stride zeroed (dim_stride is the real one); idx: int64 strided from i_off; src: strided from s_off;
// meta: shape (nd), out strides (nd), idx strides (nd), src strides (nd).
template <class T>
__global__ void scatter_add_kernel(T* out, const i64* idx, const T* src, const i64* meta, int nd, i64 n,
                                   i64 o_off, i64 i_off, i64 s_off, i64 dim_stride) {
  TT_GRID_LOOP(i, n) {
    i64 off[3];
    walk<3>(i, meta, nd, off);
    atomic_add(out + o_off + off[0] + idx[i_off + off[1]] * dim_stride, src[s_off + off[2]]);
  }
}
