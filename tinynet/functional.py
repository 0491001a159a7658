"""The functional API, and the light layer Functions that have one path only.

``import tinynet.functional as F`` gives the names PyTorch students know:
``F.conv2d``, ``F.max_pool2d``, ``F.relu``, ``F.dropout``, ``F.linear``,
``F.local_response_norm``, ``F.softmax``, ``F.log_softmax``, ``F.sigmoid``, ``F.tanh`` and
the losses ``F.cross_entropy``, ``F.nll_loss``, ``F.mse_loss``.
The heavy layers' Functions come from the current layer path (see
layer_paths.py): tinynet/fast/ by default, tinynet/reference/ to read them.
Each layer's math is one Function class on raw arrays, a step away from
``loss.backward()`` in a debugger.
"""

from . import backend, layer_paths
from .reference.cross_entropy import check_reduction, check_targets, reduce_losses, row_scale, target_entries
from .reference.cross_entropy import log_softmax as _log_softmax
from .tensor import Function, ShapeError, as_tensor


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


class NLLLoss(Function):
    """-input[i, target_i] for each row i: the loss on log-probabilities, so that
    ``nll_loss(log_softmax(x, dim=1), t)`` is ``cross_entropy(x, t)`` in two steps.
    Rows whose target is ``ignore_index`` count for nothing, as in SoftmaxCrossEntropy."""

    def __init__(self, reduction="mean", ignore_index=-100):
        self.reduction, self.ignore_index = check_reduction(reduction), ignore_index

    def forward(self, log_probs, targets):
        check_targets(log_probs.shape, targets, self.ignore_index)
        rows, columns, kept = target_entries(targets, self.ignore_index)
        self.save_for_backward(rows, columns, kept)
        self.input_shape = log_probs.shape
        return reduce_losses(-log_probs[rows, columns], self.reduction, kept)

    def backward(self, grad):
        rows, columns, kept = self.saved_arrays
        grad_input = backend.xp_of(grad).zeros(self.input_shape, dtype=grad.dtype)
        grad_input[rows, columns] = -row_scale(grad, self.reduction, kept)
        return grad_input, None


class MSELoss(Function):
    """(input - target)^2 for each entry, averaged by default. The gradient reaches both."""

    def __init__(self, reduction="mean"):
        self.reduction = check_reduction(reduction)

    def forward(self, x, target):
        # torch broadcasts a target of another shape with a warning; an (N, 1) output
        # against (N,) targets then averages N*N differences, so refuse it here instead.
        if x.shape != target.shape:
            raise ShapeError(f"mse_loss expects a target of the input's shape {x.shape}, got {target.shape}")
        if x.dtype != target.dtype:
            raise TypeError(f"mse_loss expects a target of the input's dtype {x.dtype}, got {target.dtype}")
        difference = x - target
        self.save_for_backward(difference)
        squares = difference * difference
        return squares if self.reduction == "none" else squares.sum() if self.reduction == "sum" else squares.mean()

    def backward(self, grad):
        (difference,) = self.saved_arrays
        if self.reduction == "mean":
            grad = grad / difference.dtype.type(difference.size)
        grad_input = difference * (grad * 2)
        return grad_input, -grad_input


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


def cross_entropy(input, target, *, ignore_index=-100, reduction="mean"):
    """Softmax cross-entropy of (N, classes) scores and N class indices, averaged over
    the rows whose target is not ``ignore_index`` ('sum' adds them, 'none' keeps each)."""
    return layer_paths.layers().SoftmaxCrossEntropy(reduction, ignore_index)(input, target)


def nll_loss(input, target, *, ignore_index=-100, reduction="mean"):
    """Like cross_entropy, on log-probabilities (the output of log_softmax)."""
    return NLLLoss(reduction, ignore_index)(input, target)


def mse_loss(input, target, *, reduction="mean"):
    return MSELoss(reduction)(input, target)


# dim has no default: torch's implicit choice (dim 0 for 1-D and 3-D inputs, 1 otherwise)
# is deprecated there and easy to get wrong, so leaving it out is an error here.
def softmax(x, dim):
    return Softmax(dim)(x)


def log_softmax(x, dim):
    return LogSoftmax(dim)(x)


def sigmoid(x):
    return as_tensor(x).sigmoid()


def tanh(x):
    return as_tensor(x).tanh()


def _optional(bias):
    return () if bias is None else (bias,)
