"""tinytensor.nn.functional: activations, layers, norms, losses and attention as composites of Tensor ops.

Names and arguments follow torch.nn.functional. Where a fused kernel fits (tinytensor/fused.py:
GELU, layer and RMS norm over the last dim, cross-entropy with class-index targets, attention without
a mask or dropout), it runs instead of the composite written here; `tinytensor.fused.disabled()`
selects the composite. The softmax inside masked attention is one Function of its own (all-masked
rows give zeros, as PyTorch).
Left out: max_norm/scale_grad_by_freq/sparse in embedding, `inplace=` (always out of place),
the legacy `size_average`/`reduce` arguments. cross_entropy and the norms compute 16-bit inputs in float32.
"""
from __future__ import annotations

import math

from typing import Optional, Sequence, Union

import ml_dtypes

from .. import fused
from ..autograd import Function, is_grad_enabled, no_grad
from ..dtype import bfloat16, float16, float32, int64
from ..creation import arange, rand
from ..tensor import Tensor, where


def relu(x: Tensor) -> Tensor:
    return x.relu()


def sigmoid(x: Tensor) -> Tensor:
    return x.sigmoid()


def tanh(x: Tensor) -> Tensor:
    return x.tanh()


def gelu(x: Tensor, approximate: str = "none") -> Tensor:
    """GELU: exact x * Phi(x) with erf, or GPT-2's tanh approximation (approximate='tanh')."""
    if approximate in ("none", "tanh") and fused.fits(x):
        return fused.GELU.apply(x, approximate == "tanh")
    if approximate == "tanh":
        return 0.5 * x * (1 + (math.sqrt(2 / math.pi) * (x + 0.044715 * x * x * x)).tanh())
    if approximate != "none":
        raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")
    return 0.5 * x * (1 + (x * (1 / math.sqrt(2))).erf())


def silu(x: Tensor) -> Tensor:
    return x * x.sigmoid()


def softmax(x: Tensor, dim: int) -> Tensor:
    return x.softmax(dim)


def log_softmax(x: Tensor, dim: int) -> Tensor:
    return x.log_softmax(dim)


def one_hot(tensor: Tensor, num_classes: int = -1) -> Tensor:
    """int64 one-hot encoding along a new last dim (num_classes=-1: max + 1)."""
    if tensor.dtype.kind not in "iu":
        raise TypeError(f"one_hot: expected an integer tensor, got {tensor.dtype}")
    if num_classes < 0:
        num_classes = tensor.amax().item() + 1 if tensor.numel() else 0
    if tensor.numel() and (tensor.amin().item() < 0 or tensor.amax().item() >= num_classes):
        raise ValueError(f"one_hot: class values must be in [0, {num_classes})")
    classes = arange(num_classes, device=tensor.device)
    return (tensor.unsqueeze(-1) == classes).to(int64)


# ---- layers -------------------------------------------------------------------------------------

def linear(input: Tensor, weight: Tensor, bias: Optional[Tensor] = None) -> Tensor:
    """input @ weight.T + bias, with weight of shape (out_features, in_features)."""
    if (weight.ndim == 2 and input.ndim >= 1 and input.shape[-1] == weight.shape[1] and weight.shape[1] > 0
            and (bias is None or bias.shape == weight.shape[:1]) and fused.fits(input, weight, bias)):
        return fused.Linear.apply(input, weight, bias)
    if input.ndim > 2:  # one (N, in) @ (in, out) matmul rather than a batch of them over an expanded weight
        out = input.reshape(-1, input.shape[-1]).matmul(weight.t())
        out = out.reshape(tuple(input.shape[:-1]) + (weight.shape[0],))
        return out if bias is None else out + bias
    out = input.matmul(weight.t())
    return out if bias is None else out + bias


def dropout(input: Tensor, p: float = 0.5, training: bool = True, inplace: bool = False, generator=None) -> Tensor:
    """Zero each element with probability p and scale the rest by 1/(1-p); the identity when not training."""
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout: probability has to be between 0 and 1, but got {p}")
    if not training or p == 0.0:
        return input
    if p == 1.0:
        return input * 0.0
    keep = rand(input.shape, generator=generator, device=input.device) >= p  # the mask draws from tt's generator
    return input * keep * (1.0 / (1.0 - p))


