"""tinytensor: a from-scratch deep-learning engine with PyTorch's names. `import tinytensor as tt`.

Layers, lowest first: view/dtype/device -> backend -> autograd -> functions -> tensor ->
creation -> nn/optim. See DESIGN.md in the course's shared folder for the map.
"""
from . import dtype as _dt
from .autograd import enable_grad, is_grad_enabled, no_grad, set_grad_enabled
from .creation import (arange, as_tensor, cat, empty, empty_like, eye, from_numpy, full, full_like, linspace,
                       multinomial, ones, ones_like, rand, rand_like, randint, randn, randn_like, randperm, stack,
                       tensor, zeros, zeros_like)
from .device import device
from .dtype import (DType as dtype, bfloat16, float16, float32, float64, get_default_dtype, int8, int16, int32,
                    int64, promote_types, set_default_dtype, uint8)
from .random import Generator, default_generator, manual_seed
from .tensor import Tensor, where

bool = _dt.bool_
double, half, long, short = float64, float16, int64, int16
float, int = float32, int32  # as in torch: tt.float is float32, tt.int is int32


def result_type(a, b) -> dtype:
    """The dtype of an op between a and b (tensors or Python scalars), as torch.result_type."""
    return _dt.result_type(*[(x.dtype, x.ndim) if isinstance(x, Tensor) else x for x in (a, b)])


def set_num_threads(n: int) -> None:
    """Threads used by the CPU kernels (OpenMP); honours OMP_NUM_THREADS by default."""
    from .backend import cpu
    if n < 1:
        raise ValueError(f"set_num_threads: expected a positive number, got {n}")
    cpu.set_num_threads(n)


def get_num_threads() -> int:
    from .backend import cpu
    return cpu.get_num_threads()


def _method(name):
    def fn(input, *args, **kwargs):
        return getattr(input, name)(*args, **kwargs)
    fn.__name__, fn.__doc__ = name, f"tt.{name}(x, ...) is x.{name}(...)."
    return fn


# torch.exp(x), torch.sum(x, dim), ...: the function forms of Tensor methods
_FUNCTION_FORMS = ("abs", "neg", "sign", "exp", "log", "log1p", "expm1", "log2", "log10", "sqrt", "rsqrt", "sin",
                   "cos", "tan", "tanh", "sigmoid", "relu", "erf", "reciprocal", "floor", "ceil", "round", "trunc",
                   "square", "add", "sub", "mul", "div", "pow", "remainder", "floor_divide", "maximum", "minimum", "eq",
                   "ne", "lt", "le", "gt", "ge", "logical_and", "logical_or", "logical_xor", "logical_not", "clamp",
                   "clip",
                   "sum", "prod", "mean", "var", "std", "amax", "amin", "max", "min", "argmax", "argmin", "all",
                   "any", "logsumexp", "softmax", "log_softmax", "norm", "matmul", "reshape", "permute",
                   "transpose", "squeeze", "unsqueeze", "flatten", "unflatten", "narrow", "flip", "diagonal",
                   "as_strided", "split", "chunk", "unbind", "select", "gather", "scatter_add", "index_select",
                   "index_add", "masked_fill", "tril", "triu", "isnan", "isinf", "isfinite", "lerp", "broadcast_to",
                   "clone", "detach", "t", "swapaxes")
for _name in _FUNCTION_FORMS:
    globals()[_name] = _method(_name)
del _name

bmm = mm = matmul  # noqa: F821  (defined just above)

from . import nn, optim  # noqa: E402  (after the names above: nn and optim build on them)
from .io import load, load_checkpoint, save, save_checkpoint  # noqa: E402
