"""The list of primitives every backend implements, and the Buffer that holds a tensor's storage.

A backend is a module-like object with one function per primitive below. Operands are passed
as (buffer data, View) pairs; compute primitives write a fresh contiguous `out`, and the
in-place ones (copy, fill, scatter_add, index_add) write through a strided View. Backends trust
their inputs: shapes, dtypes and index ranges are checked by the Tensor layer.
Left out here: random numbers (drawn on the host by tinytensor.random, then copied).
"""
from __future__ import annotations

from ..dtype import DType

UNARY_OPS = ("neg", "abs", "sign", "exp", "log", "log1p", "expm1", "sqrt", "rsqrt", "sin", "cos", "tanh",
             "sigmoid", "relu", "erf", "reciprocal", "floor", "ceil", "round", "trunc", "logical_not")
BINARY_OPS = ("add", "sub", "mul", "div", "pow", "maximum", "minimum", "remainder",
              "eq", "ne", "lt", "le", "gt", "ge", "logical_and", "logical_or", "logical_xor")
REDUCE_OPS = ("sum", "prod", "max", "min", "argmax", "argmin")
COMPARE_OPS = ("eq", "ne", "lt", "le", "gt", "ge")
LOGICAL_OPS = ("logical_and", "logical_or", "logical_xor")

# name -> signature, the whole interface a backend provides
PRIMITIVES = {
    "empty": "(numel, dtype) -> data",
    "from_numpy": "(array) -> data  (shares memory where the device allows)",
    "to_numpy": "(data, view, dtype) -> ndarray  (a strided view on the CPU, a copy elsewhere)",
    "unary": "(op, out, out_dtype, x, xview, dtype)",
    "binary": "(op, out, out_dtype, a, aview, b, bview, dtype)  views broadcast to one shape",
    "where": "(out, dtype, cond, cview, a, aview, b, bview)",
    "reduce": "(op, out, out_dtype, x, xview, dtype, n_reduce)  reduces the last n_reduce dims",
    "matmul": "(out, dtype, a, aview, b, bview)  a (*B, M, K), b (*B, K, N)",
    "copy": "(dst, dview, dst_dtype, src, sview, src_dtype)  strided copy with cast",
    "fill": "(dst, dview, dtype, value)",
    "gather": "(out, dtype, x, xview, dim, idx, iview)",
    "scatter_add": "(out, oview, dtype, dim, idx, iview, src, sview)",
    "index_select": "(out, dtype, x, xview, dim, idx, iview)",
    "index_add": "(out, oview, dtype, dim, idx, iview, src, sview)",
}


class Buffer:
    """Flat storage shared by a tensor and all its views, with the version counter for autograd.

    `version` increases on every in-place write, so backward can tell a saved tensor was modified.
    """

    __slots__ = ("data", "device", "version", "__weakref__")

    def __init__(self, data, device: str):
        self.data, self.device, self.version = data, device, 0

    @property
    def numel(self) -> int:
        return self.data.shape[0]


def check_backend(backend, name: str) -> None:
    """Raise if a backend lacks any primitive listed above (tests call this for every backend)."""
    missing = [p for p in PRIMITIVES if not callable(getattr(backend, p, None))]
    if missing:
        raise RuntimeError(f"backend {name} lacks primitives {missing}")


def is_float(dtype: DType) -> bool:
    return dtype.kind == "f"
