"""Fused speed paths (chapter 08): Functions whose forward and backward are one backend kernel each.

Softmax and log-softmax, cross-entropy, layer norm, RMS norm, GELU and causal attention each
replace a chain of five to ten primitives (and as many full-size temporaries) with one pass over
memory; `adamw_` updates every parameter of an optimizer in one kernel call. Each is the equal of a
composite written with Tensor ops, and the tests compare the two. tensor.py, nn.functional and
optim use them when `enabled()` and the inputs fit (a floating dtype, the op over the last dim,
no option the kernel lacks); inside `with disabled():` the composites run instead.
Left out: fused paths for other dims (the callers fall back), dropout inside attention.
"""
from __future__ import annotations

import contextlib
import threading

from .autograd import Function, is_grad_enabled
from .dtype import float32, float64


class _State(threading.local):
    enabled = True  # per thread


_state = _State()


def enabled() -> bool:
    return _state.enabled


@contextlib.contextmanager
def disabled():
    """Run the composites instead of the fused kernels inside this block (for tests and timing)."""
    prev = enabled()
    _state.enabled = False
    try:
        yield
    finally:
        _state.enabled = prev


def fits(*tensors) -> bool:
    """True when the fused kernels may run: enabled, non-empty tensors of one floating dtype and device."""
    if not enabled():
        return False
    first = tensors[0]
    dtype, device = first.dtype, first._buf.device
    if not (dtype.is_floating_point and dtype.bits >= 16):
        return False
    for t in tensors:  # a plain loop: this runs for every fused op
        if t is not None and (t.dtype != dtype or t._buf.device != device or t._view.numel == 0):
            return False
    return True


def _flat(t):
    """The storage of t (made contiguous if needed) as a flat backend array starting at its first element."""
    if t is None:
        return None
    if not t._view.is_contiguous():
        t = t.detach().contiguous()
    off = t._view.offset
    return t._buf.data[off:off + t.numel()]


def _stats(x, shape):
    """A tensor for per-row statistics: float64 for float64 inputs, float32 otherwise."""
    return x._new_empty(shape, float64 if x.dtype == float64 else float32)


def _rows(x):
    n = x.shape[-1]
    return x.numel() // n, n


class Linear(Function):
    """input @ weight.T + bias: one matmul over every leading dim at once (then one add for the bias).

    The composite (reshape, transpose, broadcast checks, matmul, reshape, add) computes the same; this path
    saves its Python steps, which dominate a decode step of a small model (chapter 12)."""

    def forward(self, x, weight, bias):
        n_out, n_in = weight.shape
        rows = x.numel() // n_in
        xview = x._view.reshape((rows, n_in))
        if xview is None:  # no (rows, n_in) view of these strides: copy once
            x = x.detach().contiguous()
            xview = x._view.reshape((rows, n_in))
        out = x._new_empty(x.shape[:-1] + (n_out,))
        be = x._buf.backend
        be.matmul(out._buf.data, x.dtype, x._buf.data, xview, weight._buf.data, weight._view.permute((1, 0)))
        if bias is not None:
            flat = out._view.reshape((rows, n_out))
            be.binary("add", out._buf.data, out.dtype, out._buf.data, flat, bias._buf.data,
                      bias._view.expand((rows, n_out)), out.dtype)
        self.has_bias = bias is not None
        self.save_for_backward(x, weight)
        return out

    def backward(self, g):
        x, weight = self.saved_tensors
        n_out, n_in = weight.shape
        g2 = g.reshape(-1, n_out)
        gx = g2.matmul(weight).reshape(x.shape)
        gw = g2.t().matmul(x.reshape(-1, n_in))
        return (gx, gw, g2.sum(0)) if self.has_bias else (gx, gw)


class Softmax(Function):
    """softmax (log=False) or log_softmax over the last dim."""

    def forward(self, x, log: bool):
        out = x._new_empty(x.shape)
        x._buf.backend.softmax(_flat(out), x.dtype, _flat(x), *_rows(x), log)
        self.log = log
        self.save_for_backward(out)
        return out

    def backward(self, g):
        (y,) = self.saved_tensors
        gx = y._new_empty(y.shape)
        y._buf.backend.softmax_backward(_flat(gx), y.dtype, _flat(y), _flat(g), *_rows(y), self.log)
        return gx


class CrossEntropy(Function):
    """Cross-entropy of (M, C) logits against int64 targets (M,), reduced ('mean', 'sum') or per row ('none').

    The kernel writes the gradient in the same pass as the loss, already divided by the count for a
    mean, so the usual loss.backward() finds it ready.
    """

    def forward(self, x, target, ignore_index: int, smoothing: float, reduction: str, count: int):
        """count: the divisor of a mean (the targets that are not ignore_index); 1 for the other reductions."""
        rows, n = _rows(x)
        loss = x._new_empty((rows,))
        dlogits = x._new_empty(x.shape) if x.requires_grad and is_grad_enabled() else None
        x._buf.backend.cross_entropy(_flat(loss), _flat(dlogits), x.dtype, _flat(x), _flat(target), rows, n,
                                     ignore_index, smoothing, 1.0 / count if count else 0.0)
        self.reduced = reduction != "none"
        self.save_for_backward(dlogits)
        if reduction == "none":
            return loss
        return loss.sum() / count if reduction == "mean" else loss.sum()   # 0 / 0 = nan, as PyTorch

    def backward(self, g):
        (dlogits,) = self.saved_tensors
        if not self.reduced:
            return dlogits * g.unsqueeze(1), None
        return (dlogits if g.item() == 1.0 else dlogits * g), None


