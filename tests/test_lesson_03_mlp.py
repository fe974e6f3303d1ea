"""Tests for lesson 03's reference solutions (docs/solutions/03_mlp.py) against the chapter's own code.

References: the chapter's MLP (examples/03_mlp.py, loaded by path) for the parameter count and the
forward pass, the learning rates its training loop really used (a tiny run), tinytensor's
WarmupCosineLR stepping an optimizer, and closed-form points of the schedule.
"""
import math

import numpy as np
import pytest

import tinytensor as tt
from helpers import load_example, load_solution
from tinytensor import nn

sol = load_solution("03_mlp")


@pytest.fixture(scope="module")
def chapter():
    return load_example("03_mlp")


@pytest.fixture(scope="module")
def words(chapter):
    return chapter.load_words()


# ---- exercise 1 ---------------------------------------------------------------------------------

@pytest.mark.parametrize("kw", [
    {},
    dict(block_size=5, n_embd=3, n_hidden=17),
    dict(n_layer=3, n_hidden=32),
    dict(n_layer=2, n_hidden=16, batchnorm=True),
    dict(block_size=1, n_embd=1, n_hidden=1, vocab_size=5),
])
def test_parameter_count_matches_the_model(chapter, kw):
    model = chapter.MLP(chapter.MLPConfig(**kw))
    assert sol.mlp_num_parameters(**kw) == model.num_parameters()
    assert sol.mlp_num_parameters(**kw) == sum(int(np.prod(p.shape)) for p in model.parameters())


# ---- exercise 2 ---------------------------------------------------------------------------------

def model_arrays(model):
    """The MLP's weights as float64 NumPy arrays, in the order numpy_mlp_forward takes them."""
    def arr(p):
        return p.detach().to(tt.float64).numpy()
    hidden = [(arr(m.weight), arr(m.bias)) for m in model.hidden if isinstance(m, nn.Linear)]
    return arr(model.wte.weight), hidden, arr(model.head.weight), arr(model.head.bias)


@pytest.mark.parametrize("n_layer, seed", [(1, 0), (2, 1)])
def test_numpy_forward_matches_the_model(chapter, words, n_layer, seed):
    tt.manual_seed(seed)
    model = chapter.MLP(chapter.MLPConfig(n_layer=n_layer, n_hidden=32))
    with tt.no_grad():                       # make the head non-trivial (it starts scaled down by 0.1)
        model.head.weight.mul_(10.0)
        model.head.bias.add_(tt.randn(27) * 0.5)
    split = chapter.build_dataset(words[:60], 3)
    with tt.no_grad():
        logits, loss = model(split.X, split.Y)
    X, Y = split.X.numpy(), split.Y.numpy()
    got = sol.numpy_mlp_forward(*model_arrays(model), X)
    np.testing.assert_allclose(got, logits.numpy(), rtol=1e-4, atol=1e-4)      # the model runs in float32
    assert sol.numpy_cross_entropy(got, Y) == pytest.approx(loss.item(), rel=1e-5)


def test_numpy_cross_entropy_of_uniform_logits_is_log_v():
    logits = np.full((7, 27), 3.0)
    assert sol.numpy_cross_entropy(logits, np.arange(7)) == pytest.approx(math.log(27), rel=1e-14)


# ---- exercise 3 ---------------------------------------------------------------------------------

def test_schedule_is_what_the_training_loop_used(chapter, words):
    """A tiny chapter run: the learning rate logged at each step is the formula's."""
    tt.manual_seed(0)
    config = chapter.MLPConfig(n_hidden=8, n_embd=2)
    model = chapter.MLP(config)
    opt = chapter.make_optimizer(model, 0.02, 0.01)
    steps, warmup, min_ratio = 30, 6, 0.05
    sched = tt.optim.lr_scheduler.WarmupCosineLR(opt, warmup, steps, min_ratio)
    split = chapter.build_dataset(words[:50], config.block_size)
    log = chapter.train(model, split, opt, steps, 8, tt.Generator(0), sched, progress=False)
    np.testing.assert_allclose(log.lrs, sol.schedule(0.02, warmup, steps, min_ratio), rtol=1e-12)


@pytest.mark.parametrize("warmup, total, min_ratio", [(10, 50, 0.1), (0, 20, 0.0), (5, 5, 0.3), (1, 7, 0.05)])
def test_schedule_matches_warmup_cosine_lr(warmup, total, min_ratio):
    opt = tt.optim.SGD([nn.Parameter(tt.zeros(1))], lr=0.3)
    sched = tt.optim.lr_scheduler.WarmupCosineLR(opt, warmup, total, min_ratio)
    for step in range(total + 5):                    # past the end the rate stays at the floor
        assert sol.warmup_cosine_lr(step, 0.3, warmup, total, min_ratio) == pytest.approx(
            opt.param_groups[0]["lr"], rel=1e-12)
        sched.step()


def test_schedule_landmarks():
    peak, warmup, total, floor = 1e-2, 100, 1000, 0.05
    lrs = sol.schedule(peak, warmup, total, floor)
    assert lrs[0] == pytest.approx(peak / warmup)                     # the first step already moves
    assert lrs[warmup - 1] == pytest.approx(peak)                     # the end of the warmup: the peak
    assert lrs[warmup] == pytest.approx(peak)                         # cos(0) = 1
    middle = warmup + (total - warmup) // 2
    assert lrs[middle] == pytest.approx(peak * (1 + floor) / 2)       # cos(pi / 2) = 0: half way down
    assert all(a >= b for a, b in zip(lrs[warmup:], lrs[warmup + 1:]))
    assert sol.warmup_cosine_lr(total, peak, warmup, total, floor) == pytest.approx(peak * floor)
