"""The appendix lesson's exercise solutions (docs/solutions/appendix_architectures.py) against independent references.

RoPE written with complex numbers against models/llama.py's cos/sin rotation, and against the property that
makes it useful (scores depend on relative position only); grouped-query attention in NumPy against
tinytensor's scaled_dot_product_attention(enable_gqa=True); parameter and kv-cache counts against a built
Llama's own modules and tensors; the NumPy mixture of experts against models/llama.py's MoE (output and
load-balancing loss), plus the closed form of a router that scores every expert alike.
"""
import numpy as np
import pytest

import tinytensor as tt
import tinytensor.nn.functional as F
from helpers import load_solution
from models.llama import MoE, Attention, Llama, LlamaConfig, apply_rope, rope_tables

sol = load_solution("appendix_architectures")


def weights(linear) -> np.ndarray:
    return linear.weight.detach().numpy().astype(np.float64)


# ---- 1. RoPE ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("T,hs,theta", [(7, 8, 10000.0), (16, 4, 500.0), (3, 32, 10000.0)])
def test_rope_complex_equals_llama_rope(T, hs, theta):
    x = np.random.default_rng(T).standard_normal((2, 3, T, hs))
    cos, sin = rope_tables(T, hs, theta)
    expected = apply_rope(tt.tensor(x.astype(np.float32)), cos, sin).numpy()
    np.testing.assert_allclose(sol.rope_complex(x, theta), expected, rtol=1e-5, atol=1e-5)


def test_rope_scores_depend_on_distance_only():
    rng = np.random.default_rng(0)
    T, hs = 12, 16
    q = np.broadcast_to(rng.standard_normal(hs), (T, hs))   # the same query and key at every position
    k = np.broadcast_to(rng.standard_normal(hs), (T, hs))
    rq, rk = sol.rope_complex(q), sol.rope_complex(k)
    scores = rq @ rk.T                                        # scores[m, n]: query at m, key at n
    for d in range(-T + 1, T):
        diagonal = np.diagonal(scores, offset=-d)             # all (m, n) with m - n = d
        np.testing.assert_allclose(diagonal, diagonal[0], rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(np.linalg.norm(rq, axis=-1), np.linalg.norm(q, axis=-1), rtol=1e-12)


# ---- 2. grouped-query attention ---------------------------------------------------------------------

@pytest.mark.parametrize("nh,n_kv", [(4, 1), (4, 2), (6, 3), (2, 2)])
def test_gqa_attention_equals_sdpa(nh, n_kv):
    rng = np.random.default_rng(nh * 10 + n_kv)
    B, T, hs = 2, 5, 8
    q, k, v = rng.standard_normal((B, nh, T, hs)), rng.standard_normal((B, n_kv, T, hs)), rng.standard_normal(
        (B, n_kv, T, hs))
    expected = F.scaled_dot_product_attention(tt.tensor(q), tt.tensor(k), tt.tensor(v), is_causal=True,
                                              enable_gqa=True).numpy()
    np.testing.assert_allclose(sol.gqa_attention(q, k, v), expected, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("n_embd,n_head,n_kv", [(32, 4, 4), (32, 4, 2), (48, 6, 1)])
def test_attention_params_counts_the_module(n_embd, n_head, n_kv):
    attn = Attention(LlamaConfig(block_size=8, vocab_size=16, n_layer=1, n_head=n_head, n_kv_heads=n_kv,
                                 n_embd=n_embd))
    assert sol.attention_params(n_embd, n_head, n_kv) == sum(p.numel() for p in attn.parameters())


def test_kv_cache_bytes_counts_the_keys_and_values():
    cfg = LlamaConfig(block_size=16, vocab_size=32, n_layer=3, n_head=4, n_kv_heads=2, n_embd=32)
    model = Llama(cfg)
    T = 10
    x = tt.randn(1, T, cfg.n_embd)
    per_layer = sum(layer.attn.wk(x).numel() + layer.attn.wv(x).numel() for layer in model.layers)
    assert sol.kv_cache_bytes(cfg.n_layer, cfg.n_kv_heads, cfg.n_embd // cfg.n_head, T, 2) == 2 * per_layer
    assert sol.kv_cache_bytes(3, 4, 8, T, 4) == 2 * sol.kv_cache_bytes(3, 2, 8, T, 4)   # MHA keeps twice GQA's


# ---- 3. mixture of experts --------------------------------------------------------------------------

def expert_weights(moe):
    return [(weights(e.w1), weights(e.w3), weights(e.w2)) for e in moe.experts]


@pytest.mark.parametrize("n_experts,k", [(4, 2), (3, 1), (5, 3)])
def test_moe_forward_equals_the_model(n_experts, k):
    tt.manual_seed(n_experts * 10 + k)
    moe = MoE(LlamaConfig(n_embd=16, n_head=2, ffn_hidden=24, n_experts=n_experts, n_experts_per_tok=k))
    x = tt.randn(2, 7, 16)
    with tt.no_grad():
        expected = moe(x).numpy().reshape(14, 16)
    out, aux = sol.moe_forward(x.numpy().reshape(14, 16).astype(np.float64), weights(moe.router),
                               expert_weights(moe), k)
    np.testing.assert_allclose(out, expected, rtol=1e-4, atol=1e-5)
    assert aux == pytest.approx(moe.aux_loss.item(), rel=1e-5)


def test_moe_with_an_indifferent_router():
    tt.manual_seed(1)
    moe = MoE(LlamaConfig(n_embd=8, n_head=2, ffn_hidden=12, n_experts=4, n_experts_per_tok=2))
    x = np.random.default_rng(1).standard_normal((5, 8))
    experts = expert_weights(moe)
    out, aux = sol.moe_forward(x, np.zeros((4, 8)), experts, 2)
    # equal logits: ties go to experts 0 and 1, each weighted 1/2; the loss is 4 * (2 * 1/2 * 1/4) = 1
    np.testing.assert_allclose(out, 0.5 * (sol.swiglu(x, *experts[0]) + sol.swiglu(x, *experts[1])), rtol=1e-12)
    assert aux == pytest.approx(1.0)
