"""The functional API, and the light layer Functions that have one path only.

``import tinynet.functional as F`` gives the names PyTorch students know:
``F.conv2d``, ``F.max_pool2d``, ``F.relu``, ``F.dropout``, ``F.linear``,
``F.local_response_norm``, ``F.cross_entropy``, ``F.softmax``, ``F.log_softmax``.
The heavy layers' Functions come from the current layer path (see
layer_paths.py): tinynet/fast/ by default, tinynet/reference/ to read them.
Each layer's math is one Function class on raw arrays, a step away from
``loss.backward()`` in a debugger.
"""

from . import backend, layer_paths
from .reference.cross_entropy import log_softmax as _log_softmax
from .tensor import Function, as_tensor


class Dropout(Function):
    """Inverted dropout (section 4.2 of the AlexNet paper, scaled at training time).

    The paper multiplies outputs by 0.5 at test time; scaling the kept units by
    1/(1-p) during training instead gives the same expectation and leaves
    inference untouched. The mask is float32 and drawn from the seeded generator.
    """

    def __init__(self, p):
        if not 0 <= p < 1:
            raise ValueError(f"dropout probability must be in [0, 1), got {p}")
        self.p = p

    def forward(self, x):
        rng = backend.generator(backend.device_of(x))
        keep = rng.random(x.shape, dtype=x.dtype) >= x.dtype.type(self.p)
        mask = keep.astype(x.dtype) * x.dtype.type(1 / (1 - self.p))
        self.save_for_backward(mask)
        return x * mask

    def backward(self, grad):
        (mask,) = self.saved_arrays
        return (grad * mask,)


class LogSoftmax(Function):
    def __init__(self, dim=-1):
        self.dim = dim

    def forward(self, x):
        out = _log_softmax(x, self.dim)
        self.save_for_backward(out)
        return out

    def backward(self, grad):
        (out,) = self.saved_arrays
        xp = backend.xp_of(out)
        return (grad - xp.exp(out) * grad.sum(axis=self.dim, keepdims=True),)


class Softmax(Function):
    def __init__(self, dim=-1):
        self.dim = dim

    def forward(self, x):
        out = backend.xp_of(x).exp(_log_softmax(x, self.dim))
        self.save_for_backward(out)
        return out

    def backward(self, grad):
        (out,) = self.saved_arrays
        return (out * (grad - (grad * out).sum(axis=self.dim, keepdims=True)),)


# -- the functional API: thin calls into the Functions ------------------------


def linear(x, weight, bias=None):
    return layer_paths.layers().Linear()(x, weight, *_optional(bias))


def conv2d(x, weight, bias=None, stride=1, padding=0, groups=1):
    return layer_paths.layers().Conv2d(stride, padding, groups)(x, weight, *_optional(bias))


def max_pool2d(x, kernel_size, stride=None, padding=0):
    return layer_paths.layers().MaxPool2d(kernel_size, stride, padding)(x)


def relu(x):
    return layer_paths.layers().ReLU()(x)


def dropout(x, p=0.5, training=True):
    """Identity when not training (or p == 0), inverted dropout otherwise."""
    if not training or p == 0:
        return as_tensor(x)
    return Dropout(p)(x)


def local_response_norm(x, size, alpha=1e-4, beta=0.75, k=2.0, alpha_over_n=False):
    return layer_paths.layers().LocalResponseNorm(size, alpha, beta, k, alpha_over_n)(x)


def cross_entropy(logits, targets):
    """Softmax cross-entropy averaged over the batch; targets are class indices."""
    return layer_paths.layers().SoftmaxCrossEntropy()(logits, targets)


def softmax(x, dim=-1):
    return Softmax(dim)(x)


def log_softmax(x, dim=-1):
    return LogSoftmax(dim)(x)


def _optional(bias):
    return () if bias is None else (bias,)
