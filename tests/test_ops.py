"""The op table: every public op, forward against NumPy and backward against finite differences.

One row per op (like PyTorch's OpInfo or tinygrad's helper_test_op): the tinytensor call, a NumPy
float64 reference, a strategy for sample inputs (shapes with 0-d, size 0 and 1 and broadcasting, and
the op's arguments), the value domain of the float inputs, tolerances and whether it is
differentiable. Two generic tests run every row:

- test_forward: in float64 and float32, each input in a layout from helpers (contiguous, transposed,
  stepped, negative step, stride-0 expanded, as_strided window, overlapping as_strided), against the
  reference computed in float64 on the same (float32-rounded) values: shape, dtype and values, and
  for movement ops that the result shares the input's storage (or, for copies, that it does not).
- test_grad: the base storage of each float input is the leaf; the strided view is built from it
  with tinytensor movement ops inside the function; d sum(out * w) / d base for a fixed random w is
  compared with float64 central differences of the NumPy reference, and with the gradient when the
  op is applied to a .contiguous() copy of the view.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Any, Callable, Optional

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import tinytensor as tt
from helpers import ALL_LAYOUTS, layout_plan, make_layout, numerical_grad, shapes

# ---- value domains (elements of the float inputs) --------------------------------------------------

REAL = st.floats(-3, 3)
WIDE = st.floats(-20, 20)
POS = st.floats(0.1, 3)
NONZERO = st.one_of(st.floats(-3, -0.1), st.floats(0.1, 3))  # away from the kink or pole at 0
NEAR_ONE = st.one_of(st.floats(-1.3, -0.7), st.floats(0.7, 1.3))  # products of many stay moderate
DISTINCT = st.integers(-300, 300).map(lambda k: k / 100)  # used with unique=True: no ties, gaps >> eps
GRID = st.integers(-12, 12).map(lambda k: k / 4)  # the two grids never meet: no ties between inputs
OFF_GRID = st.integers(-12, 11).map(lambda k: k / 4 + 1 / 8)  # never an integer, a half or on GRID
HALVES = st.one_of(REAL, st.integers(-6, 6).map(lambda k: k / 2))  # rounding ties (half to even)
TIES = st.integers(-2, 2).map(lambda k: k / 2)  # few values: comparisons see equal operands
LOGIC = st.sampled_from([0.0, 1.5, -2.0])  # zero and non-zero for logical ops
SIGNS = st.sampled_from([-2.5, -1.0, 1.0, 2.5])  # conditions via `> 0`, never on the boundary
NONFINITE = st.sampled_from([math.nan, math.inf, -math.inf, 0.0, 1.5, -2.0])
REM_A = st.tuples(st.integers(-2, 1), st.floats(0.2, 1.8)).map(lambda t: 2 * t[0] + t[1])  # not even
REM_B = st.sampled_from([2.0, -2.0, 4.0, -4.0])  # so a / b is never close to an integer
INTS = st.integers(-5, 5).map(float)
NONZERO_INTS = st.sampled_from([-3.0, -2.0, -1.0, 1.0, 2.0, 3.0])

F64, F32, I64 = (tt.float64, np.float64), (tt.float32, np.float32), (tt.int64, np.int64)


@dataclass
class Op:
    name: str
    fn: Callable  # fn(*inputs, **kw) with tinytensor tensors
    ref: Callable  # ref(*arrays, **kw) with NumPy arrays, float64 (or the row's integer dtype)
    sample: st.SearchStrategy  # -> (specs, kw): a spec is a shape (a float input) or an int/bool ndarray
    domain: Any = REAL  # element strategy, or a list with one per float input
    grad_domain: Any = None  # domain for test_grad when forward should also see kinks, ties or zeros
    unique: bool = False  # distinct base values (with DISTINCT: ties would make max/min kinks)
    grad: bool = True
    tol64: tuple = (1e-10, 1e-10)  # (rtol, atol)
    tol32: tuple = (1e-5, 1e-5)
    grad_tol: tuple = (1e-5, 1e-5)  # atol is scaled by the largest finite-difference gradient
    fd_eps: float = 1e-6
    view: Optional[bool] = None  # True: the result shares the input's storage; False: a fresh copy
    out_dtype: Any = None  # expected dtype when it is not the input's (ref's bool/int kinds are automatic)
    dtypes: tuple = (F64, F32)
    grad_layouts: tuple = ALL_LAYOUTS
    grad_sample: Optional[st.SearchStrategy] = None
    examples: Optional[int] = None  # max_examples when the profile's 40 would be too slow


# ---- sample strategies: ([specs], kw) --------------------------------------------------------------

def dims_of(ndim):
    n = max(ndim, 1)  # 0-d tensors accept dim 0 and -1, as in PyTorch
    return st.integers(-n, n - 1)


def axes(dim, ndim) -> tuple:
    """A dim argument (None, int, list) as sorted non-negative NumPy axes."""
    if ndim == 0:
        return ()
    dims = range(ndim) if dim is None else [dim] if isinstance(dim, int) else dim
    return tuple(sorted(d % ndim for d in dims))


@st.composite
def dim_lists(draw, ndim):
    """None, one dim, or a list of distinct dims (some negative)."""
    n = max(ndim, 1)
    kind = draw(st.sampled_from(["none", "int", "list"]))
    if kind == "none":
        return None
    if kind == "int":
        return draw(dims_of(ndim))
    picked = draw(st.lists(st.integers(0, n - 1), min_size=1, max_size=n, unique=True))
    return [d - n if draw(st.booleans()) else d for d in picked]


def sample(n=1, broadcast=False, kw=None, min_dims=0, **shape_kw):
    """Shapes for n float inputs (independent, or mutually broadcastable) and kwargs drawn by kw(*shapes)."""
    @st.composite
    def draw_sample(draw):
        if broadcast:
            bs = draw(hnp.mutually_broadcastable_shapes(num_shapes=n, min_dims=min_dims, max_dims=3, min_side=0,
                                                        max_side=4))
            ins = list(bs.input_shapes)
        else:
            ins = [draw(shapes(min_dims=min_dims, **shape_kw)) for _ in range(n)]
        return ins, (draw(kw(*ins)) if kw else {})
    return draw_sample()


UNARY, BINARY, TERNARY = sample(), sample(2, broadcast=True), sample(3, broadcast=True)


@st.composite
def reduction(draw, dim="list", nonempty=False, extra=None, min_side=0, **shape_kw):
    """A shape and dim/keepdim; nonempty: the reduced dims get size >= 1 (max/min have no identity)."""
    shape = list(draw(shapes(min_side=min_side, **shape_kw)))
    nd = len(shape)
    d = {"list": dim_lists(nd), "int": dims_of(nd), "optional": st.none() | dims_of(nd)}[dim]
    d = draw(d)
    if nonempty:
        for a in axes(d, nd):
            shape[a] = max(shape[a], 1)
    kw = {"dim": d, "keepdim": draw(st.booleans()) and not (dim == "optional" and d is None)}
    kw.update(draw(extra) if extra is not None else {})
    return [tuple(shape)], kw


def prime_factors(n):
    out, p = [], 2
    while n > 1:
        while n % p == 0:
            out.append(p)
            n //= p
        p += 1
    return out


@st.composite
def factorization(draw, n, min_len=1, max_len=3, infer=True):
    """Sizes whose product is n, maybe with one -1 to infer."""
    k = draw(st.integers(min_len if n == 1 else max(min_len, 1), max_len))
    if n == 0:
        sizes = [draw(st.integers(0, 3)) for _ in range(k)]
        sizes[draw(st.integers(0, k - 1))] = 0
        return tuple(sizes)
    sizes = [1] * k
    for p in prime_factors(n):
        sizes[draw(st.integers(0, k - 1))] *= p
    if infer and k and draw(st.booleans()):
        sizes[draw(st.integers(0, k - 1))] = -1
    return tuple(sizes)


@st.composite
def slices(draw, n):
    bound = st.none() | st.integers(-n - 2, n + 2)
    return slice(draw(bound), draw(bound), draw(st.sampled_from([None, 1, 2, 3, -1, -2])))


@st.composite
def basic_index(draw):
    """Ints, slices with any step, None and Ellipsis."""
    shape = draw(shapes())
    key = [draw(st.integers(-n, n - 1)) if n > 0 and draw(st.integers(0, 3)) == 0 else draw(slices(n))
           for n in shape]
    for _ in range(draw(st.integers(0, 2))):
        key.insert(draw(st.integers(0, len(key))), None)
    if draw(st.booleans()):
        i = draw(st.integers(0, len(key)))
        key[i:draw(st.integers(i, len(key)))] = [Ellipsis]
    else:
        key = key[:draw(st.integers(0, len(key)))]  # trailing dims left out
    return [shape], {"key": tuple(key) if len(key) != 1 or draw(st.booleans()) else key[0]}


@st.composite
def advanced_index(draw):
    """Integer arrays (some as lists) or a bool mask, mixed with ints and slices, adjacent or not."""
    shape = draw(shapes(min_dims=1))
    nd = len(shape)
    full = [d for d in range(nd) if shape[d] > 0]
    if not full or draw(st.integers(0, 2)) == 0:  # a bool mask over dims [s, s + m)
        s = draw(st.integers(0, nd - 1))
        m = draw(st.integers(1, nd - s))
        key = [slice(None)] * s + [draw(hnp.arrays(np.bool_, shape[s:s + m]))]
        key += [draw(slices(n)) for n in shape[s + m:]]
        if s + m < nd and shape[-1] > 0 and draw(st.booleans()):
            key[-1] = draw(st.integers(-shape[-1], shape[-1] - 1))  # an int after a slice: non-adjacent
        return [shape], {"key": tuple(key)}
    picked = draw(st.lists(st.sampled_from(full), min_size=1, max_size=min(3, len(full)), unique=True))
    ishapes = draw(hnp.mutually_broadcastable_shapes(num_shapes=len(picked), max_dims=2, max_side=3)).input_shapes
    key = [None if d in picked else draw(slices(n)) for d, n in enumerate(shape)]
    for d, s in zip(picked, ishapes):
        n = shape[d]
        if s == () and d != picked[0] and draw(st.booleans()):  # an int among arrays is advanced too
            key[d] = draw(st.integers(-n, n - 1))
        else:
            arr = draw(hnp.arrays(np.int64, s, elements=st.integers(-n, n - 1)))
            key[d] = arr.tolist() if arr.ndim == 1 and draw(st.booleans()) else arr
    key = key[:draw(st.integers(max(picked) + 1, nd))]
    return [shape], {"key": tuple(key) if len(key) > 1 or draw(st.booleans()) else key[0]}


def np_index(a, key):
    """NumPy indexing with PyTorch's rule for ints among advanced indices: ints (and 0-d arrays) select
    first, so only arrays and masks decide whether the advanced dims move to the front."""
    key = key if isinstance(key, tuple) else (key,)
    is_int = [isinstance(k, int) or isinstance(k, np.ndarray) and k.ndim == 0 and k.dtype.kind == "i" for k in key]
    width = [k.ndim if isinstance(k, np.ndarray) and k.dtype == np.bool_ else 1 for k in key]
    selects = sum(([int(k)] if i else [slice(None)] * w for k, i, w in zip(key, is_int, width)), [])
    return a[tuple(selects)][tuple(k for k, i in zip(key, is_int) if not i)]


def tt_key(key):
    """The same index with NumPy arrays as tinytensor tensors (lists stay lists)."""
    conv = (lambda k: tt.tensor(k) if isinstance(k, np.ndarray) else k)
    return tuple(conv(k) for k in key) if isinstance(key, tuple) else conv(key)


@st.composite
def matmul_sample(draw):
    """torch.matmul's cases: 1-D on either side, N-D with broadcast batch dims, size-0 dims."""
    m, k, n = draw(st.integers(0, 4)), draw(st.integers(0, 4)), draw(st.integers(0, 4))
    ba, bb = draw(hnp.mutually_broadcastable_shapes(num_shapes=2, max_dims=2, min_side=0, max_side=3)).input_shapes
    a = (k,) if draw(st.booleans()) else ba + (m, k)
    b = (k,) if draw(st.booleans()) else bb + (k, n)
    return [a, b], {}


