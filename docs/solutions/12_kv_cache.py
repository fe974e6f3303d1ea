"""Reference solutions to the exercises of lesson 12, the kv-cache and decoding (docs/12_kv_cache.md).

1. The cache's size in bytes from a model's shape, and the largest batch that fits a memory budget.
2. Attention for a left-padded batch with a cache, in NumPy: the mask that hides the padding and the future.
3. Speculative decoding's rule: the exact distribution of the token it emits (it is the target's), the
   chance a draft token is accepted, one sampled step, and the expected tokens per target pass.

tests/test_lesson_12_kv_cache.py checks them against make_cache(...).nbytes and a brute-force search,
F.decode_attention and each row run alone, and a Monte Carlo simulation.
"""
from typing import Tuple

import numpy as np


# ---- exercise 1: the cache's memory -----------------------------------------------------------------------------

def kv_cache_bytes(n_layer: int, batch_size: int, n_kv_heads: int, max_len: int, head_dim: int,
                   bytes_per_number: int = 4) -> int:
    """Bytes of the K and V buffers: every layer keeps one K and one V of shape (B, n_kv_heads, max_len, head_dim)."""
    return 2 * n_layer * batch_size * n_kv_heads * max_len * head_dim * bytes_per_number


def max_batch(budget_bytes: int, n_layer: int, n_kv_heads: int, max_len: int, head_dim: int,
              bytes_per_number: int = 4) -> int:
    """The largest batch whose full cache fits in budget_bytes (0 if not even one row fits)."""
    return budget_bytes // kv_cache_bytes(n_layer, 1, n_kv_heads, max_len, head_dim, bytes_per_number)


# ---- exercise 2: left padding -----------------------------------------------------------------------------------

def left_padded_attention(q: np.ndarray, k: np.ndarray, v: np.ndarray, pad: np.ndarray) -> np.ndarray:
    """Attention of the newest T positions q (B, nh, T, E) to the S cached ones k, v (B, nh, S, E).

    Query i sits at cache index S - T + i and may read index j when j <= S - T + i (not the future) and
    j >= pad[b] (not row b's padding). Scores are scaled by 1/sqrt(E); the softmax runs over the allowed j.
    """
    B, nh, T, E = q.shape
    S = k.shape[2]
    scores = q @ np.swapaxes(k, -1, -2) / np.sqrt(E)              # (B, nh, T, S)
    i = np.arange(T)[:, None] + (S - T)                             # each query's own cache index
    j = np.arange(S)[None, :]
    allowed = (j <= i)[None, :, :] & (j[None] >= np.asarray(pad)[:, None, None])  # (B, T, S)
    scores = np.where(allowed[:, None], scores, -np.inf)
    scores = scores - scores.max(-1, keepdims=True)
    weights = np.exp(scores)
    weights /= weights.sum(-1, keepdims=True)
    return weights @ v                                              # (B, nh, T, E)


# ---- exercise 3: speculative decoding's rule ------------------------------------------------------------------

def acceptance_probability(p: np.ndarray, q: np.ndarray) -> float:
    """P(the draft's token d ~ q is accepted) = sum_x q(x) min(1, p(x)/q(x)) = sum_x min(p(x), q(x))."""
    return float(np.minimum(p, q).sum())


def emitted_distribution(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """The exact distribution of the token one step emits: accepted draft tokens plus residual draws."""
    accepted = np.minimum(p, q)                       # q(x) * min(1, p(x) / q(x))
    rejected = 1.0 - accepted.sum()                   # P(the draft token is rejected)
    residual = np.maximum(p - q, 0.0)
    if residual.sum() == 0:                           # p == q: nothing is ever rejected
        return accepted
    return accepted + rejected * residual / residual.sum()


def speculative_step(p: np.ndarray, q: np.ndarray, rng: np.random.Generator) -> Tuple[int, bool]:
    """One position: draw d ~ q, keep it with probability min(1, p(d)/q(d)), else draw from the residual.

    Returns (the emitted token, whether it was the draft's)."""
    d = int(rng.choice(len(q), p=q))
    if rng.random() < min(1.0, p[d] / q[d]):
        return d, True
    residual = np.maximum(p - q, 0.0)
    return int(rng.choice(len(p), p=residual / residual.sum())), False


def expected_tokens_per_pass(alpha: float, num_draft: int) -> float:
    """Tokens one target pass yields when each draft token is accepted with probability alpha, independently:
    1 + alpha + alpha^2 + ... + alpha^g (the accepted prefix, then the target's own token)."""
    if alpha == 1.0:
        return float(num_draft + 1)
    return (1.0 - alpha ** (num_draft + 1)) / (1.0 - alpha)
