"""The fused kernels (tinytensor/fused.py) against the composites they replace, and the C kernels
against backend/ref.py.

Each case runs twice on the same values: with the fused kernels, and inside `fused.disabled()`
(the Tensor-op composite). Outputs and the gradients of every input (through a random weighting
of the output, so no gradient is trivially constant) must agree: tightly in float64, to float32
rounding in float32, loosely for bfloat16. Inputs come in strided layouts too (the kernels copy
those to contiguous first). AdamW is compared over several steps of two identical models.
"""
import math

import numpy as np
import pytest
from hypothesis import given, strategies as st

import tinytensor as tt
import tinytensor.nn.functional as F
from tinytensor import fused
from tinytensor.backend import base, cpu, ref

TOL = {tt.float64: 1e-10, tt.float32: 2e-5, tt.bfloat16: 3e-2}


def run(fn, arrays, dtype, layout="contiguous", ints=()):
    """fn's output and the gradients of its float inputs, as float64 NumPy arrays."""
    leaves, args = [], []
    for a in arrays:
        if layout == "transposed" and a.ndim >= 2:
            leaf = tt.tensor(np.ascontiguousarray(np.swapaxes(a, -1, -2)), dtype=dtype, requires_grad=True)
            args.append(leaf.transpose(-1, -2))
        else:
            leaf = tt.tensor(a, dtype=dtype, requires_grad=True)
            args.append(leaf)
        leaves.append(leaf)
    out = fn(*args, *ints)
    weights = np.random.default_rng(7).standard_normal(tuple(out.shape))
    (out * tt.tensor(weights, dtype=out.dtype)).sum().backward()
    grads = [np.asarray(lf.grad.float().numpy(), dtype=np.float64) if lf.grad is not None else None for lf in leaves]
    return np.asarray(out.detach().float().numpy(), dtype=np.float64), grads


def assert_fused_matches_composite(fn, arrays, dtype, layout="contiguous", ints=()):
    got, got_grads = run(fn, arrays, dtype, layout, ints)
    with fused.disabled():
        want, want_grads = run(fn, arrays, dtype, layout, ints)
    tol = TOL[dtype]
    np.testing.assert_allclose(got, want, rtol=tol, atol=tol)
    for g, w in zip(got_grads, want_grads):
        assert (g is None) == (w is None)
        if g is not None:
            np.testing.assert_allclose(g, w, rtol=tol, atol=tol * max(1.0, float(np.abs(w).max(initial=0))))


rows_and_n = st.tuples(st.lists(st.integers(1, 4), max_size=2).map(tuple), st.integers(1, 70))
dtypes = st.sampled_from([tt.float64, tt.float32])
layouts = st.sampled_from(["contiguous", "transposed"])


def normal(shape, seed=0, scale=2.0):
    return np.random.default_rng(seed).standard_normal(shape) * scale


ROW_OPS = {
    "softmax": lambda x: x.softmax(-1),
    "log_softmax": lambda x: F.log_softmax(x, -1),
    "gelu": lambda x: F.gelu(x),
    "gelu_tanh": lambda x: F.gelu(x, approximate="tanh"),
    "layer_norm_plain": lambda x: F.layer_norm(x, x.shape[-1:]),
    "rms_norm_plain": lambda x: F.rms_norm(x, x.shape[-1:], eps=1e-6),
}


@pytest.mark.parametrize("name", sorted(ROW_OPS))
@given(shape=rows_and_n, dtype=dtypes, layout=layouts)
def test_row_op_matches_composite(name, shape, dtype, layout):
    lead, n = shape
    assert_fused_matches_composite(ROW_OPS[name], [normal(lead + (n,))], dtype, layout)


@given(shape=rows_and_n, dtype=dtypes, layout=layouts, bias=st.booleans())
def test_layer_norm_with_parameters_matches_composite(shape, dtype, layout, bias):
    lead, n = shape
    arrays = [normal(lead + (n,)), normal((n,), 1) + 1] + ([normal((n,), 2)] if bias else [])
    fn = (lambda x, w, b: F.layer_norm(x, (n,), w, b, eps=1e-5)) if bias else (lambda x, w: F.layer_norm(x, (n,), w))
    assert_fused_matches_composite(fn, arrays, dtype, layout)


@given(shape=rows_and_n, dtype=dtypes, layout=layouts)
def test_rms_norm_with_weight_matches_composite(shape, dtype, layout):
    lead, n = shape
    assert_fused_matches_composite(lambda x, w: F.rms_norm(x, (n,), w, eps=1e-6),
                                   [normal(lead + (n,)), normal((n,), 1)], dtype, layout)


