"""One Function per differentiable primitive: forward (a backend call) and backward side by side.

Forward works on the raw buffers of its inputs and writes a new contiguous output (or, for the
movement ops, a new View over the same buffer). Backward is written with Tensor ops only, so it
runs unchanged on every device. Inputs arrive already broadcast-checked and dtype-promoted by
tensor.py; `unbroadcast` sums a gradient back to an input's shape.
"""
from __future__ import annotations

import math

from .autograd import Function
from .view import View


def unbroadcast(grad, shape):
    """Sum `grad` over the dims that broadcasting added or stretched, so it has `shape`."""
    if tuple(grad.shape) == tuple(shape):
        return grad
    lead = grad.ndim - len(shape)
    dims = tuple(range(lead)) + tuple(lead + i for i, n in enumerate(shape) if n == 1 and grad.shape[lead + i] != 1)
    return grad.sum(dim=dims, keepdim=True).reshape(shape) if dims else grad.reshape(shape)


# ---- elementwise --------------------------------------------------------------------------------

# d(op)/dx written with x (input), y (output) and g (incoming gradient)
UNARY_GRADS = {
    "neg": lambda x, y, g: -g,
    "abs": lambda x, y, g: g * x.sign(),
    "exp": lambda x, y, g: g * y,
    "log": lambda x, y, g: g / x,
    "log1p": lambda x, y, g: g / (x + 1),
    "expm1": lambda x, y, g: g * (y + 1),
    "sqrt": lambda x, y, g: g / (y * 2),
    "rsqrt": lambda x, y, g: g * y * y * y * -0.5,
    "sin": lambda x, y, g: g * x.cos(),
    "cos": lambda x, y, g: -g * x.sin(),
    "tanh": lambda x, y, g: g * (1 - y * y),
    "sigmoid": lambda x, y, g: g * y * (1 - y),
    "relu": lambda x, y, g: g * (x > 0),
    "erf": lambda x, y, g: g * (x * x).neg().exp() * (2 / math.sqrt(math.pi)),
    "reciprocal": lambda x, y, g: -g * y * y,
}


class Unary(Function):
    def forward(self, x, op):
        xv = x._view
        order = None if xv.is_contiguous() else xv.dense_order()
        if order is not None:  # walk a permuted block in memory order
            xv = xv.permute(order)
        out = x._new_empty(xv.shape, x.dtype if op != "logical_not" else "bool")
        x._buf.backend.unary(op, out._buf.data, out.dtype, x._buf.data, xv, x.dtype)
        if order is not None:  # the output keeps the input's layout (PyTorch's preserve_format)
            out = out._with_view(out._view.permute(sorted(range(len(order)), key=order.__getitem__)))
        self.op = op
        if op in UNARY_GRADS:
            self.save_for_backward(x, out)
        return out

    def backward(self, g):
        if self.op not in UNARY_GRADS:  # sign, floor, ceil, round, trunc: zero almost everywhere
            return g.zeros_like()
        x, y = self.saved_tensors
        return UNARY_GRADS[self.op](x, y, g)


def _pow_grads(a, b, y, g):
    ga = g * b * a.pow(b - 1)
    gb = g * y * a.log()
    gb = gb.masked_fill((a == 0) & (b >= 0), 0.0)
    return ga, gb


# gradient pairs (da, db) written with a, b (inputs), y (output) and g
BINARY_GRADS = {
    "add": lambda a, b, y, g: (g, g),
    "sub": lambda a, b, y, g: (g, -g),
    "mul": lambda a, b, y, g: (g * b, g * a),
    "div": lambda a, b, y, g: (g / b, -g * a / (b * b)),
    "pow": _pow_grads,
    # ties share the gradient equally, as in PyTorch
    "maximum": lambda a, b, y, g: (g * ((a > b) + (a == b) * 0.5), g * ((b > a) + (a == b) * 0.5)),
    "minimum": lambda a, b, y, g: (g * ((a < b) + (a == b) * 0.5), g * ((b < a) + (a == b) * 0.5)),
    "remainder": lambda a, b, y, g: (g, -g * (a / b).floor()),
    "floor_divide": lambda a, b, y, g: (g.zeros_like(), g.zeros_like()),  # a step function, like floor
}


