"""Losses as Modules, with the names and keywords of torch.nn: ``criterion(output, target)``."""

from .. import functional as F
from ..reference.cross_entropy import check_reduction
from .module import Module


class _ClassIndexLoss(Module):
    """What the losses on class indices share: ``ignore_index`` and ``reduction``."""

    def __init__(self, *, ignore_index=-100, reduction="mean"):
        super().__init__()
        self.ignore_index, self.reduction = ignore_index, check_reduction(reduction)

    def extra_repr(self):
        return f"ignore_index={self.ignore_index}, reduction={self.reduction!r}"


class CrossEntropyLoss(_ClassIndexLoss):
    """Softmax cross-entropy of (N, classes) scores and N class indices (see F.cross_entropy)."""

    def forward(self, input, target):
        return F.cross_entropy(input, target, ignore_index=self.ignore_index, reduction=self.reduction)


class NLLLoss(_ClassIndexLoss):
    """The negative log-likelihood of log-probabilities (the output of nn.LogSoftmax(dim=1))."""

    def forward(self, input, target):
        return F.nll_loss(input, target, ignore_index=self.ignore_index, reduction=self.reduction)


class MSELoss(Module):
    """The mean (or sum, or each) of the squared differences; target and input have one shape."""

    def __init__(self, *, reduction="mean"):
        super().__init__()
        self.reduction = check_reduction(reduction)

    def forward(self, input, target):
        return F.mse_loss(input, target, reduction=self.reduction)

    def extra_repr(self):
        return f"reduction={self.reduction!r}"