@given(lead=st.lists(st.integers(1, 4), max_size=3).map(tuple), n_in=st.integers(1, 40), n_out=st.integers(1, 40),
       dtype=dtypes, layout=layouts, bias=st.booleans())
def test_linear_matches_composite(lead, n_in, n_out, dtype, layout, bias):
    """F.linear's one-matmul path against reshape-transpose-matmul-add, any number of leading dims."""
    arrays = [normal(lead + (n_in,)), normal((n_out, n_in), 1)] + ([normal((n_out,), 2)] if bias else [])
    assert_fused_matches_composite(lambda x, w, b=None: F.linear(x, w, b), arrays, dtype, layout)


@given(m=st.integers(1, 40), c=st.integers(2, 60), smoothing=st.sampled_from([0.0, 0.1]),
       reduction=st.sampled_from(["mean", "sum", "none"]), dtype=dtypes, layout=layouts)
def test_cross_entropy_matches_composite(m, c, smoothing, reduction, dtype, layout):
    rng = np.random.default_rng(m * 100 + c)
    target = rng.integers(0, c, m)
    target[rng.random(m) < 0.2] = -100   # some ignored positions
    target[0] = 1                        # at least one counted, so the mean is defined
    t = tt.tensor(target)
    assert_fused_matches_composite(
        lambda x: F.cross_entropy(x, t, reduction=reduction, label_smoothing=smoothing),
        [normal((m, c), scale=3.0)], dtype, layout)


def test_cross_entropy_with_spatial_dims_matches_composite():
    target = tt.tensor(np.random.default_rng(1).integers(0, 5, (3, 4)))
    assert_fused_matches_composite(lambda x: F.cross_entropy(x, target), [normal((3, 5, 4))], tt.float64)


def test_cross_entropy_target_out_of_range_is_an_index_error():
    with pytest.raises(IndexError, match="target 7 is out of bounds for 5 classes"):
        F.cross_entropy(tt.zeros(2, 5), tt.tensor([1, 7]))


@given(b=st.integers(1, 2), h=st.integers(1, 3), t=st.integers(1, 20), s=st.integers(1, 40),
       d=st.integers(1, 17), causal=st.booleans(), scale=st.sampled_from([None, 0.3, -0.7]), dtype=dtypes,
       layout=layouts)
def test_attention_matches_composite(b, h, t, s, d, causal, scale, dtype, layout):
    """Any scale, a negative one too (the kernel's row maximum then comes from the scores' minimum)."""
    arrays = [normal((b, h, t, d), 1, 1.0), normal((b, h, s, d), 2, 1.0), normal((b, h, s, d), 3)]
    assert_fused_matches_composite(
        lambda q, k, v: F.scaled_dot_product_attention(q, k, v, is_causal=causal, scale=scale), arrays, dtype, layout)


@pytest.mark.parametrize("scale", [1.0, -1.0])
def test_attention_with_large_scores_stays_finite(scale):
    """Scores of +-2000 overflow exp() unless each row is shifted by its true maximum (of scale * q.k)."""
    q = normal((1, 1, 6, 4), 1, 1.0) * 30
    k, v = normal((1, 1, 24, 4), 2, 1.0) * 30, normal((1, 1, 24, 4), 3)
    assert_fused_matches_composite(lambda q, k, v: F.scaled_dot_product_attention(q, k, v, scale=scale),
                                   [q, k, v], tt.float64)


@pytest.mark.parametrize("name", ["softmax", "gelu_tanh", "layer_norm_plain"])
def test_bfloat16_matches_composite(name):
    assert_fused_matches_composite(ROW_OPS[name], [normal((6, 40))], tt.bfloat16)


def test_bfloat16_attention_matches_composite():
    arrays = [normal((1, 2, 9, 8), 1, 0.5), normal((1, 2, 9, 8), 2, 0.5), normal((1, 2, 9, 8), 3)]
    assert_fused_matches_composite(lambda q, k, v: F.scaled_dot_product_attention(q, k, v, is_causal=True),
                                   arrays, tt.bfloat16)


def test_fused_paths_are_taken():
    """The fused Functions are what records the graph when they fit, and not inside disabled()."""
    x = tt.randn(4, 8, requires_grad=True)
    assert type(F.layer_norm(x, (8,)).grad_fn) is fused.LayerNorm
    assert type(x.softmax(-1).grad_fn) is fused.Softmax
    assert type(F.gelu(x, approximate="tanh").grad_fn) is fused.GELU
    assert type(F.linear(x, tt.randn(3, 8), tt.randn(3)).grad_fn) is fused.Linear
    assert type(F.cross_entropy(x, tt.tensor([0, 1, 2, 3])).grad_fn) is fused.CrossEntropy
    with fused.disabled():
        assert type(F.layer_norm(x, (8,)).grad_fn) is not fused.LayerNorm
    assert fused.enabled()


