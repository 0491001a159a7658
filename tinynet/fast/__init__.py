"""The fast path: the heavy layers' Functions rewritten for speed, the default.

Each class here subclasses its reference Function (tinynet/reference/) and
keeps its constructor and its numbers; only forward and backward change, with
every trick that measured well, each with its reason next to it. On a GPU the
layers run CUDA kernels (cuda/): one launch per pass instead of one per array
operation. The tests hold each one equal to the reference path on both backends.

Local response normalisation differs from the reference on a GPU only: on a CPU
the reference LRN already runs 2-4x faster than PyTorch's.
"""

from .conv import Conv2d
from .cross_entropy import SoftmaxCrossEntropy
from .linear import Linear
from .lrn import LocalResponseNorm
from .pooling import MaxPool2d
from .relu import ReLU

__all__ = ["Conv2d", "MaxPool2d", "LocalResponseNorm", "Linear", "SoftmaxCrossEntropy", "ReLU"]
