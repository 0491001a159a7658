"""tinynet: a small deep-learning framework on NumPy and CuPy, built to teach AlexNet.

    import tinynet
    from tinynet import nn, optim
    import tinynet.functional as F
"""

import importlib

from . import (
    autograd,
    conversions,  # noqa: F401  (attaches .to(), .float(), .cuda() ... to Tensor)
    cuda,
    functional,
    inplace,  # noqa: F401  (attaches +=, add_, zero_, x[i] = v ... to Tensor)
    nn,
    ops,  # noqa: F401  (attaches the operators to Tensor)
    optim,
    shapes,  # noqa: F401  (attaches reshape, permute, indexing ... to Tensor)
)
from .backend import device, get_float32_matmul_precision, gpu_available, manual_seed, set_float32_matmul_precision
from .comparisons import allclose, eq, equal, ge, gt, isclose, le, lt, ne
from .dtypes import float16, float32, float64, get_default_dtype, int8, int16, int32, int64, uint8
from .factories import (
    arange,
    empty,
    empty_like,
    eye,
    from_numpy,
    full,
    full_like,
    linspace,
    ones,
    ones_like,
    rand,
    rand_like,
    randint,
    randint_like,
    randn,
    randn_like,
    randperm,
    zeros,
    zeros_like,
)
from .functional import relu
from .layer_paths import reference_layers, use_reference_layers
from .ops import abs, clamp, clip, exp, log, matmul, maximum, minimum, mm, pow, sigmoid, sqrt, tanh
from .reductions import all, amax, amin, any, argmax, argmin, max, mean, min, norm, std, sum, var
from .serialization import load, save
from .shapes import cat, clone, flatten, permute, reshape, squeeze, stack, t, transpose, unsqueeze, where
from .tensor import Function, ShapeError, Tensor, is_grad_enabled, no_grad, tensor

__version__ = "0.1.0"

__all__ = [
    "Tensor", "tensor", "Function", "ShapeError", "no_grad", "is_grad_enabled",
    "manual_seed", "gpu_available", "device", "cuda", "distributed", "functional", "nn", "optim",
    "set_float32_matmul_precision", "get_float32_matmul_precision",
    "use_reference_layers", "reference_layers", "save", "load",
    "cat", "stack", "where", "reshape", "permute", "transpose", "t", "squeeze", "unsqueeze", "flatten", "clone",
    "relu", "exp", "log", "sqrt", "abs", "tanh", "sigmoid", "clamp", "clip", "pow", "maximum", "minimum",
    "matmul", "mm", "autograd",
    "sum", "mean", "max", "min", "amax", "amin", "std", "var", "norm", "argmax", "argmin", "all", "any",
    "eq", "ne", "lt", "le", "gt", "ge", "isclose", "allclose", "equal",
    "zeros", "ones", "full", "empty", "eye", "arange", "linspace", "rand", "randn", "randint", "from_numpy",
    "zeros_like", "ones_like", "full_like", "empty_like", "rand_like", "randn_like", "randint_like",
    "randperm",
    "float16", "float32", "float64", "int8", "int16", "int32", "int64", "uint8", "double", "half", "long", "short",
    "get_default_dtype",
]


def __getattr__(name):
    # As torch.utils.data is there after `import torch`, tinynet.utils, tinynet.data and
    # tinynet.distributed are there after `import tinynet`; imported on first use, since they
    # load Pillow, which most programs that only build and train a net do not need.
    if name in ("data", "utils", "distributed"):
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# PyTorch's dtype names that are also Python builtins (tinynet.float is float32, tinynet.bool
# NumPy's bool), imported last so that no code above sees them in place of the builtins; float,
# int and bool are left out of __all__, so that `from tinynet import *` does not replace Python's.
from .dtypes import bool, double, float, half, int, long, short  # noqa: E402, F401
