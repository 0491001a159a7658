"""Reference solution: the convolution assignment (tutorials/assignments/convolution.py)."""

import numpy as np


def _grid(x_shape, kh, kw, stride):
    return (x_shape[2] - kh) // stride + 1, (x_shape[3] - kw) // stride + 1


def im2col(x, kh, kw, stride):
    n, c = x.shape[:2]
    oh, ow = _grid(x.shape, kh, kw, stride)
    columns = np.empty((c, kh, kw, n, oh, ow), dtype=x.dtype)
    for i in range(kh):
        for j in range(kw):
            window_element = x[:, :, i : i + stride * oh : stride, j : j + stride * ow : stride]
            columns[:, i, j] = window_element.transpose(1, 0, 2, 3)
    return columns.reshape(c * kh * kw, n * oh * ow)


def col2im(columns, x_shape, kh, kw, stride):
    n, c = x_shape[:2]
    oh, ow = _grid(x_shape, kh, kw, stride)
    columns = columns.reshape(c, kh, kw, n, oh, ow)
    x = np.zeros(x_shape, dtype=columns.dtype)
    for i in range(kh):
        for j in range(kw):
            window_element = columns[:, i, j].transpose(1, 0, 2, 3)
            x[:, :, i : i + stride * oh : stride, j : j + stride * ow : stride] += window_element
    return x


def conv_forward(x, w, b, stride=1, padding=0, groups=1):
    f, _, kh, kw = w.shape
    padded = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    columns = im2col(padded, kh, kw, stride)
    oh, ow = _grid(padded.shape, kh, kw, stride)
    # Rows of one group's channels are contiguous (the channel varies slowest): one product per group.
    out = w.reshape(groups, f // groups, -1) @ columns.reshape(groups, -1, columns.shape[1])
    out = out.reshape(f, x.shape[0], oh, ow).transpose(1, 0, 2, 3) + b[:, None, None]
    return out, (columns, padded.shape, w, stride, padding, groups)


def conv_backward(dout, cache):
    columns, padded_shape, w, stride, padding, groups = cache
    f, _, kh, kw = w.shape
    dout_rows = dout.transpose(1, 0, 2, 3).reshape(groups, f // groups, -1)
    column_groups = columns.reshape(groups, -1, columns.shape[1])
    dw = (dout_rows @ column_groups.transpose(0, 2, 1)).reshape(w.shape)
    dcolumns = (w.reshape(groups, f // groups, -1).transpose(0, 2, 1) @ dout_rows).reshape(columns.shape)
    dpadded = col2im(dcolumns, padded_shape, kh, kw, stride)
    dx = dpadded[:, :, padding : padded_shape[2] - padding, padding : padded_shape[3] - padding]
    return dx, dw, dout.sum(axis=(0, 2, 3))