def index_array(draw, shape, n):
    return draw(hnp.arrays(np.int64, shape, elements=st.integers(0, max(n - 1, 0))))


@st.composite
def gather_sample(draw, scatter=False):
    """x, an index no larger than x outside dim (values < x.size(dim)), and src of the index's shape."""
    x = draw(shapes(min_dims=1))
    d = draw(dims_of(len(x)))
    a = d % len(x)
    ishape = tuple((draw(st.integers(0, 4)) if x[a] else 0) if i == a else draw(st.integers(0, n))
                   for i, n in enumerate(x))
    idx = index_array(draw, ishape, x[a])
    return ([x, idx, ishape] if scatter else [x, idx]), {"dim": d}


@st.composite
def index_select_sample(draw, add=False):
    x = draw(shapes(min_dims=1))
    d = draw(dims_of(len(x)))
    a = d % len(x)
    length = draw(st.integers(0, 4)) if x[a] else 0
    zero_d = not add and length == 1 and draw(st.booleans())
    idx = index_array(draw, () if zero_d else (length,), x[a])
    if not add:
        return [x, idx], {"dim": d}
    return [x, idx, x[:a] + (length,) + x[a + 1:]], {"dim": d, "alpha": draw(st.sampled_from([1, 2.5]))}


@st.composite
def cat_sample(draw, stack=False):
    shape = draw(shapes(min_dims=0 if stack else 1))
    k = draw(st.integers(1, 3))
    if stack:
        return [shape] * k, {"dim": draw(st.integers(-len(shape) - 1, len(shape)))}
    d = draw(dims_of(len(shape)))
    a = d % len(shape)
    return [shape[:a] + (draw(st.integers(0, 3)),) + shape[a + 1:] for _ in range(k)], {"dim": d}


