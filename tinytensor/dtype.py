"""Data types and the type-promotion rules (PyTorch's), in one place.

A DType names a storage type: its NumPy dtype (bfloat16 comes from ml_dtypes), its code for the
C kernels, and its category (bool < integer < floating). `promote_types` is PyTorch's pairwise
table and `result_type` applies PyTorch's rule for mixing dimensioned tensors, 0-d tensors and
Python scalars. Left out: complex types, unsigned types other than uint8, fp8 (a later chapter).
"""
from __future__ import annotations

import ml_dtypes
import numpy as np


class DType:
    """A tensor element type. Compare with `is` or `==`; print as `tinytensor.float32`."""

    __slots__ = ("name", "np", "code", "kind", "bits")

    def __init__(self, name: str, np_dtype, code: int, kind: str, bits: int):
        self.name, self.np, self.code, self.kind, self.bits = name, np.dtype(np_dtype), code, kind, bits

    @property
    def is_floating_point(self) -> bool:
        return self.kind == "f"

    @property
    def itemsize(self) -> int:
        return self.np.itemsize

    def __repr__(self) -> str:
        return f"tinytensor.{self.name}"

    def __reduce__(self):  # pickling is not used by tinytensor, but copy/deepcopy should keep identity
        return (_by_name, (self.name,))


# codes are the ones the C kernels dispatch on (ops_c/common.h)
float64 = DType("float64", np.float64, 0, "f", 64)
float32 = DType("float32", np.float32, 1, "f", 32)
float16 = DType("float16", np.float16, 2, "f", 16)
bfloat16 = DType("bfloat16", ml_dtypes.bfloat16, 3, "f", 16)
int64 = DType("int64", np.int64, 4, "i", 64)
int32 = DType("int32", np.int32, 5, "i", 32)
int16 = DType("int16", np.int16, 6, "i", 16)
int8 = DType("int8", np.int8, 7, "i", 8)
uint8 = DType("uint8", np.uint8, 8, "u", 8)
bool_ = DType("bool", np.bool_, 9, "b", 8)

ALL = (float64, float32, float16, bfloat16, int64, int32, int16, int8, uint8, bool_)
FLOATING = (float64, float32, float16, bfloat16)
_BY_NAME = {d.name: d for d in ALL}
_BY_NP = {d.np: d for d in ALL}

_default_float = float32


def _by_name(name: str) -> DType:
    return _BY_NAME[name]


def get_default_dtype() -> DType:
    return _default_float


def set_default_dtype(d: DType) -> None:
    global _default_float
    if not isinstance(d, DType) or not d.is_floating_point:
        raise TypeError(f"set_default_dtype: expected a floating DType, got {d!r}")
    _default_float = d


def from_numpy_dtype(npd) -> DType:
    """The DType for a NumPy dtype; TypeError for types tinytensor does not store."""
    d = _BY_NP.get(np.dtype(npd))
    if d is None:
        raise TypeError(f"numpy dtype {np.dtype(npd)} is not supported; use one of {[x.name for x in ALL]}")
    return d


def as_dtype(d) -> DType:
    """Accept a DType, a NumPy dtype or a name ('float32'); TypeError otherwise."""
    if isinstance(d, DType):
        return d
    if isinstance(d, str) and d in _BY_NAME:
        return _BY_NAME[d]
    if d is bool:
        return bool_
    if d is float:
        return float64
    if d is int:
        return int64
    try:
        return from_numpy_dtype(d)
    except TypeError:
        raise TypeError(f"not a tinytensor dtype: {d!r}") from None


# ---- promotion ---------------------------------------------------------------------------------

_CATEGORY = {"b": 0, "u": 1, "i": 1, "f": 2}


def _promote_pair(a: DType, b: DType) -> DType:
    if a is b:
        return a
    ca, cb = _CATEGORY[a.kind], _CATEGORY[b.kind]
    if ca != cb:
        return a if ca > cb else b
    if a.kind == "f":
        if {a, b} == {float16, bfloat16}:
            return float32
        return a if a.bits >= b.bits else b
    # integers: uint8 mixed with a signed type needs the next signed type that holds 0..255
    if a is uint8 or b is uint8:
        other = b if a is uint8 else a
        return int16 if other is int8 else other
    return a if a.bits >= b.bits else b


def promote_types(a: DType, b: DType) -> DType:
    """PyTorch's torch.promote_types for the types tinytensor has."""
    return _promote_pair(a, b)


def scalar_dtype(x) -> DType:
    """The dtype a Python scalar takes alone: bool, int64, or the default float."""
    if isinstance(x, (bool, np.bool_)):
        return bool_
    if isinstance(x, (int, np.integer)):
        return int64
    if isinstance(x, (float, np.floating)):
        return _default_float
    raise TypeError(f"expected a number, got {type(x).__name__}")


def result_type(*operands) -> DType:
    """PyTorch's result type: each operand is (dtype, ndim) for a tensor, or a Python scalar.

    Dimensioned tensors decide; a 0-d tensor, then a scalar, overrides only when it is of a higher
    category (bool < int < float), e.g. int32 tensor + 2.5 -> float32, float16 tensor + 2.5 -> float16.
    """
    groups = [None, None, None]  # dimensioned tensors, 0-d tensors, Python scalars
    for op in operands:
        if isinstance(op, tuple):
            dt, g = op[0], (0 if op[1] > 0 else 1)
        else:
            dt, g = scalar_dtype(op), 2
        groups[g] = dt if groups[g] is None else _promote_pair(groups[g], dt)
    result = None
    for dt in groups:
        if dt is not None and (result is None or _CATEGORY[dt.kind] > _CATEGORY[result.kind]):
            result = dt
    return result
