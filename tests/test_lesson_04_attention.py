"""Tests of the reference solutions of lesson 04, attention (docs/solutions/04_attention.py).

Each solution is checked against a NumPy reference written here independently (float64): running
means from cumulative sums, multi-head attention as a loop over separate heads, and the sinusoidal
table of examples/04_attention.py shifted by k positions.
"""
import math

import numpy as np
import pytest

import tinytensor as tt
from helpers import load_example, load_solution

sol = load_solution("04_attention")


def chapter_04():
    return load_example("04_attention")


@pytest.mark.parametrize("fn", ["running_mean_loop", "running_mean_matmul", "running_mean_softmax"])
@pytest.mark.parametrize("shape", [(2, 5, 3), (1, 1, 4), (3, 8, 1)])
def test_running_means_match_cumsum(fn, shape):
    x = np.random.default_rng(0).standard_normal(shape)
    expected = np.cumsum(x, axis=1) / np.arange(1, shape[1] + 1)[None, :, None]
    got = getattr(sol, fn)(tt.tensor(x, dtype=tt.float64)).numpy()
    assert got.shape == shape
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)


def numpy_heads(x, w_q, w_k, w_v, n_head):
    """Reference: each head on its own (loops over batch and head), outputs concatenated."""
    B, T, C = x.shape
    hs = C // n_head
    out = np.zeros((B, T, C))
    for b in range(B):
        for h in range(n_head):
            cols = slice(h * hs, (h + 1) * hs)
            q, k, v = x[b] @ w_q[:, cols], x[b] @ w_k[:, cols], x[b] @ w_v[:, cols]  # (T, hs) each
            for t in range(T):
                s = q[t] @ k[:t + 1].T / math.sqrt(hs)  # scores against positions 0..t
                p = np.exp(s - s.max())
                out[b, t, cols] = (p / p.sum()) @ v[:t + 1]
    return out


@pytest.mark.parametrize("B,T,C,n_head", [(2, 6, 8, 2), (1, 5, 12, 3), (3, 4, 4, 1), (2, 7, 8, 8)])
def test_multihead_attention_matches_separate_heads(B, T, C, n_head):
    rng = np.random.default_rng(1)
    x, w_q, w_k, w_v = rng.standard_normal((B, T, C)), *(rng.standard_normal((C, C)) / math.sqrt(C) for _ in "qkv")
    got = sol.multihead_attention(*(tt.tensor(a, dtype=tt.float64) for a in (x, w_q, w_k, w_v)), n_head).numpy()
    np.testing.assert_allclose(got, numpy_heads(x, w_q, w_k, w_v, n_head), rtol=1e-10, atol=1e-12)


def test_multihead_attention_does_not_see_the_future():
    rng = np.random.default_rng(2)
    x, w = rng.standard_normal((1, 6, 8)), [tt.tensor(rng.standard_normal((8, 8)), dtype=tt.float64) for _ in "qkv"]
    y = sol.multihead_attention(tt.tensor(x, dtype=tt.float64), *w, 2).numpy()
    x[:, 4:] = rng.standard_normal((1, 2, 8))
    y2 = sol.multihead_attention(tt.tensor(x, dtype=tt.float64), *w, 2).numpy()
    np.testing.assert_allclose(y[:, :4], y2[:, :4], rtol=0, atol=1e-12)
    assert np.abs(y[:, 4:] - y2[:, 4:]).max() > 1e-3


@pytest.mark.parametrize("k,C", [(1, 8), (5, 16), (0, 4), (13, 64)])
def test_sinusoid_shift_matrix_moves_the_chapters_table(k, C):
    T = 40
    pe = chapter_04().sinusoidal(T, C).numpy().astype(np.float64)  # (T, C), float32 in the chapter
    t = np.arange(T - k)
    freq = 10000.0 ** (-np.arange(0, C, 2) / C)
    ref = np.zeros((T, C))
    ref[:, 0::2], ref[:, 1::2] = np.sin(np.arange(T)[:, None] * freq), np.cos(np.arange(T)[:, None] * freq)
    np.testing.assert_allclose(pe, ref, atol=1e-6)  # the table is what the lesson says it is
    m = sol.sinusoid_shift_matrix(k, C)
    np.testing.assert_allclose(ref[t] @ m.T, ref[t + k], atol=1e-9)  # PE[t + k] = M @ PE[t] for every t
    np.testing.assert_allclose(m @ m.T, np.eye(C), atol=1e-12)  # a rotation: lengths are kept


def test_sinusoid_shift_matrix_rejects_odd_width():
    with pytest.raises(ValueError, match="even"):
        sol.sinusoid_shift_matrix(1, 7)
