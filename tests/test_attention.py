"""scaled_dot_product_attention against a NumPy float64 reference (masks, causal, scale, GQA, gradients),
PyTorch as an oracle when installed, and GPT-2's CausalSelfAttention (no position sees the future).
"""
import math
import re

import numpy as np
import pytest
from hypothesis import given, strategies as st

import tinytensor as tt
import tinytensor.nn.functional as F
from helpers import load_example, numerical_grad

from models.gpt2 import CausalSelfAttention, GPTConfig

rng = np.random.default_rng(0)


def sdpa_ref(q, k, v, mask=None, is_causal=False, scale=None):
    """softmax(q k^T * scale + mask) v in float64; rows that may attend to nothing give zeros."""
    scale = 1 / math.sqrt(q.shape[-1]) if scale is None else scale
    s = q @ np.swapaxes(k, -1, -2) * scale  # (..., L, S)
    L, S = s.shape[-2:]
    if is_causal:
        s = np.where(np.tril(np.ones((L, S), dtype=bool)), s, -np.inf)
    if mask is not None:
        s = np.where(mask, s, -np.inf) if mask.dtype == bool else s + mask
    m = s.max(-1, keepdims=True)
    m = np.where(np.isinf(m), 0, m)
    e = np.exp(s - m)
    den = e.sum(-1, keepdims=True)
    return (e / np.where(den == 0, 1, den)) @ v


def T(a, grad=False):
    return tt.tensor(np.asarray(a, dtype=np.float64), requires_grad=grad)


def qkv(B=2, H=3, L=5, S=5, E=4, Ev=6):
    return rng.standard_normal((B, H, L, E)), rng.standard_normal((B, H, S, E)), rng.standard_normal((B, H, S, Ev))


@pytest.mark.parametrize("L,S", [(5, 5), (3, 6), (6, 3), (1, 1)])
@pytest.mark.parametrize("is_causal", [False, True])
def test_sdpa_matches_reference(L, S, is_causal):
    q, k, v = qkv(L=L, S=S)
    out = F.scaled_dot_product_attention(T(q), T(k), T(v), is_causal=is_causal)
    np.testing.assert_allclose(out.numpy(), sdpa_ref(q, k, v, is_causal=is_causal), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("mask_shape", [(5, 6), (1, 1, 5, 6), (2, 1, 1, 6), (2, 3, 5, 6), (1, 3, 1, 1)])
def test_bool_mask_broadcasts(mask_shape):
    q, k, v = qkv(L=5, S=6)
    mask = rng.random(mask_shape) > 0.3
    out = F.scaled_dot_product_attention(T(q), T(k), T(v), attn_mask=tt.tensor(mask))
    np.testing.assert_allclose(out.numpy(), sdpa_ref(q, k, v, mask), rtol=1e-10, atol=1e-12)


def test_float_mask_is_added_and_scale_is_used():
    q, k, v = qkv(L=4, S=4)
    mask = rng.standard_normal((1, 3, 4, 4))
    mask[0, 1, 2, :] = -np.inf  # a row that sees nothing: zeros, as PyTorch
    out = F.scaled_dot_product_attention(T(q), T(k), T(v), attn_mask=T(mask), scale=0.3)
    expected = sdpa_ref(q, k, v, mask, scale=0.3)
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-10, atol=1e-12)
    assert np.all(out.numpy()[:, 1, 2] == 0)


def test_fully_masked_rows_are_zero_not_nan():
    q, k, v = qkv(L=3, S=3)
    mask = np.array([[False, False, False], [True, False, False], [True, True, True]])
    out = F.scaled_dot_product_attention(T(q), T(k), T(v), attn_mask=tt.tensor(mask)).numpy()
    assert np.isfinite(out).all() and np.all(out[..., 0, :] == 0)


@pytest.mark.parametrize("float_mask", [False, True])
def test_causal_combines_with_mask(float_mask):
    q, k, v = qkv(L=5, S=5)
    keep = rng.random((2, 1, 1, 5)) > 0.2  # key padding
    mask = np.where(keep, 0.0, -np.inf) if float_mask else keep
    out = F.scaled_dot_product_attention(T(q), T(k), T(v), attn_mask=T(mask) if float_mask else tt.tensor(mask),
                                         is_causal=True)
    both = keep & np.tril(np.ones((5, 5), dtype=bool))
    np.testing.assert_allclose(out.numpy(), sdpa_ref(q, k, v, both), rtol=1e-10, atol=1e-12)


def test_unbatched_and_three_dims():
    q, k, v = rng.standard_normal((4, 3)), rng.standard_normal((6, 3)), rng.standard_normal((6, 2))
    out = F.scaled_dot_product_attention(T(q), T(k), T(v), is_causal=True)
    np.testing.assert_allclose(out.numpy(), sdpa_ref(q, k, v, is_causal=True), rtol=1e-10, atol=1e-12)
    q3, k3, v3 = q[None].repeat(2, 0), k[None].repeat(2, 0), v[None].repeat(2, 0)
    out3 = F.scaled_dot_product_attention(T(q3), T(k3), T(v3))
    np.testing.assert_allclose(out3.numpy(), sdpa_ref(q3, k3, v3), rtol=1e-10, atol=1e-12)


