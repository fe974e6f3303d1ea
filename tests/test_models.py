"""models/gpt2.py and models/llama.py at tiny sizes: shapes, initialisation, sampling, Hugging Face GPT-2
checkpoints in and out, RoPE, grouped-query attention, mixture of experts, and the loss falling on a batch.
A nanoGPT-equivalent model written in PyTorch (when installed) checks GPT's logits and loss.
"""
import json
import math
import os
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

import tinytensor as tt

from models.gpt2 import GPT, GPTConfig
from models.llama import Attention, Llama, LlamaConfig, MoE, SwiGLU, apply_rope, rope_tables
from models.sampling import filter_logits
from helpers import load_example

TINY = dict(block_size=16, vocab_size=37, n_layer=2, n_head=2, n_embd=16)


def gpt(seed=0, **kw):
    tt.manual_seed(seed)
    return GPT(GPTConfig(**{**TINY, **kw}))


def batch(B=3, T=8, V=37, seed=0):
    r = np.random.default_rng(seed)
    return tt.tensor(r.integers(0, V, (B, T))), tt.tensor(r.integers(0, V, (B, T)))


def train_steps(model, steps=40, lr=1e-2):
    x, y = batch()
    opt = model.configure_optimizers(0.0, lr)
    losses = []
    for _ in range(steps):
        _, loss = model(x, y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses


# ---- GPT ----------------------------------------------------------------------------------------

def test_gpt_shapes_loss_and_tying():
    m = gpt()
    x, y = batch()
    logits, loss = m(x, y)
    assert logits.shape == (3, 8, 37) and loss.shape == ()
    assert abs(loss.item() - math.log(37)) < 0.2  # small init: nearly uniform predictions
    last, none = m(x)
    assert last.shape == (3, 1, 37) and none is None
    np.testing.assert_allclose(last.detach().numpy()[:, 0], logits.detach().numpy()[:, -1], rtol=1e-5, atol=1e-6)
    assert m.lm_head.weight is m.transformer.wte.weight
    names = [n for n, _ in m.named_parameters()]
    assert "lm_head.weight" not in names and len(names) == len(set(names))
    with pytest.raises(ValueError, match="block_size"):
        m(tt.zeros(1, 17, dtype=tt.int64))
    m.crop_block_size(8)
    assert m.transformer.wpe.weight.shape == (8, 16) and m(x)[0].shape == (3, 1, 37)
    assert m.get_num_params() == m.num_parameters() - 8 * 16


def test_gpt_init_scales_residual_projections():
    m = gpt(n_layer=4, n_embd=64, n_head=4, block_size=64, vocab_size=512)
    c_proj = np.concatenate([b.mlp.c_proj.weight.detach().numpy().ravel() for b in m.transformer.h])
    c_fc = np.concatenate([b.mlp.c_fc.weight.detach().numpy().ravel() for b in m.transformer.h])
    assert abs(c_proj.std() - 0.02 / math.sqrt(8)) < 0.001 and abs(c_fc.std() - 0.02) < 0.001
    assert np.all(m.transformer.h[0].attn.c_attn.bias.detach().numpy() == 0)


def test_configure_optimizers_decays_only_matrices():
    m = gpt()
    opt = m.configure_optimizers(0.1, 1e-3)
    decay, no_decay = opt.param_groups
    assert decay["weight_decay"] == 0.1 and no_decay["weight_decay"] == 0.0
    assert all(p.ndim == 2 for p in decay["params"]) and all(p.ndim == 1 for p in no_decay["params"])
    assert len(decay["params"]) + len(no_decay["params"]) == len(list(m.parameters()))


def test_generate_is_seeded_and_filters():
    m = gpt()
    x, _ = batch(B=2, T=3)
    a = m.generate(x, 20, temperature=1.0, top_k=5, seed=7).numpy()
    b = m.generate(x, 20, temperature=1.0, top_k=5, seed=7).numpy()
    assert a.shape == (2, 23) and np.array_equal(a, b) and np.array_equal(a[:, :3], x.numpy())
    greedy = m.generate(x, 20, temperature=0).numpy()
    np.testing.assert_array_equal(greedy, m.generate(x, 20, top_k=1, seed=1).numpy())
    assert m.training  # generate restores the mode
    eos = int(greedy[0, 3])
    assert m.generate(x[:1], 20, temperature=0, eos_token=eos).shape == (1, 4)


def test_filter_logits_top_k_and_top_p():
    logits = np.log(np.array([[0.5, 0.05, 0.3, 0.15]]))
    assert np.isfinite(filter_logits(logits, top_k=2)).tolist() == [[True, False, True, False]]
    assert np.isfinite(filter_logits(logits, top_p=0.75)).tolist() == [[True, False, True, False]]
    assert np.isfinite(filter_logits(logits, top_p=0.85)).tolist() == [[True, False, True, True]]
    assert np.isfinite(filter_logits(logits, top_p=0.1)).tolist() == [[True, False, False, False]]


def test_gpt_loss_falls():
    losses = train_steps(gpt(dropout=0.1))
    assert losses[-1] < 0.5 * losses[0]


@pytest.mark.parametrize("bias", [True, False])
def test_save_pretrained_round_trip(tmp_path, bias):
    m = gpt(bias=bias)
    train_steps(m, steps=3)
    m.save_pretrained(str(tmp_path))
    cfg = json.loads((tmp_path / "config.json").read_text())
    assert cfg["model_type"] == "gpt2" and cfg["n_embd"] == 16 and cfg["n_positions"] == 16
    raw = tt.load(str(tmp_path / "model.safetensors"))
    assert raw["transformer.h.0.attn.c_attn.weight"].shape == (16, 48)  # Conv1D layout: (in, out)
    assert "lm_head.weight" not in raw
    m2 = GPT.from_pretrained(str(tmp_path))
    x, _ = batch()
    m.eval()
    np.testing.assert_array_equal(m(x)[0].detach().numpy(), m2(x)[0].detach().numpy())
    assert m2.lm_head.weight is m2.transformer.wte.weight
    # a bias-free model comes back bias-free (config.json's "bias"), not with zero biases
    assert cfg["bias"] is bias and m2.config.bias is bias and m2.num_parameters() == m.num_parameters()


def test_bias_false_refuses_nonzero_biases(tmp_path):
    m = gpt(bias=False)
    m.save_pretrained(str(tmp_path))
    raw = tt.load(str(tmp_path / "model.safetensors"))
    raw["transformer.h.1.mlp.c_fc.bias"] = tt.ones(64)
    tt.save(raw, str(tmp_path / "model.safetensors"))
    with pytest.raises(ValueError, match=r"bias false, but h\.1\.mlp\.c_fc\.bias is not zero"):
        GPT.from_pretrained(str(tmp_path))
    cfg = json.loads((tmp_path / "config.json").read_text())
    (tmp_path / "config.json").write_text(json.dumps(dict(cfg, bias="no")))
    with pytest.raises(ValueError, match="bias must be true or false"):
        GPT.from_pretrained(str(tmp_path))


@pytest.mark.parametrize("bias", [True, False])
def test_save_pretrained_loads_in_transformers(tmp_path, bias):
    """Hugging Face transformers (an optional oracle) reads our save_pretrained output: same logits."""
    transformers = pytest.importorskip("transformers")
    torch = pytest.importorskip("torch")
    m = gpt(bias=bias)
    train_steps(m, steps=3)
    m.save_pretrained(str(tmp_path))
    hf = transformers.GPT2LMHeadModel.from_pretrained(str(tmp_path)).eval()
    x, y = batch()
    m.eval()
    with tt.no_grad():
        ours = m(x, y)[0].numpy()  # with targets: the logits of every position
    with torch.no_grad():
        theirs = hf(torch.tensor(x.numpy())).logits.numpy()
    np.testing.assert_allclose(ours, theirs, rtol=1e-4, atol=1e-5)


def test_from_pretrained_hf_layout_and_errors(tmp_path):
    m = gpt()
    m.save_pretrained(str(tmp_path))
    raw = tt.load(str(tmp_path / "model.safetensors"))
    # the original GPT-2 files: no prefix, and causal-mask buffers beside the weights
    plain = {k[len("transformer."):]: v for k, v in raw.items()}
    plain["h.0.attn.bias"] = tt.ones(1, 1, 16, 16)
    plain["h.1.attn.masked_bias"] = tt.tensor(-1e4)
    tt.save(plain, str(tmp_path / "model.safetensors"))
    x, _ = batch()
    m.eval()
    np.testing.assert_array_equal(m(x)[0].detach().numpy(), GPT.from_pretrained(str(tmp_path))(x)[0].detach().numpy())
    bad = dict(plain, **{"h.1.mlp.c_fc.weight": tt.zeros(64, 16)})  # not transposed
    tt.save(bad, str(tmp_path / "model.safetensors"))
    with pytest.raises(ValueError, match=r"h\.1\.mlp\.c_fc\.weight has shape \(64, 16\)"):
        GPT.from_pretrained(str(tmp_path))
    del plain["ln_f.bias"]
    tt.save(plain, str(tmp_path / "model.safetensors"))
    with pytest.raises(ValueError, match="missing tensors.*ln_f.bias"):
        GPT.from_pretrained(str(tmp_path))
    (tmp_path / "config.json").write_text(json.dumps({"vocab_size": 37, "activation_function": "relu"}))
    with pytest.raises(ValueError, match="activation_function"):
        GPT.from_pretrained(str(tmp_path))


def test_gpt_matches_a_torch_nanogpt(tmp_path):
    """The same weights in a nanoGPT-style model written in PyTorch give the same logits and loss."""
    torch = pytest.importorskip("torch")
    tF = torch.nn.functional
    m = gpt()
    train_steps(m, steps=2)
    m.eval()
    m.save_pretrained(str(tmp_path))
    raw = tt.load(str(tmp_path / "model.safetensors"))
    w = {k[len("transformer."):]: torch.tensor(v.numpy()) for k, v in raw.items()}
    x, y = batch()
    idx, C, nh = torch.tensor(x.numpy()), 16, 2

    def ln(h, name):
        return tF.layer_norm(h, (C,), w[name + ".weight"], w[name + ".bias"], 1e-5)

    h = w["wte.weight"][idx] + w["wpe.weight"][:idx.shape[1]]
    for i in range(2):
        p = f"h.{i}."
        qkv = ln(h, p + "ln_1") @ w[p + "attn.c_attn.weight"] + w[p + "attn.c_attn.bias"]  # Conv1D: x @ W + b
        q, k, v = (t.reshape(3, 8, nh, C // nh).transpose(1, 2) for t in qkv.split(C, dim=2))
        a = tF.scaled_dot_product_attention(q, k, v, is_causal=True).transpose(1, 2).reshape(3, 8, C)
        h = h + a @ w[p + "attn.c_proj.weight"] + w[p + "attn.c_proj.bias"]
        f = tF.gelu(ln(h, p + "ln_2") @ w[p + "mlp.c_fc.weight"] + w[p + "mlp.c_fc.bias"], approximate="tanh")
        h = h + f @ w[p + "mlp.c_proj.weight"] + w[p + "mlp.c_proj.bias"]
    logits = ln(h, "ln_f") @ w["wte.weight"].T
    loss = tF.cross_entropy(logits.reshape(-1, 37), torch.tensor(y.numpy()).reshape(-1))
    ours, our_loss = m(x, y)
    np.testing.assert_allclose(ours.detach().numpy(), logits.numpy(), rtol=1e-4, atol=1e-5)
    assert abs(our_loss.item() - loss.item()) < 1e-5


# ---- Llama ---------------------------------------------------------------------------------------

LTINY = dict(block_size=16, vocab_size=37, n_layer=2, n_head=4, n_embd=32)


def llama(seed=0, **kw):
    tt.manual_seed(seed)
    return Llama(LlamaConfig(**{**LTINY, **kw}))


def test_rope_scores_depend_only_on_relative_position():
    r = np.random.default_rng(1)
    T, hs = 12, 8
    cos, sin = rope_tables(T, hs)
    q = tt.tensor(np.broadcast_to(r.standard_normal(hs), (1, 1, T, hs)).astype(np.float32).copy())
    k = tt.tensor(np.broadcast_to(r.standard_normal(hs), (1, 1, T, hs)).astype(np.float32).copy())
    s = (apply_rope(q, cos, sin) @ apply_rope(k, cos, sin).transpose(-2, -1)).numpy()[0, 0]  # (T, T): q at m, k at n
    for d in range(-3, 4):
        diag = np.diagonal(s, offset=d)
        np.testing.assert_allclose(diag, np.full_like(diag, diag[0]), rtol=1e-4, atol=1e-5)
    assert not np.allclose(np.diagonal(s, 0)[0], np.diagonal(s, 2)[0])
    rotated = apply_rope(q, cos, sin).numpy()  # a rotation keeps every pair's length
    np.testing.assert_allclose(np.linalg.norm(rotated, axis=-1), np.linalg.norm(q.numpy(), axis=-1), rtol=1e-5)


def test_gqa_with_all_heads_is_multi_head_attention():
    cfg = LlamaConfig(**LTINY, n_kv_heads=4)
    tt.manual_seed(0)
    attn = Attention(cfg)
    x = np.random.default_rng(2).standard_normal((2, 6, 32)).astype(np.float32)
    cos, sin = rope_tables(6, 8)
    ours = attn(tt.tensor(x), cos, sin).detach().numpy()

    def heads(w):  # plain MHA written out in NumPy with the same weights
        return (x @ w.detach().numpy().T).reshape(2, 6, 4, 8).transpose(0, 2, 1, 3)  # (B, nh, T, hs)
    c, s = cos.numpy(), sin.numpy()

    def rope(a):
        return a * c + np.concatenate([-a[..., 4:], a[..., :4]], -1) * s
    q, k, v = rope(heads(attn.wq.weight)), rope(heads(attn.wk.weight)), heads(attn.wv.weight)
    sc = q @ k.transpose(0, 1, 3, 2) / math.sqrt(8) + np.triu(np.full((6, 6), -np.inf), 1)
    p = np.exp(sc - sc.max(-1, keepdims=True))
    y = (p / p.sum(-1, keepdims=True)) @ v
    ref = y.transpose(0, 2, 1, 3).reshape(2, 6, 32) @ attn.wo.weight.detach().numpy().T
    np.testing.assert_allclose(ours, ref, rtol=1e-4, atol=1e-5)


def test_gqa_equals_mha_with_repeated_kv_heads():
    tt.manual_seed(0)
    gqa = Attention(LlamaConfig(**LTINY, n_kv_heads=2))
    mha = Attention(LlamaConfig(**LTINY, n_kv_heads=4))
    rep = lambda w: tt.tensor(np.repeat(w.detach().numpy().reshape(2, 8, 32), 2, axis=0).reshape(32, 32))  # noqa
    mha.load_state_dict({"wq.weight": gqa.wq.weight, "wk.weight": rep(gqa.wk.weight),
                         "wv.weight": rep(gqa.wv.weight), "wo.weight": gqa.wo.weight})
    x = tt.randn(2, 5, 32)
    cos, sin = rope_tables(5, 8)
    np.testing.assert_allclose(gqa(x, cos, sin).detach().numpy(), mha(x, cos, sin).detach().numpy(),
                               rtol=1e-5, atol=1e-6)
    assert gqa.wk.weight.shape == (16, 32)


def test_one_expert_moe_equals_dense_mlp():
    cfg = LlamaConfig(**LTINY, n_experts=1, n_experts_per_tok=1)
    tt.manual_seed(0)
    moe, dense = MoE(cfg), SwiGLU(32, cfg.hidden_size())
    dense.load_state_dict(moe.experts[0].state_dict())
    x = tt.randn(2, 5, 32)
    np.testing.assert_array_equal(moe(x).detach().numpy(), dense(x).detach().numpy())
    assert abs(moe.aux_loss.item() - 1.0) < 1e-6


def test_moe_routes_to_top_k_experts():
    cfg = LlamaConfig(**LTINY, n_experts=4, n_experts_per_tok=2)
    tt.manual_seed(0)
    moe = MoE(cfg)
    x = tt.randn(2, 5, 32)
    out = moe(x).detach().numpy().reshape(10, 32)
    flat = x.reshape(10, 32)
    logits = (flat.numpy() @ moe.router.weight.detach().numpy().T)  # (N, E)
    every = np.stack([e(flat).detach().numpy() for e in moe.experts], 1)  # (N, E, C)
    top = np.argsort(-logits, -1)[:, :2]
    w = np.exp(np.take_along_axis(logits, top, -1))
    w /= w.sum(-1, keepdims=True)
    ref = (np.take_along_axis(every, top[..., None], 1) * w[..., None]).sum(1)
    np.testing.assert_allclose(out, ref, rtol=1e-4, atol=1e-5)
    probs = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    f = np.bincount(top.ravel(), minlength=4) / top.size
    assert abs(moe.aux_loss.item() - 4 * (f * probs.mean(0)).sum()) < 1e-5


@pytest.mark.parametrize("kw", [dict(n_kv_heads=2), dict(n_kv_heads=1, n_experts=4, n_experts_per_tok=2)])
def test_llama_loss_falls_and_generates(kw):
    m = llama(**kw)
    x, y = batch()
    logits, loss = m(x, y)
    assert logits.shape == (3, 8, 37) and abs(loss.item() - math.log(37)) < 0.3
    losses = train_steps(m)
    assert losses[-1] < 0.5 * losses[0]
    a = m.generate(x[:, :2], 6, top_p=0.9, seed=3).numpy()
    np.testing.assert_array_equal(a, m.generate(x[:, :2], 6, top_p=0.9, seed=3).numpy())


# ---- the storyteller script (examples/05_gpt2.py) at a tiny size --------------------------------

def _storyteller():
    return load_example("05_gpt2")


TINY_RUN = ["--vocab-size", "300", "--n-layer", "1", "--n-head", "2", "--n-embd", "16", "--block-size", "16",
            "--batch-size", "4", "--steps", "6", "--warmup", "2", "--eval-interval", "3", "--ckpt-interval", "3",
            "--eval-batches", "2", "--num-samples", "1", "--max-new-tokens", "8"]


@pytest.mark.slow
@pytest.mark.parametrize("model", ["gpt", "llama"])
def test_storyteller_resumes_exactly(tmp_path, capsys, model):
    """An interrupted run continued from its checkpoint ends with the same log as an uninterrupted one."""
    st = _storyteller()
    st.main(TINY_RUN + ["--model", model, "--out", str(tmp_path / "a")])
    st.main(TINY_RUN + ["--model", model, "--out", str(tmp_path / "b"), "--stop-after", "4"])
    st.main(TINY_RUN + ["--model", model, "--out", str(tmp_path / "b")])
    out = capsys.readouterr().out
    assert "resumed from" in out and "--- story 1 ---" in out
    a, b = (json.loads((tmp_path / d / "log.json").read_text()) for d in "ab")
    assert a["train_loss"] == b["train_loss"] and a["val_loss"] == b["val_loss"] and len(a["val_loss"]) == 2
    st.main(["--sample", "--checkpoint", str(tmp_path / "a" / "model"), "--num-samples", "1", "--max-new-tokens", "5"])
    assert "--- story 1 ---" in capsys.readouterr().out


def test_storyteller_ctrl_c_saves_a_checkpoint(tmp_path):
    """A first Ctrl-C (SIGINT) ends training cleanly at a step boundary with a checkpoint of that step."""
    script = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples", "05_gpt2.py")
    args = TINY_RUN + ["--steps", "1000000", "--ckpt-interval", "1000000", "--eval-interval", "1000000",
                       "--ckpt-minutes", "1000", "--out", str(tmp_path), "--threads", "1"]
    proc = subprocess.Popen([sys.executable, "-u", script] + args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        for line in proc.stdout:  # training starts after the "model: ..." line
            if line.startswith("model:"):
                break
        time.sleep(2.0)  # some steps, no checkpoint yet (the intervals are out of reach)
        assert not (tmp_path / "ckpt" / "checkpoint.json").exists()
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    step = int(re.search(r"interrupted \(Ctrl-C\) at step (\d+)", out).group(1))
    saved = json.loads((tmp_path / "ckpt" / "checkpoint.json").read_text())
    assert step > 0 and saved["step"] == step


def test_storyteller_samples_differ_unless_seeded(capsys):
    """--sample without --seed writes new stories each run and prints its seed; that seed writes them again."""
    st = _storyteller()
    runs = []
    for seed in ([], [], None):
        if seed is None:
            seed = ["--seed", re.search(r"seed (\d+)", runs[0]).group(1)]
        st.main(["--sample", "--num-samples", "2", "--max-new-tokens", "12"] + seed)
        runs.append(capsys.readouterr().out)
    stories = [r[r.index("--- story 1"):] for r in runs]
    assert stories[0] != stories[1] and stories[0] == stories[2]


# The CI-sized run of the storyteller: the default model and data (L2 H4 C128 T128 B32, vocabulary
# 4096, the last 10% of stories for validation) for REDUCED_STEPS steps, about two minutes on 2 cores.
REDUCED_STEPS = ["--steps", "150", "--warmup", "20", "--eval-interval", "150", "--ckpt-interval", "150",
                 "--num-samples", "1", "--max-new-tokens", "16"]
REDUCED_GATE = 4.8  # measured 4.526 here (the unigram entropy of the data is about 6.04; the full run reaches 3.17)


@pytest.mark.slow
def test_storyteller_reduced_run_gate(tmp_path, capsys):
    """The default storyteller config learns: after 150 steps, val loss is below REDUCED_GATE nats/token."""
    st = _storyteller()
    st.main(REDUCED_STEPS + ["--out", str(tmp_path)])
    log = json.loads((tmp_path / "log.json").read_text())
    assert log["val_steps"] == [150]
    assert math.isfinite(log["val_loss"][-1]) and log["val_loss"][-1] < REDUCED_GATE, log["val_loss"]
    assert "--- story 1 ---" in capsys.readouterr().out
