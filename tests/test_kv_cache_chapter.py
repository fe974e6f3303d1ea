"""Chapter 12's script (examples/12_kv_cache.py) at tiny settings: real values, not speed.

The latency loops must return one time per position and the same greedy tokens with and without the cache,
equal to an argmax loop written here; the memory table must follow the closed form
2 x layers x batch x kv heads x positions x head size x 4 bytes, so GQA's ratio to MHA is n_head / n_kv_heads
exactly; the decoders' mean log-probs must equal the log-probs generate() reports through the cache; with the
target as its own draft, speculative decoding must accept every proposal and give plain greedy's tokens; and
the plots, the outputs and results.json must be written. Nothing asserts on time.
"""
import json
import os

import numpy as np
import pytest

import tinytensor as tt
from models.generate import generate
from models.sampling import SamplingParams
from helpers import load_example

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STORYTELLER = os.path.join(ROOT, "examples", "checkpoints", "storyteller")
DRAFT = os.path.join(ROOT, "examples", "checkpoints", "storyteller_draft")


@pytest.fixture(scope="module")
def ch12():
    return load_example("12_kv_cache")


@pytest.fixture(scope="module")
def storyteller(ch12):
    return ch12.load(STORYTELLER)


def argmax_loop(model, first, n):
    """Greedy tokens by rerunning the whole context each step (the reference, written out here)."""
    seq = [first]
    with tt.no_grad():
        for _ in range(n):
            logits, _ = model(tt.tensor([seq], dtype=tt.int64))
            seq.append(int(np.argmax(logits.numpy()[0, -1])))
    return seq[1:]


def test_latency_loops_match_recomputation(ch12, storyteller):
    model, tok = storyteller
    bos = tok.special_tokens[ch12.EOT]
    reference = argmax_loop(model, bos, 12)
    for use_cache in (True, False):
        seconds, tokens = ch12.greedy_latencies(model, bos, 12, use_cache)
        assert seconds.shape == (12,) and np.all(seconds > 0)
        assert tokens == reference
    curves = ch12.latency_curves(model, bos, 6, 1)
    assert curves["cache_s"].shape == curves["no_cache_s"].shape == (6,)
    assert curves["same_tokens"] and curves["tokens"] == reference[:6]


def test_memory_table_is_the_closed_form(ch12):
    L, H, K, C, T, B = 2, 8, 2, 64, 32, 3
    rows = ch12.cache_memory(L, H, K, C, T, B)
    assert [r["attention"] for r in rows] == ["MHA", "GQA", "MQA"]
    for r in rows:
        assert r["bytes"] == 2 * L * B * r["n_kv_heads"] * T * (C // H) * 4
        assert r["shape"] == [B, r["n_kv_heads"], T, C // H]
    assert rows[0]["bytes"] == rows[1]["bytes"] * (H // K) == rows[2]["bytes"] * H
    big = ch12.big_model_bytes()
    assert big["MHA"] == 2 * 32 * 4096 * 128 * 2 * 32 == 2 ** 31 and big["GQA"] == big["MHA"] // 4


def test_decoders_mean_logprob_matches_generate(ch12, storyteller):
    model, tok = storyteller
    prompt = [tok.special_tokens[ch12.EOT]] + tok.encode("Once upon a time")
    rows = ch12.decoders(model, tok, prompt, 8, 2, seed=3)
    assert len(rows) == 5 and rows[1]["decoder"].startswith("beam search")
    greedy = rows[0]
    out = generate(model, [prompt], 8, SamplingParams(temperature=0, logprobs=0),
                   eos_token=tok.special_tokens[ch12.EOT])[0]
    assert greedy["tokens"] == out.tokens == argmax_loop_from(model, prompt, len(out.tokens))
    assert greedy["mean_logprob"] == pytest.approx(np.mean(out.logprobs), abs=1e-4)
    assert greedy["text"] == tok.decode(out.tokens)
    for row in rows:
        assert row["mean_logprob"] < 0 and len(row["tokens"]) <= 8


def argmax_loop_from(model, prompt, n):
    seq = list(prompt)
    with tt.no_grad():
        for _ in range(n):
            logits, _ = model(tt.tensor([seq], dtype=tt.int64))
            seq.append(int(np.argmax(logits.numpy()[0, -1])))
    return seq[len(prompt):]


def test_example_runs_tiny(ch12, tmp_path):
    # the storyteller is its own draft: every greedy and sampled proposal must be accepted
    results = ch12.main(["--positions", "5", "--repeats", "1", "--batch-sizes", "1", "3", "--batch-tokens", "3",
                         "--llama-layers", "1", "--llama-heads", "4", "--llama-kv-heads", "2", "--llama-embd", "32",
                         "--llama-block", "16", "--llama-batch", "2", "--max-new-tokens", "5", "--num-beams", "2",
                         "--spec-tokens", "6", "--num-draft", "2", "3", "--draft", STORYTELLER, "--threads", "1",
                         "--out", str(tmp_path)])
    for name in ("latency.png", "speculative.png", "outputs.md", "results.json"):
        assert (tmp_path / name).stat().st_size > 0
    with open(tmp_path / "results.json", encoding="utf-8") as f:
        saved = json.load(f)
    lat = saved["latency"]
    assert lat["positions"] == 5 and len(lat["cache_ms"]) == len(lat["no_cache_ms"]) == 5 and lat["same_tokens"]
    assert set(saved["batching"]) == {"1", "3"} and all(v > 0 for v in saved["batching"].values())
    mem = {r["attention"]: r["bytes"] for r in saved["memory"]["rows"]}
    assert mem["MHA"] / mem["GQA"] == 4 / 2 and mem["MHA"] == 2 * 1 * 2 * 4 * 16 * 8 * 4
    spec = results["speculative"]
    assert [r["num_draft"] for r in spec["rows"]] == [2, 3] and 0 < spec["tokens"] <= 3 * 6
    for r in spec["rows"]:
        assert r["same_tokens"] and r["acceptance"] == 1.0 and r["acceptance_sampled"] == 1.0
        assert r["tokens_per_target_pass"] > 1.0
    assert "## greedy" in (tmp_path / "outputs.md").read_text(encoding="utf-8")


def multiply_adds_per_token(config: dict) -> int:
    """A GPT-2's multiply-adds per generated token at an empty context: 12 C^2 per block plus the head's C V."""
    C = config["n_embd"]
    return config["n_layer"] * 12 * C * C + C * config["vocab_size"]


def test_shipped_draft_fits_the_storyteller():
    """Same tokenizer byte for byte (ids must mean the same tokens) and at most a quarter of the compute."""
    with open(os.path.join(DRAFT, "tokenizer.bpe"), "rb") as a, open(os.path.join(STORYTELLER, "tokenizer.bpe"),
                                                                     "rb") as b:
        assert a.read() == b.read()
    configs = []
    for path in (DRAFT, STORYTELLER):
        with open(os.path.join(path, "config.json"), encoding="utf-8") as f:
            configs.append(json.load(f))
    draft, target = configs
    assert draft["vocab_size"] == target["vocab_size"]
    assert multiply_adds_per_token(draft) <= multiply_adds_per_token(target) / 4
