"""Reference solutions to the exercises of lesson 04, attention (docs/04_attention.md).

1. The averaging trick three ways: a Python loop, a lower-triangular matrix product, and a masked softmax.
2. Multi-head causal attention with one batched matmul instead of a list of heads.
3. The rotation that moves a sinusoidal position vector k steps forward.

Each function runs on tinytensor (and NumPy for the closed forms); tests/test_lesson_04_attention.py
checks them against NumPy references written independently.
"""
import math

import numpy as np

import tinytensor as tt


# ---- exercise 1: the averaging trick ------------------------------------------------------------

def running_mean_loop(x: tt.Tensor) -> tt.Tensor:
    """out[b, t] = mean of x[b, 0..t], one position at a time. x: (B, T, C) -> (B, T, C)."""
    T = x.shape[1]
    rows = [x[:, :t + 1, :].mean(dim=1) for t in range(T)]  # T tensors of (B, C)
    return tt.stack(rows, dim=1)  # (B, T, C)


def running_mean_matmul(x: tt.Tensor) -> tt.Tensor:
    """The same average as one matrix product: row t of W holds 1/(t+1) in columns 0..t."""
    T = x.shape[1]
    lower = tt.ones(T, T, dtype=x.dtype).tril()  # (T, T): 1 where s <= t
    weights = lower / lower.sum(dim=1, keepdim=True)  # each row sums to 1
    return weights @ x  # (T, T) @ (B, T, C) -> (B, T, C)


def running_mean_softmax(x: tt.Tensor) -> tt.Tensor:
    """The same average as attention with all scores equal: softmax of zeros with the future at -inf."""
    T = x.shape[1]
    scores = tt.zeros(T, T, dtype=x.dtype)  # every earlier position matches equally well
    future = tt.ones(T, T).triu(1).bool()  # True above the diagonal
    weights = scores.masked_fill(future, -math.inf).softmax(-1)  # (T, T)
    return weights @ x  # (B, T, C)


# ---- exercise 2: all heads in one batched matmul ------------------------------------------------

def multihead_attention(x: tt.Tensor, w_q: tt.Tensor, w_k: tt.Tensor, w_v: tt.Tensor, n_head: int) -> tt.Tensor:
    """Causal multi-head attention without a loop over heads.

    x: (B, T, C); w_q, w_k, w_v: (C, C), applied as x @ w. Head h uses columns h*hs .. (h+1)*hs - 1 of
    each projection, hs = C // n_head. Returns the heads' outputs side by side, (B, T, C), the same as
    concatenating n_head separate heads (no output projection).
    """
    B, T, C = x.shape
    hs = C // n_head
    q = (x @ w_q).reshape(B, T, n_head, hs).transpose(1, 2)  # (B, nh, T, hs)
    k = (x @ w_k).reshape(B, T, n_head, hs).transpose(1, 2)  # (B, nh, T, hs)
    v = (x @ w_v).reshape(B, T, n_head, hs).transpose(1, 2)  # (B, nh, T, hs)
    scores = q @ k.transpose(-2, -1) * (1.0 / math.sqrt(hs))  # (B, nh, T, T)
    future = tt.ones(T, T).triu(1).bool()  # (T, T), broadcast over B and nh
    weights = scores.masked_fill(future, -math.inf).softmax(-1)  # (B, nh, T, T)
    y = weights @ v  # (B, nh, T, hs)
    return y.transpose(1, 2).reshape(B, T, C)  # (B, T, C): heads side by side


# ---- exercise 3: sinusoidal positions move by a rotation ----------------------------------------

def sinusoid_shift_matrix(k: int, n_embd: int) -> np.ndarray:
    """M (C, C) with PE[t + k] = M @ PE[t] for every t, for the chapter's sinusoidal table.

    Pair i of the table holds (sin(t w_i), cos(t w_i)) with w_i = 10000^(-2i/C). The angle-sum formulas
    give sin((t+k) w) = cos(k w) sin(t w) + sin(k w) cos(t w) and cos((t+k) w) = -sin(k w) sin(t w) +
    cos(k w) cos(t w): a 2x2 rotation per pair that depends on k only, not on t.
    """
    if n_embd % 2:
        raise ValueError(f"sinusoid_shift_matrix: n_embd must be even, got {n_embd}")
    m = np.zeros((n_embd, n_embd))
    for i in range(n_embd // 2):
        w = math.exp(-math.log(10000.0) * (2 * i) / n_embd)
        c, s = math.cos(k * w), math.sin(k * w)
        m[2 * i:2 * i + 2, 2 * i:2 * i + 2] = [[c, s], [-s, c]]
    return m
