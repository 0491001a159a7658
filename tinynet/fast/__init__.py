"""The fast path: the heavy layers' Functions rewritten for speed, the default.

Each class here subclasses its reference Function (tinynet/reference/) and
keeps its constructor and its numbers; only forward and backward change, with
every trick that measured well, each with its reason next to it. The tests
hold each one equal to the reference path on both backends.

Local response normalisation and softmax cross-entropy have no faster version:
the reference LRN already runs 2-4x faster than PyTorch's on a CPU, and the loss
takes a fraction of a millisecond.
"""

from ..reference import LocalResponseNorm, SoftmaxCrossEntropy
from .conv import Conv2d
from .linear import Linear
from .pooling import MaxPool2d
from .relu import ReLU

__all__ = ["Conv2d", "MaxPool2d", "LocalResponseNorm", "Linear", "SoftmaxCrossEntropy", "ReLU"]
