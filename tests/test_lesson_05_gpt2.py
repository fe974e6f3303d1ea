"""Tests of the reference solutions of lesson 05, GPT-2 (docs/solutions/05_gpt2.py).

The closed-form parameter count is checked against the model's own count over several configurations;
the sampling distribution against a plain-Python sort-and-cut reference and against models/sampling.py's
filter; the causality probe against GPT (no influence) and a GPT whose attention sees the future.
"""
import json
import math
import os
import types

import numpy as np
import pytest

import models.gpt2 as gpt2
import tinytensor as tt
import tinytensor.nn.functional as F
from helpers import load_solution
from models.gpt2 import GPT, GPTConfig
from models.sampling import filter_logits

sol = load_solution("05_gpt2")


@pytest.mark.parametrize("V,T,L,C,bias", [(4096, 128, 2, 128, False), (4096, 128, 2, 128, True),
                                          (50, 16, 1, 8, True), (300, 32, 3, 24, False), (65, 8, 4, 16, True)])
def test_parameter_count_matches_the_model(V, T, L, C, bias):
    tt.manual_seed(0)
    model = GPT(GPTConfig(block_size=T, vocab_size=V, n_layer=L, n_head=4 if C % 4 == 0 else 1, n_embd=C, bias=bias))
    assert sol.gpt_num_parameters(V, T, L, C, bias) == model.num_parameters()


def test_parameter_count_of_the_storytellers():
    """The default run's model (2x128): 934,528 without biases (as trained), 937,472 with them; the shipped
    storyteller (4x256): 4,229,376 and 4,240,896, as its README and the lesson say."""
    assert sol.gpt_num_parameters(4096, 128, 2, 128, bias=False) == 934_528
    assert sol.gpt_num_parameters(4096, 128, 2, 128, bias=True) == 937_472
    assert sol.gpt_num_parameters(4096, 128, 4, 256, bias=False) == 4_229_376
    assert sol.gpt_num_parameters(4096, 128, 4, 256, bias=True) == 4_240_896


def test_shipped_storyteller_count_agrees_with_its_file():
    """The closed form, fed the shipped config.json, equals the parameter count of the loaded (bias-free) model."""
    folder = os.path.join(os.path.dirname(__file__), "..", "examples", "checkpoints", "storyteller")
    with open(os.path.join(folder, "config.json")) as f:
        cfg = json.load(f)
    model = GPT.from_pretrained(folder)
    count = sol.gpt_num_parameters(cfg["vocab_size"], cfg["n_positions"], cfg["n_layer"], cfg["n_embd"],
                                   bias=cfg["bias"])
    assert count == model.num_parameters() == 4_229_376


def reference_probs(logits, temperature, top_k, top_p):
    """Sort the tokens by logit, cut to the top k, then to the nucleus; plain Python floats."""
    z = [x / temperature for x in logits]
    ranked = sorted(range(len(z)), key=lambda i: -z[i])
    kept = ranked[:top_k] if top_k else ranked
    total = sum(math.exp(z[i] - z[ranked[0]]) for i in kept)
    prob = {i: math.exp(z[i] - z[ranked[0]]) / total for i in kept}
    if top_p is not None:
        nucleus, mass = [], 0.0
        for i in kept:
            nucleus.append(i)
            mass += prob[i]
            if mass >= top_p:
                break
        kept = nucleus
    total = sum(prob[i] for i in kept)
    out = [0.0] * len(z)
    for i in kept:
        out[i] = prob[i] / total
    return np.array(out)


@pytest.mark.parametrize("temperature,top_k,top_p", [(1.0, None, None), (0.5, None, None), (2.0, 5, None),
                                                     (0.8, 50, None), (1.0, None, 0.9), (0.8, 10, 0.5),
                                                     (1.3, 3, 0.99), (1.0, 1, None), (1.0, None, 0.01)])
def test_next_token_probs_match_reference_and_sampler(temperature, top_k, top_p):
    rng = np.random.default_rng(3)
    for _ in range(5):
        logits = rng.standard_normal(64) * 3
        got = sol.next_token_probs(logits, temperature, top_k, top_p)
        np.testing.assert_allclose(got, reference_probs(logits, temperature, top_k, top_p), rtol=1e-10, atol=1e-15)
        assert abs(got.sum() - 1) < 1e-12 and (got > 0).sum() >= 1
        if top_k:
            assert (got > 0).sum() <= top_k
        kept = filter_logits(logits[None] / temperature, top_k, top_p)[0]  # what the storyteller's sampler keeps
        np.testing.assert_array_equal(got > 0, np.isfinite(kept))


def tiny_gpt():
    tt.manual_seed(0)
    return GPT(GPTConfig(block_size=12, vocab_size=40, n_layer=2, n_head=2, n_embd=16))


def test_gpt_does_not_see_the_future():
    idx = tt.tensor(np.random.default_rng(0).integers(0, 40, (2, 12)), dtype=tt.int64)
    model = tiny_gpt()
    for t in (0, 5, 10):
        assert sol.future_influence(model, idx, t) < 1e-5


class _NonCausalF(types.SimpleNamespace):
    """tinytensor.nn.functional, except that attention also looks at later positions."""

    def __getattr__(self, name):
        return getattr(F, name)

    @staticmethod
    def scaled_dot_product_attention(q, k, v, dropout_p=0.0, is_causal=False):
        return F.scaled_dot_product_attention(q, k, v, dropout_p=dropout_p, is_causal=False)


def test_future_influence_catches_a_leaky_model(monkeypatch):
    idx = tt.tensor(np.random.default_rng(0).integers(0, 40, (2, 12)), dtype=tt.int64)
    model = tiny_gpt()
    monkeypatch.setattr(gpt2, "F", _NonCausalF())
    assert sol.future_influence(model, idx, 5) > 1e-4
    assert sol.future_influence(model, idx, 11) == 0.0  # nothing comes after the last position
