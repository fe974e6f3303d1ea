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
              "eq", "ne", "lt", "le", "gt", "ge", "logical_and", "logical_or", "logical_xor", "floor_divide")
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

# Fused speed paths (chapter 08), each equal to a composite of the primitives above and tested
# against it. Every array here is flat and contiguous from element 0 (the caller slices a
# contiguous tensor's storage); `rows` is the product of the leading dims and `n` the last dim.
# Statistics (mean, rstd, lse) are float64 for float64 tensors and float32 otherwise; float16 and
# bfloat16 are computed in float32. Outputs are written, never accumulated.
FUSED = {
    "softmax": "(out, dtype, x, rows, n, log)  softmax, or log_softmax when log, over the last dim",
    "softmax_backward": "(gx, dtype, y, gy, rows, n, log)  y = the forward's output",
    "cross_entropy": "(loss, dlogits, dtype, logits, target, rows, n, ignore_index, label_smoothing, grad_scale)  "
                     "loss (rows,) per row, 0 where target == ignore_index; dlogits (rows, n) = grad_scale * "
                     "d loss_row / d logits (or None), in the same pass; target int64 (rows,)",
    "layer_norm": "(out, mean, rstd, dtype, x, weight, bias, rows, n, eps)  weight, bias (n,) or None",
    "layer_norm_backward": "(gx, gweight, gbias, dtype, gy, x, mean, rstd, weight, rows, n)  gweight, gbias or None",
    "rms_norm": "(out, rstd, dtype, x, weight, rows, n, eps)  weight (n,) or None",
    "rms_norm_backward": "(gx, gweight, dtype, gy, x, rstd, weight, rows, n)  gweight or None",
    "gelu": "(out, dtype, x, n, tanh)  exact (erf) GELU, or the tanh approximation when tanh",
    "gelu_backward": "(gx, dtype, gy, x, n, tanh)",
    "attention": "(out, lse, dtype, q, k, v, bh, t, s, d, scale, causal)  q, out (bh, t, d); k, v (bh, s, d); "
                 "lse (bh, t); causal keeps key j <= query i (PyTorch's top-left is_causal)",
    "attention_backward": "(gq, gk, gv, dtype, go, q, k, v, out, lse, bh, t, s, d, scale, causal)",
    "decode_attention": "(out, dtype, q, k, v, start, batch, nh, nkv, t, s, d, k_strides, v_strides, scale)  "
                        "forward only (chapter 12's kv-cache): q, out (batch, nh, t, d); k, v (batch, nkv, s, d) read "
                        "in place at their (batch, head, row) element strides, the last dim contiguous; start int64 "
                        "(batch,) or None. Query i of row b sees keys max(start[b], 0) <= j <= s - t + i of head "
                        "h // (nh // nkv); one that sees none gets zeros",
    "adamw": "(params, grads, exp_avgs, exp_avg_sqs, dtype, lr, beta1, beta2, eps, weight_decay, step)  "
             "one AdamW step in place over lists of flat arrays of one dtype; step counts from 1",
}


class Buffer:
    """Flat storage shared by a tensor and all its views, with the version counter for autograd.

    `data` is the backend's flat array, `backend` the module whose primitives compute on it.
    `version` increases on every in-place write, so backward can tell a saved tensor was modified.
    """

    __slots__ = ("data", "device", "backend", "version", "__weakref__")

    def __init__(self, data, device: str, backend):
        self.data, self.device, self.backend, self.version = data, device, backend, 0

    @property
    def numel(self) -> int:
        return self.data.shape[0]


def check_backend(backend, name: str) -> None:
    """Raise if a backend lacks any primitive listed above (tests call this for every backend)."""
    missing = [p for p in (*PRIMITIVES, *FUSED) if not callable(getattr(backend, p, None))]
    if missing:
        raise RuntimeError(f"backend {name} lacks primitives {missing}")


def is_float(dtype: DType) -> bool:
    return dtype.kind == "f"
