"""Dtypes as PyTorch defines them: the promotion table, result_type for tensors / 0-d tensors / Python
scalars, casts (against NumPy and ml_dtypes), the dtypes creation functions infer, random numbers,
leaving tinytensor (.numpy(), .item(), .tolist(), __array__), and repr/str.

PyTorch is an optional oracle: the parts that compare with it skip when it is not installed; the
hand-written expectations (from PyTorch's documentation) always run.
"""
import re

import ml_dtypes
import numpy as np
import pytest
from hypothesis import given, strategies as st

import tinytensor as tt

DTYPES = [tt.float64, tt.float32, tt.float16, tt.bfloat16, tt.int64, tt.int32, tt.int16, tt.int8, tt.uint8, tt.bool]
NAMES = {d: "bool" if d is tt.bool else d.name for d in DTYPES}


def torch_or_skip():
    return pytest.importorskip("torch")


def vec(dtype, values=(1, 0)):
    return tt.tensor(list(values), dtype=dtype)


# ---- promotion ------------------------------------------------------------------------------------

KNOWN_PROMOTIONS = [  # (a, b, result), from PyTorch's type promotion docs and torch.promote_types
    (tt.uint8, tt.int8, tt.int16), (tt.float16, tt.bfloat16, tt.float32), (tt.bool, tt.uint8, tt.uint8),
    (tt.int32, tt.float16, tt.float16), (tt.bool, tt.bool, tt.bool), (tt.int8, tt.int16, tt.int16),
    (tt.int64, tt.float32, tt.float32), (tt.uint8, tt.int64, tt.int64), (tt.uint8, tt.int16, tt.int16),
    (tt.bfloat16, tt.float32, tt.float32), (tt.float16, tt.float64, tt.float64), (tt.bool, tt.float16, tt.float16),
    (tt.int32, tt.int64, tt.int64), (tt.bool, tt.int8, tt.int8), (tt.bfloat16, tt.int64, tt.bfloat16),
    (tt.uint8, tt.float16, tt.float16), (tt.int16, tt.uint8, tt.int16),
]


@pytest.mark.parametrize("a, b, expected", KNOWN_PROMOTIONS, ids=lambda d: getattr(d, "name", d))
def test_promote_types_known_results(a, b, expected):
    assert tt.promote_types(a, b) is expected
    assert tt.promote_types(b, a) is expected
    assert (vec(a) + vec(b)).dtype is expected  # and the op really produces it
    assert (vec(a) * vec(b)).dtype is expected


def test_promote_types_is_torchs_for_every_pair():
    torch = torch_or_skip()
    for a in DTYPES:
        for b in DTYPES:
            expected = torch.promote_types(getattr(torch, NAMES[a]), getattr(torch, NAMES[b]))
            assert NAMES[tt.promote_types(a, b)] == str(expected).replace("torch.", ""), (a, b)


def _operand(kind, dtype, value=1):
    """A tensor of `dtype` with dims ("t") or 0-d ("0d"), or a Python scalar ("s")."""
    if kind == "t":
        return tt.tensor([value, value], dtype=dtype)
    if kind == "0d":
        return tt.tensor(value, dtype=dtype)
    return value


