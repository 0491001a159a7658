"""Checks of the dropout, LRN and SGD assignment, against F.dropout, tinynet.reference.LocalResponseNorm
and optim.SGD(update="paper")."""

import numpy as np

from .. import backend
from ..functional import dropout
from ..optim import SGD
from ..reference import LocalResponseNorm
from ..tensor import Tensor
from .checks import Checklist, expect_close, expect_dtype, expect_gradients, tinynet_pass

checks = Checklist()
_DROPOUT = "keep the units where random(x.shape) >= p and scale them by 1 / (1 - p) (lesson 5, section 3)"
_LRN = "b = a / (k + alpha * sum of a**2 over channels c - size//2 ... c + (size-1)//2) ** beta (lesson 5, section 4)"
_LRN_BACKWARD = "dx has the direct term dout * s**-beta and, through the sums, -2 alpha beta a_j sum_i (...)"
_SGD = "v <- momentum * v - weight_decay * lr * w - lr * dw; w <- w + v (lesson 7, section 1)"
_SEED = 7


def _uniform(dtype):
    """The ``random`` handed to the student: tinynet's generator, which F.dropout draws its mask from."""
    return lambda shape: backend.generator("cpu").random(shape, dtype=dtype)


def _dropout_cases(x, p):
    """tinynet's output, and the outputs of typical mistakes, for one seeded draw."""
    with backend.fixed_seed(_SEED):
        expected = dropout(Tensor(x), p).data
    with backend.fixed_seed(_SEED):
        r = _uniform(x.dtype)(x.shape)
    keep, drop = x * (r >= p), x * (r < p)
    mistakes = [
        (keep, "the kept units are not scaled: divide them by 1 - p (inverted dropout scales at training time)"),
        (keep / p, "divide by the probability of keeping a unit, 1 - p, not by p"),
        (keep * (1 - p), "divide the kept units by 1 - p, don't multiply: inverted dropout scales them up"),
        (drop / (1 - p), "p is the probability of dropping: keep the units where random(x.shape) >= p, not < p"),
    ]
    return expected, mistakes


def _student_dropout(student, x, p):
    with backend.fixed_seed(_SEED):
        return student.dropout_forward(x, p, _uniform(x.dtype))


def _expect_dropout(student, x, p):
    expected, mistakes = _dropout_cases(x, p)
    out, _ = _student_dropout(student, x, p)
    expect_close(out, expected, f"out (p={p})", _DROPOUT, mistakes)
    expect_dtype(out, x.dtype, f"out of a {x.dtype} input")


@checks.add("dropout_forward: p = 0.5 against F.dropout with the same generator, float32 stays float32",
            hint=_DROPOUT)
def dropout_half(student):
    _expect_dropout(student, np.random.default_rng(0).standard_normal((4, 6)).astype(np.float32), 0.5)


@checks.add("dropout_forward: p = 0.3, where 1/p, 1 - p and 1/(1 - p) all differ", hint=_DROPOUT)
def dropout_other_p(student):
    _expect_dropout(student, np.random.default_rng(1).standard_normal((3, 5, 4)), 0.3)


@checks.add("dropout_backward: the same mask as the forward pass", hint="dx = dout * mask, mask including its 1/(1-p)")
def dropout_gradient(student):
    x = np.random.default_rng(2).standard_normal((5, 4))
    dout = np.random.default_rng(3).standard_normal((5, 4))
    with backend.fixed_seed(_SEED):
        _, (expected,) = tinynet_pass(lambda t: dropout(t, 0.3), [x], dout)
    _, cache = _student_dropout(student, x, 0.3)
    mistakes = [(dout, "dropped units get no gradient: multiply dout by the forward pass's mask"),
                (dout * (expected != 0), "the gradient is scaled like the kept units: multiply by 1 / (1 - p) too")]
    expect_close(student.dropout_backward(dout.copy(), cache), expected, "dx", "dx = dout * mask", mistakes)
    expect_gradients(student.dropout_forward, student.dropout_backward, [x], "dropout", "dx = dout * mask",
                     p=0.3, random=_uniform(np.float64))


