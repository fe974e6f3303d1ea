"""tinytensor.nn: Module bookkeeping, state dicts, layers in train/eval, init statistics, containers.

The functional ops and losses are checked in tests/test_functional.py.
"""
import math
from collections import OrderedDict

import numpy as np
import pytest

import tinytensor as tt
from tinytensor import nn
from tinytensor.nn import init


class MLP(nn.Module):
    def __init__(self, vocab=7, emb=4, ctx=3, hidden=8):
        super().__init__()
        self.emb = nn.Embedding(vocab, emb)
        self.layers = nn.Sequential(nn.Linear(ctx * emb, hidden), nn.BatchNorm1d(hidden), nn.Tanh(),
                                    nn.Dropout(0.25), nn.Linear(hidden, vocab))
        self.scale = 2.0  # a plain attribute: not state

    def forward(self, idx):
        return self.layers(self.emb(idx).flatten(1)) * self.scale


STATE_KEYS = ["emb.weight", "layers.0.weight", "layers.0.bias", "layers.1.weight", "layers.1.bias",
              "layers.1.running_mean", "layers.1.running_var", "layers.1.num_batches_tracked",
              "layers.4.weight", "layers.4.bias"]


def test_registration_and_walks():
    m = MLP()
    assert list(m.state_dict()) == STATE_KEYS
    names = [n for n, _ in m.named_parameters()]
    assert names == [k for k in STATE_KEYS if "running" not in k and "num_batches" not in k]
    assert [n for n, _ in m.named_buffers()] == ["layers.1.running_mean", "layers.1.running_var",
                                                 "layers.1.num_batches_tracked"]
    assert [type(c).__name__ for c in m.children()] == ["Embedding", "Sequential"]
    assert [n for n, _ in m.named_modules()] == ["", "emb", "layers"] + [f"layers.{i}" for i in range(5)]
    assert m.num_parameters() == 7 * 4 + (12 * 8 + 8) + 2 * 8 + (8 * 7 + 7)
    assert all(isinstance(p, nn.Parameter) and p.requires_grad and p.is_leaf for p in m.parameters())
    assert "scale" not in m.state_dict() and m.scale == 2.0


def test_setattr_rules_and_tied_weights():
    m = nn.Linear(3, 3)
    with pytest.raises(TypeError, match="parameter 'weight'"):
        m.weight = tt.zeros(3, 3)
    m.bias = None
    assert [n for n, _ in m.named_parameters()] == ["weight"] and m(tt.ones(1, 3)).shape == (1, 3)
    seq = nn.Sequential(nn.Linear(3, 3), nn.Linear(3, 3))
    seq[1].weight = seq[0].weight  # tied: counted once, saved under both names
    assert len(list(seq.parameters())) == 3
    assert seq.num_parameters() == 9 + 3 + 3
    assert list(seq.state_dict()) == ["0.weight", "0.bias", "1.weight", "1.bias"]
    del seq[0].bias
    assert [n for n, _ in seq.named_parameters()] == ["0.weight", "1.bias"]
    m.register_buffer("tmp", tt.ones(2), persistent=False)
    assert "tmp" in dict(m.named_buffers()) and "tmp" not in m.state_dict()


def test_state_dict_round_trip_and_sharing():
    tt.manual_seed(0)
    a, b = MLP(), MLP()
    x = tt.randint(0, 7, (5, 3))
    a.eval(), b.eval()
    assert not np.allclose(a(x).detach().numpy(), b(x).detach().numpy())
    result = b.load_state_dict(a.state_dict())
    assert result == ([], []) and result.missing_keys == [] and result.unexpected_keys == []
    np.testing.assert_array_equal(a(x).detach().numpy(), b(x).detach().numpy())
    sd = a.state_dict()
    assert not sd["emb.weight"].requires_grad
    with tt.no_grad():
        sd["emb.weight"][0, 0] = 42.0  # state_dict tensors share memory with the parameters
    assert a.emb.weight[0, 0].item() == 42.0
    assert b.emb.weight[0, 0].item() != 42.0  # loading copied


