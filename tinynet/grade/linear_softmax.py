"""Checks of the linear and softmax assignment, against tinynet.reference's Linear and SoftmaxCrossEntropy."""

import numpy as np

from ..reference import Linear, SoftmaxCrossEntropy
from .checks import CheckFailed, Checklist, as_tuple, expect_close, expect_gradients, expect_shape, tinynet_pass

checks = Checklist()
_LAYOUT = "w is (out_features, in_features) as in PyTorch: out = x @ w.T + b"


def _linear_inputs(n, d=5, m=3, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, d)), rng.standard_normal((m, d)), rng.standard_normal(m)


def _expect_linear_gradients(student, x, w, b):
    dout = np.random.default_rng(1).standard_normal((x.shape[0], w.shape[0]))
    _, (dx, dw, db) = tinynet_pass(lambda *t: Linear()(*t), [x, w, b], dout)
    _, cache = student.linear_forward(x, w, b)
    grads = as_tuple(student.linear_backward(dout.copy(), cache))
    if len(grads) != 3:
        raise CheckFailed(f"linear_backward returned {len(grads)} arrays, expected 3: (dx, dw, db)")
    expect_close(grads[0], dx, "dx", "dx = dout @ w, of x's shape (N, D)")
    expect_close(grads[1], dw, "dw", "dw = dout.T @ x, of w's shape (out, in)",
                 [(x.T @ dout, "dw has the shape of w.T: dw = dout.T @ x (out, in), not x.T @ dout")])
    expect_close(grads[2], db, "db", "db sums dout over the batch: dout.sum(axis=0)",
                 [(dout.mean(axis=0), "db is the sum of dout over the batch (axis 0), not its mean"),
                  (dout.sum(axis=1), "db sums over the batch, axis 0, not over the outputs (axis 1)"),
                  (dout.sum(), "db sums over the batch only: dout.sum(axis=0) has one entry per output")])


@checks.add("linear_forward: output shape (N, M) for N != D != M", hint=_LAYOUT)
def linear_shape(student):
    x, w, b = _linear_inputs(4)
    out, _ = student.linear_forward(x, w, b)
    expect_shape(out, (4, 3), "out", _LAYOUT)


@checks.add("linear_forward: values against tinynet", hint=_LAYOUT)
def linear_values(student):
    x, w, b = _linear_inputs(4)
    out, _ = student.linear_forward(x, w, b)
    expect_close(out, Linear()(x, w, b).data, "out", _LAYOUT,
                 [(x @ w.T, "the bias b is missing: out = x @ w.T + b")])


@checks.add("linear_backward: dx, dw, db against tinynet", hint="dx = dout @ w, dw = dout.T @ x, db = dout.sum(axis=0)")
def linear_gradients(student):
    _expect_linear_gradients(student, *_linear_inputs(4))


@checks.add("linear: batch of 1", hint="a batch of one is still 2-D: x is (1, D) and db keeps the shape (M,)")
def linear_batch_of_one(student):
    x, w, b = _linear_inputs(1, seed=2)
    expect_close(student.linear_forward(x, w, b)[0], Linear()(x, w, b).data, "out", _LAYOUT)
    _expect_linear_gradients(student, x, w, b)


@checks.add("linear: gradient check (float64)", hint="dx = dout @ w, dw = dout.T @ x, db = dout.sum(axis=0)")
def linear_gradcheck(student):
    expect_gradients(student.linear_forward, student.linear_backward, list(_linear_inputs(3, seed=3)),
                     "linear", "compare each gradient's formula with the derivative of out = x @ w.T + b")


# -- softmax cross-entropy ---------------------------------------------------------------------

_LOSS = "L = -(1/N) sum_i log softmax(logits)[i, targets[i]], the softmax over the classes (axis 1)"


def _logits(n=4, classes=6, scale=1.0, seed=4):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, classes)) * scale, rng.integers(0, classes, n)


def _log_softmax(logits, axis):
    shifted = logits - logits.max(axis=axis, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))


def _expect_loss(student, logits, targets):
    loss, _ = student.softmax_cross_entropy_forward(logits, targets)
    rows = np.arange(len(targets))
    expected = SoftmaxCrossEntropy()(logits, targets).data
    mistakes = [
        (expected * len(targets), "the loss is the mean over the batch: divide the sum by N"),
        (-expected, "the loss is minus the log-probability of the target: -log p"),
        (-_log_softmax(logits, axis=0)[rows, targets].mean(), "the softmax runs over the classes (axis 1), "
         "not over the batch (axis 0)"),
        (lambda actual: not np.isfinite(actual).all(), "the loss is inf or nan: subtract each row's maximum "
         "before exp (the log-sum-exp trick); exp(1000) overflows"),
    ]
    expect_close(loss, expected, "the loss", _LOSS, mistakes)


@checks.add("softmax_cross_entropy_forward: the mean loss against tinynet", hint=_LOSS)
def loss_values(student):
    _expect_loss(student, *_logits())


@checks.add("softmax_cross_entropy_forward: logits of +-1000 (numerical stability)",
            hint="subtract each row's maximum before exp: the log-sum-exp trick (lesson 3)")
def loss_stability(student):
    _expect_loss(student, *_logits(scale=1000.0, seed=5))


@checks.add("softmax_cross_entropy_backward: against tinynet, with an upstream gradient of 2.5",
            hint="dlogits = (softmax(logits) - one_hot(targets)) * dloss / N")
def loss_gradient(student):
    logits, targets = _logits(seed=6)
    dloss = 2.5
    _, (expected,) = tinynet_pass(lambda *t: SoftmaxCrossEntropy()(*t), [logits, targets], dloss)
    _, cache = student.softmax_cross_entropy_forward(logits, targets)
    one_hot = np.eye(logits.shape[1])[targets]
    p = np.exp(_log_softmax(logits, axis=1))
    mistakes = [
        (expected * len(targets), "divide by N: the loss is the mean over the batch"),
        (expected / dloss, "multiply by the upstream gradient dloss (chain rule)"),
        (p * dloss / len(targets), "subtract 1 at each row's target: dL/dlogits = (p - one_hot) / N"),
        ((one_hot - p) * dloss / len(targets), "the sign is flipped: dL/dlogits = (p - one_hot) / N"),
    ]
    expect_close(student.softmax_cross_entropy_backward(dloss, cache), expected, "dlogits",
                 "dlogits = (softmax(logits) - one_hot(targets)) * dloss / N", mistakes)


@checks.add("softmax cross-entropy: batch of 1 with two classes, and a gradient check (float64)",
            hint="the mean over a batch of one divides by 1; each row's gradient sums to 0")
def loss_gradcheck(student):
    _expect_loss(student, *_logits(n=1, classes=2, seed=7))
    expect_gradients(student.softmax_cross_entropy_forward, student.softmax_cross_entropy_backward,
                     list(_logits(n=3, classes=4, seed=8)), "softmax cross-entropy",
                     "the backward must be the derivative of your forward loss")
