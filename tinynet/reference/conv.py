"""Convolution by im2col and one matrix product per group: the textbook version.

im2col copies every receptive field into a column, so a convolution becomes a
matrix product, weights (out, in*kh*kw) @ columns (in*kh*kw, N*oh*ow), one per
group of channels. col2im, its adjoint, adds column gradients back where they
were read from, looping over the kh*kw kernel offsets only (each a strided
slice of the whole batch). This is the code to read and step through; the fast
path (tinynet/fast/conv.py) computes the same numbers with more machinery.
"""

from .. import backend
from ..tensor import Function
from ..windows import check_conv_input, kernel_offsets, pad, pair, receptive_fields, unpad, window_grid


def im2col(padded, kernel, stride):
    """Columns (C*kh*kw, N*oh*ow) of the padded input (N, C, H, W).

    Row c*kh*kw + i*kw + j, column n*oh*ow + y*ow + x holds padded[n, c, y*sh + i, x*sw + j].
    """
    fields = receptive_fields(padded, kernel, stride)  # (C, kh, kw, N, oh, ow), a view
    c, kh, kw, n, oh, ow = fields.shape
    return backend.xp_of(padded).ascontiguousarray(fields).reshape(c * kh * kw, n * oh * ow)


def col2im(columns, padded_shape, kernel, stride):
    """The adjoint of im2col: add each column entry back to the input element it was read from.

    Windows overlap when the stride is smaller than the kernel, so an element
    read by several windows receives the sum of their gradients.
    """
    xp = backend.xp_of(columns)
    n, c, h, w = padded_shape
    oh, ow = window_grid(padded_shape, kernel, stride)
    columns = columns.reshape(c, *kernel, n, oh, ow)
    image = xp.zeros((n, c, h, w), dtype=columns.dtype)
    for i, j, rows, cols in kernel_offsets(kernel, stride, (oh, ow)):
        image[:, :, rows, cols] += columns[:, i, j].transpose(1, 0, 2, 3)
    return image


class Conv2d(Function):
    """y[n, o] = b[o] + sum over the input channels of o's group of w[o] * x[n] (cross-correlation).

    With groups=g the channels split into g independent convolutions (the
    paper's two GPUs, section 3.2): a batch of g matrix products.
    """

    def __init__(self, stride=1, padding=0, groups=1):
        self.stride, self.padding, self.groups = pair(stride), pair(padding), groups

    def forward(self, x, weight, *bias):
        check_conv_input(x.shape, weight.shape, self.padding, self.groups)
        padded = pad(x, self.padding)
        columns = im2col(padded, weight.shape[2:], self.stride)
        # (groups, out/groups, rows) @ (groups, rows, N*oh*ow): one product per group
        out = self._by_group(weight) @ columns.reshape(self.groups, -1, columns.shape[1])
        oh, ow = window_grid(padded.shape, weight.shape[2:], self.stride)
        out = out.reshape(weight.shape[0], x.shape[0], oh, ow).transpose(1, 0, 2, 3)
        if bias:
            out = out + bias[0][:, None, None]
        self.padded_shape = padded.shape
        self.save_for_backward(columns, weight)
        return backend.xp_of(x).ascontiguousarray(out)

    def backward(self, grad):
        columns, weight = self.saved_arrays
        g = self.groups
        grad_rows = grad.transpose(1, 0, 2, 3).reshape(g, weight.shape[0] // g, -1)  # (groups, out/g, N*oh*ow)
        column_groups = columns.reshape(g, -1, columns.shape[1])
        grad_weight = (grad_rows @ column_groups.transpose(0, 2, 1)).reshape(weight.shape)
        grad_columns = (self._by_group(weight).transpose(0, 2, 1) @ grad_rows).reshape(columns.shape)
        grad_x = unpad(col2im(grad_columns, self.padded_shape, weight.shape[2:], self.stride), self.padding)
        grad_bias = (grad.sum(axis=(0, 2, 3)),) if len(self.inputs) == 3 else ()
        return (grad_x, grad_weight) + grad_bias

    def _by_group(self, weight):
        """The weights as (groups, out/groups, in/groups*kh*kw): each group's matrix."""
        return weight.reshape(self.groups, weight.shape[0] // self.groups, -1)
