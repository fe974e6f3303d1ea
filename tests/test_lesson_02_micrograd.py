"""Tests for lesson 02's reference solutions (docs/solutions/02_micrograd.py).

References: closed forms (d sin = cos; the cross-entropy gradient softmax - onehot and its value
logsumexp - z_target, computed in NumPy), float64 central finite differences of plain-float
functions, and the Value engine's own backward for the neuron derived by hand.
"""
import math

import numpy as np
import pytest

from helpers import load_solution
from tinytensor.scalar import Value

sol = load_solution("02_micrograd")


def finite_difference(f, xs, i, eps=1e-6):
    """d f / d xs[i] at xs by central differences (f takes a list of floats)."""
    hi, lo = list(xs), list(xs)
    hi[i] += eps
    lo[i] -= eps
    return (f(hi) - f(lo)) / (2 * eps)


# ---- exercise 1 ---------------------------------------------------------------------------------

@pytest.mark.parametrize("a", [-2.5, -0.3, 0.0, 1.0, 3.0])
def test_sin_forward_and_backward(a):
    x = Value(a)
    y = sol.value_sin(x)
    y.backward()
    assert y.data == pytest.approx(math.sin(a), abs=1e-15)
    assert x.grad == pytest.approx(math.cos(a), abs=1e-12)


@pytest.mark.parametrize("a, b", [(0.7, -1.2), (2.0, 0.5), (-3.0, 1.5)])
def test_sin_inside_a_larger_graph(a, b):
    """f = sin(a * b) * a + sin(a)^2: a reaches the output along three paths, so its grads must add up."""
    def f_float(v):
        return math.sin(v[0] * v[1]) * v[0] + math.sin(v[0]) ** 2

    x, y = Value(a), Value(b)
    out = sol.value_sin(x * y) * x + sol.value_sin(x) ** 2
    out.backward()
    assert out.data == pytest.approx(f_float([a, b]), abs=1e-12)
    assert x.grad == pytest.approx(finite_difference(f_float, [a, b], 0), abs=1e-7)
    assert y.grad == pytest.approx(finite_difference(f_float, [a, b], 1), abs=1e-7)


# ---- exercise 2 ---------------------------------------------------------------------------------

@pytest.mark.parametrize("seed", range(4))
def test_neuron_by_hand_matches_value_backward(seed):
    rng = np.random.default_rng(seed)
    x, w, b = rng.normal(size=3).tolist(), rng.normal(size=3).tolist(), float(rng.normal())
    got = sol.neuron_by_hand(x, w, b)
    xv, wv, bv = [Value(v) for v in x], [Value(v) for v in w], Value(b)
    out = sum((wi * xi for wi, xi in zip(wv, xv)), bv).tanh()
    out.backward()
    assert got.out == pytest.approx(out.data, abs=1e-14)
    np.testing.assert_allclose(got.dw, [v.grad for v in wv], atol=1e-14)
    np.testing.assert_allclose(got.dx, [v.grad for v in xv], atol=1e-14)
    assert got.db == pytest.approx(bv.grad, abs=1e-14)


def test_neuron_by_hand_matches_finite_differences():
    x, w, b = [0.5, -1.0], [2.0, 0.3], -0.4
    got = sol.neuron_by_hand(x, w, b)

    def f(params):      # params = w0, w1, b, x0, x1
        return math.tanh(params[2] + params[0] * params[3] + params[1] * params[4])

    p = [w[0], w[1], b, x[0], x[1]]
    numeric = [finite_difference(f, p, i) for i in range(5)]
    np.testing.assert_allclose(got.dw + [got.db] + got.dx, numeric, atol=1e-8)


# ---- exercise 3 ---------------------------------------------------------------------------------

def numpy_cross_entropy(z: np.ndarray, target: int):
    """(loss, gradient) in closed form: logsumexp(z) - z[target], softmax(z) - onehot(target)."""
    m = z.max()
    p = np.exp(z - m) / np.exp(z - m).sum()
    loss = m + np.log(np.exp(z - m).sum()) - z[target]
    return loss, p - np.eye(len(z))[target]


@pytest.mark.parametrize("z, target", [
    ([1.0, 2.0, 3.0], 0),
    ([0.5, -0.5, 0.0, 4.0], 3),
    ([2.0], 0),
    ([1000.0, 999.0, -1000.0], 1),          # exp(1000) overflows a float: the shift must keep it finite
])
def test_cross_entropy_value_and_gradient(z, target):
    logits = [Value(v) for v in z]
    loss = sol.value_cross_entropy(logits, target)
    loss.backward()
    ref_loss, ref_grad = numpy_cross_entropy(np.array(z), target)
    assert loss.data == pytest.approx(ref_loss, abs=1e-12)
    np.testing.assert_allclose([v.grad for v in logits], ref_grad, atol=1e-12)


def test_cross_entropy_gradient_matches_finite_differences():
    z, target = [0.3, -1.2, 2.2, 0.0, 0.7], 2

    def f(v):
        return float(numpy_cross_entropy(np.array(v), target)[0])

    logits = [Value(v) for v in z]
    sol.value_cross_entropy(logits, target).backward()
    np.testing.assert_allclose([v.grad for v in logits], [finite_difference(f, z, i) for i in range(len(z))],
                               atol=1e-8)
