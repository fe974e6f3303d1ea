"""Learning-rate schedules: LambdaLR, StepLR, CosineAnnealingLR and linear warmup + cosine decay.

A scheduler sets `group["lr"]` of its optimizer from the epoch counter `last_epoch`; construction
applies epoch 0 and each `step()` the next one (call it after `optimizer.step()`). Every schedule here
is a closed-form function of the epoch, so a scheduler restored from state_dict() continues exactly.
Differences from PyTorch: CosineAnnealingLR uses the closed form rather than PyTorch's recursive update
(equal up to rounding), and `step(epoch)` is not supported. Left out: the other PyTorch schedules
(OneCycleLR, ReduceLROnPlateau, ...) and chaining.
"""
from __future__ import annotations

import math
from typing import Callable, List, Union

from .optimizer import Optimizer


class LRScheduler:
    def __init__(self, optimizer: Optimizer, last_epoch: int = -1):
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"{type(optimizer).__name__} is not an Optimizer")
        self.optimizer = optimizer
        for i, group in enumerate(optimizer.param_groups):
            if last_epoch == -1:
                group.setdefault("initial_lr", group["lr"])
            elif "initial_lr" not in group:
                raise KeyError(f"param 'initial_lr' is not specified in param_groups[{i}] when resuming an optimizer")
        self.base_lrs = [g["initial_lr"] for g in optimizer.param_groups]
        self.last_epoch = last_epoch
        self.step()

    def lr_at(self, base_lr: float, epoch: int, index: int) -> float:
        """The learning rate of group `index` (whose initial rate is base_lr) at `epoch`."""
        raise NotImplementedError

    def get_lr(self) -> List[float]:
        return [self.lr_at(base, self.last_epoch, i) for i, base in enumerate(self.base_lrs)]

    def get_last_lr(self) -> List[float]:
        return list(self._last_lr)

    def step(self) -> None:
        self.last_epoch += 1
        lrs = self.get_lr()
        for group, lr in zip(self.optimizer.param_groups, lrs):
            group["lr"] = lr
        self._last_lr = lrs

    def state_dict(self) -> dict:
        """Every attribute except the optimizer and functions (JSON-friendly numbers and lists)."""
        return {k: v for k, v in self.__dict__.items() if k != "optimizer" and not callable(v)
                and not (isinstance(v, list) and any(callable(x) for x in v))}

    def load_state_dict(self, state_dict: dict) -> None:
        """Restore what state_dict() gave; ValueError, and nothing changed, when an entry is unknown or of
        the wrong kind (numbers must be finite, lists as long as they are now)."""
        self.prepare_load(state_dict)()

    def prepare_load(self, state_dict: dict) -> Callable[[], None]:
        """Checks state_dict against the current attributes; returns the function that installs it."""
        who = f"{type(self).__name__}.load_state_dict"
        if not isinstance(state_dict, dict):
            raise ValueError(f"{who}: expected a dict, got {type(state_dict).__name__}")
        for k, v in state_dict.items():
            if k not in self.__dict__:
                raise ValueError(f"{who}: unknown entry {k!r}")
            if not _same_kind(self.__dict__[k], v):
                raise ValueError(f"{who}: {k} = {v!r} does not fit the current {self.__dict__[k]!r} "
                                 f"(finite numbers, lists of the same length)")
        return lambda: self.__dict__.update(state_dict)


def _same_kind(now, saved) -> bool:
    """Whether a saved scheduler attribute can replace the current one: int for int, finite number for
    number, a list of as many such values for a list."""
    if isinstance(now, bool) or now is None or isinstance(now, str):
        return type(saved) is type(now)
    if isinstance(now, int):
        return isinstance(saved, int) and not isinstance(saved, bool)
    if isinstance(now, float):
        return isinstance(saved, (int, float)) and not isinstance(saved, bool) and math.isfinite(saved)
    if isinstance(now, (list, tuple)):
        return isinstance(saved, (list, tuple)) and len(saved) == len(now) and all(map(_same_kind, now, saved))
    return True


class LambdaLR(LRScheduler):
    """lr = initial_lr * lr_lambda(epoch); one function, or one per parameter group."""

    def __init__(self, optimizer: Optimizer, lr_lambda: Union[Callable[[int], float], List[Callable]],
                 last_epoch: int = -1):
        n = len(optimizer.param_groups)
        self.lr_lambdas = list(lr_lambda) if isinstance(lr_lambda, (list, tuple)) else [lr_lambda] * n
        if len(self.lr_lambdas) != n:
            raise ValueError(f"expected {n} lr_lambdas, but got {len(self.lr_lambdas)}")
        super().__init__(optimizer, last_epoch)

    def lr_at(self, base_lr, epoch, index):
        return base_lr * self.lr_lambdas[index](epoch)


class StepLR(LRScheduler):
    """lr = initial_lr * gamma ** (epoch // step_size)."""

    def __init__(self, optimizer: Optimizer, step_size: int, gamma: float = 0.1, last_epoch: int = -1):
        if step_size <= 0:
            raise ValueError(f"StepLR: step_size must be positive, got {step_size}")
        self.step_size, self.gamma = step_size, gamma
        super().__init__(optimizer, last_epoch)

    def lr_at(self, base_lr, epoch, index):
        return base_lr * self.gamma ** (epoch // self.step_size)


class CosineAnnealingLR(LRScheduler):
    """lr = eta_min + (initial_lr - eta_min) * (1 + cos(pi * epoch / T_max)) / 2 (SGDR without restarts)."""

    def __init__(self, optimizer: Optimizer, T_max: int, eta_min: float = 0.0, last_epoch: int = -1):
        if T_max <= 0:
            raise ValueError(f"CosineAnnealingLR: T_max must be positive, got {T_max}")
        self.T_max, self.eta_min = T_max, eta_min
        super().__init__(optimizer, last_epoch)

    def lr_at(self, base_lr, epoch, index):
        return self.eta_min + (base_lr - self.eta_min) * (1 + math.cos(math.pi * epoch / self.T_max)) / 2


def warmup_cosine(step: int, warmup_steps: int, total_steps: int, min_ratio: float = 0.0) -> float:
    """The factor of the peak lr at `step`: linear from 1/warmup_steps up to 1 over the first warmup_steps,
    then a half cosine down to min_ratio at total_steps, and min_ratio after (nanoGPT's schedule)."""
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    if step >= total_steps:
        return min_ratio
    progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
    return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


class WarmupCosineLR(LRScheduler):
    """lr = initial_lr * warmup_cosine(epoch, warmup_steps, total_steps, min_lr_ratio). Not in PyTorch."""

    def __init__(self, optimizer: Optimizer, warmup_steps: int, total_steps: int, min_lr_ratio: float = 0.0,
                 last_epoch: int = -1):
        if warmup_steps < 0 or total_steps < warmup_steps:
            raise ValueError(f"WarmupCosineLR: need 0 <= warmup_steps <= total_steps, got {warmup_steps} and "
                             f"{total_steps}")
        self.warmup_steps, self.total_steps, self.min_lr_ratio = warmup_steps, total_steps, min_lr_ratio
        super().__init__(optimizer, last_epoch)

    def lr_at(self, base_lr, epoch, index):
        return base_lr * warmup_cosine(epoch, self.warmup_steps, self.total_steps, self.min_lr_ratio)
