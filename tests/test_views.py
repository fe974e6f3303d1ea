"""Movement ops are views: random chains of them on a tinytensor tensor and on a NumPy array must agree.

Every step of a chain is applied to both; we compare shape, strides (x itemsize), storage offset,
the C-contiguity flag and the values, check that the result still shares the base's storage, and
finish with a write through the last view that must land in the same places of both bases.

Known NumPy/PyTorch differences, and how the comparison handles them:
- strides of size-1 dims are arbitrary: `a[:, None]` gives stride 0 in NumPy while PyTorch's
  unsqueeze gives size*stride of the next dim. tinytensor follows PyTorch mostly but not always
  (new leading size-1 dims of expand get stride 0, PyTorch gives size*stride; reshaping a
  one-element view with odd strides gives C strides). No element is ever reached through a
  size-1 dim's stride, so both comparisons skip size-1 dims.
- an empty view touches no memory, so neither strides nor offset mean anything: not compared.
- the C-contiguity flag agrees: both ignore strides of size-1 dims and call empty arrays contiguous.
- NumPy has negative strides (flip, `[::-1]`); PyTorch copies in flip and rejects negative steps.
  tinytensor follows NumPy here (views), so those ops are left out of the PyTorch oracle test.
"""
import math

import ml_dtypes
import numpy as np
import pytest
from hypothesis import given, strategies as st

import tinytensor as tt
from helpers import shapes

DTYPES = [(tt.float64, np.float64), (tt.float32, np.float32), (tt.int16, np.int16), (tt.uint8, np.uint8),
          (tt.bfloat16, ml_dtypes.bfloat16)]


def ptr(a: np.ndarray) -> int:
    return a.__array_interface__["data"][0]


# ---- drawing one movement op for a given shape -------------------------------------------------
# Each drawer returns (description, op) where op(x, lib) works on a tinytensor or torch tensor (lib
# is None) and on a NumPy array (lib is np), or None when the op does not apply to this shape.

def _factor_shape(draw, numel: int, max_dims: int = 4) -> tuple:
    """A random shape with `numel` elements (maybe with one -1)."""
    if numel == 0:
        dims = [draw(st.integers(0, 3)) for _ in range(draw(st.integers(1, max_dims)))]
        dims[draw(st.integers(0, len(dims) - 1))] = 0
        return tuple(dims)
    dims = [1] * draw(st.integers(0 if numel == 1 else 1, max_dims))
    n, p = numel, 2
    while n > 1:  # spread the prime factors over the dims
        while n % p == 0:
            dims[draw(st.integers(0, len(dims) - 1))] *= p
            n //= p
        p += 1
    if dims and draw(st.booleans()):
        dims[draw(st.integers(0, len(dims) - 1))] = -1
    return tuple(dims)


def _dim(draw, ndim, extra=0):
    return draw(st.integers(-ndim - extra, ndim - 1 + extra))


def _np_reshape(a, shape, copy=None):
    return np.reshape(a, shape, copy=copy)


def draw_reshape(draw, shape, positive):
    new = _factor_shape(draw, math.prod(shape))
    return f"reshape{new}", lambda x, lib: _np_reshape(x, new) if lib is np else x.reshape(new)


def draw_view(draw, shape, positive):
    new = _factor_shape(draw, math.prod(shape))
    # NumPy's copy=False raises ValueError exactly when PyTorch's view raises RuntimeError
    return f"view{new}", lambda x, lib: _np_reshape(x, new, copy=False) if lib is np else x.view(new)


def draw_permute(draw, shape, positive):
    perm = tuple(draw(st.permutations(range(len(shape)))))
    return f"permute{perm}", lambda x, lib: np.transpose(x, perm) if lib is np else x.permute(perm)


def draw_transpose(draw, shape, positive):
    if not shape:
        return None
    d0, d1 = _dim(draw, len(shape)), _dim(draw, len(shape))
    return f"transpose({d0}, {d1})", lambda x, lib: np.swapaxes(x, d0, d1) if lib is np else x.transpose(d0, d1)


def draw_T(draw, shape, positive):
    if positive and len(shape) != 2:  # torch deprecates .T on other than 2 dims
        return None
    return "T", lambda x, lib: x.T


def draw_mT(draw, shape, positive):
    if len(shape) < 2:
        return None
    return "mT", lambda x, lib: np.swapaxes(x, -1, -2) if lib is np else x.mT


