"""The CUDA backend (backend/cuda.py, ops_cuda/*.cu).

Everywhere: every .cu file, with every template instantiation backend/cuda.py can ask for, compiles with
nvcc for sm_80 and sm_90 (skipped only when nvcc is missing); the op codes in the .cu files match
backend/base.py; without CuPy or a GPU, device="cuda" raises a RuntimeError saying what is missing and
importing tinytensor works. The GPU tests: every primitive and fused kernel against backend/ref.py
on strided, broadcast and offset views in every dtype it takes, device round trips, Module.to("cuda") and
a GPT training step whose losses match the CPU's. They run on the GPU with CuPy when there is one;
without, on tests/cuda_emulator (the same kernels built with g++ for the CPU, each CUDA thread a
coroutine), which checks their logic but not how they behave on real hardware.
"""
import math
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import tinytensor as tt
from models.gpt2 import GPT, GPTConfig
from models.llama import Llama, LlamaConfig
from tinytensor import backend
from tinytensor.backend import base, cuda, ref
from tinytensor.dtype import ALL, FLOATING, bool_, float32, float64, from_numpy_dtype, int16, int32, int64, uint8
from tinytensor.view import View, prod

ROOT = Path(__file__).resolve().parent.parent

import cuda_emulator  # noqa: E402  (tests/cuda_emulator: the GPU tests on a machine without one)

NON_BOOL = tuple(d for d in ALL if d is not bool_)


# ---- compile check and op codes (no GPU needed) ----------------------------------------------------

def _nvcc():
    found = shutil.which("nvcc")
    return found or ("/usr/local/cuda/bin/nvcc" if os.path.exists("/usr/local/cuda/bin/nvcc") else None)


def test_kernel_table_covers_every_cu_file():
    assert sorted(p.name for p in cuda.OPS_DIR.glob("*.cu")) == sorted(cuda.KERNELS)


@pytest.mark.skipif(_nvcc() is None, reason="nvcc is not installed")
def test_every_kernel_compiles_for_sm80_and_sm90(tmp_path):
    """One translation unit: each file in its own namespace, with every instantiation backend/cuda.py names.

    nvcc runs its front end and code generator (to PTX) for both architectures in one call, on two
    threads; what NVRTC compiles on the GPU machine is each file alone with one name expression."""
    parts = ['#include "common.cuh"']
    for file, exprs in sorted(cuda.KERNELS.items()):
        refs = ",\n".join(f"    (void*)&{e}" for e in exprs)
        parts.append(f'namespace tt_{file[:-3]} {{\n#include "{file}"\nvoid* instances[] = {{\n{refs}\n}};\n}}')
    (tmp_path / "all.cu").write_text("\n".join(parts) + "\n")
    cmd = [_nvcc(), "-std=c++17", f"-I{cuda.OPS_DIR}", "--fatbin", "--threads", "2",
           "-gencode", "arch=compute_80,code=compute_80", "-gencode", "arch=compute_90,code=compute_90",
           str(tmp_path / "all.cu"), "-o", str(tmp_path / "all.fatbin")]
    done = subprocess.run(cmd, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-5000:]


def _enum(file, name):
    body = re.search(rf"enum {name} \{{([^}}]*)\}}", (cuda.OPS_DIR / file).read_text()).group(1)
    return tuple(w.strip().lower() for w in body.split(",") if w.strip())


def test_op_codes_in_the_kernels_match_base():
    assert _enum("elementwise.cu", "UnaryOp") == base.UNARY_OPS
    assert _enum("elementwise.cu", "BinaryOp") == base.BINARY_OPS
    assert _enum("reduce.cu", "ReduceOp") == base.REDUCE_OPS
    codes = ("f64", "f32", "f16", "bf16", "i64", "i32", "i16", "i8", "u8", "b8")
    assert _enum("copy.cu", "DTypeCode") == codes and [d.code for d in ALL] == list(range(10))


# ---- without CuPy or a GPU ----------------------------------------------------------------------------

def _cuda_works():
    try:
        backend.get("cuda")
        return True
    except RuntimeError:
        return False


def test_cuda_without_cupy_or_gpu_is_a_clear_error():
    if _cuda_works():
        pytest.skip("this machine has CuPy and a GPU")
    with pytest.raises(RuntimeError, match="CuPy|GPU"):
        tt.zeros(2, device="cuda")
    with pytest.raises(RuntimeError, match="CuPy|GPU"):
        tt.ones(3).to("cuda")


