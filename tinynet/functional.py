"""Layer Functions with hand-written forward and backward, and the functional API.

``import tinynet.functional as F`` gives the names PyTorch students know:
``F.conv2d``, ``F.max_pool2d``, ``F.relu``, ``F.dropout``, ``F.linear``,
``F.local_response_norm``, ``F.cross_entropy``, ``F.softmax``, ``F.log_softmax``.
Each layer's math is one Function class on raw arrays, a step away from
``loss.backward()`` in a debugger.
"""

from . import backend
from .conv import Conv2d, MaxPool2d
from .ops import ReLU
from .tensor import Function, ShapeError, as_tensor


class Linear(Function):
    """y = x W^T + b, with W of shape (out_features, in_features) as in PyTorch.

    The products are computed transposed, y^T = W x^T and dx^T = W^T dy^T, then
    copied back to rows: the same numbers, but with the batch (a few dozen rows)
    as the GEMM's last dimension OpenBLAS splits the large weight matrix between
    its threads, and runs 2-5x faster on AlexNet's fully-connected layers.
    """

    def forward(self, x, weight, *bias):
        if x.ndim != 2 or x.shape[1] != weight.shape[1]:
            raise ShapeError(f"expected input of shape (N, {weight.shape[1]}), got {x.shape}")
        self.save_for_backward(x, weight)
        out = backend.xp_of(x).ascontiguousarray((weight @ x.T).T)
        if bias:
            out += bias[0]
        return out

    def backward(self, grad):
        x, weight = self.saved_arrays
        xp = backend.xp_of(grad)
        grad_x = xp.ascontiguousarray((weight.T @ grad.T).T) if self.needs_input_grad[0] else None
        grads = (grad_x, grad.T @ x)
        return grads + ((grad.sum(axis=0),) if len(self.inputs) == 3 else ())


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


class LocalResponseNorm(Function):
    """Local response normalisation across channels (AlexNet paper, section 3.3):

        b[c] = a[c] / (k + alpha' * sum of a[j]^2 over n channels around c) ** beta

    The paper uses alpha' = alpha; PyTorch and Caffe use alpha' = alpha / n.
    ``alpha_over_n`` picks the convention. The window of channel c is
    [c - n//2, c + (n-1)//2], clipped at the edges, as in PyTorch.
    """

    def __init__(self, size, alpha=1e-4, beta=0.75, k=2.0, alpha_over_n=False):
        self.size, self.beta, self.k = size, beta, k
        self.alpha = alpha / size if alpha_over_n else alpha

    def forward(self, x):
        if x.ndim != 4:
            raise ShapeError(f"expected input of shape (N, C, H, W), got {x.shape}")
        scale = self.k + self.alpha * _window_sum(x * x, self.size // 2, (self.size - 1) // 2)
        factor = scale ** (-self.beta)
        self.save_for_backward(x, scale, factor)
        return x * factor

    def backward(self, grad):
        x, scale, factor = self.saved_arrays
        # d b[i] / d a[j] = [i == j] factor[i] - 2 alpha beta a[i] a[j] factor[i] / scale[i]
        # for every i whose window holds j; j lies in i's window exactly when i lies
        # in the mirrored window of j, hence the swapped reach below.
        through_scale = _window_sum(grad * x * factor / scale, (self.size - 1) // 2, self.size // 2)
        return (grad * factor - (2 * self.alpha * self.beta) * x * through_scale,)


def _window_sum(a, before, after):
    """out[:, c] = a[:, c-before : c+after+1].sum(axis=1), with zeros past the edges."""
    xp = backend.xp_of(a)
    channels = a.shape[1]
    padded = xp.pad(a, ((0, 0), (before, after), (0, 0), (0, 0)))
    out = padded[:, 0:channels].copy()
    for offset in range(1, before + after + 1):
        out += padded[:, offset : offset + channels]
    return out


class SoftmaxCrossEntropy(Function):
    """Mean over the batch of -log softmax(logits)[target], fused for stability.

    Subtracting each row's maximum before exp (log-sum-exp) keeps exp from
    overflowing; the fused gradient is simply (softmax - one_hot) / N.
    """

    def forward(self, logits, targets):
        xp = backend.xp_of(logits)
        _check_targets(logits.shape, targets)
        log_probs = _log_softmax(logits, axis=1)
        rows = xp.arange(len(targets))
        self.save_for_backward(log_probs, targets)
        return -log_probs[rows, targets].mean()

    def backward(self, grad):
        log_probs, targets = self.saved_arrays
        xp = backend.xp_of(log_probs)
        grad_logits = xp.exp(log_probs)
        grad_logits[xp.arange(len(targets)), targets] -= 1
        return grad_logits * (grad / len(targets)), None


def _check_targets(logits_shape, targets):
    if len(logits_shape) != 2:
        raise ShapeError(f"expected logits of shape (N, classes), got {logits_shape}")
    if targets.shape != logits_shape[:1] or targets.dtype.kind not in "iu":
        raise ShapeError(f"expected integer targets of shape ({logits_shape[0]},), got {targets.dtype} {targets.shape}")
    if targets.size and (targets.min() < 0 or targets.max() >= logits_shape[1]):
        found = f"{int(targets.min())}..{int(targets.max())}"
        raise ValueError(f"targets must lie in [0, {logits_shape[1]}), got values {found}")


def _log_softmax(x, axis):
    xp = backend.xp_of(x)
    shifted = x - x.max(axis=axis, keepdims=True)
    return shifted - xp.log(xp.exp(shifted).sum(axis=axis, keepdims=True))


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


# -- the functional API: thin calls into the Functions above ------------------


def linear(x, weight, bias=None):
    return Linear()(x, weight, *_optional(bias))


def conv2d(x, weight, bias=None, stride=1, padding=0, groups=1):
    return Conv2d(stride, padding, groups)(x, weight, *_optional(bias))


def max_pool2d(x, kernel_size, stride=None, padding=0):
    return MaxPool2d(kernel_size, stride, padding)(x)


def relu(x):
    return ReLU()(x)


def dropout(x, p=0.5, training=True):
    """Identity when not training (or p == 0), inverted dropout otherwise."""
    if not training or p == 0:
        return as_tensor(x)
    return Dropout(p)(x)


def local_response_norm(x, size, alpha=1e-4, beta=0.75, k=2.0, alpha_over_n=False):
    return LocalResponseNorm(size, alpha, beta, k, alpha_over_n)(x)


def cross_entropy(logits, targets):
    """Softmax cross-entropy averaged over the batch; targets are class indices."""
    return SoftmaxCrossEntropy()(logits, targets)


def softmax(x, dim=-1):
    return Softmax(dim)(x)


def log_softmax(x, dim=-1):
    return LogSoftmax(dim)(x)


def _optional(bias):
    return () if bias is None else (bias,)
