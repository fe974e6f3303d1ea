"""The kv-cache's attention kernel (F.decode_attention, fused.DecodeAttention, ops_c/decode_attention.cpp).

Three references: a float64 NumPy softmax written here, the math path (scaled_dot_product_attention with
the bottom-right causal + padding mask, run inside fused.disabled()), and backend/ref.py for the C
kernel called directly. Sizes are odd and pass every threshold of the kernel: head sizes around the
16-lane sums, more than one query row, caches read in place from a bigger buffer, grouped heads,
padding starts (one past every key, so a row sees nothing), and enough (batch, head) pairs for two
threads. The CUDA twin is checked against backend/ref.py in tests/test_cuda.py.
"""
import math

import numpy as np
import pytest

import tinytensor as tt
import tinytensor.nn.functional as F
from tinytensor import fused
from tinytensor.backend import cpu, ref
from tinytensor.dtype import bfloat16, float32, float64
from models.gpt2 import GPT, GPTConfig

TOL = {float64: 1e-11, float32: 2e-6, bfloat16: 2e-2}


def reference(q, k, v, start, scale):
    """float64 NumPy: q (B, nh, T, E), k, v (B, nkv, S, E), start (B,) or None -> (B, nh, T, E)."""
    B, nh, T, E = q.shape
    S = k.shape[2]
    k, v = (np.repeat(a, nh // k.shape[1], axis=1) for a in (k, v))
    out = np.zeros(q.shape)
    for b in range(B):
        lo = 0 if start is None else max(start[b], 0)
        for i in range(T):
            hi = S - T + i + 1
            if lo >= hi:
                continue  # sees no key: zeros
            s = np.einsum("he,hje->hj", q[b, :, i], k[b, :, lo:hi]) * scale  # (nh, keys)
            p = np.exp(s - s.max(-1, keepdims=True))
            out[b, :, i] = np.einsum("hj,hje->he", p / p.sum(-1, keepdims=True), v[b, :, lo:hi])
    return out


def cache_views(rng, B, nkv, S, E, cap, dtype):
    """k, v (B, nkv, S, E) as the cache holds them: the first S rows of (B, nkv, cap, E) buffers."""
    bufs = [tt.tensor(rng.standard_normal((B, nkv, cap, E)), dtype=dtype) for _ in range(2)]
    return [b[:, :, :S] for b in bufs]


CASES = [  # B, nh, nkv, T, S, E, cap, start
    (1, 1, 1, 1, 1, 1, 1, None),
    (2, 4, 2, 1, 37, 17, 40, [0, 5]),
    (3, 6, 3, 3, 70, 33, 80, [2, 0, 70]),     # row 2 sees nothing
    (2, 8, 1, 1, 300, 64, 301, [299, 1]),     # multi-query attention, one key left in row 0
    (2, 2, 2, 9, 9, 80, 16, [4, 0]),          # a padded prefill: T == S with a start
    (1, 3, 3, 5, 129, 16, 129, None),
    (4, 4, 4, 2, 150, 48, 160, [0, 1, 2, 3]),  # 16 (batch, head) pairs of 15k multiply-adds: threads split them
]


@pytest.mark.parametrize("B, nh, nkv, T, S, E, cap, start", CASES)
@pytest.mark.parametrize("dtype", [float64, float32], ids=str)
def test_kernel_matches_numpy_and_the_math_path(B, nh, nkv, T, S, E, cap, start, dtype):
    rng = np.random.default_rng(B * 100 + S)
    q = tt.tensor(rng.standard_normal((B, nh, T, E)), dtype=dtype)
    k, v = cache_views(rng, B, nkv, S, E, cap, dtype)
    st = None if start is None else tt.tensor(start, dtype=tt.int64)
    scale = 1 / math.sqrt(E)
    want = reference(*(x.to(tt.float64).numpy() for x in (q, k, v)), start, scale)
    threads = tt.get_num_threads()
    tt.set_num_threads(2)
    try:
        got = F.decode_attention(q, k, v, start=st).to(tt.float64).numpy()
    finally:
        tt.set_num_threads(threads)
    with fused.disabled():
        math_path = F.decode_attention(q, k, v, start=st).to(tt.float64).numpy()
    np.testing.assert_allclose(got, want, rtol=TOL[dtype], atol=TOL[dtype])
    np.testing.assert_allclose(got, math_path, rtol=TOL[dtype], atol=TOL[dtype])


def test_bfloat16_computes_in_float32():
    rng = np.random.default_rng(3)
    q = tt.tensor(rng.standard_normal((2, 4, 1, 24)), dtype=bfloat16)
    k, v = cache_views(rng, 2, 2, 19, 24, 20, bfloat16)
    got = F.decode_attention(q, k, v, start=tt.tensor([3, 0])).to(tt.float64).numpy()
    want = reference(*(x.to(tt.float64).numpy() for x in (q, k, v)), [3, 0], 1 / math.sqrt(24))
    np.testing.assert_allclose(got, want, rtol=TOL[bfloat16], atol=TOL[bfloat16])


@pytest.mark.parametrize("dtype", [float64, float32], ids=str)
def test_c_kernel_matches_backend_ref(dtype):
    """The C kernel called directly on strided cache storage (row stride cap, an offset) against ref.py."""
    rng = np.random.default_rng(8)
    B, nh, nkv, T, S, E, cap, off = 3, 4, 2, 2, 45, 19, 50, 7
    q = rng.standard_normal(B * nh * T * E).astype(dtype.np)
    k, v = (rng.standard_normal(off + B * nkv * cap * E).astype(dtype.np)[off:] for _ in range(2))
    strides = (nkv * cap * E, cap * E, E)
    start = np.array([0, 44, 50], dtype=np.int64)
    outs = []
    for be in (cpu, ref):
        out = np.zeros(B * nh * T * E, dtype.np)
        be.decode_attention(out, dtype, q, k, v, start, B, nh, nkv, T, S, E, strides, strides, 0.3)
        outs.append(out)
    np.testing.assert_allclose(outs[0], outs[1], rtol=TOL[dtype], atol=TOL[dtype])
    assert not outs[0].reshape(B, nh, T, E)[2].any()  # row 2 starts past every key: zeros


def test_gradients_take_the_math_path():
    """With gradients wanted F.decode_attention runs the composite: they match float64 finite differences."""
    rng = np.random.default_rng(5)
    q = tt.tensor(rng.standard_normal((1, 2, 2, 3)), dtype=tt.float64, requires_grad=True)
    k = tt.tensor(rng.standard_normal((1, 1, 4, 3)), dtype=tt.float64, requires_grad=True)
    v = tt.tensor(rng.standard_normal((1, 1, 4, 3)), dtype=tt.float64)
    w = rng.standard_normal((1, 2, 2, 3))
    st = tt.tensor([1])
    (F.decode_attention(q, k, v, start=st) * tt.tensor(w)).sum().backward()

    def loss(qa, ka):
        return float((reference(qa, ka, v.detach().numpy(), [1], 1 / math.sqrt(3)) * w).sum())

    for leaf, i in ((q, 0), (k, 1)):
        base = [q.detach().numpy().copy(), k.detach().numpy().copy()]
        num = np.zeros(base[i].shape)
        for idx in np.ndindex(*base[i].shape):
            for sign in (1, -1):
                moved = [a.copy() for a in base]
                moved[i][idx] += sign * 1e-6
                num[idx] += sign * loss(*moved) / 2e-6
        np.testing.assert_allclose(leaf.grad.numpy(), num, rtol=1e-6, atol=1e-7)


def test_the_kernel_itself_has_no_backward():
    q = tt.randn(1, 1, 1, 4, requires_grad=True)
    k, v = tt.randn(1, 1, 3, 4), tt.randn(1, 1, 3, 4)
    out = fused.DecodeAttention.apply(q, k, v, None, 0.5)
    with pytest.raises(RuntimeError, match="no backward"):
        out.sum().backward()


def test_bad_shapes_are_value_errors():
    q, k = tt.randn(1, 4, 2, 8), tt.randn(1, 3, 5, 8)
    with pytest.raises(ValueError, match="multiple of n_kv"):
        F.decode_attention(q, k, k)
    with pytest.raises(ValueError, match="T <= S"):
        F.decode_attention(tt.randn(1, 3, 6, 8), k, k)
    with pytest.raises(ValueError, match="start must be int64"):
        F.decode_attention(tt.randn(1, 3, 2, 8), k, k, start=tt.tensor([0, 1]))


def test_model_decoding_runs_the_kernel(monkeypatch):
    """A decode step of GPT with a cache reaches backend.decode_attention, once per layer, on the cache in place."""
    calls = []
    backend = tt.zeros(1)._buf.backend  # the C kernels (or ref.py under TINYTENSOR_TEST_BACKEND=ref)
    real = backend.decode_attention

    def spy(out, dtype, q, k, v, *rest):
        calls.append(k)
        return real(out, dtype, q, k, v, *rest)

    monkeypatch.setattr(backend, "decode_attention", spy)
    tt.manual_seed(0)
    model = GPT(GPTConfig(block_size=16, vocab_size=11, n_layer=3, n_head=2, n_embd=8)).eval()
    cache = model.make_cache(2)
    with tt.no_grad():
        model(tt.zeros(2, 4, dtype=tt.int64), cache=cache)  # a prefill from empty: the causal prefill kernel
        assert not calls
        model(tt.zeros(2, 1, dtype=tt.int64), cache=cache)
    assert len(calls) == 3
    assert all(np.shares_memory(c, cache.k[i]._buf.data) for i, c in enumerate(calls))  # read in place, no copy
