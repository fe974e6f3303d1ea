// kernels.h: the entry points of the CPU kernels, one per primitive, in the argument order of
// the Python API (tinytensor._C): outputs first, then inputs, then sizes. Every buffer is a raw
// pointer to the start of a tensor's flat storage with an explicit dtype code (dtypes.h);
// strides and offsets are in elements. The kernels trust their arguments: Python has checked
// shapes, dtypes and index ranges. Nothing here knows about Python (bindings.cpp does).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace tt {

using Dims = std::vector<int64_t>;

// Op names in op-code order, exported to Python as UNARY_OPS, BINARY_OPS and REDUCE_OPS.
const std::vector<std::string>& unary_op_names();
const std::vector<std::string>& binary_op_names();
const std::vector<std::string>& reduce_op_names();

// out: contiguous (*shape); x: strided (*shape).
void unary(int op, void* out, int out_dt, const void* x, int x_dt,
           const Dims& shape, const Dims& x_strides, int64_t x_offset);

// out: contiguous (*shape); a, b: strided (*shape), broadcast dims have stride 0.
void binary(int op, void* out, int out_dt,
            const void* a, int a_dt, const Dims& a_strides, int64_t a_offset,
            const void* b, int b_dt, const Dims& b_strides, int64_t b_offset, const Dims& shape);

// out: contiguous (*shape) of dtype dt; cond: bool (*shape); a, b: dtype dt (*shape).
void where(void* out, int dt, const void* cond, const Dims& c_strides, int64_t c_offset,
           const void* a, const Dims& a_strides, int64_t a_offset,
           const void* b, const Dims& b_strides, int64_t b_offset, const Dims& shape);

// out: contiguous (*shape[:-n_reduce]); x: strided (*shape), reduced over its last n_reduce dims.
void reduce(int op, void* out, int out_dt, const void* x, int x_dt,
            const Dims& shape, const Dims& x_strides, int64_t x_offset, int n_reduce);

// out: contiguous (*batch, M, N); a: strided (*batch, M, K); b: strided (*batch, K, N).
void matmul(void* out, int dt, const void* a, const Dims& a_strides, int64_t a_offset,
            const void* b, const Dims& b_strides, int64_t b_offset,
            const Dims& batch, int64_t M, int64_t N, int64_t K);

// dst: strided (*shape) of dst_dt; src: strided (*shape) of src_dt, cast on the way.
void copy(void* dst, int dst_dt, const Dims& dst_strides, int64_t dst_offset,
          const void* src, int src_dt, const Dims& src_strides, int64_t src_offset, const Dims& shape);

// A Python scalar: ints stay exact int64, everything else is a double.
struct Scalar {
  bool is_int;
  int64_t i;
  double d;
};

// dst: strided (*shape), every element set to value.
void fill(void* dst, int dt, const Dims& dst_strides, int64_t dst_offset, const Dims& shape, Scalar value);

// out: contiguous (*idx_shape); x: strided (*x_shape); idx: int64 strided (*idx_shape).
void gather(void* out, int dt, const void* x, const Dims& x_shape, const Dims& x_strides, int64_t x_offset,
            int dim, const int64_t* idx, const Dims& idx_shape, const Dims& idx_strides, int64_t idx_offset);

// out: strided (*out_shape), updated in place; idx: int64 (*idx_shape); src: strided (*idx_shape).
void scatter_add(void* out, int dt, const Dims& out_shape, const Dims& out_strides, int64_t out_offset,
                 int dim, const int64_t* idx, const Dims& idx_shape, const Dims& idx_strides, int64_t idx_offset,
                 const void* src, const Dims& src_strides, int64_t src_offset);

// out: contiguous (x_shape with x_shape[dim] -> n_idx); x: strided (*x_shape); idx: int64 (n_idx,).
void index_select(void* out, int dt, const void* x, const Dims& x_shape, const Dims& x_strides, int64_t x_offset,
                  int dim, const int64_t* idx, int64_t n_idx, int64_t idx_stride, int64_t idx_offset);

// out: strided (*out_shape), updated in place; idx: int64 (n_idx,);
// src: strided (out_shape with out_shape[dim] -> n_idx).
void index_add(void* out, int dt, const Dims& out_shape, const Dims& out_strides, int64_t out_offset,
               int dim, const int64_t* idx, int64_t n_idx, int64_t idx_stride, int64_t idx_offset,
               const void* src, const Dims& src_strides, int64_t src_offset);

}  // namespace tt
