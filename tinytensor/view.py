"""View: a tensor's shape, strides and offset (in elements) over flat storage. Pure index arithmetic.

Every movement op (reshape, permute, expand, slicing, flip, unfold, ...) is a function from one
View to another, so it never touches data. `reshape` returns None when no view can express the
result (the caller then copies). Element (i0, i1, ...) lives at offset + sum(i_k * strides[k]).
This file imports nothing from tinytensor.
"""
from __future__ import annotations

import math
from typing import NamedTuple, Optional, Sequence, Tuple

Shape = Tuple[int, ...]


def contiguous_strides(shape: Sequence[int]) -> Shape:
    """Row-major (C order) strides for `shape`."""
    strides, acc = [], 1
    for n in reversed(shape):
        strides.append(acc)
        acc *= max(n, 1)
    return tuple(reversed(strides))


prod = math.prod  # the number of elements of a shape (1 for ())


def normalize_dim(dim: int, ndim: int, op: str = "dim") -> int:
    """Wrap a negative dim; IndexError naming the op when out of range (0-d tensors accept -1 and 0)."""
    n = max(ndim, 1)
    if not -n <= dim < n:
        raise IndexError(f"{op}: dimension {dim} out of range for a tensor of {ndim} dims "
                         f"(expected in [{-n}, {n - 1}])")
    return dim % n


def broadcast_shapes(*shapes: Sequence[int], op: str = "broadcast") -> Shape:
    """NumPy/PyTorch broadcasting; ValueError naming the op and both shapes when they do not broadcast."""
    ndim = max((len(s) for s in shapes), default=0)
    out = [1] * ndim
    for s in shapes:
        for i, n in enumerate(s, ndim - len(s)):
            if n != out[i] and n != 1 and out[i] != 1:
                raise ValueError(f"{op}: shapes {tuple(shapes[0])} and {tuple(s)} do not broadcast "
                                 f"(dim {i - ndim}: {out[i]} vs {n})")
            if n != 1:
                out[i] = n
    return tuple(out)


_CONTIGUOUS = {}  # shape -> its contiguous View at offset 0


