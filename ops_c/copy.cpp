// copy.cpp: copy (strided to strided, with a dtype cast) and fill. These are the only
// primitives besides scatter/index_add that write into strided destinations, which is how
// `x[1:, ::2] = y`, contiguous() and .to(dtype) all work. Casts follow store() in dtypes.h:
// float -> int truncates toward zero (NaN and out-of-range values as float_to_int says),
// anything -> bool is != 0, 16-bit floats round to even.
#include <algorithm>
#include <cstring>

#include "dtypes.h"
#include "kernels.h"
#include "strided.h"

namespace tt {
namespace {

// n elements from s (step ss) to d (step sd), cast from From to To; a separate function so that
// __restrict on its parameters lets the compiler vectorise without overlap checks.
template <class To, class From>
void copy_run(To* __restrict d, const From* __restrict s, int64_t n, int64_t sd, int64_t ss) {
  if (sd == 1 && ss == 1) {
    if constexpr (std::is_same_v<To, From>) {
      std::memcpy(d, s, n * sizeof(To));
    } else {
      for (int64_t i = 0; i < n; ++i) d[i] = store<To>(load(s[i]));
    }
  } else if (sd == 1 && ss == 0) {   // broadcasting one value along the run
    std::fill_n(d, n, store<To>(load(s[0])));
  } else {
    for (int64_t i = 0; i < n; ++i) d[i * sd] = store<To>(load(s[i * ss]));
  }
}

template <class To, class From>
void copy_kernel(void* dst, const void* src, const Iter& it) {
  for_each_run(it, [&](const int64_t* off, int64_t n) {
    copy_run(static_cast<To*>(dst) + off[0], static_cast<const From*>(src) + off[1], n, it.inner(0), it.inner(1));
  });
}

template <class T>
void fill_kernel(void* dst, T value, const Iter& it) {
  for_each_run(it, [&](const int64_t* off, int64_t n) {
    T* d = static_cast<T*>(dst) + off[0];
    int64_t sd = it.inner(0);
    if (sd == 1) {
      std::fill_n(d, n, value);
    } else {
      for (int64_t i = 0; i < n; ++i) d[i * sd] = value;
    }
  });
}

}  // namespace

void copy(void* dst, int dst_dt, const Dims& dst_strides, int64_t dst_offset,
          const void* src, int src_dt, const Dims& src_strides, int64_t src_offset, const Dims& shape) {
  Iter it = make_iter(shape, {{dst_strides.data(), dst_offset}, {src_strides.data(), src_offset}});
  visit_dtype(dst_dt, [&](auto to) {
    visit_dtype(src_dt, [&](auto from) {
      copy_kernel<typename decltype(to)::type, typename decltype(from)::type>(dst, src, it);
    });
  });
}

void fill(void* dst, int dt, const Dims& dst_strides, int64_t dst_offset, const Dims& shape, Scalar value) {
  Iter it = make_iter(shape, {{dst_strides.data(), dst_offset}});
  visit_dtype(dt, [&](auto tag) {
    using T = typename decltype(tag)::type;
    fill_kernel<T>(dst, value.is_int ? store<T>(value.i) : store<T>(value.d), it);
  });
}

}  // namespace tt