def test_gqa_shares_kv_heads():
    q = rng.standard_normal((2, 6, 5, 4))
    k, v = rng.standard_normal((2, 2, 5, 4)), rng.standard_normal((2, 2, 5, 4))
    out = F.scaled_dot_product_attention(T(q), T(k), T(v), is_causal=True, enable_gqa=True)
    kr, vr = np.repeat(k, 3, axis=1), np.repeat(v, 3, axis=1)  # query head h uses kv head h // 3
    np.testing.assert_allclose(out.numpy(), sdpa_ref(q, kr, vr, is_causal=True), rtol=1e-10, atol=1e-12)
    with pytest.raises(ValueError, match="multiple"):
        F.scaled_dot_product_attention(T(q), T(k[:, :1].repeat(4, 1)), T(v[:, :1].repeat(4, 1)), enable_gqa=True)


def test_shape_errors():
    q, k, v = qkv(L=4, S=5)
    with pytest.raises(ValueError, match="scaled_dot_product_attention"):
        F.scaled_dot_product_attention(T(q), T(k[..., :3]), T(v))
    with pytest.raises(ValueError, match="scaled_dot_product_attention"):
        F.scaled_dot_product_attention(T(q), T(k), T(v[..., :4, :]))


@pytest.mark.parametrize("is_causal", [False, True])
def test_gradients_match_finite_differences(is_causal):
    q, k, v = qkv(B=1, H=2, L=3, S=4, E=3, Ev=2)
    mask = rng.standard_normal((3, 4))
    w = rng.standard_normal((1, 2, 3, 2))  # a random linear function of the output
    tq, tk, tv = T(q, True), T(k, True), T(v, True)
    (F.scaled_dot_product_attention(tq, tk, tv, attn_mask=T(mask), is_causal=is_causal) * T(w)).sum().backward()
    for i, (t, x) in enumerate(((tq, q), (tk, k), (tv, v))):
        def f(xi, i=i):
            args = [q, k, v]
            args[i] = xi
            return (sdpa_ref(*args, mask if not is_causal else np.where(np.tril(np.ones((3, 4))) > 0, mask, -np.inf))
                    * w).sum()
        np.testing.assert_allclose(t.grad.numpy(), numerical_grad(f, x), rtol=1e-5, atol=1e-7)


@given(L=st.integers(1, 5), S=st.integers(1, 5), causal=st.booleans(), heads=st.integers(1, 3))
def test_sdpa_hypothesis_float32(L, S, causal, heads):
    q, k, v = qkv(B=2, H=heads, L=L, S=S, E=4, Ev=3)
    f32 = [tt.tensor(a.astype(np.float32)) for a in (q, k, v)]
    out = F.scaled_dot_product_attention(*f32, is_causal=causal)
    assert out.dtype == tt.float32 and out.shape == (2, heads, L, 3)
    np.testing.assert_allclose(out.numpy(), sdpa_ref(q, k, v, is_causal=causal), rtol=1e-4, atol=1e-5)


def test_dropout_is_seeded_and_scales():
    q, k, v = qkv(L=4, S=4)
    tt.manual_seed(3)
    a = F.scaled_dot_product_attention(T(q), T(k), T(v), dropout_p=0.5).numpy()
    tt.manual_seed(3)
    b = F.scaled_dot_product_attention(T(q), T(k), T(v), dropout_p=0.5).numpy()
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, sdpa_ref(q, k, v))


def test_against_torch():
    torch = pytest.importorskip("torch")
    q, k, v = qkv(B=2, H=4, L=7, S=7, E=8, Ev=8)
    mask = rng.random((2, 1, 7, 7)) > 0.3
    for kw in ({}, {"is_causal": True}, {"attn_mask": mask}, {"attn_mask": mask, "is_causal": True},
               {"scale": 0.1, "is_causal": True}):
        tq, tk, tv = T(q, True), T(k, True), T(v, True)
        pq, pk, pv = (torch.tensor(a, requires_grad=True) for a in (q, k, v))
        tkw = dict(kw, attn_mask=tt.tensor(mask)) if "attn_mask" in kw else kw
        pkw = dict(kw, attn_mask=torch.tensor(mask)) if "attn_mask" in kw else kw
        out = F.scaled_dot_product_attention(tq, tk, tv, **tkw)
        ref = torch.nn.functional.scaled_dot_product_attention(pq, pk, pv, **pkw)
        np.testing.assert_allclose(out.detach().numpy(), ref.detach().numpy(), rtol=1e-10, atol=1e-12)
        (out * out).sum().backward()
        (ref * ref).sum().backward()
        for a, b in ((tq, pq), (tk, pk), (tv, pv)):
            np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), rtol=1e-8, atol=1e-10)


def test_causal_self_attention_does_not_see_the_future():
    tt.manual_seed(0)
    attn = CausalSelfAttention(GPTConfig(block_size=8, vocab_size=10, n_layer=1, n_head=2, n_embd=8))
    x = rng.standard_normal((2, 6, 8)).astype(np.float32)
    y = attn(tt.tensor(x)).detach().numpy()
    x2 = x.copy()
    x2[:, 4:] = rng.standard_normal((2, 2, 8))
    y2 = attn(tt.tensor(x2)).detach().numpy()
    np.testing.assert_allclose(y[:, :4], y2[:, :4], rtol=1e-6, atol=1e-6)
    assert not np.allclose(y[:, 4:], y2[:, 4:])
    with pytest.raises(ValueError, match="multiple of n_head"):
        CausalSelfAttention(GPTConfig(n_head=3, n_embd=8))


def test_attention_example_runs(tmp_path, capsys):
    mod = load_example("04_attention")
    mod.main(["--steps", "3", "--eval-batches", "1", "--block-size", "8", "--n-embd", "16", "--out", str(tmp_path)])
    out = capsys.readouterr().out
    assert out.count("val loss") == 4
    assert float(re.search(r"max difference (\S+)", out).group(1)) < 1e-5  # the fused kernel rounds differently
    assert (tmp_path / "attention.png").exists()