def one_dim(kw_of_shape_and_dim, min_dims=1, nonempty=False, **shape_kw):
    """A shape and a dim (made non-empty if asked), plus kwargs drawn from (shape, dim)."""
    @st.composite
    def draw_sample(draw):
        shape = list(draw(shapes(min_dims=min_dims, **shape_kw)))
        d = draw(dims_of(len(shape)))
        if nonempty and shape:
            shape[d % len(shape)] = max(shape[d % len(shape)], 1)
        shape = tuple(shape)
        kw = draw(kw_of_shape_and_dim(shape, d % max(len(shape), 1))) if kw_of_shape_and_dim else {}
        return [shape], {"dim": d, **kw}
    return draw_sample()


@st.composite
def reshape_sample(draw):
    shape = draw(shapes())
    return [shape], {"shape": draw(factorization(math.prod(shape), min_len=0, max_len=4,
                                                 infer=math.prod(shape) > 0))}


@st.composite
def expand_sample(draw):
    shape = draw(shapes(max_side=3))
    lead = tuple(draw(st.lists(st.integers(0, 3), max_size=2)))
    target = tuple(draw(st.integers(0, 3)) if n == 1 and draw(st.booleans())
                   else -1 if draw(st.integers(0, 3)) == 0 else n for n in shape)
    return [shape], {"size": lead + target}