RESULT_TYPES = [  # (left, right, expected): ("t"|"0d", dtype, value) or a Python scalar
    (("t", tt.int32, 1), 2.5, tt.float32),
    (("t", tt.float16, 1), ("0d", tt.float64, 1), tt.float16),
    (("t", tt.int32, 1), ("0d", tt.float64, 1), tt.float64),
    (("t", tt.int64, 1), ("0d", tt.float64, 1), tt.float64),
    (("t", tt.bool, 1), 1, tt.int64),
    (("t", tt.uint8, 1), 1000, tt.uint8),
    (("t", tt.int8, 1), ("0d", tt.int64, 1), tt.int8),
    (("t", tt.float16, 1), 2.5, tt.float16),
    (("t", tt.bfloat16, 1), ("0d", tt.float16, 1), tt.bfloat16),
    (("t", tt.bool, 1), 2.5, tt.float32),
    (("t", tt.int64, 1), True, tt.int64),
    (("t", tt.uint8, 1), ("0d", tt.int8, 1), tt.uint8),
    (("0d", tt.int32, 1), ("0d", tt.int64, 1), tt.int64),
    (("0d", tt.int32, 1), 2.5, tt.float32),
    (("0d", tt.float64, 1), 2.5, tt.float64),
    (("0d", tt.bool, 1), 3, tt.int64),
    (("t", tt.int16, 1), ("t", tt.float16, 1), tt.float16),
    (("t", tt.float32, 1), ("t", tt.float64, 1), tt.float64),
]


def _make(spec):
    return _operand(*spec) if isinstance(spec, tuple) else spec


@pytest.mark.parametrize("left, right, expected", RESULT_TYPES, ids=str)
def test_result_type_tensors_zero_dim_and_scalars(left, right, expected):
    a, b = _make(left), _make(right)
    assert tt.result_type(a, b) is expected
    assert tt.result_type(b, a) is expected
    assert (a + b).dtype is expected and (b + a).dtype is expected
    assert (a * b).dtype is expected
    assert (a > b).dtype is tt.bool


@pytest.mark.parametrize("left, right, expected", RESULT_TYPES, ids=str)
def test_result_type_matches_torch(left, right, expected):
    torch = torch_or_skip()

    def to_torch(x):
        if isinstance(x, tt.Tensor):
            return torch.tensor(x.tolist(), dtype=getattr(torch, NAMES[x.dtype]))
        return x
    a, b = _make(left), _make(right)
    assert str(torch.result_type(to_torch(a), to_torch(b))) == f"torch.{NAMES[expected]}"


def test_default_dtype_decides_what_python_floats_become():
    assert tt.get_default_dtype() is tt.float32
    try:
        tt.set_default_dtype(tt.float64)
        assert tt.tensor([1.5]).dtype is tt.float64 and tt.zeros(2).dtype is tt.float64
        assert (tt.tensor([1, 2], dtype=tt.int32) + 2.5).dtype is tt.float64
        assert (tt.tensor([1.0], dtype=tt.float32) + 2.5).dtype is tt.float32
        assert repr(tt.tensor([1.5])) == "tensor([1.5000])"
        assert repr(tt.tensor([1.5], dtype=tt.float32)) == "tensor([1.5000], dtype=tinytensor.float32)"
    finally:
        tt.set_default_dtype(tt.float32)
    assert tt.tensor([1.5]).dtype is tt.float32


def test_op_result_dtypes_and_values():
    i32 = tt.tensor([1, 2], dtype=tt.int32)
    assert (i32 / 2).dtype is tt.float32  # true division of integers gives the default float
    np.testing.assert_array_equal((i32 / 2).numpy(), [0.5, 1.0])
    np.testing.assert_array_equal((i32 + 2.5).numpy(), np.array([3.5, 4.5], np.float32))
    u8 = tt.tensor([200, 3], dtype=tt.uint8)
    np.testing.assert_array_equal((u8 + 1000).numpy(), np.array([176, 235], np.uint8))  # wraps, as torch
    np.testing.assert_array_equal((tt.tensor([1, 2], dtype=tt.int8) + 1000).numpy(), [-23, -22])
    assert i32.sum().dtype is tt.int64 and tt.tensor([True, True]).sum().dtype is tt.int64
    assert tt.tensor([True, True]).sum().item() == 2
    assert i32.prod().dtype is tt.int64 and i32.amax().dtype is tt.int32
    assert i32.argmax().dtype is tt.int64
    assert tt.tensor([1.0], dtype=tt.float16).exp().dtype is tt.float16
    assert i32.exp().dtype is tt.float32 and i32.sqrt().dtype is tt.float32  # float-only math: default float
    assert (-i32).dtype is tt.int32 and i32.abs().dtype is tt.int32
    assert tt.where(tt.tensor([True, False]), i32, 2.5).dtype is tt.float32
    assert tt.cat([i32, tt.tensor([1.0], dtype=tt.float16)]).dtype is tt.float16


