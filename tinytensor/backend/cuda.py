"""The CUDA backend (chapter 08): storage is a flat CuPy array on the GPU, and every primitive of base.py
(PRIMITIVES and FUSED) runs one of our templated kernels from ops_cuda/*.cu.

Kernels are templates instantiated per dtype through CuPy RawModule `name_expressions` (KERNELS below
lists them all; the nvcc compile test instantiates every one). Each is compiled by NVRTC the first time
it is needed, once per device, and CuPy keeps the binary in its on-disk cache.
Operands reach a kernel as (pointer, storage offset) plus one small int64 array per call holding the
shape and every operand's strides, after merging the dims that all operands step through as one.

Matmul: float64, float32 and float16 go to cuBLAS through cupy.matmul by default. For the chapter,
`TINYTENSOR_CUDA_MATMUL=tiled` in the environment (read at import) or `use_tiled_matmul(True)` switches
float32 to our own tiled shared-memory SGEMM (ops_cuda/matmul.cu); bfloat16, integers and bool always
use a plain kernel of ours.
bfloat16: CuPy has no such dtype, so a bfloat16 buffer is a uint16 CuPy array holding the bits;
to_numpy/from_numpy reinterpret them as ml_dtypes.bfloat16.

CuPy is imported only by require(), which backend.get("cuda") calls: importing tinytensor never needs
CuPy or a GPU. Left out: several GPUs at once (device "cuda" is CuPy's current device), streams,
set_num_threads (there is nothing to set), packaging ops_cuda/ into a wheel (it is read from the
source tree, as with `pip install -e`).
"""
from __future__ import annotations

import itertools
import os
from pathlib import Path

import numpy as np

from ..dtype import (ALL, FLOATING, DType, bfloat16, bool_, float16, float32, float64, from_numpy_dtype, int8,
                     int16, int32, int64, uint8)
from ..view import View, prod
from . import base

OPS_DIR = Path(__file__).resolve().parents[2] / "ops_cuda"
cp = None  # the cupy module, set by require()

# ---- which kernels exist: one name expression per template instantiation --------------------

CTYPES = {float64: "double", float32: "float", float16: "__half", bfloat16: "__nv_bfloat16",
          int64: "long long", int32: "int", int16: "short", int8: "signed char",
          uint8: "unsigned char", bool_: "bool"}


def name_expression(name: str, *dtypes) -> str:
    """'unary_kernel<float, bool>' for name 'unary_kernel' and dtypes (float32, bool)."""
    return f"{name}<{', '.join(CTYPES[d] for d in dtypes)}>" if dtypes else name


def _each(name, *dtype_lists):
    return [name_expression(name, *ds) for ds in itertools.product(*dtype_lists)]


KERNELS = {
    "elementwise.cu": [e for n in ("unary_kernel", "binary_kernel", "compare_kernel", "where_kernel")
                       for e in _each(n, ALL)],
    "reduce.cu": _each("reduce_kernel", ALL) + _each("arg_reduce_kernel", ALL),
    "copy.cu": _each("copy_kernel", ALL) + _each("fill_kernel", ALL),
    "index.cu": _each("gather_kernel", ALL) + _each("scatter_add_kernel", ALL),
    "matmul.cu": _each("matmul_kernel", ALL) + ["sgemm_tiled"],
    "softmax.cu": _each("softmax_kernel", FLOATING) + _each("softmax_backward_kernel", FLOATING)
    + _each("cross_entropy_kernel", FLOATING),
    "norm.cu": [e for n in ("layer_norm_kernel", "layer_norm_backward_kernel", "rms_norm_kernel",
                            "rms_norm_backward_kernel", "norm_param_grad_kernel") for e in _each(n, FLOATING)],
    "activation.cu": _each("gelu_kernel", FLOATING) + _each("gelu_backward_kernel", FLOATING),
    "adamw.cu": _each("adamw_kernel", FLOATING),
    "decode_attention.cu": _each("decode_attention_kernel", FLOATING),
    "attention.cu": [e for n in ("attention_kernel", "attention_backward_prep_kernel", "attention_backward_kv_kernel",
                                 "attention_backward_q_kernel") for e in _each(n, FLOATING)],
}

