"""A tiny language model in plain NumPy with the kv-cache interface of chapter 12, for the decoding tests.

TableLM's next-token logits depend on the last token, on the position and on the counts of every token in
the context, so a decoding loop that gets padding, positions, cache rows or rollbacks wrong gets different
logits. It has no weights to train and runs in microseconds, which lets the statistical tests draw many
thousands of samples. `next_logits(context)` is the same function without any cache: the reference.
"""
import math
from types import SimpleNamespace

import numpy as np

import tinytensor as tt


class ListCache:
    """The cache interface (length, max_len, crop, reorder) over plain token lists, padding included."""

    def __init__(self, batch_size, max_len, pad):
        pad = [0] * batch_size if pad is None else [int(p) for p in pad]
        self.rows, self.pad, self.max_len, self.length = [[] for _ in pad], pad, max_len, 0

    def crop(self, length):
        self.rows = [r[:length] for r in self.rows]
        self.length = length

    def reorder(self, rows):
        rows = [int(i) for i in rows]
        self.rows, self.pad = [list(self.rows[i]) for i in rows], [self.pad[i] for i in rows]


class TableLM:
    """logits(context) = E[last] + M @ counts(context) / len(context) + P[position]; scale sharpens it."""

    def __init__(self, vocab_size=7, block_size=12, seed=0, scale=3.0):
        rng = np.random.default_rng(seed)
        self.config = SimpleNamespace(vocab_size=vocab_size, block_size=block_size)
        self.E = scale * rng.standard_normal((vocab_size, vocab_size))
        self.M = scale * rng.standard_normal((vocab_size, vocab_size))
        self.P = scale * rng.standard_normal((block_size, vocab_size))
        self.training, self.calls = True, []  # calls: the (B, T) of every forward

    def parameters(self):
        return iter([tt.zeros(1)])

    def eval(self):
        self.training = False

    def train(self, mode=True):
        self.training = mode

    def make_cache(self, batch_size, max_len=None, pad=None):
        if max_len is not None and max_len > self.config.block_size:  # as GPT.make_cache
            raise ValueError(f"TableLM.make_cache: max_len {max_len} is longer than block_size")
        return ListCache(batch_size, max_len or self.config.block_size, pad)

    def next_logits(self, context):
        """The reference: logits for the token after `context` (a list of ids), no cache."""
        ctx = np.asarray(context)
        if len(ctx) > self.config.block_size:
            raise ValueError(f"TableLM: context of {len(ctx)} > block_size {self.config.block_size}")
        counts = np.bincount(ctx, minlength=self.config.vocab_size) / len(ctx)
        return self.E[ctx[-1]] + self.M @ counts + self.P[len(ctx) - 1]

    def __call__(self, idx, cache=None):
        idx = idx.numpy()
        self.calls.append(idx.shape)
        if cache is None:  # as GPT without a cache: the last position's logits only, (B, 1, V)
            return tt.tensor(np.stack([self.next_logits(r)[None] for r in idx.tolist()])), None
        B, T = idx.shape
        if cache.length + T > cache.max_len:
            raise ValueError(f"ListCache: {cache.length + T} positions > max_len {cache.max_len}")
        out = np.zeros((B, T, self.config.vocab_size))
        for b in range(B):
            for t in range(T):
                cache.rows[b].append(int(idx[b, t]))
                real = cache.rows[b][cache.pad[b]:]  # the padding is never read
                out[b, t] = self.next_logits(real) if real else np.nan
        cache.length += T
        return tt.tensor(out), None


# ---- the chi-square test without scipy -------------------------------------------------------------------

def chi2_cdf(x, df):
    """P(X <= x) for X ~ chi-square(df): the regularised lower incomplete gamma P(df/2, x/2), by its series."""
    a, z = df / 2.0, x / 2.0
    if z <= 0:
        return 0.0
    term = total = 1.0 / a
    n = 0
    while term > 1e-17 * total:
        n += 1
        term *= z / (a + n)
        total += term
    return float(np.exp(a * np.log(z) - z - math.lgamma(a)) * total)


def chi2_critical(df, alpha):
    """The x with P(X > x) = alpha for chi-square(df), by bisection on chi2_cdf."""
    lo, hi = 0.0, 10.0 * df + 100.0
    for _ in range(200):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if chi2_cdf(mid, df) < 1 - alpha else (lo, mid)
    return (lo + hi) / 2


def chi2_statistic(counts, probs):
    """Pearson's statistic sum (observed - expected)^2 / expected over cells with expected > 0."""
    counts, probs = np.asarray(counts, dtype=np.float64), np.asarray(probs, dtype=np.float64)
    expected = counts.sum() * probs
    keep = expected > 0
    assert counts[~keep].sum() == 0, "a sample fell in a cell of probability zero"
    return float(((counts[keep] - expected[keep]) ** 2 / expected[keep]).sum()), int(keep.sum()) - 1
