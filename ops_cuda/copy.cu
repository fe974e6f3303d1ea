// copy.cu: copy (strided to strided, with a cast between any two storage types) and fill. With
// scatter_add and index_add these are the only kernels that write into a strided destination,
// which is how `x[1:, ::2] = y`, contiguous() and .to(dtype) work. The kernel is a template over
// the destination type only; the source type is a runtime code (tinytensor.dtype's codes), read
// into a Wide value (double for floats, i64 for integers and bool) that holds every source value
// exactly, then stored with the rules of store() in common.cuh: float -> int truncates toward zero,
// anything -> bool is != 0, 16-bit floats round to nearest even (to bfloat16 through float).
// 10 instantiations instead of 100 keep the compile short. Left out: overlapping source and
// destination (the Tensor layer copies through a temporary).
#include "common.cuh"

enum DTypeCode { F64, F32, F16, BF16, I64, I32, I16, I8, U8, B8 };   // tinytensor/dtype.py's codes

struct Wide {
  double f;
  i64 i;
  bool is_int;
};

// Element k of an array of dtype `code`, widened.
__device__ __forceinline__ Wide load_wide(const void* p, i64 k, int code) {
  switch (code) {
    case F64: return {static_cast<const double*>(p)[k], 0, false};
    case F32: return {double(static_cast<const float*>(p)[k]), 0, false};
    case F16: return {double(load(static_cast<const half*>(p)[k])), 0, false};
    case BF16: return {double(load(static_cast<const bf16*>(p)[k])), 0, false};
    case I64: return {0.0, static_cast<const i64*>(p)[k], true};
    case I32: return {0.0, i64(static_cast<const int*>(p)[k]), true};
    case I16: return {0.0, i64(static_cast<const short*>(p)[k]), true};
    case I8: return {0.0, i64(static_cast<const signed char*>(p)[k]), true};
    case U8: return {0.0, i64(static_cast<const unsigned char*>(p)[k]), true};
    default: return {0.0, i64(static_cast<const bool*>(p)[k]), true};
  }
}

template <class To> __device__ __forceinline__ To store_wide(Wide w) { return w.is_int ? store<To>(w.i) : store<To>(w.f); }

// dst: strided (*shape) from d_off, written; src: strided (*shape) from s_off, of dtype src_code
// (stride 0 broadcasts); meta: shape (nd), dst strides (nd), src strides (nd).
template <class To>
__global__ void copy_kernel(To* dst, const void* src, int src_code, const i64* meta, int nd, i64 n, i64 d_off,
                            i64 s_off) {
  TT_GRID_LOOP(i, n) {
    i64 off[2];
    walk<2>(i, meta, nd, off);
    dst[d_off + off[0]] = store_wide<To>(load_wide(src, s_off + off[1], src_code));
  }
}

// dst: strided (*shape) from d_off, every element set to the value (an integer iv when is_int,
// else the float dv, converted as a cast would); meta: shape (nd), dst strides (nd).
template <class T>
__global__ void fill_kernel(T* dst, const i64* meta, int nd, i64 n, i64 d_off, double dv, i64 iv, int is_int) {
  T value = store_wide<T>({dv, iv, is_int != 0});
  TT_GRID_LOOP(i, n) {
    i64 off[1];
    walk<1>(i, meta, nd, off);
    dst[d_off + off[0]] = value;
  }
}
