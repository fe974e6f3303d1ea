// bindings.cpp: the pybind11 module tinytensor._C. Each function only unpacks its arguments
// (numpy buffers -> raw pointers; shapes and strides -> tt::Dims, through the casters of
// pyargs.h) and calls the kernel in kernels.h, with the GIL released when the work is big enough
// for other Python threads to run meanwhile. It checks nothing: tinytensor/backend/cpu.py is the
// only caller and has validated everything already.
#include <cstdlib>

#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "kernels.h"
#include "parallel.h"
#include "pyargs.h"

#ifdef __GLIBC__
#include <malloc.h>
#endif

namespace py = pybind11;

void init_bpe(py::module_& m);     // bpe.cpp: the tokenizer's BPE training and encoding loops
void init_fused(py::module_& m);   // bindings_fused.cpp: the fused kernels of fused.h

namespace {

using tt::DimsArg;
using tt::In;
using tt::NoGil;
using tt::Out;

const int64_t* index_ptr(const In& a) { return static_cast<const int64_t*>(a.p); }

tt::Scalar to_scalar(const py::object& value) {
  if (py::isinstance<py::int_>(value)) return {true, value.cast<int64_t>(), 0.0};   // bool is an int too
  return {false, 0, value.cast<double>()};
}

// Tensor storage (NumPy arrays) comes from malloc. glibc hands blocks above 32 MB straight back to
// the OS on free, so a training step that makes a fresh 64 MB logits gradient page-faults through
// all of it again, every step (about 18 ms of 25 for allocate-and-fill here). Raising the mmap and
// trim thresholds to 1 GiB keeps freed memory in the heap for reuse, as PyTorch's caching
// allocator does; a user's MALLOC_* environment settings win.
void keep_freed_memory() {
#ifdef __GLIBC__
  constexpr int kGiB = 1 << 30;
  if (!std::getenv("MALLOC_MMAP_THRESHOLD_")) mallopt(M_MMAP_THRESHOLD, kGiB);
  if (!std::getenv("MALLOC_TRIM_THRESHOLD_")) mallopt(M_TRIM_THRESHOLD, kGiB);
#endif
}

}  // namespace

PYBIND11_MODULE(_C, m) {
  m.doc() = "tinytensor CPU kernels (ops_c/): see ops_c/kernels.h for every function's arguments.";
  keep_freed_memory();
  tt::install_fork_handler();
  m.attr("UNARY_OPS") = py::cast(tt::unary_op_names());
  m.attr("BINARY_OPS") = py::cast(tt::binary_op_names());
  m.attr("REDUCE_OPS") = py::cast(tt::reduce_op_names());

  m.def("unary", [](int op, Out out, int out_dt, In x, int x_dt, DimsArg shape, DimsArg xs, int64_t xo) {
    NoGil nogil(out.size);
    tt::unary(op, out, out_dt, x, x_dt, shape, xs, xo);
  });
  m.def("binary", [](int op, Out out, int out_dt, In a, int a_dt, DimsArg as, int64_t ao, In b, int b_dt,
                     DimsArg bs, int64_t bo, DimsArg shape) {
    NoGil nogil(out.size);
    tt::binary(op, out, out_dt, a, a_dt, as, ao, b, b_dt, bs, bo, shape);
  });
  m.def("where", [](Out out, int dt, In cond, DimsArg cs, int64_t co, In a, DimsArg as, int64_t ao, In b,
                    DimsArg bs, int64_t bo, DimsArg shape) {
    NoGil nogil(out.size);
    tt::where(out, dt, cond, cs, co, a, as, ao, b, bs, bo, shape);
  });
  m.def("reduce", [](int op, Out out, int out_dt, In x, int x_dt, DimsArg shape, DimsArg xs, int64_t xo,
                     int n_reduce) {
    NoGil nogil(tt::product(shape));
    tt::reduce(op, out, out_dt, x, x_dt, shape, xs, xo, n_reduce);
  });
  m.def("matmul", [](Out out, int dt, In a, DimsArg as, int64_t ao, In b, DimsArg bs, int64_t bo, DimsArg batch,
                     int64_t M, int64_t N, int64_t K) {
    NoGil nogil(out.size * K);
    tt::matmul(out, dt, a, as, ao, b, bs, bo, batch, M, N, K);
  });
  m.def("copy", [](Out dst, int dst_dt, DimsArg ds, int64_t dof, In src, int src_dt, DimsArg ss, int64_t so,
                   DimsArg shape) {
    NoGil nogil(tt::product(shape));
    tt::copy(dst, dst_dt, ds, dof, src, src_dt, ss, so, shape);
  });
  m.def("fill", [](Out dst, int dt, DimsArg ds, int64_t dof, DimsArg shape, py::object value) {
    tt::Scalar v = to_scalar(value);
    NoGil nogil(tt::product(shape));
    tt::fill(dst, dt, ds, dof, shape, v);
  });
  m.def("gather", [](Out out, int dt, In x, DimsArg xshape, DimsArg xs, int64_t xo, int dim, In idx,
                     DimsArg ishape, DimsArg is, int64_t io) {
    NoGil nogil(out.size);
    tt::gather(out, dt, x, xshape, xs, xo, dim, index_ptr(idx), ishape, is, io);
  });
  m.def("scatter_add", [](Out out, int dt, DimsArg oshape, DimsArg os, int64_t oo, int dim, In idx, DimsArg ishape,
                          DimsArg is, int64_t io, In src, DimsArg ss, int64_t so) {
    NoGil nogil(tt::product(ishape));
    tt::scatter_add(out, dt, oshape, os, oo, dim, index_ptr(idx), ishape, is, io, src, ss, so);
  });
  m.def("index_select", [](Out out, int dt, In x, DimsArg xshape, DimsArg xs, int64_t xo, int dim, In idx,
                           int64_t n_idx, int64_t istride, int64_t io) {
    NoGil nogil(out.size);
    tt::index_select(out, dt, x, xshape, xs, xo, dim, index_ptr(idx), n_idx, istride, io);
  });
  m.def("index_add", [](Out out, int dt, DimsArg oshape, DimsArg os, int64_t oo, int dim, In idx, int64_t n_idx,
                        int64_t istride, int64_t io, In src, DimsArg ss, int64_t so) {
    NoGil nogil(out.size);
    tt::index_add(out, dt, oshape, os, oo, dim, index_ptr(idx), n_idx, istride, io, src, ss, so);
  });
  m.def("set_num_threads", &tt::set_num_threads,
        "Sets the number of threads every kernel uses (1 in a forked child: see ops_c/parallel.h).");
  m.def("get_num_threads", &tt::num_threads, "The number of threads every kernel uses.");
  init_bpe(m);
  init_fused(m);
}
