"""The C kernels (backend/cpu.py -> tinytensor._C) against the NumPy reference (backend/ref.py).

Every primitive of backend/base.py, every dtype it accepts, on strided operands: transposed,
stepped, negative-step, stride-0 broadcast, offset windows, 0-d and size-0. Both backends get the
same buffers; their outputs must agree (exactly for integers, to a tolerance for floats).
"""
import numpy as np
import pytest
from hypothesis import given, strategies as st

import tinytensor  # noqa: F401  (the package first, then its backends)
from tinytensor.backend import base, cpu, ref
from tinytensor.dtype import ALL, FLOATING, bool_, int64, float64, float32
from tinytensor.view import View

INTS = [d for d in ALL if d.kind in "iu"]
FLOAT_ONLY_UNARY = ("exp", "log", "log1p", "expm1", "sqrt", "rsqrt", "sin", "cos", "tanh", "sigmoid", "erf",
                    "reciprocal")


def test_every_backend_has_every_primitive():
    base.check_backend(cpu, "cpu")
    base.check_backend(ref, "ref")


def tol(dtype):
    return {64: 1e-12, 32: 2e-6, 16: 1e-2}[dtype.bits] if dtype.kind == "f" else 0


def values(rng, n, dtype, positive=False):
    if dtype is bool_:
        return rng.random(n) > 0.5
    if dtype.kind in "iu":
        lo = 0 if dtype.kind == "u" or positive else -20
        return rng.integers(lo, 20, n).astype(dtype.np)
    v = rng.standard_normal(n) * 2
    return (np.abs(v) + 0.1 if positive else v).astype(dtype.np)


@st.composite
def operand(draw, shape, dtype, positive=False):
    """(flat buffer, View) holding a tensor of `shape` in a drawn layout."""
    rng = np.random.default_rng(draw(st.integers(0, 2 ** 16)))
    layout = draw(st.sampled_from(["contiguous", "transposed", "stepped", "negative", "broadcast", "window"]))
    n = int(np.prod(shape))
    if layout == "transposed" and len(shape) >= 2:
        tshape = shape[:-2] + (shape[-1], shape[-2])
        v = View.contiguous(tshape)
        order = list(range(len(shape) - 2)) + [len(shape) - 1, len(shape) - 2]
        return values(rng, max(n, 1), dtype, positive), v.permute(order)
    if layout == "stepped" and len(shape) >= 1:
        big = View.contiguous(shape[:-1] + (2 * shape[-1] + 1,))
        return values(rng, max(big.numel, 1), dtype, positive), big.slice(len(shape) - 1, 1, 2 * shape[-1] + 1, 2)
    if layout == "negative" and len(shape) >= 1:
        return values(rng, max(n, 1), dtype, positive), View.contiguous(shape).flip([len(shape) - 1])
    if layout == "broadcast" and len(shape) >= 1:
        small = View.contiguous((1,) + shape[1:])
        return values(rng, max(small.numel, 1), dtype, positive), small.expand(shape)
    if layout == "window":
        return values(rng, n + 5, dtype, positive), View(shape, View.contiguous(shape).strides, 5)
    return values(rng, max(n, 1), dtype, positive), View.contiguous(shape)


def run_both(fn, out_numel, out_dtype):
    """Call fn(backend, out) for cpu and ref with fresh outputs; return both outputs."""
    outs = []
    for be in (cpu, ref):
        out = np.zeros(out_numel, dtype=out_dtype.np)
        fn(be, out)
        outs.append(out)
    return outs


def assert_same(c, r, dtype):
    if dtype.kind == "f":
        np.testing.assert_allclose(c.astype(np.float64), r.astype(np.float64), rtol=tol(dtype), atol=tol(dtype),
                                   equal_nan=True)
    else:
        np.testing.assert_array_equal(c, r)


shape_st = st.lists(st.integers(0, 5), min_size=0, max_size=3).map(tuple)


@pytest.mark.parametrize("op", base.UNARY_OPS)
@given(data=st.data())
def test_unary(op, data):
    dtypes = FLOATING if op in FLOAT_ONLY_UNARY else ALL if op == "logical_not" else FLOATING + tuple(INTS)
    dtype = data.draw(st.sampled_from(dtypes))
    shape = data.draw(shape_st)
    x, xv = data.draw(operand(shape, dtype, positive=op in ("log", "sqrt", "rsqrt", "log1p")))
    out_dtype = bool_ if op == "logical_not" else dtype
    c, r = run_both(lambda be, out: be.unary(op, out, out_dtype, x, xv, dtype), int(np.prod(shape)), out_dtype)
    assert_same(c, r, out_dtype)


