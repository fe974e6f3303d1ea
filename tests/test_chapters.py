"""The chapters 01 (bigram), 03 (MLP) and 07 (optimization): each example at tiny settings, then the gates.

Tiny runs check real values (losses finite and below the uniform guess log 27, counts equal to
NumPy's, deterministic splits, the plots written), not just that the scripts finish. The gates run
the chapters' default settings (or, for 07, two of its runs at fewer steps) and carry the `slow`
marker, which CI still runs: counting NLL <= 2.46 nats and the trained bigram within 0.02 of it;
the MLP's val NLL <= 2.20; AdamW with warmup + cosine below plain SGD after the same steps.
Not covered here: the layers and optimizers themselves (test_nn.py, test_optim.py).
"""
import math

import numpy as np
import pytest

import tinytensor as tt
from helpers import load_example

UNIFORM = math.log(27)


@pytest.fixture(scope="module")
def bigram():
    return load_example("01_bigram")


@pytest.fixture(scope="module")
def mlp():
    return load_example("03_mlp")


@pytest.fixture(scope="module")
def optim_chapter():
    return load_example("07_optimization")


@pytest.fixture(scope="module")
def words(bigram):
    return bigram.load_words()


def quiet(_msg: str) -> None:
    pass


# ---- chapter 01 ------------------------------------------------------------------------------------

def test_names_file(words):
    assert len(words) == 32033 and all(w.isalpha() and w.islower() for w in words)


def test_bigram_counts_match_numpy(bigram, words):
    vocab = bigram.build_vocab(words[:300])
    xs, ys = bigram.bigrams(words[:300], vocab)
    expected = np.zeros((27, 27))
    np.add.at(expected, (xs, ys), 1)
    counts = bigram.count_table(tt.tensor(xs), tt.tensor(ys), 27)
    np.testing.assert_array_equal(counts.numpy(), expected)
    P = bigram.counting_model(counts, 1.0).numpy()
    np.testing.assert_allclose(P.sum(1), 1.0, rtol=1e-6)
    np.testing.assert_allclose(P, (expected + 1) / (expected + 1).sum(1, keepdims=True), rtol=1e-6)
    assert xs[0] == 0 and ys[-1] == 0 and len(xs) == sum(len(w) + 1 for w in words[:300])


def test_bigram_counting_gate(bigram, words):
    """Gate: the add-one smoothed counting model's NLL over the whole dataset is at most 2.46 nats."""
    vocab = bigram.build_vocab(words)
    xs, ys = (tt.tensor(a) for a in bigram.bigrams(words, vocab))
    nll = bigram.nll(bigram.counting_model(bigram.count_table(xs, ys, 27), 1.0), xs, ys)
    assert 2.40 < nll <= 2.46


def test_bigram_runs_tiny(bigram, words, tmp_path):
    res = bigram.run(steps=8, samples=4, words=words[:500], out=str(tmp_path), progress=False, log=quiet)
    assert math.isfinite(res["count_nll"]) and res["count_nll"] < UNIFORM
    assert math.isfinite(res["trained_nll"]) and res["trained_nll"] < res["losses"][0]
    assert len(res["losses"]) == 8 and res["losses"][-1] < res["losses"][0]
    for names in res["samples"].values():
        assert len(names) == 4 and all(set(n) <= set("abcdefghijklmnopqrstuvwxyz") for n in names)
    assert (tmp_path / "loss.png").stat().st_size > 0 and (tmp_path / "counts.png").stat().st_size > 0


def test_bigram_sampling_is_seeded(bigram, words):
    vocab = bigram.build_vocab(words)
    P = tt.full((27, 27), 1.0)
    a = bigram.sample_names(P, vocab, 5, tt.Generator(3))
    b = bigram.sample_names(P, vocab, 5, tt.Generator(3))
    assert a == b and a != bigram.sample_names(P, vocab, 5, tt.Generator(4))


@pytest.mark.slow
def test_bigram_trained_gate(bigram, words):
    """Gate: the Embedding trained by gradient descent (default settings) is within 0.02 nats of counting."""
    res = bigram.run(words=words, out=None, progress=False, log=quiet)
    assert res["count_nll"] <= 2.46
    assert abs(res["trained_nll"] - res["count_nll"]) <= 0.02


# ---- chapter 03 ------------------------------------------------------------------------------------

def test_mlp_split_and_dataset(mlp, words):
    parts = mlp.split_words(words, seed=42)
    assert [len(parts[k]) for k in ("train", "val", "test")] == [25626, 3203, 3204]
    assert sorted(sum(parts.values(), [])) == sorted(words)
    assert parts == mlp.split_words(words, seed=42) and parts != mlp.split_words(words, seed=1)
    X, Y = mlp.build_dataset(["emma"], 3)
    assert X.tolist() == [[0, 0, 0], [0, 0, 5], [0, 5, 13], [5, 13, 13], [13, 13, 1]]
    assert Y.tolist() == [5, 13, 13, 1, 0]


