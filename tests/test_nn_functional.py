"""tinytensor.nn.functional against NumPy float64 references, gradients against finite differences,
the fused cross-entropy against its composite, and (when installed) PyTorch as an oracle for the losses.
"""
import math

import numpy as np
import pytest
from hypothesis import given, strategies as st

import tinytensor as tt
import tinytensor.nn.functional as F
from helpers import numerical_grad

rng = np.random.default_rng(0)
erf = np.vectorize(math.erf)


def T(a, grad=False):
    return tt.tensor(np.asarray(a, dtype=np.float64), requires_grad=grad)


def lse(x, axis):
    m = x.max(axis=axis, keepdims=True)
    return np.log(np.exp(x - m).sum(axis=axis, keepdims=True)) + m


def ce_ref(x, t, w=None, ignore=-100, reduction="mean", ls=0.0):
    """Cross-entropy for class indices written out per position: (1-ls) * nll + ls * smoothing term."""
    C = x.shape[1]
    xm = np.moveaxis(x, 1, -1).reshape(-1, C)
    logp = xm - lse(xm, 1)
    w = np.ones(C) if w is None else w
    losses, denom = np.zeros(len(logp)), 0.0
    for i, c in enumerate(t.reshape(-1)):
        if c != ignore:
            losses[i] = (1 - ls) * -w[c] * logp[i, c] + ls * -(w * logp[i]).sum() / C
            denom += w[c]
    return {"none": losses.reshape(t.shape), "sum": losses.sum(), "mean": losses.sum() / denom}[reduction]


def ce_probs_ref(x, p, w=None, reduction="mean", ls=0.0):
    C = x.shape[1]
    p = p * (1 - ls) + ls / C
    w = np.ones(C) if w is None else w
    losses = -(np.moveaxis((x - lse(x, 1)) * p, 1, -1) * w).sum(-1)
    return {"none": losses, "sum": losses.sum(), "mean": losses.mean()}[reduction]


def check_grads(fn, *arrays, atol=1e-6):
    """Gradients of sum(fn(*tensors) * r) (r random) against central differences, in float64."""
    out = fn(*[T(a) for a in arrays])
    r = rng.normal(size=out.shape)
    tensors = [T(a, grad=True) for a in arrays]
    (fn(*tensors) * T(r)).sum().backward()
    for i, (a, t) in enumerate(zip(arrays, tensors)):
        def f(v, i=i):
            args = [T(v) if j == i else T(b) for j, b in enumerate(arrays)]
            return float((fn(*args).detach().numpy() * r).sum())
        np.testing.assert_allclose(t.grad.numpy(), numerical_grad(f, a.copy()), atol=atol, rtol=1e-5)


# ---- activations, layers, norms ---------------------------------------------------------------------

def test_activations_and_linear():
    x = rng.normal(size=(3, 5)) * 3
    np.testing.assert_allclose(F.gelu(T(x)).numpy(), 0.5 * x * (1 + erf(x / np.sqrt(2))), rtol=1e-12)
    tanh_ref = 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x ** 3)))
    np.testing.assert_allclose(F.gelu(T(x), approximate="tanh").numpy(), tanh_ref, rtol=1e-12)
    np.testing.assert_allclose(F.silu(T(x)).numpy(), x / (1 + np.exp(-x)), rtol=1e-12)
    np.testing.assert_allclose(F.sigmoid(T(x)).numpy(), 1 / (1 + np.exp(-x)), rtol=1e-12)
    np.testing.assert_allclose(F.tanh(T(x)).numpy(), np.tanh(x), rtol=1e-12)
    np.testing.assert_array_equal(F.relu(T(x)).numpy(), np.maximum(x, 0))
    np.testing.assert_array_equal(F.one_hot(tt.tensor([2, 0]), 4).numpy(), [[0, 0, 1, 0], [1, 0, 0, 0]])
    np.testing.assert_allclose(F.softmax(T(x), 0).numpy(), np.exp(x - lse(x, 0)), rtol=1e-12)
    np.testing.assert_allclose(F.log_softmax(T(x), -1).numpy(), x - lse(x, -1), rtol=1e-12)
    w, b = rng.normal(size=(4, 5)), rng.normal(size=4)
    np.testing.assert_allclose(F.linear(T(x), T(w), T(b)).numpy(), x @ w.T + b, rtol=1e-12)
    np.testing.assert_allclose(F.linear(T(x), T(w)).numpy(), x @ w.T, rtol=1e-12)
    check_grads(lambda x, w, b: F.linear(x, w, b), x, w, b)