# ---- casts -------------------------------------------------------------------------------------

@given(st.lists(st.floats(-100, 100, width=32), min_size=1, max_size=20),
       st.sampled_from([tt.int64, tt.int32, tt.int16, tt.int8]))
def test_float_to_int_truncates_toward_zero(values, dtype):
    a = np.array(values, dtype=np.float32)
    out = tt.tensor(a).to(dtype)
    assert out.dtype is dtype
    np.testing.assert_array_equal(out.numpy(), np.trunc(a).astype(dtype.np))


@given(st.lists(st.floats(width=32, allow_nan=False, allow_infinity=False).filter(lambda v: abs(v) < 3e38),
                min_size=1, max_size=20))
def test_float32_to_bfloat16_and_float16_round_to_nearest_even(values):
    a = np.array(values, dtype=np.float32)
    np.testing.assert_array_equal(tt.tensor(a).bfloat16().numpy().view(np.uint16),
                                  a.astype(ml_dtypes.bfloat16).view(np.uint16))
    with np.errstate(over="ignore"):
        expected = a.astype(np.float16)
    np.testing.assert_array_equal(tt.tensor(a).half().numpy().view(np.uint16), expected.view(np.uint16))


def test_bfloat16_ties_go_to_even():
    # 1 + 2^-8 lies halfway between bf16 neighbours 1 and 1 + 2^-7: to 1 (even); 1 + 3 * 2^-8 goes up
    a = np.array([1 + 2 ** -8, 1 + 3 * 2 ** -8, -(1 + 2 ** -8), 1 + 2 ** -8 + 2 ** -20], dtype=np.float32)
    np.testing.assert_array_equal(tt.tensor(a).bfloat16().float().numpy(), [1.0, 1 + 2 ** -6, -1.0, 1 + 2 ** -7])


@pytest.mark.parametrize("src, dst", [(s, d) for s in DTYPES for d in DTYPES])
def test_every_cast_matches_numpy(src, dst):
    values = np.array([0, 1, 2, 5, 7, 100, 127], dtype=np.float64)
    if src.kind == "b":
        values = np.array([True, False, True])
    a = values.astype(src.np)
    t = tt.tensor(a)
    assert t.dtype is src
    out = t.to(dst)
    assert out.dtype is dst and out.shape == a.shape
    np.testing.assert_array_equal(out.numpy().astype(np.float64), a.astype(dst.np).astype(np.float64))


def test_casts_that_wrap_or_overflow():
    np.testing.assert_array_equal(tt.tensor([300, -1]).to(tt.uint8).numpy(), [44, 255])
    np.testing.assert_array_equal(tt.tensor([200, 128]).to(tt.int8).numpy(), [-56, -128])
    assert tt.tensor([70000.0]).half().item() == float("inf")
    assert tt.tensor([1e40], dtype=tt.float64).float().item() == float("inf")
    np.testing.assert_array_equal(tt.tensor([2.0, 0.0, -0.5, float("nan")]).bool().numpy(), [True, False, True, True])
    np.testing.assert_array_equal(tt.tensor([2 ** 24 + 1]).float().numpy(), [2.0 ** 24])  # nearest float32


