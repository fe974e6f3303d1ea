"""Creating tensors: from data (tensor, from_numpy), filled (zeros, ones, full, arange, eye, ...),
random (rand, randn, randint, randperm), and joining (cat, stack). PyTorch's names and defaults.
"""
from __future__ import annotations

import math
from typing import Optional, Sequence

import numpy as np

from . import dtype as dt
from . import functions as F
from .device import as_device
from .random import seed_rng
from .tensor import Tensor, _shape_arg
from .view import normalize_dim


def _finish(t: Tensor, requires_grad: bool) -> Tensor:
    return t.requires_grad_(True) if requires_grad else t


def tensor(data, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """A new tensor copying `data` (numbers, nested lists, NumPy arrays, tensors)."""
    dtype = None if dtype is None else dt.as_dtype(dtype)
    return _finish(Tensor._from_data(data, dtype, as_device(device)), requires_grad)


def as_tensor(data, dtype=None, device=None) -> Tensor:
    if isinstance(data, Tensor) and (dtype is None or dt.as_dtype(dtype) is data.dtype):
        return data
    return tensor(data, dtype, device)


def from_numpy(array: np.ndarray) -> Tensor:
    """A tensor sharing memory with `array` (writes show on both sides)."""
    if not isinstance(array, np.ndarray):
        raise TypeError(f"from_numpy: expected np.ndarray, got {type(array).__name__}")
    return Tensor._from_numpy(array, "cpu")


def full(size, fill_value, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    dtype = dt.as_dtype(dtype) if dtype is not None else dt.result_type(fill_value)
    shape = tuple(size) if isinstance(size, (tuple, list)) else (int(size),)
    if any(n < 0 for n in shape):
        raise ValueError(f"full: negative dimension in size {shape}")
    return _finish(Tensor._from_numpy(np.full(shape, fill_value, dtype=dtype.np), as_device(device)), requires_grad)


def _filled(value, size, dtype, device, requires_grad):
    return full(_shape_arg(size), value, dtype or dt.get_default_dtype(), device, requires_grad)


def zeros(*size, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    return _filled(0, size, dtype, device, requires_grad)


def ones(*size, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    return _filled(1, size, dtype, device, requires_grad)


def empty(*size, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    return _filled(0, size, dtype, device, requires_grad)  # zeroed: uninitialised memory teaches nothing


def _like(x: Tensor, value, dtype, device, requires_grad):
    return full(x.shape, value, dtype or x.dtype, device or x.device, requires_grad)


def zeros_like(x, dtype=None, device=None, requires_grad=False):
    return _like(x, 0, dtype, device, requires_grad)


def ones_like(x, dtype=None, device=None, requires_grad=False):
    return _like(x, 1, dtype, device, requires_grad)


def empty_like(x, dtype=None, device=None, requires_grad=False):
    return _like(x, 0, dtype, device, requires_grad)


def full_like(x, fill_value, dtype=None, device=None, requires_grad=False):
    return _like(x, fill_value, dtype, device, requires_grad)


def arange(start, end=None, step=1, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    if end is None:
        start, end = 0, start
    if step == 0:
        raise ValueError("arange: step must be nonzero")
    if dtype is None:
        dtype = dt.result_type(start, end, step)
    dtype = dt.as_dtype(dtype)
    n = max(0, math.ceil((end - start) / step))
    values = start + step * np.arange(n, dtype=np.float64 if dtype.is_floating_point else np.int64)
    return _finish(Tensor._from_numpy(values.astype(dtype.np), as_device(device)), requires_grad)


def linspace(start, end, steps: int, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    if steps < 0:
        raise ValueError(f"linspace: number of steps must be non-negative, got {steps}")
    dtype = dt.as_dtype(dtype) if dtype is not None else dt.get_default_dtype()
    values = np.linspace(start, end, steps, dtype=np.float64).astype(dtype.np)
    return _finish(Tensor._from_numpy(values, as_device(device)), requires_grad)


def eye(n: int, m: Optional[int] = None, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    dtype = dt.as_dtype(dtype) if dtype is not None else dt.get_default_dtype()
    return _finish(Tensor._from_numpy(np.eye(n, m, dtype=dtype.np), as_device(device)), requires_grad)


# ---- random ----------------------------------------------------------------------------------

def _random(values: np.ndarray, dtype, device, requires_grad) -> Tensor:
    dtype = dt.as_dtype(dtype) if dtype is not None else dt.get_default_dtype()
    return _finish(Tensor._from_numpy(values.astype(dtype.np), as_device(device)), requires_grad)


def rand(*size, generator=None, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """Uniform on [0, 1)."""
    return _random(seed_rng(generator).random(_shape_arg(size)), dtype, device, requires_grad)


def randn(*size, generator=None, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """Standard normal."""
    return _random(seed_rng(generator).standard_normal(_shape_arg(size)), dtype, device, requires_grad)


def randint(low, high=None, size=(), generator=None, dtype=None, device=None) -> Tensor:
    """Integers in [low, high), int64 by default; randint(high, size) works too, as in PyTorch."""
    if isinstance(high, (tuple, list)):
        low, high, size = 0, low, high
    if high is None:
        low, high = 0, low
    if high <= low:
        raise ValueError(f"randint: expected low < high, got low={low}, high={high}")
    values = seed_rng(generator).integers(low, high, size=tuple(size))
    return Tensor._from_numpy(values.astype(dt.as_dtype(dtype or dt.int64).np), as_device(device))


def randperm(n: int, generator=None, dtype=None, device=None) -> Tensor:
    """A random permutation of 0..n-1 (torch.randperm); n must be a non-negative int."""
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)):
        raise TypeError(f"randperm: n must be an int, got {type(n).__name__}")
    if n < 0:
        raise ValueError(f"randperm: n must be non-negative, got {n}")
    return Tensor._from_numpy(seed_rng(generator).permutation(n).astype(dt.as_dtype(dtype or dt.int64).np),
                              as_device(device))


def rand_like(x: Tensor, generator=None, dtype=None) -> Tensor:
    return rand(x.shape, generator=generator, dtype=dtype or x.dtype, device=x.device)


def randn_like(x: Tensor, generator=None, dtype=None) -> Tensor:
    return randn(x.shape, generator=generator, dtype=dtype or x.dtype, device=x.device)


def multinomial(probs: Tensor, num_samples: int, replacement: bool = False, generator=None) -> Tensor:
    """Sample indices from rows of (unnormalised) probabilities, like torch.multinomial."""
    p = probs.detach().double().numpy()
    rows = p.reshape(-1, p.shape[-1])
    if (rows < 0).any() or not np.isfinite(rows).all() or (rows.sum(-1) <= 0).any():
        raise ValueError("multinomial: probabilities must be finite, non-negative and have a positive sum")
    rng = seed_rng(generator)
    out = np.stack([rng.choice(r.size, num_samples, replace=replacement, p=r / r.sum()) for r in rows])
    return Tensor._from_numpy(out.reshape(p.shape[:-1] + (num_samples,)).astype(np.int64), probs._buf.device)


# ---- joining ----------------------------------------------------------------------------------

def cat(tensors: Sequence[Tensor], dim: int = 0) -> Tensor:
    """Concatenate along `dim`: each input is written into a slice of the result (differentiable)."""
    tensors = [t for t in tensors if not (t.ndim == 1 and t.shape[0] == 0)] or list(tensors[:1])
    if not tensors:
        raise ValueError("cat: expected a non-empty list of tensors")
    first = tensors[0]
    d = normalize_dim(dim, first.ndim, "cat")
    for t in tensors:
        if t.ndim != first.ndim or t.shape[:d] + t.shape[d + 1:] != first.shape[:d] + first.shape[d + 1:]:
            raise ValueError(f"cat: shapes {first.shape} and {t.shape} differ outside dim {dim}")
    dtype = dt.result_type(*[(t.dtype, t.ndim) for t in tensors])
    return F.Cat.apply(*[t.to(dtype) for t in tensors], dim=d)


def stack(tensors: Sequence[Tensor], dim: int = 0) -> Tensor:
    if not tensors:
        raise ValueError("stack: expected a non-empty list of tensors")
    for t in tensors:
        if t.shape != tensors[0].shape:
            raise ValueError(f"stack: all tensors must have the same shape, got {tensors[0].shape} and {t.shape}")
    d = normalize_dim(dim, tensors[0].ndim + 1, "stack")
    return cat([t.unsqueeze(d) for t in tensors], d)
