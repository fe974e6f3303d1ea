"""Reference solutions to the exercises of lesson 03 (docs/03_mlp.md): the character MLP by hand.

1. the number of parameters of an MLPConfig, in closed form;
2. the model's forward pass and loss in NumPy, from its weights (tanh, no BatchNorm);
3. the warmup + cosine learning-rate schedule as a formula.

tests/test_lesson_03_mlp.py checks them against the chapter's own model (num_parameters, forward),
tinytensor's WarmupCosineLR driving an optimizer, and NumPy.
"""
import math
from typing import List, Sequence, Tuple

import numpy as np


# ---- exercise 1: counting parameters -----------------------------------------------------------

def mlp_num_parameters(block_size: int = 3, vocab_size: int = 27, n_embd: int = 10, n_hidden: int = 200,
                       n_layer: int = 1, batchnorm: bool = False) -> int:
    """Embedding table + each hidden layer (weights, bias or BatchNorm's scale and shift) + the head.

    A Linear(fan_in, fan_out) holds fan_in * fan_out weights and fan_out biases. With BatchNorm the
    hidden Linear drops its bias, and BatchNorm1d adds a scale and a shift per feature (its running
    mean and variance are buffers, not parameters).
    """
    total = vocab_size * n_embd                             # wte: one n_embd vector per character
    fan_in = block_size * n_embd                            # the concatenated context
    for _ in range(n_layer):
        total += fan_in * n_hidden + (2 * n_hidden if batchnorm else n_hidden)
        fan_in = n_hidden
    return total + fan_in * vocab_size + vocab_size         # head: logits for every character


# ---- exercise 2: the forward pass in NumPy --------------------------------------------------------

def numpy_mlp_forward(C: np.ndarray, hidden: Sequence[Tuple[np.ndarray, np.ndarray]], W_out: np.ndarray,
                      b_out: np.ndarray, X: np.ndarray) -> np.ndarray:
    """Logits (B, V) for contexts X (B, T) of character ids.

    C is the (V, n_embd) embedding table; `hidden` lists each tanh layer's (weight (out, in), bias (out,))
    and W_out (V, n_hidden), b_out (V,) is the head, all in tinytensor's Linear layout (weight @ x).
    """
    h = C[X].reshape(X.shape[0], -1)                 # (B, T) -> (B, T, C) -> (B, T*C): concatenated
    for W, b in hidden:
        h = np.tanh(h @ W.T + b)                     # (B, fan_in) @ (fan_in, H) -> (B, H)
    return h @ W_out.T + b_out                       # (B, V)


def numpy_cross_entropy(logits: np.ndarray, Y: np.ndarray) -> float:
    """Mean of -log softmax(logits)[y], computed as logsumexp(logits) - logits[y]."""
    m = logits.max(axis=1, keepdims=True)
    logsumexp = m[:, 0] + np.log(np.exp(logits - m).sum(axis=1))
    return float(np.mean(logsumexp - logits[np.arange(len(Y)), Y]))


# ---- exercise 3: the learning-rate schedule -------------------------------------------------------

def warmup_cosine_lr(step: int, peak_lr: float, warmup: int, total: int, min_ratio: float) -> float:
    """The learning rate used at (0-based) `step`.

    Warmup: (step + 1) / warmup of the peak, so step 0 already moves and step warmup - 1 is at the peak.
    Then half a cosine from the peak down to min_ratio * peak at `total`, and flat after.
    """
    if step < warmup:
        return peak_lr * (step + 1) / warmup
    if step >= total:
        return peak_lr * min_ratio
    progress = (step - warmup) / max(1, total - warmup)          # 0 -> 1 over the decay
    cosine = 0.5 * (1.0 + math.cos(math.pi * progress))           # 1 -> 0
    return peak_lr * (min_ratio + (1.0 - min_ratio) * cosine)


def schedule(peak_lr: float, warmup: int, total: int, min_ratio: float) -> List[float]:
    """The learning rates of steps 0 .. total - 1."""
    return [warmup_cosine_lr(s, peak_lr, warmup, total, min_ratio) for s in range(total)]