def test_importing_tinytensor_needs_no_cupy():
    code = ("import sys; sys.modules['cupy'] = None\n"  # any `import cupy` now fails
            "import tinytensor as tt\n"
            "assert float(tt.ones(3).sum()) == 3\n"
            "try:\n    tt.zeros(2, device='cuda')\nexcept RuntimeError as e:\n    print(e)\n")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr
    assert "CuPy is not installed" in done.stdout and "pip install -e '.[cuda]'" in done.stdout


def test_cupy_without_a_gpu_says_so(monkeypatch):
    class NoDriver(Exception):
        pass

    def no_gpu():
        raise NoDriver("cudaErrorInsufficientDriver")

    fake = type(sys)("cupy")
    fake.cuda = type(sys)("cupy.cuda")
    fake.cuda.runtime = type(sys)("cupy.cuda.runtime")
    fake.cuda.runtime.getDeviceCount = no_gpu
    monkeypatch.setitem(sys.modules, "cupy", fake)
    monkeypatch.setattr(cuda, "cp", None)
    monkeypatch.delitem(backend._loaded, "cuda", raising=False)  # restored (on a GPU machine) after the test
    with pytest.raises(RuntimeError, match="no NVIDIA GPU and driver"):
        tt.zeros(2, device="cuda")
    fake.cuda.runtime.getDeviceCount = lambda: 0
    with pytest.raises(RuntimeError, match="finds no NVIDIA GPU"):
        tt.zeros(2, device="cuda")


# ---- on a GPU: the kernels against backend/ref.py ---------------------------------------------------

@pytest.fixture(scope="module")
def cu(tmp_path_factory):
    """The CUDA backend: on the GPU when there is one, else on the CPU emulator of the kernels."""
    if _cuda_works():
        yield backend.get("cuda")
        return
    if not cuda_emulator.available():
        pytest.skip("no GPU, and no g++ to build the kernels for the CPU emulator")
    with cuda_emulator.installed(cuda, tmp_path_factory.mktemp("cuda_emulator")):
        backend._loaded["cuda"] = cuda
        try:
            yield cuda
        finally:
            del backend._loaded["cuda"]


def values(rng, n, dtype, positive=False):
    if dtype is bool_:
        return rng.random(n) > 0.5
    if dtype.kind in "iu":
        return rng.integers(0 if positive or dtype.kind == "u" else -20, 20, n).astype(dtype.np)
    v = rng.standard_normal(n) * 2
    return (np.abs(v) + 0.1 if positive else v).astype(dtype.np)


def layouts(shape):
    """(name, storage size, View): a tensor of `shape` in the layouts kernels must read."""
    n, nd = prod(shape), len(shape)
    out = [("contiguous", n, View.contiguous(shape)), ("window", n + 3, View(shape, View.contiguous(shape).strides, 3))]
    if nd >= 2:
        swapped = View.contiguous(shape[:-2] + (shape[-1], shape[-2]))
        out.append(("transposed", n, swapped.permute(tuple(range(nd - 2)) + (nd - 1, nd - 2))))
    if nd >= 1:
        wide = shape[:-1] + (2 * shape[-1] + 1,)
        out.append(("stepped", prod(wide), View.contiguous(wide).slice(nd - 1, 1, 2 * shape[-1] + 1, 2)))
        out.append(("negative", n, View.contiguous(shape).flip([nd - 1])))
        out.append(("broadcast", prod(shape[1:]), View.contiguous((1,) + shape[1:]).expand(shape)))
    return out


TOL = {64: 1e-10, 32: 1e-5, 16: 1e-2}


def same(got, want, dtype, tol=None):
    if dtype.kind == "f":
        t = tol or TOL[dtype.bits]
        np.testing.assert_allclose(got.astype(np.float64), want.astype(np.float64), rtol=t, atol=t, equal_nan=True)
    else:
        np.testing.assert_array_equal(got, want)


def both(cu, fn, arrays, outputs, tol=None):
    """fn(backend, *arrays) on ref (host copies) and on CUDA (device copies); compare arrays[i], i in outputs.

    None stays None (an absent weight, an unwanted gradient)."""
    host = [None if a is None else a.copy() for a in arrays]
    fn(ref, *host)
    dev = [None if a is None else cu.from_numpy(a) for a in arrays]
    fn(cu, *dev)
    for i in outputs:
        if arrays[i] is None:
            continue
        dtype = from_numpy_dtype(arrays[i].dtype)
        same(cu.to_numpy(dev[i], View.contiguous((arrays[i].size,)), dtype), host[i], dtype, tol)


