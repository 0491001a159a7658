"""Layers and containers with the names of torch.nn."""

import sys

from .. import functional
from . import init
from .activations import LogSoftmax, Sigmoid, Softmax, Tanh
from .containers import ModuleList, Sequential
from .layers import Conv2d, Dropout, Flatten, Linear, LocalResponseNorm, MaxPool2d, ReLU
from .losses import CrossEntropyLoss, MSELoss, NLLLoss
from .module import Module, Parameter

__all__ = [
    "init", "Module", "Parameter", "Sequential", "ModuleList",
    "Linear", "Conv2d", "MaxPool2d", "ReLU", "Dropout", "LocalResponseNorm", "Flatten",
    "Sigmoid", "Tanh", "Softmax", "LogSoftmax", "CrossEntropyLoss", "NLLLoss", "MSELoss",
]

# PyTorch keeps its functional API in torch.nn.functional; tinynet keeps it in tinynet.functional.
# Registering that very module under the second name (rather than a file that copies or
# re-exports it) makes `import tinynet.nn.functional as F` give the same module object: one F to
# read, to step into, and to patch in a test.
sys.modules[f"{__name__}.functional"] = functional
