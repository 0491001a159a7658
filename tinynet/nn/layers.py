"""The layers AlexNet is built from, as Modules around the Functions in functional.py."""

from .. import backend
from .. import functional as F
from ..tensor import ShapeError
from ..windows import pair
from . import init
from .module import Module, Parameter


def _empty(shape):
    """A float32 parameter to be filled by an initialiser."""
    return Parameter(backend.get_xp("cpu").zeros(shape, dtype="float32"))


class Linear(Module):
    def __init__(self, in_features, out_features, bias=True):
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        self.weight = _empty((out_features, in_features))
        self.bias = _empty((out_features,)) if bias else None
        _default_init(self)

    def forward(self, x):
        return F.linear(x, self.weight, self.bias)

    def extra_repr(self):
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"


class Conv2d(Module):
    """2-D convolution; ``groups=2`` is the AlexNet paper's split over two GPUs (section 3.2)."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, groups=1, bias=True):
        super().__init__()
        if in_channels % groups or out_channels % groups:
            raise ValueError(f"in_channels {in_channels} and out_channels {out_channels} split into {groups} groups")
        self.in_channels, self.out_channels, self.groups = in_channels, out_channels, groups
        self.kernel_size, self.stride, self.padding = pair(kernel_size), pair(stride), pair(padding)
        self.weight = _empty((out_channels, in_channels // groups) + self.kernel_size)
        self.bias = _empty((out_channels,)) if bias else None
        _default_init(self)

    def forward(self, x):
        return F.conv2d(x, self.weight, self.bias, self.stride, self.padding, self.groups)

    def extra_repr(self):
        text = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}"
        text += f", padding={self.padding}" if self.padding != (0, 0) else ""
        text += f", groups={self.groups}" if self.groups != 1 else ""
        return text + (", bias=False" if self.bias is None else "")


def _default_init(layer):
    """He-normal weights and zero biases until a model chooses its own scheme."""
    init.kaiming_normal_(layer.weight)
    if layer.bias is not None:
        init.constant_(layer.bias, 0.0)


class MaxPool2d(Module):
    """Max pooling; kernel 3 stride 2 gives the paper's overlapping pooling (section 3.4)."""

    def __init__(self, kernel_size, stride=None, padding=0):
        super().__init__()
        self.kernel_size = pair(kernel_size)
        self.stride = pair(stride if stride is not None else kernel_size)
        self.padding = pair(padding)

    def forward(self, x):
        return F.max_pool2d(x, self.kernel_size, self.stride, self.padding)

    def extra_repr(self):
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class ReLU(Module):
    """max(x, 0). ``inplace=True`` (torchvision's AlexNet asks for it) is accepted and gives
    the same output, in a new array: the input keeps its values."""

    def __init__(self, inplace=False):
        super().__init__()
        self.inplace = inplace

    def forward(self, x):
        return F.relu(x)

    def extra_repr(self):
        return "inplace=True" if self.inplace else ""


class Dropout(Module):
    """Inverted dropout in training mode, the identity in eval mode."""

    def __init__(self, p=0.5):
        super().__init__()
        if not 0 <= p < 1:
            raise ValueError(f"dropout probability must be in [0, 1), got {p}")
        self.p = p

    def forward(self, x):
        return F.dropout(x, self.p, self.training)

    def extra_repr(self):
        return f"p={self.p}"


class LocalResponseNorm(Module):
    """Section 3.3 of the paper: k=2, n=5, alpha=1e-4, beta=0.75.

    ``alpha_over_n=False`` (the default) is the paper's formula; True divides
    alpha by n as torch.nn.LocalResponseNorm and Caffe do, so the same numbers
    mean five times weaker normalisation there.
    """

    def __init__(self, size=5, alpha=1e-4, beta=0.75, k=2.0, alpha_over_n=False):
        super().__init__()
        self.size, self.alpha, self.beta, self.k, self.alpha_over_n = size, alpha, beta, k, alpha_over_n

    def forward(self, x):
        return F.local_response_norm(x, self.size, self.alpha, self.beta, self.k, self.alpha_over_n)

    def extra_repr(self):
        return f"size={self.size}, alpha={self.alpha}, beta={self.beta}, k={self.k}, alpha_over_n={self.alpha_over_n}"


class Flatten(Module):
    """(N, C, H, W) -> (N, C*H*W), the bridge from the conv layers to the FC layers."""

    def __init__(self, start_dim=1):
        super().__init__()
        self.start_dim = start_dim

    def forward(self, x):
        if x.ndim <= self.start_dim:
            raise ShapeError(f"expected at least {self.start_dim + 1} dimensions, got shape {x.shape}")
        return x.flatten(self.start_dim)

