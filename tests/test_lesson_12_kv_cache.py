"""Tests of the reference solutions of lesson 12, the kv-cache and decoding (docs/solutions/12_kv_cache.py).

The byte count is checked against the buffers make_cache really allocates (GPT, Llama with GQA, float64) and
the largest batch against a search that tries every batch size; the left-padded attention against
F.decode_attention with start= and against each row computed alone, without padding, by plain loops; the
speculative rule's emitted distribution against the target distribution p itself, its acceptance probability
against 1 - total variation distance, one sampled step against p by a chi-square test, and the expected
tokens per target pass against a simulation.
"""
import math

import numpy as np
import pytest

import tinytensor as tt
import tinytensor.nn.functional as F
from gen_helpers import chi2_critical, chi2_statistic
from helpers import load_solution
from models.gpt2 import GPT, GPTConfig
from models.llama import Llama, LlamaConfig

sol = load_solution("12_kv_cache")


# ---- exercise 1 ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("B,max_len", [(1, 16), (3, 40), (5, 7)])
def test_bytes_match_the_gpt_cache(B, max_len):
    tt.manual_seed(0)
    model = GPT(GPTConfig(block_size=40, vocab_size=50, n_layer=3, n_head=4, n_embd=32))
    assert sol.kv_cache_bytes(3, B, 4, max_len, 8) == model.make_cache(B, max_len=max_len).nbytes
    assert sol.kv_cache_bytes(3, B, 4, max_len, 8, 8) == model.to(tt.float64).make_cache(B, max_len=max_len).nbytes


@pytest.mark.parametrize("n_kv", [1, 2, 6])
def test_bytes_match_the_llama_cache_with_gqa(n_kv):
    tt.manual_seed(0)
    model = Llama(LlamaConfig(block_size=24, vocab_size=50, n_layer=2, n_head=6, n_kv_heads=n_kv, n_embd=48))
    assert sol.kv_cache_bytes(2, 3, n_kv, 24, 8) == model.make_cache(3).nbytes


def test_the_lessons_answer_at_7b_size():
    # 32 layers, heads of 128, 4096 positions, 16-bit numbers, 24 GiB: 12 sequences with 32 kv heads, 48 with 8
    assert sol.max_batch(24 * 2 ** 30, 32, 32, 4096, 128, 2) == 12
    assert sol.max_batch(24 * 2 ** 30, 32, 8, 4096, 128, 2) == 48


@pytest.mark.parametrize("budget", [0, 1000, 65_536, 65_537, 10 ** 6, 123_456_789])
def test_max_batch_is_the_largest_that_fits(budget):
    shape = dict(n_layer=2, n_kv_heads=2, max_len=64, head_dim=16)
    best = 0
    while sol.kv_cache_bytes(batch_size=best + 1, **shape) <= budget:
        best += 1
    assert sol.max_batch(budget, **shape) == best


# ---- exercise 2 ----------------------------------------------------------------------------------------------

def attention_alone(q, k, v):
    """One row without padding, by loops: query i of T (the last T of S) reads keys 0..S-T+i."""
    nh, T, E = q.shape
    S = k.shape[1]
    out = np.zeros_like(q)
    for h in range(nh):
        for i in range(T):
            seen = S - T + i + 1
            s = np.array([q[h, i] @ k[h, j] for j in range(seen)]) / math.sqrt(E)
            w = np.exp(s - s.max())
            out[h, i] = (w / w.sum()) @ v[h, :seen]
    return out


@pytest.mark.parametrize("T", [1, 3])
def test_left_padded_attention(T):
    rng = np.random.default_rng(T)
    B, nh, S, E = 3, 2, 9, 4
    pad = np.array([0, 2, 5])  # every query sits after its row's padding (S - T >= 5)
    q, k, v = rng.normal(size=(B, nh, T, E)), rng.normal(size=(B, nh, S, E)), rng.normal(size=(B, nh, S, E))
    got = sol.left_padded_attention(q, k, v, pad)
    lib = F.decode_attention(tt.tensor(q), tt.tensor(k), tt.tensor(v), start=tt.tensor(pad, dtype=tt.int64))
    np.testing.assert_allclose(got, lib.numpy(), atol=1e-12)
    for b in range(B):  # the padding changes nothing: each row as if it were alone
        np.testing.assert_allclose(got[b], attention_alone(q[b], k[b, :, pad[b]:], v[b, :, pad[b]:]), atol=1e-12)


# ---- exercise 3 ----------------------------------------------------------------------------------------------

def random_pair(rng, V, zeros=0):
    p, q = rng.dirichlet(np.ones(V)), rng.dirichlet(np.ones(V))
    p[:zeros] = 0.0  # tokens the target never picks
    return p / p.sum(), q


@pytest.mark.parametrize("seed", range(5))
def test_emitted_distribution_is_the_target(seed):
    rng = np.random.default_rng(seed)
    p, q = random_pair(rng, 7, zeros=seed % 3)
    np.testing.assert_allclose(sol.emitted_distribution(p, q), p, atol=1e-12)
    assert sol.acceptance_probability(p, q) == pytest.approx(1 - 0.5 * np.abs(p - q).sum(), abs=1e-12)
    np.testing.assert_allclose(sol.emitted_distribution(p, p), p, atol=1e-12)
    assert sol.acceptance_probability(p, p) == pytest.approx(1.0)


def test_a_sampled_step_follows_the_target():
    rng = np.random.default_rng(0)
    p, q = random_pair(rng, 6, zeros=1)
    n = 8_000
    steps = [sol.speculative_step(p, q, rng) for _ in range(n)]
    counts = np.bincount([t for t, _ in steps], minlength=6)
    stat, df = chi2_statistic(counts, p)
    assert stat < chi2_critical(df, 1e-3)
    stat_q, df_q = chi2_statistic(counts, q)
    assert stat_q > chi2_critical(df_q, 1e-3)  # and not the draft's (the test can fail)
    accepted = np.mean([a for _, a in steps])
    assert accepted == pytest.approx(sol.acceptance_probability(p, q), abs=4 * math.sqrt(0.25 / n))


@pytest.mark.parametrize("alpha,g", [(0.0, 3), (0.5, 1), (0.7, 4), (0.9, 6), (1.0, 5)])
def test_expected_tokens_per_pass_by_simulation(alpha, g):
    rng = np.random.default_rng(1)
    accepted = rng.random((50_000, g)) < alpha
    prefix = np.where(accepted.all(1), g, np.argmin(accepted, axis=1))  # accepted before the first rejection
    assert sol.expected_tokens_per_pass(alpha, g) == pytest.approx(np.mean(prefix + 1), rel=0.02)
    assert sol.expected_tokens_per_pass(alpha, g) == pytest.approx(sum(alpha ** i for i in range(g + 1)))