def embedding(input: Tensor, weight: Tensor, padding_idx: Optional[int] = None) -> Tensor:
    """Rows of weight (num_embeddings, dim) picked by the integer tensor input: shape input.shape + (dim,).

    Positions equal to padding_idx pass no gradient to their row, as in PyTorch.
    """
    if not isinstance(input, Tensor) or input.dtype.kind not in "iu":
        raise TypeError(f"embedding: expected an integer index tensor, got {getattr(input, 'dtype', type(input))}")
    out = weight.index_select(0, input.reshape(-1)).reshape(tuple(input.shape) + (weight.shape[1],))
    if padding_idx is not None:
        pad = (input == padding_idx % weight.shape[0]).unsqueeze(-1)
        out = where(pad, out.detach(), out)
    return out


def _norm_dims(input: Tensor, normalized_shape, op: str):
    shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
    if not shape or tuple(input.shape[-len(shape):]) != shape or input.ndim < len(shape):
        raise ValueError(f"{op}: input of shape {tuple(input.shape)} does not end with normalized_shape {shape}")
    return tuple(range(-len(shape), 0))


def _upcast(x: Tensor):
    """16-bit floats are normalised in float32 (as PyTorch's kernels do) and cast back."""
    return (x.to(float32), x.dtype) if x.dtype in (float16, bfloat16) else (x, None)


def layer_norm(input: Tensor, normalized_shape: Union[int, Sequence[int]], weight: Optional[Tensor] = None,
               bias: Optional[Tensor] = None, eps: float = 1e-5) -> Tensor:
    """(x - mean) / sqrt(var + eps) * weight + bias over the trailing normalized_shape dims (biased var)."""
    dims = _norm_dims(input, normalized_shape, "layer_norm")
    if len(dims) == 1 and fused.fits(input, weight, bias):
        return fused.LayerNorm.apply(input, weight, bias, eps)
    x, orig = _upcast(input)
    xc = x - x.mean(dims, keepdim=True)
    out = xc * ((xc * xc).mean(dims, keepdim=True) + eps).rsqrt()
    out = out if orig is None else out.to(orig)
    if weight is not None:
        out = out * weight
    return out if bias is None else out + bias


def rms_norm(input: Tensor, normalized_shape: Union[int, Sequence[int]], weight: Optional[Tensor] = None,
             eps: Optional[float] = None) -> Tensor:
    """x / sqrt(mean(x^2) + eps) * weight over the trailing dims; eps defaults to the dtype's machine epsilon."""
    dims = _norm_dims(input, normalized_shape, "rms_norm")
    eps = float(ml_dtypes.finfo(input.dtype.np).eps) if eps is None else eps
    if len(dims) == 1 and fused.fits(input, weight):
        return fused.RMSNorm.apply(input, weight, eps)
    x, orig = _upcast(input)
    out = x * ((x * x).mean(dims, keepdim=True) + eps).rsqrt()
    out = out if orig is None else out.to(orig)
    return out if weight is None else out * weight


# ---- losses ---------------------------------------------------------------------------------------

def _reduce(loss: Tensor, reduction: str, op: str) -> Tensor:
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    if reduction == "none":
        return loss
    raise ValueError(f"{op}: reduction must be 'mean', 'sum' or 'none', got {reduction!r}")


def _check_targets(input: Tensor, target: Tensor, op: str):
    """Unbatched (C,) input gains a batch dim; target must be (N, d1, ...) of an integer type."""
    if not isinstance(target, Tensor) or target.dtype.kind not in "iu":
        got = getattr(target, "dtype", type(target))
        raise TypeError(f"{op}: expected class-index targets of an integer type, got {got}")
    if input.ndim == 1:
        input, target = input.unsqueeze(0), target.reshape(1)
    expected = (input.shape[0],) + tuple(input.shape[2:])
    if input.ndim < 2 or tuple(target.shape) != expected:
        raise ValueError(f"{op}: input of shape {tuple(input.shape)} needs a target of shape {expected}, "
                         f"got {tuple(target.shape)}")
    return input, target


