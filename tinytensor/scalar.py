"""A scalar autograd engine: one Python float per node, the starting point of the course.

`Value` wraps a single number and records how it was computed. Calling `backward()` on the
final result walks that record in reverse and fills `.grad` on every Value that fed into it,
by the chain rule: each op knows its local derivative and multiplies it by the gradient
arriving from above. The forward and backward of every op sit side by side below.

What it leaves out, on purpose: tensors (every number is its own node, so it is slow), dtypes
and devices, `no_grad`, freeing the graph after backward (it can be called again), and
higher-order gradients (the backward pass is plain float arithmetic, not more Values). The
Tensor library in the rest of tinytensor does all of that; this file imports none of it.
"""
import math


class Value:
    """One number in a computation graph, with the gradient of the final output w.r.t. it."""

    def __init__(self, data: float, _children: tuple = (), _op: str = ""):
        self.data = float(data)
        self.grad = 0.0
        self._prev = _children          # the Values this one was computed from
        self._op = _op                  # for printing and drawing graphs
        # _backward(g) adds g * d(self)/d(child) to each child's grad, where g is self.grad.
        # It gets g as an argument rather than reading self.grad so that it holds no reference
        # back to self: a graph without reference cycles is freed the moment it is dropped,
        # instead of waiting for (and slowing down) Python's cycle collector.
        self._backward = lambda g: None

    # Binary ops. Each one computes `out`, then defines how out.grad flows back to its inputs.
    # Gradients are accumulated with += because a Value may be used more than once.

    def __add__(self, other) -> "Value":
        other = other if isinstance(other, Value) else Value(other)
        out = Value(self.data + other.data, (self, other), "+")

        def _backward(g):               # d(a+b)/da = 1, d(a+b)/db = 1
            self.grad += g
            other.grad += g
        out._backward = _backward
        return out

    def __mul__(self, other) -> "Value":
        other = other if isinstance(other, Value) else Value(other)
        out = Value(self.data * other.data, (self, other), "*")

        def _backward(g):               # d(a*b)/da = b, d(a*b)/db = a
            self.grad += other.data * g
            other.grad += self.data * g
        out._backward = _backward
        return out

    def __pow__(self, k: float) -> "Value":
        if not isinstance(k, (int, float)):
            raise TypeError(f"Value ** {type(k).__name__}: only a plain number exponent is supported")
        out = Value(self.data ** k, (self,), f"**{k}")

        def _backward(g):               # d(a**k)/da = k * a**(k-1)
            self.grad += k * self.data ** (k - 1) * g
        out._backward = _backward
        return out

    # Unary ops.

    def exp(self) -> "Value":
        e = math.exp(self.data)
        out = Value(e, (self,), "exp")

        def _backward(g):               # d(e^a)/da = e^a
            self.grad += e * g
        out._backward = _backward
        return out

    def log(self) -> "Value":
        out = Value(math.log(self.data), (self,), "log")

        def _backward(g):               # d(ln a)/da = 1/a
            self.grad += g / self.data
        out._backward = _backward
        return out

    def tanh(self) -> "Value":
        t = math.tanh(self.data)
        out = Value(t, (self,), "tanh")

        def _backward(g):               # d(tanh a)/da = 1 - tanh(a)^2
            self.grad += (1.0 - t * t) * g
        out._backward = _backward
        return out

    def relu(self) -> "Value":
        out = Value(max(self.data, 0.0), (self,), "relu")

        def _backward(g):               # slope 1 where the input was positive, else 0
            self.grad += g if self.data > 0 else 0.0
        out._backward = _backward
        return out

    def sigmoid(self) -> "Value":
        # Two formulas so that exp never overflows: exp(-|a|) is always <= 1.
        e = math.exp(-abs(self.data))
        s = 1.0 / (1.0 + e) if self.data >= 0 else e / (1.0 + e)
        out = Value(s, (self,), "sigmoid")

        def _backward(g):               # d(sigma a)/da = sigma(a) * (1 - sigma(a))
            self.grad += s * (1.0 - s) * g
        out._backward = _backward
        return out

    # Everything else is built from the ops above, so it needs no backward of its own.

    def __neg__(self) -> "Value":
        return self * -1

    def __sub__(self, other) -> "Value":
        return self + (-other)

    def __truediv__(self, other) -> "Value":
        return self * other ** -1

    def __radd__(self, other) -> "Value":     # 2 + v
        return self + other

    def __rsub__(self, other) -> "Value":     # 2 - v
        return (-self) + other

    def __rmul__(self, other) -> "Value":     # 2 * v
        return self * other

    def __rtruediv__(self, other) -> "Value":  # 2 / v
        return self ** -1 * other

    def backward(self) -> None:
        """Seed d(self)/d(self) = 1 and push gradients back to every Value this one depends on.

        A node may only run its _backward once all nodes that use it have added their share to
        its grad, so we first order the graph topologically. The walk uses an explicit stack
        rather than recursion, so a chain of 100,000 ops does not hit Python's recursion limit.
        """
        topo, visited = [], set()
        stack = [(self, False)]           # (node, are its children already done?)
        while stack:
            node, children_done = stack.pop()
            if children_done:
                topo.append(node)         # post-order: after everything it was computed from
            elif node not in visited:
                visited.add(node)
                stack.append((node, True))
                stack.extend((child, False) for child in node._prev if child not in visited)
        for node in topo:
            if node._prev:                # interior nodes start from zero on every call, while
                node.grad = 0.0           # leaves (weights, inputs) accumulate, as in PyTorch
        self.grad += 1.0                  # d(self)/d(self)
        for node in reversed(topo):
            node._backward(node.grad)

    def __repr__(self) -> str:
        return f"Value(data={self.data:.6g}, grad={self.grad:.6g})"
