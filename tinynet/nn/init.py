"""Weight initialisers. Each fills a Parameter in place from the seeded generator."""

import math

from .. import backend


def normal_(parameter, mean=0.0, std=0.01):
    """N(mean, std^2): the AlexNet paper's N(0, 0.01) weights (section 5)."""
    rng = backend.generator(parameter.device)
    parameter.data = rng.standard_normal(parameter.shape, dtype=parameter.dtype) * parameter.dtype.type(std)
    parameter.data += parameter.dtype.type(mean)
    return parameter


def constant_(parameter, value):
    """Every entry set to ``value``: the paper's biases of 0 or 1 (section 5)."""
    parameter.data[...] = value
    return parameter


def kaiming_normal_(parameter):
    """He et al. (2015): std = sqrt(2 / fan_in), which keeps the variance of ReLU
    activations steady through depth, so deep nets train without tuning the std."""
    fan_in = math.prod(parameter.shape[1:])
    return normal_(parameter, 0.0, math.sqrt(2.0 / fan_in))


def uniform_(parameter, low, high):
    """U(low, high), from the seeded generator."""
    rng = backend.generator(parameter.device)
    parameter.data = (rng.random(parameter.shape, dtype=parameter.dtype) * (high - low) + low).astype(parameter.dtype)
    return parameter


def kaiming_uniform_(parameter, a=0.0):
    """U(-b, b) with b = sqrt(6 / ((1 + a^2) fan_in)). PyTorch's Linear and Conv2d start
    from a = sqrt(5), which gives b = 1 / sqrt(fan_in): a third of He's variance."""
    fan_in = math.prod(parameter.shape[1:])
    bound = math.sqrt(6.0 / ((1 + a * a) * fan_in))
    return uniform_(parameter, -bound, bound)