def test_conversion_methods():
    t = tt.tensor([1.7, -2.2])
    for method, dtype in [("float", tt.float32), ("double", tt.float64), ("half", tt.float16),
                          ("bfloat16", tt.bfloat16), ("long", tt.int64), ("int", tt.int32), ("bool", tt.bool)]:
        assert getattr(t, method)().dtype is dtype
    assert t.float() is t  # no change, no copy (as in PyTorch)
    assert t.to(tt.float32) is t and t.to(tt.float32, copy=True) is not t
    np.testing.assert_array_equal(t.long().numpy(), [1, -2])
    assert t.to(dtype=tt.float64).dtype is tt.float64 and t.to("cpu", tt.float16).dtype is tt.float16
    assert t.to("cpu") is t and t.to(tt.tensor([1], dtype=tt.int8)).dtype is tt.int8
    assert t.type_as(tt.tensor([1])).dtype is tt.int64
    assert tt.float is tt.float32 and tt.double is tt.float64 and tt.long is tt.int64 and tt.int is tt.int32
    assert tt.half is tt.float16 and repr(tt.bfloat16) == "tinytensor.bfloat16"


# ---- creation ------------------------------------------------------------------------------------

@pytest.mark.parametrize("data, dtype, shape", [
    ([1.0, 2.0], tt.float32, (2,)), ([1, 2], tt.int64, (2,)), ([True, False], tt.bool, (2,)),
    ([1, 2.5], tt.float32, (2,)), ([[1, 2], [3, 4]], tt.int64, (2, 2)), (3.0, tt.float32, ()),
    (3, tt.int64, ()), (True, tt.bool, ()), ([], tt.float32, (0,)), ([[1.5]], tt.float32, (1, 1)),
    (np.array([1.0, 2.0]), tt.float64, (2,)), (np.array([1, 2], np.int32), tt.int32, (2,)),
    (np.array([1, 2], np.uint8), tt.uint8, (2,)), (np.float64(2.0), tt.float64, ()),
    (np.array([1.0], ml_dtypes.bfloat16), tt.bfloat16, (1,)), ([np.float32(1.5)], tt.float32, (1,)),
])
def test_tensor_infers_dtype_like_torch(data, dtype, shape):
    t = tt.tensor(data)
    assert t.dtype is dtype and t.shape == shape
    np.testing.assert_array_equal(t.numpy().astype(np.float64), np.array(data, dtype=np.float64))
    if isinstance(data, np.ndarray):
        assert not np.shares_memory(t.numpy(), data)  # tensor() copies, from_numpy shares


def test_tensor_from_tensors_and_with_dtype():
    t = tt.tensor([tt.tensor(1.0), tt.tensor(2.0)])
    assert t.dtype is tt.float32 and t.tolist() == [1.0, 2.0]
    assert tt.tensor([1, 2], dtype=tt.float16).dtype is tt.float16
    assert tt.tensor([1.9, -1.9], dtype=tt.int32).tolist() == [1, -1]
    src = tt.tensor([1.0, 2.0])
    copy = tt.tensor(src)
    copy.fill_(0)
    assert src.tolist() == [1.0, 2.0]
    assert tt.as_tensor(src) is src


def test_filled_creation_functions():
    assert tt.zeros(2, 3).dtype is tt.float32 and tt.zeros(2, 3).tolist() == [[0.0] * 3] * 2
    assert tt.zeros((2, 3)).shape == (2, 3) and tt.zeros([]).shape == ()
    assert tt.ones(2, dtype=tt.int32).tolist() == [1, 1] and tt.ones(2, dtype=tt.int32).dtype is tt.int32
    assert tt.empty(3, 0).shape == (3, 0) and tt.empty(2).dtype is tt.float32
    assert tt.full((2,), 7).dtype is tt.int64 and tt.full((2,), 7).tolist() == [7, 7]
    assert tt.full((2,), 2.5).dtype is tt.float32 and tt.full((2,), True).dtype is tt.bool
    assert tt.full((1,), 3, dtype=tt.float16).dtype is tt.float16
    assert tt.eye(3).tolist() == np.eye(3).tolist() and tt.eye(2, 3).tolist() == np.eye(2, 3).tolist()
    assert tt.eye(2, dtype=tt.int64).dtype is tt.int64
    x = tt.tensor([[1, 2]], dtype=tt.int16)
    for fn, value in [(tt.zeros_like, 0), (tt.ones_like, 1), (tt.empty_like, None)]:
        y = fn(x)
        assert y.dtype is tt.int16 and y.shape == (1, 2) and (value is None or y.tolist() == [[value] * 2])
    assert tt.full_like(x, 9).tolist() == [[9, 9]] and tt.full_like(x, 9).dtype is tt.int16
    assert tt.ones_like(x, dtype=tt.float64).dtype is tt.float64
    assert tt.zeros(2, requires_grad=True).requires_grad


