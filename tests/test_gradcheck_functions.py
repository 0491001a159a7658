"""Every Function's backward against float64 central differences (worst error < 1e-6)."""

import numpy as np
import pytest

import tinynet.functional as F
from tinynet import Function, backend, nn
from tinynet.gradcheck import check_direction, check_elementwise, gradcheck

TOLERANCE = 1e-6
_rng = np.random.default_rng(1)


def normal(*shape):
    return _rng.standard_normal(shape)


def positive(*shape):
    return _rng.uniform(0.5, 2.0, shape)


def separated(*shape):
    """Distinct values at least 0.1 apart, so no max is within eps of a tie."""
    return _rng.permutation(np.prod(shape)).reshape(shape) * 0.1


CASES = {
    "add (broadcast)": (lambda a, b: a + b, [normal(3, 1, 4), normal(2, 4)]),
    "sub (broadcast)": (lambda a, b: a - b, [normal(3, 4), normal(4)]),
    "mul (broadcast)": (lambda a, b: a * b, [normal(2, 3, 4), normal(3, 1)]),
    "div (broadcast)": (lambda a, b: a / b, [normal(3, 4), positive(1, 4)]),
    "scalars": (lambda a: 2 * a - 1 + a / 3 - 4 / (a * a + 1), [normal(3, 4)]),
    "neg": (lambda a: -a, [normal(3, 4)]),
    "pow": (lambda a: a**3 + a**-0.5, [positive(3, 4)]),
    "matmul": (lambda a, b: a @ b, [normal(3, 4), normal(4, 5)]),
    "matmul (batched)": (lambda a, b: a @ b, [normal(2, 3, 4), normal(4, 5)]),
    "exp": (lambda a: a.exp(), [normal(3, 4)]),
    "log": (lambda a: a.log(), [positive(3, 4)]),
    "sum (axes)": (lambda a: a.sum(axis=(0, 2)), [normal(2, 3, 4)]),
    "sum (keepdims)": (lambda a: a.sum(axis=1, keepdims=True), [normal(2, 3, 4)]),
    "sum (all)": (lambda a: a.sum(), [normal(2, 3)]),
    "mean": (lambda a: a.mean(axis=-1), [normal(2, 3, 4)]),
    "max (axis)": (lambda a: a.max(axis=1).values, [separated(3, 5, 2)]),
    "max (all, keepdims)": (lambda a: a.max(keepdims=True), [separated(3, 5)]),
    "reshape": (lambda a: a.reshape(4, 6), [normal(2, 3, 4)]),
    "transpose": (lambda a: a.transpose(2, 0), [normal(2, 3, 4)]),
    "T": (lambda a: a.T, [normal(3, 4)]),
    "flatten": (lambda a: a.flatten(), [normal(2, 3, 4)]),
    "getitem": (lambda a: a[1:, ::2, 2], [normal(3, 5, 4)]),
    "relu": (lambda a: a.relu(), [normal(3, 4)]),
    "diamond (tensor used twice)": (lambda a: (a * a) + (a * a).exp() * a, [normal(3, 4)]),
    "tensor used at two depths": (
        lambda a: (lambda h: h - h.exp().sum(axis=1, keepdims=True))(a * 1.0),
        [normal(3, 4)],
    ),
    "linear": (lambda x, w, b: F.linear(x, w, b), [normal(4, 5), normal(3, 5), normal(3)]),
    "linear (no bias)": (lambda x, w: F.linear(x, w), [normal(4, 5), normal(3, 5)]),
    "conv2d (stride 2, overlapping)": (
        lambda x, w, b: F.conv2d(x, w, b, stride=2),
        [normal(2, 3, 9, 9), normal(4, 3, 3, 3), normal(4)],
    ),
    "conv2d (padding, odd non-square input)": (
        lambda x, w, b: F.conv2d(x, w, b, stride=1, padding=2),
        [normal(2, 2, 5, 7), normal(3, 2, 3, 3), normal(3)],
    ),
    "conv2d (3x3 stride 1, groups=2: Winograd on the fast path)": (
        lambda x, w, b: F.conv2d(x, w, b, groups=2),
        [normal(2, 4, 6, 5), normal(4, 2, 3, 3), normal(4)],
    ),
    "conv2d (5x6 stride 1, padding (2, 3), groups=2: the DFT on the fast path)": (
        lambda x, w, b: F.conv2d(x, w, b, padding=(2, 3), groups=2),
        [normal(2, 4, 6, 5), normal(4, 2, 5, 6), normal(4)],
    ),
    "conv2d (groups=2, non-square kernel, no bias)": (
        lambda x, w: F.conv2d(x, w, stride=(2, 1), padding=(1, 0), groups=2),
        [normal(2, 4, 7, 6), normal(6, 2, 3, 2)],
    ),
    "max_pool2d (3x3 stride 2, overlapping)": (lambda x: F.max_pool2d(x, 3, 2), [separated(2, 3, 9, 7)]),
    "max_pool2d (padding)": (lambda x: F.max_pool2d(x, 3, 2, padding=1), [separated(2, 2, 6, 5)]),
    "max_pool2d (non-square)": (lambda x: F.max_pool2d(x, (2, 3), (1, 2)), [separated(1, 2, 5, 7)]),
    "dropout": (lambda x: F.dropout(x, 0.5), [normal(4, 6)]),
    "local_response_norm (paper alpha)": (
        lambda x: F.local_response_norm(x, 5, alpha=0.1, beta=0.75, k=2.0),
        [normal(2, 7, 3, 4)],
    ),
    "local_response_norm (alpha/n, even size)": (
        lambda x: F.local_response_norm(x, 4, alpha=0.5, beta=0.75, k=1.0, alpha_over_n=True),
        [normal(2, 6, 3, 3)],
    ),
    "cross_entropy": (lambda x, t: F.cross_entropy(x, t), [normal(5, 4), np.array([0, 3, 1, 2, 3])]),
    "softmax": (lambda x: F.softmax(x, dim=1), [normal(5, 4)]),
    "log_softmax": (lambda x: F.log_softmax(x, dim=0), [normal(5, 4)]),
}


