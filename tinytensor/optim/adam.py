"""Adam (Kingma & Ba 2015) and AdamW (Loshchilov & Hutter 2019, decoupled weight decay): PyTorch's update.

Per parameter, at step t:
    AdamW: p = p * (1 - lr * weight_decay)        Adam: g = g + weight_decay * p  (L2 in the gradient)
    m = beta1 * m + (1 - beta1) * g               v = beta2 * v + (1 - beta2) * g^2
    vmax = max(vmax, v)  (amsgrad, used for v below)
    p = p - lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
State per parameter: step (an int, PyTorch keeps a tensor), exp_avg, exp_avg_sq, max_exp_avg_sq (amsgrad).
Plain AdamW steps (no amsgrad or maximize) run as one fused kernel over all parameters of a dtype
(tinytensor/fused.py); the rest with Tensor ops. Left out: capturable variants, complex parameters.
"""
from __future__ import annotations

import math
from typing import Tuple

from .. import fused
from .optimizer import Optimizer, _params_with_grad


class Adam(Optimizer):
    _decoupled = False

    def __init__(self, params, lr: float = 1e-3, betas: Tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0, amsgrad: bool = False, *, maximize: bool = False):
        if lr < 0.0:
            raise ValueError(f"Invalid learning rate: {lr}")
        if eps < 0.0:
            raise ValueError(f"Invalid epsilon value: {eps}")
        for i, b in enumerate(betas):
            if not 0.0 <= b < 1.0:
                raise ValueError(f"Invalid beta parameter at index {i}: {b}")
        if weight_decay < 0.0:
            raise ValueError(f"Invalid weight_decay value: {weight_decay}")
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay,
                                      amsgrad=amsgrad, maximize=maximize))

    def _update_group(self, group: dict) -> None:
        lr, (beta1, beta2), eps, wd = group["lr"], group["betas"], group["eps"], group["weight_decay"]
        batches: dict = {}  # (dtype, device, step) -> parameters for one fused AdamW kernel call
        for p in _params_with_grad(group):
            state = self.state.setdefault(p, {})
            if not state:
                state["step"] = 0
                state["exp_avg"], state["exp_avg_sq"] = p.new_zeros(p.shape), p.new_zeros(p.shape)
                if group["amsgrad"]:
                    state["max_exp_avg_sq"] = p.new_zeros(p.shape)
            state["step"] += 1
            if self._fusable(group, p):
                batches.setdefault((p.dtype, p.device, state["step"]), []).append(p)
            else:
                self._update(p, state, group)
        for (_, _, step), params in batches.items():
            fused.adamw_(params, [p.grad for p in params], [self.state[p]["exp_avg"] for p in params],
                         [self.state[p]["exp_avg_sq"] for p in params], lr, beta1, beta2, eps,
                         wd if self._decoupled else 0.0, step)

    def _fusable(self, group: dict, p) -> bool:
        """The fused kernel does plain AdamW (Adam without weight decay) on contiguous tensors."""
        return (not group["amsgrad"] and not group["maximize"] and (self._decoupled or group["weight_decay"] == 0)
                and p.is_contiguous() and fused.fits(p, p.grad))

    def _update(self, p, state: dict, group: dict) -> None:
        """The update of the module docstring with Tensor ops (amsgrad, maximize, Adam's L2 decay)."""
        lr, (beta1, beta2), eps, wd = group["lr"], group["betas"], group["eps"], group["weight_decay"]
        g = -p.grad if group["maximize"] else p.grad
        step = state["step"]
        if wd != 0:
            if self._decoupled:
                p.mul_(1 - lr * wd)
            else:
                g = g.add(p, alpha=wd)
        m, v = state["exp_avg"], state["exp_avg_sq"]
        m.lerp_(g, 1 - beta1)
        v.mul_(beta2).addcmul_(g, g, value=1 - beta2)
        if group["amsgrad"]:
            vmax = state["max_exp_avg_sq"]
            vmax.copy_(vmax.maximum(v))
            v = vmax
        bias_correction2_sqrt = math.sqrt(1 - beta2 ** step)
        denom = v.sqrt() / bias_correction2_sqrt + eps
        p.addcdiv_(m, denom, value=-lr / (1 - beta1 ** step))


class AdamW(Adam):
    """Adam with decoupled weight decay (p *= 1 - lr * weight_decay before the Adam step); default decay 0.01."""

    _decoupled = True

    def __init__(self, params, lr: float = 1e-3, betas: Tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 1e-2, amsgrad: bool = False, *, maximize: bool = False):
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, maximize=maximize)
