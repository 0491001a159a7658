"""Layers and containers with the names of torch.nn."""

from . import init
from .layers import Conv2d, Dropout, Flatten, Linear, LocalResponseNorm, MaxPool2d, ReLU
from .module import Module, Parameter, Sequential

__all__ = [
    "init", "Module", "Parameter", "Sequential",
    "Linear", "Conv2d", "MaxPool2d", "ReLU", "Dropout", "LocalResponseNorm", "Flatten",
]
