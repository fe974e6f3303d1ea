"""Gates that fail for the obvious broken model, and GPT-2's numerics checked without PyTorch.

- A copy task: each sequence is 8 random tokens followed by the same 8 again. A causal model cannot
  predict the first half (its loss stays at ln V) and can learn the second half by attending 8 positions
  back. A model without attention cannot learn the second half; a model without the causal mask sees the
  token it must predict and drives the first half's loss far below ln V. The gate checks both halves, so
  it fails for either broken version (both are checked here by breaking the model on purpose).
- GPT's logits against a float64 NumPy forward pass written independently here (pre-norm blocks, GPT-2's
  tanh GELU, causal softmax attention, tied output layer), with every weight and bias random.
- The shipped storyteller's val loss on the held-out stories, as its README states (2.9991).
"""
import math
import os

import numpy as np
import pytest

import tinytensor as tt
import tinytensor.nn.functional as F
import models.gpt2 as gpt2
from models.gpt2 import GPT, GPTConfig
from models.llama import Llama, LlamaConfig

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
V, HALF = 16, 8  # vocabulary and half-sequence length of the copy task


def copy_batch(rng, B=32):
    first = rng.integers(0, V, (B, HALF))
    seq = np.concatenate([first, first], axis=1)  # (B, 16)
    return tt.tensor(seq[:, :-1]), tt.tensor(seq[:, 1:])


def train_copy(model, steps=250, lr=3e-3, seed=0):
    """Train on fresh copy batches; return the val loss of the first half and of the second half."""
    rng = np.random.default_rng(seed)
    opt = tt.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    for _ in range(steps):
        x, y = copy_batch(rng)
        _, loss = model(x, y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    x, y = copy_batch(np.random.default_rng(seed + 1), B=256)
    with tt.no_grad():
        logits, _ = model(x, y)
        nll = F.cross_entropy(logits.reshape(-1, V), y.reshape(-1), reduction="none").reshape(y.shape).numpy()
    # targets 0..6 are the random first half (after the first token), 7..14 are copies of tokens 0..7
    return float(nll[:, :HALF - 1].mean()), float(nll[:, HALF - 1:].mean())


FIRST_MIN = math.log(V) - 0.25   # ln 16 = 2.77: nothing to learn about random tokens
SECOND_MAX = 0.5                 # a copy 8 positions back is learnable


def gpt_copy_model(seed=0):
    tt.manual_seed(seed)
    return GPT(GPTConfig(block_size=2 * HALF, vocab_size=V, n_layer=2, n_head=2, n_embd=32, bias=False))


def llama_copy_model(seed=0):
    tt.manual_seed(seed)
    return Llama(LlamaConfig(block_size=2 * HALF, vocab_size=V, n_layer=2, n_head=2, n_kv_heads=1, n_embd=32))


@pytest.mark.parametrize("make", [gpt_copy_model, llama_copy_model], ids=["gpt", "llama"])
def test_copy_task_gate(make):
    first, second = train_copy(make())
    assert first > FIRST_MIN, f"first half {first:.3f}: the model predicts random tokens, it must see the future"
    assert second < SECOND_MAX, f"second half {second:.3f}: the model did not learn to copy"


def test_copy_gate_fails_without_attention(monkeypatch):
    """y = v instead of attention (each position sees only itself): the second half cannot be learned."""
    def no_attention(q, k, v, attn_mask=None, dropout_p=0.0, is_causal=False, scale=None, enable_gqa=False):
        return v
    monkeypatch.setattr(gpt2.F, "scaled_dot_product_attention", no_attention)
    first, second = train_copy(gpt_copy_model())
    assert second > 2.0  # measured 2.77: far above SECOND_MAX


def test_copy_gate_fails_without_causal_mask(monkeypatch):
    """Attention that sees every position: the first half's loss falls far below ln V."""
    real = F.scaled_dot_product_attention

    def unmasked(q, k, v, attn_mask=None, dropout_p=0.0, is_causal=False, scale=None, enable_gqa=False):
        return real(q, k, v, dropout_p=dropout_p, is_causal=False, scale=scale)
    monkeypatch.setattr(gpt2.F, "scaled_dot_product_attention", unmasked)
    first, second = train_copy(gpt_copy_model())
    assert first < 1.0  # measured far below FIRST_MIN


# ---- GPT-2's numerics in float64 NumPy ----------------------------------------------------------

def np_layer_norm(x, w, b, eps=1e-5):
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * w + b


def np_gelu_tanh(x):
    return 0.5 * x * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3)))


