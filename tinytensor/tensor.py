"""Tensor: the user API. Storage (Buffer) + View + dtype, with autograd fields.

Everything a user calls lives here or is a composite of the Functions in functions.py:
elementwise math with PyTorch's promotion and broadcasting, reductions, matmul, movement ops
(views that never copy), indexing (indexing.py), in-place ops with version counting, and
backward(). Composites (softmax, var, clamp, ...) are written with other Tensor ops and need no
backward code. Differences from PyTorch are noted in the docstrings.
"""
from __future__ import annotations

import math
from math import prod
from typing import Optional

import numpy as np

from . import dtype as dt
from . import functions as F
from . import fused
from . import indexing
from .autograd import is_grad_enabled, run_backward
from .backend import get as get_backend
from .backend.base import Buffer, COMPARE_OPS, LOGICAL_OPS
from .device import as_device, device as Device
from .view import View, broadcast_shapes, normalize_dim


_ALL_DIMS = [tuple(range(n)) for n in range(65)]  # dims=None for each ndim (numpy's limit is 64)


def _dims_arg(dims, ndim: int, op: str):
    """A tuple of sorted, non-negative dims from an int, a sequence or None (all)."""
    if dims is None:
        return _ALL_DIMS[ndim]
    if isinstance(dims, int):
        d = normalize_dim(dims, ndim, op)
        return (d,) if ndim else ()
    out = sorted({normalize_dim(d, ndim, op) for d in dims})
    if len(out) != len(dims):
        raise ValueError(f"{op}: dim {tuple(dims)} appears more than once")
    return tuple(out) if ndim else ()


def _infer_np(data, dtype: Optional[dt.DType]) -> np.ndarray:
    """`data` (numbers, nested lists, arrays, tensors) as an array of the dtype torch.tensor would infer."""
    if isinstance(data, Tensor):
        return data.detach().numpy()
    if isinstance(data, (list, tuple)) and any(isinstance(x, Tensor) for x in data):
        data = [_infer_np(x, None) for x in data]
    arr = np.array(data)
    if not isinstance(data, (np.ndarray, np.generic)):
        _check_int_range(data, arr, np.dtype(np.int64) if dtype is None else dtype.np)
    if dtype is not None:
        return arr.astype(dtype.np)
    if not isinstance(data, np.ndarray) and not isinstance(data, np.generic) and arr.dtype.kind == "f":
        return arr.astype(dt.get_default_dtype().np)  # Python floats take the default float type
    if arr.dtype.kind in "iu" and arr.dtype != np.uint8 and not isinstance(data, (np.ndarray, np.generic)):
        return arr.astype(np.int64)
    if arr.dtype.kind not in "biuf" and arr.dtype != dt.bfloat16.np:
        raise TypeError(f"tensor: cannot build a tensor from data of type {arr.dtype}")
    return arr


def _check_int_range(data, arr: np.ndarray, target: np.dtype) -> None:
    """Python ints (`data`, as the array `arr`) that do not fit the integer dtype they become raise
    OverflowError (as NumPy 2) rather than wrap: NumPy makes 2**63 a uint64 (-2**63 after a cast to
    int64), [1, 2**63] float64 and 2**64 an object. Floats and mixed data are left alone."""
    if target.kind not in "iu" or arr.size == 0 or arr.dtype.kind not in "iufO":
        return
    if arr.dtype.kind == "f":
        if (np.abs(arr) < 2.0 ** 63).all():  # the common case: one pass, no Python objects
            return
        arr = np.array(data, dtype=object)  # ints too big for int64 turned float?
    if arr.dtype.kind == "O" and not all(isinstance(v, int) for v in arr.flat):
        return
    lo, hi = (min(arr.flat), max(arr.flat)) if arr.dtype.kind == "O" else (int(arr.min()), int(arr.max()))
    info = np.iinfo(target)
    if lo < info.min or hi > info.max:
        bad = hi if hi > info.max else lo
        raise OverflowError(f"tensor: the integer {int(bad)} does not fit in {target.name} "
                            f"([{info.min}, {info.max}])")


def _shape_arg(shape) -> tuple:
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = shape[0]
    return tuple(int(n) for n in shape)


_SCALAR_VIEW = View((), (), 0)
_BOOL_RESULT = frozenset(COMPARE_OPS + LOGICAL_OPS)


