"""Tests for the scalar autograd engine (tinytensor/scalar.py) and chapter 02's example.

Value gradients are checked against float64 central finite differences of the same expression
evaluated on plain floats (so a wrong Value forward is caught too), against tinytensor Tensors
on the same expressions, and on a deep chain. The example is run with tiny settings.
Not covered here: the Tensor ops themselves (the op table tests do that).
"""
import math
import os
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import tinytensor as tt
from tinytensor.scalar import Value
from helpers import load_example

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXAMPLE = os.path.join(ROOT, "examples", "02_micrograd.py")


# Each function works on floats, Values and Tensors alike, so that one expression can be run by
# the engine under test and by an independent oracle.

def _call(x, name: str):
    return getattr(math, name)(x) if isinstance(x, float) else getattr(x, name)()


def exp(x):
    return _call(x, "exp")


def log(x):
    return _call(x, "log")


def tanh(x):
    return _call(x, "tanh")


def relu(x):
    return max(x, 0.0) if isinstance(x, float) else x.relu()


def sigmoid(x):
    return 1.0 / (1.0 + math.exp(-x)) if isinstance(x, float) else x.sigmoid()


# name -> (f(a, b), the condition on (a, b) that keeps f smooth and in its domain)
EXPRESSIONS = {
    "arith": (lambda a, b: a * b + a / b - b ** 3 + 2.5, lambda a, b: abs(b) > 0.2),
    "reflected": (lambda a, b: 2.0 / (1 + a * a) - 3 * b + (1 - b) * a - (-a), lambda a, b: True),
    "reuse": (lambda a, b: (a * b) * (a * b) + a * b + a * a * a, lambda a, b: True),
    "pow": (lambda a, b: (a * a + 1) ** 0.5 + (b * b + 0.5) ** -1.5 + a ** 2, lambda a, b: True),
    "exp_tanh": (lambda a, b: tanh(a * b) * exp(-a) + exp(b / 4), lambda a, b: True),
    "log_sigmoid": (lambda a, b: log(a * a + 0.1) / (1 + sigmoid(b * 3)) + log(sigmoid(a)), lambda a, b: True),
    "relu": (lambda a, b: relu(a - b) * b + relu(a * b + 1), lambda a, b: abs(a - b) > 1e-3 and abs(a * b + 1) > 1e-3),
}


def central_difference(f, a: float, b: float, h: float = 1e-6):
    da = (f(a + h, b) - f(a - h, b)) / (2 * h)
    db = (f(a, b + h) - f(a, b - h)) / (2 * h)
    return da, db


coordinate = st.floats(-2.0, 2.0, allow_nan=False)


@pytest.mark.parametrize("name", sorted(EXPRESSIONS))
@settings(deadline=None)
@given(a=coordinate, b=coordinate)
def test_value_matches_floats_and_finite_differences(name, a, b):
    f, ok = EXPRESSIONS[name]
    assume(ok(a, b))
    va, vb = Value(a), Value(b)
    out = f(va, vb)
    out.backward()
    assert out.data == pytest.approx(f(a, b), rel=1e-12, abs=1e-12)
    da, db = central_difference(f, a, b)
    assert va.grad == pytest.approx(da, rel=1e-5, abs=1e-5)
    assert vb.grad == pytest.approx(db, rel=1e-5, abs=1e-5)


def test_micrograd_readme_expression():
    # Worked by hand in the micrograd README: g = 24.7041, dg/da = 138.8338, dg/db = 645.5773.
    a, b = Value(-4.0), Value(2.0)
    g = _readme_expression(a, b)
    g.backward()
    assert g.data == pytest.approx(24.70408163265306, rel=1e-12)
    assert a.grad == pytest.approx(138.83381924198252, rel=1e-12)
    assert b.grad == pytest.approx(645.5772594752186, rel=1e-12)


def test_chain_of_100k_additions():
    x = Value(0.5)
    y = x
    for _ in range(100_000):
        y = y + x                       # y = 100001 * x, so dy/dx = 100001
    y.backward()
    assert y.data == pytest.approx(100_001 * 0.5)
    assert x.grad == 100_001.0