def test_load_state_dict_strict_and_non_strict():
    m = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1))
    sd = m.state_dict()
    partial = {k: v for k, v in sd.items() if k != "2.bias"}
    partial["extra.weight"] = tt.zeros(1)
    with pytest.raises(RuntimeError) as e:
        m.load_state_dict(partial)
    assert "'2.bias'" in str(e.value) and "'extra.weight'" in str(e.value)
    before = m[0].weight.detach().numpy().copy()
    new = {k: tt.full(v.shape, 0.5) for k, v in partial.items() if k != "extra.weight"}
    new["extra.weight"] = tt.zeros(1)
    missing, unexpected = m.load_state_dict(new, strict=False)
    assert missing == ["2.bias"] and unexpected == ["extra.weight"]
    assert np.all(m[0].weight.detach().numpy() == 0.5) and not np.array_equal(before, m[0].weight.detach().numpy())
    bad = dict(sd)
    bad["0.weight"] = tt.zeros(4, 2)
    bad["2.bias"] = tt.full((1,), 7.0)
    bias = m[2].bias.item()
    with pytest.raises(RuntimeError, match=r"'0\.weight'.*\(4, 2\).*\(3, 2\)"):
        m.load_state_dict(bad, strict=False)
    assert m[2].bias.item() == bias != 7.0  # nothing was copied: every check runs before any copy


def test_repr_tree():
    m = MLP()
    assert repr(m) == """MLP(
  (emb): Embedding(7, 4)
  (layers): Sequential(
    (0): Linear(in_features=12, out_features=8, bias=True)
    (1): BatchNorm1d(8, eps=1e-05, momentum=0.1, affine=True, track_running_stats=True)
    (2): Tanh()
    (3): Dropout(p=0.25)
    (4): Linear(in_features=8, out_features=7, bias=True)
  )
)"""
    assert repr(nn.GELU("tanh")) == "GELU(approximate='tanh')"
    assert repr(nn.LayerNorm(5)) == "LayerNorm((5,), eps=1e-05, elementwise_affine=True)"
    assert repr(nn.Parameter(tt.ones(2))).startswith("Parameter containing:\ntensor([1., 1.], requires_grad=True)")


def test_train_eval_dropout():
    m = MLP()
    assert m.training and m.layers[3].training
    m.eval()
    assert not any(mod.training for mod in m.modules())
    d = nn.Dropout(0.3)
    x = tt.ones(200, 100)
    d.eval()
    np.testing.assert_array_equal(d(x).detach().numpy(), x.detach().numpy())
    d.train()
    y = d(x).detach().numpy()
    assert set(np.unique(y)) == {0.0, np.float32(1 / 0.7)}
    assert abs((y == 0).mean() - 0.3) < 0.02  # 20000 draws: std of the fraction is 0.0032
    assert np.array_equal(nn.Dropout(0.0)(x).numpy(), x.numpy()) and not nn.Dropout(1.0)(x).numpy().any()


