"""Activations and normalised exponentials as Modules (ReLU, AlexNet's, is in layers.py)."""

from .. import functional as F
from .module import Module


class Sigmoid(Module):
    def forward(self, x):
        return F.sigmoid(x)


class Tanh(Module):
    def forward(self, x):
        return F.tanh(x)


class _AlongDim(Module):
    """A normalisation along ``dim``, which must be given (see F.softmax)."""

    def __init__(self, dim):
        super().__init__()
        self.dim = dim

    def extra_repr(self):
        return f"dim={self.dim}"


class Softmax(_AlongDim):
    """exp(x) / sum(exp(x)) along ``dim``."""

    def forward(self, x):
        return F.softmax(x, self.dim)


class LogSoftmax(_AlongDim):
    """log(softmax(x)) along ``dim``, computed without the overflow of taking the log of an exp."""

    def forward(self, x):
        return F.log_softmax(x, self.dim)