class View(NamedTuple):
    shape: Shape
    strides: Shape
    offset: int = 0

    @staticmethod
    def contiguous(shape: Sequence[int], offset: int = 0) -> "View":
        if offset == 0:  # every new tensor asks for one: remember them by shape
            v = _CONTIGUOUS.get(shape)
            if v is not None:
                return v
        shape = tuple(int(n) for n in shape)
        v = View(shape, contiguous_strides(shape), offset)
        if offset == 0 and len(_CONTIGUOUS) < 4096:
            _CONTIGUOUS[shape] = v
        return v

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def numel(self) -> int:
        return prod(self.shape)

    def is_contiguous(self) -> bool:
        """PyTorch's rule: strides of size-1 dims do not matter, and an empty view is contiguous."""
        if _CONTIGUOUS.get(self.shape) is self:  # most views come from contiguous(): one dict lookup
            return True
        if self.numel == 0:
            return True
        expected = 1
        for n, s in zip(reversed(self.shape), reversed(self.strides)):
            if n != 1 and s != expected:
                return False
            expected *= n
        return True

    def dense_order(self):
        """The dim order (outermost first) in which this view is a contiguous block, or None.

        A transposed matrix has order (1, 0): elementwise ops can then walk memory in order and
        give their output the same layout, as PyTorch does, instead of transposing on the way.
        """
        if self.ndim < 2 or self.numel == 0:
            return None
        order = sorted(range(self.ndim), key=lambda d: (-abs(self.strides[d]), d))
        permuted = self.permute(order)
        return tuple(order) if all(s >= 0 for s in permuted.strides) and permuted.is_contiguous() else None

    def is_non_overlapping(self) -> bool:
        """True when no two indices reach the same element (so a plain copy can invert the view)."""
        dims = sorted((abs(s), n) for n, s in zip(self.shape, self.strides) if n > 1)
        reach = 0
        for s, n in dims:
            if s <= reach:
                return False
            reach += s * (n - 1)
        return True

    def span(self) -> Tuple[int, int]:
        """The lowest and one past the highest storage index this view touches (lo == hi if empty)."""
        if self.numel == 0:
            return self.offset, self.offset
        lo = hi = self.offset
        for n, s in zip(self.shape, self.strides):
            if s < 0:
                lo += s * (n - 1)
            else:
                hi += s * (n - 1)
        return lo, hi + 1

    # ---- movement ops: each returns a new View --------------------------------------------------

    def permute(self, dims: Sequence[int]) -> "View":
        return View(tuple(self.shape[d] for d in dims), tuple(self.strides[d] for d in dims), self.offset)

    def expand(self, shape: Sequence[int]) -> "View":
        """Broadcast to `shape` (size-1 dims get stride 0, new leading dims too); caller validates."""
        lead = len(shape) - self.ndim
        strides = [0] * lead
        for i, (n, s) in enumerate(zip(self.shape, self.strides)):
            strides.append(s if n == shape[lead + i] else 0)
        return View(tuple(shape), tuple(strides), self.offset)

    def reshape(self, shape: Sequence[int]) -> Optional["View"]:
        """The view with `shape` over the same elements in C order, or None if strides cannot express it."""
        shape = tuple(shape)
        if self.is_contiguous():
            return View(shape, contiguous_strides(shape), self.offset)
        if self.numel == 0:
            return View(shape, contiguous_strides(shape), self.offset)
        # Walk old dims from the right, grouping runs that are contiguous with each other; each
        # group must be split exactly by consecutive new dims (PyTorch's computeStride).
        old = [(n, s) for n, s in zip(self.shape, self.strides) if n != 1]
        new_strides = [0] * len(shape)
        j = len(shape) - 1
        i = len(old) - 1
        while i >= 0:
            chunk, base_stride = old[i][0], old[i][1]
            while i > 0 and old[i - 1][1] == old[i][1] * old[i][0]:
                i -= 1
                chunk *= old[i][0]
            i -= 1
            acc = 1
            while j >= 0 and (acc < chunk or shape[j] == 1):
                new_strides[j] = base_stride * acc
                acc *= shape[j]
                j -= 1
            if acc != chunk:
                return None
        while j >= 0:  # leftover size-1 dims
            new_strides[j] = 1
            j -= 1
        return View(shape, tuple(new_strides), self.offset)

    def narrow(self, dim: int, start: int, length: int) -> "View":
        shape, strides = list(self.shape), self.strides
        shape[dim] = length
        return View(tuple(shape), strides, self.offset + start * strides[dim])

    def slice(self, dim: int, start: int, stop: int, step: int) -> "View":
        """Python slice semantics along `dim` (start/stop already resolved by slice.indices)."""
        n = len(range(start, stop, step))
        shape, strides = list(self.shape), list(self.strides)
        offset = self.offset + (start * strides[dim] if n > 0 else 0)
        shape[dim], strides[dim] = n, strides[dim] * step
        return View(tuple(shape), tuple(strides), offset)

    def select(self, dim: int, index: int) -> "View":
        return View(self.shape[:dim] + self.shape[dim + 1:], self.strides[:dim] + self.strides[dim + 1:],
                    self.offset + index * self.strides[dim])

    def unsqueeze(self, dim: int) -> "View":
        stride = self.strides[dim] * self.shape[dim] if dim < self.ndim else 1
        return View(self.shape[:dim] + (1,) + self.shape[dim:], self.strides[:dim] + (stride,) + self.strides[dim:],
                    self.offset)

    def squeeze(self, dims: Sequence[int]) -> "View":
        keep = [i for i in range(self.ndim) if not (i in dims and self.shape[i] == 1)]
        return View(tuple(self.shape[i] for i in keep), tuple(self.strides[i] for i in keep), self.offset)

    def flip(self, dims: Sequence[int]) -> "View":
        strides, offset = list(self.strides), self.offset
        for d in dims:
            if self.shape[d] > 0:
                offset += (self.shape[d] - 1) * strides[d]
            strides[d] = -strides[d]
        return View(self.shape, tuple(strides), offset)

    def unfold(self, dim: int, size: int, step: int) -> "View":
        """Windows of `size` every `step` along dim, as a new last dim (torch.Tensor.unfold)."""
        shape, strides = list(self.shape), list(self.strides)
        shape[dim] = (self.shape[dim] - size) // step + 1
        strides[dim] = self.strides[dim] * step
        return View(tuple(shape) + (size,), tuple(strides) + (self.strides[dim],), self.offset)

    def diagonal(self, offset: int, dim1: int, dim2: int) -> "View":
        n1, n2 = self.shape[dim1], self.shape[dim2]
        length = max(0, min(n1, n2 - offset) if offset >= 0 else min(n1 + offset, n2))
        start = self.offset
        if length > 0:
            start += offset * self.strides[dim2] if offset >= 0 else -offset * self.strides[dim1]
        keep = [i for i in range(self.ndim) if i not in (dim1, dim2)]
        return View(tuple(self.shape[i] for i in keep) + (length,),
                    tuple(self.strides[i] for i in keep) + (self.strides[dim1] + self.strides[dim2],), start)
