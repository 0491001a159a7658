"""The reference path: a textbook forward and backward for each heavy layer.

Each Function here fits on one screen and uses nothing but plain array
operations: im2col and one matrix product per group for convolution, col2im by
kernel-offset slices, max pooling by window argmax. No scratch buffers, no
chunking, no in-place reuse. The lessons show this code and the assignments
mirror it; the fast path (tinynet/fast/) is tested equal to it. (ReLU, one line
in ops.py, is here too, so that each path has its own.)

Select it with ``tinynet.use_reference_layers()``, the ``tinynet.reference_layers()``
context manager, or ``TINYNET_LAYERS=reference`` in the environment.
"""

from ..ops import ReLU
from .conv import Conv2d
from .cross_entropy import SoftmaxCrossEntropy
from .linear import Linear
from .lrn import LocalResponseNorm
from .pooling import MaxPool2d

__all__ = ["Conv2d", "MaxPool2d", "LocalResponseNorm", "Linear", "SoftmaxCrossEntropy", "ReLU"]