FLOAT_ONLY = ("exp", "log", "log1p", "expm1", "sqrt", "rsqrt", "sin", "cos", "tanh", "sigmoid", "erf",
              "reciprocal", "floor", "ceil", "round", "trunc")


@pytest.mark.parametrize("op", base.UNARY_OPS)
def test_unary(cu, op):
    dtypes = FLOATING if op in FLOAT_ONLY else ALL if op == "logical_not" else NON_BOOL
    rng = np.random.default_rng(0)
    for dtype in dtypes:
        out_dtype = bool_ if op == "logical_not" else dtype
        for shape in ((3, 5), (), (0, 4)):
            for _, size, v in layouts(shape):
                x = values(rng, max(size, 1), dtype, positive=op in ("log", "log1p", "sqrt", "rsqrt"))
                out = np.zeros(v.numel, out_dtype.np)
                both(cu, lambda be, o, x: be.unary(op, o, out_dtype, x, v, dtype), [out, x], [0])


def _binary_dtypes(op):
    if op == "div":
        return FLOATING
    return ALL if op in base.COMPARE_OPS or op in base.LOGICAL_OPS else NON_BOOL


@pytest.mark.parametrize("op", base.BINARY_OPS)
def test_binary(cu, op):
    rng = np.random.default_rng(1)
    out_bool = op in base.COMPARE_OPS or op in base.LOGICAL_OPS
    for dtype in _binary_dtypes(op):
        out_dtype = bool_ if out_bool else dtype
        ls = layouts((3, 5))
        for (_, na, av), (_, nb, bv) in zip(ls, ls[1:] + ls[:1]):
            a = values(rng, na, dtype, positive=op == "pow" and dtype.kind == "f")
            b = values(rng, nb, dtype, positive=op == "remainder")
            if op == "pow" and dtype.kind in "iu":
                a, b = (a % 5).astype(dtype.np), np.clip(b, -2 if dtype.kind == "i" else 0, 4).astype(dtype.np)
            if op in ("remainder", "floor_divide") and dtype.kind in "iu":  # x // 0 raises
                b = np.where(b == 0, 3, b).astype(dtype.np)
            out = np.zeros(15, out_dtype.np)
            both(cu, lambda be, o, a, b: be.binary(op, o, out_dtype, a, av, b, bv, dtype), [out, a, b], [0])


def test_where(cu):
    rng = np.random.default_rng(2)
    for dtype in ALL:
        ls = layouts((4, 3))
        for (_, nc, cv), (_, na, av), (_, nb, bv) in zip(ls, ls[1:] + ls[:1], ls[2:] + ls[:2]):
            c, a, b = values(rng, nc, bool_), values(rng, na, dtype), values(rng, nb, dtype)
            out = np.zeros(12, dtype.np)
            both(cu, lambda be, o, c, a, b: be.where(o, dtype, c, cv, a, av, b, bv), [out, c, a, b], [0])


@pytest.mark.parametrize("op", base.REDUCE_OPS)
def test_reduce(cu, op):
    rng = np.random.default_rng(3)
    # ref stores a sum or product through a Python int, which must fit the output dtype
    dtypes = {"sum": FLOATING + (int64, int32, int16, bool_), "prod": FLOATING + (int64,)}.get(op, NON_BOOL)
    for dtype in dtypes:
        out_dtype = int64 if op.startswith("arg") else dtype
        for shape in ((4, 6, 5), (300,), ()):
            for n_reduce in range(0 if not op.startswith("arg") or not shape else 1, len(shape) + 1):
                for _, size, v in layouts(shape):
                    x = values(rng, size, dtype)
                    if op == "prod" and dtype.kind == "f":
                        x = (np.abs(x.astype(np.float64)) * 0.1 + 0.95).astype(dtype.np)  # products stay in range
                    out = np.zeros(max(prod(shape[:len(shape) - n_reduce]), 1), out_dtype.np)
                    both(cu, lambda be, o, x: be.reduce(op, o, out_dtype, x, v, dtype, n_reduce), [out, x], [0],
                         tol=1e-4 if dtype is float32 and op in ("sum", "prod") else None)