def test_batchnorm_train_and_eval_against_numpy():
    bn = nn.BatchNorm1d(3, momentum=0.2)
    with tt.no_grad():
        bn.weight.copy_(tt.tensor([1.0, 2.0, 0.5]))
        bn.bias.copy_(tt.tensor([0.0, -1.0, 3.0]))
    rng = np.random.default_rng(0)
    xs = [rng.normal(2.0, 3.0, size=(6, 3, 4)) for _ in range(2)]
    rm, rv = np.zeros(3), np.ones(3)
    for x in xs:
        out = bn(tt.tensor(x, dtype=tt.float64).float()).detach().numpy()
        mean, var = x.mean(axis=(0, 2)), x.var(axis=(0, 2))
        ref = (x - mean[:, None]) / np.sqrt(var[:, None] + 1e-5) * [[1], [2], [0.5]] + [[0.0], [-1.0], [3.0]]
        np.testing.assert_allclose(out, ref, rtol=1e-4, atol=1e-4)
        rm, rv = 0.8 * rm + 0.2 * mean, 0.8 * rv + 0.2 * x.var(axis=(0, 2), ddof=1)
    np.testing.assert_allclose(bn.running_mean.detach().numpy(), rm, rtol=1e-5)
    np.testing.assert_allclose(bn.running_var.detach().numpy(), rv, rtol=1e-5)
    assert bn.num_batches_tracked.item() == 2
    bn.eval()
    x = rng.normal(size=(5, 3, 4))
    ref = (x - rm[:, None]) / np.sqrt(rv[:, None] + 1e-5) * [[1], [2], [0.5]] + [[0.0], [-1.0], [3.0]]
    np.testing.assert_allclose(bn(tt.tensor(x).float()).detach().numpy(), ref, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(bn.running_mean.detach().numpy(), rm, rtol=1e-5)  # eval leaves the stats alone
    cma = nn.BatchNorm1d(2, momentum=None)  # cumulative average
    a, b = rng.normal(size=(4, 2)), rng.normal(size=(4, 2))
    cma(tt.tensor(a).float()), cma(tt.tensor(b).float())
    np.testing.assert_allclose(cma.running_mean.detach().numpy(), (a.mean(0) + b.mean(0)) / 2, rtol=1e-5)


def test_zero_grad_to_apply_requires_grad():
    m = nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 1))
    m(tt.ones(3, 2)).sum().backward()
    g = m[0].weight.grad.detach().numpy().copy()
    assert np.abs(g).sum() > 0
    m.zero_grad(set_to_none=False)
    assert np.all(m[0].weight.grad.detach().numpy() == 0) and m[0].weight.grad.shape == (2, 2)
    m.zero_grad()
    assert all(p.grad is None for p in m.parameters())
    w = m[0].weight
    values = w.detach().numpy().copy()
    m(tt.ones(3, 2)).sum().backward()
    assert m.to(tt.float64) is m and m[0].weight is w and w.dtype is tt.float64
    np.testing.assert_array_equal(w.detach().numpy(), values.astype(np.float64))
    assert w.grad.dtype is tt.float64  # the gradient follows its parameter
    np.testing.assert_array_equal(w.grad.numpy(), g.astype(np.float64))
    m.half()
    assert {p.dtype for p in m.parameters()} == {tt.float16}
    order = []
    m.apply(lambda mod: order.append(type(mod).__name__))
    assert order == ["Linear", "Linear", "Sequential"]
    m.requires_grad_(False)
    assert not any(p.requires_grad for p in m.parameters()) and m.num_parameters(trainable_only=True) == 0


def test_containers():
    layers = nn.ModuleList([nn.Linear(2, 2) for _ in range(3)])
    layers.append(nn.ReLU())
    assert len(layers) == 4 and isinstance(layers[-1], nn.ReLU) and len(layers[1:3]) == 2
    holder = nn.Module()
    holder.blocks = layers
    assert [n for n, _ in holder.named_parameters()][-2:] == ["blocks.2.weight", "blocks.2.bias"]
    d = nn.ModuleDict({"a": nn.Linear(1, 2), "b": nn.Tanh()})
    d["c"] = nn.Identity()
    assert list(d) == ["a", "b", "c"] and "b" in d and len(d) == 3
    seq = nn.Sequential(OrderedDict([("fc", nn.Linear(2, 3)), ("act", nn.ReLU())]))
    assert list(seq.state_dict()) == ["fc.weight", "fc.bias"]
    x = tt.tensor([[1.0, -2.0]])
    np.testing.assert_allclose(seq(x).detach().numpy(), np.maximum(seq.fc(x).detach().numpy(), 0))
    assert isinstance(seq[0:1], nn.Sequential) and len(seq[0:1]) == 1
    assert nn.Flatten()(tt.zeros(2, 3, 4)).shape == (2, 12)
    with pytest.raises(IndexError):
        seq[5]