def np_gpt2_logits(p, cfg, idx):
    """GPT-2 forward in float64 from a state dict of NumPy arrays (Linear weights (out, in))."""
    T, C, nh = idx.shape[1], cfg.n_embd, cfg.n_head
    hs = C // nh
    x = p["transformer.wte.weight"][idx] + p["transformer.wpe.weight"][np.arange(T)]
    causal = np.tril(np.ones((T, T), dtype=bool))
    for i in range(cfg.n_layer):
        w = {k[len(f"transformer.h.{i}."):]: v for k, v in p.items() if k.startswith(f"transformer.h.{i}.")}
        h = np_layer_norm(x, w["ln_1.weight"], w["ln_1.bias"])
        qkv = h @ w["attn.c_attn.weight"].T + w["attn.c_attn.bias"]
        q, k, v = (qkv[..., j * C:(j + 1) * C].reshape(*idx.shape, nh, hs).transpose(0, 2, 1, 3) for j in range(3))
        scores = np.where(causal, q @ k.transpose(0, 1, 3, 2) / math.sqrt(hs), -np.inf)
        att = np.exp(scores - scores.max(-1, keepdims=True))
        att /= att.sum(-1, keepdims=True)
        y = (att @ v).transpose(0, 2, 1, 3).reshape(*idx.shape, C)
        x = x + y @ w["attn.c_proj.weight"].T + w["attn.c_proj.bias"]
        h = np_layer_norm(x, w["ln_2.weight"], w["ln_2.bias"])
        h = np_gelu_tanh(h @ w["mlp.c_fc.weight"].T + w["mlp.c_fc.bias"])
        x = x + h @ w["mlp.c_proj.weight"].T + w["mlp.c_proj.bias"]
    x = np_layer_norm(x, p["transformer.ln_f.weight"], p["transformer.ln_f.bias"])
    return x @ p["transformer.wte.weight"].T


def test_gpt_logits_match_numpy_float64_reference():
    cfg = GPTConfig(block_size=12, vocab_size=29, n_layer=2, n_head=3, n_embd=24, bias=True)
    tt.manual_seed(0)
    model = GPT(cfg).to(tt.float64)
    rng = np.random.default_rng(0)
    with tt.no_grad():  # every weight, bias and gain random, so that none of them can be skipped unseen
        for name, prm in model.named_parameters():
            prm.copy_(tt.tensor(rng.standard_normal(prm.shape) * (0.3 if prm.ndim > 1 else 1.0), dtype=tt.float64))
    idx = rng.integers(0, cfg.vocab_size, (2, 12))
    want = np_gpt2_logits({k: v.detach().numpy() for k, v in model.state_dict().items()}, cfg, idx)
    model.eval()
    with tt.no_grad():
        got, _ = model(tt.tensor(idx), tt.tensor(idx))  # with targets: the logits of every position
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-9, atol=1e-9)


# ---- the shipped storyteller ---------------------------------------------------------------------

@pytest.mark.slow
def test_shipped_storyteller_val_loss(tmp_path):
    """The held-out stories (last 10% of the sample), as chapter 05 splits them: val loss 2.9991 +- 0.005."""
    from tinytensor.data import DataLoader, prepare_shards
    from tinytensor.tokenizer import Tokenizer
    folder = os.path.join(ROOT, "examples", "checkpoints", "storyteller")
    tok = Tokenizer.load(os.path.join(folder, "tokenizer.bpe"))
    data = os.path.join(ROOT, "examples", "data", "tinystories_sample.txt")
    prepare_shards(data, tok, str(tmp_path / "data"), 0.1, progress=False)
    model = GPT.from_pretrained(folder)
    model.eval()
    total = count = 0
    with tt.no_grad():
        for x, y in DataLoader(str(tmp_path / "data"), "val", 32, 128, shuffle=False).epoch_batches():
            _, loss = model(x, y)
            total, count = total + loss.item() * x.numel(), count + x.numel()
    assert count == 76_032  # 594 windows of 128 tokens in 19 batches (the last 31 val tokens fill no window)
    assert abs(total / count - 2.9991) < 5e-3, total / count