def test_layer_norm_and_rms_norm():
    x, w, b = rng.normal(size=(2, 3, 4)) * 2 + 1, rng.normal(size=(3, 4)), rng.normal(size=(3, 4))
    mean, var = x.mean((1, 2), keepdims=True), x.var((1, 2), keepdims=True)
    ref = (x - mean) / np.sqrt(var + 1e-5) * w + b
    np.testing.assert_allclose(F.layer_norm(T(x), (3, 4), T(w), T(b)).numpy(), ref, rtol=1e-10)
    ref = x / np.sqrt((x ** 2).mean(-1, keepdims=True) + 1e-6) * w[0]
    np.testing.assert_allclose(F.rms_norm(T(x), 4, T(w[0]), eps=1e-6).numpy(), ref, rtol=1e-10)
    eps32 = np.finfo(np.float32).eps  # eps=None: the dtype's machine epsilon, as in PyTorch
    small = np.full((1, 4), 1e-4, dtype=np.float32)
    np.testing.assert_allclose(F.rms_norm(tt.tensor(small), 4).numpy(), small / np.sqrt(1e-8 + eps32), rtol=1e-5)
    check_grads(lambda x, w, b: F.layer_norm(x, (4,), w, b, eps=1e-5), x, w[0], b[0])
    check_grads(lambda x, w: F.rms_norm(x, (3, 4), w, eps=1e-5), x, w)
    half = F.layer_norm(tt.tensor(x, dtype=tt.bfloat16), 4)
    assert half.dtype is tt.bfloat16
    with pytest.raises(ValueError, match="normalized_shape"):
        F.layer_norm(T(x), (5,))


def test_batchnorm_gradients():
    from tinytensor import nn
    bn = nn.BatchNorm1d(3, dtype=tt.float64)
    with tt.no_grad():
        bn.weight.copy_(T([0.5, 2.0, -1.0]))
    check_grads(lambda x: bn(x), rng.normal(size=(5, 3, 2)))
    check_grads(lambda x: F.gelu(x) + F.silu(x) + F.gelu(x, approximate="tanh"), rng.normal(size=(2, 3)))


def test_dropout_functional():
    x = tt.ones(100, 100)
    assert F.dropout(x, 0.5, training=False) is x
    tt.manual_seed(3)
    a = F.dropout(x, 0.4).numpy()
    tt.manual_seed(3)
    np.testing.assert_array_equal(F.dropout(x, 0.4).numpy(), a)  # the mask comes from tt's generator
    assert set(np.unique(a)) == {0.0, np.float32(1 / 0.6)}
    with pytest.raises(ValueError, match="between 0 and 1"):
        F.dropout(x, 1.5)


def test_embedding_values_and_padding_gradient():
    w = T(rng.normal(size=(6, 3)), grad=True)
    idx = tt.tensor([[0, 2, 2], [5, 2, 1]])
    out = F.embedding(idx, w, padding_idx=2)
    np.testing.assert_array_equal(out.detach().numpy(), w.detach().numpy()[idx.numpy()])
    out.sum().backward()
    np.testing.assert_array_equal(w.grad.numpy()[:, 0], [1, 1, 0, 0, 0, 1])  # row 2 (padding) gets none
    with pytest.raises(IndexError):
        F.embedding(tt.tensor([6]), w)
    with pytest.raises(TypeError):
        F.embedding(tt.tensor([1.0]), w)


# ---- losses -------------------------------------------------------------------------------------------

CE_CASES = [  # (input shape, ignore some targets, weighted, label smoothing, reduction)
    ((5, 4), False, False, 0.0, "mean"), ((5, 4), True, False, 0.0, "sum"), ((5, 4), True, False, 0.2, "mean"),
    ((5, 4), True, True, 0.0, "mean"), ((5, 4), True, True, 0.3, "mean"), ((5, 4), False, True, 0.1, "none"),
    ((2, 3, 4, 2), True, False, 0.1, "mean"), ((2, 3, 4, 2), True, True, 0.1, "none"),
    ((4,), False, False, 0.1, "none"),
]


