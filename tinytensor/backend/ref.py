"""The NumPy reference backend: every primitive of base.py written plainly with NumPy.

Tests cross-check the C (and CUDA) kernels against it; tinytensor never uses it silently at run
time. float16/bfloat16 are computed in float32, like the kernels, then rounded on store.
"""
from __future__ import annotations

import math

import numpy as np

from ..dtype import DType
from .host import empty, from_numpy, strided, to_numpy  # noqa: F401  (the storage primitives)


def _compute(data, view, dtype: DType) -> np.ndarray:
    """Read an operand, widening float16/bfloat16 to float32 as the kernels do."""
    x = strided(data, view)
    return x.astype(np.float32) if dtype.kind == "f" and dtype.bits == 16 else x


def _store(out: np.ndarray, shape, values) -> None:
    with np.errstate(all="ignore"):
        out.reshape(shape)[...] = values


def _erf(x):
    return np.vectorize(math.erf, otypes=[x.dtype])(x) if x.size else x


_UNARY = {
    "neg": np.negative, "abs": np.abs, "sign": np.sign, "exp": np.exp, "log": np.log, "log1p": np.log1p,
    "expm1": np.expm1, "sqrt": np.sqrt, "rsqrt": lambda x: 1 / np.sqrt(x), "sin": np.sin, "cos": np.cos,
    "tanh": np.tanh, "sigmoid": lambda x: 1 / (1 + np.exp(-x)), "relu": lambda x: np.where(x > 0, x, x * 0),
    "erf": _erf, "reciprocal": lambda x: 1 / x, "floor": np.floor, "ceil": np.ceil, "round": np.round,
    "trunc": np.trunc, "logical_not": np.logical_not,
}


def _int_pow(a, b):
    out = np.zeros(np.broadcast(a, b).shape, dtype=a.dtype)
    a, b = np.broadcast_arrays(a, b)
    pos = b >= 0
    out[pos] = np.power(a[pos], b[pos])
    neg = ~pos
    out[neg & (a == 1)] = 1
    out[neg & (a == -1)] = np.where(b[neg & (a == -1)] % 2 == 0, 1, -1)
    return out


_BINARY = {
    "add": np.add, "sub": np.subtract, "mul": np.multiply, "div": np.divide, "maximum": np.maximum,
    "minimum": np.minimum, "remainder": np.remainder, "eq": np.equal, "ne": np.not_equal, "lt": np.less,
    "le": np.less_equal, "gt": np.greater, "ge": np.greater_equal, "logical_and": np.logical_and,
    "logical_or": np.logical_or, "logical_xor": np.logical_xor,
}


def unary(op, out, out_dtype, x, xview, dtype):
    with np.errstate(all="ignore"):
        _store(out, xview.shape, _UNARY[op](_compute(x, xview, dtype)))


def binary(op, out, out_dtype, a, aview, b, bview, dtype):
    x, y = _compute(a, aview, dtype), _compute(b, bview, dtype)
    with np.errstate(all="ignore"):
        if op == "pow":
            r = _int_pow(x, y) if dtype.kind in "iu" else np.power(x, y)
        else:
            r = _BINARY[op](x, y)
    _store(out, aview.shape, r)


def where(out, dtype, cond, cview, a, aview, b, bview):
    _store(out, aview.shape, np.where(strided(cond, cview), strided(a, aview), strided(b, bview)))


def _arg(fn, x, axis):
    """argmax/argmin over the flattened trailing dims, NaN winning as in PyTorch."""
    flat = x.reshape(x.shape[:axis] + (math.prod(x.shape[axis:]),))
    nan = np.isnan(flat) if flat.dtype.kind == "f" else np.zeros(flat.shape, bool)
    idx = fn(flat, axis=-1)
    return np.where(nan.any(axis=-1), nan.argmax(axis=-1), idx)


def reduce(op, out, out_dtype, x, xview, dtype, n_reduce):
    v = _compute(x, xview, dtype)
    axes = tuple(range(v.ndim - n_reduce, v.ndim))
    keep = v.ndim - n_reduce
    if op == "sum":
        r = v.sum(axis=axes, dtype=np.float64 if dtype.kind == "f" else None)
    elif op == "prod":
        r = v.prod(axis=axes, dtype=np.float64 if dtype.kind == "f" else None)
    elif op in ("max", "min"):
        r = (np.max if op == "max" else np.min)(v, axis=axes) if n_reduce else v
    else:
        r = _arg(np.argmax if op == "argmax" else np.argmin, v, keep)
    _store(out, xview.shape[:keep], r)


def matmul(out, dtype, a, aview, b, bview):
    x, y = _compute(a, aview, dtype), _compute(b, bview, dtype)
    if dtype.kind == "f":
        r = np.matmul(x.astype(np.float64), y.astype(np.float64))
    else:
        r = np.matmul(x, y)
    _store(out, aview.shape[:-1] + bview.shape[-1:], r)


def copy(dst, dview, dst_dtype, src, sview, src_dtype):
    s = strided(src, sview)
    d = strided(dst, dview)
    if dst_dtype.kind in "iu" and src_dtype.kind == "f":
        s = np.trunc(s.astype(np.float64))
    with np.errstate(all="ignore"):
        d[...] = s.astype(np.float32).astype(dst_dtype.np) if src_dtype.bits == 16 and src_dtype.kind == "f" \
            and dst_dtype.kind == "f" and dst_dtype.bits == 16 else s.astype(dst_dtype.np)


def fill(dst, dview, dtype, value):
    strided(dst, dview)[...] = value


def gather(out, dtype, x, xview, dim, idx, iview):
    # the index may be smaller than x outside `dim` (as in PyTorch): gather from that corner of x
    corner = tuple(slice(None) if d == dim else slice(0, n) for d, n in enumerate(iview.shape))
    _store(out, iview.shape, np.take_along_axis(strided(x, xview)[corner], strided(idx, iview), axis=dim))


def _scatter_positions(iview_shape, dim, idx):
    grids = list(np.indices(iview_shape, sparse=False)) if len(iview_shape) else []
    grids[dim] = idx
    return tuple(grids)


def scatter_add(out, oview, dtype, dim, idx, iview, src, sview):
    o = strided(out, oview)
    acc = o.astype(np.float64) if dtype.kind == "f" else o.copy()
    np.add.at(acc, _scatter_positions(iview.shape, dim, strided(idx, iview)), strided(src, sview))
    o[...] = acc.astype(o.dtype)


def index_select(out, dtype, x, xview, dim, idx, iview):
    shape = list(xview.shape)
    shape[dim] = iview.shape[0]
    _store(out, tuple(shape), np.take(strided(x, xview), strided(idx, iview), axis=dim))


def index_add(out, oview, dtype, dim, idx, iview, src, sview):
    o = strided(out, oview)
    acc = o.astype(np.float64) if dtype.kind == "f" else o.copy()
    key = (slice(None),) * dim + (strided(idx, iview),)
    np.add.at(acc, key, strided(src, sview))
    o[...] = acc.astype(o.dtype)
