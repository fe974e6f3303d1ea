"""tinytensor.nn.functional: activations and helpers as composites of Tensor ops (no backward code).

Names and arguments follow torch.nn.functional. The losses and norms arrive with the nn chapter.
"""
from __future__ import annotations

import math

from ..dtype import int64
from ..creation import arange
from ..tensor import Tensor


def relu(x: Tensor) -> Tensor:
    return x.relu()


def sigmoid(x: Tensor) -> Tensor:
    return x.sigmoid()


def tanh(x: Tensor) -> Tensor:
    return x.tanh()


def gelu(x: Tensor, approximate: str = "none") -> Tensor:
    """GELU: exact x * Phi(x) with erf, or GPT-2's tanh approximation (approximate='tanh')."""
    if approximate == "tanh":
        return 0.5 * x * (1 + (math.sqrt(2 / math.pi) * (x + 0.044715 * x * x * x)).tanh())
    if approximate != "none":
        raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")
    return 0.5 * x * (1 + (x * (1 / math.sqrt(2))).erf())


def silu(x: Tensor) -> Tensor:
    return x * x.sigmoid()


def softmax(x: Tensor, dim: int) -> Tensor:
    return x.softmax(dim)


def log_softmax(x: Tensor, dim: int) -> Tensor:
    return x.log_softmax(dim)


def one_hot(tensor: Tensor, num_classes: int = -1) -> Tensor:
    """int64 one-hot encoding along a new last dim (num_classes=-1: max + 1)."""
    if tensor.dtype.kind not in "iu":
        raise TypeError(f"one_hot: expected an integer tensor, got {tensor.dtype}")
    if num_classes < 0:
        num_classes = tensor.amax().item() + 1 if tensor.numel() else 0
    if tensor.numel() and (tensor.amin().item() < 0 or tensor.amax().item() >= num_classes):
        raise ValueError(f"one_hot: class values must be in [0, {num_classes})")
    classes = arange(num_classes, device=tensor.device)
    return (tensor.unsqueeze(-1) == classes).to(int64)
