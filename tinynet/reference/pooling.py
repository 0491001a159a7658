"""Max pooling by window argmax: the textbook version.

Each window's maximum is its output; backward sends each window's gradient to
the element that won it. Overlapping windows (3x3, stride 2: section 3.4 of
the paper) may share a winner, which then receives the sum of their gradients:
exactly what col2im does with columns that hold one gradient per window.
"""

from .. import backend
from ..tensor import Function
from ..windows import check_pool_input, pad, pair, receptive_fields, unpad
from .conv import col2im


class MaxPool2d(Function):
    """Max over each kh x kw window; padding counts as -inf so it never wins.
    Of equal maxima the first (in row-major order within the window) wins."""

    def __init__(self, kernel_size, stride=None, padding=0):
        self.kernel = pair(kernel_size)
        self.stride = pair(stride if stride is not None else kernel_size)
        self.padding = pair(padding)

    def forward(self, x):
        check_pool_input(x.shape, self.kernel, self.padding)
        padded = pad(x, self.padding, value=-backend.xp_of(x).inf)
        fields = receptive_fields(padded, self.kernel, self.stride)  # (C, kh, kw, N, oh, ow)
        c, kh, kw, n, oh, ow = fields.shape
        fields = fields.reshape(c, kh * kw, n, oh, ow)  # a copy: overlapping windows share elements
        winner = fields.argmax(axis=1)  # (C, N, oh, ow): which kernel offset holds the maximum
        self.padded_shape = padded.shape
        self.save_for_backward(winner)
        return fields.max(axis=1).transpose(1, 0, 2, 3).copy()

    def backward(self, grad):
        (winner,) = self.saved_arrays
        _, n, oh, ow = winner.shape
        offsets = backend.xp_of(grad).arange(self.kernel[0] * self.kernel[1])
        won = winner[:, None] == offsets[:, None, None, None]  # (C, kh*kw, N, oh, ow): one True per window
        grad_columns = (won * grad.transpose(1, 0, 2, 3)[:, None]).reshape(-1, n * oh * ow)
        grad_padded = col2im(grad_columns, self.padded_shape, self.kernel, self.stride)
        return (unpad(grad_padded, self.padding),)
