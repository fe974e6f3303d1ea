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
    "logical_or": np.logical_or, "logical_xor": np.logical_xor, "floor_divide": np.floor_divide,
}


def _float_to_int(v: np.ndarray, dst: DType) -> np.ndarray:
    """Float -> integer as ops_c/dtypes.h float_to_int: truncate into int64 (int64) or int32 (narrower
    types, then keep the low bits); NaN, inf and out-of-range values give that type's minimum."""
    bits = 64 if dst.bits == 64 else 32
    lo, hi = -2.0 ** (bits - 1), 2.0 ** (bits - 1)
    v = v.astype(np.float64)
    ok = (v >= lo) & (v < hi) if bits == 64 else (v > lo - 1) & (v < hi)
    i = np.where(ok, np.trunc(np.where(ok, v, 0.0)), lo).astype(np.int64)
    return (i if bits == 64 else i.astype(np.int32)).astype(dst.np)


def unary(op, out, out_dtype, x, xview, dtype):
    with np.errstate(all="ignore"):
        _store(out, xview.shape, _UNARY[op](_compute(x, xview, dtype)))


def binary(op, out, out_dtype, a, aview, b, bview, dtype):
    x, y = _compute(a, aview, dtype), _compute(b, bview, dtype)
    if op in ("remainder", "floor_divide") and dtype.kind in "iub" and not np.all(y):
        raise RuntimeError(f"{op}: integer division by zero (ZeroDivisionError)")
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
        d[...] = _float_to_int(s, dst_dtype)
        return
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


# ---- fused speed paths (base.FUSED), written as the plain math in float64 -------------------

def _rows(a, rows, n):
    return a[:rows * n].astype(np.float64).reshape(rows, n)


def _put(out, values):
    with np.errstate(all="ignore"):
        out[:values.size] = values.reshape(-1)


def _log_softmax(x):
    m = x.max(axis=-1, keepdims=True)
    m = np.where(np.isfinite(m), m, 0)
    return x - m - np.log(np.exp(x - m).sum(axis=-1, keepdims=True))


def softmax(out, dtype, x, rows, n, log):
    ls = _log_softmax(_rows(x, rows, n))
    _put(out, ls if log else np.exp(ls))


def softmax_backward(gx, dtype, y, gy, rows, n, log):
    y, gy = _rows(y, rows, n), _rows(gy, rows, n)
    if log:
        _put(gx, gy - np.exp(y) * gy.sum(axis=-1, keepdims=True))
    else:
        _put(gx, y * (gy - (gy * y).sum(axis=-1, keepdims=True)))


def cross_entropy(loss, dlogits, dtype, logits, target, rows, n, ignore_index, label_smoothing, grad_scale):
    ls = _log_softmax(_rows(logits, rows, n))
    t = target[:rows]
    keep = t != ignore_index
    onehot = np.zeros((rows, n))
    onehot[np.arange(rows)[keep], t[keep]] = 1
    q = (1 - label_smoothing) * onehot + label_smoothing / n   # the smoothed target distribution
    _put(loss, np.where(keep, -(q * ls).sum(axis=-1), 0))
    if dlogits is not None:
        _put(dlogits, np.where(keep[:, None], (np.exp(ls) - q) * grad_scale, 0))


def layer_norm(out, mean, rstd, dtype, x, weight, bias, rows, n, eps):
    x = _rows(x, rows, n)
    mu = x.mean(axis=-1, keepdims=True)
    r = 1 / np.sqrt(((x - mu) ** 2).mean(axis=-1, keepdims=True) + eps)
    y = (x - mu) * r
    y = y if weight is None else y * weight[:n].astype(np.float64)
    _put(out, y if bias is None else y + bias[:n].astype(np.float64))
    _put(mean, mu)
    _put(rstd, r)


def layer_norm_backward(gx, gweight, gbias, dtype, gy, x, mean, rstd, weight, rows, n):
    gy, x = _rows(gy, rows, n), _rows(x, rows, n)
    xhat = (x - _rows(mean, rows, 1)) * _rows(rstd, rows, 1)
    g = gy if weight is None else gy * weight[:n].astype(np.float64)
    _put(gx, _rows(rstd, rows, 1) * (g - g.mean(axis=-1, keepdims=True)
                                     - xhat * (g * xhat).mean(axis=-1, keepdims=True)))
    if gweight is not None:
        _put(gweight, (gy * xhat).sum(axis=0))
    if gbias is not None:
        _put(gbias, gy.sum(axis=0))


def rms_norm(out, rstd, dtype, x, weight, rows, n, eps):
    x = _rows(x, rows, n)
    r = 1 / np.sqrt((x * x).mean(axis=-1, keepdims=True) + eps)
    _put(out, x * r if weight is None else x * r * weight[:n].astype(np.float64))
    _put(rstd, r)