@st.composite
def as_strided_sample(draw):
    """size, non-negative strides and an offset that reach only the input's elements (and may overlap)."""
    shape = draw(shapes(min_dims=1))
    n = math.prod(shape)
    if n == 0:
        sizes = draw(st.lists(st.integers(0, 3), max_size=2))
        return [shape], {"size": (0, *sizes), "stride": (1,) * (len(sizes) + 1), "offset": 0}
    offset = draw(st.integers(0, n - 1))
    room, size, stride = n - 1 - offset, [], []  # room: how much further the view may reach
    for _ in range(draw(st.integers(0, 3))):
        k = draw(st.integers(0, 3))
        s = draw(st.integers(0, room // (k - 1) if k > 1 else 3))
        room -= s * max(k - 1, 0)
        size.append(k)
        stride.append(s)
    return [shape], {"size": tuple(size), "stride": tuple(stride), "offset": offset}


@st.composite
def split_sample(draw):
    shape = draw(shapes(min_dims=1))
    d = draw(dims_of(len(shape)))
    n = shape[d % len(shape)]
    if draw(st.booleans()):
        return [shape], {"split": draw(st.integers(1, 4)), "dim": d}
    cuts = sorted(draw(st.lists(st.integers(0, n), max_size=2)))
    return [shape], {"split": [b - a for a, b in zip([0] + cuts, cuts + [n])], "dim": d}


# kwargs strategies: shape -> strategy of a dict (for `sample`), or (shape, dim) -> dict (for `one_dim`)

def clamp_kw(shape):
    bounds = st.fixed_dictionaries({"min": st.sampled_from([None, -0.5, 1.0]),
                                    "max": st.sampled_from([None, 1.0, -0.5])})
    return bounds.filter(lambda k: k["min"] is not None or k["max"] is not None)


@st.composite
def permute_kw(draw, shape):
    n = len(shape)
    return {"dims": tuple(d - n if draw(st.booleans()) else d for d in draw(st.permutations(range(n))))}


def transpose_kw(shape):
    return st.fixed_dictionaries({"d0": dims_of(len(shape)), "d1": dims_of(len(shape))})


def squeeze_kw(shape):
    return st.fixed_dictionaries({"dim": dim_lists(len(shape)).map(lambda d: tuple(d) if isinstance(d, list) else d)})


def unsqueeze_kw(shape):
    return st.fixed_dictionaries({"dim": st.integers(-len(shape) - 1, len(shape))})


@st.composite
def flatten_kw(draw, shape):
    s, e = sorted([draw(dims_of(len(shape))), draw(dims_of(len(shape)))], key=lambda d: d % max(len(shape), 1))
    return {"start_dim": s, "end_dim": e}


def flip_kw(shape):
    return st.fixed_dictionaries({"dims": st.lists(st.integers(0, max(len(shape), 1) - 1), unique=True,
                                                   max_size=len(shape))})


@st.composite
def diagonal_kw(draw, shape):
    d1, d2 = draw(st.permutations(range(len(shape))))[:2]
    return {"offset": draw(st.integers(-4, 4)), "dim1": d1 - len(shape) * draw(st.booleans()), "dim2": d2}


def tri_kw(shape):
    return st.fixed_dictionaries({"diagonal": st.integers(-4, 4)})


def repeat_kw(shape):
    return st.fixed_dictionaries({"sizes": st.lists(st.integers(0, 3), min_size=len(shape),
                                                    max_size=len(shape) + 2).map(tuple)})


def unflatten_kw(shape, d):
    return st.fixed_dictionaries({"sizes": factorization(shape[d], infer=shape[d] > 0)})


@st.composite
def narrow_kw(draw, shape, d):
    n = shape[d]
    start = draw(st.integers(-n, n))
    return {"start": start, "length": draw(st.integers(0, n - (start % n if start < 0 else start)))}


def unfold_kw(shape, d):
    return st.fixed_dictionaries({"size": st.integers(1, shape[d] if shape else 1), "step": st.integers(1, 3)})


def chunk_kw(shape, d):
    return st.fixed_dictionaries({"chunks": st.integers(1, 5)})


def select_kw(shape, d):
    return st.fixed_dictionaries({"index": st.integers(-shape[d], shape[d] - 1)})


# ---- NumPy references that need more than one call ---------------------------------------------------

def np_reduce(fn):
    return lambda a, dim, keepdim, **kw: np.asarray(fn(a, axis=axes(dim, a.ndim), keepdims=keepdim, **kw))


def np_arg(fn):
    def ref(a, dim, keepdim):
        if dim is None or a.ndim == 0:
            return np.asarray(fn(a.reshape(-1)) if a.size else 0, dtype=np.int64)
        return fn(a, axis=dim, keepdims=keepdim).astype(np.int64)
    return ref


def np_max_dim(values, arg):
    return lambda a, dim, keepdim: (values(a, axis=axes(dim, a.ndim), keepdims=keepdim), np_arg(arg)(a, dim, keepdim))


def np_var(a, dim, keepdim, correction):
    return np.var(a, axis=axes(dim, a.ndim), ddof=correction, keepdims=keepdim)


def np_logsumexp(a, dim, keepdim):
    ax = axes(dim, a.ndim)
    m = np.max(a, axis=ax, keepdims=True, initial=-np.inf)
    m = np.where(np.isfinite(m), m, 0)
    out = np.log(np.sum(np.exp(a - m), axis=ax, keepdims=True)) + m
    return out if keepdim else out.reshape([n for i, n in enumerate(a.shape) if i not in ax])


def np_softmax(a, dim, log=False):
    if a.size == 0:
        return a.copy()
    ax = axes(dim, a.ndim)
    z = a - np.max(a, axis=ax, keepdims=True)
    lse = np.log(np.sum(np.exp(z), axis=ax, keepdims=True))
    return z - lse if log else np.exp(z - lse)


def np_norm(a, p, dim, keepdim):
    s = np.sum(np.abs(a) ** p, axis=axes(dim, a.ndim), keepdims=keepdim)
    return s ** (1 / p)


def np_gather(x, idx, dim):
    d = dim % x.ndim
    return np.take_along_axis(x[tuple(slice(None) if i == d else slice(0, n) for i, n in enumerate(idx.shape))],
                              idx, axis=d)


def np_scatter_add(x, idx, src, dim):
    out = x.copy()
    pos = list(np.indices(idx.shape))
    pos[dim % x.ndim] = idx
    np.add.at(out, tuple(pos), src)
    return out


def np_index_add(x, idx, src, dim, alpha):
    out = x.copy()
    np.add.at(out, (slice(None),) * (dim % x.ndim) + (idx,), alpha * src)
    return out


def np_expand(a, size):
    lead = len(size) - a.ndim
    return np.broadcast_to(a, tuple(a.shape[i - lead] if n == -1 else n for i, n in enumerate(size)))


def np_squeeze(a, dim):
    return np.squeeze(a, axis=tuple(d for d in axes(dim, a.ndim) if a.shape[d] == 1))


def np_flatten(a, start_dim, end_dim):
    if a.ndim == 0:
        return a.reshape(1)
    s, e = start_dim % a.ndim, end_dim % a.ndim
    return a.reshape(a.shape[:s] + (math.prod(a.shape[s:e + 1]),) + a.shape[e + 1:])


def np_unflatten(a, dim, sizes):
    d = dim % a.ndim
    sizes = tuple(a.shape[d] // -math.prod(sizes) if n == -1 else n for n in sizes)  # -1 from the dim's size
    return a.reshape(a.shape[:d] + sizes + a.shape[d + 1:])


def np_narrow(a, dim, start, length):
    d = dim % a.ndim
    start += a.shape[d] if start < 0 else 0
    return a[(slice(None),) * d + (slice(start, start + length),)]


def np_unfold(a, dim, size, step):
    if a.ndim == 0:
        return np_unfold(a.reshape(1), 0, size, step).reshape(size)
    d = dim % a.ndim
    starts = np.arange((a.shape[d] - size) // step + 1) * step
    return np.moveaxis(np.take(a, starts[:, None] + np.arange(size), axis=d), d + 1, -1)


def np_split(a, split, dim):
    n = a.shape[dim % a.ndim]
    sizes = split if isinstance(split, list) else [min(split, n - s) for s in range(0, n, split)] or [0]
    return tuple(np.split(a, np.cumsum(sizes)[:-1], axis=dim % a.ndim))


def np_as_strided(a, size, stride, offset):
    flat = np.ascontiguousarray(a).reshape(-1)[offset:]
    return np.lib.stride_tricks.as_strided(flat, size, tuple(s * flat.itemsize for s in stride)).copy()


def tt_as_strided(x, size, stride, offset):
    c = x.contiguous()  # as_strided addresses storage: give it storage that holds exactly x's values
    return c.as_strided(size, stride, c.storage_offset() + offset)


def tt_view(x, shape):
    """x.view(shape), or, where tinytensor finds no view, a check that NumPy finds none either."""
    try:
        return x.view(shape)
    except RuntimeError:
        with pytest.raises((ValueError, AttributeError)):
            np.reshape(x.detach().numpy(), shape, copy=False)
        return x.reshape(shape)


# ---- the table -------------------------------------------------------------------------------------

def unary(name, fn, ref, domain=REAL, **kw):
    return Op(name, fn, ref, UNARY, domain, **kw)


def binary(name, fn, ref, domain=REAL, **kw):
    return Op(name, fn, ref, BINARY, domain, **kw)


def red(name, fn, ref, sample_=None, **kw):
    return Op(name, fn, ref, reduction() if sample_ is None else sample_, tol32=(1e-4, 1e-4), **kw)


ROUNDING = dict(domain=HALVES, grad_domain=OFF_GRID)
CORRECTION = st.fixed_dictionaries({"correction": st.sampled_from([0, 1])})
COMPARE = dict(domain=TIES, grad=False)

OPS = [
    # -- unary elementwise
    unary("neg", lambda x: -x, np.negative),
    unary("abs", lambda x: x.abs(), np.abs, grad_domain=NONZERO),
    unary("sign", lambda x: x.sign(), np.sign, grad_domain=NONZERO),
    unary("exp", lambda x: x.exp(), np.exp),
    unary("log", lambda x: x.log(), np.log, POS),
    unary("log1p", lambda x: x.log1p(), np.log1p, st.floats(-0.9, 3)),
    unary("expm1", lambda x: x.expm1(), np.expm1),
    unary("sqrt", lambda x: x.sqrt(), np.sqrt, POS),
    unary("rsqrt", lambda x: x.rsqrt(), lambda a: 1 / np.sqrt(a), POS),
    unary("sin", lambda x: x.sin(), np.sin),
    unary("cos", lambda x: x.cos(), np.cos),
    unary("tan", lambda x: x.tan(), np.tan, st.floats(-1.3, 1.3)),
    unary("tanh", lambda x: x.tanh(), np.tanh, WIDE, grad_domain=REAL),
    unary("sigmoid", lambda x: x.sigmoid(), lambda a: 1 / (1 + np.exp(-a)), WIDE, grad_domain=REAL),
    unary("relu", lambda x: x.relu(), lambda a: np.maximum(a, 0), grad_domain=NONZERO),
    unary("erf", lambda x: x.erf(), np.vectorize(math.erf, otypes=[np.float64])),
    unary("reciprocal", lambda x: x.reciprocal(), np.reciprocal, NONZERO),
    unary("floor", lambda x: x.floor(), np.floor, **ROUNDING),
    unary("ceil", lambda x: x.ceil(), np.ceil, **ROUNDING),
    unary("round", lambda x: x.round(), np.round, **ROUNDING),
    unary("trunc", lambda x: x.trunc(), np.trunc, **ROUNDING),
    unary("square", lambda x: x.square(), np.square),
    unary("log2", lambda x: x.log2(), np.log2, POS),
    unary("log10", lambda x: x.log10(), np.log10, POS),
    unary("fn_form_exp", lambda x: tt.exp(x), np.exp),
    unary("logical_not", lambda x: x.logical_not(), np.logical_not, LOGIC, grad=False),
    unary("invert", lambda x: ~(x > 0), lambda a: ~(a > 0), TIES, grad=False),
    unary("isnan", lambda x: x.isnan(), np.isnan, NONFINITE, grad=False),
    unary("isinf", lambda x: x.isinf(), np.isinf, NONFINITE, grad=False),
    unary("isfinite", lambda x: x.isfinite(), np.isfinite, NONFINITE, grad=False),
    # -- binary elementwise, broadcasting
    binary("add", lambda a, b: a + b, np.add),
    binary("add_alpha", lambda a, b: a.add(b, alpha=2.5), lambda a, b: a + 2.5 * b),
    binary("sub", lambda a, b: a - b, np.subtract),
    binary("mul", lambda a, b: a * b, np.multiply),
    binary("div", lambda a, b: a / b, np.divide, [REAL, NONZERO]),
    binary("pow", lambda a, b: a ** b, np.power, [POS, REAL]),
    binary("maximum", lambda a, b: a.maximum(b), np.maximum, grad_domain=[GRID, OFF_GRID]),
    binary("minimum", lambda a, b: tt.minimum(a, b), np.minimum, grad_domain=[GRID, OFF_GRID]),
    binary("max_binary", lambda a, b: a.max(b), np.maximum, grad_domain=[GRID, OFF_GRID]),
    binary("maximum_nonfinite", lambda a, b: a.maximum(b), np.maximum, NONFINITE, grad=False),
    binary("minimum_nonfinite", lambda a, b: a.minimum(b), np.minimum, NONFINITE, grad=False),
    binary("remainder", lambda a, b: a % b, np.remainder, [REAL, NONZERO], grad_domain=[REM_A, REM_B]),
    binary("eq", lambda a, b: a == b, np.equal, **COMPARE),
    binary("ne", lambda a, b: a != b, np.not_equal, **COMPARE),
    binary("lt", lambda a, b: a < b, np.less, **COMPARE),
    binary("le", lambda a, b: a <= b, np.less_equal, **COMPARE),
    binary("gt", lambda a, b: a > b, np.greater, **COMPARE),
    binary("ge", lambda a, b: a.ge(b), np.greater_equal, **COMPARE),
    binary("logical_and", lambda a, b: a.logical_and(b), np.logical_and, LOGIC, grad=False),
    binary("logical_or", lambda a, b: a.logical_or(b), np.logical_or, LOGIC, grad=False),
    binary("logical_xor", lambda a, b: a.logical_xor(b), np.logical_xor, LOGIC, grad=False),
    binary("bool_and_or_xor", lambda a, b: ((a > 0) & (b > 0)) | ((a < 0) ^ (b < 0)),
           lambda a, b: ((a > 0) & (b > 0)) | ((a < 0) ^ (b < 0)), TIES, grad=False),
    Op("add_float64_tensor", lambda a, b: a + b.double(), np.add, sample(2, broadcast=True, min_dims=1),
       out_dtype=tt.float64),
    Op("add_float64_0d_keeps_float32", lambda a, b: a.float() + b.double(), lambda a, b: (a + b).astype(np.float32),
       st.tuples(shapes(min_dims=1), st.just(())).map(lambda s: (list(s), {})), tol64=(1e-6, 1e-6), grad=False),
    binary("lerp", lambda a, b: a.lerp(b, 0.3), lambda a, b: a + 0.3 * (b - a)),
    Op("lerp_tensor_weight", lambda a, b, w: a.lerp(b, w), lambda a, b, w: a + w * (b - a), TERNARY),
    Op("where", lambda c, a, b: tt.where(c > 0, a, b), lambda c, a, b: np.where(c > 0, a, b), TERNARY,
       [SIGNS, REAL, REAL]),
    binary("where_scalar", lambda c, a: a.where(c > 0, 0.5), lambda c, a: np.where(c > 0, a, 0.5), [SIGNS, REAL]),
    Op("masked_fill", lambda x, m: x.masked_fill(m > 0, -1.5), lambda x, m: np.where(m > 0, -1.5, x),
       BINARY, [REAL, SIGNS]),
    Op("clamp", lambda x, min, max: x.clamp(min, max), lambda a, min, max: np.clip(a, min, max),
       sample(kw=clamp_kw), grad_domain=OFF_GRID),
    Op("clamp_nonfinite", lambda x: x.clamp(-1.0, 1.0), lambda a: np.clip(a, -1.0, 1.0), UNARY, NONFINITE,
       grad=False),
    Op("clamp_tensors", lambda x, lo, hi: tt.clamp(x, lo, hi), lambda x, lo, hi: np.minimum(np.maximum(x, lo), hi),
       TERNARY, grad_domain=[OFF_GRID, GRID, GRID]),
    # -- Python scalars on either side
    unary("add_scalar", lambda x: x + 2.5, lambda a: a + 2.5),
    unary("radd_scalar", lambda x: 2.5 + x, lambda a: 2.5 + a),
    unary("sub_int_scalar", lambda x: x - 1, lambda a: a - 1),
    unary("rsub_scalar", lambda x: 1.5 - x, lambda a: 1.5 - a),
    unary("mul_int_scalar", lambda x: x * -2, lambda a: a * -2),
    unary("rmul_scalar", lambda x: 0.5 * x, lambda a: 0.5 * a),
    unary("div_scalar", lambda x: x / 4, lambda a: a / 4),
    unary("rdiv_scalar", lambda x: 2 / x, lambda a: 2 / a, NONZERO),
    unary("pow_int_scalar", lambda x: x ** 3, lambda a: a ** 3),
    unary("pow_half", lambda x: x.pow(0.5), np.sqrt, POS),
    unary("pow_neg", lambda x: x ** -2, lambda a: a ** -2.0, NONZERO),
    unary("rpow_scalar", lambda x: 2.0 ** x, lambda a: 2.0 ** a),
    unary("mod_scalar", lambda x: x % 1.5, lambda a: np.remainder(a, 1.5), grad_domain=OFF_GRID),
    unary("rmod_scalar", lambda x: 2.3 % x, lambda a: np.remainder(2.3, a), NONZERO, grad_domain=OFF_GRID),
    unary("gt_scalar", lambda x: x > 0.5, lambda a: a > 0.5, **COMPARE),
    unary("rlt_scalar", lambda x: 0.5 < x, lambda a: 0.5 < a, **COMPARE),
    unary("eq_scalar", lambda x: x == 0.5, lambda a: a == 0.5, **COMPARE),
    unary("maximum_scalar", lambda x: x.maximum(0.25), lambda a: np.maximum(a, 0.25), grad_domain=GRID),
    # -- reductions over dim lists, with keepdim
    red("sum", lambda x, dim, keepdim: x.sum(dim, keepdim), np_reduce(np.sum)),
    red("prod", lambda x, dim, keepdim: x.prod(dim, keepdim), np_reduce(np.prod), grad_domain=NEAR_ONE),
    red("mean", lambda x, dim, keepdim: x.mean(dim, keepdim), np_reduce(np.mean)),
    red("var", lambda x, dim, keepdim, correction: x.var(dim, keepdim=keepdim, correction=correction),
        np_var, reduction(extra=CORRECTION)),
    red("var_unbiased_false", lambda x, dim, keepdim: x.var(dim, unbiased=False, keepdim=keepdim),
        lambda a, dim, keepdim: np_var(a, dim, keepdim, 0)),
    red("std", lambda x, dim, keepdim, correction: x.std(dim, keepdim=keepdim, correction=correction),
        lambda a, **kw: np.sqrt(np_var(a, **kw)),
        reduction(extra=CORRECTION), grad_domain=DISTINCT, unique=True,
        # std has a kink where all reduced values are equal: no expanded layout, at least 2 values
        grad_layouts=tuple(k for k in ALL_LAYOUTS if k != "expanded"),
        grad_sample=reduction(min_side=2, min_dims=1, extra=CORRECTION)),
    red("amax", lambda x, dim, keepdim: x.amax(dim, keepdim), np_reduce(np.max), reduction(nonempty=True),
        grad_domain=DISTINCT, unique=True),
    red("amin", lambda x, dim, keepdim: tt.amin(x, dim, keepdim), np_reduce(np.min), reduction(nonempty=True),
        grad_domain=DISTINCT, unique=True),
    red("amax_nonfinite", lambda x, dim, keepdim: x.amax(dim, keepdim), np_reduce(np.max),
        reduction(nonempty=True), domain=NONFINITE, grad=False),
    red("max_dim", lambda x, dim, keepdim: x.max(dim, keepdim), np_max_dim(np.max, np.argmax),
        reduction(dim="int", nonempty=True), grad_domain=DISTINCT, unique=True),
    red("min_dim", lambda x, dim, keepdim: x.min(dim=dim, keepdim=keepdim), np_max_dim(np.min, np.argmin),
        reduction(dim="int", nonempty=True), grad_domain=DISTINCT, unique=True),
    red("max_all", lambda x: x.max(), np.max, sample(min_side=1), grad_domain=DISTINCT, unique=True),
    red("min_all", lambda x: x.min(), np.min, sample(min_side=1), grad_domain=DISTINCT, unique=True),
    red("argmax", lambda x, dim, keepdim: x.argmax(dim, keepdim), np_arg(np.argmax),
        reduction(dim="optional", nonempty=True), domain=TIES, grad=False),
    red("argmin", lambda x, dim, keepdim: x.argmin(dim=dim, keepdim=keepdim), np_arg(np.argmin),
        reduction(dim="optional", nonempty=True), domain=TIES, grad=False),
    red("argmax_nonfinite", lambda x, dim, keepdim: x.argmax(dim, keepdim), np_arg(np.argmax),
        reduction(dim="optional", nonempty=True), domain=NONFINITE, grad=False),
    red("all", lambda x, dim, keepdim: x.all(dim, keepdim), lambda a, dim, keepdim: np_reduce(np.all)(
        a != 0, dim, keepdim), domain=LOGIC, grad=False),
    red("any", lambda x, dim, keepdim: tt.any(x, dim, keepdim), lambda a, dim, keepdim: np_reduce(np.any)(
        a != 0, dim, keepdim), domain=LOGIC, grad=False),
    red("logsumexp", lambda x, dim, keepdim: x.logsumexp(dim, keepdim), np_logsumexp, domain=WIDE,
        grad_domain=REAL),
    red("norm", lambda x, dim, keepdim, p: x.norm(p, dim, keepdim), lambda a, p, **kw: np_norm(a, p, **kw),
        reduction(extra=st.fixed_dictionaries({"p": st.sampled_from([2, 1, 3])})), grad_domain=NONZERO),
    red("softmax", lambda x, dim: x.softmax(dim), np_softmax, one_dim(None, min_dims=0), domain=WIDE,
        grad_domain=REAL),
    red("log_softmax", lambda x, dim: x.log_softmax(dim), lambda a, dim: np_softmax(a, dim, log=True),
        one_dim(None, min_dims=0), domain=WIDE, grad_domain=REAL),
    # -- matmul
    Op("matmul", lambda a, b: a @ b, np.matmul, matmul_sample()),
    Op("matmul_fn", lambda a, b: tt.matmul(a, b), np.matmul, matmul_sample()),
    # -- movement ops: views of the input's storage
    Op("reshape", lambda x, shape: x.reshape(shape), lambda a, shape: a.reshape(shape), reshape_sample()),
    Op("view", tt_view, lambda a, shape: a.reshape(shape), reshape_sample()),
    Op("permute", lambda x, dims: x.permute(dims), lambda a, dims: np.transpose(a, [d % a.ndim for d in dims]),
       sample(kw=permute_kw), view=True),
    Op("transpose", lambda x, d0, d1: x.transpose(d0, d1),
       lambda a, d0, d1: np.swapaxes(a, d0, d1) if a.ndim else a,
       sample(kw=transpose_kw), view=True),
    Op("T", lambda x: x.T, lambda a: a.T, UNARY, view=True),
    Op("mT", lambda x: x.mT, lambda a: np.swapaxes(a, -1, -2), sample(min_dims=2), view=True),
    Op("t", lambda x: x.t(), lambda a: a.T, sample(max_dims=2), view=True),
    Op("expand", lambda x, size: x.expand(size),
       np_expand, expand_sample(), view=True),
    Op("squeeze", lambda x, dim: x.squeeze(dim), np_squeeze,
       sample(kw=squeeze_kw, max_side=2), view=True),
    Op("unsqueeze", lambda x, dim: x.unsqueeze(dim), lambda a, dim: np.expand_dims(a, dim % (a.ndim + 1)),
       sample(kw=unsqueeze_kw, max_side=2), view=True),
    Op("flatten", lambda x, start_dim, end_dim: x.flatten(start_dim, end_dim), np_flatten,
       sample(kw=flatten_kw)),
    Op("unflatten", lambda x, dim, sizes: x.unflatten(dim, sizes), np_unflatten,
       one_dim(unflatten_kw), view=True),
    Op("narrow", lambda x, dim, start, length: x.narrow(dim, start, length), np_narrow,
       one_dim(narrow_kw), view=True),
    Op("flip", lambda x, dims: x.flip(dims), lambda a, dims: np.flip(a, axes(dims, a.ndim)),
       sample(kw=flip_kw), view=True),
    Op("unfold", lambda x, dim, size, step: x.unfold(dim, size, step), np_unfold,
       one_dim(unfold_kw, min_dims=0, nonempty=True), view=True),
    Op("diagonal", lambda x, offset, dim1, dim2: x.diagonal(offset, dim1, dim2),
       lambda a, offset, dim1, dim2: np.diagonal(a, offset, dim1 % a.ndim, dim2 % a.ndim),
       sample(min_dims=2, kw=diagonal_kw), view=True),
    Op("as_strided", tt_as_strided, np_as_strided, as_strided_sample()),
    Op("split", lambda x, split, dim: x.split(split, dim), np_split, split_sample(), view=True),
    Op("chunk", lambda x, chunks, dim: x.chunk(chunks, dim),
       lambda a, chunks, dim: np_split(a, -(-a.shape[dim] // chunks), dim) if a.shape[dim] else (a,) * chunks,
       one_dim(chunk_kw), view=True),
    Op("unbind", lambda x, dim: x.unbind(dim), lambda a, dim: tuple(np.moveaxis(a, dim, 0)), one_dim(None),
       view=True),
    Op("select", lambda x, dim, index: x.select(dim, index), lambda a, dim, index: np.take(a, index, axis=dim),
       one_dim(select_kw, nonempty=True), view=True),
    Op("basic_index", lambda x, key: x[key], lambda a, key: a[key], basic_index(), view=True),
    Op("advanced_index", lambda x, key: x[tt_key(key)], np_index, advanced_index()),
    # -- gather / scatter
    Op("gather", lambda x, idx, dim: x.gather(dim, idx), np_gather, gather_sample(), view=False),
    Op("scatter_add", lambda x, idx, src, dim: x.scatter_add(dim, idx, src), np_scatter_add,
       gather_sample(scatter=True), view=False),
    Op("index_select", lambda x, idx, dim: x.index_select(dim, idx),
       lambda a, idx, dim: np.take(a, idx.reshape(-1), axis=dim), index_select_sample(), view=False),
    Op("index_add", lambda x, idx, src, dim, alpha: x.index_add(dim, idx, src, alpha=alpha), np_index_add,
       index_select_sample(add=True), view=False),
    # -- joining, masks, repeats, copies
    Op("cat", lambda *xs, dim: tt.cat(list(xs), dim), lambda *a, dim: np.concatenate(a, axis=dim), cat_sample()),
    Op("stack", lambda *xs, dim: tt.stack(xs, dim=dim), lambda *a, dim: np.stack(a, axis=dim), cat_sample(True)),
    Op("tril", lambda x, diagonal: x.tril(diagonal), lambda a, diagonal: np.tril(a, diagonal),
       sample(min_dims=2, kw=tri_kw)),
    Op("triu", lambda x, diagonal: tt.triu(x, diagonal), lambda a, diagonal: np.triu(a, diagonal),
       sample(min_dims=2, kw=tri_kw)),
    Op("repeat", lambda x, sizes: x.repeat(*sizes), lambda a, sizes: np.tile(a, sizes),
       sample(kw=repeat_kw, max_side=3)),
    Op("contiguous", lambda x: x.contiguous(), lambda a: a.copy(), UNARY),
    Op("clone", lambda x: x.clone(), lambda a: a.copy(), UNARY, view=False),
    Op("to_float32", lambda x: x.to(tt.float32), lambda a: a.astype(np.float32), UNARY, grad_domain=OFF_GRID,
       fd_eps=1 / 64, grad_tol=(1e-6, 1e-7)),
    Op("to_float64", lambda x: x.to(dtype=tt.float64), lambda a: a.copy(), UNARY, out_dtype=tt.float64),
    Op("to_int64", lambda x: x.long(), lambda a: np.trunc(a).astype(np.int64), UNARY, grad=False),
    Op("to_bool", lambda x: x.to(tt.bool), lambda a: a != 0, UNARY, LOGIC, grad=False),
    # -- integer tensors (forward only)
    binary("add_int", lambda a, b: a + b, np.add, INTS, dtypes=(I64,), grad=False),
    binary("mul_int", lambda a, b: a * b, np.multiply, INTS, dtypes=(I64,), grad=False),
    binary("sub_int", lambda a, b: a - b, np.subtract, INTS, dtypes=(I64,), grad=False),
    binary("remainder_int", lambda a, b: a % b, np.remainder, [INTS, NONZERO_INTS], dtypes=(I64,), grad=False),
    binary("maximum_int", lambda a, b: a.maximum(b), np.maximum, INTS, dtypes=(I64,), grad=False),
    binary("lt_int", lambda a, b: a < b, np.less, INTS, dtypes=(I64,), grad=False),
    binary("div_int", lambda a, b: a / b, lambda a, b: a / b, [INTS, NONZERO_INTS], dtypes=(I64,), grad=False,
           out_dtype=tt.float32, tol64=(1e-6, 1e-6)),
    unary("neg_int", lambda x: -x, np.negative, INTS, dtypes=(I64,), grad=False),
    unary("abs_int", lambda x: x.abs(), np.abs, INTS, dtypes=(I64,), grad=False),
    unary("mul_float_scalar_int", lambda x: x * 1.5, lambda a: a * 1.5, INTS, dtypes=(I64,), grad=False,
          out_dtype=tt.float32, tol64=(1e-6, 1e-6)),
    red("sum_int", lambda x, dim, keepdim: x.sum(dim, keepdim), np_reduce(np.sum), domain=INTS, dtypes=(I64,),
        grad=False),
    red("amax_int", lambda x, dim, keepdim: x.amax(dim, keepdim), np_reduce(np.max), reduction(nonempty=True),
        domain=INTS, dtypes=(I64,), grad=False),
    red("argmin_int", lambda x, dim, keepdim: x.argmin(dim, keepdim), np_arg(np.argmin),
        reduction(dim="optional", nonempty=True), domain=INTS, dtypes=(I64,), grad=False),
    Op("matmul_int", lambda a, b: a @ b, np.matmul, matmul_sample(), INTS, dtypes=(I64,), grad=False),
]


# ---- the generic tests -----------------------------------------------------------------------------

def as_tuple(x):
    return tuple(x) if isinstance(x, (tuple, list)) else (x,)


def domain_of(op, i, grad=False):
    d = (op.grad_domain if grad and op.grad_domain is not None else op.domain)
    return d[i] if isinstance(d, list) else d


def draw_values(data, shape, domain, unique):
    return data.draw(hnp.arrays(np.float64, shape, elements=domain, unique=unique), label="base values")


def expected_dtype(op, expected: np.ndarray, dtype):
    if expected.dtype == np.bool_:
        return tt.bool
    if expected.dtype.kind in "iu":
        return tt.int64
    if op.out_dtype is not None:
        return op.out_dtype
    return tt.float32 if expected.dtype == np.float32 else dtype


def assert_matches(op, out, expected, dtype, tol):
    """out (a tensor or tuple of tensors) equals the reference: shape, dtype, values."""
    outs, exps = as_tuple(out), as_tuple(expected)
    assert len(outs) == len(exps), f"{op.name}: {len(outs)} outputs, reference has {len(exps)}"
    for o, e in zip(outs, exps):
        e = np.asarray(e)
        assert isinstance(o, tt.Tensor), f"{op.name}: returned {type(o).__name__}"
        assert o.shape == e.shape, f"{op.name}: shape {o.shape}, reference {e.shape}"
        assert o.dtype == expected_dtype(op, e, dtype), f"{op.name}: dtype {o.dtype}"
        got = o.detach().numpy()
        if e.dtype.kind == "f":
            np.testing.assert_allclose(got.astype(np.float64), e, rtol=tol[0], atol=tol[1], equal_nan=True,
                                       err_msg=f"{op.name} {dtype}")
        else:
            np.testing.assert_array_equal(got, e, err_msg=f"{op.name} {dtype}")


def reference(op, arrays, kw):
    """The NumPy result, quietly: NaN from an empty mean or log(0) is part of what is compared."""
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return op.ref(*arrays, **kw)


def check_forward(op, data):
    specs, kw = data.draw(op.sample, label="sample")
    layouts = [data.draw(st.sampled_from(ALL_LAYOUTS), label="layout") for _ in specs]
    plans = [layout_plan(s, k) if isinstance(s, tuple) else None for s, k in zip(specs, layouts)]
    bases = [draw_values(data, p.base_shape, domain_of(op, i), op.unique) for i, p in enumerate(filter(None, plans))]
    for dtype, np_dtype in op.dtypes:
        inputs, arrays, it = [], [], iter(bases)
        for spec, layout, plan in zip(specs, layouts, plans):
            if plan is None:  # an int/bool argument (an index): strided too
                t, a = make_layout(spec, layout, tt.int64 if spec.dtype.kind in "iu" else tt.bool)
            else:  # the reference sees the same (float32-rounded) values, in float64
                base = next(it).astype(np_dtype)
                t, a = plan.view(tt.tensor(base, dtype=dtype)), plan.np_view(base)
                a = a.astype(np.float64) if a.dtype.kind == "f" else a
            inputs.append(t)
            arrays.append(a)
        expected = reference(op, arrays, kw)
        out = op.fn(*inputs, **kw)
        assert_matches(op, out, expected, dtype, op.tol64 if dtype is tt.float64 else op.tol32)
        if op.view is not None and inputs[0].numel():
            for o in as_tuple(out):
                if o.numel():
                    assert (o._buf is inputs[0]._buf) == op.view, f"{op.name}: shares storage: {not op.view}"


def check_grad(op, data):
    specs, kw = data.draw(op.sample if op.grad_sample is None else op.grad_sample, label="sample")
    plans = [layout_plan(s, data.draw(st.sampled_from(op.grad_layouts), label="layout")) if isinstance(s, tuple)
             else None for s in specs]
    bases = [draw_values(data, p.base_shape, domain_of(op, i, grad=True), op.unique)
             for i, p in enumerate(filter(None, plans))]

    def arguments(values, view, other):
        """Inputs in order: float inputs as view(plan, base value), the others through other(spec)."""
        it = iter(values)
        return [view(p, next(it)) if p else other(s) for s, p in zip(specs, plans)]

    def np_outputs(values):
        outs = as_tuple(reference(op, arguments(values, lambda p, b: p.np_view(b), lambda s: s), kw))
        return [np.asarray(o) for o in outs if np.asarray(o).dtype.kind == "f"]

    expected = np_outputs(bases)
    assume(all(np.isfinite(o).all() for o in expected))  # e.g. var of one element: no gradient to check
    rng = np.random.default_rng(data.draw(st.integers(0, 2 ** 32 - 1), label="weight seed"))
    weights = [rng.standard_normal(o.shape) for o in expected]

    def tt_grads(contiguous: bool):
        """d sum(out * w) / d base, the bases being the leaves and the views built from them."""
        leaves = [tt.tensor(b, dtype=tt.float64, requires_grad=True) for b in bases]
        views = arguments(leaves, lambda p, leaf: p.view(leaf).contiguous() if contiguous else p.view(leaf),
                          tt.tensor)
        outs = [o for o in as_tuple(op.fn(*views, **kw)) if o.dtype.is_floating_point]
        assert len(outs) == len(weights), f"{op.name}: {len(outs)} float outputs"
        loss = sum(((o * tt.tensor(w)).sum() for o, w in zip(outs, weights)), tt.tensor(0.0, dtype=tt.float64))
        if loss.requires_grad:
            loss.backward()
        return [np.zeros_like(b) if leaf.grad is None else leaf.grad.numpy() for b, leaf in zip(bases, leaves)]

    grads = tt_grads(contiguous=False)
    rtol, atol = op.grad_tol
    for i, (b, g) in enumerate(zip(bases, grads)):
        assert g.shape == b.shape and g.dtype == np.float64

        def loss(x, i=i):
            return sum(float(np.sum(o * w)) for o, w in zip(np_outputs(bases[:i] + [x] + bases[i + 1:]), weights))
        num = numerical_grad(loss, b.copy(), op.fd_eps)
        scale = max(1.0, float(np.abs(num).max(initial=0)))
        np.testing.assert_allclose(g, num, rtol=rtol, atol=atol * scale, err_msg=f"{op.name}: input {i} vs numerical")
    for i, (g, gc) in enumerate(zip(grads, tt_grads(contiguous=True))):
        np.testing.assert_allclose(g, gc, rtol=1e-9, atol=1e-12, err_msg=f"{op.name}: input {i} vs contiguous")


GRAD_EXAMPLES = 25


def run_hypothesis(op, check, max_examples=None):
    @settings(**({"max_examples": max_examples} if max_examples else {}))
    @given(data=st.data())
    def run(data):
        check(op, data)
    run()


@pytest.mark.parametrize("op", OPS, ids=lambda op: op.name)
def test_forward(op):
    run_hypothesis(op, check_forward, op.examples)


@pytest.mark.parametrize("op", [op for op in OPS if op.grad], ids=lambda op: op.name)
def test_grad(op):
    # finite differences cost a forward per base element: fewer examples than the profile's default
    run_hypothesis(op, check_grad, op.examples or min(settings.default.max_examples, GRAD_EXAMPLES))


def test_table_names_are_unique():
    names = [op.name for op in OPS]
    assert len(names) == len(set(names))
