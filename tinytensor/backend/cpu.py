"""The CPU backend: storage is a flat NumPy array, every compute primitive runs in the C++
extension tinytensor._C (built from ops_c/). There is no fallback: if the extension is missing,
importing tinytensor fails with the command that builds it.
"""
from __future__ import annotations

from . import base
from .host import empty, from_numpy, to_numpy  # noqa: F401  (the storage primitives)

try:
    from .. import _C
except ImportError as e:  # pragma: no cover - only on a broken install
    raise ImportError("tinytensor._C (the compiled ops_c kernels) is missing: run `pip install -e .` "
                      f"in the repository to build it ({e})") from e

for _name, _ops in (("UNARY_OPS", base.UNARY_OPS), ("BINARY_OPS", base.BINARY_OPS),
                    ("REDUCE_OPS", base.REDUCE_OPS)):
    if tuple(getattr(_C, _name)) != _ops:
        raise ImportError(f"tinytensor._C.{_name} does not match backend/base.py: rebuild with `pip install -e .`")
_UNARY = {n: i for i, n in enumerate(base.UNARY_OPS)}
_BINARY = {n: i for i, n in enumerate(base.BINARY_OPS)}
_REDUCE = {n: i for i, n in enumerate(base.REDUCE_OPS)}


def unary(op, out, out_dtype, x, xview, dtype):
    _C.unary(_UNARY[op], out, out_dtype.code, x, dtype.code, xview.shape, xview.strides, xview.offset)


def binary(op, out, out_dtype, a, aview, b, bview, dtype):
    _C.binary(_BINARY[op], out, out_dtype.code, a, dtype.code, aview.strides, aview.offset,
              b, dtype.code, bview.strides, bview.offset, aview.shape)


def where(out, dtype, cond, cview, a, aview, b, bview):
    _C.where(out, dtype.code, cond, cview.strides, cview.offset, a, aview.strides, aview.offset,
             b, bview.strides, bview.offset, aview.shape)


def reduce(op, out, out_dtype, x, xview, dtype, n_reduce):
    _C.reduce(_REDUCE[op], out, out_dtype.code, x, dtype.code, xview.shape, xview.strides, xview.offset, n_reduce)


def matmul(out, dtype, a, aview, b, bview):
    *batch, m, k = aview.shape
    _C.matmul(out, dtype.code, a, aview.strides, aview.offset, b, bview.strides, bview.offset,
              batch, m, bview.shape[-1], k)


def copy(dst, dview, dst_dtype, src, sview, src_dtype):
    _C.copy(dst, dst_dtype.code, dview.strides, dview.offset, src, src_dtype.code, sview.strides, sview.offset,
            dview.shape)


def fill(dst, dview, dtype, value):
    _C.fill(dst, dtype.code, dview.strides, dview.offset, dview.shape, value)


def gather(out, dtype, x, xview, dim, idx, iview):
    _C.gather(out, dtype.code, x, xview.shape, xview.strides, xview.offset, dim,
              idx, iview.shape, iview.strides, iview.offset)


def scatter_add(out, oview, dtype, dim, idx, iview, src, sview):
    _C.scatter_add(out, dtype.code, oview.shape, oview.strides, oview.offset, dim,
                   idx, iview.shape, iview.strides, iview.offset, src, sview.strides, sview.offset)


def index_select(out, dtype, x, xview, dim, idx, iview):
    _C.index_select(out, dtype.code, x, xview.shape, xview.strides, xview.offset, dim,
                    idx, iview.shape[0], iview.strides[0], iview.offset)


def index_add(out, oview, dtype, dim, idx, iview, src, sview):
    _C.index_add(out, dtype.code, oview.shape, oview.strides, oview.offset, dim,
                 idx, iview.shape[0], iview.strides[0], iview.offset, src, sview.strides, sview.offset)


set_num_threads = _C.set_num_threads
get_num_threads = _C.get_num_threads


# ---- fused speed paths (base.FUSED): the arrays go straight through, dtype objects become codes --

def softmax(out, dtype, x, rows, n, log):
    _C.softmax(out, dtype.code, x, rows, n, log)


def softmax_backward(gx, dtype, y, gy, rows, n, log):
    _C.softmax_backward(gx, dtype.code, y, gy, rows, n, log)


def cross_entropy(loss, dlogits, dtype, logits, target, rows, n, ignore_index, label_smoothing, grad_scale):
    _C.cross_entropy(loss, dlogits, dtype.code, logits, target, rows, n, ignore_index, label_smoothing, grad_scale)


def layer_norm(out, mean, rstd, dtype, x, weight, bias, rows, n, eps):
    _C.layer_norm(out, mean, rstd, dtype.code, x, weight, bias, rows, n, eps)


def layer_norm_backward(gx, gweight, gbias, dtype, gy, x, mean, rstd, weight, rows, n):
    _C.layer_norm_backward(gx, gweight, gbias, dtype.code, gy, x, mean, rstd, weight, rows, n)


def rms_norm(out, rstd, dtype, x, weight, rows, n, eps):
    _C.rms_norm(out, rstd, dtype.code, x, weight, rows, n, eps)


def rms_norm_backward(gx, gweight, dtype, gy, x, rstd, weight, rows, n):
    _C.rms_norm_backward(gx, gweight, dtype.code, gy, x, rstd, weight, rows, n)


def gelu(out, dtype, x, n, tanh):
    _C.gelu(out, dtype.code, x, n, tanh)


def gelu_backward(gx, dtype, gy, x, n, tanh):
    _C.gelu_backward(gx, dtype.code, gy, x, n, tanh)


def attention(out, lse, dtype, q, k, v, bh, t, s, d, scale, causal):
    _C.attention(out, lse, dtype.code, q, k, v, bh, t, s, d, scale, causal)


def attention_backward(gq, gk, gv, dtype, go, q, k, v, out, lse, bh, t, s, d, scale, causal):
    _C.attention_backward(gq, gk, gv, dtype.code, go, q, k, v, out, lse, bh, t, s, d, scale, causal)


def decode_attention(out, dtype, q, k, v, start, batch, nh, nkv, t, s, d, k_strides, v_strides, scale):
    _C.decode_attention(out, dtype.code, q, k, v, start, batch, nh, nkv, t, s, d, tuple(k_strides), tuple(v_strides),
                        scale)


def adamw(params, grads, exp_avgs, exp_avg_sqs, dtype, lr, beta1, beta2, eps, weight_decay, step):
    _C.adamw(params, grads, exp_avgs, exp_avg_sqs, dtype.code, lr, beta1, beta2, eps, weight_decay, step)
