"""Layers and containers with the names of torch.nn."""

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
