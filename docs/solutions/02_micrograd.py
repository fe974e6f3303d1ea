"""Reference solutions to the exercises of lesson 02 (docs/02_micrograd.md): backpropagation by hand.

1. a new primitive for tinytensor.scalar.Value, with its own backward (sin);
2. one tanh neuron, forward and backward in plain floats, by the chain rule;
3. softmax cross-entropy built from Value ops, safe for large logits.

tests/test_lesson_02_micrograd.py checks them against closed forms (cos, softmax - onehot), float64
central finite differences and the Value engine's own backward.
"""
import math
from typing import List, NamedTuple, Sequence

from tinytensor.scalar import Value


# ---- exercise 1: a new op with its own backward ---------------------------------------------------

def value_sin(a: Value) -> Value:
    """sin(a) as a graph node: forward math.sin, backward d(sin a)/da = cos a.

    The pattern of every op in scalar.py: compute the output, list its inputs as children, and give it
    a _backward(g) that adds g * (local derivative) to each child's grad (+=, as a may be used twice).
    """
    out = Value(math.sin(a.data), (a,), "sin")
    local = math.cos(a.data)

    def _backward(g):
        a.grad += local * g
    out._backward = _backward
    return out


# ---- exercise 2: one neuron by hand ---------------------------------------------------------------

class NeuronGrads(NamedTuple):
    out: float          # tanh(w . x + b)
    dw: List[float]     # d out / d w_i
    db: float           # d out / d b
    dx: List[float]     # d out / d x_i


def neuron_by_hand(x: Sequence[float], w: Sequence[float], b: float) -> NeuronGrads:
    """Forward pass, then the chain rule backwards through tanh, the sum and the products.

    out = tanh(z), z = b + sum_i w_i x_i.  d out / dz = 1 - tanh(z)^2; dz/db = 1; dz/dw_i = x_i;
    dz/dx_i = w_i. Each gradient is the product along its path.
    """
    z = b + sum(wi * xi for wi, xi in zip(w, x))
    out = math.tanh(z)
    dz = 1.0 - out * out
    return NeuronGrads(out, [dz * xi for xi in x], dz, [dz * wi for wi in w])


# ---- exercise 3: cross-entropy from Value ops -----------------------------------------------------

def value_cross_entropy(logits: List[Value], target: int) -> Value:
    """-log softmax(logits)[target] = log(sum_j exp(z_j - m)) - (z_target - m), with m = max_j z_j.

    Subtracting m keeps every exp(...) at most 1, so exp never overflows. m is taken as a plain
    number (a constant, no node): the result does not depend on m, so its gradient through m is zero.
    """
    m = max(z.data for z in logits)
    shifted = [z - m for z in logits]
    total = sum((s.exp() for s in shifted[1:]), shifted[0].exp())
    return total.log() - shifted[target]
