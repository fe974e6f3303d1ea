// index.cpp: reads and writes through an int64 index tensor: gather and index_select (reads;
// out is contiguous) and their adjoints scatter_add and index_add (in-place accumulation into a
// strided out). index_select is gather with the index broadcast over the other dims, and
// index_add is scatter_add likewise, so there are only two kernels. The trick in both: give x
// (or out) stride 0 along `dim` and add idx * stride[dim] per element instead.
// Indices are trusted to be in range and non-negative (Python checks and wraps them).
#include <cstring>

#include "dtypes.h"
#include "kernels.h"
#include "strided.h"

namespace tt {
namespace {

// Strides with the entry for `dim` replaced by `value` (0-d tensors have no dims to replace).
Dims with_stride(const Dims& strides, int dim, int64_t value) {
  Dims s = strides;
  if (dim < int64_t(s.size())) s[dim] = value;
  return s;
}

// The strides of a 1-D index of step idx_stride, broadcast over an ndim-dim space along `dim`.
Dims index_strides(size_t ndim, int dim, int64_t idx_stride) {
  Dims s(ndim, 0);
  if (ndim > 0) s[dim] = idx_stride;
  return s;
}

// out (contiguous) [..., i, ...] = x[..., idx[..., i, ...], ...] over the space `it` with
// operands 0 out, 1 idx, 2 x (its `dim` stride zeroed; dim_stride is the real one).
template <class T>
void gather_kernel(T* out, const T* x, const int64_t* idx, int64_t dim_stride, const Iter& it) {
  for_each_run(it, [&](const int64_t* off, int64_t n) {
    T* __restrict o = out + off[0];
    const int64_t* pi = idx + off[1];
    const T* px = x + off[2];
    int64_t si = it.inner(1), sx = it.inner(2);
    for (int64_t i = 0; i < n; ++i) o[i] = px[i * sx + pi[i * si] * dim_stride];
  });
}

// out[..., idx[..., i, ...], ...] += src[..., i, ...] over the uncoalesced space `it` with
// operands 0 out (its `dim` stride zeroed), 1 idx, 2 src. Different values along `dim` can hit
// the same output element, so threads split another dim (the largest) and each thread walks its
// slab serially: every output element is then updated by one thread, in a fixed order.
template <class T>
void scatter_add_kernel(T* out, const T* src, const int64_t* idx, int dim, int64_t dim_stride, const Iter& it) {
  auto walk = [&](const Iter& part) {
    run_range(part, 0, part.numel, [&](const int64_t* off, int64_t n) {
      T* o = out + off[0];
      const int64_t* pi = idx + off[1];
      const T* ps = src + off[2];
      int64_t so = part.inner(0), si = part.inner(1), ss = part.inner(2);
      for (int64_t i = 0; i < n; ++i) {
        T& dst = o[i * so + pi[i * si] * dim_stride];
        dst = store<T>(load(dst) + load(ps[i * ss]));
      }
    });
  };
  int split = -1;
  for (int d = 0; d < it.ndim; ++d)
    if (d != dim && (split < 0 || it.shape[d] > it.shape[split])) split = d;
  if (split < 0 || it.numel < 2 * kGrain) {
    Iter part = it;
    coalesce(part);
    return walk(part);
  }
  parallel_for(it.shape[split], 1, [&](int64_t lo, int64_t hi) {
    Iter part = it;   // the slab [lo, hi) of dim `split`
    part.shape[split] = hi - lo;
    part.numel = it.numel / it.shape[split] * (hi - lo);
    for (int k = 0; k < part.nops; ++k) part.offset[k] += lo * part.strides[k][split];
    coalesce(part);
    walk(part);
  });
}

}  // namespace

void gather(void* out, int dt, const void* x, const Dims& /*x_shape*/, const Dims& x_strides, int64_t x_offset,
            int dim, const int64_t* idx, const Dims& idx_shape, const Dims& idx_strides, int64_t idx_offset) {
  Dims xs = with_stride(x_strides, dim, 0);
  int64_t dim_stride = dim < int64_t(x_strides.size()) ? x_strides[dim] : 0;
  Iter it = make_iter(idx_shape, {{nullptr, 0}, {idx_strides.data(), idx_offset}, {xs.data(), x_offset}});
  visit_dtype(dt, [&](auto tag) {
    using T = typename decltype(tag)::type;
    gather_kernel(static_cast<T*>(out), static_cast<const T*>(x), idx, dim_stride, it);
  });
}

void index_select(void* out, int dt, const void* x, const Dims& x_shape, const Dims& x_strides, int64_t x_offset,
                  int dim, const int64_t* idx, int64_t n_idx, int64_t idx_stride, int64_t idx_offset) {
  Dims shape = x_shape;
  if (!shape.empty()) shape[dim] = n_idx;
  int64_t dim_stride = dim < int64_t(x_strides.size()) ? x_strides[dim] : 0;
  // Fast path (embedding lookup): dim 0 of an x whose rows are contiguous is one memcpy per row.
  int64_t row = 1;
  bool rows_contiguous = dim == 0 && !shape.empty();
  for (int64_t d = int64_t(shape.size()) - 1; d > 0; --d) {
    rows_contiguous = rows_contiguous && (shape[d] == 1 || x_strides[d] == row);
    row *= shape[d];
  }
  if (rows_contiguous) {
    visit_dtype(dt, [&](auto tag) {
      using T = typename decltype(tag)::type;
      const T* px = static_cast<const T*>(x) + x_offset;
      T* o = static_cast<T*>(out);
      parallel_for(n_idx, std::max<int64_t>(1, kGrain / (row + 1)), [&](int64_t i0, int64_t i1) {
        for (int64_t i = i0; i < i1; ++i)
          std::memcpy(o + i * row, px + idx[idx_offset + i * idx_stride] * dim_stride, row * sizeof(T));
      });
    });
    return;
  }
  Dims is = index_strides(shape.size(), dim, idx_stride);
  Dims xs = with_stride(x_strides, dim, 0);
  Iter it = make_iter(shape, {{nullptr, 0}, {is.data(), idx_offset}, {xs.data(), x_offset}});
  visit_dtype(dt, [&](auto tag) {
    using T = typename decltype(tag)::type;
    gather_kernel(static_cast<T*>(out), static_cast<const T*>(x), idx, dim_stride, it);
  });
}

void scatter_add(void* out, int dt, const Dims& /*out_shape*/, const Dims& out_strides, int64_t out_offset,
                 int dim, const int64_t* idx, const Dims& idx_shape, const Dims& idx_strides, int64_t idx_offset,
                 const void* src, const Dims& src_strides, int64_t src_offset) {
  Dims os = with_stride(out_strides, dim, 0);
  int64_t dim_stride = dim < int64_t(out_strides.size()) ? out_strides[dim] : 0;
  Iter it = make_iter(idx_shape, {{os.data(), out_offset}, {idx_strides.data(), idx_offset},
                                  {src_strides.data(), src_offset}}, false);
  visit_dtype(dt, [&](auto tag) {
    using T = typename decltype(tag)::type;
    scatter_add_kernel(static_cast<T*>(out), static_cast<const T*>(src), idx, dim, dim_stride, it);
  });
}

void index_add(void* out, int dt, const Dims& out_shape, const Dims& out_strides, int64_t out_offset,
               int dim, const int64_t* idx, int64_t n_idx, int64_t idx_stride, int64_t idx_offset,
               const void* src, const Dims& src_strides, int64_t src_offset) {
  Dims shape = out_shape;   // the space walked is src's shape
  if (!shape.empty()) shape[dim] = n_idx;
  Dims is = index_strides(shape.size(), dim, idx_stride);
  Dims os = with_stride(out_strides, dim, 0);
  int64_t dim_stride = dim < int64_t(out_strides.size()) ? out_strides[dim] : 0;
  Iter it = make_iter(shape, {{os.data(), out_offset}, {is.data(), idx_offset},
                              {src_strides.data(), src_offset}}, false);
  visit_dtype(dt, [&](auto tag) {
    using T = typename decltype(tag)::type;
    scatter_add_kernel(static_cast<T*>(out), static_cast<const T*>(src), idx, dim, dim_stride, it);
  });
}

}  // namespace tt
