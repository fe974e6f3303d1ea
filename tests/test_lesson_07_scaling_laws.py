"""Tests of the reference solutions of lesson 07, scaling laws (docs/solutions/07_scaling_laws.py).

The rule-of-thumb split is checked against its two constraints and its loss gap against a brute-force search
along the iso-compute curve (and against a law whose optimum is the rule itself); the one-curve fit against
synthetic data with known parameters and a straight-line fit of log L on log D; the smallest model for a
target loss against the law and a brute-force scan over N.
"""
import math

import numpy as np
import pytest

from helpers import load_solution

sol = load_solution("07_scaling_laws")
FIT = {"E": 1.9, "A": 250.0, "alpha": 0.42, "B": 700.0, "beta": 0.5}


def law(p, N, D):
    return p["E"] + p["A"] * N ** -p["alpha"] + p["B"] * D ** -p["beta"]


@pytest.mark.parametrize("C", [1e13, 3.7e14, 1e16])
def test_rule_of_thumb_split_and_gap(C):
    N, D = sol.rule_of_thumb_split(C, 20.0)
    assert 6 * N * D == pytest.approx(C) and D / N == pytest.approx(20.0)
    Ns = np.geomspace(1e3, 1e10, 200_001)
    best = law(FIT, Ns, C / (6 * Ns)).min()
    gap = sol.rule_of_thumb_gap(FIT, C, 20.0)
    assert gap == pytest.approx(law(FIT, N, D) - best, abs=1e-7) and gap >= 0


def test_rule_of_thumb_is_optimal_for_a_law_that_says_so():
    """With alpha = beta the optimal D / N is (B / A)^(1 / alpha) at every budget: B = A * 20^alpha makes it 20."""
    fit = {"E": 2.0, "A": 300.0, "alpha": 0.35, "B": 300.0 * 20 ** 0.35, "beta": 0.35}
    for C in (1e12, 1e15, 1e18):
        assert sol.rule_of_thumb_gap(fit, C, 20.0) == pytest.approx(0.0, abs=1e-12)
        assert sol.rule_of_thumb_gap(fit, C, 5.0) > 1e-4


def test_fit_data_curve_recovers_a_floor():
    D = np.geomspace(1e5, 3e7, 12)
    true = {"E": 2.1, "B": 400.0, "beta": 0.45}
    L = true["E"] + true["B"] * D ** -true["beta"] + np.random.default_rng(0).normal(0, 0.002, D.shape)
    fit = sol.fit_data_curve(D, L)
    assert fit["E"] == pytest.approx(true["E"], abs=0.05) and fit["beta"] == pytest.approx(true["beta"], abs=0.05)
    sse_true = float(np.sum((true["E"] + true["B"] * D ** -true["beta"] - L) ** 2))
    assert fit["sse"] <= sse_true + 1e-12     # least squares: never worse than the parameters that made the data


def test_fit_data_curve_without_a_floor_is_a_line_in_log_log():
    """With E = 0 the law is log L = log B - beta log D: np.polyfit on the logs gives beta exactly."""
    D = np.geomspace(1e4, 1e7, 10)
    L = 55.0 * D ** -0.2337
    slope, _ = np.polyfit(np.log(D), np.log(L), 1)
    fit = sol.fit_data_curve(D, L)
    assert fit["beta"] == pytest.approx(-slope, abs=0.01) and fit["E"] < 0.05


def test_smallest_model_for_a_target():
    D = 2e6
    floor = FIT["E"] + FIT["B"] * D ** -FIT["beta"]  # what an infinite model reaches with D tokens
    for target in (floor + 0.5, floor + 0.05, floor + 0.005):
        N = sol.smallest_model_for(FIT, target, D)
        assert law(FIT, N, D) == pytest.approx(target, abs=1e-9)
        Ns = np.geomspace(1e2, 1e14, 400_001)
        first = Ns[np.argmax(law(FIT, Ns, D) <= target)]  # the loss falls with N: the first N that reaches it
        assert first == pytest.approx(N, rel=1e-3)
    assert sol.smallest_model_for(FIT, floor - 1e-3, D) == math.inf
