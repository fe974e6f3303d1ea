"""Indexing: `t[key]` and `t[key] = value` with NumPy/PyTorch semantics.

Basic keys (ints, slices with any step, None, Ellipsis) give a view: one function from View to
View, so backward can replay it. Advanced keys (integer tensors or lists, bool masks) gather into
a new tensor through index_select on the advanced dims flattened; assigning through them writes
with a mask (where) so repeated indices keep the last value, as NumPy does.
Tensors are reached by duck typing here; this module does not import tensor.py.
"""
from __future__ import annotations

import numpy as np

from .view import View, broadcast_shapes


def _is_tensor(x) -> bool:
    return hasattr(x, "_buf")


def _host(t, array):
    """A tensor on t's device holding a NumPy array built on the host (index bookkeeping)."""
    return type(t)._from_numpy(np.asarray(array), t._buf.device)


def _expand_key(t, key) -> list:
    """The key as a list with Ellipsis expanded, lists turned into tensors and bool masks into int tensors."""
    if not isinstance(key, tuple):
        key = (key,)
    items = []
    for k in key:
        if isinstance(k, (list, np.ndarray, bool)):
            k = _host(t, k)
        if _is_tensor(k) and k.dtype.name == "bool":
            items.append(("mask", k))
        elif _is_tensor(k):
            if k.dtype.kind not in "iu":
                raise IndexError(f"index: tensors used as indices must be integer or bool, got {k.dtype}")
            items.append(("tensor", k))
        elif k is None or k is Ellipsis or isinstance(k, slice):
            items.append((k if k is None or k is Ellipsis else "slice", k))
        elif isinstance(k, (int, np.integer)):
            items.append(("int", int(k)))
        else:
            raise IndexError(f"index: unsupported index {k!r} of type {type(k).__name__}")
    consumed = sum(k[1].ndim if k[0] == "mask" else (0 if k[0] is None else 1) for k in items if k[0] is not Ellipsis)
    if sum(1 for k in items if k[0] is Ellipsis) > 1:
        raise IndexError("index: an index can only have a single ellipsis ('...')")
    if consumed > t.ndim:
        raise IndexError(f"index: too many indices for a tensor of {t.ndim} dims ({consumed} given)")
    out = []
    for k in items:
        if k[0] is Ellipsis:
            out.extend([("slice", slice(None))] * (t.ndim - consumed))
        else:
            out.append(k)
    if not any(k[0] is Ellipsis for k in items):
        out.extend([("slice", slice(None))] * (t.ndim - consumed))
    return out


def _basic_view(items, shape):
    """For basic-only items, a function View -> View (so autograd can replay it on a zero tensor)."""
    plan, d, src = [], 0, 0  # d: dim in the view being built; src: dim of the input
    for kind, k in items:
        if kind is None:
            plan.append(("new", d))
            d += 1
        elif kind == "int":
            n = shape[src]
            if not -n <= k < n:
                raise IndexError(f"index {k} is out of bounds for dimension {src} with size {n}")
            plan.append(("int", d, k % n))
            src += 1
        else:
            plan.append(("slice", d) + k.indices(shape[src]))  # slice.indices rejects step 0
            d += 1
            src += 1

    def make_view(v: View) -> View:
        for p in plan:
            if p[0] == "new":
                v = v.unsqueeze(p[1])
            elif p[0] == "int":
                v = v.select(p[1], p[2])
            else:
                v = v.slice(*p[1:])
        return v
    return make_view


def _split_advanced(t, items):
    """Apply the basic part as a view; return (view tensor, advanced dims in it, their index tensors).

    Ints (and 0-d integer tensors) select first, as in PyTorch: NumPy instead counts them as advanced
    indices, which moves the advanced dims to the front when an int and an array are not adjacent.
    """
    basic, adv, adv_dims, out_dim, src = [], [], [], 0, 0  # src: the dim of t an item indexes
    for kind, k in items:
        if kind == "mask":
            if k.shape != t.shape[src:src + k.ndim]:
                raise IndexError(f"index: the shape of the mask {list(k.shape)} does not match the shape "
                                 f"{list(t.shape[src:src + k.ndim])} it indexes, dims {src} to {src + k.ndim - 1} "
                                 f"of the tensor of shape {list(t.shape)}")
            src += k.ndim
            for axis in np.nonzero(k.detach().numpy()):
                adv.append(_host(t, axis.astype(np.int64)))
                basic.append(("slice", slice(None)))
                adv_dims.append(out_dim)
                out_dim += 1
        elif kind == "int" or (kind == "tensor" and k.ndim == 0):
            basic.append(("int", k if kind == "int" else int(k.item())))
        elif kind == "tensor":
            adv.append(k)
            basic.append(("slice", slice(None)))
            adv_dims.append(out_dim)
            out_dim += 1
        else:
            basic.append((kind, k))
            out_dim += 1
        if kind not in (None, "mask"):
            src += 1
    return t._view_op(_basic_view(basic, t.shape)), adv_dims, adv


