"""Lesson 11's exercise solutions (docs/solutions/11_datasets.py) against independent references.

Shards are prepared from small made-up documents with a byte-level tokenizer written here (so no BPE
training is needed). The batch rebuilt from a state is compared with tinytensor's DataLoader, across
epoch boundaries; the document mask with a brute-force loop, and attention under it with attention run
on each document alone; the leakage fraction with plain Python sets of tuples.
"""
import numpy as np
import pytest

import tinytensor as tt
import tinytensor.nn.functional as F
from helpers import load_solution
from tinytensor.data import DataLoader, prepare_shards

sol = load_solution("11_datasets")
EOT = "<|endoftext|>"


class ByteTokenizer:
    """Token i < 256 is byte i; 256 is the separator, used as BOS by prepare_shards."""
    special_tokens = {EOT: 256}
    vocab_size = 257

    def encode_ordinary(self, text):
        return list(text.encode("utf-8"))


def made_up_docs(n, seed):
    rng = np.random.default_rng(seed)
    words = ["the", "cat", "sat", "on", "a", "mat", "Lily", "ran", "home", "happy", "dog"]
    return [" ".join(rng.choice(words, int(rng.integers(2, 15)))) + "." for _ in range(n)]


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    out = tmp_path_factory.mktemp("shards")
    prepare_shards(made_up_docs(40, 0), ByteTokenizer(), str(out), val_fraction=0.1, shard_tokens=300,
                   progress=False)
    return str(out)


# ---- 1. a batch from a state ------------------------------------------------------------------------

@pytest.mark.parametrize("batch_size,block_size,seed", [(4, 8, 0), (3, 31, 5), (7, 16, 2)])
def test_batch_from_state_equals_the_loader(shards, batch_size, block_size, seed):
    loader = DataLoader(shards, "train", batch_size=batch_size, block_size=block_size, seed=seed)
    per_epoch = len(loader)
    for _ in range(2 * per_epoch + 3):   # over two epoch boundaries
        state = loader.state_dict()
        x, y = sol.batch_from_state(shards, "train", batch_size, block_size, state)
        lx, ly = loader.next_batch()
        np.testing.assert_array_equal(x, lx.numpy())
        np.testing.assert_array_equal(y, ly.numpy())
        assert x.shape == (batch_size, block_size) and x.dtype == np.int64
    assert loader.state_dict()["epoch"] == 2


# ---- 2. document masks ------------------------------------------------------------------------------

def test_document_mask_by_brute_force():
    rng = np.random.default_rng(1)
    bos = 9
    x = rng.integers(0, 10, (3, 12))   # about one token in ten is BOS
    mask = sol.document_attention_mask(x, bos)
    for b in range(3):
        for i in range(12):
            for j in range(12):
                same_doc = not any(x[b, t] == bos for t in range(j + 1, i + 1))   # no new story began after j
                assert mask[b, i, j] == (j <= i and same_doc)


def test_masked_attention_equals_attention_per_document():
    rng = np.random.default_rng(2)
    bos, T, hs = 0, 10, 4
    x = np.array([[5, 6, 0, 3, 4, 4, 0, 7, 8, 9]])          # a story's tail, then two stories
    q, k, v = (rng.standard_normal((1, 1, T, hs)) for _ in range(3))
    mask = tt.tensor(sol.document_attention_mask(x, bos))[:, None]   # (B, 1, T, T) over heads
    out = F.scaled_dot_product_attention(tt.tensor(q), tt.tensor(k), tt.tensor(v), attn_mask=mask).numpy()
    for a, b in [(0, 2), (2, 6), (6, 10)]:                   # each document alone, causally
        alone = F.scaled_dot_product_attention(tt.tensor(q[..., a:b, :]), tt.tensor(k[..., a:b, :]),
                                               tt.tensor(v[..., a:b, :]), is_causal=True).numpy()
        np.testing.assert_allclose(out[..., a:b, :], alone, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(sol.document_ids(x, bos), [[0, 0, 1, 1, 1, 1, 2, 2, 2, 2]])


# ---- 3. leakage -------------------------------------------------------------------------------------

def python_leakage(train_docs, val_docs, n, bos=256):
    def grams(text):
        ids = [bos] + list(text.encode("utf-8"))
        return [tuple(ids[i:i + n]) for i in range(len(ids) - n + 1)]
    seen = {g for d in train_docs for g in grams(d)}
    val = [g for d in val_docs for g in grams(d)]
    return sum(g in seen for g in val) / len(val)


@pytest.mark.parametrize("n", [3, 8, 20])
def test_leakage_against_python_sets(tmp_path, n):
    train = made_up_docs(18, 3)
    val = [train[4], "Zebras juggle quietly near xylophones.", train[7][:20]]   # one copy, one new, one part
    prepare_shards(train + val, ByteTokenizer(), str(tmp_path), val_fraction=3 / 21, shard_tokens=200,
                   progress=False)
    got = sol.val_ngram_leakage(str(tmp_path), n)
    assert got == pytest.approx(python_leakage(train, val, n))
    assert 0.0 < got < 1.0
