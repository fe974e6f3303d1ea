"""tinytensor.nn.utils: gradient clipping (torch.nn.utils.clip_grad_norm_ / clip_grad_value_).

A non-finite total norm (an inf or nan gradient somewhere) can raise (error_if_nonfinite=True), or,
with skip_nonfinite=True, clear every gradient to None so that the next optimizer.step() changes
nothing: the usual way to skip one bad step. Left out: foreach=, parameters_to_vector.
"""
from __future__ import annotations

import math
from typing import Iterable, Union

from ..autograd import no_grad
from ..creation import stack, tensor
from ..dtype import float32
from ..tensor import Tensor


def _params(parameters) -> list:
    return [parameters] if isinstance(parameters, Tensor) else list(parameters)


def clip_grad_norm_(parameters: Union[Tensor, Iterable[Tensor]], max_norm: float, norm_type: float = 2.0,
                    error_if_nonfinite: bool = False, skip_nonfinite: bool = False) -> Tensor:
    """Scale all gradients together so that their joint norm is at most max_norm; return the norm before.

    The norm is that of all gradients concatenated into one vector (norm_type 2, inf, or any p > 0).
    Gradients are scaled by min(1, max_norm / (norm + 1e-6)) as in PyTorch. A non-finite norm raises a
    RuntimeError with error_if_nonfinite; with skip_nonfinite the gradients are set to None (skip_nonfinite
    is not in PyTorch). Otherwise they are scaled by a nan factor, as PyTorch does.
    """
    params = [p for p in _params(parameters) if p.grad is not None]
    norm_type = float(norm_type)
    if not params:
        return tensor(0.0)
    with no_grad():
        grads = [p.grad.detach().to(float32) if p.grad.dtype.itemsize < 4 else p.grad.detach() for p in params]
        if norm_type == math.inf:
            norms = [g.abs().amax() if g.numel() else g.new_zeros(()) for g in grads]
            total = stack([n.to(norms[0].dtype) for n in norms]).amax()
        else:
            norms = [g.norm(norm_type) for g in grads]
            total = stack([n.to(norms[0].dtype) for n in norms]).norm(norm_type)
        value = total.item()
        if not math.isfinite(value):
            if error_if_nonfinite:
                raise RuntimeError(f"clip_grad_norm_: the total norm of order {norm_type} for gradients from "
                                   f"`parameters` is non-finite ({value}), so it cannot be clipped. To disable this "
                                   "error and scale the gradients by the non-finite norm anyway, set "
                                   "`error_if_nonfinite=False`; to skip the step, set `skip_nonfinite=True`")
            if skip_nonfinite:
                for p in params:
                    p.grad = None
                return total
        coef = min(max_norm / (value + 1e-6), 1.0) if math.isfinite(value) else max_norm / (value + 1e-6)
        for p in params:
            p.grad = p.grad * coef
    return total


def clip_grad_value_(parameters: Union[Tensor, Iterable[Tensor]], clip_value: float) -> None:
    """Clamp every gradient element into [-clip_value, clip_value]."""
    with no_grad():
        for p in _params(parameters):
            if p.grad is not None:
                p.grad = p.grad.clamp(-clip_value, clip_value)
