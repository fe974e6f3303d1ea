"""The kv-cache (tinytensor.nn.KVCache, models' `cache=` path, chapter 12) against recomputation.

The reference is always the model without a cache: the same weights rerun on the whole context. Greedy
decoding with the cache must pick the very same tokens (256 of them on the shipped storyteller and on
random GPT-2 and Llama configs, with and without grouped-query attention, with a mixture of experts), and
its logits must agree to 1e-5 in float32. Left-padded rows of a batch must give what each row gives alone;
crop() must rewind and reorder() must move rows; GQA's cache must be n_head / n_kv_heads times smaller;
a context longer than the window is a ValueError naming both lengths. The greedy loop is written here on
purpose (models/generate.py has the real one): the test must not lean on the code it checks.
"""
from pathlib import Path

import numpy as np
import pytest

import tinytensor as tt
from models.gpt2 import GPT, GPTConfig
from models.llama import Llama, LlamaConfig

STORYTELLER = Path(__file__).resolve().parent.parent / "examples" / "checkpoints" / "storyteller"
TOL = 1e-5


def gpt(seed=0, dtype=tt.float32, **kw):
    tt.manual_seed(seed)
    cfg = dict(block_size=64, vocab_size=97, n_layer=2, n_head=4, n_embd=32)
    cfg.update(kw)
    return spread(GPT(GPTConfig(**cfg)).to(dtype), 14.0)


def llama(seed=0, dtype=tt.float32, **kw):
    tt.manual_seed(seed)
    cfg = dict(block_size=64, vocab_size=97, n_layer=2, n_head=4, n_kv_heads=2, n_embd=32, ffn_hidden=48,
               tie_embeddings=False)  # tied, a random RMSNorm model mostly repeats its last token
    cfg.update(kw)
    return spread(Llama(LlamaConfig(**cfg)).to(dtype), 12.0)


def spread(model, factor):
    """Matrices scaled up to a trained-looking spread of logits: at N(0, 0.02) every logit is nearly equal (near
    ties flip greedy choices on rounding) and greedy decoding soon repeats one token (a weak test)."""
    with tt.no_grad():
        for name, p in model.named_parameters():
            if p.ndim == 2:
                p.mul_(factor)
    return model.eval()


def tokens(B, T, vocab=97, seed=1):
    return tt.tensor(np.random.default_rng(seed).integers(0, vocab, (B, T)), dtype=tt.int64)


def recompute_logits(model, idx):
    """The logits at every position of idx (B, T) from one forward without a cache: (B, T, V) float64."""
    logits, _ = model(idx, targets=tt.zeros(*idx.shape, dtype=tt.int64))
    return logits.detach().to(tt.float64).numpy()


@tt.no_grad()
def greedy_cached(model, prompt, steps, cache=None):
    """Greedy decoding with a cache: (tokens (B, T0 + steps) int64 NumPy, logits of every step (B, steps, V)).

    When the cache is full the window slides the simple way: a fresh cache, prefilled with the last
    max_len tokens (positions are absolute, so the old entries cannot be shifted)."""
    cache = model.make_cache(prompt.shape[0]) if cache is None else cache
    logits, _ = model(prompt, cache=cache)
    out, seen = prompt.numpy(), []
    for _ in range(steps):
        last = logits[:, -1, :]  # (B, V)
        seen.append(last.to(tt.float64).numpy())
        nxt = last.argmax(-1, keepdim=True)  # (B, 1)
        out = np.concatenate([out, nxt.numpy()], axis=1)
        if cache.length < cache.max_len:
            logits, _ = model(nxt, cache=cache)
        else:
            cache.crop(0)
            logits, _ = model(tt.tensor(out[:, -cache.max_len:]), cache=cache)
    return out, np.stack(seen, axis=1)


@tt.no_grad()
def greedy_recomputed(model, prompt, steps, window):
    """Greedy decoding rerunning the last `window` tokens each step: (tokens, logits), as greedy_cached."""
    idx, seen = prompt.numpy(), []
    for _ in range(steps):
        logits, _ = model(tt.tensor(idx[:, -window:]))
        last = logits[:, -1, :].to(tt.float64).numpy()
        seen.append(last)
        idx = np.concatenate([idx, last.argmax(-1)[:, None]], axis=1)
    return idx, np.stack(seen, axis=1)