def draw_expand(draw, shape, positive):
    lead = [draw(st.integers(0, 3)) for _ in range(draw(st.integers(0, 2)))]
    target = lead + [draw(st.integers(0, 3)) if n == 1 else n for n in shape]
    use_minus_one = draw(st.booleans())
    arg = tuple(lead) + tuple(-1 if use_minus_one and n != 1 else t for n, t in zip(shape, target[len(lead):]))
    target = tuple(target)
    if draw(st.booleans()):
        return (f"expand{arg}",
                lambda x, lib: np.broadcast_to(x, target) if lib is np else x.expand(*arg) if arg else x.expand(arg))
    return f"broadcast_to{target}", lambda x, lib: np.broadcast_to(x, target) if lib is np else x.broadcast_to(target)


def draw_squeeze(draw, shape, positive):
    kind = draw(st.sampled_from(["all", "one", "tuple"])) if shape else "all"
    if kind == "all":
        return "squeeze()", lambda x, lib: np.squeeze(x) if lib is np else x.squeeze()
    dims = tuple(sorted({_dim(draw, len(shape)) % len(shape) for _ in range(draw(st.integers(1, 2)))}))
    if kind == "one":
        dims = dims[:1]
    ones = tuple(d for d in dims if shape[d] == 1)  # NumPy refuses to squeeze other dims, PyTorch ignores them
    arg = dims[0] if kind == "one" else dims
    return f"squeeze({arg})", lambda x, lib: np.squeeze(x, ones) if lib is np else x.squeeze(arg)


def draw_unsqueeze(draw, shape, positive):
    d = _dim(draw, len(shape), extra=1)
    return f"unsqueeze({d})", lambda x, lib: np.expand_dims(x, d) if lib is np else x.unsqueeze(d)


def draw_flatten(draw, shape, positive):
    if not shape:
        return "flatten()", lambda x, lib: np.reshape(x, (1,)) if lib is np else x.flatten()
    s, e = sorted((_dim(draw, len(shape)) % len(shape), _dim(draw, len(shape)) % len(shape)))
    new = shape[:s] + (math.prod(shape[s:e + 1]),) + shape[e + 1:]
    return f"flatten({s}, {e})", lambda x, lib: np.reshape(x, new) if lib is np else x.flatten(s, e)