@pytest.mark.parametrize("op", base.BINARY_OPS)
@given(data=st.data())
def test_binary(op, data):
    dtypes = FLOATING if op == "div" else ALL if op.startswith("logical") or op in base.COMPARE_OPS \
        else FLOATING + tuple(d for d in INTS)
    dtype = data.draw(st.sampled_from(dtypes))
    shape = data.draw(shape_st)
    a, av = data.draw(operand(shape, dtype))
    b, bv = data.draw(operand(shape, dtype, positive=op in ("remainder", "pow")))
    if op == "pow" and dtype.kind in "iu":
        b = np.clip(b, 0, 3).astype(dtype.np)
    if op in ("remainder", "floor_divide") and dtype.kind in "iu":  # x // 0 raises (test_hardening.py)
        b = np.where(b == 0, 1, b).astype(dtype.np)
    out_dtype = bool_ if op in base.COMPARE_OPS or op in base.LOGICAL_OPS else dtype
    c, r = run_both(lambda be, out: be.binary(op, out, out_dtype, a, av, b, bv, dtype), int(np.prod(shape)),
                    out_dtype)
    assert_same(c, r, out_dtype)


@given(data=st.data())
def test_where(data):
    dtype = data.draw(st.sampled_from(ALL))
    shape = data.draw(shape_st)
    cond, cv = data.draw(operand(shape, bool_))
    a, av = data.draw(operand(shape, dtype))
    b, bv = data.draw(operand(shape, dtype))
    c, r = run_both(lambda be, out: be.where(out, dtype, cond, cv, a, av, b, bv), int(np.prod(shape)), dtype)
    assert_same(c, r, dtype)


@pytest.mark.parametrize("op", base.REDUCE_OPS)
@given(data=st.data())
def test_reduce(op, data):
    dtypes = (int64,) + FLOATING if op in ("sum", "prod") else FLOATING + tuple(INTS)
    dtype = data.draw(st.sampled_from(dtypes))
    shape = data.draw(st.lists(st.integers(1 if op not in ("sum", "prod") else 0, 5), max_size=3).map(tuple))
    n_reduce = data.draw(st.integers(0, len(shape)))
    if op in ("argmax", "argmin"):
        n_reduce = max(n_reduce, 1) if shape else 0
    x, xv = data.draw(operand(shape, dtype))
    if op == "prod" and dtype.kind == "f":
        x = (np.abs(x.astype(np.float64)) * 0.3 + 0.8).astype(dtype.np)  # keep products in range
    out_dtype = int64 if op in ("argmax", "argmin") else dtype
    out_numel = int(np.prod(shape[:len(shape) - n_reduce]))
    c, r = run_both(lambda be, out: be.reduce(op, out, out_dtype, x, xv, dtype, n_reduce), out_numel, out_dtype)
    assert_same(c, r, out_dtype)


