"""Autograd behaviour, as PyTorch defines it: backward's rules, grad accumulation, retain_grad, freeing
the graph, grad modes, detach, deep graphs, broadcasting and views in the backward pass, version
counters for in-place ops, and the dtype of .grad.

Gradients are checked against float64 central finite differences of the same function.
"""
import numpy as np
import pytest
from hypothesis import given, strategies as st

import tinytensor as tt
from helpers import numerical_grad


def check_grad(f, x0: np.ndarray, atol=1e-6):
    """f maps a float64 tensor to a scalar tensor; its backward must match finite differences at x0."""
    x = tt.tensor(x0, dtype=tt.float64, requires_grad=True)
    f(x).backward()
    with tt.no_grad():
        expected = numerical_grad(lambda a: f(tt.tensor(a, dtype=tt.float64)).item(), x0.astype(np.float64).copy())
    assert x.grad is not None and x.grad.shape == x.shape and x.grad.dtype is tt.float64
    np.testing.assert_allclose(x.grad.numpy(), expected, atol=atol, rtol=1e-6)
    return x.grad.numpy()


# ---- backward's basic contract -------------------------------------------------------------------

def test_backward_without_gradient_needs_a_scalar():
    x = tt.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(RuntimeError, match=r"scalar outputs.*\(2,\)"):
        (x * 2).backward()
    assert x.grad is None
    (x * 2).backward(tt.tensor([3.0, -1.0]))  # an explicit gradient is a vector-Jacobian product
    np.testing.assert_array_equal(x.grad.numpy(), [6.0, -2.0])


def test_backward_on_a_tensor_without_grad_raises():
    with pytest.raises(RuntimeError, match="does not require grad"):
        tt.tensor([1.0]).sum().backward()


def test_gradients_accumulate_across_backward_calls():
    x = tt.tensor([1.0, -2.0, 3.0], requires_grad=True)
    (x * x).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [2.0, -4.0, 6.0])
    (x * 3).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [5.0, -1.0, 9.0])
    x.grad = None
    (x * 3).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [3.0, 3.0, 3.0])


def test_a_tensor_used_twice_gets_both_contributions():
    x = tt.tensor([2.0, 5.0], requires_grad=True)
    y = x * 3
    (y * y + y).sum().backward()  # d/dx (9x^2 + 3x) = 18x + 3
    np.testing.assert_array_equal(x.grad.numpy(), [39.0, 93.0])


def test_only_leaves_keep_grad_unless_retain_grad():
    x = tt.tensor([1.0, 2.0], requires_grad=True)
    y = x * 2
    z = y * y
    assert x.is_leaf and not y.is_leaf and y.requires_grad and y.grad_fn is not None
    z.sum().backward()
    assert y.grad is None and z.grad is None
    np.testing.assert_array_equal(x.grad.numpy(), [8.0, 16.0])

    x.grad = None
    y = x * 2
    y.retain_grad()
    z = y * y
    z.sum().backward()
    np.testing.assert_array_equal(y.grad.numpy(), [4.0, 8.0])  # dz/dy = 2y
    np.testing.assert_array_equal(x.grad.numpy(), [8.0, 16.0])


def test_graph_is_freed_after_backward_unless_retain_graph():
    x = tt.tensor([0.5, 1.0], requires_grad=True)
    loss = x.exp().sum()  # exp saves its output
    loss.backward()
    with pytest.raises(RuntimeError, match="second time"):
        loss.backward()

    x.grad = None
    loss = x.exp().sum()
    loss.backward(retain_graph=True)
    loss.backward()
    np.testing.assert_allclose(x.grad.numpy(), 2 * np.exp([0.5, 1.0]))
    with pytest.raises(RuntimeError, match="retain_graph"):
        loss.backward()


# ---- grad modes, detach, requires_grad ------------------------------------------------------------

def test_no_grad_context_manager_and_decorators():
    x = tt.tensor([1.0], requires_grad=True)
    with tt.no_grad():
        y = x * 2
        assert not tt.is_grad_enabled()
    assert tt.is_grad_enabled()
    assert not y.requires_grad and y.grad_fn is None and y.is_leaf

    @tt.no_grad()
    def f(a):
        return a * 2

    @tt.no_grad
    def g(a):
        return a * 2

    assert not f(x).requires_grad and not g(x).requires_grad
    assert tt.is_grad_enabled() and (x * 2).requires_grad


def test_no_grad_restores_the_mode_after_an_exception():
    with pytest.raises(KeyError):
        with tt.no_grad():
            raise KeyError
    assert tt.is_grad_enabled()


