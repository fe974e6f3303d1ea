"""Tests for lesson 01's reference solutions (docs/solutions/01_bigram.py).

References: NumPy's np.add.at for the counts, float64 central finite differences of a NumPy loss and
tinytensor's autograd for the hand-derived gradient, and plain-Python counting (collections.Counter
and math.log) for the n-gram models. Data: small slices of examples/data/names.txt and random ids.
"""
import math
import os
from collections import Counter

import numpy as np
import pytest

import tinytensor as tt
import tinytensor.nn.functional as F
from helpers import load_solution, numerical_grad

sol = load_solution("01_bigram")

NAMES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples", "data", "names.txt")


@pytest.fixture(scope="module")
def words():
    with open(NAMES, encoding="utf-8") as f:
        return [w.strip() for w in f if w.strip()]


def random_pairs(V: int, N: int, seed: int):
    rng = np.random.default_rng(seed)
    return rng.integers(0, V, N), rng.integers(0, V, N)


# ---- exercise 1 ---------------------------------------------------------------------------------

@pytest.mark.parametrize("V, N, seed", [(27, 500, 0), (5, 1, 1), (7, 300, 2)])
def test_onehot_counts_match_numpy(V, N, seed):
    xs, ys = random_pairs(V, N, seed)
    ref = np.zeros((V, V))
    np.add.at(ref, (xs, ys), 1)
    got = sol.count_table_onehot(tt.tensor(xs), tt.tensor(ys), V)
    assert got.shape == (V, V)
    np.testing.assert_array_equal(got.numpy(), ref)


def test_onehot_counts_of_names(words):
    xs, ys = sol.ngram_ids(words[:300], 2)
    pairs = Counter(zip(xs.tolist(), ys.tolist()))
    got = sol.count_table_onehot(xs, ys, 27).numpy()
    for (i, j), c in pairs.items():
        assert got[i, j] == c
    assert got.sum() == sum(len(w) + 1 for w in words[:300])


# ---- exercise 2 ---------------------------------------------------------------------------------

def numpy_bigram_loss(W: np.ndarray, xs: np.ndarray, ys: np.ndarray) -> float:
    z = W[xs]                                                        # (N, V)
    zmax = z.max(axis=1, keepdims=True)
    logsumexp = zmax[:, 0] + np.log(np.exp(z - zmax).sum(axis=1))
    return float(np.mean(logsumexp - z[np.arange(len(ys)), ys]))


def test_logit_grad_matches_finite_differences():
    V = 6
    xs, ys = random_pairs(V, 40, 3)
    W = np.random.default_rng(4).standard_normal((V, V))
    ref = numerical_grad(lambda w: numpy_bigram_loss(w, xs, ys), W.copy())
    got = sol.bigram_logit_grad(tt.tensor(W, dtype=tt.float64), tt.tensor(xs), tt.tensor(ys)).numpy()
    np.testing.assert_allclose(got, ref, atol=1e-8)


def test_logit_grad_matches_autograd(words):
    xs, ys = sol.ngram_ids(words[:500], 2)
    W = tt.randn(27, 27, dtype=tt.float64, generator=tt.Generator(5), requires_grad=True)
    F.cross_entropy(W[xs], ys).backward()
    got = sol.bigram_logit_grad(W.detach(), xs, ys)
    np.testing.assert_allclose(got.numpy(), W.grad.numpy(), atol=1e-12)


def test_logit_grad_vanishes_at_the_counting_model():
    V = 5
    xs, ys = random_pairs(V, 200, 6)
    counts = np.zeros((V, V))
    np.add.at(counts, (xs, ys), 1)
    counts += 1e-12                                                  # every row seen: log is finite
    W = np.log(counts / counts.sum(1, keepdims=True))
    got = sol.bigram_logit_grad(tt.tensor(W, dtype=tt.float64), tt.tensor(xs), tt.tensor(ys)).numpy()
    assert np.abs(got).max() < 1e-9


# ---- exercise 3 ---------------------------------------------------------------------------------

def python_ngram_nll(train_words, eval_words, n: int, smoothing: float) -> float:
    """Counting with dictionaries and one math.log per n-gram: no tensors."""
    def grams(ws):
        for w in ws:
            s = "." * (n - 1) + w + "."
            for t in range(n - 1, len(s)):
                yield s[t - n + 1:t], s[t]
    counts = Counter(grams(train_words))
    totals = Counter()
    for (ctx, _), c in counts.items():
        totals[ctx] += c
    total, k = 0.0, 0
    for ctx, nxt in grams(eval_words):
        p = (counts[(ctx, nxt)] + smoothing) / (totals[ctx] + 27 * smoothing)
        if p == 0:
            return math.inf
        total -= math.log(p)
        k += 1
    return total / k


@pytest.mark.parametrize("n, smoothing", [(2, 1.0), (2, 0.1), (3, 1.0), (3, 0.01), (4, 0.5)])
def test_ngram_nll_matches_python_counting(words, n, smoothing):
    train, held_out = words[:1500], words[1500:1800]
    got = sol.ngram_nll(train, held_out, n, smoothing)
    assert got == pytest.approx(python_ngram_nll(train, held_out, n, smoothing), rel=1e-10)
    own = sol.ngram_nll(train, train, n, smoothing)
    assert own == pytest.approx(python_ngram_nll(train, train, n, smoothing), rel=1e-10)


def test_unsmoothed_model_gives_infinity_on_an_unseen_pair():
    assert python_ngram_nll(["ab"], ["ba"], 2, 0.0) == math.inf
    assert sol.ngram_nll(["ab"], ["ba"], 2, 0.0) == math.inf


def test_ngram_rows_sum_to_one(words):
    P = sol.ngram_probs(words[:200], 3, 0.5).numpy()
    assert P.shape == (27 * 27, 27)
    np.testing.assert_allclose(P.sum(1), 1.0, rtol=1e-12)
