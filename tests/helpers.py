"""Test helpers: hypothesis strategies for shapes and strided layouts, and finite differences.

`layouts` draws a NumPy array together with a tinytensor tensor that holds the same values in the
same kind of memory layout (transposed, stepped, negative-step, stride-0 expanded, as_strided
window, or plain contiguous), built with tinytensor's own movement ops over a larger base.
"""
import numpy as np
from hypothesis import strategies as st

import tinytensor as tt

LAYOUTS = ("contiguous", "transposed", "stepped", "negative", "expanded", "window")


def shapes(min_dims=0, max_dims=3, min_side=0, max_side=4):
    return st.lists(st.integers(min_side, max_side), min_size=min_dims, max_size=max_dims).map(tuple)


def make_layout(values: np.ndarray, layout: str, dtype=None):
    """(tt tensor with `values` in the given layout, the same values as a NumPy array)."""
    dtype = dtype or tt.float64
    shape = values.shape
    if layout == "transposed" and values.ndim >= 2:
        base = tt.tensor(np.ascontiguousarray(np.swapaxes(values, -1, -2)), dtype=dtype)
        t = base.transpose(-1, -2)
    elif layout == "stepped" and values.ndim >= 1:
        big = np.zeros(shape[:-1] + (2 * shape[-1] + 1,), dtype=values.dtype)
        big[..., 1::2] = values
        t = tt.tensor(big, dtype=dtype)[..., 1::2]
    elif layout == "negative" and values.ndim >= 1:
        t = tt.tensor(np.ascontiguousarray(values[..., ::-1]), dtype=dtype)[..., ::-1]
    elif layout == "expanded" and values.ndim >= 1 and all(n > 0 for n in shape):
        # values constant along dim 0, stored once with stride 0
        values = np.broadcast_to(values[:1], shape).copy()
        t = tt.tensor(values[:1], dtype=dtype).expand(shape)
    elif layout == "window" and values.ndim >= 1:
        n = values.size
        store = np.zeros(n + 3, dtype=values.dtype)
        store[3:] = values.reshape(-1)
        strides = tuple(int(s) for s in np.array(np.zeros(shape).strides) // 8)
        t = tt.tensor(store, dtype=dtype).as_strided(shape, strides, 3)
    else:
        t = tt.tensor(values, dtype=dtype)
    return t, values


@st.composite
def layouts(draw, shape=None, dtype=None, elements=None, **shape_kw):
    """Draw (tensor, ndarray) of one shape in one of the LAYOUTS."""
    shape = draw(shapes(**shape_kw)) if shape is None else shape
    elements = elements or st.floats(-3, 3, allow_nan=False, width=64)
    values = np.array(draw(st.lists(elements, min_size=int(np.prod(shape)), max_size=int(np.prod(shape)))),
                      dtype=np.float64).reshape(shape)
    return make_layout(values, draw(st.sampled_from(LAYOUTS)), dtype)


def numerical_grad(f, x: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """Central finite differences of the scalar function f at x (float64)."""
    g = np.zeros_like(x, dtype=np.float64)
    flat, gflat = x.reshape(-1), g.reshape(-1)
    for i in range(flat.size):
        old = flat[i]
        flat[i] = old + eps
        hi = f(x)
        flat[i] = old - eps
        lo = f(x)
        flat[i] = old
        gflat[i] = (hi - lo) / (2 * eps)
    return g