def test_enable_grad_inside_no_grad():
    x = tt.tensor([1.0], requires_grad=True)
    with tt.no_grad():
        with tt.enable_grad():
            y = x * 2
        z = x * 2
    assert y.requires_grad and y.grad_fn is not None
    assert not z.requires_grad

    @tt.enable_grad()
    def f(a):
        return a * 2

    with tt.no_grad():
        assert f(x).requires_grad


def test_set_grad_enabled_as_function_context_manager_and_decorator():
    x = tt.tensor([1.0], requires_grad=True)
    try:
        tt.set_grad_enabled(False)
        assert not tt.is_grad_enabled() and not (x * 2).requires_grad
        tt.set_grad_enabled(True)
        assert (x * 2).requires_grad
        with tt.set_grad_enabled(False):
            assert not (x * 2).requires_grad
        assert tt.is_grad_enabled()
        with tt.no_grad():
            with tt.set_grad_enabled(True):
                assert (x * 2).requires_grad
            assert not tt.is_grad_enabled()

        @tt.set_grad_enabled(False)
        def f(a):
            return a * 2
        assert tt.is_grad_enabled()  # decorating changes nothing until f runs
        assert not f(x).requires_grad and tt.is_grad_enabled()
    finally:
        tt.set_grad_enabled(True)


def test_detach_shares_storage_and_cuts_the_graph():
    x = tt.tensor([1.0, 2.0], requires_grad=True)
    y = x * 3
    d = y.detach()
    assert not d.requires_grad and d.grad_fn is None and d.is_leaf
    assert d.data_ptr() == y.data_ptr()
    (y * d).sum().backward()  # d is a constant: d/dx (3x * d) = 3d
    np.testing.assert_array_equal(x.grad.numpy(), [9.0, 18.0])
    xd = x.detach()
    xd[0] = 10.0  # a write through the detached tensor is seen by x
    assert x[0].item() == 10.0


def test_requires_grad_():
    x = tt.tensor([1.0, 2.0])
    assert not x.requires_grad
    assert x.requires_grad_() is x and x.requires_grad and x.is_leaf
    (x * x).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [2.0, 4.0])
    x.requires_grad_(False)
    assert not (x * 2).requires_grad
    with pytest.raises(RuntimeError, match="floating point"):
        tt.tensor([1, 2]).requires_grad_()
    with pytest.raises(RuntimeError, match="leaf"):
        (tt.tensor([1.0], requires_grad=True) * 2).requires_grad_(False)


def test_integer_results_do_not_require_grad():
    x = tt.tensor([1.5, -2.0], requires_grad=True)
    assert not (x > 0).requires_grad and not x.argmax().requires_grad
    assert (x.sum() + 0).requires_grad


# ---- deep graphs -------------------------------------------------------------------------------

def test_a_chain_of_100000_ops_backpropagates_without_recursion():
    # transposes: the cheapest op with a backward of its own, so 100,000 of them stay fast
    x = tt.tensor([[1.5, -2.0], [3.0, 4.0]], requires_grad=True)
    y = x
    for _ in range(100_001):
        y = y.mT
    (y * tt.tensor([[1.0, 2.0], [3.0, 4.0]])).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [[1.0, 3.0], [2.0, 4.0]])  # an odd number of transposes


# ---- broadcasting and views in backward ------------------------------------------------------------

@given(st.sampled_from([((3, 1), (1, 4)), ((4,), (2, 3, 4)), ((2, 1, 3), (5, 1)), ((), (2, 2)), ((1, 1), (3,))]),
       st.booleans())
def test_broadcast_gradients_sum_back_to_the_input_shape(shapes, swap):
    sa, sb = shapes[::-1] if swap else shapes
    rng = np.random.default_rng(0)
    a0, b0 = rng.standard_normal(sa), rng.standard_normal(sb)
    w = rng.standard_normal(np.broadcast_shapes(sa, sb))
    b = tt.tensor(b0)
    ga = check_grad(lambda a: (a * b * tt.tensor(w)).sum(), a0)
    full = np.broadcast_to(b0, w.shape) * w  # d/da of sum(a * b * w), before summing back
    expected = full.sum(axis=tuple(range(w.ndim - len(sa))))
    expected = expected.sum(axis=tuple(i for i, n in enumerate(sa) if n == 1), keepdims=True)
    assert ga.shape == sa
    np.testing.assert_allclose(ga, expected.reshape(sa), atol=1e-9)


def _weighted(v, seed=1):
    """A non-uniform scalar function of a view, so every position of the gradient is checked."""
    w = np.random.default_rng(seed).standard_normal(tuple(v.shape))
    return (v * tt.tensor(w)).sum()


