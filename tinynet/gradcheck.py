"""Numerical gradient checks, for the tests and for students' own Functions.

The analytic gradient from ``backward()`` is compared with central differences

    dL/dx ~ (L(x + eps) - L(x - eps)) / (2 eps),   error O(eps^2),

in float64, where float32's 7 digits would drown the comparison. The scalar
checked is L = sum(f(inputs) * G) for a fixed random G, so every output entry
and every path through the graph takes part.

    from tinynet.gradcheck import gradcheck
    error = gradcheck(lambda x, w: F.conv2d(x, w, stride=2), [x, w])
    assert error < 1e-6
"""

import copy

import numpy as np

from . import backend
from .nn import Module
from .tensor import Tensor, no_grad


def gradcheck(fn, inputs, eps=1e-6, seed=0):
    """The worse of the element-wise and the random-direction check (see below)."""
    return max(check_elementwise(fn, inputs, eps, seed), check_direction(fn, inputs, eps, seed))


def check_elementwise(fn, inputs, eps=1e-6, seed=0):
    """Perturb every entry of every float input (and parameter) one at a time.

    Returns the worst relative error over the checked tensors, each measured as
    max|analytic - numeric| / max(max|analytic|, max|numeric|): a wrong entry of
    ordinary size shows up, while entries whose true gradient is 0 add no noise.
    """
    fn, tensors, checked = _prepare(fn, inputs)
    weights = _upstream_weights(fn, tensors, seed)
    analytic = _analytic_gradients(fn, tensors, checked, weights, seed)
    errors = []
    for tensor, grad in zip(checked, analytic):
        numeric = np.zeros(tensor.shape)
        for index in np.ndindex(*tensor.shape):
            numeric[index] = _central_difference(fn, tensors, weights, seed, eps, [(tensor, index, 1.0)])
        errors.append(_relative_error(grad, numeric))
    return max(errors)


def check_direction(fn, inputs, eps=1e-6, seed=0):
    """Move all inputs and parameters at once along one random direction d and
    compare the change of L with the analytic <grad, d>: one cheap check of
    everything together, usable on a whole network."""
    fn, tensors, checked = _prepare(fn, inputs)
    weights = _upstream_weights(fn, tensors, seed)
    analytic = _analytic_gradients(fn, tensors, checked, weights, seed)
    rng = np.random.default_rng(seed + 1)
    directions = [rng.standard_normal(t.shape) for t in checked]
    predicted = sum(float((g * d).sum()) for g, d in zip(analytic, directions))
    moves = [(tensor, Ellipsis, d) for tensor, d in zip(checked, directions)]
    measured = _central_difference(fn, tensors, weights, seed, eps, moves)
    return abs(predicted - measured) / max(abs(predicted), abs(measured), np.finfo(float).tiny)


def _prepare(fn, inputs):
    """float64 copies of the inputs and, for a Module, of its parameters.

    Integer inputs (class targets) are passed through unchecked.
    """
    tensors = [_float64_tensor(x) for x in inputs]
    checked = [t for t in tensors if t.requires_grad]
    if isinstance(fn, Module):
        fn = copy.deepcopy(fn)
        for parameter in fn.parameters():
            parameter.data = parameter.data.astype("float64")
            checked.append(parameter)
    if not checked:
        raise ValueError("gradcheck found no floating-point input or parameter to check")
    return fn, tensors, checked


def _float64_tensor(x):
    data = x.data if isinstance(x, Tensor) else backend.xp_of(x).asarray(x)
    if data.dtype.kind != "f":
        return Tensor(data)
    return Tensor(data.astype("float64"), requires_grad=True)


def _evaluate(fn, tensors, seed):
    with backend.fixed_seed(seed):  # dropout draws the same mask every time
        return fn(*tensors)


def _upstream_weights(fn, tensors, seed):
    with no_grad():
        shape = _evaluate(fn, tensors, seed).shape
    xp = backend.xp_of(tensors[0].data)
    return xp.asarray(np.random.default_rng(seed).standard_normal(shape))


def _analytic_gradients(fn, tensors, checked, weights, seed):
    for tensor in checked:
        tensor.grad = None
    _evaluate(fn, tensors, seed).backward(weights)
    xp = backend.xp_of(weights)
    return [backend.to_numpy(t.grad if t.grad is not None else xp.zeros(t.shape)) for t in checked]


def _central_difference(fn, tensors, weights, seed, eps, moves):
    """(L(x + eps d) - L(x - eps d)) / 2 eps for the moves [(tensor, index, d)]."""

    def loss_after(sign):
        originals = [tensor.data[index].copy() for tensor, index, _ in moves]
        for tensor, index, direction in moves:
            tensor.data[index] += sign * eps * backend.to_device(np.asarray(direction), tensor.device)
        with no_grad():
            value = float((_evaluate(fn, tensors, seed).data * weights).sum())
        for (tensor, index, _), original in zip(moves, originals):
            tensor.data[index] = original
        return value

    return (loss_after(+1) - loss_after(-1)) / (2 * eps)


def _relative_error(analytic, numeric):
    scale = max(np.abs(analytic).max(), np.abs(numeric).max(), np.finfo(float).tiny)
    return float(np.abs(analytic - numeric).max() / scale)
