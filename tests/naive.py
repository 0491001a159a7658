"""Loop implementations of the layers, written straight from their definitions.

Slow and obviously right (the way CS231n teaches convolution before im2col):
the vectorised Functions are tested against them on small inputs.
"""

import numpy as np


def conv2d(x, w, b, stride, padding, groups):
    n, c, h, width = x.shape
    out_channels, per_group, kh, kw = w.shape
    (sh, sw), (ph, pw) = stride, padding
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    oh, ow = (h + 2 * ph - kh) // sh + 1, (width + 2 * pw - kw) // sw + 1
    out = np.zeros((n, out_channels, oh, ow))
    outs_per_group = out_channels // groups
    for i in range(n):
        for o in range(out_channels):
            first = (o // outs_per_group) * per_group
            for y in range(oh):
                for z in range(ow):
                    field = xp[i, first : first + per_group, y * sh : y * sh + kh, z * sw : z * sw + kw]
                    out[i, o, y, z] = (field * w[o]).sum() + (b[o] if b is not None else 0)
    return out


def max_pool2d(x, kernel, stride, padding):
    n, c, h, w = x.shape
    (kh, kw), (sh, sw), (ph, pw) = kernel, stride, padding
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)), constant_values=-np.inf)
    oh, ow = (h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1
    out = np.zeros((n, c, oh, ow))
    for i in range(n):
        for ch in range(c):
            for y in range(oh):
                for z in range(ow):
                    out[i, ch, y, z] = xp[i, ch, y * sh : y * sh + kh, z * sw : z * sw + kw].max()
    return out


def local_response_norm(x, size, alpha, beta, k, alpha_over_n):
    a = alpha / size if alpha_over_n else alpha
    out = np.zeros_like(x)
    channels = x.shape[1]
    for c in range(channels):
        lo, hi = max(0, c - size // 2), min(channels - 1, c + (size - 1) // 2)
        total = (x[:, lo : hi + 1] ** 2).sum(axis=1)
        out[:, c] = x[:, c] / (k + a * total) ** beta
    return out


def cross_entropy(logits, targets):
    total = 0.0
    for row, target in zip(logits, targets):
        total += -np.log(np.exp(row[target]) / np.exp(row).sum())
    return total / len(targets)
