"""tinynet: a small deep-learning framework on NumPy and CuPy, built to teach AlexNet.

    import tinynet
    from tinynet import nn, optim
    import tinynet.functional as F
"""

from . import (
    functional,
    nn,
    ops,  # noqa: F401  (attaches the operators to Tensor)
    optim,
    shapes,  # noqa: F401  (attaches reshape, permute, indexing ... to Tensor)
)
from .backend import gpu_available, manual_seed
from .layer_paths import reference_layers, use_reference_layers
from .serialization import load, save
from .shapes import cat, clone, flatten, permute, reshape, squeeze, stack, transpose, unsqueeze, where
from .tensor import Function, ShapeError, Tensor, is_grad_enabled, no_grad, tensor

__version__ = "0.1.0"

__all__ = [
    "Tensor", "tensor", "Function", "ShapeError", "no_grad", "is_grad_enabled",
    "manual_seed", "gpu_available", "functional", "nn", "optim",
    "use_reference_layers", "reference_layers", "save", "load",
    "cat", "stack", "where", "reshape", "permute", "transpose", "squeeze", "unsqueeze", "flatten", "clone",
]