class Binary(Function):
    def forward(self, a, b, op, out_dtype):
        if op in ("remainder", "floor_divide") and a.dtype.kind in "iub" and a._buf.device != "cpu" \
                and bool((b == 0).any()):  # the C++ kernels check this themselves; a GPU does not trap
            raise RuntimeError(f"{op}: integer division by zero (ZeroDivisionError)")
        av = a._view
        out = a._new_empty(av.shape, out_dtype)
        a._buf.backend.binary(op, out._buf.data, out_dtype, a._buf.data, av, b._buf.data, b._view, a.dtype)
        self.op = op
        if op not in ("add", "sub") and op in BINARY_GRADS:
            self.save_for_backward(a, b, out if op == "pow" else None)
        return out

    def backward(self, g):
        if self.op not in BINARY_GRADS:
            return None, None
        a, b, y = self.saved_tensors if self.op not in ("add", "sub") else (None, None, None)
        return BINARY_GRADS[self.op](a, b, y, g)


class Where(Function):
    def forward(self, cond, a, b):
        out = a._new_empty(a.shape, a.dtype)
        a._buf.backend.where(out._buf.data, a.dtype, cond._buf.data, cond._view, a._buf.data, a._view,
                             b._buf.data, b._view)
        self.save_for_backward(cond)
        return out

    def backward(self, g):
        (cond,) = self.saved_tensors
        zero = g.zeros_like()
        return None, g.where(cond, zero), zero.where(cond, g)


# ---- reductions and matmul ---------------------------------------------------------------------

class Reduce(Function):
    """op over `dims` (sorted, non-negative); the kernel reduces trailing dims, so permute them last."""

    def forward(self, x, op, dims, keepdim, out_dtype):
        xv = x._view
        in_shape = xv.shape
        n_keep = len(in_shape) - len(dims)
        if dims and dims[0] != n_keep:  # not the trailing dims already (dims are sorted and distinct)
            xv = xv.permute([d for d in range(len(in_shape)) if d not in dims] + list(dims))
        out = x._new_empty(xv.shape[:n_keep], out_dtype)
        x._buf.backend.reduce(op, out._buf.data, out_dtype, x._buf.data, xv, x.dtype, len(dims))
        self.op, self.dims, self.in_shape = op, dims, in_shape
        if keepdim:
            out = out._with_view(View.contiguous(tuple(1 if d in dims else n for d, n in enumerate(in_shape))))
        if op in ("max", "min", "prod"):
            self.save_for_backward(x, out)
        return out

    def backward(self, g):
        if self.op in ("argmax", "argmin"):
            return None
        kept = tuple(1 if d in self.dims else n for d, n in enumerate(self.in_shape))
        g = g.reshape(kept)
        if self.op == "sum":
            return g.expand(self.in_shape)
        x, y = self.saved_tensors
        y = y.reshape(kept)
        if self.op == "prod":  # exact where x != 0; PyTorch also handles zeros, tinytensor does not
            return g * y / x
        hit = (x == y)
        return g * hit / hit.sum(dim=self.dims, keepdim=True)


class Matmul(Function):
    """(*B, M, K) @ (*B, K, N) with batch dims already broadcast (stride 0 where expanded)."""

    def forward(self, a, b):
        out = a._new_empty(a.shape[:-1] + b.shape[-1:], a.dtype)
        if out.numel() == 0 or a.shape[-1] == 0:  # nothing to multiply: an empty or all-zero result
            out._buf.backend.fill(out._buf.data, out._view, out.dtype, 0)
        else:
            a._buf.backend.matmul(out._buf.data, a.dtype, a._buf.data, a._view, b._buf.data, b._view)
        self.save_for_backward(a, b)
        return out

    def backward(self, g):
        a, b = self.saved_tensors
        return g.matmul(b.mT), a.mT.matmul(g)


# ---- copies and casts -------------------------------------------------------------------------

class Copy(Function):
    """A contiguous copy, casting to `dtype`; the gradient casts back."""

    def forward(self, x, dtype):
        out = x._new_empty(x.shape, dtype)
        x._buf.backend.copy(out._buf.data, out._view, dtype, x._buf.data, x._view, x.dtype)
        self.in_dtype = x.dtype
        return out

    def backward(self, g):
        return g.to(self.in_dtype) if g.dtype is not self.in_dtype else g


# ---- movement ops: new View, same buffer -----------------------------------------------------