@pytest.mark.parametrize("opt,kwargs", [(tt.optim.AdamW, dict(lr=1e-2, weight_decay=0.1)),
                                        (tt.optim.Adam, dict(lr=1e-2, betas=(0.8, 0.99)))])
@pytest.mark.parametrize("dtype", [tt.float64, tt.float32])
def test_adamw_kernel_matches_composite(opt, kwargs, dtype):
    rng = np.random.default_rng(0)
    init = [rng.standard_normal(s) for s in [(5, 3), (3,), (17,)]]
    grads = [[rng.standard_normal(a.shape) for a in init] for _ in range(4)]

    def train():
        params = [tt.tensor(a, dtype=dtype, requires_grad=True) for a in init]
        o = opt(params, **kwargs)
        for step_grads in grads:
            for p, g in zip(params, step_grads):
                p.grad = tt.tensor(g, dtype=dtype)
            o.step()
        return [p.detach().numpy().astype(np.float64) for p in params], o

    got, o = train()
    with fused.disabled():
        want, _ = train()
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=TOL[dtype], atol=TOL[dtype])
    assert all(st_["step"] == 4 for st_ in o.state.values())


# ---- the C kernels against the NumPy reference, called directly -----------------------------

def test_every_backend_has_every_fused_kernel():
    for be in (cpu, ref):
        assert all(callable(getattr(be, name, None)) for name in base.FUSED)


def call_both(name, dtype, make_args):
    """Run the primitive `name` on cpu and ref with fresh copies of the same arrays; return both arg lists."""
    results = []
    for be in (cpu, ref):
        args = make_args()
        getattr(be, name)(*args)
        results.append(args)
    return results


@pytest.mark.parametrize("dtype", [tt.float32, tt.float64, tt.bfloat16])
def test_c_cross_entropy_and_layer_norm_match_reference(dtype):
    rng = np.random.default_rng(3)
    rows, n = 13, 37
    logits = rng.standard_normal(rows * n).astype(dtype.np)
    target = rng.integers(0, n, rows)
    target[2] = -1
    stat = np.float64 if dtype is tt.float64 else np.float32
    tol = TOL[dtype]
    got, want = call_both("cross_entropy", dtype, lambda: [
        np.zeros(rows, dtype.np), np.zeros(rows * n, dtype.np), dtype, logits, target, rows, n, -1, 0.05, 0.25])
    for i in (0, 1):
        np.testing.assert_allclose(got[i].astype(np.float64), want[i].astype(np.float64), rtol=tol, atol=tol)
    w, b = rng.standard_normal(n).astype(dtype.np), rng.standard_normal(n).astype(dtype.np)
    got, want = call_both("layer_norm", dtype, lambda: [
        np.zeros(rows * n, dtype.np), np.zeros(rows, stat), np.zeros(rows, stat), dtype, logits, w, b, rows, n, 1e-5])
    for i in (0, 1, 2):
        np.testing.assert_allclose(got[i].astype(np.float64), want[i].astype(np.float64), rtol=tol, atol=tol)


def test_c_attention_matches_reference_at_gpt_size():
    """One GPT-sized causal slice batch (T = 64, D = 16) in float32, forward and backward, against ref."""
    rng = np.random.default_rng(4)
    bh, t, d = 3, 64, 16
    q, k, v, go = (rng.standard_normal(bh * t * d).astype(np.float32) for _ in range(4))
    fwd = call_both("attention", tt.float32, lambda: [
        np.zeros(bh * t * d, np.float32), np.zeros(bh * t, np.float32), tt.float32, q, k, v, bh, t, t, d,
        1 / math.sqrt(d), True])
    for i in (0, 1):
        np.testing.assert_allclose(fwd[0][i], fwd[1][i], rtol=1e-5, atol=1e-5)
    out, lse = fwd[1][0], fwd[1][1]
    bwd = call_both("attention_backward", tt.float32, lambda: [
        np.zeros(bh * t * d, np.float32), np.zeros(bh * t * d, np.float32), np.zeros(bh * t * d, np.float32),
        tt.float32, go, q, k, v, out, lse, bh, t, t, d, 1 / math.sqrt(d), True])
    for i in (0, 1, 2):
        np.testing.assert_allclose(bwd[0][i], bwd[1][i], rtol=1e-4, atol=1e-4)
