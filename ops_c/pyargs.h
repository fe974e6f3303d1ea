// pyargs.h: the argument types of the pybind11 entry points (bindings.cpp, bindings_fused.cpp).
// pybind11's own conversions are general and slow for what the kernels need: a py::array
// argument goes through PyArray_FromAny and a std::vector through the sequence protocol, which
// together took about 1 us of a tiny op's 5. These casters only check the type and unpack:
//   In, Out       a NumPy array's data pointer; Out refuses a read-only array
//   InOpt, OutOpt the same, or None as nullptr (a missing weight, no gradient wanted)
//   DimsArg       a tuple (or list) of ints, as the tt::Dims the kernels take
// The numpy dtype of an array is not looked at: the explicit dtype code says how to read it.
// NoGil releases the GIL only around work big enough for another Python thread to gain from it.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

namespace tt {

template <bool Writable, bool Optional>
struct ArrayArg {
  using Ptr = std::conditional_t<Writable, void*, const void*>;
  Ptr p = nullptr;
  int64_t size = 0;
  operator Ptr() const { return p; }
};
using In = ArrayArg<false, false>;
using Out = ArrayArg<true, false>;
using InOpt = ArrayArg<false, true>;
using OutOpt = ArrayArg<true, true>;

struct DimsArg : std::vector<int64_t> {};

// Releases the GIL for kernels over at least kMinElements elements; tiny ops keep it (a
// release and re-acquire costs about as much as the kernel).
class NoGil {
 public:
  static constexpr int64_t kMinElements = 1 << 15;
  explicit NoGil(int64_t elements) {
    if (elements >= kMinElements) release_.emplace();
  }

 private:
  std::optional<pybind11::gil_scoped_release> release_;
};

inline int64_t product(const std::vector<int64_t>& dims) {
  int64_t n = 1;
  for (int64_t d : dims) n *= d;
  return n;
}

}  // namespace tt

namespace pybind11::detail {

template <bool Writable, bool Optional>
struct type_caster<tt::ArrayArg<Writable, Optional>> {
  using Arg = tt::ArrayArg<Writable, Optional>;
  PYBIND11_TYPE_CASTER(Arg, const_name("numpy.ndarray"));

  bool load(handle src, bool) {
    if (Optional && src.is_none()) return true;
    if (!array::check_(src)) return false;
    auto a = reinterpret_borrow<array>(src);
    if constexpr (Writable) {
      value.p = a.mutable_data();  // throws for a read-only array
    } else {
      value.p = a.data();
    }
    value.size = a.size();
    return true;
  }
  static handle cast(const Arg&, return_value_policy, handle) { return {}; }
};

template <>
struct type_caster<tt::DimsArg> {
  PYBIND11_TYPE_CASTER(tt::DimsArg, const_name("tuple[int, ...]"));

  bool load(handle src, bool) {
    PyObject* seq = src.ptr();
    bool tuple = PyTuple_Check(seq);
    if (!tuple && !PyList_Check(seq)) return false;
    Py_ssize_t n = tuple ? PyTuple_GET_SIZE(seq) : PyList_GET_SIZE(seq);
    value.resize(n);
    for (Py_ssize_t i = 0; i < n; ++i) {
      PyObject* item = tuple ? PyTuple_GET_ITEM(seq, i) : PyList_GET_ITEM(seq, i);
      long long x = PyLong_AsLongLong(item);
      if (x == -1 && PyErr_Occurred()) {
        PyErr_Clear();
        return false;
      }
      value[i] = x;
    }
    return true;
  }
  static handle cast(const tt::DimsArg&, return_value_policy, handle) { return {}; }
};

}  // namespace pybind11::detail