def _class_weights(weight: Optional[Tensor], target: Tensor, valid: Tensor, dtype) -> Tensor:
    """Per-position weight: weight[target] where valid, else 0 (valid as a float mask without weight)."""
    if weight is None:
        return valid.to(dtype)
    return weight.index_select(0, target.reshape(-1)).reshape(target.shape).to(dtype) * valid


def nll_loss(input: Tensor, target: Tensor, weight: Optional[Tensor] = None, ignore_index: int = -100,
             reduction: str = "mean") -> Tensor:
    """-input[n, target[n]] (times weight[target]) from log-probabilities of shape (N, C) or (N, C, d1, ...).

    Targets equal to ignore_index count for nothing; 'mean' divides by the total weight of the others.
    """
    unbatched = input.ndim == 1
    input, target = _check_targets(input, target, "nll_loss")
    valid = target != ignore_index
    safe = target.masked_fill(valid.logical_not(), 0)
    w = _class_weights(weight, safe, valid, input.dtype)
    losses = -input.gather(1, safe.unsqueeze(1)).squeeze(1) * w
    if reduction == "mean":
        return losses.sum() / w.sum()
    out = _reduce(losses, reduction, "nll_loss")
    return out.squeeze(0) if unbatched and reduction == "none" else out


def cross_entropy(input: Tensor, target: Tensor, weight: Optional[Tensor] = None, ignore_index: int = -100,
                  reduction: str = "mean", label_smoothing: float = 0.0) -> Tensor:
    """Cross-entropy from logits of shape (N, C) or (N, C, d1, ...) (or unbatched (C,)), as PyTorch's.

    target is either class indices (N, d1, ...) (ignore_index honoured) or class probabilities of the
    input's shape. label_smoothing mixes the target with the uniform distribution. Numerically stable:
    the max logit is subtracted before exp.
    """
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"cross_entropy: label_smoothing must be between 0.0 and 1.0, got {label_smoothing}")
    if reduction not in ("mean", "sum", "none"):
        raise ValueError(f"cross_entropy: reduction must be 'mean', 'sum' or 'none', got {reduction!r}")
    x, orig = _upcast(input)
    if target.dtype.is_floating_point:
        out = _cross_entropy_probs(x, target, weight, reduction, label_smoothing)
    elif weight is None and fused.fits(x):
        out = _cross_entropy_fused(x, target, ignore_index, reduction, label_smoothing)
    else:
        out = _cross_entropy_composite(x, target, weight, ignore_index, reduction, label_smoothing)
    return out if orig is None else out.to(orig)


def _cross_entropy_fused(x, target, ignore_index, reduction, smoothing):
    unbatched = x.ndim == 1
    x, target = _check_targets(x, target, "cross_entropy")
    C = x.shape[1]
    x2 = x if x.ndim == 2 else x.permute((0,) + tuple(range(2, x.ndim)) + (1,)).reshape(-1, C)  # (N*d1*..., C)
    t = target.reshape(-1).to(int64)
    valid = t != ignore_index
    out_of_range = ((t < 0) | (t >= C)) & valid
    if t.numel() and out_of_range.any().item():  # the kernel trusts its targets
        raise IndexError(f"cross_entropy: target {t[out_of_range][0].item()} is out of bounds for {C} classes")
    count = valid.sum().item() if reduction == "mean" else 1
    loss = fused.CrossEntropy.apply(x2, t, ignore_index, smoothing, reduction, count)
    if reduction != "none":
        return loss
    return loss.squeeze(0) if unbatched else loss.reshape(tuple(target.shape))


