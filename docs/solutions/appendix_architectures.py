"""Reference solutions to the exercises of the appendix lesson (docs/appendix_architectures.md): Llama's parts.

1. RoPE with complex numbers: each channel pair (i, i + hs/2) as one complex number, turned by
   multiplying with e^{i t w_i}; the same rotation models/llama.py does with cos and sin tables.
2. Grouped-query attention by hand (NumPy, causal), and what it saves: attention's parameters and the
   size of a kv-cache.
3. A mixture of experts by hand: route each token to its top-k SwiGLU experts, mix their outputs with a
   softmax over the chosen router logits, and the load-balancing loss.
NumPy only, float64, so each can be checked against the tinytensor model code.
"""
from __future__ import annotations

from typing import List, Tuple

import numpy as np


# ---- 1. RoPE as complex multiplication ---------------------------------------------------------------

def rope_complex(x: np.ndarray, theta: float = 10000.0) -> np.ndarray:
    """Rotate x (..., T, hs) by position: pair i = (x[..., i], x[..., i + hs/2]) turns by t * theta^(-2i/hs)."""
    T, hs = x.shape[-2], x.shape[-1]
    half = hs // 2
    z = x[..., :half] + 1j * x[..., half:]                        # (..., T, hs/2) complex
    freqs = theta ** (-2.0 * np.arange(half) / hs)                # (hs/2,) radians per position
    turn = np.exp(1j * np.outer(np.arange(T), freqs))             # (T, hs/2) unit complex numbers
    rotated = z * turn
    return np.concatenate([rotated.real, rotated.imag], axis=-1)  # back to (..., T, hs)


# ---- 2. grouped-query attention ------------------------------------------------------------------

def gqa_attention(q: np.ndarray, k: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Causal attention for q (B, nh, T, hs) and k, v (B, n_kv, T, hs): query head h uses kv head h // (nh / n_kv)."""
    nh, n_kv, T, hs = q.shape[1], k.shape[1], q.shape[2], q.shape[3]
    group = nh // n_kv
    out = np.empty_like(q)
    future = np.triu(np.ones((T, T), dtype=bool), 1)   # key j > query i
    for h in range(nh):
        kh, vh = k[:, h // group], v[:, h // group]    # (B, T, hs), shared by the group's query heads
        scores = q[:, h] @ kh.transpose(0, 2, 1) / np.sqrt(hs)   # (B, T, T)
        scores = np.where(future, -np.inf, scores)
        w = np.exp(scores - scores.max(-1, keepdims=True))
        out[:, h] = (w / w.sum(-1, keepdims=True)) @ vh
    return out


def attention_params(n_embd: int, n_head: int, n_kv_heads: int) -> int:
    """Weights of Llama's attention (no biases): wq and wo are (C, C); wk and wv are (n_kv * hs, C) each."""
    hs = n_embd // n_head
    return 2 * n_embd * n_embd + 2 * n_embd * n_kv_heads * hs


def kv_cache_bytes(n_layer: int, n_kv_heads: int, head_size: int, tokens: int, bytes_per_value: int = 2) -> int:
    """Memory to keep every layer's keys and values for `tokens` positions (chapter 12's kv-cache)."""
    return 2 * n_layer * n_kv_heads * head_size * tokens * bytes_per_value


# ---- 3. mixture of experts -------------------------------------------------------------------------

def silu(x: np.ndarray) -> np.ndarray:
    return x / (1.0 + np.exp(-x))


def swiglu(x: np.ndarray, w1: np.ndarray, w3: np.ndarray, w2: np.ndarray) -> np.ndarray:
    """w2(silu(w1 x) * w3 x) with nn.Linear's (out, in) weights; x (N, C)."""
    return (silu(x @ w1.T) * (x @ w3.T)) @ w2.T


def moe_forward(x: np.ndarray, router: np.ndarray, experts: List[Tuple[np.ndarray, np.ndarray, np.ndarray]],
                k: int) -> Tuple[np.ndarray, float]:
    """(output (N, C), load-balancing loss) of a top-k mixture; router (E, C), experts [(w1, w3, w2)] * E.

    Every expert runs on every token here (wasteful, but plain): a token's output is the sum over its k
    highest-scoring experts of softmax(their router logits) * expert(token). The loss is
    E * sum_e f_e * P_e, with f_e the share of the N * k routing slots that went to e and P_e the mean
    router probability of e; it is 1 when both are uniform."""
    N, E = x.shape[0], router.shape[0]
    logits = x @ router.T                                           # (N, E)
    top = np.argsort(-logits, axis=-1, kind="stable")[:, :k]        # (N, k), ties to the lower id
    chosen = np.take_along_axis(logits, top, -1)
    weights = np.exp(chosen - chosen.max(-1, keepdims=True))
    weights /= weights.sum(-1, keepdims=True)                       # (N, k)
    every = np.stack([swiglu(x, *w) for w in experts], 1)            # (N, E, C)
    out = (weights[..., None] * np.take_along_axis(every, top[..., None], 1)).sum(1)
    f = np.bincount(top.reshape(-1), minlength=E) / (N * k)
    p = np.exp(logits - logits.max(-1, keepdims=True))
    p = (p / p.sum(-1, keepdims=True)).mean(0)
    return out, float(E * (f * p).sum())