VIEW_FUNCTIONS = {
    "slice used twice": (lambda x: _weighted(x[1:4]) + _weighted(x[::2], 2) * x[2:5].sum(), (6,)),
    "overlapping slices multiply": (lambda x: (x[:-1] * x[1:]).sum(), (5,)),
    "negative steps": (lambda x: _weighted(x[::-1, 1::-2]), (3, 4)),
    "expand": (lambda x: _weighted(x.expand(2, 3, 4)), (3, 1)),
    "expand then sliced": (lambda x: _weighted(x.expand(4, 3)[1:, ::2]), (1, 3)),
    "overlapping as_strided windows": (lambda x: _weighted(x.as_strided((3, 4), (2, 1), 1)), (9,)),
    "as_strided stride 0": (lambda x: _weighted(x.as_strided((3, 2), (0, 2), 1)), (5,)),
    "unfold with overlap": (lambda x: _weighted(x.unfold(1, 3, 1)), (2, 5)),
    "unfold with gaps": (lambda x: _weighted(x.unfold(0, 2, 3)), (8,)),
    "diagonal": (lambda x: _weighted(x.diagonal(1)) + _weighted(x.diagonal(-1, 0, 1), 3), (4, 4)),
    "transpose, reshape copy": (lambda x: _weighted(x.T.reshape(6)), (2, 3)),
    "permute, flip, narrow": (lambda x: _weighted(x.permute(2, 0, 1).flip(0).narrow(2, 1, 2)), (2, 3, 4)),
    "index with None and ...": (lambda x: _weighted(x[None, ..., 1]) * x[0, 0], (2, 3)),
    "split and chunk": (lambda x: _weighted(x.split(2, 1)[1]) + _weighted(x.chunk(2, 0)[0], 4), (4, 5)),
    "squeeze, unsqueeze, flatten, unflatten": (
        lambda x: _weighted(x.squeeze(1).unsqueeze(0).flatten().unflatten(0, (3, 2))), (2, 1, 3)),
    "advanced indexing repeats": (lambda x: _weighted(x[[0, 2, 0, 0]]), (3, 2)),
    "select": (lambda x: _weighted(x.select(1, -1)) * x.select(0, 0).sum(), (3, 2)),
}


@pytest.mark.parametrize("name", list(VIEW_FUNCTIONS))
def test_gradients_through_views_land_in_the_right_places(name):
    f, shape = VIEW_FUNCTIONS[name]
    x0 = np.random.default_rng(7).standard_normal(shape)
    check_grad(f, x0)


def test_expand_gradient_counts_every_reader():
    x = tt.tensor([[1.0], [2.0]], requires_grad=True)
    x.expand(2, 5).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [[5.0], [5.0]])
    x.grad = None
    x.as_strided((4,), (0,), 1).sum().backward()  # one element read four times
    np.testing.assert_array_equal(x.grad.numpy(), [[0.0], [4.0]])


# ---- in-place ops and version counters ---------------------------------------------------------------

def test_modifying_a_saved_output_in_place_breaks_backward():
    x = tt.tensor([0.5, 1.0], requires_grad=True)
    y = x.exp()  # exp saves its output for backward
    y.add_(1)
    with pytest.raises(RuntimeError, match=r"modified by an in-place operation.*version"):
        y.sum().backward()


def test_modifying_a_saved_input_in_place_breaks_backward():
    x = tt.tensor([0.5, 1.0], requires_grad=True)
    w = tt.tensor([2.0, 3.0])
    y = x * w  # mul saves w
    w.mul_(2)
    with pytest.raises(RuntimeError, match=r"in-place.*version 1, expected 0"):
        y.sum().backward()
    w2 = tt.tensor([2.0, 3.0])
    y2 = x + w2  # add saves nothing, so changing w2 afterwards is harmless
    w2.add_(1)
    y2.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [1.0, 1.0])


def test_inplace_on_a_leaf_that_requires_grad_raises():
    x = tt.tensor([1.0, 2.0], requires_grad=True)
    for op in (lambda: x.add_(1), lambda: x.mul_(2), lambda: x.exp_(), lambda: x.fill_(0), lambda: x.zero_()):
        with pytest.raises(RuntimeError, match="leaf"):
            op()
    np.testing.assert_array_equal(x.detach().numpy(), [1.0, 2.0])