@pytest.mark.parametrize("shape,ignore,weighted,ls,reduction", CE_CASES)
def test_cross_entropy_class_targets(shape, ignore, weighted, ls, reduction):
    x = rng.normal(size=shape) * 2
    C = shape[0] if len(shape) == 1 else shape[1]
    t = rng.integers(0, C, size=() if len(shape) == 1 else (shape[0],) + shape[2:])
    if ignore:
        t.reshape(-1)[::3] = -1
    w = rng.uniform(0.5, 2, size=C) if weighted else None
    out = F.cross_entropy(T(x), tt.tensor(t), None if w is None else T(w), ignore_index=-1, reduction=reduction,
                          label_smoothing=ls)
    batched_x, batched_t = (x[None], t[None]) if len(shape) == 1 else (x, t)
    ref = ce_ref(batched_x, batched_t, w, -1, reduction, ls)
    np.testing.assert_allclose(out.numpy(), ref.reshape(t.shape) if reduction == "none" else ref, rtol=1e-10)
    wt = None if w is None else T(w)
    check_grads(lambda x: F.cross_entropy(x, tt.tensor(t), wt, ignore_index=-1, reduction=reduction,
                                          label_smoothing=ls), x)


@pytest.mark.parametrize("ls,weighted,reduction", [(0.0, False, "mean"), (0.2, True, "sum"), (0.1, False, "none")])
def test_cross_entropy_probability_targets(ls, weighted, reduction):
    x = rng.normal(size=(3, 4, 2))
    p = rng.dirichlet(np.ones(4), size=(3, 2)).transpose(0, 2, 1)  # (N, C, d) summing to 1 over C
    w = rng.uniform(0.5, 2, size=4) if weighted else None
    out = F.cross_entropy(T(x), T(p), None if w is None else T(w), reduction=reduction, label_smoothing=ls)
    np.testing.assert_allclose(out.numpy(), ce_probs_ref(x, p, w, reduction, ls), rtol=1e-10)
    check_grads(lambda x, p: F.cross_entropy(x, p, None if w is None else T(w), reduction=reduction,
                                             label_smoothing=ls), x, p)


def test_cross_entropy_is_stable_and_checks_arguments():
    x = np.array([[1000.0, 0.0, -1000.0], [-5e4, 5e4, 0.0]])
    t = np.array([1, 1])
    out = F.cross_entropy(tt.tensor(x, dtype=tt.float32), tt.tensor(t))
    assert np.isfinite(out.item())
    np.testing.assert_allclose(out.item(), ce_ref(x, t), rtol=1e-6)
    assert math.isnan(F.cross_entropy(T(x), tt.tensor([-100, -100])).item())  # all ignored: 0/0, as PyTorch
    bf = F.cross_entropy(tt.tensor(x[:1] / 100, dtype=tt.bfloat16), tt.tensor([0]))
    assert bf.dtype is tt.bfloat16
    with pytest.raises(ValueError, match="target of shape"):
        F.cross_entropy(T(x), tt.tensor([1, 1, 1]))
    with pytest.raises(IndexError):
        F.cross_entropy(T(x), tt.tensor([1, 3]))
    with pytest.raises(ValueError, match="reduction"):
        F.cross_entropy(T(x), tt.tensor(t), reduction="avg")


@given(st.integers(1, 6), st.integers(1, 5), st.floats(0, 0.5), st.booleans())
def test_fused_cross_entropy_matches_composite(n, c, ls, ignore):
    x = rng.normal(size=(n, c)) * 3
    t = rng.integers(0, c, size=n)
    if ignore:
        t[0] = -100
    a, b = T(x, grad=True), T(x, grad=True)
    fa = F._cross_entropy_fused(a, tt.tensor(t), -100, "sum", ls)
    fb = F._cross_entropy_composite(b, tt.tensor(t), None, -100, "sum", ls)
    np.testing.assert_allclose(fa.item(), fb.item(), rtol=1e-12, atol=1e-12)
    fa.backward(), fb.backward()
    np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), rtol=1e-10, atol=1e-12)


