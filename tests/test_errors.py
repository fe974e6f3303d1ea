"""Bad calls raise the exception type a Python user expects, with a message that names the op and the
offending values (DESIGN.md section 6): ValueError for shapes, IndexError for dims and indices,
TypeError for dtypes, RuntimeError for graphs and devices. One table: (call, type, substrings).

Where PyTorch raises RuntimeError for a bad shape, tinytensor raises ValueError (as DESIGN.md asks);
requires_grad on an integer tensor is a RuntimeError, as in PyTorch.
"""
import re

import numpy as np
import pytest

import tinytensor as tt


def a23():
    return tt.arange(6.0).reshape(2, 3)


def _read_only():
    """A tensor sharing the memory of a read-only NumPy array: writes raise (PyTorch only warns at from_numpy)."""
    a = np.ones(3, np.float32)
    a.setflags(write=False)
    return tt.from_numpy(a)


def _saved_then_modified():
    x = tt.tensor([0.5, 1.0], requires_grad=True)
    y = x.exp()
    y.add_(1)
    y.sum().backward()


def _backward_twice():
    x = tt.tensor([0.5, 1.0], requires_grad=True)
    loss = (x * x).sum()
    loss.backward()
    loss.backward()


def _setitem_while_recording():
    x = tt.tensor([0.5, 1.0], requires_grad=True)
    y = x * 2
    y[0] = 3.0


def _inplace_view_while_recording():
    x = tt.tensor([0.5, 1.0], requires_grad=True)
    (x * 2)[1:].mul_(2)


def leaf():
    return tt.tensor([1.0, 2.0], requires_grad=True)