# -- local response normalisation --------------------------------------------------------------


def _lrn(x, size, alpha, beta, k, alpha_over_n=False):
    return LocalResponseNorm(size, alpha, beta, k, alpha_over_n)(x).data


def _wrapped_lrn(x, size, alpha, beta, k):
    """LRN whose window wraps around the channels (np.roll) instead of stopping at the edges."""
    squares = x * x
    total = sum(np.roll(squares, shift, axis=1) for shift in range(-(size // 2), (size - 1) // 2 + 1))
    return x / (k + alpha * total) ** beta


def _expect_lrn(student, x, size, alpha, beta, k):
    expected = _lrn(x, size, alpha, beta, k)
    mistakes = [
        (_lrn(x, size, alpha, beta, k, alpha_over_n=True), "alpha was divided by size: that is PyTorch's and "
         "Caffe's convention; the paper (and this assignment) uses alpha as it is"),
        (_wrapped_lrn(x, size, alpha, beta, k), "the window wrapped around the channels: channels past the edges "
         "add nothing (pad the channel axis with zeros; np.roll wraps)"),
        (x * x / expected, "a is divided by the scale: out = a * s**-beta, not a * s**beta"),
    ]
    if size % 2 == 0:
        mistakes.append((_lrn(x, size + 1, alpha, beta, k), f"for an even size the window is c - size//2 ... "
                         f"c + (size-1)//2: here c - {size // 2} ... c + {(size - 1) // 2}, one channel fewer after c"))
    out, _ = student.lrn_forward(x, size=size, alpha=alpha, beta=beta, k=k)
    expect_close(out, expected, f"out (size {size}, {x.shape[1]} channels)", _LRN, mistakes)


@checks.add("lrn_forward: 7 channels with size 5 (not a multiple), alpha = 0.05", hint=_LRN)
def lrn_values(student):
    _expect_lrn(student, np.random.default_rng(4).standard_normal((2, 7, 3, 4)) * 2, 5, 0.05, 0.75, 2.0)


@checks.add("lrn_forward: the paper's constants on activations of ~30, 3 channels (fewer than the size), batch of 1",
            hint=_LRN)
def lrn_paper_constants(student):
    _expect_lrn(student, np.random.default_rng(5).standard_normal((1, 3, 4, 3)) * 30, 5, 1e-4, 0.75, 2.0)


@checks.add("lrn_forward: an even size (4): the window is c-2 ... c+1, as in tinynet and PyTorch", hint=_LRN)
def lrn_even_size(student):
    _expect_lrn(student, np.random.default_rng(6).standard_normal((2, 6, 2, 3)) * 2, 4, 0.1, 0.75, 1.0)


@checks.add("lrn_backward: against tinynet", hint=_LRN_BACKWARD)
def lrn_gradient(student):
    x = np.random.default_rng(7).standard_normal((2, 7, 2, 3)) * 2
    dout = np.random.default_rng(8).standard_normal(x.shape)
    options = dict(size=5, alpha=0.05, beta=0.75, k=2.0)
    _, (expected,) = tinynet_pass(lambda t: LocalResponseNorm(**options)(t), [x], dout)
    direct = dout * _lrn(x, **options) / x  # dout * s**-beta: the path from a[c] to b[c] alone
    _, cache = student.lrn_forward(x, **options)
    expect_close(student.lrn_backward(dout.copy(), cache), expected, "dx", _LRN_BACKWARD,
                 [(direct, "only the direct term dout * s**-beta: each input also changes the sums s of its "
                   "neighbours' outputs (and its own), add -2 alpha beta a_j sum_i dout_i a_i s_i**(-beta-1)")])


@checks.add("lrn: gradient check (float64), even and odd sizes", hint=_LRN_BACKWARD)
def lrn_gradcheck(student):
    for size, channels in ((5, 7), (4, 6)):
        x = np.random.default_rng(size).standard_normal((2, channels, 2, 2)) * 2
        expect_gradients(student.lrn_forward, student.lrn_backward, [x], f"LRN of size {size}", _LRN_BACKWARD,
                         size=size, alpha=0.1, beta=0.75, k=1.0)


# -- the paper's SGD update --------------------------------------------------------------------


def _tinynet_sgd(w, grads, rates, momentum, decay):
    """tinynet's optim.SGD(update="paper") over the steps: (weights, velocity) after each."""
    param = Tensor(w.copy(), requires_grad=True)
    optimizer = SGD([param], lr=rates[0], momentum=momentum, weight_decay=decay, update="paper")
    for grad, lr in zip(grads, rates):
        optimizer.lr = lr
        param.grad = grad
        optimizer.step()
    return param.data, optimizer.state[0]["velocity"]


def _simulate(rule, w, grads, rates, momentum, decay):
    v = np.zeros_like(w)
    for grad, lr in zip(grads, rates):
        w, v = rule(w, grad, v, lr, momentum, decay)
    return w, v


_MISTAKES = [
    (lambda w, g, v, lr, m, wd: (w + (m * v - wd * w - lr * g), m * v - wd * w - lr * g),
     "weight decay is scaled by the learning rate too: - weight_decay * lr * w"),
    (lambda w, g, v, lr, m, wd: (w + v, m * v - wd * lr * w - lr * g),
     "w moves by the new velocity: compute v first, then w + v"),
    (lambda w, g, v, lr, m, wd: (w - lr * (m * v + g + wd * w), m * v + g + wd * w),
     "that is PyTorch's rule (v <- m v + dw + wd w; w <- w - lr v); the paper's velocity carries the learning rate: "
     "v <- m v - wd lr w - lr dw; w <- w + v"),
    (lambda w, g, v, lr, m, wd: (w - (m * v - wd * lr * w - lr * g), m * v - wd * lr * w - lr * g),
     "the velocity already points downhill: w <- w + v, not w - v"),
]


def _expect_sgd(student, rates):
    rng = np.random.default_rng(9)
    w0 = rng.standard_normal((3, 4)).astype(np.float32)
    grads = [rng.standard_normal((3, 4)).astype(np.float32) for _ in rates]
    momentum, decay = 0.9, 5e-2  # a large decay, so that its term shows
    expected_w, expected_v = _tinynet_sgd(w0, grads, rates, momentum, decay)
    w, v = w0.copy(), np.zeros_like(w0)
    for grad, lr in zip(grads, rates):
        w, v = student.sgd_step(w, grad.copy(), v, lr, momentum=momentum, weight_decay=decay)
    wrong = [_simulate(rule, w0, grads, rates, momentum, decay) for rule, _ in _MISTAKES]
    what = f"after {len(rates)} steps at lr {rates}"
    expect_close(w, expected_w, f"w {what}", _SGD, [(w_, why) for (w_, _), (_, why) in zip(wrong, _MISTAKES)],
                 rtol=1e-4, atol=1e-6)
    expect_close(v, expected_v, f"v {what}", _SGD, [(v_, why) for (_, v_), (_, why) in zip(wrong, _MISTAKES)],
                 rtol=1e-4, atol=1e-6)
    expect_dtype(w, np.float32, "w after a step on float32 weights")


@checks.add("sgd_step: three steps of the paper's update against optim.SGD(update='paper')", hint=_SGD)
def sgd_constant_rate(student):
    _expect_sgd(student, [0.1, 0.1, 0.1])


@checks.add("sgd_step: the learning rate divided by 10 after two steps (the velocity keeps the old steps)",
            hint=_SGD)
def sgd_rate_change(student):
    _expect_sgd(student, [0.1, 0.1, 0.01, 0.01])