def test_reduce_nan_wins(cu):
    x = np.array([1.0, np.nan, 3.0, np.nan, -1.0], np.float32)
    for op in ("max", "min", "argmax", "argmin", "sum"):
        out_dtype = int64 if op.startswith("arg") else float32
        out = np.zeros(1, out_dtype.np)
        both(cu, lambda be, o, x: be.reduce(op, o, out_dtype, x, View.contiguous((5,)), float32, 1), [out, x], [0])


@pytest.mark.parametrize("tiled", [False, True])
def test_matmul(cu, tiled):
    rng = np.random.default_rng(4)
    cuda.use_tiled_matmul(tiled)
    try:
        for dtype in ALL:
            for batch, m, k, n in (((), 5, 7, 3), ((2,), 70, 33, 65), ((2, 3), 4, 1, 6)):
                ls_a, ls_b = layouts(batch + (m, k)), layouts(batch + (k, n))
                for (_, na, av), (_, nb, bv) in zip(ls_a, ls_b[1:] + ls_b[:1]):
                    a, b = values(rng, na, dtype), values(rng, nb, dtype)
                    out = np.zeros(prod(batch) * m * n, dtype.np)
                    tol = {64: 1e-10, 32: 1e-4, 16: 3e-2}[dtype.bits] if dtype.kind == "f" else None
                    both(cu, lambda be, o, a, b: be.matmul(o, dtype, a, av, b, bv), [out, a, b], [0], tol)
    finally:
        cuda.use_tiled_matmul(False)


def test_copy_casts_between_every_pair_of_dtypes(cu):
    rng = np.random.default_rng(5)
    dv = View((3, 4), (8, 2), 3)  # a strided destination
    for src_dtype in ALL:
        for dst_dtype in ALL:
            for _, size, sv in layouts((3, 4)):
                s = values(rng, size, src_dtype, positive=dst_dtype is uint8)
                d = values(rng, 27, dst_dtype)
                both(cu, lambda be, d, s: be.copy(d, dv, dst_dtype, s, sv, src_dtype), [d, s], [0])


def test_fill(cu):
    dv = View((3, 4), (-8, 2), 16)  # a strided destination walked backwards
    for dtype in ALL:
        for value in (0, 1, 7, 2.5, True, -3, 2 ** 62 + 1):
            if (value == -3 and dtype.kind == "u") or (isinstance(value, int) and value > 127 and dtype.bits < 64):
                continue
            d = values(np.random.default_rng(6), 27, dtype)
            both(cu, lambda be, d: be.fill(d, dv, dtype, value), [d], [0])


def test_gather_and_index_select(cu):
    rng = np.random.default_rng(7)
    for dtype in ALL:
        for _, size, xv in layouts((4, 5)):
            x = values(rng, size, dtype)
            for dim in (0, 1):
                ishape = (3, 5) if dim == 0 else (4, 3)
                idx = rng.integers(0, 4 if dim == 0 else 5, 15).astype(np.int64)
                both(cu, lambda be, o, x, i: be.gather(o, dtype, x, xv, dim, i, View.contiguous(ishape)),
                     [np.zeros(12 if dim else 15, dtype.np), x, idx], [0])
                iv = View((3,), (-2,), 6)  # a 1-D index walked backwards with a step
                sel = (3, 5) if dim == 0 else (4, 3)
                both(cu, lambda be, o, x, i: be.index_select(o, dtype, x, xv, dim, i, iv),
                     [np.zeros(prod(sel), dtype.np), x, idx], [0])


def test_scatter_add_and_index_add(cu):
    rng = np.random.default_rng(8)
    ov = View((4, 5), (1, 8), 2)  # a transposed, offset destination
    for dtype in ALL:
        tol = 5e-2 if dtype.bits == 16 and dtype.kind == "f" else None
        for dim in (0, 1):
            ishape = (7, 5) if dim == 0 else (4, 7)
            idx = rng.integers(0, 4 if dim == 0 else 5, 35).astype(np.int64)  # many repeats: atomics collide
            for _, size, sv in layouts(ishape):
                o, src = values(rng, 40, dtype), values(rng, size, dtype)
                both(cu, lambda be, o, i, s: be.scatter_add(o, ov, dtype, dim, i, View.contiguous(ishape), s, sv),
                     [o, idx, src], [0], tol)
                both(cu, lambda be, o, i, s: be.index_add(o, ov, dtype, dim, i, View((7,), (3,), 1), s, sv),
                     [o, idx, src], [0], tol)


