// bindings_fused.cpp: the pybind11 entry points of the fused kernels (fused.h), added to
// tinytensor._C by init_fused(). As in bindings.cpp: unpack, release the GIL, call; no checks
// (tinytensor/backend/cpu.py passes flat contiguous arrays it has sized itself). An optional
// array (a missing weight, no dlogits) is passed as None.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "fused.h"

namespace py = pybind11;

namespace {

void* ptr(py::array& a) { return a.mutable_data(); }
const void* cptr(const py::array& a) { return a.data(); }
void* opt_ptr(const py::object& a) { return a.is_none() ? nullptr : a.cast<py::array>().mutable_data(); }
const void* opt_cptr(const py::object& a) { return a.is_none() ? nullptr : a.cast<py::array>().data(); }

}  // namespace

void init_fused(py::module_& m) {
  m.def("softmax", [](py::array out, int dt, py::array x, int64_t rows, int64_t n, bool log) {
    void* o = ptr(out);
    py::gil_scoped_release nogil;
    tt::softmax(o, dt, cptr(x), rows, n, log);
  });
  m.def("softmax_backward", [](py::array gx, int dt, py::array y, py::array gy, int64_t rows, int64_t n, bool log) {
    void* o = ptr(gx);
    py::gil_scoped_release nogil;
    tt::softmax_backward(o, dt, cptr(y), cptr(gy), rows, n, log);
  });
  m.def("cross_entropy", [](py::array loss, py::object dlogits, int dt, py::array logits, py::array target,
                            int64_t rows, int64_t n, int64_t ignore_index, double smoothing, double grad_scale) {
    void *l = ptr(loss), *d = opt_ptr(dlogits);
    py::gil_scoped_release nogil;
    tt::cross_entropy(l, d, dt, cptr(logits), static_cast<const int64_t*>(cptr(target)), rows, n, ignore_index,
                      smoothing, grad_scale);
  });
  m.def("layer_norm", [](py::array out, py::array mean, py::array rstd, int dt, py::array x, py::object weight,
                         py::object bias, int64_t rows, int64_t n, double eps) {
    void *o = ptr(out), *mu = ptr(mean), *rs = ptr(rstd);
    const void *w = opt_cptr(weight), *b = opt_cptr(bias);
    py::gil_scoped_release nogil;
    tt::layer_norm(o, mu, rs, dt, cptr(x), w, b, rows, n, eps);
  });
  m.def("layer_norm_backward", [](py::array gx, py::object gweight, py::object gbias, int dt, py::array gy,
                                  py::array x, py::array mean, py::array rstd, py::object weight, int64_t rows,
                                  int64_t n) {
    void *o = ptr(gx), *gw = opt_ptr(gweight), *gb = opt_ptr(gbias);
    const void* w = opt_cptr(weight);
    py::gil_scoped_release nogil;
    tt::layer_norm_backward(o, gw, gb, dt, cptr(gy), cptr(x), cptr(mean), cptr(rstd), w, rows, n);
  });
  m.def("rms_norm", [](py::array out, py::array rstd, int dt, py::array x, py::object weight, int64_t rows,
                       int64_t n, double eps) {
    void *o = ptr(out), *rs = ptr(rstd);
    const void* w = opt_cptr(weight);
    py::gil_scoped_release nogil;
    tt::rms_norm(o, rs, dt, cptr(x), w, rows, n, eps);
  });
  m.def("rms_norm_backward", [](py::array gx, py::object gweight, int dt, py::array gy, py::array x, py::array rstd,
                                py::object weight, int64_t rows, int64_t n) {
    void *o = ptr(gx), *gw = opt_ptr(gweight);
    const void* w = opt_cptr(weight);
    py::gil_scoped_release nogil;
    tt::rms_norm_backward(o, gw, dt, cptr(gy), cptr(x), cptr(rstd), w, rows, n);
  });
  m.def("gelu", [](py::array out, int dt, py::array x, int64_t n, bool tanh) {
    void* o = ptr(out);
    py::gil_scoped_release nogil;
    tt::gelu(o, dt, cptr(x), n, tanh);
  });
  m.def("gelu_backward", [](py::array gx, int dt, py::array gy, py::array x, int64_t n, bool tanh) {
    void* o = ptr(gx);
    py::gil_scoped_release nogil;
    tt::gelu_backward(o, dt, cptr(gy), cptr(x), n, tanh);
  });
  m.def("attention", [](py::array out, py::array lse, int dt, py::array q, py::array k, py::array v, int64_t bh,
                        int64_t t, int64_t s, int64_t d, double scale, bool causal) {
    void *o = ptr(out), *l = ptr(lse);
    py::gil_scoped_release nogil;
    tt::attention(o, l, dt, cptr(q), cptr(k), cptr(v), bh, t, s, d, scale, causal);
  });
  m.def("attention_backward", [](py::array gq, py::array gk, py::array gv, int dt, py::array go, py::array q,
                                 py::array k, py::array v, py::array out, py::array lse, int64_t bh, int64_t t,
                                 int64_t s, int64_t d, double scale, bool causal) {
    void *a = ptr(gq), *b = ptr(gk), *c = ptr(gv);
    py::gil_scoped_release nogil;
    tt::attention_backward(a, b, c, dt, cptr(go), cptr(q), cptr(k), cptr(v), cptr(out), cptr(lse), bh, t, s, d,
                           scale, causal);
  });
  m.def("adamw", [](std::vector<py::array> params, std::vector<py::array> grads, std::vector<py::array> exp_avgs,
                    std::vector<py::array> exp_avg_sqs, int dt, double lr, double beta1, double beta2, double eps,
                    double weight_decay, int64_t step) {
    std::vector<void*> p, m1, m2;
    std::vector<const void*> g;
    std::vector<int64_t> sizes;
    for (size_t i = 0; i < params.size(); ++i) {
      p.push_back(ptr(params[i]));
      g.push_back(cptr(grads[i]));
      m1.push_back(ptr(exp_avgs[i]));
      m2.push_back(ptr(exp_avg_sqs[i]));
      sizes.push_back(params[i].size());
    }
    py::gil_scoped_release nogil;
    tt::adamw(p, g, m1, m2, sizes, dt, lr, beta1, beta2, eps, weight_decay, step);
  });
}