INPLACE_CHAINS = {
    "add_ mul_": lambda x: (x * 1.5).add_(x.sin()).mul_(x),
    "exp_ sqrt_": lambda x: (x * x + 1).sqrt_().exp_(),
    "div_ pow_ neg_": lambda x: (x + 3).div_(x.cos() + 2).pow_(2).neg_(),
    "operators": lambda x: _iops(x),
    "sub_ with alpha, addcmul_, clamp_":
        lambda x: (x * 2).sub_(x * x, alpha=0.5).addcmul_(x, x, value=0.25).clamp_(-0.5, 1.0),
    "masked_fill_ lerp_":
        lambda x: (x * 3).masked_fill_(tt.tensor([True, False, False, True]), 2.0).lerp_(x.exp(), 0.25),
    "copy_ into a plain tensor": lambda x: tt.zeros(4, dtype=tt.float64).copy_(x * x).mul_(x),
    "plain tensor times a grad tensor": lambda x: tt.ones(4, dtype=tt.float64).mul_(x).mul_(x.exp()),
}


def _iops(x):
    y = x * 1.0
    y += x
    y *= x
    y -= 2
    y /= x.exp()
    return y


@pytest.mark.parametrize("name", list(INPLACE_CHAINS))
def test_inplace_on_a_non_leaf_records_history(name):
    f = INPLACE_CHAINS[name]
    x0 = np.array([0.3, -0.7, 1.1, 0.05])
    check_grad(lambda x: (f(x) * tt.tensor([1.0, 2.0, -1.0, 0.5], dtype=tt.float64)).sum(), x0)


def test_inplace_on_a_base_breaks_backward_of_a_saved_view():
    x = tt.tensor([1.0, 2.0, 3.0], requires_grad=True)
    y = x * 1
    v = y[1:]  # a view of y's storage
    w = v * x[1:]  # mul saves v
    y.add_(1)  # bumps the version of the storage v lives in
    with pytest.raises(RuntimeError, match="in-place"):
        w.sum().backward()


def test_optimizer_style_updates_under_no_grad():
    p = tt.tensor([1.0, -2.0, 0.5], requires_grad=True)
    lr = 0.1
    for _ in range(3):
        loss = (p * p).sum()
        loss.backward()
        with tt.no_grad():
            p -= lr * p.grad
            p.grad.zero_()
    assert p.is_leaf and p.requires_grad and p.grad_fn is None
    np.testing.assert_allclose(p.detach().numpy(), np.array([1.0, -2.0, 0.5]) * 0.8 ** 3)
    np.testing.assert_array_equal(p.grad.numpy(), [0.0, 0.0, 0.0])
    with tt.no_grad():
        p.mul_(2)
        p[0] = 5.0
    (p * 1).sum().backward()
    np.testing.assert_array_equal(p.grad.numpy(), [1.0, 1.0, 1.0])
    assert p[0].item() == 5.0


# ---- dtype of .grad ------------------------------------------------------------------------------------

@pytest.mark.parametrize("leaf_dtype", [tt.float32, tt.float16, tt.bfloat16, tt.float64])
def test_grad_dtype_matches_the_leaf(leaf_dtype):
    x = tt.tensor([0.5, 1.5], dtype=leaf_dtype, requires_grad=True)
    w = tt.tensor([2.0, -4.0], dtype=tt.float64)
    y = (x * w).sum()  # promoted to float64: x is cast up, its gradient cast back
    assert y.dtype is tt.float64
    y.backward()
    assert x.grad.dtype is leaf_dtype
    np.testing.assert_array_equal(x.grad.float().numpy(), [2.0, -4.0])

    x.grad = None
    (x.double().exp() * 1).sum().backward()
    assert x.grad.dtype is leaf_dtype
    # the float64 gradient is rounded once, to the leaf's dtype: the tolerance is that dtype's rounding
    rtol = {tt.float64: 1e-15, tt.float32: 2 ** -24, tt.float16: 2 ** -11, tt.bfloat16: 2 ** -8}[leaf_dtype]
    np.testing.assert_allclose(x.grad.double().numpy(), np.exp(x.detach().double().numpy()), rtol=rtol)


def test_relu_gradient_at_zero_is_zero():
    """PyTorch's convention: relu'(0) = 0 (the subgradient at the kink), also for F.relu and nn.ReLU."""
    x = tt.tensor([-1.0, 0.0, -0.0, 2.0], requires_grad=True)
    (x.relu() * tt.tensor([1.0, 2.0, 3.0, 4.0])).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [0.0, 0.0, 0.0, 4.0])
    x.grad = None
    tt.nn.ReLU()(x).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [0.0, 0.0, 0.0, 1.0])


def test_grad_of_float32_leaf_through_mixed_scalar_ops_stays_float32():
    x = tt.tensor([1.0, 2.0], requires_grad=True)
    y = (x * 2.5 + tt.tensor(1.0, dtype=tt.float64)).sum()  # a 0-d float64 does not promote float32
    assert y.dtype is tt.float32
    y.backward()
    assert x.grad.dtype is tt.float32
    np.testing.assert_array_equal(x.grad.numpy(), [2.5, 2.5])