def assert_close_logits(got, want):
    """|got - want| <= 1e-5 x (the row's largest |logit|, at least 1): float32 rounding of a sum of O(|logit|) terms.

    The storyteller's logits reach 17, where one float32 ulp is 2e-6 and the two paths sum in different
    orders; plain absolute 1e-5 would fail on rounding that both paths commit equally (each is ~1e-5
    from a float64 recomputation)."""
    scale = np.maximum(np.abs(want).max(axis=-1, keepdims=True), 1.0)
    err = np.abs(got - want) / scale
    assert err.max() <= TOL, f"logits differ by {err.max():.3g} x their scale (allowed {TOL})"


def assert_same_decoding(cached, recomputed):
    (tok_c, log_c), (tok_r, log_r) = cached, recomputed
    np.testing.assert_array_equal(tok_c, tok_r)
    assert_close_logits(log_c, log_r)


# ---- greedy decoding: 256 tokens identical to recomputation -----------------------------------------

def test_storyteller_greedy_256_tokens_identical_to_recomputation():
    """The shipped storyteller (block_size 128): 120 steps fill the cache, the rest slide the window."""
    model = GPT.from_pretrained(str(STORYTELLER)).eval()
    window = model.config.block_size
    prompt = tokens(2, 8, vocab=model.config.vocab_size, seed=4)
    assert_same_decoding(greedy_cached(model, prompt, 256), greedy_recomputed(model, prompt, 256, window))


def llama_moe(**kw):
    return llama(n_experts=4, n_experts_per_tok=2, **kw)


@pytest.mark.parametrize("make, kw", [(gpt, {}), (llama, {}), (llama, dict(n_kv_heads=4)), (llama, dict(n_kv_heads=1)),
                                      (llama_moe, {})], ids=["gpt", "llama_gqa", "llama_mha", "llama_mqa", "llama_moe"])
def test_random_models_greedy_256_tokens_identical_to_recomputation(make, kw):
    """A window of 264 positions holds the prompt and all 256 new tokens: every step uses the cache."""
    model = make(block_size=264, **kw)
    prompt = tokens(2, 8, seed=6)
    cached = greedy_cached(model, prompt, 256)
    assert min(len(set(row[-128:])) for row in cached[0]) >= 10  # a varied sequence, not one token repeated
    assert_same_decoding(cached, greedy_recomputed(model, prompt, 256, 264))


# ---- one forward: the cache's logits against recomputation -------------------------------------------

def llama_mha(**kw):
    return llama(n_kv_heads=4, **kw)


@pytest.mark.parametrize("make", [gpt, llama, llama_mha], ids=["gpt", "llama_gqa", "llama_mha"])
@pytest.mark.parametrize("chunks", [(11,), (5, 1, 1, 4), (1,) * 11, (3, 8)])
def test_chunked_forward_matches_one_forward(make, chunks):
    """Prefill then steps of any size: every position's logits equal those of one forward over all tokens."""
    model, idx = make(), tokens(3, sum(chunks))
    want = recompute_logits(model, idx)
    cache, got, at = model.make_cache(3), [], 0
    with tt.no_grad():
        for n in chunks:
            logits, _ = model(idx[:, at:at + n], cache=cache)
            assert tuple(logits.shape) == (3, n, 97) and cache.length == at + n
            got.append(logits.to(tt.float64).numpy())
            at += n
    assert_close_logits(np.concatenate(got, axis=1), want)


def test_float64_cache_matches_to_rounding():
    model, idx = llama(dtype=tt.float64), tokens(2, 9)
    cache = model.make_cache(2)
    assert cache.k[0].dtype == tt.float64
    with tt.no_grad():
        a, _ = model(idx[:, :4], cache=cache)
        b, _ = model(idx[:, 4:], cache=cache)
    got = np.concatenate([a.numpy(), b.numpy()], axis=1)
    np.testing.assert_allclose(got, recompute_logits(model, idx), rtol=1e-11, atol=1e-11)


# ---- left padding -------------------------------------------------------------------------------------

@pytest.mark.parametrize("make", [gpt, llama], ids=["gpt", "llama"])
def test_left_padded_rows_equal_each_row_alone(make):
    """Rows of lengths 7, 3 and 5 padded on the left to 7: each row's logits and greedy tokens as alone."""
    model, lengths, steps = make(), (7, 3, 5), 12
    rows = [tokens(1, n, seed=10 + i) for i, n in enumerate(lengths)]
    pad = [7 - n for n in lengths]
    batch = np.zeros((3, 7), dtype=np.int64)  # the padding token's id does not matter: it is never attended to
    for i, r in enumerate(rows):
        batch[i, pad[i]:] = r.numpy()[0]
    toks, logits = greedy_cached(model, tt.tensor(batch), steps, cache=model.make_cache(3, pad=pad))
    for i, r in enumerate(rows):
        alone_toks, alone_logits = greedy_cached(model, r, steps)
        np.testing.assert_array_equal(toks[i, pad[i]:], alone_toks[0])
        assert_close_logits(logits[i], alone_logits[0])