def draw_unflatten(draw, shape, positive):
    if not shape or 0 in shape:
        return None
    d = draw(st.integers(0, len(shape) - 1))
    sizes = _factor_shape(draw, shape[d], max_dims=3) or (1,)  # may hold one -1
    resolved = tuple(shape[d] // -math.prod(sizes) if n == -1 else n for n in sizes)
    new = shape[:d] + resolved + shape[d + 1:]
    return f"unflatten({d}, {sizes})", lambda x, lib: np.reshape(x, new) if lib is np else x.unflatten(d, sizes)


def draw_narrow(draw, shape, positive):
    if not shape:
        return None
    d = draw(st.integers(0, len(shape) - 1))
    start = draw(st.integers(0, shape[d]))
    length = draw(st.integers(0, shape[d] - start))
    key = (slice(None),) * d + (slice(start, start + length),)
    return f"narrow({d}, {start}, {length})", lambda x, lib: x[key] if lib is np else x.narrow(d, start, length)


def draw_flip(draw, shape, positive):
    if positive or not shape:
        return None
    dims = tuple(draw(st.sets(st.integers(0, len(shape) - 1), min_size=1)))
    return f"flip{dims}", lambda x, lib: np.flip(x, dims) if lib is np else x.flip(dims)


def _np_unfold(x, d, size, step):
    w = np.lib.stride_tricks.sliding_window_view(x, size, axis=d, writeable=x.flags.writeable)
    return w[(slice(None),) * d + (slice(None, None, step),)]


def draw_unfold(draw, shape, positive):
    if not shape:
        return None
    d = draw(st.integers(0, len(shape) - 1))
    size, step = draw(st.integers(0, shape[d])), draw(st.integers(1, 3))
    return (f"unfold({d}, {size}, {step})",
            lambda x, lib: _np_unfold(x, d, size, step) if lib is np else x.unfold(d, size, step))


def draw_diagonal(draw, shape, positive):
    if len(shape) < 2:
        return None
    d1, d2 = draw(st.lists(st.integers(0, len(shape) - 1), min_size=2, max_size=2, unique=True))
    off = draw(st.integers(-3, 3))
    return (f"diagonal({off}, {d1}, {d2})",
            lambda x, lib: np.diagonal(x, off, d1, d2) if lib is np else x.diagonal(off, d1, d2))


def draw_split(draw, shape, positive):
    if not shape or shape[0] == 0:
        return None
    d = draw(st.integers(0, len(shape) - 1))
    n = shape[d]
    if n == 0:
        return None
    if draw(st.booleans()):
        k = draw(st.integers(1, n + 1))
        pieces = -(-n // k)
        i = draw(st.integers(0, pieces - 1))
        return (f"split({k}, {d})[{i}]",
                lambda x, lib: np.split(x, list(range(k, n, k)), axis=d)[i] if lib is np else x.split(k, d)[i])
    chunks = draw(st.integers(1, n + 1))
    k = -(-n // chunks)  # torch.chunk: pieces of ceil(n / chunks), maybe fewer pieces than asked
    i = draw(st.integers(0, -(-n // k) - 1))
    return (f"chunk({chunks}, {d})[{i}]",
            lambda x, lib: np.split(x, list(range(k, n, k)), axis=d)[i] if lib is np else x.chunk(chunks, d)[i])


def draw_select(draw, shape, positive):
    if not shape or shape[0] == 0:
        return None
    d = draw(st.integers(0, len(shape) - 1))
    if shape[d] == 0:
        return None
    i = draw(st.integers(-shape[d], shape[d] - 1))
    key = (slice(None),) * d + (i, Ellipsis)
    return f"select({d}, {i})", lambda x, lib: x[key] if lib is np else x.select(d, i)


def _draw_index_item(draw, n, positive):
    kind = draw(st.sampled_from(["int", "slice", "slice", "full"]) if n else st.sampled_from(["slice", "full"]))
    if kind == "int":
        return draw(st.integers(-n, n - 1))
    if kind == "full":
        return slice(None)
    bound = st.none() | st.integers(-n - 2, n + 2)
    step = st.none() | (st.integers(1, 3) if positive else st.integers(-3, 3).filter(bool))
    return slice(draw(bound), draw(bound), draw(step))


def draw_index(draw, shape, positive):
    ndim = len(shape)
    front = draw(st.integers(0, ndim))
    ellipsis = draw(st.booleans())
    back = draw(st.integers(0, ndim - front)) if ellipsis else 0
    key = [_draw_index_item(draw, n, positive) for n in shape[:front]]
    if ellipsis:
        key.append(Ellipsis)
        key += [_draw_index_item(draw, n, positive) for n in shape[ndim - back:]]
    for _ in range(draw(st.integers(0, 2))):
        key.insert(draw(st.integers(0, len(key))), None)
    key = tuple(key)
    single = len(key) == 1 and draw(st.booleans())
    arg = key[0] if single else key
    # NumPy turns a full integer index into a scalar, not a 0-d view; a trailing ... keeps it a view
    np_key = key if Ellipsis in key else key + (Ellipsis,)
    return f"[{key}]", lambda x, lib: x[np_key] if lib is np else x[arg]


def draw_as_strided(draw, shape, positive, storage_numel=None):
    if not storage_numel:
        return None
    size = tuple(draw(st.lists(st.integers(0, 3), max_size=3)))
    stride = tuple(draw(st.integers(0, 3)) for _ in size)
    reach = sum((n - 1) * s for n, s in zip(size, stride)) if all(size) else 0
    if reach >= storage_numel:
        return None
    off = draw(st.integers(0, storage_numel - 1 - reach))

    def op(x, lib):
        if lib is np:  # x is the flat NumPy storage here, see apply()
            item = x.itemsize
            return np.lib.stride_tricks.as_strided(x[off:], size, tuple(s * item for s in stride))
        return x.as_strided(size, stride, off)
    return f"as_strided({size}, {stride}, {off})", op


DRAWERS = [draw_reshape, draw_view, draw_permute, draw_transpose, draw_T, draw_mT, draw_expand, draw_squeeze,
           draw_unsqueeze, draw_flatten, draw_unflatten, draw_narrow, draw_flip, draw_unfold, draw_diagonal,
           draw_split, draw_select, draw_index, draw_as_strided]


# ---- the chain --------------------------------------------------------------------------------

class Chain:
    """The current view on both sides, and the storage (root) each one is a view of."""

    def __init__(self, values: np.ndarray, dtype):
        self.np_root = values.copy().reshape(-1)
        self.tt_root = tt.tensor(values.reshape(-1), dtype=dtype)
        self.a, self.t = self.np_root.reshape(values.shape), self.tt_root.reshape(values.shape)
        self.log = []

    def np_offset(self, a) -> int:
        return (ptr(a) - ptr(self.np_root)) // a.itemsize

    def positions(self, a) -> np.ndarray:
        """Storage index of every element of the NumPy view (to tell overlapping views)."""
        pos = np.arange(self.np_root.size, dtype=np.int64)
        strides = tuple(s // a.itemsize * 8 for s in a.strides)
        return np.ndarray(a.shape, np.int64, buffer=pos, offset=self.np_offset(a) * 8, strides=strides)

    def writable(self, a) -> np.ndarray:
        return np.ndarray(a.shape, a.dtype, buffer=self.np_root, offset=self.np_offset(a) * a.itemsize,
                          strides=a.strides)


def check_same_view(t, a, chain: Chain):
    ctx = " -> ".join(chain.log)
    assert tuple(t.shape) == a.shape, ctx
    assert t.is_contiguous() == a.flags.c_contiguous, ctx
    if a.size:
        item = a.itemsize
        assert t.element_size() == item
        for n, s, s_np in zip(a.shape, t.stride(), a.strides):
            if n > 1:
                assert s * item == s_np, (ctx, t.stride(), a.strides)
        assert t.storage_offset() == chain.np_offset(a), ctx
        assert np.shares_memory(t.numpy(), chain.tt_root.numpy()), ctx
    expected = a.astype(np.float64)
    np.testing.assert_array_equal(t.numpy().astype(np.float64), expected, err_msg=ctx)
    np.testing.assert_array_equal(t.clone().numpy().astype(np.float64), expected, err_msg=ctx)  # strided read


def apply(chain: Chain, desc: str, op) -> bool:
    """One step on both sides; False when the chain must stop (a view() that cannot exist)."""
    chain.log.append(desc)
    if desc.startswith("as_strided"):
        a = op(chain.np_root, np)
    elif desc.startswith("view"):
        try:
            a = op(chain.a, np)
        except ValueError:
            with pytest.raises(RuntimeError, match="view"):
                op(chain.t, None)
            return False
    else:
        a = op(chain.a, np)
    t = op(chain.t, None)
    if a.size and not np.shares_memory(a, chain.np_root):  # NumPy copied (reshape): tinytensor must too
        assert desc.startswith(("reshape", "flatten")), desc
        assert not np.shares_memory(t.numpy(), chain.tt_root.numpy()), " -> ".join(chain.log)
        chain.np_root, chain.tt_root = np.ascontiguousarray(a).reshape(-1), t.reshape(-1)
        a = chain.np_root.reshape(a.shape)
        assert t.is_contiguous() and t.storage_offset() == 0
    chain.a, chain.t = a, t
    check_same_view(t, a, chain)
    return True


def write_through(chain: Chain, mode: str):
    """Write through the last view on both sides; both storages must end up equal."""
    a, t = chain.a, chain.t
    if not a.size:
        return
    w = chain.writable(a)
    pos = chain.positions(a)
    if mode in ("values", "add_") and np.unique(pos).size < pos.size:
        mode = "fill"  # overlapping views (stride 0, unfold windows) only take one value everywhere
    if mode == "fill":
        t.fill_(7)
        w[...] = 7
    elif mode == "setitem":
        t[...] = 5
        w[...] = 5
    elif mode == "values":
        src = (np.arange(a.size) % 50 + 100).reshape(a.shape).astype(a.dtype)
        t[...] = tt.tensor(src)
        w[...] = src
    else:
        t.add_(1)
        w += 1
    ctx = " -> ".join(chain.log + [mode])
    np.testing.assert_array_equal(chain.tt_root.numpy().astype(np.float64), chain.np_root.astype(np.float64),
                                  err_msg=ctx)
    np.testing.assert_array_equal(t.numpy().astype(np.float64), a.astype(np.float64), err_msg=ctx)


@given(st.data(), shapes(0, 4, 0, 4), st.sampled_from(DTYPES), st.integers(1, 6),
       st.sampled_from(["fill", "setitem", "values", "add_"]))
def test_random_view_chain_matches_numpy(data, shape, dtypes, length, mode):
    tdtype, npdtype = dtypes
    values = (np.arange(math.prod(shape)) % 97).astype(npdtype).reshape(shape)
    chain = Chain(values, tdtype)
    first = (chain.np_root, chain.tt_root)
    for _ in range(length):
        drawer = data.draw(st.sampled_from(DRAWERS))
        extra = {"storage_numel": chain.np_root.size} if drawer is draw_as_strided else {}
        drawn = drawer(data.draw, chain.a.shape, False, **extra)
        if drawn is not None and not apply(chain, *drawn):
            break
    write_through(chain, mode)
    # the original storage got the write too unless a reshape copied along the way
    np.testing.assert_array_equal(first[1].numpy().astype(np.float64), first[0].astype(np.float64))


@given(st.data(), shapes(0, 4, 0, 4), st.integers(1, 6))
def test_random_view_chain_matches_torch_strides(data, shape, length):
    """PyTorch as the oracle for its API's semantics and offsets (ops with positive strides only)."""
    torch = pytest.importorskip("torch")
    values = np.arange(math.prod(shape), dtype=np.float32).reshape(shape)
    t, p = tt.tensor(values), torch.tensor(values)
    log = []
    for _ in range(length):
        drawer = data.draw(st.sampled_from(DRAWERS))
        extra = {"storage_numel": p.untyped_storage().nbytes() // 4} if drawer is draw_as_strided else {}
        drawn = drawer(data.draw, tuple(t.shape), True, **extra)
        if drawn is None:
            continue
        desc, op = drawn
        log.append(desc)
        try:
            p = op(p, None)
        except RuntimeError:
            with pytest.raises(RuntimeError):
                op(t, None)
            break
        t = op(t, None)
        ctx = " -> ".join(log)
        assert tuple(t.shape) == tuple(p.shape), ctx
        assert t.is_contiguous() == p.is_contiguous(), ctx
        if p.numel():
            assert [s for s, n in zip(t.stride(), t.shape) if n > 1] == \
                [s for s, n in zip(p.stride(), p.shape) if n > 1], (ctx, t.stride(), p.stride())
            assert t.storage_offset() == p.storage_offset(), ctx
        np.testing.assert_array_equal(t.numpy(), p.numpy(), err_msg=ctx)


# ---- specific cases --------------------------------------------------------------------------

def test_view_raises_where_no_view_exists_and_reshape_copies_exactly_then():
    x = tt.arange(24.0).reshape(2, 3, 4)
    xt = x.transpose(0, 1)  # (3, 2, 4), strides (4, 12, 1)
    with pytest.raises(RuntimeError, match=r"view: shape \(6, 4\)"):
        xt.view(6, 4)
    r = xt.reshape(6, 4)
    assert r.is_contiguous() and r.data_ptr() != x.data_ptr()
    np.testing.assert_array_equal(r.numpy(), np.arange(24.0).reshape(2, 3, 4).transpose(1, 0, 2).reshape(6, 4))
    r.fill_(-1)
    assert x.numpy().min() == 0  # a copy: the base is untouched
    # splitting a dim is always possible: view works, and reshape returns the same view (no copy)
    v, rv = xt.view(3, 2, 2, 2), xt.reshape(3, 2, 2, 2)
    assert v.stride() == rv.stride() == (4, 12, 2, 1)
    assert v.data_ptr() == rv.data_ptr() == x.data_ptr()
    rv.fill_(5)
    assert (x.numpy() == 5).all()


def test_contiguous_returns_self_only_when_contiguous():
    x = tt.arange(6.0).reshape(2, 3)
    assert x.contiguous() is x
    y = x.T
    c = y.contiguous()
    assert c is not y and c.is_contiguous() and c.stride() == (2, 1)
    np.testing.assert_array_equal(c.numpy(), np.arange(6.0).reshape(2, 3).T)
    c.add_(1)
    assert x.numpy()[0, 0] == 0
    a = np.arange(6.0).reshape(2, 3)
    z = x[1:2].unsqueeze(0)  # (1, 1, 3), strides (3, 3, 1): the strides of size-1 dims do not count
    assert z.is_contiguous() and a[1:2][None].flags.c_contiguous and z.contiguous() is z
    assert not x[:, 1:2].is_contiguous() and not a[:, 1:2].flags.c_contiguous  # (2, 1) with strides (3, 1)


@pytest.mark.parametrize("make", [
    lambda: np.arange(12.0).reshape(3, 4),
    lambda: np.arange(12.0).reshape(3, 4)[:, ::2],
    lambda: np.arange(12.0).reshape(3, 4)[::-1, 1:],
    lambda: np.asfortranarray(np.arange(12.0).reshape(3, 4)),
    lambda: np.array(5.0),
    lambda: np.arange(12, dtype=np.int32).reshape(3, 4).T,
    lambda: np.broadcast_to(np.arange(4.0), (3, 4)).copy()[1:],
])
def test_from_numpy_shares_memory_both_ways(make):
    a = make()
    t = tt.from_numpy(a)
    assert t.shape == a.shape and t.dtype.np == a.dtype
    assert [s * a.itemsize for s in t.stride()] == list(a.strides)
    np.testing.assert_array_equal(t.numpy(), a)
    a[...] = 3  # numpy -> tensor
    assert (t.numpy() == 3).all() and t.sum().item() == 3 * a.size
    t.fill_(4)  # tensor -> numpy
    assert (a == 4).all()
    t.numpy()[...] = 6  # .numpy() shares too
    assert (a == 6).all()


def test_numpy_of_a_view_is_a_view_with_the_same_strides():
    x = tt.arange(24.0).reshape(4, 6)
    v = x[1::2, ::-3]
    a = v.numpy()
    assert a.strides == tuple(s * 4 for s in v.stride())
    a[0, 0] = 100
    assert x[1, 5].item() == 100


def test_advanced_indexing_copies():
    a = np.arange(12.0).reshape(3, 4)
    x = tt.tensor(a)
    cases = [([0, 2], [0, 2]), ((tt.tensor([0, 1]), slice(None)), (np.array([0, 1]), slice(None))),
             (x > 5, a > 5), ((slice(None), [True, False, True, False]), (slice(None), [True, False, True, False]))]
    for key, np_key in cases:
        y = x[key]
        np.testing.assert_array_equal(y.numpy(), a[np_key])
        assert not np.shares_memory(y.numpy(), x.numpy())
        y.fill_(-1)
        assert x.numpy().min() == 0


def test_split_and_chunk_sizes_match_torch_docs():
    x = tt.arange(10.0)
    assert [p.shape[0] for p in x.split(3)] == [3, 3, 3, 1]
    assert [p.shape[0] for p in x.split([2, 5, 3])] == [2, 5, 3]
    assert [p.shape[0] for p in x.chunk(4)] == [3, 3, 3, 1]
    assert [p.shape[0] for p in tt.arange(5.0).chunk(4)] == [2, 2, 1]  # fewer chunks than asked, as in torch
    pieces = x.split(3)
    assert [p.storage_offset() for p in pieces] == [0, 3, 6, 9]
    pieces[1].fill_(-1)
    assert x.numpy()[3:6].tolist() == [-1, -1, -1]


def test_unfold_matches_sliding_window_view():
    a = np.arange(20.0).reshape(4, 5)
    t = tt.tensor(a)
    u = t.unfold(1, 3, 1)  # overlapping windows
    expected = np.lib.stride_tricks.sliding_window_view(a, 3, axis=1)
    np.testing.assert_array_equal(u.numpy(), expected)
    assert [s * 8 for s in u.stride()] == list(expected.strides) and u.shape == expected.shape
    u[0, 1, 1] = -7  # one storage element seen by three windows
    assert t[0, 2].item() == -7 and u[0, 0, 2].item() == -7 and u[0, 2, 0].item() == -7


def test_expanded_view_reads_one_element_many_times():
    x = tt.tensor([[1.0], [2.0]])
    e = x.expand(2, 3)
    assert e.stride() == (1, 0) and not e.is_contiguous()
    x[1, 0] = 9
    np.testing.assert_array_equal(e.numpy(), [[1, 1, 1], [9, 9, 9]])


def test_empty_views_are_contiguous():
    x = tt.zeros(0, 3)
    assert x.T.is_contiguous() and np.zeros((0, 3)).T.flags.c_contiguous
    assert x.T.view(-1).shape == (0,)