@given(data=st.data())
def test_matmul(data):
    dtype = data.draw(st.sampled_from(FLOATING + (int64,)))
    batch = data.draw(st.lists(st.integers(1, 3), max_size=2).map(tuple))
    m, k, n = (data.draw(st.integers(0, 40)) for _ in range(3))
    a, av = data.draw(operand(batch + (m, k), dtype))
    b, bv = data.draw(operand(batch + (k, n), dtype))
    c, r = run_both(lambda be, out: be.matmul(out, dtype, a, av, b, bv), int(np.prod(batch + (m, n))), dtype)
    rtol = {64: 1e-10, 32: 1e-4, 16: 2e-2}[dtype.bits] if dtype.kind == "f" else 0
    np.testing.assert_allclose(c.astype(np.float64), r.astype(np.float64), rtol=rtol, atol=rtol * max(k, 1))


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("m, k, n", [(300, 517, 263), (50, 384, 1152), (900, 200, 70)])
def test_matmul_large_blocked_against_numpy(m, k, n, threads):
    """Sizes that cross the GEMM's cache blocks, with a transposed operand (packed, not copied), on 1 and
    2 threads: few rows (the threads split the columns) and many (they share a packed B)."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((m, k)).astype(np.float32)
    bt = rng.standard_normal((n, k)).astype(np.float32)
    out = np.zeros(m * n, np.float32)
    before = cpu.get_num_threads()
    cpu.set_num_threads(threads)
    try:
        cpu.matmul(out, float32, a.reshape(-1), View.contiguous((m, k)), bt.reshape(-1),
                   View.contiguous((n, k)).permute([1, 0]))
    finally:
        cpu.set_num_threads(before)
    np.testing.assert_allclose(out.reshape(m, n), a.astype(np.float64) @ bt.T.astype(np.float64),
                               rtol=1e-4, atol=1e-3)


def small_m_operand(rng, dtype, batch, rows, cols, layout, broadcast=False):
    """A (*batch, rows, cols) operand as (flat buffer, View, its values as a float64 NumPy array).
    layout: "rows" (rows contiguous), "cols" (a transposed view: columns contiguous), "rows_stepped" or
    "cols_stepped" (every other element along the stored rows, so that no dim has stride 1).
    broadcast: one stored matrix expanded over the batch (stride 0)."""
    transposed, step = layout.startswith("cols"), 2 if layout.endswith("stepped") else 1
    inner = (cols, rows) if transposed else (rows, cols)
    stored_batch = (1,) if broadcast else batch
    stored_shape = stored_batch + (inner[0], inner[1] * step)
    data = values(rng, int(np.prod(stored_shape)), dtype)
    view, arr = View.contiguous(stored_shape), data.reshape(stored_shape)
    if step == 2:
        view, arr = view.slice(len(stored_shape) - 1, 0, stored_shape[-1], 2), arr[..., ::2]
    if transposed:
        order = list(range(len(stored_batch))) + [len(stored_batch) + 1, len(stored_batch)]
        view, arr = view.permute(order), arr.transpose(order)
    if broadcast:
        view, arr = view.expand(batch + (rows, cols)), np.broadcast_to(arr, batch + (rows, cols))
    return data, view, arr.astype(np.float64)


def check_small_m(m, k, n, dtype, a_layout="rows", b_layout="rows", batch=(), b_broadcast=False, threads=1, seed=0):
    """cpu.matmul of (*batch, m, k) @ (*batch, k, n) in the given layouts against float64 NumPy."""
    rng = np.random.default_rng(seed)
    a, av, a64 = small_m_operand(rng, dtype, batch, m, k, a_layout)
    b, bv, b64 = small_m_operand(rng, dtype, batch, k, n, b_layout, b_broadcast)
    out = np.full(int(np.prod(batch + (m, n))), np.nan, dtype.np)
    before = cpu.get_num_threads()
    cpu.set_num_threads(threads)
    try:
        cpu.matmul(out, dtype, a, av, b, bv)
    finally:
        cpu.set_num_threads(before)
    rtol = 1e-12 if dtype is float64 else 1e-5
    np.testing.assert_allclose(out.reshape(batch + (m, n)), a64 @ b64, rtol=rtol, atol=rtol * k)


# Products with few rows skip the packed GEMM (ops_c/matmul.cpp, gemm_small): up to 8 rows, 32 when B's columns
# are contiguous (x @ W.T). K and N are no multiples of the vector width (8 or 16 lanes, 4-column tiles, 4-row
# blocks of B), so every tail is used; 9, 33 and 40 rows cross the limits, and (40, 33, 3) has few columns instead.
SMALL_M_SHAPES = [(1, 37, 53), (1, 5, 3), (2, 19, 70), (3, 100, 33), (5, 64, 129), (8, 7, 48), (9, 37, 41),
                  (20, 45, 30), (32, 23, 61), (33, 40, 7), (40, 33, 3)]


@pytest.mark.parametrize("dtype", [float64, float32])
@pytest.mark.parametrize("b_layout", ["rows", "cols"])
@pytest.mark.parametrize("m, k, n", SMALL_M_SHAPES)
def test_small_m_matmul_against_numpy(m, k, n, b_layout, dtype):
    """x @ W (rows of B contiguous: the row-update kernel) and x @ W.T (columns contiguous: dot products)."""
    check_small_m(m, k, n, dtype, b_layout=b_layout)


@pytest.mark.parametrize("a_layout, b_layout", [("rows_stepped", "rows"), ("cols", "rows"), ("rows_stepped", "cols"),
                                                ("rows", "rows_stepped"), ("rows", "cols_stepped"),
                                                ("cols", "cols_stepped")])
@pytest.mark.parametrize("m, k, n", [(1, 37, 53), (4, 21, 35), (8, 18, 19)])
def test_small_m_matmul_strided_operands(m, k, n, a_layout, b_layout):
    """Operands without the layout a SIMD kernel needs (a strided along K, B stepped) take the strided loop,
    or the row-update kernel, which reads a with any strides."""
    check_small_m(m, k, n, float64, a_layout, b_layout)


@pytest.mark.parametrize("b_layout", ["rows", "cols"])
@pytest.mark.parametrize("b_broadcast", [False, True])
def test_small_m_matmul_batched(b_layout, b_broadcast):
    """A batch of small products, with B per entry or one B expanded over the batch (stride 0)."""
    check_small_m(3, 29, 45, float64, b_layout=b_layout, batch=(2, 3), b_broadcast=b_broadcast)


@pytest.mark.parametrize("dtype", [float64, float32])
@pytest.mark.parametrize("b_layout", ["rows", "cols"])
@pytest.mark.parametrize("m, k, n", [(2, 1031, 2053), (20, 331, 701)])
def test_small_m_matmul_threads_split_columns(m, k, n, b_layout, dtype):
    """Past 2 x 2^21 multiply-adds two threads take a slice of the columns each: the split falls on whole
    vectors, so only the last slice has a column tail (N is odd)."""
    check_small_m(m, k, n, dtype, b_layout=b_layout, threads=2)


@given(data=st.data())
def test_copy_and_cast(data):
    src_dtype, dst_dtype = data.draw(st.sampled_from(ALL)), data.draw(st.sampled_from(ALL))
    shape = data.draw(shape_st)
    s, sv = data.draw(operand(shape, src_dtype))
    dst_buf_len = int(np.prod(shape)) * 2 + 3
    dv = View(shape, tuple(2 * x for x in View.contiguous(shape).strides), 3)  # strided destination
    outs = []
    for be in (cpu, ref):
        d = np.zeros(dst_buf_len, dtype=dst_dtype.np)
        be.copy(d, dv, dst_dtype, s, sv, src_dtype)
        outs.append(d)
    assert_same(outs[0], outs[1], dst_dtype)


@given(data=st.data())
def test_fill(data):
    dtype = data.draw(st.sampled_from(ALL))
    shape = data.draw(shape_st)
    value = data.draw(st.integers(0, 1) if dtype is bool_ else st.integers(-5, 100) if dtype.kind in "iu"
                      else st.floats(-10, 10))
    dv = View(shape, tuple(2 * x for x in View.contiguous(shape).strides), 1)
    outs = []
    for be in (cpu, ref):
        d = np.zeros(int(np.prod(shape)) * 2 + 1, dtype=dtype.np)
        be.fill(d, dv, dtype, value if dtype.kind != "u" else abs(value))
        outs.append(d)
    assert_same(outs[0], outs[1], dtype)


def test_fill_int64_exact():
    d = np.zeros(1, np.int64)
    cpu.fill(d, View.contiguous((1,)), int64, 2 ** 62 + 1)
    assert d[0] == 2 ** 62 + 1


@given(data=st.data())
def test_gather_and_index_select(data):
    dtype = data.draw(st.sampled_from(ALL))
    shape = data.draw(st.lists(st.integers(1, 4), min_size=1, max_size=3).map(tuple))
    dim = data.draw(st.integers(0, len(shape) - 1))
    x, xv = data.draw(operand(shape, dtype))
    rng = np.random.default_rng(data.draw(st.integers(0, 999)))
    ishape = tuple(data.draw(st.integers(0, 4)) if i == dim else n for i, n in enumerate(shape))
    idx = rng.integers(0, shape[dim], max(int(np.prod(ishape)), 1)).astype(np.int64)
    iv = View.contiguous(ishape)
    c, r = run_both(lambda be, out: be.gather(out, dtype, x, xv, dim, idx, iv), int(np.prod(ishape)), dtype)
    assert_same(c, r, dtype)
    n_idx = ishape[dim]
    sel_shape = shape[:dim] + (n_idx,) + shape[dim + 1:]
    c, r = run_both(lambda be, out: be.index_select(out, dtype, x, xv, dim, idx, View((n_idx,), (2,), 0)
                                                    if 2 * n_idx <= idx.size else View.contiguous((n_idx,))),
                    int(np.prod(sel_shape)), dtype)
    assert_same(c, r, dtype)


@given(data=st.data())
def test_scatter_add_and_index_add(data):
    dtype = data.draw(st.sampled_from([float64, float32, int64] + [d for d in ALL if d.bits == 16]))
    shape = data.draw(st.lists(st.integers(1, 4), min_size=1, max_size=3).map(tuple))
    dim = data.draw(st.integers(0, len(shape) - 1))
    rng = np.random.default_rng(data.draw(st.integers(0, 999)))
    n_idx = data.draw(st.integers(0, 6))
    ishape = shape[:dim] + (n_idx,) + shape[dim + 1:]
    idx = rng.integers(0, shape[dim], max(int(np.prod(ishape)), 1)).astype(np.int64)  # repeats likely
    src, sv = data.draw(operand(ishape, dtype))
    ov = View(shape, tuple(2 * s for s in View.contiguous(shape).strides), 1)
    outs = []
    for be in (cpu, ref):
        o = values(np.random.default_rng(5), 2 * int(np.prod(shape)) + 1, dtype)
        be.scatter_add(o, ov, dtype, dim, idx, View.contiguous(ishape), src, sv)
        be.index_add(o, ov, dtype, dim, idx, View.contiguous((n_idx,)), src, sv)
        outs.append(o)
    if dtype.kind == "f" and dtype.bits == 16:
        # the kernel rounds to 16 bits after every add, the reference once per op: the difference is a few
        # ulps of the largest partial sum, which cancellation can leave far above the result itself
        start = values(np.random.default_rng(5), 2 * int(np.prod(shape)) + 1, dtype).astype(np.float64)
        bound = 4 * 2.0 ** -8 * (np.abs(start).max() + 2 * np.abs(src.astype(np.float64)).sum())
        np.testing.assert_allclose(outs[0].astype(np.float64), outs[1].astype(np.float64), rtol=0, atol=bound)
    else:
        assert_same(outs[0], outs[1], dtype)


# ---- sizes beyond every block, chunk and threading threshold ------------------------------------
# The hypothesis tests above draw small shapes; the kernels switch strategy at larger ones: reduce.cpp sums
# a run in blocks of 1024 and hands out work in units of 2048 accumulators, parallel.h uses threads only
# from 2 x 32768 items. A wrong block offset once gave t[:, 0].sum() over 3,000 rows as -42.03 instead of
# -22.22 and no small test noticed; these shapes sit on and around each threshold.

@pytest.fixture(params=[1, 2], ids=["1thread", "2threads"])
def threads(request):
    import tinytensor as tt
    before = tt.get_num_threads()
    tt.set_num_threads(request.param)
    yield request.param
    tt.set_num_threads(before)


BIG_ROWS = [1023, 1024, 1025, 2047, 2049, 3000, 65537, 70001]


def big_layouts(rows, cols):
    """(name, View, n_reduce) over a contiguous (rows, cols) buffer: a strided column, the transpose, rows."""
    base_view = View.contiguous((rows, cols))
    return [("column", base_view.select(1, 0), 1),              # t[:, 0]: one strided run of `rows`
            ("transposed", base_view.permute([1, 0]), 1),       # t.T: `cols` strided runs of `rows`
            ("all", base_view, 2),                              # every element, contiguous
            ("rows", base_view, 1)]                             # short contiguous runs, many of them


@pytest.mark.parametrize("op", base.REDUCE_OPS)
@pytest.mark.parametrize("rows", BIG_ROWS)
@pytest.mark.parametrize("dtype", [float64, int64])
def test_reduce_beyond_blocks_and_threads(op, rows, dtype, threads):
    rng = np.random.default_rng(rows)
    cols = 3
    x = values(rng, rows * cols, dtype)
    if op == "prod":  # factors near 1 keep a product of 210,003 of them in range (ints: signs only)
        x = np.sign(x).astype(dtype.np) if dtype.kind == "i" else (np.abs(x) * 1e-4 + 0.99985).astype(dtype.np)
    out_dtype = int64 if op in ("argmax", "argmin") else dtype
    for name, xv, n_reduce in big_layouts(rows, cols):
        out_numel = int(np.prod(xv.shape[:len(xv.shape) - n_reduce]))
        c, r = run_both(lambda be, out: be.reduce(op, out, out_dtype, x, xv, dtype, n_reduce), out_numel, out_dtype)
        np.testing.assert_allclose(c, r, rtol=1e-9, err_msg=name)  # exact for the ints


@pytest.mark.parametrize("rows", [1025, 3000, 70001])
def test_elementwise_and_copy_beyond_threads(rows, threads):
    rng = np.random.default_rng(rows)
    x = values(rng, rows * 3, float64)
    y = values(rng, rows * 3, float64, positive=True)
    for name, xv, _ in big_layouts(rows, 3):
        n = xv.numel
        for op in ("exp", "neg"):
            c, r = run_both(lambda be, out: be.unary(op, out, float64, x, xv, float64), n, float64)
            assert_same(c, r, float64)
        c, r = run_both(lambda be, out: be.binary("div", out, float64, x, xv, y, xv, float64), n, float64)
        assert_same(c, r, float64)
        c, r = run_both(lambda be, out: be.copy(out, View.contiguous(xv.shape), float32, x, xv, float64), n, float32)
        assert_same(c, r, float32)
