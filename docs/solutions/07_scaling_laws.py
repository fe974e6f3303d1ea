"""Reference solutions to the exercises of lesson 07, scaling laws (docs/07_scaling_laws.md).

1. A rule of thumb (a fixed number of tokens per parameter) against the fit's compute-optimal split.
2. One power law with a floor, L(D) = E + B / D^beta, fitted by hand: a grid over beta, least squares
   with E, B >= 0 at each grid point.
3. The smallest model that reaches a target loss with D tokens (or none, when the data alone forbid it).

A fit is a dict with keys E, A, alpha, B, beta, as examples/07_scaling_laws.py writes in results.json.
tests/test_lesson_07_scaling_laws.py checks them against brute-force searches, a straight-line fit in
log-log coordinates, and the law itself. NumPy only.
"""
import math
from typing import Dict, Tuple

import numpy as np


def law(fit: Dict[str, float], N, D):
    """L(N, D) = E + A / N^alpha + B / D^beta."""
    return fit["E"] + fit["A"] * np.asarray(N, float) ** -fit["alpha"] + fit["B"] * np.asarray(D, float) ** -fit["beta"]


# ---- exercise 1: a rule of thumb against the optimum --------------------------------------------------

def rule_of_thumb_split(C: float, tokens_per_param: float = 20.0) -> Tuple[float, float]:
    """(N, D) with D = r N and 6 N D = C: then 6 r N^2 = C, so N = sqrt(C / (6 r))."""
    N = math.sqrt(C / (6 * tokens_per_param))
    return N, tokens_per_param * N


def optimal_split(fit: Dict[str, float], C: float) -> Tuple[float, float]:
    """The compute-optimal (N, D) of the law under 6 N D = C (the lesson's closed form)."""
    a, b = fit["alpha"], fit["beta"]
    G = (a * fit["A"] / (b * fit["B"])) ** (1 / (a + b))
    return G * (C / 6) ** (b / (a + b)), (C / 6) ** (a / (a + b)) / G


def rule_of_thumb_gap(fit: Dict[str, float], C: float, tokens_per_param: float = 20.0) -> float:
    """How much higher the fitted loss is with the rule of thumb's split than with the optimal one (>= 0)."""
    return float(law(fit, *rule_of_thumb_split(C, tokens_per_param)) - law(fit, *optimal_split(fit, C)))


# ---- exercise 2: one power law with a floor -----------------------------------------------------------

def fit_data_curve(D, L, betas=np.linspace(0.01, 2.0, 400)) -> Dict[str, float]:
    """Least-squares fit of L = E + B / D^beta with E, B >= 0. For a fixed beta the model is a straight line
    in x = D^-beta; the best non-negative (E, B) is the plain line when both come out >= 0, else the best
    of the two one-term fits (E alone: the mean; B alone: a line through the origin)."""
    D, L = np.asarray(D, float), np.asarray(L, float)
    best = {"sse": math.inf}
    for beta in betas:
        x = D ** -beta
        candidates = [(float(L.mean()), 0.0), (0.0, max(0.0, float(x @ L / (x @ x))))]
        B, E = np.polyfit(x, L, 1)
        if B >= 0 and E >= 0:
            candidates.append((float(E), float(B)))
        for E, B in candidates:
            sse = float(np.sum((E + B * x - L) ** 2))
            if sse < best["sse"]:
                best = {"E": E, "B": B, "beta": float(beta), "sse": sse}
    return best


# ---- exercise 3: the smallest model for a target loss -------------------------------------------------

def smallest_model_for(fit: Dict[str, float], target: float, D: float) -> float:
    """The N with L(N, D) = target: A / N^alpha = target - E - B / D^beta, so N = (A / gap)^(1 / alpha).
    When the gap is <= 0 no model reaches the target with D tokens: the answer is math.inf."""
    gap = target - fit["E"] - fit["B"] * D ** -fit["beta"]
    if gap <= 0:
        return math.inf
    return (fit["A"] / gap) ** (1 / fit["alpha"])
