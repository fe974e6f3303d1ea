"""Reference solutions to the exercises of lesson 07, optimization (docs/07_optimization.md).

1. Kaiming's standard deviation, and the spread of a signal through a stack of random layers, in NumPy.
2. One Adam / AdamW step in NumPy, with bias correction and (decoupled or L2) weight decay.
3. Clipping a list of gradients to a largest total norm.

tests/test_lesson_07_optimization.py checks them against tinytensor (nn.init, optim, clip_grad_norm_,
the code they re-derive) and against closed-form values.
"""
import math
from typing import List, Tuple

import numpy as np


# ---- exercise 1: initialisation -----------------------------------------------------------------

GAINS = {"linear": 1.0, "relu": math.sqrt(2.0), "tanh": 5.0 / 3}
ACTIVATIONS = {"linear": lambda z: z, "relu": lambda z: np.maximum(z, 0.0), "tanh": np.tanh}


def kaiming_std(fan_in: int, activation: str) -> float:
    """The weight std that keeps the signal's size steady: gain / sqrt(fan_in).

    Linear layers need Var(w) = 1 / fan_in; ReLU zeroes half of its input, so it needs twice that
    (gain sqrt 2); tanh shrinks its input a little, and 5/3 is the usual gain that makes up for it.
    """
    return GAINS[activation] / math.sqrt(fan_in)


def signal_through_stack(n_layers: int, width: int, weight_std: float, activation: str, batch: int = 1000,
                         seed: int = 0) -> List[float]:
    """The std of the activations after each of n_layers random layers h = act(h @ W), W ~ N(0, weight_std^2).

    The input is a (batch, width) array of N(0, 1) numbers; the layers are square and have no bias.
    """
    rng = np.random.default_rng(seed)
    h = rng.standard_normal((batch, width))
    stds = []
    for _ in range(n_layers):
        w = rng.standard_normal((width, width)) * weight_std  # (fan_in, fan_out)
        h = ACTIVATIONS[activation](h @ w)  # (batch, width)
        stds.append(float(h.std()))
    return stds


# ---- exercise 2: Adam and AdamW ------------------------------------------------------------------

def adam_step(p: np.ndarray, g: np.ndarray, m: np.ndarray, v: np.ndarray, t: int, lr: float = 1e-3,
              betas: Tuple[float, float] = (0.9, 0.999), eps: float = 1e-8, weight_decay: float = 0.0,
              decoupled: bool = True) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Step t (counted from 1) of AdamW (decoupled=True) or Adam with L2 decay (False): new (p, m, v).

    AdamW shrinks the weights directly, p <- p (1 - lr wd); Adam adds wd p to the gradient instead, so
    the decay then passes through the per-parameter scaling below like any other gradient.
    """
    beta1, beta2 = betas
    if decoupled:
        p = p * (1 - lr * weight_decay)
    else:
        g = g + weight_decay * p
    m = beta1 * m + (1 - beta1) * g  # running mean of the gradient
    v = beta2 * v + (1 - beta2) * g * g  # running mean of its square
    m_hat = m / (1 - beta1 ** t)  # both start at 0: undo the bias towards 0 of the first steps
    v_hat = v / (1 - beta2 ** t)
    p = p - lr * m_hat / (np.sqrt(v_hat) + eps)
    return p, m, v


# ---- exercise 3: gradient clipping -----------------------------------------------------------------

def clip_by_total_norm(grads: List[np.ndarray], max_norm: float) -> Tuple[List[np.ndarray], float]:
    """Scale all gradients by one factor so that their joint L2 norm is at most max_norm.

    The norm is that of every gradient entry put into one long vector. The factor is
    min(1, max_norm / (norm + 1e-6)), PyTorch's (the 1e-6 avoids dividing by zero). Returns the
    clipped gradients and the norm before clipping.
    """
    total = math.sqrt(sum(float(np.sum(np.square(g, dtype=np.float64))) for g in grads))
    factor = min(1.0, max_norm / (total + 1e-6))
    return [g * factor for g in grads], total
