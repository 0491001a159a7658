"""Reference solution: the linear and softmax assignment (tutorials/assignments/linear_softmax.py)."""

import numpy as np


def linear_forward(x, w, b):
    return x @ w.T + b, (x, w)


def linear_backward(dout, cache):
    x, w = cache
    return dout @ w, dout.T @ x, dout.sum(axis=0)


def softmax_cross_entropy_forward(logits, targets):
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    rows = np.arange(len(targets))
    return -log_p[rows, targets].mean(), (log_p, targets)


def softmax_cross_entropy_backward(dloss, cache):
    log_p, targets = cache
    dlogits = np.exp(log_p)
    dlogits[np.arange(len(targets)), targets] -= 1
    return dlogits * (dloss / len(targets))