CASES = [
    # shapes
    ("add broadcast", lambda: a23() + tt.ones(4), ValueError, ["add", "(2, 3)", "(4,)", "3 vs 4"]),
    ("mul broadcast", lambda: a23() * tt.ones(3, 1), ValueError, ["mul", "(2, 3)", "(3, 1)"]),
    ("where broadcast", lambda: tt.where(tt.ones(2, dtype=tt.bool), a23(), tt.ones(3)), ValueError,
     ["where", "(2,)", "(2, 3)"]),
    ("matmul", lambda: tt.ones(2, 3) @ tt.ones(4, 5), ValueError, ["matmul", "(2, 3)", "(4, 5)", "3 != 4"]),
    ("matmul 0-d", lambda: tt.ones(2) @ tt.tensor(1.0), ValueError, ["matmul", "(2,)", "()"]),
    ("matmul batch", lambda: tt.ones(2, 2, 3) @ tt.ones(3, 3, 4), ValueError, ["matmul", "(2,)", "(3,)"]),
    ("expand", lambda: a23().expand(2, 4), ValueError, ["expand", "(2, 3)", "(2, 4)"]),
    ("expand fewer dims", lambda: a23().expand(6), ValueError, ["expand", "(6,)", "(2, 3)"]),
    ("reshape numel", lambda: a23().reshape(4, 2), ValueError, ["reshape", "(4, 2)", "size 6"]),
    ("view numel", lambda: a23().view(5), ValueError, ["view", "(5,)", "size 6"]),
    ("reshape two -1", lambda: a23().reshape(-1, -1), ValueError, ["reshape", "(-1, -1)"]),
    ("view of a transposed tensor", lambda: a23().T.view(6), RuntimeError, ["view", "(6,)", "(3, 2)", "(1, 3)"]),
    ("cat", lambda: tt.cat([a23(), tt.ones(2, 4)]), ValueError, ["cat", "(2, 3)", "(2, 4)", "dim 0"]),
    ("stack", lambda: tt.stack([a23(), tt.ones(3, 2)]), ValueError, ["stack", "(2, 3)", "(3, 2)"]),
    ("as_strided outside storage", lambda: tt.arange(9.0).as_strided((3, 3), (3, 1), 2), ValueError,
     ["as_strided", "(3, 3)", "(3, 1)", "offset 2", "9 elements"]),
    ("as_strided lengths", lambda: tt.arange(9.0).as_strided((3, 3), (1,)), ValueError,
     ["as_strided", "(3, 3)", "(1,)"]),
    ("permute", lambda: a23().permute(0, 0), ValueError, ["permute", "(0, 0)"]),
    ("split sections", lambda: a23().split([1, 1], 1), ValueError, ["split", "[1, 1]", "3"]),
    ("unflatten", lambda: a23().unflatten(1, (2, 2)), ValueError, ["unflatten", "(2, 2)", "3"]),
    ("unfold size", lambda: a23().unfold(1, 4, 1), ValueError, ["unfold", "size 4", "of size 3"]),
    ("copy_ shape", lambda: a23().copy_(tt.ones(4)), ValueError, ["copy_", "(4,)", "(2, 3)"]),
    ("backward gradient shape", lambda: (leaf() * 2).backward(tt.ones(3)), ValueError,
     ["backward", "(3,)", "(2,)"]),
    ("gather dims", lambda: a23().gather(1, tt.tensor([0])), ValueError, ["gather", "1 dims", "2"]),
    # dims
    ("sum dim", lambda: a23().sum(dim=5), IndexError, ["sum", "dimension 5", "2 dims"]),
    ("mean negative dim", lambda: a23().mean(dim=-3), IndexError, ["mean", "dimension -3", "2 dims"]),
    ("softmax dim", lambda: a23().softmax(dim=2), IndexError, ["softmax", "dimension 2", "2 dims"]),
    ("log_softmax dim", lambda: a23().log_softmax(-3), IndexError, ["log_softmax", "dimension -3"]),
    ("transpose dim", lambda: a23().transpose(0, 2), IndexError, ["transpose", "dimension 2", "2 dims"]),
    ("unsqueeze dim", lambda: a23().unsqueeze(4), IndexError, ["unsqueeze", "dimension 4"]),
    ("cat dim", lambda: tt.cat([a23(), a23()], dim=2), IndexError, ["cat", "dimension 2"]),
    ("sum repeated dim", lambda: a23().sum(dim=(1, -1)), ValueError, ["sum", "(1, -1)"]),
    ("flatten order", lambda: tt.ones(2, 3, 4).flatten(2, 1), ValueError, ["flatten", "2", "1"]),
    # dtypes
    ("masked_fill mask", lambda: a23().masked_fill(tt.ones(2, 3, dtype=tt.int64), 0.0), TypeError,
     ["masked_fill", "bool", "int64"]),
    ("where condition", lambda: tt.where(tt.ones(2), tt.ones(2), tt.zeros(2)), TypeError, ["where", "float32"]),
    ("float index", lambda: a23()[tt.tensor([0.5])], IndexError, ["ind", "float32"]),
    ("index_select float index", lambda: a23().index_select(0, tt.tensor([0.0])), TypeError,
     ["index_select", "float32"]),
    ("requires_grad int", lambda: tt.tensor([1, 2], requires_grad=True), RuntimeError,
     ["requires_grad", "floating point", "int64"]),
    ("requires_grad_ bool", lambda: tt.ones(2, dtype=tt.bool).requires_grad_(), RuntimeError,
     ["requires_grad_", "bool"]),
    ("float result into int", lambda: tt.tensor([1, 2]).add_(0.5), TypeError, ["add_", "float32", "int64"]),
    ("mean of ints", lambda: tt.tensor([1, 2]).mean(), TypeError, ["mean", "int64"]),
    ("bitwise on floats", lambda: tt.ones(2) & tt.ones(2), TypeError, ["float32"]),
    ("unknown dtype", lambda: tt.zeros(2, dtype="complex64"), TypeError, ["complex64"]),
    ("string data", lambda: tt.tensor(["a"]), TypeError, ["tensor", "<U1"]),
    ("set_default_dtype int", lambda: tt.set_default_dtype(tt.int32), TypeError,
     ["set_default_dtype", "int32"]),
    # indices
    ("index out of range", lambda: tt.ones(3)[10], IndexError, ["index 10", "size 3"]),
    ("negative index out of range", lambda: a23()[:, -4], IndexError, ["index -4", "dimension 1", "size 3"]),
    ("too many indices", lambda: a23()[0, 0, 0], IndexError, ["too many indices", "2 dims", "3"]),
    ("list index out of range", lambda: a23()[[0, 2]], IndexError, ["index 2", "size 2"]),
    ("gather out of range", lambda: a23().gather(1, tt.tensor([[0, 3]])), IndexError, ["gather", "index 3", "3"]),
    ("index_select out of range", lambda: a23().index_select(0, tt.tensor([-1])), IndexError,
     ["index_select", "index -1", "size 2"]),
    ("select", lambda: a23().select(1, 3), IndexError, ["select", "index 3", "dim 1", "size 3"]),
    ("narrow", lambda: a23().narrow(1, 2, 2), IndexError, ["narrow", "start 2", "length 2", "size 3"]),
    ("two ellipses", lambda: a23()[..., ...], IndexError, ["ellipsis"]),
    ("float key", lambda: a23()[1.5], IndexError, ["1.5", "float"]),
    # graphs
    ("in-place on a saved tensor", _saved_then_modified, RuntimeError,
     ["exp", "in-place", "(2,)", "version 1", "expected 0"]),
    ("in-place on a leaf", lambda: leaf().add_(1), RuntimeError, ["add_", "leaf", "requires grad"]),
    ("fill_ on a leaf", lambda: leaf().fill_(1), RuntimeError, ["fill_", "leaf"]),
    ("backward twice", _backward_twice, RuntimeError, ["backward", "second time", "retain_graph=True"]),
    ("backward non-scalar", lambda: (leaf() * 2).backward(), RuntimeError, ["backward", "scalar", "(2,)"]),
    ("backward without grad", lambda: tt.ones(2).sum().backward(), RuntimeError, ["backward", "require grad"]),
    ("numpy of a tensor requiring grad", lambda: leaf().numpy(), RuntimeError, ["numpy", "requires grad",
                                                                                "detach"]),
    ("setitem while recording", _setitem_while_recording, RuntimeError, ["setitem", "gradients"]),
    ("in-place on a view while recording", _inplace_view_while_recording, RuntimeError, ["mul_", "view"]),
    ("bool of many elements", lambda: bool(tt.ones(2)), RuntimeError, ["bool", "2 elements", "ambiguous"]),
    ("item of many elements", lambda: a23().item(), ValueError, ["item", "6 elements"]),
    # devices
    ("cuda without CuPy", lambda: tt.zeros(2, device="cuda"), RuntimeError, ["cuda", "CuPy"]),
    ("to cuda without CuPy", lambda: tt.ones(2).to("cuda"), RuntimeError, ["cuda", "CuPy"]),
    ("cuda() without CuPy", lambda: tt.ones(2).cuda(), RuntimeError, ["cuda", "CuPy"]),
    ("unknown device", lambda: tt.zeros(2, device="tpu"), RuntimeError, ["device", "'tpu'", "cpu", "cuda"]),
    ("bad device index", lambda: tt.device("cuda:x"), RuntimeError, ["device", "'cuda:x'"]),
    # creation
    ("arange step 0", lambda: tt.arange(0, 5, 0), ValueError, ["arange", "step", "nonzero"]),
    ("negative size", lambda: tt.zeros(2, -1), ValueError, ["full", "(2, -1)"]),
    ("randint bounds", lambda: tt.randint(5, 5, (2,)), ValueError, ["randint", "low=5", "high=5"]),
    ("linspace steps", lambda: tt.linspace(0, 1, -2), ValueError, ["linspace", "-2"]),
    ("from_numpy list", lambda: tt.from_numpy([1, 2]), TypeError, ["from_numpy", "list"]),
    ("from_numpy unsupported dtype", lambda: tt.from_numpy(np.zeros(2, np.complex64)), TypeError,
     ["complex64"]),
    ("in-place write to a read-only array", lambda: _read_only().add_(1), ValueError, ["not writeable"]),
]


def _cuda_available():
    try:
        tt.zeros(1, device="cuda")
        return True
    except RuntimeError:
        return False


@pytest.mark.parametrize("call, exc, parts", [pytest.param(*c[1:], id=c[0]) for c in CASES])
def test_bad_call_raises_a_clear_error(call, exc, parts):
    if "cuda" in str(parts) and "CuPy" in parts and _cuda_available():
        pytest.skip("a CUDA device is available here")
    with pytest.raises(exc) as info:
        call()
    for part in parts:
        if not re.search(re.escape(part), str(info.value)):
            pytest.fail(f"{part!r} not in the message {str(info.value)!r}", pytrace=False)


def test_errors_change_nothing():
    x = a23()
    for bad in (lambda: x.add_(tt.ones(4)), lambda: x.copy_(tt.ones(4)), lambda: x.masked_fill_(x, 0.0)):
        with pytest.raises((ValueError, TypeError)):
            bad()
    np.testing.assert_array_equal(x.numpy(), np.arange(6.0).reshape(2, 3))
