"""Reference solutions to the exercises of lesson 00 (docs/00_tensors.md): strides by hand.

Each function works on plain Python tuples and a flat NumPy storage array, so that nothing is hidden:
a tensor's view is (shape, strides, offset), and element (i0, i1, ...) lives in the storage at
offset + i0 * strides[0] + i1 * strides[1] + ...  The tests compare every answer with NumPy's own
views and with tinytensor's movement ops (tests/test_lesson_00_tensors.py).
"""
import math
from typing import List, Optional, Sequence, Tuple

import numpy as np

Shape = Tuple[int, ...]


# ---- exercise 1: read a view by hand ------------------------------------------------------------

def storage_index(index: Sequence[int], strides: Sequence[int], offset: int) -> int:
    """Where element `index` of a view lives in the flat storage."""
    return offset + sum(i * s for i, s in zip(index, strides))


def materialize(storage: np.ndarray, shape: Sequence[int], strides: Sequence[int], offset: int) -> np.ndarray:
    """A new C-ordered array holding the view's elements, read one by one from the flat storage."""
    out = np.empty(tuple(shape), dtype=storage.dtype)
    for index in np.ndindex(*shape):
        out[index] = storage[storage_index(index, strides, offset)]
    return out


# ---- exercise 2: broadcasting is stride 0 -----------------------------------------------------

def broadcast_view(shape: Sequence[int], strides: Sequence[int], target: Sequence[int]) -> Tuple[Shape, Shape]:
    """The (shape, strides) of `expand(target)`: new leading dims and stretched size-1 dims get stride 0.

    Raises ValueError when a dim of size other than 1 would have to change size.
    """
    shape, strides, target = tuple(shape), tuple(strides), tuple(target)
    if len(target) < len(shape):
        raise ValueError(f"broadcast_view: cannot broadcast {shape} to fewer dims {target}")
    lead = len(target) - len(shape)
    new_strides = [0] * lead                      # a new leading dim repeats the whole tensor
    for n, s, want in zip(shape, strides, target[lead:]):
        if n == want:
            new_strides.append(s)                 # an unchanged dim keeps its step
        elif n == 1:
            new_strides.append(0)                 # a stretched dim re-reads the same element
        else:
            raise ValueError(f"broadcast_view: cannot broadcast {shape} to {target} (size {n} vs {want})")
    return target, tuple(new_strides)


# ---- exercise 3: when can reshape be a view? --------------------------------------------------

def contiguous_blocks(shape: Sequence[int], strides: Sequence[int]) -> List[Tuple[int, int]]:
    """Group the dims (size-1 dims dropped) into runs that step through memory as one dim.

    Dim k and the dim after it belong together when stepping k once jumps exactly over a whole
    row of the next dim: strides[k] == strides[k + 1] * shape[k + 1]. Each block is
    (number of elements, stride of its innermost dim).
    """
    blocks: List[Tuple[int, int]] = []
    for n, s in zip(shape, strides):
        if n == 1:
            continue
        if blocks and blocks[-1][1] == s * n:
            blocks[-1] = (blocks[-1][0] * n, s)   # continues the block before it
        else:
            blocks.append((n, s))
    return blocks


def reshape_strides(shape: Sequence[int], strides: Sequence[int], new_shape: Sequence[int]) -> Optional[Shape]:
    """Strides that show the same elements (in C order) with `new_shape`, or None when a copy is needed.

    A reshape can be a view exactly when every block of `contiguous_blocks` is cut into whole new
    dims: the new dims are read left to right and each block must be filled exactly, with no new
    dim straddling two blocks. Size-1 new dims can go anywhere (their stride is never used).
    """
    shape, new_shape = tuple(shape), tuple(new_shape)
    if math.prod(shape) != math.prod(new_shape):
        raise ValueError(f"reshape_strides: {shape} and {new_shape} have different numbers of elements")
    if math.prod(shape) == 0:
        return _c_strides(new_shape)
    new_strides = [0] * len(new_shape)
    dims = iter(d for d, n in enumerate(new_shape) if n != 1)
    for size, inner in contiguous_blocks(shape, strides):
        group, covered = [], 1
        while covered < size:
            d = next(dims)
            group.append(d)
            covered *= new_shape[d]
        if covered != size:
            return None                           # a new dim would straddle two blocks
        step = inner
        for d in reversed(group):                 # innermost new dim first
            new_strides[d] = step
            step *= new_shape[d]
    _fill_size_one_strides(new_shape, new_strides)
    return tuple(new_strides)


def _fill_size_one_strides(shape: Shape, strides: List[int]) -> None:
    """Give each size-1 dim the stride it would have if it sat in a contiguous tensor (any value works)."""
    for d in reversed(range(len(shape))):
        if shape[d] == 1:
            strides[d] = strides[d + 1] * shape[d + 1] if d + 1 < len(shape) else 1


def _c_strides(shape: Shape) -> Shape:
    strides, step = [], 1
    for n in reversed(shape):
        strides.append(step)
        step *= max(n, 1)
    return tuple(reversed(strides))
