"""Convolution by im2col + GEMM, Winograd's algorithm or the DFT, with the work buffers kept between steps.

The same numbers as the reference Conv2d (tinynet/reference/conv.py), computed
with what measured faster on a 2-core CPU: stride-1 3x3 kernels by Winograd's
F(2x2, 3x3) (winograd.py), stride-1 kernels of 5x5 and more frequency by frequency
(fourier.py), the others by im2col, with the columns kept for backward in a
recycled array, or, for a batch whose columns exceed a memory budget, convolved
in chunks through one reused buffer; the weight gradient's product transposed
for OpenBLAS; the columns overwritten by their own gradient once the weight
gradient has used them; outputs and gradients in recycled memory. On a GPU,
im2col and col2im are one CUDA kernel each (cuda/windows.py), which read and
write the unpadded input directly.
"""

import numpy as np

from .. import backend
from ..reference import conv as reference
from ..windows import (
    check_conv_input,
    group_slices,
    kernel_offsets,
    pad,
    padded_size,
    receptive_fields,
    unpad,
    window_grid,
)
from . import fourier, winograd, workspace
from .cuda import windows as cuda_windows
from .workspace import scratch

# The columns of a whole batch are kh*kw times its input: conv2's at batch 128
# would take 0.9 GB. A batch whose columns exceed this budget is convolved a
# chunk of images at a time, so the columns stop growing with the batch (its
# output and gradients still do); chunks of a few dozen images keep the GEMMs
# as fast as one. Columns within the budget are kept for backward, which spares
# backward an im2col pass: on the CPU, where the other layers take Winograd or
# the DFT, that is conv1's columns (140 MB at batch 32, in a recycled block).
COLUMNS_BUDGET_BYTES = 256 * 2**20


def im2col_into(x, kernel, stride, padding, out):
    """reference.im2col of x padded, written into ``out`` (a reused buffer) instead of a new array."""
    if backend.xp_of(x) is not np:
        return cuda_windows.im2col(x, kernel, stride, padding, out)
    fields = receptive_fields(pad(x, padding), kernel, stride)
    out.reshape(fields.shape)[...] = fields
    return out


def col2im_into(columns, padded_shape, kernel, stride, image):
    """reference.col2im, accumulated in ``image`` of shape (C, N, H, W), the columns' own
    order, so that each kernel offset adds one strided slice without a transpose."""
    n, c, h, w = padded_shape
    oh, ow = window_grid(padded_shape, kernel, stride)
    columns = columns.reshape(c, *kernel, n, oh, ow)
    image.fill(0)
    for i, j, rows, cols in kernel_offsets(kernel, stride, (oh, ow)):
        image[:, :, rows, cols] += columns[:, i, j]


class InputGradient:
    """Where backward adds the columns' gradients back, chunk by chunk.

    On the CPU, a padded (C, N, H, W) buffer: col2im's own order, where each kernel
    offset adds one strided slice without a transpose; unpadded and transposed
    into the gradient at the end. On a GPU, the (N, C, H, W) gradient itself,
    which one kernel per chunk writes, the padding left out.
    """

    def __init__(self, x_shape, dtype, kernel, stride, padding, xp):
        self.x_shape, self.kernel, self.stride, self.padding, self.xp = x_shape, kernel, stride, padding, xp
        n, c, h, w = padded_size(x_shape, padding)
        if xp is np:
            self.image = scratch(xp, "conv_image", (c, n, h, w), dtype)
        else:
            self.image = workspace.empty(xp, x_shape, dtype)

    def add(self, columns, images):
        """Add back the gradient of the columns of ``images`` (a slice of the batch)."""
        if self.xp is not np:
            cuda_windows.col2im(columns, self.kernel, self.stride, self.padding, self.image[images])
            return
        n, c, h, w = padded_size(self.x_shape, self.padding)
        chunk_shape = (images.stop - images.start, c, h, w)
        col2im_into(columns, chunk_shape, self.kernel, self.stride, self.image[:, images])

    def result(self):
        if self.xp is not np:
            return self.image
        grad_x = workspace.empty(self.xp, self.x_shape, self.image.dtype)
        grad_x[...] = unpad(self.image.transpose(1, 0, 2, 3), self.padding)
        return grad_x


