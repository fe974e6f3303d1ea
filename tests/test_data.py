"""tinytensor.data: documents, token shards (BOS per story, validation = last stories, shard limits, checks),
the DataLoader (seeded, document-aware, exact resume), and a slow end-to-end gate: a tiny GPT trained on
the TinyStories sample through shards and loader gets below the unigram entropy of the data.
"""
import math
import os

import numpy as np
import pytest

import tinytensor as tt
from tinytensor.data import DataLoader, corpus_stats, document_lengths, iter_documents, load_index, prepare_shards
from tinytensor.tokenizer import RegexTokenizer
from helpers import load_example

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.path.join(ROOT, "examples", "data")
EOT = "<|endoftext|>"


@pytest.fixture(scope="module")
def tok():
    with open(os.path.join(DATA, "tinystories_tiny.txt"), encoding="utf-8") as f:
        text = f.read()
    t = RegexTokenizer()
    t.train(text.replace(EOT, ""), 320, special_tokens=[EOT])
    return t


def docs(n=20, seed=0):
    r = np.random.default_rng(seed)
    words = ["the", "cat", "sat", "on", "a", "mat", "and", "was", "happy", "Lily", "dog", "ran"]
    return [" ".join(r.choice(words, r.integers(3, 40))) + "." for _ in range(n)]


def test_iter_documents(tmp_path):
    p = tmp_path / "c.txt"
    p.write_text(f"one\ntwo\n{EOT}\n\n{EOT}\nthree{EOT}four\n{EOT}\nfive", encoding="utf-8")
    assert list(iter_documents(str(p))) == ["one\ntwo", "three", "four", "five"]


def test_prepare_shards_layout(tmp_path, tok):
    d = docs(20)
    index = prepare_shards(d, tok, str(tmp_path), val_fraction=0.1, shard_tokens=100, progress=False)
    bos = tok.special_tokens[EOT]
    assert index["bos"] == bos and index["splits"]["train"]["docs"] == 18 and index["splits"]["val"]["docs"] == 2
    train_shards = index["splits"]["train"]["shards"]
    assert len(train_shards) > 2 and all(s["tokens"] <= 100 for s in train_shards)
    lengths = document_lengths(str(tmp_path), "train")
    np.testing.assert_array_equal(lengths, [1 + len(tok.encode_ordinary(x)) for x in d[:18]])
    all_val = np.concatenate([np.fromfile(tmp_path / s["file"], dtype="<u2") for s in index["splits"]["val"]["shards"]])
    parts = tok.decode(all_val.tolist()).split(EOT)
    assert parts == [""] + d[18:]  # each document starts with BOS; the validation split is the last documents
    stats = corpus_stats(str(tmp_path), "val")
    assert stats["docs"] == 2 and stats["tokens"] == len(all_val)
    assert load_index(str(tmp_path)) == index


def test_long_document_spans_shards_and_file_checks(tmp_path, tok):
    index = prepare_shards(["word " * 300], tok, str(tmp_path), val_fraction=0.0, shard_tokens=64, progress=False)
    shards = index["splits"]["train"]["shards"]
    assert sum(s["tokens"] for s in shards) == 1 + len(tok.encode_ordinary("word " * 300))
    assert [s["tokens"] for s in shards[:-1]] == [64] * (len(shards) - 1)
    with open(tmp_path / shards[0]["file"], "r+b") as f:
        f.truncate(10)
    with pytest.raises(ValueError, match="uint16 tokens"):
        load_index(str(tmp_path))
    with pytest.raises(FileNotFoundError, match="prepare_shards"):
        load_index(str(tmp_path / "nothing"))


def test_prepare_from_file_matches_list(tmp_path, tok):
    src = os.path.join(DATA, "tinystories_tiny.txt")
    a = prepare_shards(src, tok, str(tmp_path / "a"), progress=False)
    b = prepare_shards(list(iter_documents(src)), tok, str(tmp_path / "b"), progress=False)
    assert a["splits"] == b["splits"] and a["splits"]["val"]["docs"] == 0  # round(5 * 0.1) = 0
    with pytest.raises(ValueError, match="special token"):
        prepare_shards(src, RegexTokenizer(), str(tmp_path / "c"), progress=False)


@pytest.fixture
def shards(tmp_path, tok):
    prepare_shards(docs(60), tok, str(tmp_path), val_fraction=0.2, shard_tokens=300, progress=False)
    return str(tmp_path)