_UNARY = {n: i for i, n in enumerate(base.UNARY_OPS)}
_BINARY = {n: i for i, n in enumerate(base.BINARY_OPS)}
_REDUCE = {n: i for i, n in enumerate(base.REDUCE_OPS)}
_BOOL_OPS = frozenset(base.COMPARE_OPS + base.LOGICAL_OPS)
_THREADS = 256          # TT_THREADS in common.cuh
_MAX_BLOCKS = 65535     # grid-stride loops cover the rest
_SHARED_BYTES = 48 * 1024
_tiled = os.environ.get("TINYTENSOR_CUDA_MATMUL", "cublas") == "tiled"


def use_tiled_matmul(flag: bool = True) -> None:
    """float32 matmul on our tiled SGEMM kernel (True) or on cuBLAS (False, the default)."""
    global _tiled
    _tiled = bool(flag)


# ---- CuPy, devices, modules -------------------------------------------------------------------

def require() -> None:
    """Import CuPy and check for a GPU, or raise a RuntimeError that says what is missing."""
    global cp
    if cp is not None:
        return
    try:
        import cupy
    except ModuleNotFoundError as e:
        if e.name and e.name.split(".")[0] != "cupy":
            raise RuntimeError(f"device 'cuda': CuPy is installed but failed to import ({e})") from e
        raise RuntimeError("device 'cuda' needs CuPy and an NVIDIA GPU: CuPy is not installed "
                           "(pip install -e '.[cuda]')") from None
    except Exception as e:  # e.g. CuPy built for another CUDA, or its CUDA libraries missing
        raise RuntimeError(f"device 'cuda': CuPy is installed but failed to import ({e})") from e
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as e:
        raise RuntimeError(f"device 'cuda': CuPy is installed, but no NVIDIA GPU and driver are usable ({e})") from None
    if count == 0:
        raise RuntimeError("device 'cuda': CuPy is installed, but it finds no NVIDIA GPU")
    cp = cupy


_modules, _functions, _metas, _zeros = {}, {}, {}, {}


def _kernel(file: str, name: str, *dtypes):
    """The kernel `name<dtypes...>` of ops_cuda/file, compiled the first time it is asked for on this device.

    Each instantiation is its own RawModule (the whole .cu file, one name expression): a session
    compiles only the few dozen it uses, each in well under a second, not all of them at once."""
    dev = cp.cuda.runtime.getDevice()
    expr = name_expression(name, *dtypes)
    fn = _functions.get((dev, expr))
    if fn is None:
        assert expr in KERNELS[file], expr
        mod = _modules[(dev, expr)] = cp.RawModule(code=source(file), options=("-std=c++17",), name_expressions=[expr])
        fn = _functions[(dev, expr)] = mod.get_function(expr)
    return fn


def source(file: str) -> str:
    """The text of ops_cuda/file with common.cuh pasted in, so that CuPy's cache key covers the header too."""
    header = (OPS_DIR / "common.cuh").read_text()
    return (OPS_DIR / file).read_text().replace('#include "common.cuh"', header)


def _meta(*values):
    """A device int64 array of `values` (shapes and strides), cached: views repeat from step to step."""
    key = (cp.cuda.runtime.getDevice(),) + tuple(values)
    m = _metas.get(key)
    if m is None:
        if len(_metas) > 4096:
            _metas.clear()
        m = _metas[key] = cp.asarray(np.array(values or (0,), dtype=np.int64))
    return m


def _zero(dtype: DType):
    """A one-element zero of `dtype` on the device: what logical_not compares with, and what a kernel gets
    for a pointer it will not read (an absent weight, bias or gradient)."""
    key = (cp.cuda.runtime.getDevice(), dtype)
    if key not in _zeros:
        _zeros[key] = cp.zeros(1, dtype=_storage_np(dtype))
    return _zeros[key]


def _coalesce(shape, *strides):
    """Drop size-1 dims and merge neighbouring dims that every operand steps through as one.

    C order over the result visits elements in the same order as over `shape`, so a contiguous
    output indexed by the element number is unaffected. Returns (shape, [strides per operand])."""
    out_shape, out_strides = [], [[] for _ in strides]
    for i, n in enumerate(shape):
        if n == 1:
            continue
        if out_shape and all(st[-1] == s[i] * n for st, s in zip(out_strides, strides)):
            out_shape[-1] *= n
            for st, s in zip(out_strides, strides):
                st[-1] = s[i]
        else:
            out_shape.append(n)
            for st, s in zip(out_strides, strides):
                st.append(s[i])
    return out_shape, out_strides


def _walk_args(shape, *strides):
    """(meta, nd) for a kernel's strided walk over `shape` with each operand's strides."""
    shape, strides = _coalesce(shape, *strides)
    return _meta(*shape, *(s for st in strides for s in st)), np.int32(len(shape))


