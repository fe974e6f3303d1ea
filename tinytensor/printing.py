"""repr/str of tensors in PyTorch's style: `tensor([[1., 2.]], requires_grad=True)`.

Floats print with 4 decimals (or scientific notation when magnitudes span a wide range), whole
floats as `1.`, and tensors over 1000 elements are summarised with `...` (3 edge items).
"""
from __future__ import annotations

import numpy as np

THRESHOLD, EDGE = 1000, 3


def _formatter(values: np.ndarray, is_float: bool):
    finite = values[np.isfinite(values)] if is_float else values
    if not is_float:
        width = max((len(str(v)) for v in finite.tolist()), default=1)
        return lambda v: str(v).rjust(width)
    if finite.size and np.all(finite == np.round(finite)) and np.abs(finite).max() < 1e8:
        fmt = lambda v: f"{v:.0f}." if np.isfinite(v) else str(v)  # noqa: E731
    else:
        mags = np.abs(finite[finite != 0])
        sci = mags.size and (mags.max() / mags.min() > 1000 or mags.max() > 1e8 or mags.min() < 1e-4)
        fmt = (lambda v: f"{v:.4e}") if sci else (lambda v: f"{v:.4f}")
    width = max((len(fmt(v)) for v in values.reshape(-1).tolist()), default=1)
    return lambda v: fmt(v).rjust(width)


def _format(a: np.ndarray, fmt, indent: int, summarise: bool) -> str:
    if a.ndim == 0:
        return fmt(a.item())
    n = a.shape[0]
    idx = list(range(n)) if not summarise or n <= 2 * EDGE else list(range(EDGE)) + [None] + list(range(n - EDGE, n))
    if a.ndim == 1:
        return "[" + ", ".join("..." if i is None else fmt(a[i].item()) for i in idx) + "]"
    sep = "," + "\n" * (a.ndim - 1) + " " * (indent + 1)
    return "[" + sep.join("..." if i is None else _format(a[i], fmt, indent + 1, summarise) for i in idx) + "]"


def tensor_repr(t) -> str:
    a = t.detach().numpy()
    if t.dtype.name == "bfloat16":
        a = a.astype(np.float32)
    summarise = a.size > THRESHOLD
    is_float = t.dtype.is_floating_point
    if a.dtype == np.bool_:
        body = _format(a, lambda v: str(bool(v)), 7, summarise)
    else:
        flat = a.reshape(-1)
        body = _format(a, _formatter(flat.astype(np.float64) if is_float else flat, is_float), 7, summarise)
    extras = []
    if a.size == 0:
        body = "[]"
        extras.append(f"size={tuple(t.shape)}")
    default = {"float32", "int64", "bool"}
    if t.dtype.name not in default or (a.size == 0 and t.dtype.name != "float32"):
        extras.append(f"dtype=tinytensor.{t.dtype.name}")
    if t.grad_fn is not None:
        op = getattr(t.grad_fn, "op", None) or type(t.grad_fn).__name__
        extras.append(f"grad_fn=<{''.join(w.capitalize() for w in op.split('_'))}Backward0>")
    elif t.requires_grad:
        extras.append("requires_grad=True")
    if t._buf.device != "cpu":
        extras.insert(0, f"device='{t.device}'")
    return "tensor(" + body + "".join(", " + e for e in extras) + ")"