def _flat_positions(v, adv_dims, adv):
    """One int64 tensor of row indices into v with the advanced dims permuted first and flattened."""
    sizes = [v.shape[d] for d in adv_dims]
    idx = []
    for i, n in zip(adv, sizes):
        if i.numel():
            lo, hi = i.amin().item(), i.amax().item()
            if lo < -n or hi >= n:
                raise IndexError(f"index {lo if lo < -n else hi} is out of bounds for dimension with size {n}")
        i = i.long()
        idx.append(i + (i < 0).long() * n)
    lin, mult = None, 1
    for i, n in reversed(list(zip(idx, sizes))):
        lin = i * mult if lin is None else lin + i * mult
        mult *= n
    bshape = broadcast_shapes(*[i.shape for i in idx])
    return lin.expand(bshape), bshape


def getitem(t, key):
    items = _expand_key(t, key)
    if not any(k[0] in ("tensor", "mask") for k in items):
        return t._view_op(_basic_view(items, t.shape))
    v, adv_dims, adv = _split_advanced(t, items)
    if not adv:  # only 0-d integer tensors: they indexed like ints
        return v
    rest = [d for d in range(v.ndim) if d not in adv_dims]
    lin, bshape = _flat_positions(v, adv_dims, adv)
    moved = v.permute(adv_dims + rest)
    flat = moved.reshape((int(np.prod([v.shape[d] for d in adv_dims])),) + tuple(v.shape[d] for d in rest))
    out = flat.index_select(0, lin.reshape(-1)).reshape(bshape + tuple(v.shape[d] for d in rest))
    adjacent = adv_dims == list(range(adv_dims[0], adv_dims[0] + len(adv_dims)))
    if adjacent and adv_dims[0] > 0:  # NumPy keeps adjacent advanced dims in place
        nb, first = len(bshape), adv_dims[0]
        order = list(range(nb, nb + first)) + list(range(nb)) + list(range(nb + first, out.ndim))
        out = out.permute(order)
    return out


def setitem(t, key, value) -> None:
    """t[key] = value: value (a tensor or number) broadcast into the selected elements, in place."""
    items = _expand_key(t, key)
    if not _is_tensor(value):
        value = _host(t, np.asarray(value, dtype=t.dtype.np))
    if not any(k[0] in ("tensor", "mask") for k in items):
        target = t.detach()._with_view(_basic_view(items, t.shape)(t._view))
        if value.requires_grad or t.requires_grad:
            from .autograd import is_grad_enabled
            if is_grad_enabled():
                raise RuntimeError("setitem: assigning into a tensor while recording gradients is not supported "
                                   "in tinytensor; build the tensor with cat/stack/where instead")
        target.copy_(value.detach())
        return
    # advanced: find the storage positions the key selects by indexing a tensor of positions
    positions = t._new_arange(t._buf.numel)._with_view(t._view)
    selected = getitem(positions, key).reshape(-1).numpy()
    n = t._buf.numel
    row = np.zeros(n, dtype=np.int64)
    row[selected] = np.arange(selected.size)  # repeated positions: the last one wins, as in NumPy
    mask = np.zeros(n, dtype=bool)
    mask[selected] = True
    vals = value.detach().to(t.dtype).expand(getitem(positions, key).shape).reshape(-1)
    storage = t.detach()._with_view(View.contiguous((n,)))
    gathered = vals.index_select(0, _host(t, row)) if vals.numel() else storage
    storage.copy_(storage.where(_host(t, ~mask), gathered))
