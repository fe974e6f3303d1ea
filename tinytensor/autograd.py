"""Reverse-mode autodiff: the Function base class, grad mode, and the graph walk.

A Function's `forward` computes on tensors that carry no graph; `apply` then records a Node
when any input needs a gradient. `backward(grad)` returns one gradient per tensor input (or None).
The walk is iterative (a 100,000-op chain does not touch the recursion limit), frees saved
tensors unless `retain_graph`, and refuses saved tensors modified in place since they were saved.
Left out: higher-order gradients (create_graph) and hooks.
"""
from __future__ import annotations

import contextlib
import functools
import threading


class _State(threading.local):
    enabled = True  # grad mode, per thread


_state = _State()


def is_grad_enabled() -> bool:
    return _state.enabled


def _set_enabled(mode: bool) -> None:
    _state.enabled = bool(mode)


class _GradMode(contextlib.ContextDecorator):
    """Context manager and decorator that sets grad mode and restores it on exit."""

    def __init__(self, mode: bool):
        self.mode = mode

    def __enter__(self):
        self.prev = is_grad_enabled()
        _set_enabled(self.mode)

    def __exit__(self, *exc):
        _set_enabled(self.prev)
        return False

    def __call__(self, fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with _GradMode(self.mode):
                return fn(*args, **kwargs)
        return wrapper


class set_grad_enabled(_GradMode):
    """Set grad mode at once (a plain call), or for a block or function (`with`, decorator), as PyTorch's."""

    def __init__(self, mode: bool):
        super().__init__(mode)
        self.prev = is_grad_enabled()
        _set_enabled(mode)

    def __enter__(self):  # the mode before the call is restored on exit
        _set_enabled(self.mode)

    def __call__(self, fn):  # as a decorator it changes nothing until the function runs
        _set_enabled(self.prev)
        return super().__call__(fn)


def no_grad(fn=None):
    """Context manager or decorator (`@no_grad()` or `@no_grad`) that turns gradient recording off."""
    return _GradMode(False) if fn is None else _GradMode(False)(fn)


def enable_grad():
    return _GradMode(True)


class Function:
    """One differentiable primitive. Subclasses define forward(ctx, ...) and backward(ctx, grad).

    The instance is the context: `ctx.save_for_backward(*tensors)`, `ctx.saved_tensors`, plain
    attributes for anything else. `next` holds, per tensor input, its Node, a leaf Tensor that
    wants a gradient, or None.
    """

    # defaults, so a node that records nothing costs nothing; _recording is set by apply() before
    # forward runs, when the output will be part of a graph
    _freed, _recording, retained, _saved = False, False, None, ()

    def save_for_backward(self, *tensors) -> None:
        if self._recording:  # forward without a graph: nothing will ever read them
            self._saved = tuple((t, t._buf.version) if t is not None else None for t in tensors)

    @property
    def name(self) -> str:
        """The op for error messages: 'exp (Unary)', or the class name when it is one op."""
        op = self.__dict__.get("op")
        return f"{op} ({type(self).__name__})" if isinstance(op, str) else type(self).__name__

    @property
    def saved_tensors(self):
        if self._freed:
            raise RuntimeError(f"{self.name}: trying to backward through the graph a second time; "
                               "saved tensors were freed after the first backward (use retain_graph=True)")
        out = []
        for item in self._saved:
            if item is None:
                out.append(None)
                continue
            t, version = item
            if t._buf.version != version:
                raise RuntimeError(f"{self.name}: a tensor of shape {t.shape} needed for gradient "
                                   f"computation was modified by an in-place operation (version {t._buf.version},"
                                   f" expected {version})")
            out.append(t)
        return tuple(out)

    @classmethod
    def apply(cls, *args, **kwargs):
        ctx = cls()
        if _state.enabled:
            for a in args:  # a plain loop: this runs for every op, and most ops record nothing
                if getattr(a, "requires_grad", False):
                    ctx._recording = True
                    break
        out = ctx.forward(*args, **kwargs)
        if not ctx._recording:
            return out
        inputs = [a for a in args if hasattr(a, "_buf")]  # the Tensor arguments
        ctx.next = tuple((t.grad_fn if t.grad_fn is not None else t) if t.requires_grad else None for t in inputs)
        for o in (out if isinstance(out, tuple) else (out,)):
            if o.dtype.is_floating_point:
                o.requires_grad, o.grad_fn = True, ctx
        return out

    def free(self) -> None:
        self._saved, self._freed = (), True


def _topo_order(root: Function):
    """Nodes reachable from root, each after every node that feeds it a gradient (iterative DFS)."""
    # a node is marked when expanded, not when pushed: one pushed early (by root) but reached again
    # through a longer path (root -> b -> node) must still finish before b does
    order, seen, stack = [], set(), [(root, False)]
    while stack:
        node, expanded = stack.pop()
        if expanded:
            order.append(node)
            continue
        if id(node) in seen:
            continue
        seen.add(id(node))
        stack.append((node, True))
        for nxt in node.next:
            if isinstance(nxt, Function) and id(nxt) not in seen:
                stack.append((nxt, False))
    return order[::-1]


def _accumulate(leaf, grad) -> None:
    grad = grad.detach()
    # a fresh copy the first time: the incoming gradient may be shared with other leaves (add passes one
    # tensor to both inputs) or be a stride-0 expand, and users and optimizers write .grad in place
    leaf.grad = grad.clone() if leaf.grad is None else leaf.grad + grad


def run_backward(root, grad, retain_graph: bool = False) -> None:
    """Backpropagate `grad` from the tensor `root` into the .grad of the leaves it depends on."""
    if root.grad_fn is None:
        _accumulate(root, grad)
        return
    grads = {id(root.grad_fn): grad}
    with no_grad():
        for node in _topo_order(root.grad_fn):
            g = grads.pop(id(node), None)
            if g is None:
                continue
            if node._freed:
                raise RuntimeError(f"backward: trying to backward through the graph a second time (at {node.name}; "
                                   "its saved tensors were freed by the first backward); use retain_graph=True")
            if node.retained is not None and node.retained() is not None:
                _accumulate(node.retained(), g)
            in_grads = node.backward(g)
            if not isinstance(in_grads, tuple):
                in_grads = (in_grads,)
            if not retain_graph:
                node.free()
            for nxt, ig in zip(node.next, in_grads):
                if nxt is None or ig is None:
                    continue
                if isinstance(nxt, Function):
                    prev = grads.get(id(nxt))
                    grads[id(nxt)] = ig if prev is None else prev + ig
                else:
                    _accumulate(nxt, ig)
