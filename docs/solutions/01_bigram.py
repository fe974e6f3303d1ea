"""Reference solutions to the exercises of lesson 01 (docs/01_bigram.md): counting, gradients, trigrams.

1. bigram counts as a product of one-hot matrices (no index_add);
2. the gradient of the bigram loss with respect to the logit table, by hand;
3. the n-gram counting model (n = 2 is chapter 01's table, n = 3 looks at two characters).

Written with tinytensor ops; tests/test_lesson_01_bigram.py checks them against plain-Python counting,
float64 finite differences and tinytensor's autograd.
"""
import math
from typing import List, Sequence

import tinytensor as tt
import tinytensor.nn.functional as F

CHARS = ".abcdefghijklmnopqrstuvwxyz"   # '.' (index 0) marks the start and the end of a name
STOI = {c: i for i, c in enumerate(CHARS)}


# ---- exercise 1: counting is a matrix product ---------------------------------------------------

def count_table_onehot(xs: tt.Tensor, ys: tt.Tensor, V: int) -> tt.Tensor:
    """(V, V) float32 counts N[i, j] = number of pairs with x == i and y == j.

    A one-hot row has a single 1, at the character's id. Column i of one_hot(xs) marks the pairs
    whose previous character is i, column j of one_hot(ys) those whose next character is j; their
    dot product counts the pairs that have both: N = one_hot(xs)^T @ one_hot(ys).
    """
    X = F.one_hot(xs, V).to(tt.float32)          # (N, V)
    Y = F.one_hot(ys, V).to(tt.float32)          # (N, V)
    return X.T @ Y                               # (V, N) @ (N, V) -> (V, V)


# ---- exercise 2: the gradient of the bigram loss by hand ----------------------------------------

def bigram_logit_grad(W: tt.Tensor, xs: tt.Tensor, ys: tt.Tensor) -> tt.Tensor:
    """d loss / d W for loss = mean over pairs of -log softmax(W[x])[y], without autograd.

    For one pair the gradient of -log softmax(z)[y] with respect to the logits z is softmax(z) - onehot(y).
    Pair (x, y) touches only row x of W, so row i collects n_i * softmax(W[i]) - N[i, :], where N is
    the count table and n_i how often i is the previous character; the mean divides by the pair count.
    It is zero exactly when softmax(W[i]) = N[i, :] / n_i: the (unsmoothed) counting model.
    """
    V = W.shape[0]
    counts = count_table_onehot(xs, ys, V).to(W.dtype)    # (V, V)
    row_totals = counts.sum(1, keepdim=True)               # (V, 1): n_i
    return (row_totals * W.softmax(1) - counts) / xs.shape[0]


# ---- exercise 3: n-gram counting models ---------------------------------------------------------

def ngram_ids(words: Sequence[str], n: int):
    """(context ids, next ids) of every n-gram of '.' * (n - 1) + word + '.', the context as one number.

    The context c_1 ... c_{n-1} becomes the single id sum_k c_k * 27^(n-1-k), a row of a (27^(n-1), 27) table.
    """
    ctx, nxt = [], []
    for w in words:
        ids = [0] * (n - 1) + [STOI[c] for c in w] + [0]
        for t in range(n - 1, len(ids)):
            row = 0
            for c in ids[t - n + 1:t]:
                row = row * len(CHARS) + c
            ctx.append(row)
            nxt.append(ids[t])
    return tt.tensor(ctx, dtype=tt.int64), tt.tensor(nxt, dtype=tt.int64)


def ngram_probs(words: Sequence[str], n: int, smoothing: float = 1.0) -> tt.Tensor:
    """(27^(n-1), 27) table P[context, next] = (count + smoothing) / row total, counted over `words`."""
    V = len(CHARS)
    rows, ys = ngram_ids(words, n)
    ones = tt.ones(ys.shape[0], dtype=tt.float64)
    flat = tt.zeros(V ** (n - 1) * V, dtype=tt.float64).index_add(0, rows * V + ys, ones)   # one count per n-gram
    counts = flat.reshape(V ** (n - 1), V) + smoothing
    return counts / counts.sum(1, keepdim=True)


def ngram_nll(train_words: List[str], eval_words: List[str], n: int, smoothing: float = 1.0) -> float:
    """Average -log P[next | previous n-1 characters] over eval_words, the table counted on train_words."""
    probs = ngram_probs(train_words, n, smoothing)
    rows, ys = ngram_ids(eval_words, n)
    nll = -probs[rows, ys].log().mean().item()
    return nll if math.isfinite(nll) else math.inf   # smoothing 0 and an unseen n-gram: probability 0