# ---- on a GPU: the fused kernels against backend/ref.py ---------------------------------------------

def _stat(dtype):
    return np.float64 if dtype is float64 else np.float32


FUSED_TOL = {64: 1e-9, 32: 2e-5, 16: 2e-2}


@pytest.mark.parametrize("dtype", FLOATING, ids=str)
def test_softmax_and_cross_entropy(cu, dtype):
    rng = np.random.default_rng(9)
    tol = FUSED_TOL[dtype.bits]
    for rows, n in ((5, 7), (3, 300)):
        x = values(rng, rows * n, dtype)
        x[:n // 2] = -np.inf  # a partly masked row
        for log in (False, True):
            both(cu, lambda be, o, x: be.softmax(o, dtype, x, rows, n, log), [np.zeros_like(x), x], [0], tol)
            y = np.zeros_like(x)
            ref.softmax(y, dtype, x, rows, n, log)
            gy = values(rng, rows * n, dtype)
            both(cu, lambda be, g, y, gy: be.softmax_backward(g, dtype, y, gy, rows, n, log),
                 [np.zeros_like(x), y, gy], [0], tol)
        x = values(rng, rows * n, dtype)
        target = rng.integers(0, n, rows).astype(np.int64)
        target[1] = -100
        for smoothing, scale in ((0.0, 1.0), (0.1, 0.25)):
            for loss in (np.zeros(rows, _stat(dtype)), np.zeros(rows, dtype.np)):  # the loss in either dtype
                both(cu, lambda be, ls, d, x, t: be.cross_entropy(ls, d, dtype, x, t, rows, n, -100, smoothing, scale),
                     [loss, np.zeros_like(x), x, target], [0, 1], tol)
                both(cu, lambda be, ls, x, t: be.cross_entropy(ls, None, dtype, x, t, rows, n, -100, smoothing, scale),
                     [loss, x, target], [0], tol)


@pytest.mark.parametrize("dtype", FLOATING, ids=str)
def test_layer_norm_and_rms_norm(cu, dtype):
    rng = np.random.default_rng(10)
    tol = FUSED_TOL[dtype.bits]
    for rows, n in ((5, 33), (3, 300), (0, 4)):
        x, gy = values(rng, max(rows * n, 1), dtype), values(rng, max(rows * n, 1), dtype)
        stats = [np.zeros(max(rows, 1), _stat(dtype)) for _ in range(2)]  # mean, rstd
        for has_w, has_b in ((True, True), (False, False), (True, False)):
            w = values(rng, n, dtype) if has_w else None
            b = values(rng, n, dtype) if has_b else None
            both(cu, lambda be, o, m, r, x, w, b: be.layer_norm(o, m, r, dtype, x, w, b, rows, n, 1e-5),
                 [np.zeros_like(x), *stats, x, w, b], [0, 1, 2], tol)
            ref.layer_norm(np.zeros_like(x), *stats, dtype, x, w, b, rows, n, 1e-5)
            gw, gb = (np.zeros(n, dtype.np) if has else None for has in (has_w, has_b))
            both(cu, lambda be, gx, gw, gb, gy, x, m, r, w: be.layer_norm_backward(gx, gw, gb, dtype, gy, x, m, r, w,
                                                                                   rows, n),
                 [np.zeros_like(x), gw, gb, gy, x, *stats, w], [0, 1, 2], tol)
            both(cu, lambda be, o, r, x, w: be.rms_norm(o, r, dtype, x, w, rows, n, 1e-6),
                 [np.zeros_like(x), stats[1], x, w], [0, 1], tol)
            ref.rms_norm(np.zeros_like(x), stats[1], dtype, x, w, rows, n, 1e-6)
            both(cu, lambda be, gx, gw, gy, x, r, w: be.rms_norm_backward(gx, gw, dtype, gy, x, r, w, rows, n),
                 [np.zeros_like(x), gw, gy, x, stats[1], w], [0, 1], tol)


@pytest.mark.parametrize("dtype", FLOATING, ids=str)
def test_gelu(cu, dtype):
    rng = np.random.default_rng(11)
    x, gy = values(rng, 1000, dtype), values(rng, 1000, dtype)
    for tanh in (False, True):
        both(cu, lambda be, o, x: be.gelu(o, dtype, x, 1000, tanh), [np.zeros_like(x), x], [0], FUSED_TOL[dtype.bits])
        both(cu, lambda be, g, gy, x: be.gelu_backward(g, dtype, gy, x, 1000, tanh), [np.zeros_like(x), gy, x], [0],
             FUSED_TOL[dtype.bits])


@pytest.mark.parametrize("dtype", FLOATING, ids=str)
@pytest.mark.parametrize("bh, t, s, d", [(3, 5, 7, 16), (2, 70, 70, 8), (1, 40, 9, 80), (2, 3, 3, 1)])
def test_attention(cu, dtype, bh, t, s, d):
    rng = np.random.default_rng(12)
    tol = {64: 1e-9, 32: 1e-4, 16: 3e-2}[dtype.bits]
    q, k, v = (values(rng, bh * m * d, dtype) for m in (t, s, s))
    go = values(rng, bh * t * d, dtype)
    scale = 1 / math.sqrt(d)
    for causal in (False, True):
        out, lse = np.zeros(bh * t * d, dtype.np), np.zeros(bh * t, _stat(dtype))
        both(cu, lambda be, o, lse, q, k, v: be.attention(o, lse, dtype, q, k, v, bh, t, s, d, scale, causal),
             [out, lse, q, k, v], [0, 1], tol)
        ref.attention(out, lse, dtype, q, k, v, bh, t, s, d, scale, causal)
        grads = [np.zeros(bh * m * d, dtype.np) for m in (t, s, s)]
        both(cu, lambda be, gq, gk, gv, go, q, k, v, o, lse: be.attention_backward(
            gq, gk, gv, dtype, go, q, k, v, o, lse, bh, t, s, d, scale, causal),
            grads + [go, q, k, v, out, lse], [0, 1, 2], tol)


@pytest.mark.parametrize("dtype", FLOATING, ids=str)
@pytest.mark.parametrize("b, nh, nkv, t, s, d, cap", [(2, 4, 2, 1, 300, 17, 301), (3, 3, 3, 3, 70, 130, 72),
                                                      (1, 2, 1, 5, 5, 8, 5)])
def test_decode_attention(cu, dtype, b, nh, nkv, t, s, d, cap):
    """The kv-cache kernel on cache buffers of cap rows (s used): several key tiles (s > 128 threads), more
    channels than threads (d 130), grouped heads, and starts that leave a query no key at all."""
    rng = np.random.default_rng(13)
    tol = {64: 1e-9, 32: 1e-4, 16: 3e-2}[dtype.bits]
    q = values(rng, b * nh * t * d, dtype)
    k, v = (values(rng, b * nkv * cap * d, dtype) for _ in range(2))
    strides = (nkv * cap * d, cap * d, d)
    for start in (None, np.array([0, s - 1, s][:b], dtype=np.int64)):
        both(cu, lambda be, o, q, k, v, st: be.decode_attention(o, dtype, q, k, v, st, b, nh, nkv, t, s, d, strides,
                                                                strides, 1 / math.sqrt(d)),
             [np.zeros(b * nh * t * d, dtype.np), q, k, v, start], [0], tol)


@pytest.mark.parametrize("dtype", FLOATING, ids=str)
def test_adamw_steps_many_tensors_in_one_launch(cu, dtype):
    rng = np.random.default_rng(13)
    sizes = (5, 0, 300, 1)
    arrays = [values(rng, n, dtype, positive=(i == 3)) for i in range(4) for n in sizes]  # p, g, m, v per size
    n = len(sizes)

    def step(be, *a):
        be.adamw(list(a[:n]), list(a[n:2 * n]), list(a[2 * n:3 * n]), list(a[3 * n:]), dtype, 1e-2, 0.9, 0.99,
                 1e-8, 0.1, 3)
    both(cu, step, arrays, [i for i in range(4 * n) if i // n != 1], FUSED_TOL[dtype.bits])


# ---- on a GPU: tensors and modules on device "cuda" --------------------------------------------------

def test_to_cuda_and_back_keeps_values_dtypes_and_views(cu):
    base_t = tt.arange(24).reshape(2, 3, 4)
    for dtype in ALL:
        t = base_t.to(dtype)
        for view in (t, t.transpose(0, 2), t[:, ::-1, 1::2], t[0, 1], t[:, :0], t[:1].expand(5, 3, 4)):
            c = view.cuda()
            assert c.device == "cuda" and c.dtype is dtype and c.shape == view.shape
            np.testing.assert_array_equal(c.cpu().numpy(), view.numpy())
            np.testing.assert_array_equal(view.to("cuda").to("cpu").numpy(), view.numpy())
    h = tt.randn(3, 4).to("cuda", tt.float16)
    assert h.device == "cuda" and h.dtype is tt.float16


def test_ops_on_cuda_match_the_cpu(cu):
    tt.manual_seed(0)
    a, b = tt.randn(4, 5), tt.randn(5, 3)
    idx = tt.tensor([2, 0, 2])

    def f(a, b, idx):
        y = (a @ b).relu() + a[:, 1:4] * 0.5 + a.T[::2].sum(dim=0, keepdim=True).T
        z = a.softmax(dim=-1)[idx] - a.max(dim=0).values
        return y.exp().mean() + z.abs().sum() + tt.where(a > 0, a, -a).argmax(dim=1).float().sum()
    np.testing.assert_allclose(f(a.cuda(), b.cuda(), idx.cuda()).item(), f(a, b, idx).item(), rtol=1e-5)


def test_gradients_flow_back_across_devices(cu):
    x = tt.randn(3, 4, requires_grad=True)
    y = (x.cuda() * tt.arange(4.0, device="cuda")).sum()
    y.backward()
    assert x.grad.device == "cpu"
    np.testing.assert_allclose(x.grad.numpy(), np.broadcast_to(np.arange(4.0), (3, 4)))


def test_module_to_cuda(cu):
    tt.manual_seed(0)
    layer = tt.nn.Linear(5, 3)
    x = tt.randn(2, 5)
    want = layer(x).detach().numpy()
    w = layer.weight
    layer(x).sum().backward()
    grad = w.grad.numpy().copy()
    assert layer.to("cuda") is layer and layer.weight is w and w.device == "cuda"
    assert w.grad.device == "cuda"  # the gradient goes with its parameter
    np.testing.assert_array_equal(w.grad.cpu().numpy(), grad)
    np.testing.assert_allclose(layer(x.cuda()).detach().cpu().numpy(), want, rtol=1e-5, atol=1e-6)
    assert layer.cpu() is layer and w.device == "cpu" and w.grad.device == "cpu"


def test_gpt_training_step_matches_the_cpu(cu):
    cfg = GPTConfig(block_size=16, vocab_size=37, n_layer=2, n_head=2, n_embd=16)
    rng = np.random.default_rng(0)
    x, y = (tt.tensor(rng.integers(0, 37, (3, 8))) for _ in range(2))
    losses = {}
    for device in ("cpu", "cuda"):
        tt.manual_seed(0)
        model = GPT(cfg).to(device)
        opt = model.configure_optimizers(0.1, 1e-2)
        losses[device] = []
        for _ in range(3):
            _, loss = model(x.to(device), y.to(device))
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses[device].append(loss.item())
        losses[device].append(model(x.to(device), y.to(device))[1].item())
    assert losses["cpu"][-1] < losses["cpu"][0]
    np.testing.assert_allclose(losses["cuda"][0], losses["cpu"][0], rtol=1e-5)
    # later steps may differ a little more: AdamW divides by sqrt(v), so tiny gradients move parameters by ~lr
    np.testing.assert_allclose(losses["cuda"], losses["cpu"], rtol=1e-3)


def test_cached_decoding_on_cuda_matches_the_cpu(cu):
    """The kv-cache path on the device (chapter 12): a left-padded prefill, then one token per step, with GQA
    and RoPE; the cache lives on the GPU and every logit matches the CPU's."""
    cfg = LlamaConfig(block_size=16, vocab_size=37, n_layer=2, n_head=4, n_kv_heads=2, n_embd=16, ffn_hidden=32)
    rng = np.random.default_rng(1)
    prompt, steps = tt.tensor(rng.integers(0, 37, (2, 5))), tt.tensor(rng.integers(0, 37, (2, 3)))
    logits = {}
    for device in ("cpu", "cuda"):
        tt.manual_seed(0)
        model = Llama(cfg).to(device).eval()
        cache = model.make_cache(2, pad=[2, 0])
        with tt.no_grad():
            got = [model(prompt.to(device), cache=cache)[0]]
            got += [model(steps[:, j:j + 1].to(device), cache=cache)[0] for j in range(3)]
        assert cache.k[0].device == device and cache.length == 8
        logits[device] = np.concatenate([g.cpu().numpy() for g in got], axis=1)
    np.testing.assert_allclose(logits["cuda"], logits["cpu"], rtol=1e-4, atol=1e-5)