def _cross_entropy_composite(x, target, weight, ignore_index, reduction, smoothing):
    """log_softmax + nll_loss, plus PyTorch's smoothing term: -sum_c weight[c] * logp[c] / C."""
    logp = x.log_softmax(0 if x.ndim == 1 else 1)
    nll = nll_loss(logp, target, weight, ignore_index, reduction)
    if not smoothing:
        return nll
    unbatched = logp.ndim == 1
    logp, target = _check_targets(logp, target, "cross_entropy")
    valid = target != ignore_index
    if weight is not None:
        logp = logp * weight.reshape((1, -1) + (1,) * (logp.ndim - 2))
    smooth = -logp.sum(1) * valid
    if reduction == "mean":
        smooth = smooth.sum() / _class_weights(weight, target.masked_fill(valid.logical_not(), 0), valid, x.dtype).sum()
    else:
        smooth = _reduce(smooth, reduction, "cross_entropy")
        smooth = smooth.squeeze(0) if unbatched and reduction == "none" else smooth
    return nll * (1.0 - smoothing) + smooth * (smoothing / x.shape[0 if x.ndim == 1 else 1])


def _cross_entropy_probs(x, target, weight, reduction, smoothing):
    if tuple(target.shape) != tuple(x.shape):
        raise ValueError(f"cross_entropy: probability targets must have the input's shape {tuple(x.shape)}, "
                         f"got {tuple(target.shape)}")
    cdim = 0 if x.ndim == 1 else 1
    C = x.shape[cdim]
    if smoothing:
        target = target * (1.0 - smoothing) + smoothing / C
    terms = x.log_softmax(cdim) * target
    if weight is not None:
        terms = terms * weight.reshape((-1,) + (1,) * (x.ndim - 1 - cdim))
    return _reduce(-terms.sum(cdim), reduction, "cross_entropy")


def mse_loss(input: Tensor, target: Tensor, reduction: str = "mean") -> Tensor:
    d = input - target
    return _reduce(d * d, reduction, "mse_loss")


def binary_cross_entropy_with_logits(input: Tensor, target: Tensor, weight: Optional[Tensor] = None,
                                     reduction: str = "mean", pos_weight: Optional[Tensor] = None) -> Tensor:
    """-[pos_weight * t * log sigmoid(x) + (1 - t) * log(1 - sigmoid(x))], computed without overflow.

    log sigmoid(x) = min(x, 0) - log1p(exp(-|x|)) never exponentiates a positive number.
    """
    if tuple(target.shape) != tuple(input.shape):
        raise ValueError(f"binary_cross_entropy_with_logits: target shape {tuple(target.shape)} must equal "
                         f"input shape {tuple(input.shape)}")
    log_sig = input.minimum(0.0) - (-input.abs()).exp().log1p()
    if pos_weight is None:
        loss = (1 - target) * input - log_sig
    else:
        loss = (1 - target) * input - (1 + (pos_weight - 1) * target) * log_sig
    if weight is not None:
        loss = loss * weight
    return _reduce(loss, reduction, "binary_cross_entropy_with_logits")


def binary_cross_entropy(input: Tensor, target: Tensor, weight: Optional[Tensor] = None,
                         reduction: str = "mean") -> Tensor:
    """BCE from probabilities; the logs are clamped at -100 as in PyTorch (prefer the _with_logits form)."""
    loss = -(target * input.log().clamp(min=-100) + (1 - target) * (1 - input).log().clamp(min=-100))
    if weight is not None:
        loss = loss * weight
    return _reduce(loss, reduction, "binary_cross_entropy")


# ---- attention ------------------------------------------------------------------------------------

class _SafeSoftmax(Function):
    """softmax over the last dim in one graph node; a row that is all -inf gives zeros, not NaN.

    That is what PyTorch's scaled_dot_product_attention does for a query that may attend to nothing.
    Backward: dx = y * (g - sum(g * y)), so the composite's five nodes (max, sub, exp, sum, div) become one.
    """

    def forward(self, x):
        with no_grad():
            m = x.amax(-1, keepdim=True)
            m = m.masked_fill(m == -math.inf, 0.0)  # an all -inf row: exp(-inf - 0) = 0 instead of NaN
            e = (x - m).exp()
            s = e.sum(-1, keepdim=True)
            y = e / s.masked_fill(s == 0, 1.0)
        self.save_for_backward(y)
        return y

    def backward(self, g):
        (y,) = self.saved_tensors
        gy = g * y
        return gy - y * gy.sum(-1, keepdim=True)