@pytest.mark.parametrize("args, dtype, expected", [
    ((5,), tt.int64, [0, 1, 2, 3, 4]),
    ((5.0,), tt.float32, [0, 1, 2, 3, 4]),
    ((0, 1, 0.25), tt.float32, [0, 0.25, 0.5, 0.75]),
    ((1, 2.5, 0.5), tt.float32, [1, 1.5, 2]),
    ((10, 0, -3), tt.int64, [10, 7, 4, 1]),
    ((0, 5, 1.5), tt.float32, [0, 1.5, 3, 4.5]),
    ((-1.0, 1.0, 0.4), tt.float32, [-1, -0.6, -0.2, 0.2, 0.6]),
    ((3, 3), tt.int64, []),
])
def test_arange(args, dtype, expected):
    t = tt.arange(*args)
    assert t.dtype is dtype
    np.testing.assert_allclose(t.numpy(), np.array(expected, dtype=dtype.np), rtol=1e-6)
    assert tt.arange(0, 1, 0.1).shape == (10,)  # ceil((end - start) / step) elements, as torch


def test_linspace():
    np.testing.assert_allclose(tt.linspace(0, 1, 5).numpy(), [0, 0.25, 0.5, 0.75, 1])
    assert tt.linspace(0, 1, 5).dtype is tt.float32
    assert tt.linspace(2, 3, 1).tolist() == [2.0] and tt.linspace(0, 1, 0).shape == (0,)
    np.testing.assert_allclose(tt.linspace(-1, 1, 7, dtype=tt.float64).numpy(), np.linspace(-1, 1, 7))


def test_random_statistics_and_dtypes():
    tt.manual_seed(1234)
    n = 20000
    u = tt.rand(n)
    assert u.dtype is tt.float32 and u.shape == (n,)
    a = u.numpy().astype(np.float64)
    assert a.min() >= 0 and a.max() < 1
    assert abs(a.mean() - 0.5) < 0.01 and abs(a.var() - 1 / 12) < 0.003
    z = tt.randn(100, 200).numpy().astype(np.float64)
    assert abs(z.mean()) < 0.03 and abs(z.std() - 1) < 0.02
    assert tt.randn(3, dtype=tt.float64).dtype is tt.float64 and tt.rand(2, 3).shape == (2, 3)
    r = tt.randint(0, 10, (n,))
    assert r.dtype is tt.int64
    counts = np.bincount(r.numpy(), minlength=10)
    assert counts.size == 10 and (np.abs(counts / n - 0.1) < 0.01).all()
    r = tt.randint(5, (1000,))  # randint(high, size)
    assert r.numpy().min() == 0 and r.numpy().max() == 4
    assert tt.randint(-3, 3, (100,), dtype=tt.int32).dtype is tt.int32
    p = tt.randperm(50)
    assert p.dtype is tt.int64 and sorted(p.tolist()) == list(range(50)) and p.tolist() != list(range(50))
    like = tt.rand_like(tt.zeros(2, 2, dtype=tt.float16))
    assert like.dtype is tt.float16 and like.shape == (2, 2)
    assert tt.randn_like(tt.zeros(3)).shape == (3,)