def rms_norm_backward(gx, gweight, dtype, gy, x, rstd, weight, rows, n):
    gy, x, r = _rows(gy, rows, n), _rows(x, rows, n), _rows(rstd, rows, 1)
    g = gy if weight is None else gy * weight[:n].astype(np.float64)
    _put(gx, r * g - x * r ** 3 * (g * x).mean(axis=-1, keepdims=True))
    if gweight is not None:
        _put(gweight, (gy * x * r).sum(axis=0))


_GELU_C = math.sqrt(2 / math.pi)


def _gelu_parts(x, tanh):
    """GELU(x) = x * cdf(x) and its derivative, for the exact or the tanh form."""
    if tanh:
        u = _GELU_C * (x + 0.044715 * x ** 3)
        th = np.tanh(u)
        cdf = 0.5 * (1 + th)
        return x * cdf, cdf + 0.5 * x * (1 - th ** 2) * _GELU_C * (1 + 3 * 0.044715 * x ** 2)
    cdf = 0.5 * (1 + _erf(x / math.sqrt(2)))
    return x * cdf, cdf + x * np.exp(-0.5 * x * x) / math.sqrt(2 * math.pi)


def gelu(out, dtype, x, n, tanh):
    _put(out, _gelu_parts(x[:n].astype(np.float64), tanh)[0])


def gelu_backward(gx, dtype, gy, x, n, tanh):
    _put(gx, gy[:n].astype(np.float64) * _gelu_parts(x[:n].astype(np.float64), tanh)[1])


def _attention_probs(q, k, t, s, scale, causal):
    scores = q @ k.transpose(0, 2, 1) * scale                     # (bh, t, s)
    if causal:
        scores = np.where(np.tril(np.ones((t, s), bool)), scores, -np.inf)
    lse = np.logaddexp.reduce(scores, axis=-1, keepdims=True)
    return np.exp(scores - lse), lse


def attention(out, lse, dtype, q, k, v, bh, t, s, d, scale, causal):
    q, k, v = (a[:bh * m * d].astype(np.float64).reshape(bh, m, d) for a, m in ((q, t), (k, s), (v, s)))
    p, lse_ = _attention_probs(q, k, t, s, scale, causal)
    _put(out, p @ v)
    _put(lse, lse_)


def attention_backward(gq, gk, gv, dtype, go, q, k, v, out, lse, bh, t, s, d, scale, causal):
    q, k, v, go, o = (a[:bh * m * d].astype(np.float64).reshape(bh, m, d)
                      for a, m in ((q, t), (k, s), (v, s), (go, t), (out, t)))
    p, _ = _attention_probs(q, k, t, s, scale, causal)
    dp = go @ v.transpose(0, 2, 1)
    ds = p * (dp - (go * o).sum(axis=-1, keepdims=True))
    _put(gq, ds @ k * scale)
    _put(gk, ds.transpose(0, 2, 1) @ q * scale)
    _put(gv, p.transpose(0, 2, 1) @ go)


def _cache_rows(a, strides, shape):
    """A (batch, heads, rows, d) float64 copy of a cache buffer read at (batch, head, row) element strides."""
    item = a.itemsize
    view = np.lib.stride_tricks.as_strided(a, shape=shape, strides=tuple(x * item for x in strides) + (item,))
    return view.astype(np.float64)


def decode_attention(out, dtype, q, k, v, start, batch, nh, nkv, t, s, d, k_strides, v_strides, scale):
    q = q[:batch * nh * t * d].astype(np.float64).reshape(batch, nh, t, d)
    k, v = (np.repeat(_cache_rows(a, st, (batch, nkv, s, d)), nh // nkv, axis=1)
            for a, st in ((k, k_strides), (v, v_strides)))  # (batch, nh, s, d): head h reads h // (nh // nkv)
    lo = np.zeros(batch, np.int64) if start is None else np.maximum(start[:batch], 0)
    j = np.arange(s)
    keep = (j <= (s - t + np.arange(t))[:, None])[None, None] & (j >= lo[:, None, None, None])  # (batch, 1, t, s)
    scores = np.where(keep, q @ k.transpose(0, 1, 3, 2) * scale, -np.inf)
    m = scores.max(axis=-1, keepdims=True)
    e = np.exp(scores - np.where(np.isfinite(m), m, 0))
    den = e.sum(axis=-1, keepdims=True)
    _put(out, (e / np.where(den == 0, 1, den)) @ v)


def adamw(params, grads, exp_avgs, exp_avg_sqs, dtype, lr, beta1, beta2, eps, weight_decay, step):
    for p, g, m, v in zip(params, grads, exp_avgs, exp_avg_sqs):
        g64 = g.astype(np.float64)
        m64 = beta1 * m.astype(np.float64) + (1 - beta1) * g64
        v64 = beta2 * v.astype(np.float64) + (1 - beta2) * g64 * g64
        p64 = p.astype(np.float64) * (1 - lr * weight_decay)
        denom = np.sqrt(v64 / (1 - beta2 ** step)) + eps
        _put(p, p64 - lr / (1 - beta1 ** step) * m64 / denom)
        _put(m, m64)
        _put(v, v64)