class Permute(Function):
    def forward(self, x, dims):
        self.dims = dims
        return x._with_view(x._view.permute(dims))

    def backward(self, g):
        inverse = [0] * len(self.dims)
        for i, d in enumerate(self.dims):
            inverse[d] = i
        return g.permute(inverse)


class Expand(Function):
    def forward(self, x, shape):
        self.in_shape = x.shape
        return x._with_view(x._view.expand(shape))

    def backward(self, g):
        return unbroadcast(g, self.in_shape)


class Reshape(Function):
    """A view reshape; tensor.py copies first when no view exists."""

    def forward(self, x, view):
        self.in_shape = x.shape
        return x._with_view(view)

    def backward(self, g):
        return g.reshape(self.in_shape)


class ViewOf(Function):
    """Any other view, given as a function from the input's View to the output's.

    Backward applies the same function to a zero tensor shaped like the input and writes the
    gradient through it: a copy when the view never reaches an element twice, an index_add
    otherwise (unfold, as_strided and expand-like windows that overlap).
    """

    def forward(self, x, make_view):
        self.make_view, self.in_shape = make_view, x.shape
        return x._with_view(make_view(x._view))

    def backward(self, g):
        z = g.new_zeros(self.in_shape)
        zv = self.make_view(z._view)
        if zv.is_non_overlapping():
            z._with_view(zv)._write(g)
            return z
        flat = z.reshape(-1)
        positions = z._new_arange(z.numel())._with_view(zv).reshape(-1)
        flat.index_add_(0, positions, g.reshape(-1))
        return z


# ---- gather / scatter --------------------------------------------------------------------------

class Gather(Function):
    def forward(self, x, dim, idx):
        out = x._new_empty(idx.shape, x.dtype)
        x._buf.backend.gather(out._buf.data, x.dtype, x._buf.data, x._view, dim, idx._buf.data, idx._view)
        self.dim, self.in_shape = dim, x.shape
        self.save_for_backward(idx)
        return out

    def backward(self, g):
        (idx,) = self.saved_tensors
        return g.new_zeros(self.in_shape).scatter_add_(self.dim, idx, g), None


class ScatterAdd(Function):
    """Out-of-place x.scatter_add(dim, idx, src)."""

    def forward(self, x, dim, idx, src):
        out = x.clone_data()
        x._buf.backend.scatter_add(out._buf.data, out._view, x.dtype, dim, idx._buf.data, idx._view,
                                   src._buf.data, src._view)
        self.dim = dim
        self.save_for_backward(idx)
        return out

    def backward(self, g):
        (idx,) = self.saved_tensors
        return g, None, g.gather(self.dim, idx)


class IndexSelect(Function):
    def forward(self, x, dim, idx):
        shape = x.shape[:dim] + (idx.numel(),) + x.shape[dim + 1:]
        out = x._new_empty(shape, x.dtype)
        x._buf.backend.index_select(out._buf.data, x.dtype, x._buf.data, x._view, dim, idx._buf.data, idx._view)
        self.dim, self.in_shape = dim, x.shape
        self.save_for_backward(idx)
        return out

    def backward(self, g):
        (idx,) = self.saved_tensors
        return g.new_zeros(self.in_shape).index_add_(self.dim, idx, g), None


class IndexAdd(Function):
    """Out-of-place x.index_add(dim, idx, src)."""

    def forward(self, x, dim, idx, src):
        out = x.clone_data()
        x._buf.backend.index_add(out._buf.data, out._view, x.dtype, dim, idx._buf.data, idx._view,
                                 src._buf.data, src._view)
        self.dim = dim
        self.save_for_backward(idx)
        return out

    def backward(self, g):
        (idx,) = self.saved_tensors
        return g, None, g.index_select(self.dim, idx)


class Cat(Function):
    """Concatenation: each input is copied into its slice of the output; backward splits."""

    def forward(self, *tensors, dim):
        first, sizes = tensors[0], [t.shape[dim] for t in tensors]
        out = first._new_empty(first.shape[:dim] + (sum(sizes),) + first.shape[dim + 1:])
        start = 0
        for t, n in zip(tensors, sizes):
            out._with_view(out._view.narrow(dim, start, n))._write(t)
            start += n
        self.dim, self.sizes = dim, sizes
        return out

    def backward(self, g):
        return g.split(self.sizes, self.dim)
