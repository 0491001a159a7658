"""Max pooling by a running maximum over the kernel offsets, and one scatter-add back,
with outputs and gradients in recycled memory (see workspace.py); on a GPU, one
CUDA kernel each way (cuda/pooling.py)."""

import numpy as np

from .. import backend
from ..reference import pooling as reference
from ..windows import check_pool_input, kernel_offsets, pad, unpad, window_grid
from . import workspace
from .cuda import pooling as cuda_pooling


class MaxPool2d(reference.MaxPool2d):
    """The reference MaxPool2d's numbers (first maximum of each window wins), without
    copying every window out: the forward pass keeps a running maximum over the
    kh*kw kernel offsets and remembers which offset won; the backward pass adds
    each window's gradient to its winner in one scatter-add.
    """

    def forward(self, x):
        xp = backend.xp_of(x)
        check_pool_input(x.shape, self.kernel, self.padding)
        if xp is not np:
            out, winner = cuda_pooling.max_pool(x, self.kernel, self.stride, self.padding)
            self.x_shape = x.shape
            self.save_for_backward(winner)
            return out
        padded = pad(x, self.padding, value=-xp.inf)
        windows = self._windows(padded)
        first = next(windows)
        out = workspace.empty(xp, first.shape, x.dtype)
        out[...] = first
        if not any(self.needs_input_grad):  # inference: the maximum alone, a third of the passes
            for strided_window in windows:
                xp.maximum(out, strided_window, out=out)
            return out
        winner = workspace.zeros(xp, out.shape, _offset_dtype(xp, self.kernel[0] * self.kernel[1]))
        # Two buffers reused for every offset: the window copied out of its strided
        # view once (the comparisons then read contiguous memory), and where it wins.
        window = workspace.scratch(xp, "pool_window", out.shape, out.dtype)
        beats = workspace.scratch(xp, "pool_beats", winner.shape, winner.dtype)
        for offset, strided_window in enumerate(windows, start=1):
            window[...] = strided_window
            xp.greater(window, out, out=beats)  # 1 where this offset beats the maximum so far
            # The winner is the last offset that beat the running maximum (so the
            # first of equal maxima); offsets only grow, so that is the largest
            # offset * beats. Cheaper than copyto(..., where=), which is slow in NumPy.
            beats *= offset
            xp.maximum(winner, beats, out=winner)
            xp.maximum(out, window, out=out)
        self.padded_shape = padded.shape
        self.save_for_backward(winner)
        return out

    def backward(self, grad):
        (winner,) = self.saved_arrays
        xp = backend.xp_of(grad)
        if xp is not np:  # winner holds positions in the input, not kernel offsets
            return (cuda_pooling.max_pool_backward(grad, winner, self.x_shape, self.kernel, self.stride, self.padding),)
        grad_padded = workspace.zeros(xp, self.padded_shape, grad.dtype)
        # One scatter-add over all windows. add.at adds every contribution to an
        # input that wins two windows, where grad_padded.flat[index] += grad would
        # keep only one; it is also 3-4x faster than a masked pass per offset.
        # (On a GPU the adds are atomic, so a shared winner's sum may differ in
        # its last bit from run to run.)
        xp.add.at(grad_padded.reshape(-1), self._winner_index(winner), grad.reshape(-1))
        return (unpad(grad_padded, self.padding),)

    def _winner_index(self, winner):
        """The flat position in the padded input of each window's winning element."""
        xp = backend.xp_of(winner)
        n, c, h, w = self.padded_shape
        (kh, kw), (sh, sw) = self.kernel, self.stride
        oh, ow = winner.shape[2:]
        # Flat index of each window's top-left corner: image n*c, row y*sh, column x*sw.
        window_start = (xp.arange(n * c)[:, None, None] * h + xp.arange(oh)[:, None] * sh) * w + xp.arange(ow) * sw
        # Kernel offset i*kw + j lies i rows and j columns into its window.
        offset_step = (xp.arange(kh)[:, None] * w + xp.arange(kw)).reshape(-1)
        return (window_start + offset_step[winner.reshape(n * c, oh, ow)]).reshape(-1)

    def _windows(self, padded):
        """The kh*kw strided slices: slice (i, j) holds element (i, j) of every window."""
        grid = window_grid(padded.shape, self.kernel, self.stride)
        for _, _, rows, cols in kernel_offsets(self.kernel, self.stride, grid):
            yield padded[:, :, rows, cols]


def _offset_dtype(xp, count):
    """The smallest integer type that numbers every kernel offset: int8 for 3x3."""
    return xp.int8 if count <= 127 else xp.int32
