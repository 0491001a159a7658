"""Reference solution: the max pooling assignment (tutorials/assignments/pooling.py)."""

import numpy as np


def max_pool_forward(x, kernel_size=3, stride=2, padding=0):
    k, s, p = kernel_size, stride, padding
    padded = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)), constant_values=-np.inf)
    oh, ow = (padded.shape[2] - k) // s + 1, (padded.shape[3] - k) // s + 1
    windows = np.stack([padded[:, :, i : i + s * oh : s, j : j + s * ow : s] for i in range(k) for j in range(k)])
    winner = windows.argmax(axis=0)  # the first maximum on ties
    return windows.max(axis=0), (winner, x.shape, kernel_size, stride, padding)


def max_pool_backward(dout, cache):
    winner, x_shape, k, s, p = cache
    n, c, h, w = x_shape
    oh, ow = dout.shape[2:]
    dpadded = np.zeros((n, c, h + 2 * p, w + 2 * p), dtype=dout.dtype)
    for offset in range(k * k):
        i, j = divmod(offset, k)
        # += : overlapping windows may share a winner, which then gets every one of their gradients
        dpadded[:, :, i : i + s * oh : s, j : j + s * ow : s] += dout * (winner == offset)
    return dpadded[:, :, p : p + h, p : p + w]
