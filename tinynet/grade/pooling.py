"""Checks of the max pooling assignment, against tinynet.reference.MaxPool2d."""

import numpy as np

from ..reference import MaxPool2d
from ..windows import receptive_fields
from .checks import Checklist, expect_close, expect_gradients, expect_shape, tinynet_pass

checks = Checklist()
_OUT_SIZE = "oh = (H + 2*padding - kernel_size) // stride + 1, and likewise ow"
_ROUTE = ("each window's gradient goes to its winner only, added (+=) to what other windows sent it "
          "(lesson 5, section 1)")
_LOST = ("gradients got lost: an input that wins several overlapping windows must receive the sum of their "
         "gradients; add (+=) into dx instead of assigning (=)")
_TIES = ("an input tied for a window's maximum received a share of the gradient too: send each window's gradient "
         "to its first maximum only (the argmax), not to every element equal to the maximum")


def _separated(seed, *shape):
    """Distinct values at least 0.1 apart, so that no maximum is within a gradient check's step of a tie."""
    return np.random.default_rng(seed).permutation(int(np.prod(shape))).reshape(shape) * 0.1 - 1.0


def _positive(seed, *shape):
    return np.random.default_rng(seed).uniform(0.5, 1.5, shape)


def _student_forward(student, x, k, s, p):
    out, _ = student.max_pool_forward(x, kernel_size=k, stride=s, padding=p)
    return out


def _student_backward(student, x, k, s, p, dout):
    _, cache = student.max_pool_forward(x, kernel_size=k, stride=s, padding=p)
    return student.max_pool_backward(dout.copy(), cache)


def _window_means(x, k, s):
    fields = receptive_fields(x, (k, k), (s, s))  # (C, k, k, N, oh, ow)
    return fields.mean(axis=(1, 2)).transpose(1, 0, 2, 3)


def _expect_forward(student, x, k, s, p):
    expected = MaxPool2d(k, s, p)(x).data
    zero_padded = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))
    mistakes = [
        (MaxPool2d(k, s)(zero_padded).data, "the padding won over negative inputs: pad with -inf "
         "(np.pad(..., constant_values=-np.inf)), not 0, so that the border never wins"),
        (_window_means(zero_padded, k, s), "that is the mean of each window: max pooling takes the maximum"),
    ]
    expect_close(_student_forward(student, x, k, s, p), expected, f"out ({k}x{k}, stride {s}, padding {p})",
                 f"{_OUT_SIZE}; out is the maximum of each window", mistakes)


def _expect_backward(student, x, k, s, p, dout, extra_mistakes=()):
    _, (expected,) = tinynet_pass(lambda t: MaxPool2d(k, s, p)(t), [x], dout)
    padded = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)), constant_values=-np.inf)
    _, (with_padding,) = tinynet_pass(lambda t: MaxPool2d(k, s)(t), [padded], dout)
    mistakes = [
        *extra_mistakes,
        (with_padding, "dx still has the padding: cut it off, dx_padded[:, :, p:p + H, p:p + W]"),
        (lambda dx: dx.sum() < dout.sum() - 1e-6, _LOST),
        (lambda dx: dx.sum() > dout.sum() + 1e-6, _TIES),
    ]
    expect_close(_student_backward(student, x, k, s, p, dout), expected, f"dx ({k}x{k}, stride {s}, padding {p})",
                 _ROUTE, mistakes)


@checks.add("max_pool_forward: output shape, 3x3 stride 2 on a non-square input", hint=_OUT_SIZE)
def forward_shape(student):
    out = _student_forward(student, _separated(0, 2, 3, 7, 9), 3, 2, 0)
    expect_shape(out, (2, 3, 3, 4), "out", f"{_OUT_SIZE}: (7 - 3) // 2 + 1 = 3, (9 - 3) // 2 + 1 = 4")


@checks.add("max_pool_forward: values against tinynet, overlapping 3x3 windows with stride 2", hint=_OUT_SIZE)
def forward_values(student):
    _expect_forward(student, _separated(1, 2, 3, 7, 9), 3, 2, 0)


@checks.add("max_pool_forward: padding 1 around negative inputs (the padding must never win)",
            hint="pad with -inf: np.pad(x, ..., constant_values=-np.inf)")
def forward_padding(student):
    _expect_forward(student, -_positive(2, 2, 2, 6, 5), 3, 2, 1)


@checks.add("max_pool_forward: 2x2 stride 2 on odd sizes (the last row and column are left out), batch of 1",
            hint=_OUT_SIZE)
def forward_disjoint(student):
    _expect_forward(student, _separated(3, 1, 2, 7, 5), 2, 2, 0)


@checks.add("max_pool_backward: overlapping windows that share a winner", hint=_ROUTE)
def backward_shared_winner(student):
    lesson = np.array([[1, 3, 2, 0, 1], [4, 8, 1, 5, 2], [0, 2, 9, 1, 3], [6, 1, 3, 7, 0], [2, 5, 0, 4, 6]], float)
    x = np.stack([lesson, _separated(4, 5, 5)])[None]  # lesson 5's example: its 9 wins all four windows
    _expect_backward(student, x, 3, 2, 0, _positive(5, 1, 2, 2, 2))


@checks.add("max_pool_backward: ties go to the first maximum of each window", hint=_TIES)
def backward_ties(student):
    x = np.random.default_rng(6).integers(0, 2, (2, 2, 5, 7)).astype(float)  # windows of 0s and 1s: ties everywhere
    dout = _positive(7, 2, 2, 2, 3)
    # The last maximum of a window is the first one of the image turned by 180 degrees.
    _, (last,) = tinynet_pass(lambda t: MaxPool2d(3, 2)(t), [x[:, :, ::-1, ::-1].copy()], dout[:, :, ::-1, ::-1].copy())
    wrong_tie = [(last[:, :, ::-1, ::-1], "ties go to the first maximum in the window (row-major order, as np.argmax "
                  "picks), not the last")]
    _expect_backward(student, x, 3, 2, 0, dout, wrong_tie)


@checks.add("max_pool_backward: padding 1, dx has x's shape", hint="cut the padding off dx")
def backward_padding(student):
    _expect_backward(student, _separated(8, 2, 2, 6, 5), 3, 2, 1, _positive(9, 2, 2, 3, 3))


@checks.add("max pooling: gradient check (float64), 3x3 stride 2, padding 1", hint=_ROUTE)
def gradient_check(student):
    expect_gradients(student.max_pool_forward, student.max_pool_backward, [_separated(10, 2, 2, 5, 6)],
                     "max pooling", _ROUTE, kernel_size=3, stride=2, padding=1)