def test_layers_match_functional_formulas():
    tt.manual_seed(1)
    x = tt.randn(2, 3, 4)
    ln = nn.LayerNorm(4)
    xn = x.detach().numpy().astype(np.float64)
    ref = (xn - xn.mean(-1, keepdims=True)) / np.sqrt(xn.var(-1, keepdims=True) + 1e-5)
    np.testing.assert_allclose(ln(x).detach().numpy(), ref, rtol=1e-4, atol=1e-5)
    rms = nn.RMSNorm(4, eps=1e-6)
    np.testing.assert_allclose(rms(x).detach().numpy(), xn / np.sqrt((xn ** 2).mean(-1, keepdims=True) + 1e-6),
                               rtol=1e-5)
    emb = nn.Embedding(5, 3, padding_idx=1)
    assert np.all(emb.weight[1].detach().numpy() == 0)
    idx = tt.tensor([[1, 4], [0, 1]])
    np.testing.assert_array_equal(emb(idx).detach().numpy(), emb.weight.detach().numpy()[[[1, 4], [0, 1]]])
    sm = nn.Softmax(dim=1)(x).detach().numpy()
    np.testing.assert_allclose(sm.sum(1), 1.0, rtol=1e-6)


# ---- init ---------------------------------------------------------------------------------------

def test_calculate_gain():
    assert init.calculate_gain("linear") == 1.0 and init.calculate_gain("sigmoid") == 1.0
    assert init.calculate_gain("tanh") == pytest.approx(5 / 3)
    assert init.calculate_gain("relu") == pytest.approx(math.sqrt(2))
    assert init.calculate_gain("leaky_relu") == pytest.approx(math.sqrt(2 / (1 + 0.01 ** 2)))
    assert init.calculate_gain("leaky_relu", 0.2) == pytest.approx(math.sqrt(2 / 1.04))
    assert init.calculate_gain("selu") == 0.75
    with pytest.raises(ValueError):
        init.calculate_gain("swish")


def _stats(t):
    a = t.detach().numpy().astype(np.float64)
    return a.mean(), a.std(), np.abs(a).max()


def test_init_statistics():
    tt.manual_seed(0)
    w = tt.empty(400, 300)  # fan_in 300, fan_out 400; 120000 draws: std estimates within ~0.5%
    mean, std, top = _stats(init.uniform_(w, -2.0, 3.0))
    assert abs(mean - 0.5) < 0.02 and abs(std - 5 / math.sqrt(12)) < 0.01 and w.numpy().min() >= -2.0 and top < 3
    mean, std, _ = _stats(init.normal_(w, 1.0, 0.5))
    assert abs(mean - 1.0) < 0.01 and abs(std - 0.5) < 0.005
    _, std, top = _stats(init.xavier_uniform_(w, gain=2.0))
    bound = 2.0 * math.sqrt(6 / 700)
    assert top <= bound and top > 0.99 * bound and abs(std - bound / math.sqrt(3)) < 0.01 * bound
    _, std, _ = _stats(init.xavier_normal_(w))
    assert abs(std - math.sqrt(2 / 700)) < 0.01 * math.sqrt(2 / 700)
    _, std, _ = _stats(init.kaiming_normal_(w, mode="fan_out", nonlinearity="relu"))
    assert abs(std - math.sqrt(2 / 400)) < 0.01 * math.sqrt(2 / 400)
    _, std, top = _stats(init.kaiming_uniform_(w, nonlinearity="relu"))
    assert top <= math.sqrt(6 / 300) and abs(std - math.sqrt(2 / 300)) < 0.01 * math.sqrt(2 / 300)
    _, _, top = _stats(init.trunc_normal_(w, std=1.0, a=-0.5, b=0.5))
    assert top <= 0.5
    assert np.all(init.zeros_(w).detach().numpy() == 0) and np.all(init.constant_(w, 3.0).detach().numpy() == 3.0)
    with pytest.raises(ValueError, match="fewer than 2 dims"):
        init.xavier_uniform_(tt.empty(5))
    with pytest.raises(ValueError, match="mode"):
        init.kaiming_normal_(w, mode="fan_avg")


def test_default_init_of_linear_and_embedding():
    tt.manual_seed(0)
    lin = nn.Linear(256, 512)
    bound = 1 / math.sqrt(256)
    _, std, top = _stats(lin.weight)
    assert top <= bound and top > 0.99 * bound and abs(std - bound / math.sqrt(3)) < 0.01 * bound
    _, _, top = _stats(lin.bias)
    assert top <= bound and top > 0.9 * bound
    mean, std, _ = _stats(nn.Embedding(1000, 64).weight)
    assert abs(mean) < 0.01 and abs(std - 1.0) < 0.01
