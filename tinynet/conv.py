"""Convolution by im2col + GEMM, and max pooling, on NCHW arrays.

im2col turns every receptive field into a column, so a convolution becomes one
matrix product per group: weights (out, in*kh*kw) @ columns (in*kh*kw, N*oh*ow).
The columns are read through a strided view of the padded input (no Python loop
over pixels); col2im, its adjoint, adds the column gradients back by looping
over the kh*kw kernel offsets only, each a strided slice of the whole batch.
"""

from . import backend
from .tensor import Function, ShapeError


def pair(value):
    """(2, 2) from 2; (3, 5) stays (3, 5): kernels, strides and paddings may be non-square."""
    return tuple(value) if isinstance(value, (tuple, list)) else (value, value)


def output_size(size, kernel, stride, padding):
    return (size + 2 * padding - kernel) // stride + 1


def pad(x, padding, value=0):
    """Zero (or ``value``) padding of the two spatial axes."""
    ph, pw = padding
    if ph == 0 and pw == 0:
        return x
    return backend.xp_of(x).pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)), constant_values=value)


def im2col(x, kernel, stride):
    """Columns (C*kh*kw, N*oh*ow) of the already padded input x (N, C, H, W).

    Row c*kh*kw + i*kw + j, column n*oh*ow + y*ow + x holds
    x[n, c, y*sh + i, x*sw + j]: the strided view costs nothing, the one copy
    makes it contiguous for the GEMM.
    """
    xp = backend.xp_of(x)
    n, c, h, w = x.shape
    (kh, kw), (sh, sw) = kernel, stride
    oh, ow = (h - kh) // sh + 1, (w - kw) // sw + 1
    sn, sc, sy, sx = x.strides
    view = xp.lib.stride_tricks.as_strided(
        x, shape=(c, kh, kw, n, oh, ow), strides=(sc, sy, sx, sn, sy * sh, sx * sw)
    )
    return xp.ascontiguousarray(view).reshape(c * kh * kw, n * oh * ow)


def col2im(columns, padded_shape, kernel, stride):
    """The adjoint of im2col: add each column entry back where it was read from."""
    xp = backend.xp_of(columns)
    n, c, h, w = padded_shape
    (kh, kw), (sh, sw) = kernel, stride
    oh, ow = (h - kh) // sh + 1, (w - kw) // sw + 1
    columns = columns.reshape(c, kh, kw, n, oh, ow)
    # Accumulate in (C, N, H, W), the columns' own order, then transpose once.
    image = xp.zeros((c, n, h, w), dtype=columns.dtype)
    for i in range(kh):
        for j in range(kw):
            image[:, :, i : i + sh * oh : sh, j : j + sw * ow : sw] += columns[:, i, j]
    return image.transpose(1, 0, 2, 3)


class Conv2d(Function):
    """y[n, o] = sum over the input channels of o's group of w[o] * x[n] (cross-correlation) + b[o]."""

    def __init__(self, stride=1, padding=0, groups=1):
        self.stride, self.padding, self.groups = pair(stride), pair(padding), groups

    def forward(self, x, weight, *bias):
        check_conv_input(x.shape, weight.shape, self.padding, self.groups)
        xp = backend.xp_of(x)
        n, (out_channels, _, kh, kw) = x.shape[0], weight.shape
        padded = pad(x, self.padding)
        oh = (padded.shape[2] - kh) // self.stride[0] + 1
        ow = (padded.shape[3] - kw) // self.stride[1] + 1
        columns = im2col(padded, (kh, kw), self.stride)
        out = xp.empty((out_channels, n * oh * ow), dtype=x.dtype)
        for rows, outs in self._group_slices(weight.shape):
            xp.matmul(weight[outs].reshape(outs.stop - outs.start, -1), columns[rows], out=out[outs])
        if bias:
            out += bias[0][:, None]
        # Keep x, not the columns: recomputing im2col in backward costs a few
        # percent of the time and saves an array kh*kw times the input's size.
        self.save_for_backward(x, weight)
        return xp.ascontiguousarray(out.reshape(out_channels, n, oh, ow).transpose(1, 0, 2, 3))

    def backward(self, grad):
        x, weight = self.saved_arrays
        xp = backend.xp_of(grad)
        out_channels, _, kh, kw = weight.shape
        padded = pad(x, self.padding)
        columns = im2col(padded, (kh, kw), self.stride)
        grad_rows = xp.ascontiguousarray(grad.transpose(1, 0, 2, 3)).reshape(out_channels, -1)
        grad_weight = xp.empty_like(weight)
        grad_columns = xp.empty_like(columns) if self.needs_input_grad[0] else None
        for rows, outs in self._group_slices(weight.shape):
            w_group = weight[outs].reshape(outs.stop - outs.start, -1)
            grad_weight[outs] = (grad_rows[outs] @ columns[rows].T).reshape(weight[outs].shape)
            if grad_columns is not None:
                xp.matmul(w_group.T, grad_rows[outs], out=grad_columns[rows])
        grad_x = None
        if grad_columns is not None:
            grad_padded = col2im(grad_columns, padded.shape, (kh, kw), self.stride)
            grad_x = xp.ascontiguousarray(unpad(grad_padded, self.padding))
        return (grad_x, grad_weight) + ((grad.sum(axis=(0, 2, 3)),) if len(self.inputs) == 3 else ())

    def _group_slices(self, weight_shape):
        """For each group: its rows of the columns and its output channels."""
        out_channels, in_per_group, kh, kw = weight_shape
        rows, outs = in_per_group * kh * kw, out_channels // self.groups
        for g in range(self.groups):
            yield slice(g * rows, (g + 1) * rows), slice(g * outs, (g + 1) * outs)