class LayerNorm(Function):
    """(x - mean) / sqrt(var + eps) * weight + bias over the last dim; weight and bias may be None."""

    def forward(self, x, weight, bias, eps: float):
        rows, n = _rows(x)
        out, mean, rstd = x._new_empty(x.shape), _stats(x, (rows,)), _stats(x, (rows,))
        x._buf.backend.layer_norm(_flat(out), _flat(mean), _flat(rstd), x.dtype, _flat(x), _flat(weight), _flat(bias),
                                  rows, n, eps)
        self.has = (weight is not None, bias is not None)
        self.save_for_backward(x, weight, mean, rstd)
        return out

    def backward(self, g):
        x, weight, mean, rstd = self.saved_tensors
        gx = x._new_empty(x.shape)
        gw = x._new_empty(x.shape[-1:]) if self.has[0] else None
        gb = x._new_empty(x.shape[-1:]) if self.has[1] else None
        x._buf.backend.layer_norm_backward(_flat(gx), _flat(gw), _flat(gb), x.dtype, _flat(g), _flat(x), _flat(mean),
                                           _flat(rstd), _flat(weight), *_rows(x))
        return tuple(t for t, keep in ((gx, True), (gw, self.has[0]), (gb, self.has[1])) if keep)


class RMSNorm(Function):
    """x / sqrt(mean(x^2) + eps) * weight over the last dim; weight may be None."""

    def forward(self, x, weight, eps: float):
        rows, n = _rows(x)
        out, rstd = x._new_empty(x.shape), _stats(x, (rows,))
        x._buf.backend.rms_norm(_flat(out), _flat(rstd), x.dtype, _flat(x), _flat(weight), rows, n, eps)
        self.has_weight = weight is not None
        self.save_for_backward(x, weight, rstd)
        return out

    def backward(self, g):
        x, weight, rstd = self.saved_tensors
        gx = x._new_empty(x.shape)
        gw = x._new_empty(x.shape[-1:]) if self.has_weight else None
        x._buf.backend.rms_norm_backward(_flat(gx), _flat(gw), x.dtype, _flat(g), _flat(x), _flat(rstd), _flat(weight),
                                         *_rows(x))
        return (gx, gw) if self.has_weight else gx


class GELU(Function):
    """x * Phi(x), exact (erf) or with GPT-2's tanh approximation."""

    def forward(self, x, tanh: bool):
        out = x._new_empty(x.shape)
        x._buf.backend.gelu(_flat(out), x.dtype, _flat(x), x.numel(), tanh)
        self.tanh = tanh
        self.save_for_backward(x)
        return out

    def backward(self, g):
        (x,) = self.saved_tensors
        gx = x._new_empty(x.shape)
        x._buf.backend.gelu_backward(_flat(gx), x.dtype, _flat(g), _flat(x), x.numel(), self.tanh)
        return gx


class Attention(Function):
    """softmax(q k^T * scale) v for q (..., T, D), k and v (..., S, D), optionally causal (top-left)."""

    def forward(self, q, k, v, scale: float, causal: bool):
        *lead, t, d = q.shape
        s = k.shape[-2]
        bh = q.numel() // (t * d)
        out, lse = q._new_empty(q.shape), _stats(q, (bh, t))
        q._buf.backend.attention(_flat(out), _flat(lse), q.dtype, _flat(q), _flat(k), _flat(v), bh, t, s, d, scale,
                                 causal)
        self.args = (bh, t, s, d, scale, causal)
        self.save_for_backward(q, k, v, out, lse)
        return out

    def backward(self, g):
        q, k, v, out, lse = self.saved_tensors
        gq, gk, gv = q._new_empty(q.shape), k._new_empty(k.shape), v._new_empty(v.shape)
        q._buf.backend.attention_backward(_flat(gq), _flat(gk), _flat(gv), q.dtype, _flat(g), _flat(q), _flat(k),
                                          _flat(v), _flat(out), _flat(lse), *self.args)
        return gq, gk, gv


def _in_place(t):
    """(flat backend array from t's first element, its (batch, head, row) strides): a 4-d operand read in place.

    The kernel needs the last dim contiguous and no negative stride; anything else is copied first."""
    if t.stride(-1) != 1 or min(t.stride()) < 0:
        t = t.detach().contiguous()
    off = t._view.offset
    span = sum((n - 1) * st for n, st in zip(t.shape, t.stride())) + 1
    return t._buf.data[off:off + span], t.stride()[:3]


class DecodeAttention(Function):
    """Attention of q's t newest positions to the cached k, v (chapter 12's kv-cache); forward only."""

    def forward(self, q, k, v, start, scale: float):
        B, nh, t, d = q.shape
        out = q._new_empty(q.shape)
        (kd, ks), (vd, vs) = _in_place(k), _in_place(v)
        q._buf.backend.decode_attention(_flat(out), q.dtype, _flat(q), kd, vd, _flat(start), B, nh, k.shape[1], t,
                                        k.shape[2], d, ks, vs, scale)
        return out

    def backward(self, g):
        raise RuntimeError("decode_attention: the fused kv-cache kernel has no backward; call it with gradients "
                           "off (tt.no_grad()) or through F.decode_attention, which then runs the math path")


def adamw_(params, grads, exp_avgs, exp_avg_sqs, lr: float, beta1: float, beta2: float, eps: float,
           weight_decay: float, step: int) -> None:
    """One AdamW step in place over contiguous tensors of one dtype and device (no graph, no checks)."""
    p0 = params[0]
    p0._buf.backend.adamw([_flat(p) for p in params], [_flat(g) for g in grads], [_flat(m) for m in exp_avgs],
                          [_flat(v) for v in exp_avg_sqs], p0.dtype, lr, beta1, beta2, eps, weight_decay, step)
    for t in (*params, *exp_avgs, *exp_avg_sqs):
        t._buf.version += 1