def test_loader_batches_are_shifted_and_seeded(shards, tok):
    a = DataLoader(shards, "train", batch_size=4, block_size=8, seed=1)
    x, y = a.next_batch()
    assert x.shape == (4, 8) and x.dtype == tt.int64
    b = DataLoader(shards, "train", batch_size=4, block_size=8, seed=1)
    x2, y2 = b.next_batch()
    np.testing.assert_array_equal(x.numpy(), x2.numpy())
    c = DataLoader(shards, "train", batch_size=4, block_size=8, seed=2)
    assert not np.array_equal(c.next_batch()[0].numpy(), x.numpy())
    # y is x shifted by one: find the window in the shards and compare
    tokens = np.concatenate([t for t, _ in a.shards])
    row = x.numpy()[0]
    hits = [i for i in range(len(tokens) - 8) if np.array_equal(tokens[i:i + 8], row)]
    assert any(np.array_equal(tokens[i + 1:i + 9], y.numpy()[0]) for i in hits)


def test_loader_resumes_exactly_across_epochs(shards):
    a = DataLoader(shards, "train", batch_size=5, block_size=8, seed=3)
    per_epoch = len(a)
    for _ in range(per_epoch - 1):
        a.next_batch()
    state = a.state_dict()
    expected = [a.next_batch()[0].numpy() for _ in range(per_epoch + 2)]  # crosses into the next epochs
    b = DataLoader(shards, "train", batch_size=5, block_size=8, seed=0)
    b.load_state_dict(dict(state))
    for e in expected:
        np.testing.assert_array_equal(b.next_batch()[0].numpy(), e)
    assert b.epoch >= 1
    with pytest.raises(ValueError, match="seed, epoch, pos"):
        b.load_state_dict({"epoch": 1})


def test_loader_doc_alignment_and_eval_pass(shards, tok):
    bos = tok.special_tokens[EOT]
    dl = DataLoader(shards, "train", batch_size=3, block_size=6, align="doc")
    x, _ = dl.next_batch()
    assert np.all(x.numpy()[:, 0] == bos)
    val = DataLoader(shards, "val", batch_size=4, block_size=6, shuffle=False)
    n_windows = sum(xb.shape[0] for xb, _ in val.epoch_batches())
    assert n_windows == sum((len(t) - 7) // 6 + 1 for t, _ in val.shards)
    assert val.state_dict()["pos"] == 0
    with pytest.raises(ValueError, match="no window"):
        DataLoader(shards, "val", batch_size=1, block_size=100000)
    with pytest.raises(ValueError, match="no split"):
        DataLoader(shards, "test", batch_size=1, block_size=4)


def unigram_entropy(tokens: np.ndarray, vocab: int) -> float:
    p = np.bincount(tokens, minlength=vocab) / len(tokens)
    p = p[p > 0]
    return float(-(p * np.log(p)).sum())


@pytest.mark.slow
def test_tiny_gpt_beats_unigram_entropy(tmp_path):
    """Tokenizer (4096) -> shards -> loader -> GPT: val loss below the val tokens' unigram entropy in 200 steps.

    The gate (about 5.9 nats/token) is the loss of the best context-free model fitted to the val tokens
    themselves; a model below it must be using the context. Measured: 5.54 at step 200 (5.84 at 100).
    """
    from models.gpt2 import GPT, GPTConfig
    src = os.path.join(DATA, "tinystories_sample.txt")
    stories = list(iter_documents(src))
    tok = RegexTokenizer()
    tok.train(f"\n{EOT}\n".join(stories[:-len(stories) // 10]), 4096, special_tokens=[EOT])
    prepare_shards(src, tok, str(tmp_path), progress=False)
    val_tokens = np.concatenate([t for t, _ in DataLoader(str(tmp_path), "val", 1, 32).shards])
    gate = unigram_entropy(val_tokens.astype(np.int64), 4096)
    assert 5.5 < gate < 6.5  # about 6.04 nats/token
    tt.manual_seed(0)
    model = GPT(GPTConfig(block_size=64, vocab_size=4096, n_layer=1, n_head=2, n_embd=64, bias=False))
    opt = model.configure_optimizers(0.0, 1e-2)
    train = DataLoader(str(tmp_path), "train", batch_size=8, block_size=64, seed=0)
    for _ in range(200):
        x, y = train.next_batch()
        _, loss = model(x, y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    val = DataLoader(str(tmp_path), "val", batch_size=32, block_size=64, shuffle=False)
    with tt.no_grad():
        losses = [model(x, y)[1].item() for x, y in list(val.epoch_batches())[:8]]
    val_loss = float(np.mean(losses))
    assert math.isfinite(val_loss) and val_loss < gate, (val_loss, gate)


def test_datasets_example_runs(tmp_path, capsys):
    mod = load_example("11_datasets")
    mod.main(["--vocab-size", "300", "--synthetic", "50", "--out", str(tmp_path)])
    out = capsys.readouterr().out
    assert "next batch identical = True" in out and "bytes per token" in out
    assert (tmp_path / "lengths.png").exists() and (tmp_path / "shards" / "index.json").exists()
