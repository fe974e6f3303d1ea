"""tinytensor.nn: Modules, layers, containers, init and functional, with torch.nn's names."""
from . import functional, init, utils  # noqa: F401
from .containers import ModuleDict, ModuleList, Sequential
from .kv_cache import KVCache
from .layers import (GELU, BatchNorm1d, Dropout, Embedding, Flatten, Identity, LayerNorm, Linear, LogSoftmax, ReLU,
                     RMSNorm, Sigmoid, SiLU, Softmax, Tanh)
from .module import IncompatibleKeys, Module, Parameter