_CAUSAL_CACHE: dict = {}


def _causal_mask(L: int, S: int, device) -> Tensor:
    """(L, S) bool, True where key j <= query i (top-left aligned, as PyTorch); the last few are cached."""
    key = (L, S, str(device))
    mask = _CAUSAL_CACHE.get(key)
    if mask is None:
        mask = arange(S, device=device).unsqueeze(0) <= arange(L, device=device).unsqueeze(1)
        if len(_CAUSAL_CACHE) > 16:
            _CAUSAL_CACHE.clear()
        _CAUSAL_CACHE[key] = mask
    return mask


def _repeat_kv(x: Tensor, n_rep: int) -> Tensor:
    """(..., n_kv, S, hs) -> (..., n_kv * n_rep, S, hs): each key/value head serves n_rep query heads."""
    if n_rep == 1:
        return x
    shape = tuple(x.shape)
    x = x.unsqueeze(-3).expand(shape[:-2] + (n_rep,) + shape[-2:])  # (..., n_kv, n_rep, S, hs), no copy
    return x.reshape(shape[:-3] + (shape[-3] * n_rep,) + shape[-2:])


def scaled_dot_product_attention(query: Tensor, key: Tensor, value: Tensor, attn_mask: Optional[Tensor] = None,
                                 dropout_p: float = 0.0, is_causal: bool = False, scale: Optional[float] = None,
                                 enable_gqa: bool = False) -> Tensor:
    """softmax(q @ k^T * scale + mask) @ v for q (..., L, E), k (..., S, E), v (..., S, Ev) -> (..., L, Ev).

    As PyTorch's: scale defaults to 1/sqrt(E); attn_mask is a bool mask (True = may attend) or a float
    mask added to the scores, broadcast over the leading (batch, head) dims; is_causal lets query i see
    keys 0..i (top-left aligned when L != S), and combines with attn_mask when both are given; a query
    that may attend to nothing gets zeros; dropout_p drops attention weights (callers pass 0.0 in eval,
    as in PyTorch); enable_gqa lets k and v have fewer heads (dim -3) than q, each shared by a group.
    Without a mask or dropout this is one fused kernel that never holds the (L, S) score matrix; otherwise
    the plain ("math") computation, with it in memory.
    """
    if query.ndim < 2 or key.ndim < 2 or value.ndim < 2:
        raise ValueError(f"scaled_dot_product_attention: q, k, v need at least 2 dims, got shapes "
                         f"{tuple(query.shape)}, {tuple(key.shape)}, {tuple(value.shape)}")
    E, L, S = query.shape[-1], query.shape[-2], key.shape[-2]
    if key.shape[-1] != E or value.shape[-2] != S:
        raise ValueError(f"scaled_dot_product_attention: q {tuple(query.shape)}, k {tuple(key.shape)} and "
                         f"v {tuple(value.shape)} do not fit: need q (..., L, E), k (..., S, E), v (..., S, Ev)")
    if enable_gqa and query.ndim >= 3 and key.shape[-3] != query.shape[-3]:
        hq, hkv = query.shape[-3], key.shape[-3]
        if hkv == 0 or hq % hkv or value.shape[-3] != hkv:
            raise ValueError(f"scaled_dot_product_attention: with enable_gqa, {hq} query heads must be a multiple "
                             f"of the key/value heads ({hkv} and {value.shape[-3]})")
        key, value = _repeat_kv(key, hq // hkv), _repeat_kv(value, hq // hkv)
    scale = 1.0 / math.sqrt(E) if scale is None else scale
    if (attn_mask is None and dropout_p == 0.0 and value.shape[-1] == E and fused.fits(query, key, value)
            and query.shape[:-2] == key.shape[:-2] == value.shape[:-2]):
        return fused.Attention.apply(query, key, value, scale, is_causal)
    scores = (query * scale).matmul(key.transpose(-2, -1))  # (..., L, S)
    if is_causal:
        causal = _causal_mask(L, S, query.device)
        attn_mask = causal if attn_mask is None else _combine_masks(attn_mask, causal)
    if attn_mask is not None:
        if attn_mask.dtype.kind == "b":
            scores = scores.where(attn_mask, -math.inf)
        else:
            scores = scores + attn_mask
    weights = _SafeSoftmax.apply(scores)
    if dropout_p > 0.0:
        weights = dropout(weights, dropout_p)
    return weights.matmul(value)  # (..., L, Ev)


def _combine_masks(attn_mask: Tensor, causal: Tensor) -> Tensor:
    """attn_mask and the causal mask together: AND for bool masks, -inf added outside the causal band else."""
    if attn_mask.dtype.kind == "b":
        return attn_mask & causal
    return attn_mask.masked_fill(causal.logical_not(), -math.inf)


def _decode_mask(start: Optional[Tensor], B: int, T: int, S: int, device) -> Tensor:
    """(B or 1, 1, T, S) bool: query i (at key index S - T + i) sees keys start[b] <= j <= S - T + i."""
    keys = arange(S, device=device)  # (S,)
    mask = keys.unsqueeze(0) <= arange(S - T, S, device=device).unsqueeze(1)  # (T, S): bottom-right causal
    if start is None:
        return mask.reshape(1, 1, T, S)
    return mask.reshape(1, 1, T, S) & (keys.reshape(1, 1, 1, S) >= start.reshape(B, 1, 1, 1))


def decode_attention(query: Tensor, key: Tensor, value: Tensor, start: Optional[Tensor] = None,
                     scale: Optional[float] = None) -> Tensor:
    """Attention from the newest T positions to every cached one (the kv-cache's attention, chapter 12).

    query (B, nh, T, E) holds the last T of the S positions in key, value (B, n_kv, S, E): query i sits at
    key index S - T + i and sees keys j <= S - T + i (causal, aligned bottom-right), and only j >= start[b]
    when start (B,) int64 is given (left padding). nh must be a multiple of n_kv (grouped-query attention:
    query head h reads key/value head h // (nh // n_kv)). A query that sees no key gets zeros.
    Not in PyTorch (whose is_causal aligns top-left): its scaled_dot_product_attention with this mask.
    Without gradients this is one kernel reading k and v in place (no (T, S) matrix, no repeated heads);
    with them, or inside fused.disabled(), the math path (scaled_dot_product_attention with the mask).
    """
    if query.ndim != 4 or key.ndim != 4 or value.shape != key.shape:
        raise ValueError(f"decode_attention: need q (B, nh, T, E) and k, v (B, n_kv, S, E), got "
                         f"{tuple(query.shape)}, {tuple(key.shape)}, {tuple(value.shape)}")
    B, nh, T, E = query.shape
    n_kv, S = key.shape[1], key.shape[2]
    if key.shape[0] != B or key.shape[3] != E or T > S or n_kv == 0 or nh % n_kv:
        raise ValueError(f"decode_attention: q {tuple(query.shape)} does not fit k, v {tuple(key.shape)}: need the "
                         f"same B and E, T <= S and nh a multiple of n_kv")
    if start is not None and (tuple(start.shape) != (B,) or start.dtype != int64):
        raise ValueError(f"decode_attention: start must be int64 of shape ({B},), got {start.dtype} "
                         f"{tuple(start.shape)}")
    scale = 1.0 / math.sqrt(E) if scale is None else scale
    if start is None and T == S:  # a prefill from an empty cache: plain causal attention
        return scaled_dot_product_attention(query, key, value, is_causal=True, scale=scale, enable_gqa=True)
    wants_grad = is_grad_enabled() and (query.requires_grad or key.requires_grad or value.requires_grad)
    if not wants_grad and fused.fits(query, key, value) and (start is None or start.device == query.device):
        return fused.DecodeAttention.apply(query, key, value, start, scale)  # reads the cache in place
    mask = _decode_mask(start, B, T, S, query.device)
    return scaled_dot_product_attention(query, key, value, attn_mask=mask, scale=scale, enable_gqa=True)
