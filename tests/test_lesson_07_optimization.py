"""Tests of the reference solutions of lesson 07, optimization (docs/solutions/07_optimization.py).

The NumPy Adam/AdamW step is run for several steps beside tt.optim.Adam and tt.optim.AdamW on the same
float64 gradients, and checked against the closed form of the first step (a move of lr against the
sign of each gradient); the schedule against tt.optim.lr_scheduler.WarmupCosineLR and its values at the
warmup end, the middle and the end; clipping against tt.nn.utils.clip_grad_norm_ and the norm it must
leave.
"""
import math

import numpy as np
import pytest

import tinytensor as tt
from helpers import load_solution
from tinytensor.optim.lr_scheduler import WarmupCosineLR

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


@pytest.mark.parametrize("warmup,total,min_ratio", [(100, 1600, 0.1), (10, 50, 0.0), (0, 20, 0.05), (5, 5, 0.2)])
def test_warmup_cosine_matches_the_scheduler(warmup, total, min_ratio):
    param = tt.zeros(1, requires_grad=True)
    opt = tt.optim.AdamW([param], lr=2e-3)
    sched = WarmupCosineLR(opt, warmup, total, min_ratio)
    for step in range(total + 5):
        assert math.isclose(sol.warmup_cosine_lr(step, 2e-3, warmup, total, min_ratio), opt.param_groups[0]["lr"],
                            rel_tol=1e-12)
        sched.step()


def test_warmup_cosine_landmarks():
    peak, lr = 2e-3, (lambda s: sol.warmup_cosine_lr(s, 2e-3, 100, 1600, 0.1))
    assert math.isclose(lr(0), peak / 100) and math.isclose(lr(99), peak)  # linear warmup to the peak
    assert math.isclose(lr(100), peak)  # the cosine starts at the top
    assert math.isclose(lr(850), (peak + 0.1 * peak) / 2)  # halfway: the middle of peak and floor
    assert math.isclose(lr(1600), 0.1 * peak) and math.isclose(lr(5000), 0.1 * peak)
    assert all(lr(s) >= lr(s + 1) for s in range(100, 1700))  # never rises after warmup


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
