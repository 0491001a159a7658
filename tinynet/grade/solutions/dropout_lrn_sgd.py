"""Reference solution: dropout, LRN and SGD (tutorials/assignments/dropout_lrn_sgd.py)."""

import numpy as np


def dropout_forward(x, p, random):
    keep = random(x.shape) >= p
    mask = keep.astype(x.dtype) / x.dtype.type(1 - p)
    return x * mask, mask


def dropout_backward(dout, cache):
    return dout * cache


def _window_sum(a, before, after):
    """out[:, c] = a[:, c - before : c + after + 1].sum(axis=1), zeros past the edges."""
    channels = a.shape[1]
    padded = np.pad(a, ((0, 0), (before, after), (0, 0), (0, 0)))
    return sum(padded[:, offset : offset + channels] for offset in range(before + after + 1))


def lrn_forward(x, size=5, alpha=1e-4, beta=0.75, k=2.0):
    scale = k + alpha * _window_sum(x * x, size // 2, (size - 1) // 2)
    return x * scale**-beta, (x, scale, size, alpha, beta)


def lrn_backward(dout, cache):
    x, scale, size, alpha, beta = cache
    through_scale = _window_sum(dout * x * scale ** (-beta - 1), (size - 1) // 2, size // 2)
    return dout * scale**-beta - 2 * alpha * beta * x * through_scale


def sgd_step(w, dw, v, lr, momentum=0.9, weight_decay=5e-4):
    v = momentum * v - weight_decay * lr * w - lr * dw
    return w + v, v