class Conv2d(reference.Conv2d):
    def forward(self, x, weight, *bias):
        check_conv_input(x.shape, weight.shape, self.padding, self.groups)
        # On the CPU, a stride-1 3x3 kernel (conv3-5) takes Winograd's F(2x2, 3x3), with 4/9 of
        # im2col's multiplications, and a stride-1 kernel of 5x5 or more (conv2) the DFT
        # (fourier.py), with a tenth of them; every other convolution takes im2col. A seed
        # training step at batch 32 took 728 ms so, 888 with im2col for conv3-5 and 1004 with
        # im2col for conv2 (bench/conv_algorithms.py, OpenBLAS's AVX2 kernels).
        self.algorithm = next((a for a in (winograd, fourier) if a.suits(x, weight, self.stride, self.padding)), None)
        if self.algorithm is not None:
            keep = any(self.needs_input_grad)
            out, kept = self.algorithm.forward(x, weight, self.padding, self.groups, keep=keep)
            self.save_for_backward(x, weight, kept)
            out = out.reshape(out.shape[0], -1)
        else:
            out = self._im2col_forward(x, weight)
        if bias:
            out += bias[0][:, None]
        # (N, C, H, W) as a transposed view of the (C, N*H*W) output: every consumer
        # reads strided arrays, and a copy into C order would cost a pass over the
        # output (measured: 15 ms of a forward pass at batch 32).
        n, (oh, ow) = x.shape[0], self._output_size(x.shape, weight.shape)
        return out.reshape(weight.shape[0], n, oh, ow).transpose(1, 0, 2, 3)

    def backward(self, grad):
        x, weight, kept = self.saved_arrays
        # What forward kept (columns, tiles or spectra) may be overwritten by gradients
        # below, and is dropped either way: a second backward through this graph
        # (retain_graph=True) computes it again from x.
        self.saved_arrays = (x, weight, None)
        if self.algorithm is not None:
            if kept is None:
                kept = self.algorithm.transformed_operands(x, weight, self.padding)
            grad_x, grad_weight = self.algorithm.backward(grad, kept, x.shape, weight.shape, self.padding,
                                                          self.groups, self.needs_input_grad[0])
        else:
            grad_x, grad_weight = self._im2col_backward(grad, x, weight, kept)
        grad_bias = (grad.sum(axis=(0, 2, 3)),) if len(self.inputs) == 3 else ()
        return (grad_x, grad_weight) + grad_bias

    def _output_size(self, x_shape, weight_shape):
        return window_grid(padded_size(x_shape, self.padding), weight_shape[2:], self.stride)

    def _im2col_forward(self, x, weight):
        """The output as (C, N*H*W), computed chunk by chunk; the columns kept for backward."""
        xp = backend.xp_of(x)
        n, out_channels = x.shape[0], weight.shape[0]
        padded_shape = padded_size(x.shape, self.padding)
        oh, ow = self._output_size(x.shape, weight.shape)
        chunks = list(self._batch_chunks(padded_shape, weight.shape, x.dtype))
        # Keep the columns for backward when they fit the budget in one piece:
        # recomputing them costs an im2col pass (12 ms for conv1 at batch 32). Not
        # on a GPU, where that pass takes a fraction of a millisecond and memory is
        # what runs short (conv3's columns are 199 MB at batch 128).
        keep = len(chunks) == 1 and any(self.needs_input_grad) and xp is np
        out = workspace.empty(xp, (out_channels, n * oh * ow), x.dtype)
        for images, positions in chunks:
            columns = self._columns(x[images], weight.shape, keep)
            for rows, outs in self._group_slices(weight.shape):
                w_group = weight[outs].reshape(outs.stop - outs.start, -1)
                xp.matmul(w_group, columns[rows], out=out[outs, positions])
        self.save_for_backward(x, weight, columns if keep else None)
        return out

    def _im2col_backward(self, grad, x, weight, kept_columns):
        xp = backend.xp_of(grad)
        out_channels = weight.shape[0]
        n = x.shape[0]
        grad_rows = scratch(xp, "conv_grad_rows", (out_channels, grad.size // out_channels), grad.dtype)
        grad_rows.reshape(out_channels, *grad.shape[:1], *grad.shape[2:])[...] = grad.transpose(1, 0, 2, 3)
        grad_weight = xp.zeros_like(weight)
        grad_x = None
        if self.needs_input_grad[0]:
            grad_x = InputGradient(x.shape, grad.dtype, weight.shape[2:], self.stride, self.padding, xp)
        chunks = self._batch_chunks(padded_size(x.shape, self.padding), weight.shape, x.dtype)
        if kept_columns is not None:  # kept columns are the whole batch's
            chunks = [(slice(0, n), slice(0, kept_columns.shape[1]))]
        for images, positions in chunks:
            columns = kept_columns if kept_columns is not None else self._columns(x[images], weight.shape)
            self._backward_chunk(columns, grad_rows[:, positions], weight, grad_weight)
            if grad_x is not None:  # the columns now hold their own gradient
                grad_x.add(columns, images)
        return (grad_x.result() if grad_x is not None else None), grad_weight

    def _backward_chunk(self, columns, grad_rows, weight, grad_weight):
        """Add this chunk's share to the weight gradient; then, if the input needs a
        gradient, overwrite the columns with theirs (each group's columns are no
        longer needed once its weight gradient is computed)."""
        xp = backend.xp_of(columns)
        for rows, outs in self._group_slices(weight.shape):
            w_group = weight[outs].reshape(outs.stop - outs.start, -1)
            # columns @ grad^T, then transposed: the same product as grad @ columns^T,
            # but OpenBLAS runs the latter up to 20x slower when the inner dimension
            # is huge and the output small (conv1: 96 x 363 from a sum over 96,800).
            grad_weight[outs] += (columns[rows] @ grad_rows[outs].T).T.reshape(weight[outs].shape)
            if self.needs_input_grad[0]:
                xp.matmul(w_group.T, grad_rows[outs], out=columns[rows])

    def _batch_chunks(self, padded_shape, weight_shape, dtype):
        """(images, positions) slices: a chunk of the batch whose columns fit
        COLUMNS_BUDGET_BYTES, and that chunk's columns among the whole batch's."""
        n, c = padded_shape[:2]
        _, _, kh, kw = weight_shape
        oh, ow = window_grid(padded_shape, (kh, kw), self.stride)
        per_image = c * kh * kw * oh * ow * dtype.itemsize
        step = max(1, COLUMNS_BUDGET_BYTES // per_image)
        for start in range(0, n, step):
            stop = min(n, start + step)
            yield slice(start, stop), slice(start * oh * ow, stop * oh * ow)

    def _columns(self, x, weight_shape, keep=False):
        """im2col of x padded: into a recycled array to keep for backward, or into the
        scratch buffer that every convolution reuses."""
        xp = backend.xp_of(x)
        n, c = x.shape[:2]
        _, _, kh, kw = weight_shape
        oh, ow = window_grid(padded_size(x.shape, self.padding), (kh, kw), self.stride)
        shape = (c * kh * kw, n * oh * ow)
        out = workspace.empty(xp, shape, x.dtype) if keep else scratch(xp, "conv_columns", shape, x.dtype)
        return im2col_into(x, (kh, kw), self.stride, self.padding, out)

    def _group_slices(self, weight_shape):
        """For each group: its rows of the columns and its output channels."""
        out_channels, in_per_group, kh, kw = weight_shape
        return group_slices(in_per_group * kh * kw * self.groups, out_channels, self.groups)