def test_nll_loss():
    logp = rng.normal(size=(6, 3))
    t = np.array([0, 2, -100, 1, 1, 2])
    w = np.array([0.5, 1.0, 2.0])  # the mean divides by the weights of the kept targets: 0.5+2+1+1+2
    picked = np.array([-w[c] * logp[i, c] if c != -100 else 0.0 for i, c in enumerate(t)])
    np.testing.assert_allclose(F.nll_loss(T(logp), tt.tensor(t), T(w)).item(), picked.sum() / 6.5, rtol=1e-12)
    np.testing.assert_allclose(F.nll_loss(T(logp), tt.tensor(t), reduction="none").numpy(),
                               [-logp[i, c] if c != -100 else 0 for i, c in enumerate(t)], rtol=1e-12)
    check_grads(lambda lp: F.nll_loss(lp, tt.tensor(t), T(w)), logp)
    with pytest.raises(TypeError, match="integer"):
        F.nll_loss(T(logp), T(np.zeros(6)))


def test_mse_and_bce_with_logits():
    x, y = rng.normal(size=(4, 3)), rng.normal(size=(4, 3))
    np.testing.assert_allclose(F.mse_loss(T(x), T(y)).item(), ((x - y) ** 2).mean(), rtol=1e-12)
    np.testing.assert_allclose(F.mse_loss(T(x), T(y), reduction="sum").item(), ((x - y) ** 2).sum(), rtol=1e-12)
    check_grads(lambda a, b: F.mse_loss(a, b, reduction="none"), x, y)
    z = np.array([[-200.0, -3.0, 0.5], [0.0, 4.0, 200.0]])
    t = np.array([[0.0, 1.0, 0.3], [1.0, 0.0, 1.0]])
    pw, w = np.array([1.0, 2.0, 0.5]), rng.uniform(0.5, 1.5, size=(2, 3))
    log_sig = lambda v: -np.logaddexp(0, -v)  # noqa: E731
    ref = -(pw * t * log_sig(z) + (1 - t) * log_sig(-z)) * w
    out = F.binary_cross_entropy_with_logits(T(z), T(t), T(w), reduction="none", pos_weight=T(pw))
    np.testing.assert_allclose(out.numpy(), ref, rtol=1e-12, atol=1e-15)  # -200 + 200 + 1e-87 cancels, as in torch
    assert np.isfinite(F.binary_cross_entropy_with_logits(tt.tensor(z).float(), tt.tensor(t).float()).item())
    zs = rng.normal(size=(2, 3))
    check_grads(lambda a, b: F.binary_cross_entropy_with_logits(a, b, pos_weight=T(pw)), zs, t)
    p = 1 / (1 + np.exp(-zs))
    np.testing.assert_allclose(F.binary_cross_entropy(T(p), T(t)).item(),
                               -(t * np.log(p) + (1 - t) * np.log(1 - p)).mean(), rtol=1e-10)


# ---- PyTorch as an oracle (skipped when it is not installed) ----------------------------------------

@pytest.mark.parametrize("shape,ignore,weighted,ls,reduction", CE_CASES)
def test_cross_entropy_against_torch(shape, ignore, weighted, ls, reduction):
    torch = pytest.importorskip("torch")
    x = rng.normal(size=shape)
    C = shape[0] if len(shape) == 1 else shape[1]
    t = rng.integers(0, C, size=() if len(shape) == 1 else (shape[0],) + shape[2:])
    if ignore and t.ndim:
        t.reshape(-1)[::2] = 1
    w = rng.uniform(0.5, 2, size=C) if weighted else None
    kw = dict(ignore_index=1 if ignore else -100, reduction=reduction, label_smoothing=ls)
    ours = F.cross_entropy(T(x), tt.tensor(t), None if w is None else T(w), **kw).numpy()
    theirs = torch.nn.functional.cross_entropy(torch.tensor(x), torch.tensor(t),
                                               None if w is None else torch.tensor(w), **kw).numpy()
    np.testing.assert_allclose(ours, theirs, rtol=1e-10)
    p = torch.softmax(torch.tensor(rng.normal(size=shape)), 0 if len(shape) == 1 else 1)
    kw.pop("ignore_index")
    theirs = torch.nn.functional.cross_entropy(torch.tensor(x), p, None if w is None else torch.tensor(w), **kw)
    ours = F.cross_entropy(T(x), T(p.numpy()), None if w is None else T(w), **kw)
    np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-10)