def test_manual_seed_reproduces_and_generators_are_independent():
    tt.manual_seed(7)
    a = tt.randn(5).tolist(), tt.rand(3).tolist(), tt.randint(0, 100, (4,)).tolist()
    tt.manual_seed(7)
    b = tt.randn(5).tolist(), tt.rand(3).tolist(), tt.randint(0, 100, (4,)).tolist()
    assert a == b
    tt.manual_seed(8)
    assert tt.randn(5).tolist() != a[0]
    g1, g2 = tt.Generator(3), tt.Generator().manual_seed(3)
    tt.manual_seed(0)
    assert tt.randn(4, generator=g1).tolist() == tt.randn(4, generator=g2).tolist()
    assert g1.initial_seed() == 3


def test_generator_state_round_trip():
    g = tt.Generator(11)
    tt.rand(5, generator=g)
    state = g.get_state()
    first = tt.randn(6, generator=g).tolist()
    tt.rand(100, generator=g)  # move on
    g.set_state(state)
    assert tt.randn(6, generator=g).tolist() == first
    state = tt.default_generator.get_state()
    first = tt.rand(4).tolist()
    tt.default_generator.set_state(state)
    assert tt.rand(4).tolist() == first


# ---- leaving tinytensor -------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES)
def test_numpy_item_tolist(dtype):
    t = tt.tensor([[1, 0], [2, 3]], dtype=dtype)
    a = t.numpy()
    assert a.dtype == dtype.np and a.shape == (2, 2) and np.shares_memory(a, t.numpy())
    lst = t.tolist()
    kind = bool if dtype is tt.bool else float if dtype.is_floating_point else int
    assert all(type(v) is kind for row in lst for v in row)
    assert lst == [[kind(1), kind(0)], [kind(2), kind(3)]]
    item = t[1, 1].item()
    assert type(item) is kind and item == kind(3)
    assert tt.tensor(5, dtype=dtype).tolist() == kind(5)


def test_array_protocol():
    t = tt.tensor([1.0, 2.0])
    shared = np.asarray(t)
    shared[0] = 10
    assert t[0].item() == 10  # np.asarray shares
    copied = np.array(t)
    copied[1] = 20
    assert t[1].item() == 2  # np.array copies
    assert np.asarray(t, dtype=np.float64).dtype == np.float64
    assert np.add(t, 1).tolist() == [11.0, 3.0]
    assert float(tt.tensor(2.5)) == 2.5 and int(tt.tensor(3)) == 3 and [10, 20, 30][tt.tensor(1)] == 20


# ---- repr / str ---------------------------------------------------------------------------------

REPRS = [
    (lambda: tt.tensor([[1.0, 2.0]], requires_grad=True), "tensor([[1., 2.]], requires_grad=True)"),
    (lambda: tt.tensor([0.1, 2.5]), "tensor([0.1000, 2.5000])"),
    (lambda: tt.tensor([1, 2]), "tensor([1, 2])"),
    (lambda: tt.tensor(3.0), "tensor(3.)"),
    (lambda: tt.tensor([True, False]), "tensor([ True, False])"),
    (lambda: tt.tensor([1.5, 2.0], dtype=tt.float64), "tensor([1.5000, 2.0000], dtype=tinytensor.float64)"),
    (lambda: tt.tensor([1, -20], dtype=tt.int32), "tensor([  1, -20], dtype=tinytensor.int32)"),
    (lambda: tt.zeros(0), "tensor([])"),
    (lambda: tt.zeros(2, 0, dtype=tt.int64), "tensor([], size=(2, 0), dtype=tinytensor.int64)"),
    (lambda: tt.tensor([1e-5, 1.0, 1000.0]), "tensor([1.0000e-05, 1.0000e+00, 1.0000e+03])"),
    (lambda: tt.tensor([float("nan"), 1.0, float("inf")]), "tensor([nan, 1., inf])"),
    (lambda: tt.arange(6.0).reshape(2, 3), "tensor([[0., 1., 2.],\n        [3., 4., 5.]])"),
    (lambda: tt.arange(2000), "tensor([   0,    1,    2,  ..., 1997, 1998, 1999])"),
    (lambda: tt.arange(20.0) / 4, "tensor([0.0000, 0.2500, 0.5000, 0.7500, 1.0000, 1.2500, 1.5000, 1.7500, 2.0000,\n"
                                  "        2.2500, 2.5000, 2.7500, 3.0000, 3.2500, 3.5000, 3.7500, 4.0000, 4.2500,\n"
                                  "        4.5000, 4.7500])"),
]


