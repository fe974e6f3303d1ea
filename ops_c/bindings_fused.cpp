// bindings_fused.cpp: the pybind11 entry points of the fused kernels (fused.h), added to
// tinytensor._C by init_fused(). As in bindings.cpp: unpack (pyargs.h), release the GIL (always:
// these kernels work on whole activations), call; no checks (tinytensor/backend/cpu.py passes flat
// contiguous arrays it has sized itself). An optional array (a missing weight, no dlogits) is None.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "fused.h"
#include "pyargs.h"

namespace py = pybind11;

namespace {

using tt::In;
using tt::InOpt;
using tt::DimsArg;
using tt::Out;
using tt::OutOpt;

}  // namespace

void init_fused(py::module_& m) {
  m.def("softmax", [](Out out, int dt, In x, int64_t rows, int64_t n, bool log) {
    py::gil_scoped_release nogil;
    tt::softmax(out, dt, x, rows, n, log);
  });
  m.def("softmax_backward", [](Out gx, int dt, In y, In gy, int64_t rows, int64_t n, bool log) {
    py::gil_scoped_release nogil;
    tt::softmax_backward(gx, dt, y, gy, rows, n, log);
  });
  m.def("cross_entropy", [](Out loss, OutOpt dlogits, int dt, In logits, In target, int64_t rows, int64_t n,
                            int64_t ignore_index, double smoothing, double grad_scale) {
    py::gil_scoped_release nogil;
    tt::cross_entropy(loss, dlogits, dt, logits, static_cast<const int64_t*>(target.p), rows, n, ignore_index,
                      smoothing, grad_scale);
  });
  m.def("layer_norm", [](Out out, Out mean, Out rstd, int dt, In x, InOpt weight, InOpt bias, int64_t rows,
                         int64_t n, double eps) {
    py::gil_scoped_release nogil;
    tt::layer_norm(out, mean, rstd, dt, x, weight, bias, rows, n, eps);
  });
  m.def("layer_norm_backward", [](Out gx, OutOpt gweight, OutOpt gbias, int dt, In gy, In x, In mean, In rstd,
                                  InOpt weight, int64_t rows, int64_t n) {
    py::gil_scoped_release nogil;
    tt::layer_norm_backward(gx, gweight, gbias, dt, gy, x, mean, rstd, weight, rows, n);
  });
  m.def("rms_norm", [](Out out, Out rstd, int dt, In x, InOpt weight, int64_t rows, int64_t n, double eps) {
    py::gil_scoped_release nogil;
    tt::rms_norm(out, rstd, dt, x, weight, rows, n, eps);
  });
  m.def("rms_norm_backward", [](Out gx, OutOpt gweight, int dt, In gy, In x, In rstd, InOpt weight, int64_t rows,
                                int64_t n) {
    py::gil_scoped_release nogil;
    tt::rms_norm_backward(gx, gweight, dt, gy, x, rstd, weight, rows, n);
  });
  m.def("gelu", [](Out out, int dt, In x, int64_t n, bool tanh) {
    py::gil_scoped_release nogil;
    tt::gelu(out, dt, x, n, tanh);
  });
  m.def("gelu_backward", [](Out gx, int dt, In gy, In x, int64_t n, bool tanh) {
    py::gil_scoped_release nogil;
    tt::gelu_backward(gx, dt, gy, x, n, tanh);
  });
  m.def("attention", [](Out out, Out lse, int dt, In q, In k, In v, int64_t bh, int64_t t, int64_t s, int64_t d,
                        double scale, bool causal) {
    py::gil_scoped_release nogil;
    tt::attention(out, lse, dt, q, k, v, bh, t, s, d, scale, causal);
  });
  m.def("attention_backward", [](Out gq, Out gk, Out gv, int dt, In go, In q, In k, In v, In out, In lse,
                                 int64_t bh, int64_t t, int64_t s, int64_t d, double scale, bool causal) {
    py::gil_scoped_release nogil;
    tt::attention_backward(gq, gk, gv, dt, go, q, k, v, out, lse, bh, t, s, d, scale, causal);
  });
  m.def("decode_attention", [](Out out, int dt, In q, In k, In v, InOpt start, int64_t batch, int64_t nh, int64_t nkv,
                               int64_t t, int64_t s, int64_t d, DimsArg ks, DimsArg vs, double scale) {
    const tt::Strides3 kst{ks.at(0), ks.at(1), ks.at(2)}, vst{vs.at(0), vs.at(1), vs.at(2)};
    py::gil_scoped_release nogil;
    tt::decode_attention(out, dt, q, k, v, static_cast<const int64_t*>(start.p), batch, nh, nkv, t, s, d, kst, vst,
                         scale);
  });
  m.def("adamw", [](std::vector<Out> params, std::vector<In> grads, std::vector<Out> exp_avgs,
                    std::vector<Out> exp_avg_sqs, int dt, double lr, double beta1, double beta2, double eps,
                    double weight_decay, int64_t step) {
    std::vector<void*> p, m1, m2;
    std::vector<const void*> g;
    std::vector<int64_t> sizes;
    for (size_t i = 0; i < params.size(); ++i) {
      p.push_back(params[i]);
      g.push_back(grads[i]);
      m1.push_back(exp_avgs[i]);
      m2.push_back(exp_avg_sqs[i]);
      sizes.push_back(params[i].size);
    }
    py::gil_scoped_release nogil;
    tt::adamw(p, g, m1, m2, sizes, dt, lr, beta1, beta2, eps, weight_decay, step);
  });
}
