"""Softmax cross-entropy, fused: the loss AlexNet is trained with."""

from .. import backend
from ..tensor import Function, ShapeError


def log_softmax(x, axis):
    """x minus the log of the sum of its exponentials, with each row's maximum taken
    out first (log-sum-exp) so that exp cannot overflow."""
    xp = backend.xp_of(x)
    shifted = x - x.max(axis=axis, keepdims=True)
    return shifted - xp.log(xp.exp(shifted).sum(axis=axis, keepdims=True))


class SoftmaxCrossEntropy(Function):
    """Mean over the batch of -log softmax(logits)[target].

    Fusing the softmax into the loss makes the gradient simply (softmax - one_hot) / N.
    """

    def forward(self, logits, targets):
        xp = backend.xp_of(logits)
        check_targets(logits.shape, targets)
        log_probs = log_softmax(logits, axis=1)
        self.save_for_backward(log_probs, targets)
        return -log_probs[xp.arange(len(targets)), targets].mean()

    def backward(self, grad):
        log_probs, targets = self.saved_arrays
        xp = backend.xp_of(log_probs)
        grad_logits = xp.exp(log_probs)
        grad_logits[xp.arange(len(targets)), targets] -= 1
        return grad_logits * (grad / len(targets)), None


def check_targets(logits_shape, targets):
    if len(logits_shape) != 2:
        raise ShapeError(f"expected logits of shape (N, classes), got {logits_shape}")
    if targets.shape != logits_shape[:1] or targets.dtype.kind not in "iu":
        raise ShapeError(f"expected integer targets of shape ({logits_shape[0]},), got {targets.dtype} {targets.shape}")
    if targets.size and (targets.min() < 0 or targets.max() >= logits_shape[1]):
        found = f"{int(targets.min())}..{int(targets.max())}"
        raise ValueError(f"targets must lie in [0, {logits_shape[1]}), got values {found}")
