"""Host memory: a CPU tensor's storage is a flat NumPy array. Allocation and strided NumPy views of it,
shared by the C backend (cpu.py) and the NumPy reference (ref.py). No compute here.
"""
from __future__ import annotations

import numpy as np

from ..dtype import DType
from ..view import View


def strided(data: np.ndarray, view: View, np_dtype=None) -> np.ndarray:
    """A NumPy array sharing `data` with the shape, strides and offset of `view`."""
    if view.numel == 0:
        return np.empty(view.shape, dtype=np_dtype or data.dtype)
    item = data.dtype.itemsize
    return np.ndarray(view.shape, data.dtype, buffer=data, offset=view.offset * item,
                      strides=tuple(s * item for s in view.strides))


def empty(numel: int, dtype: DType) -> np.ndarray:
    return np.empty(numel, dtype=dtype.np)


def from_numpy(array: np.ndarray) -> np.ndarray:
    return array


def to_numpy(data, view: View, dtype: DType) -> np.ndarray:
    return strided(data, view)