@pytest.mark.parametrize("name", list(CASES))
def test_gradient_matches_central_differences(name, device, layer_path):
    """Run on both layer paths: the fast Functions must pass the same checks."""
    fn, inputs = CASES[name]
    inputs = [backend.to_device(x, device) for x in inputs]
    assert check_elementwise(fn, inputs) < TOLERANCE
    assert check_direction(fn, inputs) < TOLERANCE


class WrongSquare(Function):
    """x**2 with a deliberate bug in backward: the factor 2 is missing."""

    def forward(self, x):
        self.save_for_backward(x)
        return x * x

    def backward(self, grad):
        (x,) = self.saved_arrays
        return (grad * x,)


def test_gradcheck_catches_a_wrong_backward():
    x = normal(3, 4)
    assert gradcheck(lambda a: WrongSquare()(a), [x]) > 0.3


def test_gradcheck_catches_one_wrong_entry():
    class OneWrongEntry(WrongSquare):
        def backward(self, grad):
            (x,) = self.saved_arrays
            out = 2 * x * grad
            out[0, 0] *= 1.5
            return (out,)

    assert check_elementwise(lambda a: OneWrongEntry()(a), [positive(3, 4)]) > 1e-3


def test_gradcheck_on_a_small_alexnet_shaped_module():
    model = nn.Sequential(
        nn.Conv2d(3, 4, 3, stride=2, padding=1), nn.ReLU(), nn.LocalResponseNorm(5, alpha=0.1),
        nn.MaxPool2d(3, 2), nn.Conv2d(4, 4, 3, padding=1, groups=2), nn.ReLU(),
        nn.Flatten(), nn.Dropout(0.5), nn.Linear(16, 3),
    )
    x = normal(2, 3, 9, 9)
    targets = np.array([0, 2])
    assert check_direction(lambda a, t: F.cross_entropy(model(a), t), [x, targets]) < TOLERANCE
    assert check_direction(model, [x]) < TOLERANCE


def test_gradcheck_does_not_change_the_callers_module():
    model = nn.Linear(3, 2)
    before = model.weight.data.copy()
    gradcheck(model, [normal(2, 3)])
    assert model.weight.dtype == np.float32
    np.testing.assert_array_equal(model.weight.data, before)
