"""Softmax cross-entropy, fused: the loss AlexNet is trained with."""

from .. import backend
from ..tensor import Function, ShapeError

REDUCTIONS = ("mean", "sum", "none")


def log_softmax(x, axis):
    """x minus the log of the sum of its exponentials, with each row's maximum taken
    out first (log-sum-exp) so that exp cannot overflow."""
    xp = backend.xp_of(x)
    shifted = x - x.max(axis=axis, keepdims=True)
    return shifted - xp.log(xp.exp(shifted).sum(axis=axis, keepdims=True))


class SoftmaxCrossEntropy(Function):
    """-log softmax(logits)[target] for each row, averaged over the rows by default.

    Fusing the softmax into the loss makes each row's gradient simply softmax - one_hot.
    A row whose target is ``ignore_index`` (padding, unlabelled) adds no loss and gets no
    gradient, and the mean counts only the other rows, as torch's does.
    """

    def __init__(self, reduction="mean", ignore_index=-100):
        self.reduction, self.ignore_index = check_reduction(reduction), ignore_index

    def forward(self, logits, targets):
        check_targets(logits.shape, targets, self.ignore_index)
        rows, columns, kept = target_entries(targets, self.ignore_index)
        log_probs = log_softmax(logits, axis=1)
        self.save_for_backward(log_probs, rows, columns, kept)
        return reduce_losses(-log_probs[rows, columns], self.reduction, kept)

    def backward(self, grad):
        log_probs, rows, columns, kept = self.saved_arrays
        grad_logits = backend.xp_of(log_probs).exp(log_probs)
        grad_logits[rows, columns] -= 1
        return grad_logits * row_scale(grad, self.reduction, kept)[:, None], None


def check_reduction(reduction):
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}")
    return reduction


def target_entries(targets, ignore_index):
    """(rows, columns, kept): where each row's target is; an ignored row points at column 0."""
    xp = backend.xp_of(targets)
    kept = targets != ignore_index
    return xp.arange(len(targets)), xp.where(kept, targets, 0), kept


def reduce_losses(losses, reduction, kept):
    """Each row's loss -> the loss: the mean over the kept rows, their sum, or every row's
    (0 for a row not kept). ``losses`` is a fresh array, zeroed here where not kept."""
    losses[~kept] = 0  # not multiplied by kept: an ignored row may hold -inf, and -inf * 0 is nan
    if reduction == "none":
        return losses
    if reduction == "sum":
        return losses.sum()
    return losses.sum() / kept.sum().astype(losses.dtype)  # 0/0 = nan when every row is ignored, as in torch


def row_scale(grad, reduction, kept):
    """d(loss)/d(each row's loss), for the rows kept (0 for the others)."""
    if reduction == "mean":
        grad = grad / kept.sum().astype(grad.dtype)
    return grad * kept


def check_targets(logits_shape, targets, ignore_index=-100):
    check_target_shape(logits_shape, targets)
    check_target_values(logits_shape[1], targets, ignore_index)


def check_target_shape(logits_shape, targets):
    """The shapes and the dtype, which the array carries: no need to read its values."""
    if len(logits_shape) != 2:
        raise ShapeError(f"expected input of shape (N, classes), got {logits_shape}")
    if targets.shape != logits_shape[:1] or targets.dtype.kind not in "iu":
        raise ShapeError(f"expected integer class indices of shape ({logits_shape[0]},) as targets, "
                         f"got {targets.dtype} {targets.shape}")


def check_target_values(classes, targets, ignore_index=-100):
    """Every target a class or ignore_index (on a GPU, this reads the targets back: it waits for the GPU)."""
    wrong = targets[((targets < 0) | (targets >= classes)) & (targets != ignore_index)]
    if wrong.size:
        raise ValueError(f"targets must lie in [0, {classes}) or equal ignore_index={ignore_index}, "
                         f"got {int(wrong[0])}")