def test_padded_prefill_logits_of_real_tokens_match_recomputation():
    model = llama()
    row = tokens(1, 4, seed=5)
    batch = tt.cat([tt.zeros(1, 3, dtype=tt.int64), row], dim=1)  # 3 padding tokens, then the row
    with tt.no_grad():
        logits, _ = model(batch, cache=model.make_cache(1, pad=[3]))
    assert_close_logits(logits.numpy()[:, 3:], recompute_logits(model, row))
    assert np.isfinite(logits.numpy()).all()  # padding queries see no key: zeros, never nan


# ---- crop, reorder, memory, errors -------------------------------------------------------------------

def test_crop_rewinds_to_an_earlier_length():
    """Feed 6 tokens, crop to 4, feed 3 others: the same as feeding the 4 and then the 3 (speculative rollback)."""
    model, idx, other = gpt(), tokens(2, 6), tokens(2, 3, seed=7)
    cache = model.make_cache(2)
    with tt.no_grad():
        model(idx, cache=cache)
        cache.crop(4)
        assert cache.length == 4
        got, _ = model(other, cache=cache)
    want = recompute_logits(model, tt.cat([idx[:, :4], other], dim=1))[:, 4:]
    assert_close_logits(got.numpy(), want)
    with pytest.raises(ValueError, match="crop"):
        cache.crop(8)


@pytest.mark.parametrize("make", [gpt, llama], ids=["gpt", "llama"])
def test_reorder_keeps_and_repeats_rows(make):
    """reorder([2, 0, 0]) (beam search): the next step continues rows 2, 0, 0 (pads follow their rows)."""
    model, idx, nxt = make(), tokens(3, 6), tokens(3, 1, seed=3)
    cache = model.make_cache(3, pad=[0, 2, 1])
    with tt.no_grad():
        model(idx, cache=cache)
        cache.reorder([2, 0, 0])
        assert cache.batch_size == 3 and cache.pad.tolist() == [1, 0, 0]
        got, _ = model(nxt, cache=cache)
    for out_row, src in enumerate((2, 0, 0)):
        pad = (0, 2, 1)[src]
        ctx = tt.cat([idx[src:src + 1, pad:], nxt[out_row:out_row + 1]], dim=1)
        assert_close_logits(got.numpy()[out_row, -1], recompute_logits(model, ctx)[0, -1])
    with pytest.raises(IndexError, match="reorder"):
        cache.reorder([3])


def test_gqa_cache_is_smaller_by_the_group_size():
    """n_kv_heads 2 of 8 query heads: a quarter of the MHA cache; bytes = 2 * L * B * n_kv * max_len * hs * 4."""
    mha, gqa = llama(n_head=8, n_kv_heads=8), llama(n_head=8, n_kv_heads=2)
    b_mha, b_gqa = mha.make_cache(3).nbytes, gqa.make_cache(3).nbytes
    assert b_mha == 2 * 2 * 3 * 8 * 64 * 4 * 4
    assert b_gqa * 4 == b_mha
    assert tuple(gqa.make_cache(3, max_len=10).k[1].shape) == (3, 2, 10, 4)
    print(f"cache bytes, block_size 64, batch 3: MHA {b_mha}, GQA (2 of 8 heads) {b_gqa}")


@pytest.mark.parametrize("make, name", [(gpt, "GPT"), (llama, "Llama")])
def test_context_longer_than_the_window_is_a_value_error(make, name):
    model = make()
    with pytest.raises(ValueError, match=rf"{name}: sequence of length 65 is longer than block_size 64"):
        model(tokens(1, 65), cache=model.make_cache(1))
    cache = model.make_cache(1, max_len=8)
    with tt.no_grad():
        model(tokens(1, 6), cache=cache)
        with pytest.raises(ValueError, match=r"6 cached \+ 3 new positions = 9 is longer than the cache's max_len 8"):
            model(tokens(1, 3), cache=cache)
    assert cache.length == 6  # the refused call changed nothing
    with pytest.raises(ValueError, match="max_len 65 is longer than block_size 64"):
        model.make_cache(1, max_len=65)
    with pytest.raises(ValueError, match="batch of 2 rows"):
        model(tokens(2, 1), cache=cache)
