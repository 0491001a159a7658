"""Weight initialisers with torch.nn.init's names, arguments and defaults. Each fills a
Parameter (or any Tensor) in place from the seeded generator and returns it."""

import math

from .. import backend

_GAINS = {"linear": 1.0, "conv2d": 1.0, "sigmoid": 1.0, "tanh": 5.0 / 3.0, "relu": math.sqrt(2.0)}


def calculate_gain(nonlinearity, param=None):
    """The factor that keeps the variance of activations steady through ``nonlinearity``."""
    if nonlinearity == "leaky_relu":
        slope = 0.01 if param is None else param
        return math.sqrt(2.0 / (1 + slope**2))
    if nonlinearity not in _GAINS:
        raise ValueError(f"calculate_gain: unknown nonlinearity {nonlinearity!r}, "
                         f"expected one of {sorted(_GAINS) + ['leaky_relu']}")
    return _GAINS[nonlinearity]


def uniform_(tensor, a=0.0, b=1.0):
    """U(a, b)."""
    rng = backend.generator(tensor.device)
    tensor.data = (rng.random(tensor.shape, dtype=tensor.dtype) * (b - a) + a).astype(tensor.dtype)
    return tensor


def normal_(tensor, mean=0.0, std=1.0):
    """N(mean, std^2); the AlexNet paper's weights are ``normal_(w, 0.0, 0.01)`` (section 5)."""
    rng = backend.generator(tensor.device)
    tensor.data = rng.standard_normal(tensor.shape, dtype=tensor.dtype) * tensor.dtype.type(std)
    tensor.data += tensor.dtype.type(mean)
    return tensor


def constant_(tensor, val):
    """Every entry set to ``val``: the paper's biases of 0 or 1 (section 5)."""
    tensor.data[...] = val
    return tensor


def zeros_(tensor):
    return constant_(tensor, 0.0)


def ones_(tensor):
    return constant_(tensor, 1.0)


def xavier_uniform_(tensor, gain=1.0):
    """Glorot and Bengio (2010): variance 2 / (fan_in + fan_out), for tanh and sigmoid nets."""
    fan_in, fan_out = _fans(tensor, "xavier_uniform_")
    bound = gain * math.sqrt(6.0 / (fan_in + fan_out))
    return uniform_(tensor, -bound, bound)


def xavier_normal_(tensor, gain=1.0):
    fan_in, fan_out = _fans(tensor, "xavier_normal_")
    return normal_(tensor, 0.0, gain * math.sqrt(2.0 / (fan_in + fan_out)))


def kaiming_uniform_(tensor, a=0.0, mode="fan_in", nonlinearity="leaky_relu"):
    """U(-b, b) with b = gain * sqrt(3 / fan). PyTorch's Linear and Conv2d start from
    a = sqrt(5), which gives b = 1 / sqrt(fan_in): a third of He's variance."""
    bound = _kaiming_std(tensor, a, mode, nonlinearity, "kaiming_uniform_") * math.sqrt(3.0)
    return uniform_(tensor, -bound, bound)


def kaiming_normal_(tensor, a=0.0, mode="fan_in", nonlinearity="leaky_relu"):
    """He et al. (2015): std = sqrt(2 / fan_in) for ReLU (the default slope a = 0 makes
    leaky_relu a ReLU), which keeps the variance of activations steady through depth."""
    return normal_(tensor, 0.0, _kaiming_std(tensor, a, mode, nonlinearity, "kaiming_normal_"))


def _kaiming_std(tensor, a, mode, nonlinearity, name):
    fan_in, fan_out = _fans(tensor, name)
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"{name}: mode must be 'fan_in' or 'fan_out', got {mode!r}")
    fan = fan_in if mode == "fan_in" else fan_out
    return calculate_gain(nonlinearity, a) / math.sqrt(fan)


def _fans(tensor, name):
    """(fan_in, fan_out): inputs and outputs of one unit, the kernel's area counted in both."""
    if len(tensor.shape) < 2:
        raise ValueError(f"{name}: fan in and fan out need a weight of 2 or more dims, got shape {tuple(tensor.shape)}")
    receptive_field = math.prod(tensor.shape[2:])
    return tensor.shape[1] * receptive_field, tensor.shape[0] * receptive_field
