"""Optimizer: the base class that owns parameter groups, per-parameter state and their (de)serialisation.

Subclasses implement `step()`; updates run under no_grad with in-place tensor ops, so parameters keep
their identity (and memory). state_dict() has PyTorch's layout: {"state": {index: {...}}, "param_groups":
[{hyperparameters..., "params": [indices]}]}, with indices counted across groups in order.
Left out: hooks, `foreach`/`fused`/`capturable` implementations, sparse gradients.
"""
from __future__ import annotations

import math
from typing import Callable, Iterable, Optional

from ..autograd import enable_grad, no_grad
from ..tensor import Tensor


class Optimizer:
    def __init__(self, params, defaults: dict):
        self.defaults = defaults
        self.state: dict = {}  # Tensor -> dict (Tensors hash by identity)
        self.param_groups: list = []
        if isinstance(params, Tensor):
            raise TypeError("params argument given to the optimizer should be an iterable of Tensors or dicts, "
                            "but got a Tensor")
        groups = list(params)
        if not groups:
            raise ValueError("optimizer got an empty parameter list")
        if not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        for g in groups:
            self.add_param_group(g)

    def add_param_group(self, param_group: dict) -> None:
        """Add a group of parameters with its own hyperparameters (missing ones come from the defaults)."""
        group = dict(param_group)
        params = group["params"]
        group["params"] = [params] if isinstance(params, Tensor) else list(params)
        for p in group["params"]:
            if not isinstance(p, Tensor):
                raise TypeError(f"optimizer can only optimize Tensors, but one of the params is {type(p).__name__}")
            if not p.is_leaf:
                raise ValueError("can't optimize a non-leaf Tensor")
        for key, value in self.defaults.items():
            group.setdefault(key, value)
        seen = {id(p) for g in self.param_groups for p in g["params"]}
        if any(id(p) in seen for p in group["params"]):
            raise ValueError("some parameters appear in more than one parameter group")
        self.param_groups.append(group)

    def zero_grad(self, set_to_none: bool = True) -> None:
        for g in self.param_groups:
            for p in g["params"]:
                if p.grad is not None:
                    p.grad = None if set_to_none else p.grad.new_zeros(p.grad.shape)

    def step(self, closure: Optional[Callable[[], float]] = None):
        """Run the closure (with grad enabled) if given, update every parameter that has a grad, return the loss."""
        loss = None
        if closure is not None:
            with enable_grad():
                loss = closure()
        with no_grad():
            for group in self.param_groups:
                self._update_group(group)
        return loss

    def _update_group(self, group: dict) -> None:
        raise NotImplementedError

    # ---- saving and loading ----------------------------------------------------------------------------

    def state_dict(self) -> dict:
        """Hyperparameters and per-parameter state, with parameters replaced by their index; tensors are shared."""
        index, groups, n = {}, [], 0
        for g in self.param_groups:
            for p in g["params"]:
                if id(p) not in index:
                    index[id(p)] = n
                    n += 1
            packed = {k: v for k, v in g.items() if k != "params"}
            packed["params"] = [index[id(p)] for p in g["params"]]
            groups.append(packed)
        state = {index[id(p)]: dict(s) for p, s in self.state.items() if id(p) in index}
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: dict) -> None:
        """Restore hyperparameters and state; tensors are copied and cast to the parameter's dtype.

        Index keys may be ints or their strings (a JSON round trip); lists become tuples where the
        default is a tuple (betas). Raises ValueError when groups or sizes do not match, a state
        tensor's shape differs from its parameter's, or a hyperparameter is not a finite number of the
        kind its default is (betas: a pair in [0, 1)). Nothing changes unless every check passes.
        """
        self.prepare_load(state_dict)()

    def prepare_load(self, state_dict: dict) -> Callable[[], None]:
        """Checks state_dict and builds the new state aside; returns the function that installs it.

        Lets a caller (load_checkpoint) check several objects before changing any of them.
        """
        if not isinstance(state_dict, dict) or "param_groups" not in state_dict or "state" not in state_dict:
            raise ValueError("load_state_dict: expected a dict with 'state' and 'param_groups'")
        saved_groups, saved_state = state_dict["param_groups"], state_dict["state"]
        if not isinstance(saved_groups, list) or not all(isinstance(g, dict) for g in saved_groups):
            raise ValueError("load_state_dict: 'param_groups' must be a list of dicts")
        if not isinstance(saved_state, dict):
            raise ValueError("load_state_dict: 'state' must be a dict of parameter index -> state")
        if len(saved_groups) != len(self.param_groups):
            raise ValueError(f"loaded state dict has {len(saved_groups)} parameter groups, the optimizer has "
                             f"{len(self.param_groups)}")
        by_index, new_groups = {}, []
        for i, (mine, saved) in enumerate(zip(self.param_groups, saved_groups)):
            if not isinstance(saved.get("params"), list) or len(mine["params"]) != len(saved["params"]):
                raise ValueError(f"loaded state dict contains a parameter group {i} of {len(saved.get('params', []))} "
                                 f"parameters that doesn't match the size of optimizer's group "
                                 f"({len(mine['params'])})")
            by_index.update({int(k): p for k, p in zip(saved["params"], mine["params"])})
            new_groups.append({k: self._hyperparameter(i, k, v) for k, v in saved.items() if k != "params"})
        new_state = {}
        for key, saved in saved_state.items():
            p = by_index.get(int(key))
            if p is None or not isinstance(saved, dict):
                raise ValueError(f"loaded state dict has state for parameter index {key}, which no group holds")
            new_state[p] = {name: self._restore(p, name, v) for name, v in saved.items()}

        def install() -> None:
            for mine, saved in zip(self.param_groups, new_groups):
                mine.update(saved)
            self.state = new_state
        return install

    def _hyperparameter(self, group: int, key: str, value):
        """A saved hyperparameter checked against the kind of its default (initial_lr: the scheduler's)."""
        default = self.defaults.get(key, 0.0 if key == "initial_lr" else None)
        bad = ValueError(f"loaded state dict: param_groups[{group}].{key} = {value!r} is not a valid value")
        if isinstance(default, bool):
            if not isinstance(value, bool):
                raise bad
        elif isinstance(default, (int, float)):
            if not _finite(value) or (key in ("lr", "initial_lr", "eps", "weight_decay") and value < 0):
                raise bad
        elif isinstance(default, tuple):
            if not isinstance(value, (list, tuple)) or len(value) != len(default) or not all(map(_finite, value)):
                raise bad
            if key == "betas" and not all(0.0 <= b < 1.0 for b in value):
                raise bad
            return tuple(value)
        return value

    @staticmethod
    def _restore(p: Tensor, name: str, value):
        if not isinstance(value, Tensor):
            if not _finite(value):
                raise ValueError(f"loaded state {name!r} is {value!r}, neither a tensor nor a finite number")
            return value
        if tuple(value.shape) != tuple(p.shape):
            raise ValueError(f"loaded state {name!r} has shape {tuple(value.shape)}, the parameter has "
                             f"{tuple(p.shape)}")
        out = p.new_zeros(value.shape, value.dtype if not value.dtype.is_floating_point else p.dtype)
        with no_grad():
            out.copy_(value)
        return out

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__} ("]
        for i, g in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            lines += [f"    {k}: {v}" for k, v in sorted(g.items()) if k != "params"]
        return "\n".join(lines) + "\n)"


def _finite(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def _params_with_grad(group: dict) -> Iterable[Tensor]:
    return (p for p in group["params"] if p.grad is not None)