def unpad(x, padding):
    ph, pw = padding
    return x[:, :, ph : x.shape[2] - ph, pw : x.shape[3] - pw]


def check_conv_input(x_shape, weight_shape, padding, groups):
    out_channels, in_per_group, kh, kw = weight_shape
    expected = f"(N, {in_per_group * groups}, H, W) with H + 2*{padding[0]} >= {kh} and W + 2*{padding[1]} >= {kw}"
    if len(x_shape) != 4 or x_shape[1] != in_per_group * groups:
        raise ShapeError(f"expected input of shape {expected}, got {tuple(x_shape)}")
    if x_shape[2] + 2 * padding[0] < kh or x_shape[3] + 2 * padding[1] < kw:
        raise ShapeError(f"input {tuple(x_shape)} is smaller than the {kh}x{kw} kernel: expected {expected}")
    if out_channels % groups:
        raise ShapeError(f"{out_channels} output channels do not split into {groups} groups")


class MaxPool2d(Function):
    """Max over each window; padding counts as -inf so it never wins.

    The forward pass takes the running maximum over the kh*kw kernel offsets and
    remembers which offset won (the first one, on ties), so the backward pass
    sends each window's gradient to exactly one input.
    """

    def __init__(self, kernel_size, stride=None, padding=0):
        self.kernel = pair(kernel_size)
        self.stride = pair(stride if stride is not None else kernel_size)
        self.padding = pair(padding)

    def forward(self, x):
        xp = backend.xp_of(x)
        (kh, kw), pd = self.kernel, self.padding
        if x.ndim != 4 or x.shape[2] + 2 * pd[0] < kh or x.shape[3] + 2 * pd[1] < kw:
            raise ShapeError(f"expected input (N, C, H, W) with H, W at least the {kh}x{kw} window, got {x.shape}")
        padded = pad(x, pd, value=-xp.inf)
        out = winner = None
        for offset, window in enumerate(self._windows(padded)):
            if out is None:
                out, winner = window.copy(), xp.zeros(window.shape, dtype=_offset_dtype(xp, kh * kw))
                continue
            xp.copyto(winner, offset, where=window > out)
            xp.maximum(out, window, out=out)
        self.padded_shape, self.dtype = padded.shape, x.dtype
        self.save_for_backward(winner)
        return out

    def backward(self, grad):
        (winner,) = self.saved_arrays
        xp = backend.xp_of(grad)
        grad_padded = xp.zeros(self.padded_shape, dtype=self.dtype)
        for offset, window in enumerate(self._windows(grad_padded)):
            window += grad * (winner == offset)
        return (unpad(grad_padded, self.padding),)

    def _windows(self, padded):
        """The kh*kw strided slices: slice (i, j) holds element (i, j) of every window."""
        (kh, kw), (sh, sw) = self.kernel, self.stride
        oh, ow = (padded.shape[2] - kh) // sh + 1, (padded.shape[3] - kw) // sw + 1
        for i in range(kh):
            for j in range(kw):
                yield padded[:, :, i : i + sh * oh : sh, j : j + sw * ow : sw]


def _offset_dtype(xp, count):
    """The smallest integer type that numbers every kernel offset: int8 for 3x3."""
    return xp.int8 if count <= 127 else xp.int32
