"""Tests of the reference solutions of lesson 07, optimization (docs/solutions/07_optimization.py).

Kaiming's std against nn.init (calculate_gain, and the spread of kaiming_normal_'s draws); the signal
through a random stack against closed forms (linear layers: c per layer; ReLU: sqrt(1 - 1/pi) with
Kaiming's gain). The NumPy Adam/AdamW step runs beside tt.optim.Adam and tt.optim.AdamW on the same
float64 gradients, and is checked against the closed form of the first step (a move of lr against the
sign of each gradient); clipping against tt.nn.utils.clip_grad_norm_ and the norm it must leave.
"""
import math

import numpy as np
import pytest

import tinytensor as tt
from helpers import load_solution
from tinytensor.nn import init

sol = load_solution("07_optimization")


@pytest.mark.parametrize("decoupled,weight_decay,betas", [(True, 0.0, (0.9, 0.999)), (True, 0.1, (0.9, 0.95)),
                                                          (False, 0.1, (0.9, 0.999)), (False, 0.0, (0.5, 0.9))])
def test_adam_step_matches_tinytensor(decoupled, weight_decay, betas):
    rng = np.random.default_rng(0)
    p0 = rng.standard_normal((3, 4))
    param = tt.tensor(p0.copy(), dtype=tt.float64, requires_grad=True)
    kind = tt.optim.AdamW if decoupled else tt.optim.Adam
    opt = kind([param], lr=0.01, betas=betas, eps=1e-8, weight_decay=weight_decay)
    p, m, v = p0.copy(), np.zeros_like(p0), np.zeros_like(p0)
    for t in range(1, 11):
        g = rng.standard_normal((3, 4)) * (t % 3 + 0.5)
        param.grad = tt.tensor(g, dtype=tt.float64)
        opt.step()
        p, m, v = sol.adam_step(p, g, m, v, t, lr=0.01, betas=betas, eps=1e-8, weight_decay=weight_decay,
                                decoupled=decoupled)
        np.testing.assert_allclose(param.detach().numpy(), p, rtol=1e-10, atol=1e-12)
    assert np.abs(p - p0).max() > 0.01  # it moved


def test_first_adam_step_is_lr_times_sign():
    """At t = 1 the bias corrections make m_hat = g and v_hat = g^2: every entry moves by lr * g / (|g| + eps)."""
    g = np.array([3.0, -0.002, 1e-4, -50.0])
    p, _, _ = sol.adam_step(np.zeros(4), g, np.zeros(4), np.zeros(4), 1, lr=0.1, eps=1e-8)
    np.testing.assert_allclose(p, -0.1 * g / (np.abs(g) + 1e-8), rtol=1e-12)
    np.testing.assert_allclose(p, -0.1 * np.sign(g), rtol=1e-3)


def test_decoupled_decay_with_zero_gradient_is_a_plain_shrink():
    p = np.array([1.0, -2.0])
    new, _, _ = sol.adam_step(p, np.zeros(2), np.zeros(2), np.zeros(2), 1, lr=0.1, weight_decay=0.5)
    np.testing.assert_allclose(new, p * (1 - 0.1 * 0.5), rtol=1e-12)  # m = 0: only the shrink acts


@pytest.mark.parametrize("activation", ["linear", "relu", "tanh"])
def test_kaiming_std_matches_the_library(activation):
    expected = init.calculate_gain(activation) / math.sqrt(300)
    assert math.isclose(sol.kaiming_std(300, activation), expected, rel_tol=1e-12)
    tt.manual_seed(0)
    w = init.kaiming_normal_(tt.empty(400, 300, dtype=tt.float64), nonlinearity=activation)  # fan_in 300
    assert abs(w.numpy().std() / sol.kaiming_std(300, activation) - 1) < 0.02


@pytest.mark.parametrize("c", [0.5, 1.0, 1.5])
def test_linear_stack_scales_by_c_per_layer(c):
    """No activation: each layer multiplies the variance by width * weight_std^2 = c^2 (in expectation)."""
    stds = sol.signal_through_stack(6, 512, c / math.sqrt(512), "linear")
    np.testing.assert_allclose(stds, c ** np.arange(1, 7), rtol=0.15)


def test_relu_stack_closed_form():
    """ReLU of N(0, s^2) has mean s / sqrt(2 pi) and second moment s^2 / 2. With Kaiming's sqrt(2 / width)
    every pre-activation has variance 2, so every layer's std is sqrt(2 (1/2 - 1/(2 pi))) = sqrt(1 - 1/pi);
    with gain 1 the pre-activation variance is 1 at layer 1 and halves at every layer after."""
    kaiming = sol.signal_through_stack(8, 512, sol.kaiming_std(512, "relu"), "relu")
    np.testing.assert_allclose(kaiming, math.sqrt(1 - 1 / math.pi), rtol=0.1)
    plain = sol.signal_through_stack(8, 512, 1 / math.sqrt(512), "relu")
    np.testing.assert_allclose(plain, math.sqrt(1 - 1 / math.pi) * 0.5 ** (np.arange(1, 9) / 2), rtol=0.15)


def test_tanh_stack_behaves_as_the_chapter_shows():
    kaiming = sol.signal_through_stack(10, 256, sol.kaiming_std(256, "tanh"), "tanh")
    default = sol.signal_through_stack(10, 256, 1 / math.sqrt(3 * 256), "tanh")  # PyTorch's default std
    assert all(0.5 < s < 0.9 for s in kaiming)  # steady
    assert all(a > b for a, b in zip(default, default[1:])) and default[-1] < 0.25  # fades layer by layer
    rng = np.random.default_rng(0)
    h = np.tanh(rng.standard_normal((1000, 256)) @ rng.standard_normal((256, 256)))  # N(0, 1) weights
    assert np.std(h) == pytest.approx(sol.signal_through_stack(1, 256, 1.0, "tanh")[0])  # same draws, same std
    assert (np.abs(h) > 0.97).mean() > 0.8  # saturated, as the chapter's 'unscaled' scheme


@pytest.mark.parametrize("max_norm", [0.5, 3.0, 100.0])
def test_clipping_matches_clip_grad_norm(max_norm):
    rng = np.random.default_rng(1)
    grads = [rng.standard_normal(s) for s in [(3, 4), (5,), (2, 2, 2)]]
    clipped, norm = sol.clip_by_total_norm(grads, max_norm)
    params = [tt.zeros(*g.shape, dtype=tt.float64, requires_grad=True) for g in grads]
    for p, g in zip(params, grads):
        p.grad = tt.tensor(g, dtype=tt.float64)
    ref_norm = tt.nn.utils.clip_grad_norm_(params, max_norm).item()
    assert math.isclose(norm, ref_norm, rel_tol=1e-12)
    assert math.isclose(norm, np.sqrt(sum((g ** 2).sum() for g in grads)), rel_tol=1e-12)
    for c, p in zip(clipped, params):
        np.testing.assert_allclose(c, p.grad.numpy(), rtol=1e-12)
    after = np.sqrt(sum((c ** 2).sum() for c in clipped))
    assert math.isclose(after, min(norm, max_norm), rel_tol=1e-5)  # the direction is kept, the length capped