def test_mlp_model_shapes(mlp):
    cfg = mlp.MLPConfig(n_embd=4, n_hidden=16, n_layer=2, batchnorm=True)
    model = mlp.MLP(cfg)
    logits, loss = model(tt.zeros((5, 3), dtype=tt.int64), tt.zeros(5, dtype=tt.int64))
    assert logits.shape == (5, 27) and math.isfinite(loss.item())
    assert model.num_parameters() == 27 * 4 + 12 * 16 + 2 * 16 + 16 * 16 + 2 * 16 + 16 * 27 + 27
    assert abs(mlp.MLP(mlp.MLPConfig())(tt.zeros((64, 3), dtype=tt.int64), tt.zeros(64, dtype=tt.int64))[1].item()
               - UNIFORM) < 0.3                           # the small head starts near the uniform guess


def test_mlp_runs_tiny(mlp, words, tmp_path):
    res = mlp.run(mlp.MLPConfig(n_embd=4, n_hidden=32), steps=40, batch_size=64, warmup=5, eval_interval=20,
                  samples=3, words=words[:3000], out=str(tmp_path), progress=False, log=quiet)
    for split in ("train", "val", "test"):
        assert math.isfinite(res[split]) and res[split] < UNIFORM
    assert len(res["losses"]) == 40 and np.mean(res["losses"][-10:]) < np.mean(res["losses"][:10])
    assert len(res["samples"]) == 3 and all(set(n) <= set("abcdefghijklmnopqrstuvwxyz") for n in res["samples"])
    assert (tmp_path / "loss.png").stat().st_size > 0


def test_mlp_training_is_deterministic(mlp, words):
    kw = dict(steps=5, batch_size=32, warmup=2, eval_interval=100, samples=2, words=words[:500], progress=False,
              log=quiet)
    a = mlp.run(mlp.MLPConfig(n_hidden=16), **kw)
    b = mlp.run(mlp.MLPConfig(n_hidden=16), **kw)
    assert a["losses"] == b["losses"] and a["samples"] == b["samples"]


@pytest.mark.slow
def test_mlp_gate(mlp):
    """Gate: the default run reaches a val NLL of at most 2.20 (measured: about 2.14)."""
    res = mlp.run(out=None, progress=False, log=quiet)
    assert res["val"] <= 2.20
    assert res["train"] < res["val"] + 0.1 and res["test"] < 2.25


# ---- chapter 07 ------------------------------------------------------------------------------------

def test_init_statistics(optim_chapter, mlp, words):
    """N(0, 1) weights saturate tanh; PyTorch's default shrinks the signal; Kaiming and BatchNorm keep it."""
    data = mlp.load_splits(words=words[:2000])
    X, Y = data["train"].X[:512], data["train"].Y[:512]
    config = mlp.MLPConfig(n_layer=4, n_hidden=100)
    stats = {s: optim_chapter.layer_statistics(optim_chapter.build_model(config, s, 0), X, Y).stats
             for s in optim_chapter.INIT_SCHEMES}
    assert all(len(v) == 4 for v in stats.values())
    assert min(s.saturated for s in stats["unscaled"][1:]) > 0.5
    assert stats["default"][3].act_std < 0.5 * stats["default"][0].act_std
    assert all(0.4 < s.act_std < 0.9 and s.saturated < 0.25 for s in stats["kaiming"] + stats["batchnorm"])
    assert all(math.isfinite(s.grad_std) and s.grad_std > 0 for v in stats.values() for s in v)


def test_optimization_runs_tiny(optim_chapter, tmp_path, capsys):
    out = optim_chapter.main(["--steps", "12", "--batch-size", "64", "--warmup", "3", "--clip", "0.05",
                              "--init-steps", "4", "--init-layers", "2", "--init-schemes", "unscaled,kaiming",
                              "--n-hidden", "32", "--out", str(tmp_path), "--no-progress"])
    assert set(out["runs"]) == set(optim_chapter.RUNS)
    for r in out["runs"].values():
        assert math.isfinite(r.val) and r.val < UNIFORM + 0.1 and len(r.log.grad_norms) == 12
    clipped = out["runs"]["adamw_cosine_clip"]
    assert max(clipped.log.grad_norms) > 0.05                  # so clipping did trigger
    lrs = out["runs"]["adamw_cosine"].log.lrs
    assert lrs[0] < lrs[2] and lrs[-1] < lrs[2]                # warmup, then decay
    assert all(res.val is not None and res.val < UNIFORM for res in out["init"].values())
    printed = capsys.readouterr().out
    assert "AdamW + warmup/cosine" in printed and "saturated" in printed
    for name in ("init_unscaled.png", "init_kaiming.png", "init_loss.png", "loss.png"):
        assert (tmp_path / name).stat().st_size > 0


@pytest.mark.slow
def test_optimization_gate(optim_chapter, mlp):
    """Gate: AdamW with warmup + cosine ends below plain SGD after the same steps on the same batches."""
    data = mlp.load_splits()
    lrs = {"sgd": 1.0, "momentum": 0.1, "adam": 1e-2}
    res = optim_chapter.optimizer_study(data, mlp.MLPConfig(), ["sgd", "adamw_cosine"], 500, 1024, lrs, 100, 0.05,
                                        0.01, 0.5, 0, progress=False, log=quiet)
    assert res["adamw_cosine"].val < res["sgd"].val - 0.03
