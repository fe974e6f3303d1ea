"""repr/str of tensors in PyTorch's style: `tensor([[1., 2.]], requires_grad=True)`.

Floats print with 4 decimals (or scientific notation when magnitudes span a wide range), whole
floats as `1.`, tensors over 1000 elements are summarised with `...` (3 edge items), and lines
wrap at 80 columns, all as PyTorch does. grad_fn names are tinytensor's (`BinaryBackward`).
"""
from __future__ import annotations

import math

import numpy as np

from .dtype import get_default_dtype

THRESHOLD, EDGE, LINEWIDTH = 1000, 3, 80

_FLOAT_STYLES = {
    "int": lambda v: f"{v:.0f}." if math.isfinite(v) else f"{v:.0f}",  # whole numbers: `1.`
    "fixed": lambda v: f"{v:.4f}",
    "sci": lambda v: f"{v:.4e}",
}


def _formatter(values: np.ndarray, is_float: bool):
    """PyTorch's _Formatter: a function padding every value to one width (its .width).

    For floats the style and the width come from the nonzero finite values only: whole numbers
    print as `1.`, and scientific notation is used when they span more than 1000x or exceed 1e8
    (or, for non-whole numbers, go below 1e-4).
    """
    if not is_float:
        width = max((len(str(v)) for v in values.tolist()), default=1)
        fmt = str
    else:
        vals = values[np.isfinite(values) & (values != 0)].astype(np.float64)
        style, width = "int", 1
        if vals.size:
            lo, hi = np.abs(vals).min(), np.abs(vals).max()
            whole = bool(np.all(vals == np.ceil(vals)))
            if hi / lo > 1000 or hi > 1e8 or (not whole and lo < 1e-4):
                style = "sci"
            elif not whole:
                style = "fixed"
            width = max(len(_FLOAT_STYLES[style](v)) for v in vals.tolist())
        fmt = _FLOAT_STYLES[style]

    def pad(v) -> str:
        return fmt(v).rjust(width)
    pad.width = width
    return pad


def _summarised(a: np.ndarray) -> np.ndarray:
    """The values that get printed: EDGE items from each end of every long dim."""
    for axis, n in enumerate(a.shape):
        if n > 2 * EDGE:
            a = np.concatenate([a.take(range(EDGE), axis), a.take(range(n - EDGE, n), axis)], axis)
    return a


def _format(a: np.ndarray, fmt, indent: int, summarise: bool) -> str:
    if a.ndim == 0:
        return fmt(a.item())
    n = a.shape[0]
    idx = list(range(n)) if not summarise or n <= 2 * EDGE else list(range(EDGE)) + [None] + list(range(n - EDGE, n))
    if a.ndim == 1:  # wrapped at LINEWIDTH like PyTorch, continuation lines aligned under the first item
        items = [" ..." if i is None else fmt(a[i].item()) for i in idx]
        per_line = max(1, (LINEWIDTH - indent) // (fmt.width + 2))
        lines = [", ".join(items[i:i + per_line]) for i in range(0, len(items), per_line)]
        return "[" + (",\n" + " " * (indent + 1)).join(lines) + "]"
    sep = "," + "\n" * (a.ndim - 1) + " " * (indent + 1)
    return "[" + sep.join("..." if i is None else _format(a[i], fmt, indent + 1, summarise) for i in idx) + "]"


def _add_suffixes(text: str, suffixes, indent: int) -> str:
    """`, dtype=...` etc., each moved to a new line when it would pass LINEWIDTH (as PyTorch does)."""
    out, last = [text], len(text) - text.rfind("\n") + 1
    for suffix in suffixes:
        if last + len(suffix) + 2 > LINEWIDTH:
            out.append(",\n" + " " * indent + suffix)
            last = indent + len(suffix)
        else:
            out.append(", " + suffix)
            last += len(suffix) + 2
    return "".join(out) + ")"


def tensor_repr(t) -> str:
    a = t.detach().numpy()
    if t.dtype.name == "bfloat16":
        a = a.astype(np.float32)
    summarise = a.size > THRESHOLD
    fmt = _formatter(_summarised(a).reshape(-1) if summarise else a.reshape(-1), t.dtype.is_floating_point)
    body = _format(a, fmt, 7, summarise)
    extras = []
    default = get_default_dtype().name
    if a.size == 0:
        body = "[]"
        if a.ndim != 1:
            extras.append(f"size={tuple(t.shape)}")
        if t.dtype.name != default:
            extras.append(f"dtype=tinytensor.{t.dtype.name}")
    elif t.dtype.name not in (default, "int64", "bool"):
        extras.append(f"dtype=tinytensor.{t.dtype.name}")
    if t.grad_fn is not None:
        extras.append(f"grad_fn=<{type(t.grad_fn).__name__}Backward>")
    elif t.requires_grad:
        extras.append("requires_grad=True")
    if t._buf.device != "cpu":
        extras.insert(0, f"device='{t.device}'")
    return _add_suffixes("tensor(" + body, extras, 7)
