"""Test helpers: hypothesis strategies for shapes and strided layouts, and finite differences.

`layouts` draws a NumPy array together with a tinytensor tensor that holds the same values in the
same kind of memory layout (transposed, stepped, negative-step, stride-0 expanded, as_strided
window, or plain contiguous), built with tinytensor's own movement ops over a larger base.
`layout_plan` describes the same layouts as functions of a base tensor, so a test can make the base
the autograd leaf and build the view inside the function it differentiates.
"""
from typing import Callable, NamedTuple

import numpy as np
from hypothesis import strategies as st

import tinytensor as tt

LAYOUTS = ("contiguous", "transposed", "stepped", "negative", "expanded", "window")
ALL_LAYOUTS = LAYOUTS + ("overlapping",)  # overlapping: an as_strided view that reaches elements twice


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
    elif layout == "overlapping" and values.ndim >= 2 and all(n > 0 for n in shape):
        # element [i, j, ...] is store[1 + i + j + ...]: as_strided with stride 1 everywhere, so
        # neighbouring rows overlap; the values are re-read from the store, like "expanded"
        pos = 1 + sum(np.indices(shape))
        store = np.zeros(int(pos.max()) + 2, dtype=values.dtype)
        store[pos.reshape(-1)] = values.reshape(-1)
        values = store[pos]
        t = tt.tensor(store, dtype=dtype).as_strided(shape, (1,) * len(shape), 1)
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


class LayoutPlan(NamedTuple):
    """How to build a view of `shape` in some layout from a base: the base's shape, the view made
    with tinytensor movement ops (so autograd sees them), and the same view of a NumPy base."""
    base_shape: tuple
    view: Callable
    np_view: Callable


def layout_plan(shape: tuple, layout: str) -> LayoutPlan:
    """The layouts of make_layout (plus "overlapping") as functions of a base; falls back to contiguous."""
    shape, nd = tuple(shape), len(shape)
    full = nd >= 1 and all(n > 0 for n in shape)
    if layout == "transposed" and nd >= 2:
        return LayoutPlan(shape[:-2] + (shape[-1], shape[-2]), lambda b: b.transpose(-1, -2),
                          lambda b: np.swapaxes(b, -1, -2))
    if layout == "stepped" and nd >= 1:
        return LayoutPlan(shape[:-1] + (2 * shape[-1] + 1,), lambda b: b[..., 1::2], lambda b: b[..., 1::2])
    if layout == "negative" and nd >= 1:
        return LayoutPlan(shape, lambda b: b[..., ::-1], lambda b: b[..., ::-1])
    if layout == "expanded" and full:  # stride 0 along dim 0
        return LayoutPlan((1,) + shape[1:], lambda b: b.expand(shape), lambda b: np.broadcast_to(b, shape))
    if layout == "window" and nd >= 1:  # contiguous strides at storage offset 3
        strides = tuple(int(s) for s in np.array(np.zeros(shape).strides) // 8)
        n = int(np.prod(shape))
        return LayoutPlan((n + 3,), lambda b: b.as_strided(shape, strides, 3), lambda b: b[3:].reshape(shape))
    if layout == "overlapping" and nd >= 2 and full:  # element [i, j, ...] is base[1 + i + j + ...]
        pos = 1 + sum(np.indices(shape))
        return LayoutPlan((int(pos.max()) + 2,), lambda b: b.as_strided(shape, (1,) * nd, 1), lambda b: b[pos])
    return LayoutPlan(shape, lambda b: b, lambda b: b)


def load_by_path(folder: str, name: str):
    """The module <repo>/<folder>/<name>.py, loaded by path: chapter scripts and lesson solutions are named
    after their chapter (01_bigram.py, ...), and names that start with a digit cannot be imported."""
    import importlib.util
    import os
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    spec = importlib.util.spec_from_file_location(f"{folder.replace('/', '_')}_{name}",
                                                  os.path.join(root, folder, name + ".py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def load_example(name: str):
    """The chapter script examples/<name>.py as a module (e.g. load_example("05_gpt2"))."""
    return load_by_path("examples", name)


def load_solution(name: str):
    """The module docs/solutions/<name>.py (a lesson's reference solutions)."""
    return load_by_path("docs/solutions", name)
