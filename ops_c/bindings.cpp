// bindings.cpp: the pybind11 module tinytensor._C. Each function only unpacks its arguments
// (numpy buffers -> raw pointers; shapes and strides -> std::vector) and calls the kernel in
// kernels.h with the GIL released, so other Python threads run meanwhile. It checks nothing:
// tinytensor/backend/cpu.py is the only caller and has validated everything already. The
// numpy dtype of a buffer is ignored; the explicit dtype code says how to read it.
#include <cstdlib>

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "kernels.h"
#include "parallel.h"

#ifdef __GLIBC__
#include <malloc.h>
#endif

namespace py = pybind11;
using tt::Dims;

void init_bpe(py::module_& m);     // bpe.cpp: the tokenizer's BPE training and encoding loops
void init_fused(py::module_& m);   // bindings_fused.cpp: the fused kernels of fused.h

namespace {

void* ptr(py::array& a) { return a.mutable_data(); }
const void* cptr(const py::array& a) { return a.data(); }
const int64_t* iptr(const py::array& a) { return static_cast<const int64_t*>(a.data()); }

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
  m.attr("UNARY_OPS") = py::cast(tt::unary_op_names());
  m.attr("BINARY_OPS") = py::cast(tt::binary_op_names());
  m.attr("REDUCE_OPS") = py::cast(tt::reduce_op_names());

  m.def("unary", [](int op, py::array out, int out_dt, py::array x, int x_dt, Dims shape, Dims xs, int64_t xo) {
    void* o = ptr(out);
    py::gil_scoped_release nogil;
    tt::unary(op, o, out_dt, cptr(x), x_dt, shape, xs, xo);
  });
  m.def("binary", [](int op, py::array out, int out_dt, py::array a, int a_dt, Dims as, int64_t ao,
                     py::array b, int b_dt, Dims bs, int64_t bo, Dims shape) {
    void* o = ptr(out);
    py::gil_scoped_release nogil;
    tt::binary(op, o, out_dt, cptr(a), a_dt, as, ao, cptr(b), b_dt, bs, bo, shape);
  });
  m.def("where", [](py::array out, int dt, py::array cond, Dims cs, int64_t co, py::array a, Dims as, int64_t ao,
                    py::array b, Dims bs, int64_t bo, Dims shape) {
    void* o = ptr(out);
    py::gil_scoped_release nogil;
    tt::where(o, dt, cptr(cond), cs, co, cptr(a), as, ao, cptr(b), bs, bo, shape);
  });
  m.def("reduce", [](int op, py::array out, int out_dt, py::array x, int x_dt, Dims shape, Dims xs, int64_t xo,
                     int n_reduce) {
    void* o = ptr(out);
    py::gil_scoped_release nogil;
    tt::reduce(op, o, out_dt, cptr(x), x_dt, shape, xs, xo, n_reduce);
  });
  m.def("matmul", [](py::array out, int dt, py::array a, Dims as, int64_t ao, py::array b, Dims bs, int64_t bo,
                     Dims batch, int64_t M, int64_t N, int64_t K) {
    void* o = ptr(out);
    py::gil_scoped_release nogil;
    tt::matmul(o, dt, cptr(a), as, ao, cptr(b), bs, bo, batch, M, N, K);
  });
  m.def("copy", [](py::array dst, int dst_dt, Dims ds, int64_t dof, py::array src, int src_dt, Dims ss, int64_t so,
                   Dims shape) {
    void* d = ptr(dst);
    py::gil_scoped_release nogil;
    tt::copy(d, dst_dt, ds, dof, cptr(src), src_dt, ss, so, shape);
  });
  m.def("fill", [](py::array dst, int dt, Dims ds, int64_t dof, Dims shape, py::object value) {
    void* d = ptr(dst);
    tt::Scalar v = to_scalar(value);
    py::gil_scoped_release nogil;
    tt::fill(d, dt, ds, dof, shape, v);
  });
  m.def("gather", [](py::array out, int dt, py::array x, Dims xshape, Dims xs, int64_t xo, int dim,
                     py::array idx, Dims ishape, Dims is, int64_t io) {
    void* o = ptr(out);
    py::gil_scoped_release nogil;
    tt::gather(o, dt, cptr(x), xshape, xs, xo, dim, iptr(idx), ishape, is, io);
  });
  m.def("scatter_add", [](py::array out, int dt, Dims oshape, Dims os, int64_t oo, int dim,
                          py::array idx, Dims ishape, Dims is, int64_t io, py::array src, Dims ss, int64_t so) {
    void* o = ptr(out);
    py::gil_scoped_release nogil;
    tt::scatter_add(o, dt, oshape, os, oo, dim, iptr(idx), ishape, is, io, cptr(src), ss, so);
  });
  m.def("index_select", [](py::array out, int dt, py::array x, Dims xshape, Dims xs, int64_t xo, int dim,
                           py::array idx, int64_t n_idx, int64_t istride, int64_t io) {
    void* o = ptr(out);
    py::gil_scoped_release nogil;
    tt::index_select(o, dt, cptr(x), xshape, xs, xo, dim, iptr(idx), n_idx, istride, io);
  });
  m.def("index_add", [](py::array out, int dt, Dims oshape, Dims os, int64_t oo, int dim,
                        py::array idx, int64_t n_idx, int64_t istride, int64_t io, py::array src, Dims ss, int64_t so) {
    void* o = ptr(out);
    py::gil_scoped_release nogil;
    tt::index_add(o, dt, oshape, os, oo, dim, iptr(idx), n_idx, istride, io, cptr(src), ss, so);
  });
  m.def("set_num_threads", &tt::set_num_threads, "Sets the number of threads every kernel uses.");
  m.def("get_num_threads", &tt::num_threads, "The number of threads every kernel uses.");
  init_bpe(m);
  init_fused(m);
}
