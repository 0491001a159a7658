"""Convolution by im2col + GEMM with the work buffers kept between steps.

The same numbers as the reference Conv2d (tinynet/reference/conv.py), computed
with what measured faster on a 2-core CPU: the columns kept for backward in a
recycled array, or, for a batch whose columns exceed a memory budget, convolved
in chunks through one reused buffer; the weight gradient's product transposed
for OpenBLAS; the columns overwritten by their own gradient once the weight
gradient has used them; outputs and gradients in recycled memory.
"""

from .. import backend
from ..reference import conv as reference
from ..windows import check_conv_input, kernel_offsets, pad, padded_size, receptive_fields, unpad, window_grid
from . import workspace
from .workspace import scratch

# The columns of a whole batch are kh*kw times its input: conv2's at batch 128
# would take 0.9 GB. A batch whose columns exceed this budget is convolved a
# chunk of images at a time, so the columns stop growing with the batch (its
# output and gradients still do); chunks of a few dozen images keep the GEMMs
# as fast as one. Columns within the budget are kept for backward: at batch 32,
# all five layers' (564 MB, in recycled blocks), which measured 34 ms a step
# faster than splitting conv2's and 61 MB more at the peak.
COLUMNS_BUDGET_BYTES = 256 * 2**20


def im2col_into(padded, kernel, stride, out):
    """reference.im2col, written into ``out`` (a reused buffer) instead of a new array."""
    fields = receptive_fields(padded, kernel, stride)
    c, kh, kw, n, oh, ow = fields.shape
    out.reshape(fields.shape)[...] = fields
    return out.reshape(c * kh * kw, n * oh * ow)


def col2im_into(columns, padded_shape, kernel, stride, image):
    """reference.col2im, accumulated in ``image`` of shape (C, N, H, W), the columns' own
    order, so that each kernel offset adds one strided slice without a transpose."""
    n, c, h, w = padded_shape
    oh, ow = window_grid(padded_shape, kernel, stride)
    columns = columns.reshape(c, *kernel, n, oh, ow)
    image.fill(0)
    for i, j, rows, cols in kernel_offsets(kernel, stride, (oh, ow)):
        image[:, :, rows, cols] += columns[:, i, j]


class Conv2d(reference.Conv2d):
    def forward(self, x, weight, *bias):
        check_conv_input(x.shape, weight.shape, self.padding, self.groups)
        xp = backend.xp_of(x)
        n, (out_channels, _, kh, kw) = x.shape[0], weight.shape
        padded = pad(x, self.padding)
        oh, ow = window_grid(padded.shape, (kh, kw), self.stride)
        chunks = list(self._batch_chunks(padded.shape, weight.shape, x.dtype))
        # Keep the columns for backward when they fit the budget in one piece:
        # recomputing them costs an im2col pass (34 ms for conv2 at batch 32).
        keep = len(chunks) == 1 and any(self.needs_input_grad)
        out = workspace.empty(xp, (out_channels, n * oh * ow), x.dtype)
        for images, positions in chunks:
            columns = self._columns(padded[images], weight.shape, keep)
            for rows, outs in self._group_slices(weight.shape):
                w_group = weight[outs].reshape(outs.stop - outs.start, -1)
                xp.matmul(w_group, columns[rows], out=out[outs, positions])
        self.save_for_backward(x, weight, columns if keep else None)
        if bias:
            out += bias[0][:, None]
        # (N, C, H, W) as a transposed view of the GEMM's (C, N*H*W) output: every
        # consumer reads strided arrays, and a copy into C order would cost a pass
        # over the output (measured: 15 ms of a forward pass at batch 32).
        return out.reshape(out_channels, n, oh, ow).transpose(1, 0, 2, 3)

    def backward(self, grad):
        x, weight, kept_columns = self.saved_arrays
        # The kept columns are overwritten by their gradient below: a second
        # backward through this graph (retain_graph=True) recomputes them from x.
        self.saved_arrays = (x, weight, None)
        xp = backend.xp_of(grad)
        out_channels = weight.shape[0]
        n, c, h, w = padded_shape = padded_size(x.shape, self.padding)
        padded = pad(x, self.padding) if kept_columns is None else None
        grad_rows = scratch(xp, "conv_grad_rows", (out_channels, grad.size // out_channels), grad.dtype)
        grad_rows.reshape(out_channels, *grad.shape[:1], *grad.shape[2:])[...] = grad.transpose(1, 0, 2, 3)
        grad_weight = xp.zeros_like(weight)
        image = None
        if self.needs_input_grad[0]:  # col2im accumulates in (C, N, H, W), the columns' own order
            image = scratch(xp, "conv_image", (c, n, h, w), grad.dtype)
        chunks = self._batch_chunks(padded_shape, weight.shape, x.dtype)
        if kept_columns is not None:  # kept columns are the whole batch's
            chunks = [(slice(0, n), slice(0, kept_columns.shape[1]))]
        for images, positions in chunks:
            columns = kept_columns if kept_columns is not None else self._columns(padded[images], weight.shape)
            self._backward_chunk(columns, grad_rows[:, positions], weight, grad_weight)
            if image is not None:  # the columns now hold their own gradient
                chunk_shape = (images.stop - images.start, c, h, w)
                col2im_into(columns, chunk_shape, weight.shape[2:], self.stride, image[:, images])
        grad_x = None
        if image is not None:
            grad_x = workspace.empty(xp, x.shape, grad.dtype)
            grad_x[...] = unpad(image.transpose(1, 0, 2, 3), self.padding)
        return (grad_x, grad_weight) + ((grad.sum(axis=(0, 2, 3)),) if len(self.inputs) == 3 else ())

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

    def _columns(self, padded, weight_shape, keep=False):
        """im2col of the padded input: into a recycled array to keep for backward,
        or into the scratch buffer that every convolution reuses."""
        xp = backend.xp_of(padded)
        n, c = padded.shape[:2]
        _, _, kh, kw = weight_shape
        oh, ow = window_grid(padded.shape, (kh, kw), self.stride)
        shape = (c * kh * kw, n * oh * ow)
        out = workspace.empty(xp, shape, padded.dtype) if keep else scratch(xp, "conv_columns", shape, padded.dtype)
        return im2col_into(padded, (kh, kw), self.stride, out)

    def _group_slices(self, weight_shape):
        """For each group: its rows of the columns and its output channels."""
        out_channels, in_per_group, kh, kw = weight_shape
        rows, outs = in_per_group * kh * kw, out_channels // self.groups
        for g in range(self.groups):
            yield slice(g * rows, (g + 1) * rows), slice(g * outs, (g + 1) * outs)