class Tensor:
    __slots__ = ("_buf", "_view", "dtype", "requires_grad", "grad", "grad_fn", "_base", "__weakref__")
    __array_priority__ = 1000  # so numpy scalars on the left defer to Tensor operators

    # ---- construction ------------------------------------------------------------------------

    @classmethod
    def _make(cls, buf: Buffer, view: View, dtype: dt.DType, base=None) -> "Tensor":
        t = object.__new__(cls)
        t._buf, t._view, t.dtype, t._base = buf, view, dtype, base
        t.requires_grad, t.grad, t.grad_fn = False, None, None
        return t

    @classmethod
    def _from_numpy(cls, array: np.ndarray, device: str = "cpu") -> "Tensor":
        """Wrap (sharing memory) a NumPy array of a supported dtype; any strides are kept."""
        dtype = dt.from_numpy_dtype(array.dtype)
        be = get_backend(device)
        item = array.itemsize
        if array.flags.c_contiguous:
            return cls._make(Buffer(be.from_numpy(array.reshape(-1)), device, be), View.contiguous(array.shape), dtype)
        if all(s % item == 0 for s in array.strides):
            # storage: a flat window over exactly the memory the array spans (any strides, 0-d, F order)
            strides = tuple(s // item for s in array.strides)
            lowest = array[tuple(slice(None, None, -1) if s < 0 else slice(None) for s in strides) + (Ellipsis,)]
            lo, hi = View(array.shape, strides, 0).span()
            flat = np.lib.stride_tricks.as_strided(lowest, shape=(hi - lo,), strides=(item,))
            return cls._make(Buffer(be.from_numpy(flat), device, be), View(array.shape, strides, -lo), dtype)
        flat = np.ascontiguousarray(array).reshape(-1)
        return cls._make(Buffer(be.from_numpy(flat), device, be), View.contiguous(array.shape), dtype)

    @classmethod
    def _from_data(cls, data, dtype: Optional[dt.DType] = None, device: str = "cpu") -> "Tensor":
        """A new tensor copying `data`, with torch.tensor's dtype inference (tt.tensor builds on this)."""
        return cls._from_numpy(np.array(_infer_np(data, dtype), copy=True, order="C"), device)

    def _new_empty(self, shape, dtype=None) -> "Tensor":
        """A new contiguous tensor on this one's device (on the path of every op: kept lean)."""
        if dtype is None:
            dtype = self.dtype
        elif dtype.__class__ is not dt.DType:
            dtype = dt.as_dtype(dtype)
        view = View.contiguous(shape)
        buf = self._buf
        be = buf.backend
        t = object.__new__(Tensor)
        t._buf, t._view, t.dtype, t._base = Buffer(be.empty(prod(shape), dtype), buf.device, be), view, dtype, None
        t.requires_grad, t.grad, t.grad_fn = False, None, None
        return t

    def _broadcast(self, shape) -> "Tensor":
        """expand() to a shape already checked by broadcast_shapes; no graph node unless one is needed."""
        if self.requires_grad and is_grad_enabled():
            return F.Expand.apply(self, shape)
        return self._with_view(self._view.expand(shape))

    def _with_view(self, view: View) -> "Tensor":
        return Tensor._make(self._buf, view, self.dtype, self._base if self._base is not None else self)

    def _new_arange(self, n: int) -> "Tensor":
        return Tensor._from_numpy(np.arange(n, dtype=np.int64), self._buf.device)

    def _scalar(self, value, dtype: dt.DType, shape: tuple = ()) -> "Tensor":
        """One value on this device, seen with `shape` through stride-0 strides (0-d by default).

        Integers are cast, not converted: out-of-range ints wrap (uint8 + 1000) as in PyTorch.
        Built directly, as it sits on the path of every `x * 0.5`."""
        data = np.array((value,), dtype.np) if dtype.kind == "f" else np.array((value,)).astype(dtype.np)
        view = _SCALAR_VIEW if not shape else View(shape, (0,) * len(shape), 0)
        buf = self._buf
        return Tensor._make(Buffer(buf.backend.from_numpy(data), buf.device, buf.backend), view, dtype)

    # ---- metadata --------------------------------------------------------------------------

    shape = property(lambda self: self._view.shape)
    ndim = property(lambda self: len(self._view.shape))
    numel = lambda self: self._view.numel  # noqa: E731  (a method, as in PyTorch)
    device = property(lambda self: Device(self._buf.device))
    is_leaf = property(lambda self: self.grad_fn is None)
    is_floating_point = lambda self: self.dtype.is_floating_point  # noqa: E731
    itemsize = property(lambda self: self.dtype.itemsize)
    nbytes = property(lambda self: self.dtype.itemsize * self._view.numel)

    def dim(self) -> int:
        return self.ndim

    def size(self, dim: Optional[int] = None):
        return self.shape if dim is None else self.shape[normalize_dim(dim, self.ndim, "size")]

    def stride(self, dim: Optional[int] = None):
        return self._view.strides if dim is None else self._view.strides[normalize_dim(dim, self.ndim, "stride")]

    def storage_offset(self) -> int:
        return self._view.offset

    def element_size(self) -> int:
        return self.dtype.itemsize

    def is_contiguous(self) -> bool:
        return self._view.is_contiguous()

    def data_ptr(self) -> int:
        return self._buf.data.__array_interface__["data"][0] + self._view.offset * self.dtype.itemsize

    def __len__(self) -> int:
        if self.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self.shape[0]

    def __repr__(self) -> str:
        from .printing import tensor_repr
        return tensor_repr(self)

    __str__ = __repr__

    # ---- leaving tinytensor -------------------------------------------------------------------

    def numpy(self) -> np.ndarray:
        """A NumPy array sharing memory with this tensor (on the CPU)."""
        if self.requires_grad:
            raise RuntimeError("numpy: can't call numpy() on a tensor that requires grad; use tensor.detach().numpy()")
        return self._buf.backend.to_numpy(self._buf.data, self._view, self.dtype)

    def __array__(self, dtype=None, copy=None):
        a = self.detach().numpy()
        if dtype is not None:
            return a.astype(dtype)
        return a.copy() if copy else a  # np.array(t) asks for a copy, np.asarray(t) shares

    def item(self):
        if self.numel() != 1:
            raise ValueError(f"item: a tensor with {self.numel()} elements cannot be converted to a Python scalar")
        v = self.detach().numpy().reshape(-1)[0]
        return bool(v) if self.dtype is dt.bool_ else (float(v) if self.dtype.is_floating_point else int(v))

    def tolist(self):
        a = self.detach().numpy()
        return a.astype(np.float32).tolist() if self.dtype is dt.bfloat16 else a.tolist()

    def __bool__(self):
        if self.numel() != 1:
            raise RuntimeError(f"bool: a tensor with {self.numel()} elements is ambiguous; use .any() or .all()")
        return bool(self.item())

    __float__ = lambda self: float(self.item())  # noqa: E731
    __int__ = lambda self: int(self.item())  # noqa: E731

    def __index__(self):
        if self.dtype.kind not in "iu" or self.numel() != 1:
            raise TypeError("only integer tensors of a single element can be converted to an index")
        return self.item()

    def __iter__(self):
        if self.ndim == 0:
            raise TypeError("iteration over a 0-d tensor")
        return (self[i] for i in range(self.shape[0]))

    def __hash__(self):
        return id(self)

    # ---- autograd ----------------------------------------------------------------------------

    def backward(self, gradient: Optional["Tensor"] = None, retain_graph: bool = False) -> None:
        """Accumulate d(self)/d(leaf) * gradient into every leaf's .grad (gradient defaults to 1 for scalars)."""
        if not self.requires_grad:
            raise RuntimeError("backward: element 0 of tensors does not require grad and does not have a grad_fn")
        if gradient is None:
            if self.numel() != 1:
                raise RuntimeError(f"backward: grad can be implicitly created only for scalar outputs, "
                                   f"got shape {self.shape}; pass gradient=")
            gradient = self.ones_like()
        elif tuple(gradient.shape) != self.shape:
            raise ValueError(f"backward: gradient has shape {tuple(gradient.shape)}, expected {self.shape}")
        run_backward(self, gradient.to(self.dtype), retain_graph=retain_graph)

    def detach(self) -> "Tensor":
        return Tensor._make(self._buf, self._view, self.dtype, self._base)

    def detach_(self) -> "Tensor":
        self.requires_grad, self.grad_fn = False, None
        return self

    def requires_grad_(self, requires_grad: bool = True) -> "Tensor":
        if requires_grad and not self.dtype.is_floating_point:
            raise RuntimeError(f"requires_grad_: only floating point tensors can require gradients, got {self.dtype}")
        if not requires_grad and self.grad_fn is not None:
            raise RuntimeError("requires_grad_: can only change requires_grad of leaf tensors")
        self.requires_grad = requires_grad
        return self

    def retain_grad(self) -> None:
        """Keep .grad on this non-leaf tensor after backward."""
        import weakref
        if self.grad_fn is not None:
            self.grad_fn.retained = weakref.ref(self)
        elif not self.requires_grad:
            raise RuntimeError("retain_grad: can't retain_grad on a tensor that has requires_grad=False")

    @property
    def data(self) -> "Tensor":
        return self.detach()

    @data.setter
    def data(self, other: "Tensor") -> None:
        self._buf, self._view, self.dtype = other._buf, other._view, other.dtype

    # ---- dtype and device ---------------------------------------------------------------------

    class _ToDevice(F.Function):
        """A copy to another device through host memory (to_numpy, then from_numpy); the gradient goes back."""

        def forward(self, x, device):
            self.src_device = x._buf.device
            host = x._buf.backend.to_numpy(x._buf.data, x._view, x.dtype)
            return Tensor._from_numpy(host if host.flags.c_contiguous else host.copy(), device)

        def backward(self, g):
            return g.to(self.src_device)

    def to(self, *args, dtype=None, device=None, copy: bool = False) -> "Tensor":
        """to(dtype), to(device), to(device, dtype), to(other): a new tensor only when something changes.

        Float -> integer casts truncate toward zero and follow NumPy and PyTorch on x86 for every
        input, on every CPU: int64 takes NaN, +-inf and values outside its range to -2**63; the
        narrower integers go through int32 the same way (NaN, +-inf and values outside int32 give
        -2**31) and keep its low bits, so 300.0 -> 44 and -5.0 -> 251 as uint8, NaN -> 0 as int8.
        """
        for a in args:
            if isinstance(a, Tensor):
                dtype, device = a.dtype, a.device
            elif isinstance(a, (str, Device)):
                device = a
            else:
                dtype = a
        dtype = self.dtype if dtype is None else dt.as_dtype(dtype)
        target = self._buf.device if device is None else as_device(device)
        if target != self._buf.device:
            get_backend(target)  # raises a clear error for a missing device
            src = self if dtype is self.dtype else F.Copy.apply(self, dtype)  # cast where the data is
            return Tensor._ToDevice.apply(src, target)
        if dtype is self.dtype and not copy:
            return self
        return F.Copy.apply(self, dtype)

    float = lambda self: self.to(dt.float32)  # noqa: E731
    double = lambda self: self.to(dt.float64)  # noqa: E731
    half = lambda self: self.to(dt.float16)  # noqa: E731
    bfloat16 = lambda self: self.to(dt.bfloat16)  # noqa: E731
    long = lambda self: self.to(dt.int64)  # noqa: E731
    int = lambda self: self.to(dt.int32)  # noqa: E731
    bool = lambda self: self.to(dt.bool_)  # noqa: E731
    cpu = lambda self: self.to("cpu")  # noqa: E731
    cuda = lambda self: self.to("cuda")  # noqa: E731
    type_as = lambda self, other: self.to(other.dtype)  # noqa: E731

    def contiguous(self) -> "Tensor":
        return self if self.is_contiguous() else F.Copy.apply(self, self.dtype)

    def clone(self) -> "Tensor":
        return F.Copy.apply(self, self.dtype)

    def clone_data(self) -> "Tensor":
        """A contiguous copy of the values with no graph (used by out-of-place scatter ops)."""
        out = self._new_empty(self.shape)
        out._write(self)
        return out

    def _write(self, src: "Tensor") -> None:
        """Copy src (broadcast, cast) into this tensor's view. No autograd; bumps the version."""
        if not isinstance(src, Tensor):
            self._buf.backend.fill(self._buf.data, self._view, self.dtype, src)
        else:
            if src._buf is self._buf and src._view != self._view and _may_overlap(src._view, self._view):
                src = src.clone_data()  # `a[:] = a.flip(1)`: read everything before writing, as PyTorch does
            sv = src._view if src.shape == self.shape else src._view.expand(self.shape)
            self._buf.backend.copy(self._buf.data, self._view, self.dtype, src._buf.data, sv, src.dtype)
        self._buf.version += 1

    # ---- creation helpers bound to a tensor ------------------------------------------------------

    def new_zeros(self, shape, dtype=None) -> "Tensor":
        return self.new_full(shape, 0, dtype)

    def new_ones(self, shape, dtype=None) -> "Tensor":
        return self.new_full(shape, 1, dtype)

    def new_full(self, shape, fill_value, dtype=None) -> "Tensor":
        out = self._new_empty(tuple(shape), dtype)
        out._buf.backend.fill(out._buf.data, out._view, out.dtype, fill_value)
        return out

    def new_empty(self, shape, dtype=None) -> "Tensor":
        return self._new_empty(tuple(shape), dtype)

    def new_tensor(self, data, dtype=None) -> "Tensor":
        return Tensor._from_data(data, dt.as_dtype(dtype or self.dtype), self._buf.device)

    def zeros_like(self) -> "Tensor":
        return self.new_zeros(self.shape)

    def ones_like(self) -> "Tensor":
        return self.new_ones(self.shape)

    # ---- elementwise ----------------------------------------------------------------------------

    def _unary(self, op: str, float_only: bool = True) -> "Tensor":
        x = self
        if float_only and not x.dtype.is_floating_point:
            x = x.to(dt.get_default_dtype())
        return F.Unary.apply(x, op)

    def _operand(self, other, dtype: dt.DType, op: str) -> "Tensor":
        if isinstance(other, Tensor):
            if other._buf.device != self._buf.device:
                raise RuntimeError(f"{op}: expected all tensors on the same device, got {self.device} and "
                                   f"{other.device}")
            return other if other.dtype is dtype else other.to(dtype)
        return self._scalar(other, dtype)

    def _binary(self, other, op: str, reverse: bool = False) -> "Tensor":
        if isinstance(other, Tensor) and other.dtype is self.dtype and other._view.shape == self._view.shape \
                and other._buf.device == self._buf.device and (op != "div" or self.dtype.is_floating_point):
            # the common case: nothing to promote or broadcast
            a, b = (other, self) if reverse else (self, other)
            return F.Binary.apply(a, b, op, dt.bool_ if op in _BOOL_RESULT else self.dtype)
        if not isinstance(other, Tensor) and not isinstance(other, (int, float, bool, np.number, np.bool_)):
            if isinstance(other, (list, tuple, np.ndarray)):
                other = Tensor._from_data(other, None, self._buf.device)
            else:
                return NotImplemented
        if isinstance(other, Tensor):
            dtype = self.dtype if other.dtype is self.dtype else \
                dt.result_type((self.dtype, self.ndim), (other.dtype, other.ndim))
        elif self.dtype.is_floating_point and isinstance(other, (int, float)):  # a scalar never widens a float
            dtype = self.dtype
        else:
            dtype = dt.result_type((self.dtype, self.ndim), other)
        if op == "div" and not dtype.is_floating_point:
            dtype = dt.get_default_dtype()
        out_dtype = dt.bool_ if op in COMPARE_OPS or op in LOGICAL_OPS else dtype
        a = self if self.dtype is dtype else self.to(dtype)
        if not isinstance(other, Tensor):  # a Python number broadcasts to any shape
            b = self._scalar(other, dtype, a.shape)
            return F.Binary.apply(b, a, op, out_dtype) if reverse else F.Binary.apply(a, b, op, out_dtype)
        b = self._operand(other, dtype, op)
        if reverse:
            a, b = b, a
        shape = a.shape if a.shape == b.shape else broadcast_shapes(a.shape, b.shape, op=op)
        a = a if a.shape == shape else a._broadcast(shape)
        b = b if b.shape == shape else b._broadcast(shape)
        return F.Binary.apply(a, b, op, out_dtype)

    __add__ = add = lambda self, o, alpha=1: self._binary(o if alpha == 1 else o * alpha, "add")  # noqa: E731
    __radd__ = lambda self, o: self._binary(o, "add", True)  # noqa: E731
    __sub__ = sub = lambda self, o, alpha=1: self._binary(o if alpha == 1 else o * alpha, "sub")  # noqa: E731
    __rsub__ = lambda self, o: self._binary(o, "sub", True)  # noqa: E731
    __mul__ = mul = lambda self, o: self._binary(o, "mul")  # noqa: E731
    __rmul__ = lambda self, o: self._binary(o, "mul", True)  # noqa: E731
    __truediv__ = div = lambda self, o: self._binary(o, "div")  # noqa: E731
    __rtruediv__ = lambda self, o: self._binary(o, "div", True)  # noqa: E731
    __pow__ = pow = lambda self, o: self._binary(o, "pow")  # noqa: E731
    __rpow__ = lambda self, o: self._binary(o, "pow", True)  # noqa: E731
    __mod__ = remainder = lambda self, o: self._binary(o, "remainder")  # noqa: E731
    __rmod__ = lambda self, o: self._binary(o, "remainder", True)  # noqa: E731
    __floordiv__ = floor_divide = lambda self, o: self._binary(o, "floor_divide")  # noqa: E731
    __rfloordiv__ = lambda self, o: self._binary(o, "floor_divide", True)  # noqa: E731
    maximum = lambda self, o: self._binary(o, "maximum")  # noqa: E731
    minimum = lambda self, o: self._binary(o, "minimum")  # noqa: E731
    __eq__ = eq = lambda self, o: self._binary(o, "eq")  # noqa: E731
    __ne__ = ne = lambda self, o: self._binary(o, "ne")  # noqa: E731
    __lt__ = lt = lambda self, o: self._binary(o, "lt")  # noqa: E731
    __le__ = le = lambda self, o: self._binary(o, "le")  # noqa: E731
    __gt__ = gt = lambda self, o: self._binary(o, "gt")  # noqa: E731
    __ge__ = ge = lambda self, o: self._binary(o, "ge")  # noqa: E731
    logical_and = lambda self, o: self._binary(o, "logical_and")  # noqa: E731
    logical_or = lambda self, o: self._binary(o, "logical_or")  # noqa: E731
    logical_xor = lambda self, o: self._binary(o, "logical_xor")  # noqa: E731
    logical_not = lambda self: F.Unary.apply(self, "logical_not")  # noqa: E731

    def _bitwise(self, other, op: str) -> "Tensor":
        if self.dtype is not dt.bool_:
            raise TypeError(f"{op}: tinytensor supports &, |, ^ on bool tensors only, got {self.dtype}")
        return self._binary(other, {"and": "logical_and", "or": "logical_or", "xor": "logical_xor"}[op])

    __and__ = __rand__ = lambda self, o: self._bitwise(o, "and")  # noqa: E731
    __or__ = __ror__ = lambda self, o: self._bitwise(o, "or")  # noqa: E731
    __xor__ = __rxor__ = lambda self, o: self._bitwise(o, "xor")  # noqa: E731

    def __invert__(self):
        if self.dtype is not dt.bool_:
            raise TypeError(f"~: tinytensor supports ~ on bool tensors only, got {self.dtype}")
        return self.logical_not()

    def __neg__(self):
        if self.dtype is dt.bool_:
            raise TypeError("neg: negation of a bool tensor is not supported; use ~ or logical_not()")
        return F.Unary.apply(self, "neg")

    neg = __neg__
    __pos__ = lambda self: self  # noqa: E731
    abs = __abs__ = lambda self: F.Unary.apply(self, "abs")  # noqa: E731
    sign = lambda self: F.Unary.apply(self, "sign")  # noqa: E731
    relu = lambda self: F.Unary.apply(self, "relu")  # noqa: E731
    floor = lambda self: self if self.dtype.kind in "iub" else F.Unary.apply(self, "floor")  # noqa: E731
    ceil = lambda self: self if self.dtype.kind in "iub" else F.Unary.apply(self, "ceil")  # noqa: E731
    round = lambda self: self if self.dtype.kind in "iub" else F.Unary.apply(self, "round")  # noqa: E731
    trunc = lambda self: self if self.dtype.kind in "iub" else F.Unary.apply(self, "trunc")  # noqa: E731
    exp = lambda self: self._unary("exp")  # noqa: E731
    log = lambda self: self._unary("log")  # noqa: E731
    log1p = lambda self: self._unary("log1p")  # noqa: E731
    expm1 = lambda self: self._unary("expm1")  # noqa: E731
    sqrt = lambda self: self._unary("sqrt")  # noqa: E731
    rsqrt = lambda self: self._unary("rsqrt")  # noqa: E731
    sin = lambda self: self._unary("sin")  # noqa: E731
    cos = lambda self: self._unary("cos")  # noqa: E731
    tanh = lambda self: self._unary("tanh")  # noqa: E731
    sigmoid = lambda self: self._unary("sigmoid")  # noqa: E731
    erf = lambda self: self._unary("erf")  # noqa: E731
    reciprocal = lambda self: self._unary("reciprocal")  # noqa: E731
    square = lambda self: self * self  # noqa: E731
    log2 = lambda self: self.log() * (1 / math.log(2))  # noqa: E731
    log10 = lambda self: self.log() * (1 / math.log(10))  # noqa: E731
    tan = lambda self: self.sin() / self.cos()  # noqa: E731

    def where(self, condition: "Tensor", other) -> "Tensor":
        """x.where(cond, y): x where cond is true, else y (PyTorch's Tensor.where)."""
        return where(condition, self, other)

    def clamp(self, min=None, max=None) -> "Tensor":
        if min is None and max is None:
            raise ValueError("clamp: at least one of min and max must be given")
        out = self
        if min is not None:
            out = out.maximum(min) if isinstance(min, Tensor) else out.where((out < min).logical_not(), min)
        if max is not None:  # `not (x > max)` rather than `x <= max`: NaN stays NaN, as in PyTorch
            out = out.minimum(max) if isinstance(max, Tensor) else out.where((out > max).logical_not(), max)
        return out

    clip = clamp

    def masked_fill(self, mask: "Tensor", value) -> "Tensor":
        if not isinstance(mask, Tensor) or mask.dtype is not dt.bool_:
            raise TypeError(f"masked_fill: mask must be a bool tensor, got {getattr(mask, 'dtype', type(mask))}")
        return self.where(mask.logical_not(), value)

    def lerp(self, end, weight) -> "Tensor":
        return self + (end - self) * weight

    # ---- reductions -----------------------------------------------------------------------------

    def _reduce(self, op: str, dim, keepdim: bool, out_dtype=None) -> "Tensor":
        shape = self._view.shape
        dims = _dims_arg(dim, len(shape), op)
        x = self
        if op == "sum" or op == "prod":
            if x.dtype.kind in "iub":
                x = x.to(dt.int64)
        elif any(shape[d] == 0 for d in dims):  # max, min, argmax, argmin
            raise IndexError(f"{op}: cannot reduce over an empty dim of shape {shape} (no identity)")
        if out_dtype is None:
            out_dtype = dt.int64 if op in ("argmax", "argmin") else x.dtype
        return F.Reduce.apply(x, op, dims, keepdim, out_dtype)

    def sum(self, dim=None, keepdim: bool = False, dtype=None) -> "Tensor":
        x = self if dtype is None else self.to(dtype)
        return x._reduce("sum", dim, keepdim)

    def prod(self, dim=None, keepdim: bool = False) -> "Tensor":
        return self._reduce("prod", dim, keepdim)

    def amax(self, dim=None, keepdim: bool = False) -> "Tensor":
        return self._reduce("max", dim, keepdim)

    def amin(self, dim=None, keepdim: bool = False) -> "Tensor":
        return self._reduce("min", dim, keepdim)

    def argmax(self, dim: Optional[int] = None, keepdim: bool = False) -> "Tensor":
        return (self.reshape(-1) if dim is None else self)._reduce("argmax", dim, keepdim and dim is not None)

    def argmin(self, dim: Optional[int] = None, keepdim: bool = False) -> "Tensor":
        return (self.reshape(-1) if dim is None else self)._reduce("argmin", dim, keepdim and dim is not None)

    def max(self, dim=None, keepdim: bool = False):
        """max() -> the maximum; max(dim) -> (values, indices); max(tensor) -> elementwise maximum."""
        if isinstance(dim, Tensor):
            return self.maximum(dim)
        if dim is None:
            return self.amax()
        return MinMax(self.amax(dim, keepdim), self.argmax(dim, keepdim))

    def min(self, dim=None, keepdim: bool = False):
        if isinstance(dim, Tensor):
            return self.minimum(dim)
        if dim is None:
            return self.amin()
        return MinMax(self.amin(dim, keepdim), self.argmin(dim, keepdim))

    def _count(self, dim) -> int:
        return math.prod(self.shape[d] for d in _dims_arg(dim, self.ndim, "mean"))

    def mean(self, dim=None, keepdim: bool = False, dtype=None) -> "Tensor":
        x = self.to(dtype) if dtype is not None else self
        if not x.dtype.is_floating_point:
            raise TypeError(f"mean: expected a floating point tensor, got {x.dtype}; pass dtype= or call .float()")
        count = x._count(dim)  # checks dim first, so a bad dim is reported by mean
        return x.sum(dim, keepdim) / count

    def var(self, dim=None, unbiased: bool = True, keepdim: bool = False, correction=None) -> "Tensor":
        correction = (1 if unbiased else 0) if correction is None else correction
        diff = self - self.mean(dim, keepdim=True)
        return (diff * diff).sum(dim, keepdim) / max(self._count(dim) - correction, 0)

    def std(self, dim=None, unbiased: bool = True, keepdim: bool = False, correction=None) -> "Tensor":
        return self.var(dim, unbiased, keepdim, correction).sqrt()

    def logsumexp(self, dim, keepdim: bool = False) -> "Tensor":
        if any(self.shape[d] == 0 for d in _dims_arg(dim, self.ndim, "logsumexp")):
            return self.exp().sum(dim, keepdim).log()  # a sum of nothing: -inf, as in PyTorch
        m = self.amax(dim, keepdim=True).detach()
        m = m.masked_fill(m.isinf(), 0.0)
        out = (self - m).exp().sum(dim, keepdim=True).log() + m
        return out if keepdim else out.squeeze(_dims_arg(dim, self.ndim, "logsumexp"))

    def softmax(self, dim: int) -> "Tensor":
        if normalize_dim(dim, self.ndim, "softmax") == self.ndim - 1 and self.ndim and fused.fits(self):
            return fused.Softmax.apply(self, False)
        if self.numel() == 0:
            return self.exp()  # nothing to normalise (and amax has no identity)
        e = (self - self.amax(dim, keepdim=True).detach()).exp()
        return e / e.sum(dim, keepdim=True)

    def log_softmax(self, dim: int) -> "Tensor":
        if normalize_dim(dim, self.ndim, "log_softmax") == self.ndim - 1 and self.ndim and fused.fits(self):
            return fused.Softmax.apply(self, True)
        return self - self.logsumexp(dim, keepdim=True)

    # counts rather than min/max: right for empty dims (all() is True, any() is False) and keeps the shape
    def all(self, dim=None, keepdim: bool = False) -> "Tensor":
        return self.bool().logical_not().sum(dim, keepdim) == 0

    def any(self, dim=None, keepdim: bool = False) -> "Tensor":
        return self.bool().sum(dim, keepdim) > 0

    def norm(self, p=2, dim=None, keepdim: bool = False) -> "Tensor":
        if p == 2:
            return (self * self).sum(dim, keepdim).sqrt()
        return (self.abs() ** p).sum(dim, keepdim) ** (1.0 / p)

    isnan = lambda self: self != self  # noqa: E731
    isinf = lambda self: self.abs() == math.inf if self.dtype.is_floating_point else self.zeros_like().bool()  # noqa
    isfinite = lambda self: (self.isnan() | self.isinf()).logical_not()  # noqa: E731

    # ---- matmul ---------------------------------------------------------------------------------

    def matmul(self, other: "Tensor") -> "Tensor":
        """torch.matmul's rules: 1-D operands gain then lose a dim; batch dims broadcast."""
        if not isinstance(other, Tensor):
            raise TypeError(f"matmul: expected a Tensor, got {type(other).__name__}")
        if self.ndim == 0 or other.ndim == 0:
            raise ValueError(f"matmul: both arguments need at least 1 dim, got shapes {self.shape} and {other.shape}")
        dtype = dt.promote_types(self.dtype, other.dtype)
        a, b = self._operand(self, dtype, "matmul"), self._operand(other, dtype, "matmul")
        a2 = a.unsqueeze(0) if a.ndim == 1 else a
        b2 = b.unsqueeze(-1) if b.ndim == 1 else b
        if a2.shape[-1] != b2.shape[-2]:
            raise ValueError(f"matmul: shapes {self.shape} and {other.shape} do not align "
                             f"({a2.shape[-1]} != {b2.shape[-2]})")
        batch = broadcast_shapes(a2.shape[:-2], b2.shape[:-2], op="matmul")
        out = F.Matmul.apply(a2.expand(batch + a2.shape[-2:]), b2.expand(batch + b2.shape[-2:]))
        if a.ndim == 1:
            out = out.squeeze(-2)
        if b.ndim == 1:
            out = out.squeeze(-1)
        return out

    __matmul__ = matmul
    __rmatmul__ = lambda self, o: o.matmul(self) if isinstance(o, Tensor) else NotImplemented  # noqa: E731

    # ---- movement ops (views) --------------------------------------------------------------------

    def view(self, *shape) -> "Tensor":
        if len(shape) == 1 and isinstance(shape[0], dt.DType):
            raise TypeError("view(dtype) is not supported; use .to(dtype)")
        shape = self._infer_shape(_shape_arg(shape), "view")
        v = self._view.reshape(shape)
        if v is None:
            raise RuntimeError(f"view: shape {shape} is not compatible with the size {self.shape} and strides "
                               f"{self.stride()} of this tensor; use .reshape(...) (which copies)")
        return self if shape == self.shape else F.Reshape.apply(self, v)

    def reshape(self, *shape) -> "Tensor":
        """A view when strides allow it, else a contiguous copy reshaped (as in PyTorch)."""
        shape = self._infer_shape(_shape_arg(shape), "reshape")
        if shape == self.shape:
            return self
        v = self._view.reshape(shape)
        if v is None:
            c = self.contiguous()
            return F.Reshape.apply(c, c._view.reshape(shape))
        return F.Reshape.apply(self, v)

    def _infer_shape(self, shape: tuple, op: str) -> tuple:
        if shape.count(-1) > 1:
            raise ValueError(f"{op}: only one dimension can be -1, got {shape}")
        known = math.prod(n for n in shape if n != -1)
        if -1 in shape:
            if known == 0 or self.numel() % known:
                raise ValueError(f"{op}: shape {shape} is invalid for input of size {self.numel()}")
            shape = tuple(self.numel() // known if n == -1 else n for n in shape)
        if math.prod(shape) != self.numel() or any(n < 0 for n in shape):
            raise ValueError(f"{op}: shape {shape} is invalid for input of size {self.numel()}")
        return shape

    view_as = lambda self, other: self.view(other.shape)  # noqa: E731
    reshape_as = lambda self, other: self.reshape(other.shape)  # noqa: E731

    def permute(self, *dims) -> "Tensor":
        dims = _shape_arg(dims)
        if len(dims) != self.ndim:
            raise ValueError(f"permute: got {len(dims)} dims {dims} for a tensor of {self.ndim} dims")
        norm = [normalize_dim(d, self.ndim, "permute") for d in dims]
        if sorted(norm) != list(range(self.ndim)):
            raise ValueError(f"permute: dims {dims} are not a permutation of {self.ndim} dims")
        return F.Permute.apply(self, tuple(norm))

    def transpose(self, dim0: int, dim1: int) -> "Tensor":
        order = list(range(max(self.ndim, 1)))  # a 0-d tensor accepts dims 0 and -1
        d0, d1 = normalize_dim(dim0, self.ndim, "transpose"), normalize_dim(dim1, self.ndim, "transpose")
        order[d0], order[d1] = order[d1], order[d0]
        return F.Permute.apply(self, tuple(order)) if self.ndim > 1 else self

    swapaxes = transpose

    def t(self) -> "Tensor":
        if self.ndim > 2:
            raise ValueError(f"t: expects a tensor with <= 2 dims, got {self.ndim}; use .mT or transpose")
        return self.transpose(0, 1) if self.ndim == 2 else self

    T = property(lambda self: self.permute(*reversed(range(self.ndim))))
    mT = property(lambda self: self.transpose(-2, -1))

    def expand(self, *shape) -> "Tensor":
        shape = _shape_arg(shape)
        if len(shape) < self.ndim:
            raise ValueError(f"expand: target shape {shape} has fewer dims than the tensor's {self.shape}")
        lead = len(shape) - self.ndim
        target = list(shape)
        for i, n in enumerate(self.shape):
            if target[lead + i] == -1:
                target[lead + i] = n
            elif n != 1 and n != target[lead + i]:
                raise ValueError(f"expand: the size {n} at dim {i} of shape {self.shape} must match the target "
                                 f"{target[lead + i]} (or be 1) in {shape}")
        if any(n < 0 for n in target):
            raise ValueError(f"expand: -1 is not allowed for new leading dims in {shape}")
        target = tuple(target)
        return self if target == self.shape else F.Expand.apply(self, target)

    expand_as = lambda self, other: self.expand(other.shape)  # noqa: E731
    broadcast_to = lambda self, shape: self.expand(shape)  # noqa: E731

    def _view_op(self, make_view) -> "Tensor":
        return F.ViewOf.apply(self, make_view)

    def squeeze(self, dim=None) -> "Tensor":
        dims = _dims_arg(dim, self.ndim, "squeeze")
        if not any(self.shape[d] == 1 for d in dims):
            return self
        return F.Reshape.apply(self, self._view.squeeze(dims))

    def unsqueeze(self, dim: int) -> "Tensor":
        d = normalize_dim(dim, self.ndim + 1, "unsqueeze")
        return F.Reshape.apply(self, self._view.unsqueeze(d))

    def flatten(self, start_dim: int = 0, end_dim: int = -1) -> "Tensor":
        if self.ndim == 0:
            return self.reshape(1)
        s, e = normalize_dim(start_dim, self.ndim, "flatten"), normalize_dim(end_dim, self.ndim, "flatten")
        if s > e:
            raise ValueError(f"flatten: start_dim {start_dim} comes after end_dim {end_dim}")
        return self.reshape(self.shape[:s] + (math.prod(self.shape[s:e + 1]),) + self.shape[e + 1:])

    def unflatten(self, dim: int, sizes) -> "Tensor":
        d = normalize_dim(dim, self.ndim, "unflatten")
        sizes = tuple(sizes)
        if -1 in sizes:
            known = math.prod(n for n in sizes if n != -1)
            sizes = tuple(self.shape[d] // max(known, 1) if n == -1 else n for n in sizes)
        if math.prod(sizes) != self.shape[d]:
            raise ValueError(f"unflatten: sizes {sizes} do not multiply to the size {self.shape[d]} of dim {dim}")
        return self.view(self.shape[:d] + sizes + self.shape[d + 1:])

    def narrow(self, dim: int, start: int, length: int) -> "Tensor":
        d = normalize_dim(dim, self.ndim, "narrow")
        if start < 0:
            start += self.shape[d]
        if not (0 <= start and length >= 0 and start + length <= self.shape[d]):
            raise IndexError(f"narrow: start {start} + length {length} exceeds the size {self.shape[d]} of dim {dim}")
        return self._view_op(lambda v: v.narrow(d, start, length))

    def flip(self, *dims) -> "Tensor":
        dims = _dims_arg(_shape_arg(dims), self.ndim, "flip")
        return self._view_op(lambda v: v.flip(dims))

    def unfold(self, dimension: int, size: int, step: int) -> "Tensor":
        d = normalize_dim(dimension, self.ndim, "unfold")
        n = self.shape[d] if self.ndim else 1
        if size > n or size < 0 or step <= 0:
            raise ValueError(f"unfold: size {size} and step {step} do not fit dim {dimension} of size {n}")
        if self.ndim == 0:  # as in PyTorch: a 0-d tensor unfolds to shape (size,)
            return self.reshape(1).unfold(0, size, step)[0]
        return self._view_op(lambda v: v.unfold(d, size, step))

    def diagonal(self, offset: int = 0, dim1: int = 0, dim2: int = 1) -> "Tensor":
        d1, d2 = normalize_dim(dim1, self.ndim, "diagonal"), normalize_dim(dim2, self.ndim, "diagonal")
        if d1 == d2:
            raise ValueError(f"diagonal: dim1 and dim2 cannot be the same dim ({dim1})")
        return self._view_op(lambda v: v.diagonal(offset, d1, d2))

    def as_strided(self, size, stride, storage_offset: Optional[int] = None) -> "Tensor":
        """A view with explicit shape, strides and offset over this tensor's storage (as in PyTorch)."""
        size, stride = tuple(int(n) for n in size), tuple(int(s) for s in stride)
        offset = self._view.offset if storage_offset is None else int(storage_offset)
        if len(size) != len(stride):
            raise ValueError(f"as_strided: size {size} and stride {stride} have different lengths")
        lo, hi = View(size, stride, offset).span()
        if hi > lo and (lo < 0 or hi > self._buf.numel) or any(n < 0 for n in size):
            raise ValueError(f"as_strided: size {size}, stride {stride}, offset {offset} reach outside the storage "
                             f"of {self._buf.numel} elements")
        base_offset = self._view.offset
        return self._view_op(lambda v: View(size, stride, v.offset + offset - base_offset))

    def split(self, split_size_or_sections, dim: int = 0):
        d = normalize_dim(dim, self.ndim, "split")
        n = self.shape[d]
        if isinstance(split_size_or_sections, int):
            if split_size_or_sections <= 0:
                raise ValueError(f"split: split_size must be positive, got {split_size_or_sections}")
            sizes = [min(split_size_or_sections, n - s) for s in range(0, n, split_size_or_sections)] or [0]
        else:
            sizes = list(split_size_or_sections)
            if sum(sizes) != n:
                raise ValueError(f"split: sections {sizes} do not sum to the size {n} of dim {dim}")
        pieces, start = [], 0
        for k in sizes:
            pieces.append(self._view_op(lambda v, start=start, k=k: v.narrow(d, start, k)))
            start += k
        return tuple(pieces)

    def chunk(self, chunks: int, dim: int = 0):
        if chunks <= 0:
            raise ValueError(f"chunk: chunks must be positive, got {chunks}")
        n = self.shape[normalize_dim(dim, self.ndim, "chunk")]
        if n == 0:  # as in PyTorch: `chunks` empty pieces
            return tuple(self.narrow(dim, 0, 0) for _ in range(chunks))
        return self.split(-(-n // chunks), dim)

    def unbind(self, dim: int = 0):
        d = normalize_dim(dim, self.ndim, "unbind")
        return tuple(self.select(d, i) for i in range(self.shape[d]))

    def select(self, dim: int, index: int) -> "Tensor":
        d = normalize_dim(dim, self.ndim, "select")
        n = self.shape[d]
        if not -n <= index < n:
            raise IndexError(f"select: index {index} is out of range for dim {dim} of size {n}")
        i = index % n
        return self._view_op(lambda v: v.select(d, i))

    __getitem__ = indexing.getitem
    __setitem__ = indexing.setitem

    # ---- gather / scatter -------------------------------------------------------------------------

    def _check_index(self, index: "Tensor", dim_size: int, op: str) -> "Tensor":
        if not isinstance(index, Tensor) or index.dtype.kind not in "iu":
            raise TypeError(f"{op}: index must be an integer tensor, got {getattr(index, 'dtype', type(index))}")
        if index.numel():
            if index._buf.device == "cpu":  # NumPy reads the index in place: a quarter of amin + amax + item
                a = index._buf.backend.to_numpy(index._buf.data, index._view, index.dtype)
                lo, hi = int(a.min()), int(a.max())
            else:
                lo, hi = index.amin().item(), index.amax().item()
            if lo < 0 or hi >= dim_size:
                raise IndexError(f"{op}: index {lo if lo < 0 else hi} is out of range for a dim of size {dim_size}")
        return index.to(dt.int64)

    def gather(self, dim: int, index: "Tensor") -> "Tensor":
        d = normalize_dim(dim, self.ndim, "gather")
        if index.ndim != self.ndim:
            raise ValueError(f"gather: index has {index.ndim} dims, input has {self.ndim}")
        index = self._check_index(index, self.shape[d], "gather")
        return F.Gather.apply(self, d, index)

    def index_select(self, dim: int, index: "Tensor") -> "Tensor":
        d = normalize_dim(dim, self.ndim, "index_select")
        if index.ndim > 1:
            raise ValueError(f"index_select: index must be 0-d or 1-d, got shape {index.shape}")
        index = self._check_index(index, self.shape[d] if self.ndim else 1, "index_select").reshape(-1)
        return F.IndexSelect.apply(self, d, index)

    def scatter_add(self, dim: int, index: "Tensor", src: "Tensor") -> "Tensor":
        d = normalize_dim(dim, self.ndim, "scatter_add")
        index = self._check_index(index, self.shape[d], "scatter_add")
        if src.shape != index.shape:
            raise ValueError(f"scatter_add: src shape {src.shape} must equal index shape {index.shape} in tinytensor")
        return F.ScatterAdd.apply(self, d, index, src.to(self.dtype))

    def index_add(self, dim: int, index: "Tensor", source: "Tensor", alpha=1) -> "Tensor":
        d = normalize_dim(dim, self.ndim, "index_add")
        index = self._check_index(index, self.shape[d], "index_add").reshape(-1)
        expected = self.shape[:d] + (index.numel(),) + self.shape[d + 1:]
        if source.shape != expected:
            raise ValueError(f"index_add: source shape {source.shape} must be {expected}")
        source = source if alpha == 1 else source * alpha
        return F.IndexAdd.apply(self, d, index, source.to(self.dtype))

    # ---- in-place ops -------------------------------------------------------------------------

    def _check_writable(self, op: str) -> None:
        """Refuse an in-place op on a tensor whose elements share memory (an expanded, stride-0 dim),
        as PyTorch does: the result would depend on the order the kernel writes in."""
        v = self._view
        if 0 in v.strides and any(st == 0 and n > 1 for n, st in zip(v.shape, v.strides)) and 0 not in v.shape:
            raise RuntimeError(f"{op}: unsupported operation: more than one element of the written-to tensor "
                               f"(shape {self.shape}, strides {v.strides}) refers to a single memory "
                               "location; clone() the tensor first")

    def _assign(self, result: "Tensor", op: str) -> "Tensor":
        """Make `result` (computed out of place) this tensor's new value, in its storage."""
        self._check_writable(op)
        tracking = is_grad_enabled() and (self.requires_grad or result.requires_grad)
        if tracking and self.requires_grad and self.grad_fn is None:
            raise RuntimeError(f"{op}: a leaf tensor that requires grad is being used in an in-place operation")
        if tracking and self._base is not None:
            raise RuntimeError(f"{op}: in-place on a view of a tensor while recording gradients is not supported "
                               "in tinytensor; use the out-of-place op")
        if result.shape != self.shape:
            if broadcast_shapes(result.shape, self.shape, op=op) != self.shape:
                raise ValueError(f"{op}: result of shape {result.shape} cannot be written into shape {self.shape}")
        if result.dtype.is_floating_point and not self.dtype.is_floating_point:
            raise TypeError(f"{op}: result type {result.dtype} can't be cast to the desired output type {self.dtype}")
        if tracking and result.grad_fn is None:
            result = result.clone()  # a leaf's value: give self a node of its own
        self._write(result)
        if tracking:
            self.requires_grad, self.grad_fn = True, result.grad_fn
        return self

    def _inplace_input(self, *others) -> "Tensor":
        """self as the input of an in-place op whose backward reads its inputs: a copy while gradients
        are recorded, so the tensors saved for backward are not the ones the op overwrites (PyTorch
        saves the original self too). add_/sub_ save nothing and skip this."""
        if is_grad_enabled() and (self.requires_grad or any(getattr(o, "requires_grad", False) for o in others)):
            return self.clone()
        return self

    add_ = __iadd__ = lambda self, o, alpha=1: self._assign(self.add(o, alpha), "add_")  # noqa: E731
    sub_ = __isub__ = lambda self, o, alpha=1: self._assign(self.sub(o, alpha), "sub_")  # noqa: E731
    mul_ = __imul__ = lambda self, o: self._assign(self._inplace_input(o) * o, "mul_")  # noqa: E731
    div_ = __itruediv__ = lambda self, o: self._assign(self._inplace_input(o) / o, "div_")  # noqa: E731
    pow_ = lambda self, o: self._assign(self._inplace_input(o) ** o, "pow_")  # noqa: E731
    clamp_ = lambda self, min=None, max=None: self._assign(self.clamp(min, max), "clamp_")  # noqa: E731
    masked_fill_ = lambda self, m, v: self._assign(self.masked_fill(m, v), "masked_fill_")  # noqa: E731
    exp_ = lambda self: self._assign(self._inplace_input().exp(), "exp_")  # noqa: E731
    sqrt_ = lambda self: self._assign(self._inplace_input().sqrt(), "sqrt_")  # noqa: E731
    neg_ = lambda self: self._assign(-self._inplace_input(), "neg_")  # noqa: E731
    lerp_ = lambda self, end, w: self._assign(self.lerp(end, w), "lerp_")  # noqa: E731

    def addcmul_(self, t1, t2, value=1) -> "Tensor":
        return self._assign(self + t1 * t2 * value, "addcmul_")

    def addcdiv_(self, t1, t2, value=1) -> "Tensor":
        return self._assign(self + t1 / t2 * value, "addcdiv_")

    def fill_(self, value) -> "Tensor":
        if isinstance(value, Tensor):
            return self.copy_(value.expand(self.shape) if value.ndim == 0 else value)
        if not (is_grad_enabled() and self.requires_grad):  # one value everywhere: fine on expanded dims too
            self._write(value)
            return self
        return self._assign(self.new_full(self.shape, value), "fill_")

    def zero_(self) -> "Tensor":
        return self.fill_(0)

    def copy_(self, src: "Tensor") -> "Tensor":
        if not isinstance(src, Tensor):
            raise TypeError(f"copy_: expected a Tensor, got {type(src).__name__}")
        if broadcast_shapes(src.shape, self.shape, op="copy_") != self.shape:
            raise ValueError(f"copy_: source shape {src.shape} cannot be broadcast to {self.shape}")
        return self._assign(src.to(self.dtype).expand(self.shape), "copy_")

    def scatter_add_(self, dim: int, index: "Tensor", src: "Tensor") -> "Tensor":
        if not is_grad_enabled() or not (self.requires_grad or src.requires_grad):
            self._check_writable("scatter_add_")
            d = normalize_dim(dim, self.ndim, "scatter_add_")
            index = self._check_index(index, self.shape[d], "scatter_add_")
            src = src.to(self.dtype)
            self._buf.backend.scatter_add(self._buf.data, self._view, self.dtype, d, index._buf.data, index._view,
                                          src._buf.data, src._view)
            self._buf.version += 1
            return self
        return self._assign(self.scatter_add(dim, index, src), "scatter_add_")

    def index_add_(self, dim: int, index: "Tensor", source: "Tensor", alpha=1) -> "Tensor":
        if not is_grad_enabled() or not (self.requires_grad or source.requires_grad):
            self._check_writable("index_add_")
            d = normalize_dim(dim, self.ndim, "index_add_")
            index = self._check_index(index, self.shape[d], "index_add_").reshape(-1)
            source = (source if alpha == 1 else source * alpha).to(self.dtype)
            self._buf.backend.index_add(self._buf.data, self._view, self.dtype, d, index._buf.data, index._view,
                                        source._buf.data, source._view)
            self._buf.version += 1
            return self
        return self._assign(self.index_add(dim, index, source, alpha), "index_add_")

    # ---- composites that build on the above ------------------------------------------------------

    def tril(self, diagonal: int = 0) -> "Tensor":
        return self.masked_fill(_band(self, diagonal, upper=True), 0)

    def triu(self, diagonal: int = 0) -> "Tensor":
        return self.masked_fill(_band(self, diagonal - 1, upper=False), 0)

    def repeat(self, *sizes) -> "Tensor":
        sizes = _shape_arg(sizes)
        if len(sizes) < self.ndim:
            raise ValueError(f"repeat: {len(sizes)} repeats given for a tensor of {self.ndim} dims")
        x = self.reshape((1,) * (len(sizes) - self.ndim) + self.shape)
        interleaved = x.reshape(sum(((1, n) for n in x.shape), ()))  # (1, n0, 1, n1, ...)
        expanded = interleaved.expand(sum(((r, n) for r, n in zip(sizes, x.shape)), ()))  # (r0, n0, r1, n1, ...)
        out = expanded.reshape(tuple(r * n for r, n in zip(sizes, x.shape)))
        return out.clone() if out._buf is self._buf else out  # new memory always, as in PyTorch


class MinMax(tuple):
    """(values, indices) returned by max(dim)/min(dim), like torch.return_types."""

    def __new__(cls, values, indices):
        return super().__new__(cls, (values, indices))

    values = property(lambda self: self[0])
    indices = property(lambda self: self[1])


def _may_overlap(a, b) -> bool:
    """Whether two Views of one buffer may share an element: their ranges [lowest, highest element]
    intersect. Conservative (two interleaved strided views count as overlapping), and exact enough
    that a write through disjoint slices of a tensor never pays for a temporary."""
    if 0 in a.shape or 0 in b.shape:
        return False
    lo_a = a.offset + sum((n - 1) * st for n, st in zip(a.shape, a.strides) if st < 0)
    hi_a = a.offset + sum((n - 1) * st for n, st in zip(a.shape, a.strides) if st > 0)
    lo_b = b.offset + sum((n - 1) * st for n, st in zip(b.shape, b.strides) if st < 0)
    hi_b = b.offset + sum((n - 1) * st for n, st in zip(b.shape, b.strides) if st > 0)
    return lo_a <= hi_b and lo_b <= hi_a


def _band(x: Tensor, diagonal: int, upper: bool) -> Tensor:
    """Bool mask of the last two dims: True where column - row > diagonal (upper) or <= diagonal."""
    if x.ndim < 2:
        raise ValueError(f"tril/triu: expects a tensor with at least 2 dims, got shape {x.shape}")
    rows, cols = x.shape[-2:]
    r = Tensor._from_numpy(np.arange(rows, dtype=np.int64).reshape(rows, 1), x._buf.device)
    c = Tensor._from_numpy(np.arange(cols, dtype=np.int64).reshape(1, cols), x._buf.device)
    return (c - r > diagonal) if upper else (c - r <= diagonal)


def where(condition: Tensor, input, other) -> Tensor:
    """Elementwise `input if condition else other`, broadcasting all three (torch.where)."""
    if not isinstance(condition, Tensor) or condition.dtype is not dt.bool_:
        raise TypeError(f"where: condition must be a bool tensor, got {getattr(condition, 'dtype', type(condition))}")
    ref = input if isinstance(input, Tensor) else other if isinstance(other, Tensor) else condition
    ops = [(t.dtype, t.ndim) if isinstance(t, Tensor) else t for t in (input, other)]
    dtype = dt.result_type(*ops)
    a, b = ref._operand(input, dtype, "where"), ref._operand(other, dtype, "where")
    shape = broadcast_shapes(condition.shape, a.shape, b.shape, op="where")
    return F.Where.apply(condition.expand(shape), a.expand(shape), b.expand(shape))