def test_deep_chain_that_reuses_every_node():
    # y <- y + 1e-5 * tanh(y / 2), 25,000 times (100,000 ops). Each y feeds two ops, so the graph
    # is a long chain of diamonds; the gradient is the product of the slopes 1 + 5e-6 (1 - tanh^2).
    x = Value(0.3)
    y, v, slope = x, 0.3, 1.0
    for _ in range(25_000):
        y = y + (y * 0.5).tanh() * 1e-5
        t = math.tanh(v * 0.5)
        slope *= 1.0 + 1e-5 * 0.5 * (1.0 - t * t)
        v = v + t * 1e-5
    y.backward()
    assert y.data == pytest.approx(v, rel=1e-12)
    assert x.grad == pytest.approx(slope, rel=1e-9)
    assert slope > 1.1                  # far from 1: every step's slope was counted


def test_gradient_accumulates_over_uses_and_backward_calls():
    a = Value(3.0)
    b = a * a + a                       # db/da = 2a + 1 = 7
    b.backward()
    assert a.grad == 7.0
    b.backward()                        # leaves are not zeroed in between: gradients add up
    assert a.grad == 14.0
    assert b.grad == 1.0                # while the output's own gradient starts afresh


def test_pow_takes_only_a_number_exponent():
    with pytest.raises(TypeError, match="exponent"):
        Value(2.0) ** Value(3.0)
    assert (Value(2.0) ** 3).data == 8.0


# ----------------------------------------------------------------------------------------------
# Value against tinytensor Tensors on the same expressions, in float64.

def _readme_expression(a, b):
    c = a + b
    d = a * b + b ** 3
    c = c + c + 1
    c = c + 1 + c + (-a)
    d = d + d * 2 + (b + a).relu()
    d = d + 3 * d + (b - a).relu()
    e = c - d
    f = e ** 2
    g = f / 2.0
    return g + 10.0 / f


def _f64(x):
    return tt.tensor(x, dtype=tt.float64, requires_grad=True)


def test_readme_expression_value_vs_tensor():
    va, vb = Value(-4.0), Value(2.0)
    ta, tb = _f64(-4.0), _f64(2.0)
    vg, tg = _readme_expression(va, vb), _readme_expression(ta, tb)
    vg.backward()
    tg.backward()
    assert tg.item() == pytest.approx(vg.data, rel=1e-12)
    assert ta.grad.item() == pytest.approx(va.grad, rel=1e-6)
    assert tb.grad.item() == pytest.approx(vb.grad, rel=1e-6)


@pytest.mark.parametrize("name", sorted(EXPRESSIONS))
def test_expressions_value_vs_tensor(name):
    # One Tensor of 64 (a, b) pairs against 64 separate Value graphs.
    f, ok = EXPRESSIONS[name]
    rng = np.random.default_rng(0)
    pairs = [(a, b) for a, b in rng.uniform(-2.0, 2.0, (200, 2)).tolist() if ok(a, b)][:64]
    A, B = np.array(pairs).T
    ta, tb = _f64(A), _f64(B)
    f(ta, tb).sum().backward()
    for i, (a, b) in enumerate(pairs):
        va, vb = Value(a), Value(b)
        f(va, vb).backward()
        assert ta.grad.numpy()[i] == pytest.approx(va.grad, rel=1e-6, abs=1e-12)
        assert tb.grad.numpy()[i] == pytest.approx(vb.grad, rel=1e-6, abs=1e-12)