@pytest.mark.parametrize("make, expected", REPRS, ids=[r[1][:30] for r in REPRS])
def test_repr_matches_pytorch_format(make, expected):
    t = make()
    assert repr(t) == expected and str(t) == expected


def test_repr_of_a_large_2d_tensor_is_summarised():
    s = repr(tt.arange(3000).reshape(30, 100))
    lines = s.split("\n")
    assert lines[0] == "tensor([[   0,    1,    2,  ...,   97,   98,   99],"
    assert lines[3] == "        ...," and lines[-1] == "        [2900, 2901, 2902,  ..., 2997, 2998, 2999]])"
    assert len(lines) == 7


def _norm(s: str) -> str:
    """Suffixes may wrap differently: 'tinytensor.' is longer than 'torch.'."""
    return re.sub(r",\s+(dtype|requires_grad|size)=", r", \1=", s)


TORCH_CASES = [
    ([[1.0, 2.0]], "float32"), ([0.1, 2.5], "float32"), ([1, 2], "int64"), (3.0, "float32"), (5, "int64"),
    ([True, False], "bool"), ([[True], [False]], "bool"), ([1.5, 2.1], "bfloat16"), ([1.5, -2.0], "float16"),
    ([1e-8, 2e-8], "float32"), ([0.0, 0.001, 100.0], "float64"), ([-0.0, 1.0], "float32"),
    ([123456789.0, 1.0], "float32"), ([[1, -2], [300, 4]], "int16"), ([1, 200], "uint8"), ([-5, 7], "int8"),
    ([float("nan"), 1.5, -float("inf")], "float32"), ([], "int32"), (2.5, "float16"),
]


@pytest.mark.parametrize("data, name", TORCH_CASES, ids=[f"{c[1]}-{c[0]}" for c in TORCH_CASES])
def test_str_matches_torch(data, name):
    torch = torch_or_skip()
    t, p = tt.tensor(data, dtype=getattr(tt, name)), torch.tensor(data, dtype=getattr(torch, name))
    assert _norm(str(t)) == _norm(str(p).replace("torch.", "tinytensor."))


@given(st.lists(st.integers(0, 12), max_size=3).filter(lambda s: int(np.prod(s)) < 2500),
       st.sampled_from(["float32", "float64", "float16", "bfloat16", "int64", "int32", "uint8", "bool"]),
       st.sampled_from(["normal", "ints", "wide", "special"]), st.integers(0, 2 ** 32 - 1))
def test_str_matches_torch_on_random_tensors(shape, name, kind, seed):
    torch = torch_or_skip()
    rng = np.random.default_rng(seed)
    n = int(np.prod(shape))
    v = {"normal": lambda: rng.standard_normal(n), "ints": lambda: rng.integers(-50, 300, n).astype(float),
         "wide": lambda: rng.standard_normal(n) * 10.0 ** rng.integers(-6, 9, n),
         "special": lambda: rng.choice([0.0, -0.0, 1.5, np.nan, np.inf, -np.inf, 2.0], n)}[kind]().reshape(shape)
    if name == "bool":
        v = v > 0
    elif name in ("int64", "int32", "uint8"):
        v = np.nan_to_num(v, posinf=3, neginf=-3).clip(0 if name == "uint8" else -100, 100).astype(np.int64)
    p = torch.tensor(v).to(getattr(torch, name))
    t = tt.tensor(v).to(getattr(tt, name))
    assert _norm(str(t)) == _norm(str(p).replace("torch.", "tinytensor."))