def _launch(fn, n: int, args, threads: int = _THREADS) -> None:
    """Run a grid-stride kernel over n elements."""
    if n > 0:
        fn((min(-(-n // threads), _MAX_BLOCKS),), (threads,), args)


def _row_threads(n: int) -> int:
    """Threads for a block that walks a row of n values: a power of two from 32 to 256."""
    t = 32
    while t < n and t < _THREADS:
        t *= 2
    return t


_i32, _i64, _f64 = np.int32, np.int64, np.float64

# ---- storage --------------------------------------------------------------------------------------


def _storage_np(dtype: DType):
    return np.uint16 if dtype is bfloat16 else dtype.np


def _dtype_of(data) -> DType:
    return bfloat16 if data.dtype == np.uint16 else from_numpy_dtype(data.dtype)


def _strided(data, view: View):
    """A CuPy array sharing `data` with the shape, strides and offset of `view`."""
    if view.numel == 0:
        return cp.empty(view.shape, dtype=data.dtype)
    item = data.dtype.itemsize
    return cp.ndarray(view.shape, data.dtype, data.data + view.offset * item, tuple(s * item for s in view.strides))


def empty(numel: int, dtype: DType):
    return cp.empty(numel, dtype=_storage_np(dtype))


def from_numpy(array: np.ndarray):
    a = np.ascontiguousarray(array).reshape(-1)
    return cp.asarray(a.view(np.uint16) if a.dtype == bfloat16.np else a)


def to_numpy(data, view: View, dtype: DType) -> np.ndarray:
    a = cp.asnumpy(_strided(data, view))
    return a.view(bfloat16.np) if dtype is bfloat16 else a


# ---- primitives -----------------------------------------------------------------------------------

def unary(op, out, out_dtype, x, xview, dtype):
    n = xview.numel
    if op == "logical_not":  # x == 0, against a broadcast zero
        meta, nd = _walk_args(xview.shape, xview.strides, (0,) * xview.ndim)
        _launch(_kernel("elementwise.cu", "compare_kernel", dtype), n,
                (out, x, _zero(dtype), meta, nd, _i64(n), _i64(xview.offset), _i64(0), _i32(_BINARY["eq"])))
        return
    meta, nd = _walk_args(xview.shape, xview.strides)
    _launch(_kernel("elementwise.cu", "unary_kernel", dtype), n,
            (out, x, meta, nd, _i64(n), _i64(xview.offset), _i32(_UNARY[op])))


def binary(op, out, out_dtype, a, aview, b, bview, dtype):
    meta, nd = _walk_args(aview.shape, aview.strides, bview.strides)
    n = aview.numel
    name = "compare_kernel" if op in _BOOL_OPS else "binary_kernel"
    _launch(_kernel("elementwise.cu", name, dtype), n,
            (out, a, b, meta, nd, _i64(n), _i64(aview.offset), _i64(bview.offset), _i32(_BINARY[op])))


def where(out, dtype, cond, cview, a, aview, b, bview):
    meta, nd = _walk_args(aview.shape, cview.strides, aview.strides, bview.strides)
    n = aview.numel
    _launch(_kernel("elementwise.cu", "where_kernel", dtype), n,
            (out, cond, a, b, meta, nd, _i64(n), _i64(cview.offset), _i64(aview.offset), _i64(bview.offset)))


def reduce(op, out, out_dtype, x, xview, dtype, n_reduce):
    nk = xview.ndim - n_reduce
    kshape, (ks,) = _coalesce(xview.shape[:nk], xview.strides[:nk])
    rshape, (rs,) = _coalesce(xview.shape[nk:], xview.strides[nk:])
    n_out, n_red = prod(kshape), prod(rshape)
    if n_out == 0:
        return
    name = "arg_reduce_kernel" if op in ("argmax", "argmin") else "reduce_kernel"
    fn = _kernel("reduce.cu", name, dtype)
    fn((min(n_out, _MAX_BLOCKS),), (_row_threads(n_red),),
       (out, x, _meta(*kshape, *ks, *rshape, *rs), _i32(len(kshape)), _i32(len(rshape)), _i64(n_out), _i64(n_red),
        _i64(xview.offset), _i32(_REDUCE[op])))


def matmul(out, dtype, a, aview, b, bview):
    *batch, m, k = aview.shape
    n = bview.shape[-1]
    tiled = _tiled and dtype is float32
    if dtype in (float64, float32, float16) and not tiled:  # cuBLAS
        cp.matmul(_strided(a, aview), _strided(b, bview), out=out[:prod(batch) * m * n].reshape(*batch, m, n))
        return
    meta, nb = _walk_args(batch, aview.strides[:-2], bview.strides[:-2])
    nbatch = prod(batch)
    args = (out, a, b, meta, nb, _i64(nbatch), _i64(m), _i64(n), _i64(k), _i64(aview.offset), _i64(bview.offset),
            _i64(aview.strides[-2]), _i64(aview.strides[-1]), _i64(bview.strides[-2]), _i64(bview.strides[-1]))
    if tiled:  # 64 x 64 output tiles, one grid layer per batch entry (a grid-stride loop past 65535)
        _kernel("matmul.cu", "sgemm_tiled")((-(-n // 64), -(-m // 64), min(nbatch, _MAX_BLOCKS)), (256,), args)
    else:
        _launch(_kernel("matmul.cu", "matmul_kernel", dtype), nbatch * m * n, args)


def copy(dst, dview, dst_dtype, src, sview, src_dtype):
    meta, nd = _walk_args(dview.shape, dview.strides, sview.strides)
    n = dview.numel
    _launch(_kernel("copy.cu", "copy_kernel", dst_dtype), n,
            (dst, src, _i32(src_dtype.code), meta, nd, _i64(n), _i64(dview.offset), _i64(sview.offset)))


def fill(dst, dview, dtype, value):
    is_int = isinstance(value, (bool, int, np.integer, np.bool_))
    meta, nd = _walk_args(dview.shape, dview.strides)
    n = dview.numel
    _launch(_kernel("copy.cu", "fill_kernel", dtype), n,
            (dst, meta, nd, _i64(n), _i64(dview.offset), _f64(0.0 if is_int else value), _i64(value if is_int else 0),
             _i32(is_int)))


def _without_dim(strides, dim):
    """(strides with `dim` set to 0, the stride of `dim`): the index supplies the step along dim."""
    if not strides:
        return (), 0
    s = list(strides)
    step, s[dim] = s[dim], 0
    return tuple(s), step


def _index_walk(shape, dim, iview):
    """The strides of a 1-D index broadcast over `shape` along dim, and its length."""
    n_idx = iview.shape[0] if iview.ndim else 1
    strides = [0] * len(shape)
    if shape:
        strides[dim] = iview.strides[0] if iview.ndim else 0
    return tuple(strides), n_idx


def _gather(out, dtype, x, xview, dim, idx, shape, istrides, ioffset):
    xs, step = _without_dim(xview.strides, dim)
    meta, nd = _walk_args(shape, istrides, xs)
    n = prod(shape)
    _launch(_kernel("index.cu", "gather_kernel", dtype), n,
            (out, x, idx, meta, nd, _i64(n), _i64(ioffset), _i64(xview.offset), _i64(step)))


def _scatter_add(out, oview, dtype, dim, idx, shape, istrides, ioffset, src, sview):
    os_, step = _without_dim(oview.strides, dim)
    meta, nd = _walk_args(shape, os_, istrides, sview.strides)
    n = prod(shape)
    _launch(_kernel("index.cu", "scatter_add_kernel", dtype), n,
            (out, idx, src, meta, nd, _i64(n), _i64(oview.offset), _i64(ioffset), _i64(sview.offset), _i64(step)))


def gather(out, dtype, x, xview, dim, idx, iview):
    _gather(out, dtype, x, xview, dim, idx, iview.shape, iview.strides, iview.offset)


def scatter_add(out, oview, dtype, dim, idx, iview, src, sview):
    _scatter_add(out, oview, dtype, dim, idx, iview.shape, iview.strides, iview.offset, src, sview)


def index_select(out, dtype, x, xview, dim, idx, iview):
    istrides, n_idx = _index_walk(xview.shape, dim, iview)
    shape = tuple(n_idx if d == dim else s for d, s in enumerate(xview.shape))
    _gather(out, dtype, x, xview, dim, idx, shape, istrides, iview.offset)


def index_add(out, oview, dtype, dim, idx, iview, src, sview):
    istrides, n_idx = _index_walk(oview.shape, dim, iview)
    shape = tuple(n_idx if d == dim else s for d, s in enumerate(oview.shape))
    _scatter_add(out, oview, dtype, dim, idx, shape, istrides, iview.offset, src, sview)


# ---- fused speed paths (base.FUSED) ---------------------------------------------------------------
# Statistics (mean, rstd, lse, the per-row loss) are float64 for float64 and float32 otherwise, as
# the kernels compute them; an array of another dtype from the caller is converted on the way.

def _stat(dtype: DType) -> DType:
    return float64 if dtype is float64 else float32


def _cast(arr, to: DType, into=None):
    """Flat arr converted to dtype `to` (into `into`, or a new array); arr itself when nothing changes."""
    frm = _dtype_of(arr)
    if frm is to and into is None:
        return arr
    into = empty(arr.size, to) if into is None else into
    v = View.contiguous((arr.size,))
    copy(into, v, to, arr, v, frm)
    return into


def _stat_out(arr, dtype):
    return arr if _dtype_of(arr) is _stat(dtype) else empty(arr.size, _stat(dtype))


def _stat_done(arr, buf):
    if buf is not arr:
        _cast(buf, _dtype_of(arr), into=arr)


def _rows(file, name, dtype, rows, n, args):
    """A kernel with one block per row (a grid-stride loop past 65535 rows)."""
    if rows > 0:
        _kernel(file, name, dtype)((min(rows, _MAX_BLOCKS),), (_row_threads(n),), args)


def softmax(out, dtype, x, rows, n, log):
    _rows("softmax.cu", "softmax_kernel", dtype, rows, n, (out, x, _i64(rows), _i64(n), _i32(log)))


def softmax_backward(gx, dtype, y, gy, rows, n, log):
    _rows("softmax.cu", "softmax_backward_kernel", dtype, rows, n, (gx, y, gy, _i64(rows), _i64(n), _i32(log)))


def cross_entropy(loss, dlogits, dtype, logits, target, rows, n, ignore_index, label_smoothing, grad_scale):
    buf = _stat_out(loss, dtype)
    dl = _zero(dtype) if dlogits is None else dlogits
    _rows("softmax.cu", "cross_entropy_kernel", dtype, rows, n,
          (buf, dl, logits, target, _i64(rows), _i64(n), _i64(ignore_index), _f64(label_smoothing),
           _f64(grad_scale), _i32(dlogits is not None)))
    _stat_done(loss, buf)


def _param_grads(gw, gb, dtype, gy, x, mean, rstd, rows, n):
    """The weight (and bias) gradients of a norm: sums over rows, one thread per column."""
    if gw is None and gb is None:
        return
    _launch(_kernel("norm.cu", "norm_param_grad_kernel", dtype), n,
            (_zero(dtype) if gw is None else gw, _zero(dtype) if gb is None else gb, gy, x,
             _zero(_stat(dtype)) if mean is None else mean, rstd, _i64(rows), _i64(n), _i32(mean is not None),
             _i32(gw is not None), _i32(gb is not None)))


def layer_norm(out, mean, rstd, dtype, x, weight, bias, rows, n, eps):
    mb, rb = _stat_out(mean, dtype), _stat_out(rstd, dtype)
    w, b = (_zero(dtype) if a is None else a for a in (weight, bias))
    _rows("norm.cu", "layer_norm_kernel", dtype, rows, n,
          (out, mb, rb, x, w, b, _i64(rows), _i64(n), _f64(eps), _i32(weight is not None), _i32(bias is not None)))
    _stat_done(mean, mb)
    _stat_done(rstd, rb)


def layer_norm_backward(gx, gweight, gbias, dtype, gy, x, mean, rstd, weight, rows, n):
    mean, rstd = _cast(mean, _stat(dtype)), _cast(rstd, _stat(dtype))
    _rows("norm.cu", "layer_norm_backward_kernel", dtype, rows, n,
          (gx, gy, x, mean, rstd, _zero(dtype) if weight is None else weight, _i64(rows), _i64(n),
           _i32(weight is not None)))
    _param_grads(gweight, gbias, dtype, gy, x, mean, rstd, rows, n)


def rms_norm(out, rstd, dtype, x, weight, rows, n, eps):
    rb = _stat_out(rstd, dtype)
    _rows("norm.cu", "rms_norm_kernel", dtype, rows, n,
          (out, rb, x, _zero(dtype) if weight is None else weight, _i64(rows), _i64(n), _f64(eps),
           _i32(weight is not None)))
    _stat_done(rstd, rb)


def rms_norm_backward(gx, gweight, dtype, gy, x, rstd, weight, rows, n):
    rstd = _cast(rstd, _stat(dtype))
    _rows("norm.cu", "rms_norm_backward_kernel", dtype, rows, n,
          (gx, gy, x, rstd, _zero(dtype) if weight is None else weight, _i64(rows), _i64(n), _i32(weight is not None)))
    _param_grads(gweight, None, dtype, gy, x, None, rstd, rows, n)


def gelu(out, dtype, x, n, tanh):
    _launch(_kernel("activation.cu", "gelu_kernel", dtype), n, (out, x, _i64(n), _i32(tanh)))


def gelu_backward(gx, dtype, gy, x, n, tanh):
    _launch(_kernel("activation.cu", "gelu_backward_kernel", dtype), n, (gx, gy, x, _i64(n), _i32(tanh)))


_ATTN_THREADS = 128


def attention_tile(kind: str, d: int, dtype: DType):
    """(br = bc, shared bytes) for an attention kernel: the largest tile whose buffers fit in 48 KB."""
    item = _stat(dtype).itemsize
    for b in (32, 16, 8, 4, 2, 1):
        words = {"forward": 3 * b * d + b * (d + 1) + b * b + 3 * b,
                 "kv": 2 * b * (d + 1) + 4 * b * d + 2 * b * b + 2 * b,
                 "q": 3 * b * d + 2 * b * (d + 1) + b * b + 2 * b}[kind]
        if words * item <= _SHARED_BYTES:
            return b, words * item
    raise ValueError(f"attention: head size {d} is too large for the CUDA kernel's shared memory")


def _attn(name, dtype, tiles, bh, d, args, kind):
    b, shared = attention_tile(kind, d, dtype)
    if tiles * bh > 0:
        _kernel("attention.cu", name, dtype)((-(-tiles // b), min(bh, _MAX_BLOCKS)), (_ATTN_THREADS,),
                                             args + (_i32(b), _i32(b)), shared_mem=shared)


def attention(out, lse, dtype, q, k, v, bh, t, s, d, scale, causal):
    buf = _stat_out(lse, dtype)
    _attn("attention_kernel", dtype, t, bh, d,
          (out, buf, q, k, v, _i64(bh), _i64(t), _i64(s), _i32(d), _f64(scale), _i32(causal)), "forward")
    _stat_done(lse, buf)


def attention_backward(gq, gk, gv, dtype, go, q, k, v, out, lse, bh, t, s, d, scale, causal):
    lse = _cast(lse, _stat(dtype))
    dsum = empty(bh * t, _stat(dtype))  # D_i = sum(go_i * out_i)
    _launch(_kernel("attention.cu", "attention_backward_prep_kernel", dtype), bh * t,
            (dsum, go, out, _i64(bh * t), _i32(d)))
    sizes = (_i64(bh), _i64(t), _i64(s), _i32(d), _f64(scale), _i32(causal))
    _attn("attention_backward_kv_kernel", dtype, s, bh, d, (gk, gv, go, q, k, v, lse, dsum) + sizes, "kv")
    _attn("attention_backward_q_kernel", dtype, t, bh, d, (gq, go, q, k, v, lse, dsum) + sizes, "q")


def decode_attention(out, dtype, q, k, v, start, batch, nh, nkv, t, s, d, k_strides, v_strides, scale):
    if batch * nh * t > 0:  # one block of _ATTN_THREADS per (head, query) and row; shared: q, o (d), p (threads)
        _kernel("decode_attention.cu", "decode_attention_kernel", dtype)(
            (min(nh * t, _MAX_BLOCKS), min(batch, _MAX_BLOCKS)), (_ATTN_THREADS,),
            (out, q, k, v, _zero(int64) if start is None else start, _i32(start is not None), _i64(batch), _i64(nh),
             _i64(nkv), _i64(t), _i64(s), _i32(d), *map(_i64, k_strides), *map(_i64, v_strides), _f64(scale)),
            shared_mem=(2 * d + _ATTN_THREADS) * _stat(dtype).itemsize)


def adamw(params, grads, exp_avgs, exp_avg_sqs, dtype, lr, beta1, beta2, eps, weight_decay, step):
    starts = np.concatenate([[0], np.cumsum([p.size for p in params], dtype=np.int64)]).astype(np.int64)
    total = int(starts[-1])
    if total == 0:
        return
    ptrs = np.array([a.data.ptr for group in (params, grads, exp_avgs, exp_avg_sqs) for a in group], dtype=np.uint64)
    _launch(_kernel("adamw.cu", "adamw_kernel", dtype), total,
            (cp.asarray(ptrs), cp.asarray(starts), _i32(len(params)), _i64(total), _f64(lr), _f64(beta1),
             _f64(beta2), _f64(eps), _f64(weight_decay), _f64(1 - beta1 ** step), _f64(1 - beta2 ** step)))
