"""Reference solutions to the exercises of lesson 07, optimization (docs/07_optimization.md).

1. One Adam / AdamW step in NumPy, with bias correction and (decoupled or L2) weight decay.
2. The learning rate of linear warmup followed by a cosine decay, as a function of the step.
3. Clipping a list of gradients to a largest total norm.

tests/test_lesson_07_optimization.py checks them against tinytensor.optim (the code they re-derive),
tt.nn.utils.clip_grad_norm_ and closed-form values.
"""
import math
from typing import List, Tuple

import numpy as np


# ---- exercise 1: Adam and AdamW ------------------------------------------------------------------

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


# ---- exercise 2: warmup then cosine --------------------------------------------------------------

def warmup_cosine_lr(step: int, peak_lr: float, warmup_steps: int, total_steps: int, min_ratio: float = 0.0) -> float:
    """The learning rate used at step (0-based): linear up to the peak, then half a cosine down to min_ratio.

    Warmup: step s < warmup_steps gets peak * (s + 1) / warmup_steps, so step 0 already moves a little.
    Decay: progress runs from 0 at warmup_steps to 1 at total_steps; after total_steps it stays at the floor.
    """
    floor = peak_lr * min_ratio
    if step < warmup_steps:
        return peak_lr * (step + 1) / warmup_steps
    if step >= total_steps:
        return floor
    progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
    return floor + (peak_lr - floor) * (1 + math.cos(math.pi * progress)) / 2


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