def test_small_mlp_value_vs_tensor():
    # A 3-4-4-1 tanh MLP with a sigmoid + log (cross-entropy) loss, written out by hand for
    # each engine; every weight's gradient must agree.
    rng = np.random.default_rng(1)
    sizes = [3, 4, 4, 1]
    weights = [(rng.standard_normal((m, n)), rng.standard_normal(n)) for m, n in zip(sizes[:-1], sizes[1:])]
    X, y = rng.standard_normal((5, 3)), np.array([1.0, 0.0, 1.0, 1.0, 0.0])

    vparams = [[[Value(w) for w in row] for row in W] for W, _ in weights], [[Value(v) for v in b] for _, b in weights]
    vloss = Value(0.0)
    for x, yi in zip(X.tolist(), y.tolist()):
        h = [Value(v) for v in x]
        for layer, (W, b) in enumerate(zip(*vparams)):
            z = [sum((h[i] * W[i][j] for i in range(len(h))), b[j]) for j in range(len(b))]
            h = [zj.tanh() for zj in z] if layer < len(weights) - 1 else z
        p = h[0].sigmoid()
        vloss = vloss - (yi * p.log() + (1 - yi) * (1 - p).log()) / len(X)
    vloss.backward()

    tparams = [(_f64(W), _f64(b)) for W, b in weights]
    h = tt.tensor(X, dtype=tt.float64)
    for layer, (W, b) in enumerate(tparams):
        h = h @ W + b                                        # (5, m) @ (m, n) + (n,) -> (5, n)
        h = h.tanh() if layer < len(weights) - 1 else h
    p = h.sigmoid().sum(dim=1)                               # (5, 1) -> (5,)
    yt = tt.tensor(y, dtype=tt.float64)
    tloss = -(yt * p.log() + (1 - yt) * (1 - p).log()).mean()
    tloss.backward()

    assert tloss.item() == pytest.approx(vloss.data, rel=1e-12)
    for (tW, tb), vW, vb in zip(tparams, *vparams):
        np.testing.assert_allclose(tW.grad.numpy(), [[v.grad for v in row] for row in vW], rtol=1e-6, atol=1e-12)
        np.testing.assert_allclose(tb.grad.numpy(), [v.grad for v in vb], rtol=1e-6, atol=1e-12)


# ----------------------------------------------------------------------------------------------
# The chapter's example with tiny settings.

@pytest.fixture(scope="module")
def example():
    return load_example("02_micrograd")


TINY = dict(n_points=40, seed=0, steps=60, lr=1.0)


@pytest.fixture(scope="module")
def tiny_runs(example):
    X, y = example.make_moons(TINY["n_points"], TINY["seed"])
    weights = example.init_weights([2, 16, 16, 1], TINY["seed"])
    value = example.train_value_mlp(X, y, weights, TINY["steps"], TINY["lr"], progress=False)
    tensor = example.train_tensor_mlp(X, y, weights, TINY["steps"], TINY["lr"], progress=False)
    return X, y, value, tensor


def test_make_moons(example):
    X, y = example.make_moons(41, seed=3)
    assert X.shape == (41, 2) and y.shape == (41,)
    assert sorted(set(y.tolist())) == [-1.0, 1.0] and (y == 1).sum() == 21
    np.testing.assert_array_equal(X, example.make_moons(41, seed=3)[0])     # seeded
    assert not np.array_equal(X, example.make_moons(41, seed=4)[0])


def test_example_value_engine_learns_the_moons(tiny_runs):
    X, y, value, _ = tiny_runs
    assert value.accuracy >= 0.95
    assert len(value.losses) == TINY["steps"]
    assert value.losses[-1] < 0.2 * value.losses[0]
    assert np.mean(np.sign(value.predict(X)) == y) == value.accuracy


def test_example_tensor_engine_learns_the_moons_like_value(tiny_runs):
    X, y, value, tensor = tiny_runs
    assert tensor.accuracy >= 0.95
    assert tensor.accuracy == value.accuracy
    # Same init, data and steps in float64: the two engines follow the same trajectory.
    np.testing.assert_allclose(tensor.losses, value.losses, rtol=1e-6)
    np.testing.assert_allclose(tensor.predict(X), value.predict(X), rtol=1e-6, atol=1e-9)


def test_example_script_runs(tmp_path):
    out = tmp_path / "out"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([ROOT, os.environ.get("PYTHONPATH", "")]))
    args = ["--steps", "3", "--n-points", "12", "--grid", "8", "--out", str(out)]
    proc = subprocess.run([sys.executable, EXAMPLE, *args], capture_output=True, text=True, timeout=300,
                          cwd=ROOT, env=env)
    assert proc.returncode == 0, proc.stderr
    assert "Value  engine: train accuracy" in proc.stdout
    assert "Tensor engine: train accuracy" in proc.stdout
    assert (out / "micrograd.png").stat().st_size > 1000
