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


def output_size(size, kernel, stride, padding=0):
    """How many windows fit along one axis: the layer's output height or width."""
    return (size + 2 * padding - kernel) // stride + 1


def window_grid(padded_shape, kernel, stride):
    """(oh, ow): the output height and width over an already padded (N, C, H, W) input."""
    return tuple(output_size(size, k, s) for size, k, s in zip(padded_shape[2:], kernel, stride))


def pad(x, padding, value=0):
    """Zero (or ``value``) padding of the two spatial axes."""
    ph, pw = padding
    if ph == 0 and pw == 0:
        return x
    return backend.xp_of(x).pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)), constant_values=value)


def im2col(x, kernel, stride, out=None):
    """Columns (C*kh*kw, N*oh*ow) of the already padded input x (N, C, H, W).

    Row c*kh*kw + i*kw + j, column n*oh*ow + y*ow + x holds
    x[n, c, y*sh + i, x*sw + j]: the strided view costs nothing, the one copy
    makes it contiguous for the GEMM. ``out``, if given, receives that copy.
    """
    xp = backend.xp_of(x)
    n, c = x.shape[:2]
    (kh, kw), (sh, sw) = kernel, stride
    oh, ow = window_grid(x.shape, kernel, stride)
    sn, sc, sy, sx = x.strides
    view = xp.lib.stride_tricks.as_strided(
        x, shape=(c, kh, kw, n, oh, ow), strides=(sc, sy, sx, sn, sy * sh, sx * sw)
    )
    if out is None:
        return xp.ascontiguousarray(view).reshape(c * kh * kw, n * oh * ow)
    out = out.reshape(c, kh, kw, n, oh, ow)
    out[...] = view
    return out.reshape(c * kh * kw, n * oh * ow)


# Scratch arrays reused from one call to the next. The im2col columns are kh*kw
# times the size of the input (224 MB for conv2 at batch 32), and on many VMs a
# freshly allocated array that large costs more to fault into memory than the
# GEMM that fills it; a buffer kept between steps is already mapped.
_scratch = {}


def scratch(xp, name, shape, dtype):
    """An uninitialised array of ``shape`` that the next call with the same name reuses.

    Only for temporaries: never return it or save it for backward.
    """
    size = 1
    for dim in shape:
        size *= dim
    key = (xp.__name__, name, xp.dtype(dtype).str)
    buffer = _scratch.get(key)
    if buffer is None or buffer.size < size:
        buffer = _scratch[key] = None  # free the old one before allocating the larger one
        buffer = _scratch[key] = xp.empty(size, dtype=dtype)
    return buffer[:size].reshape(shape)


def col2im(columns, padded_shape, kernel, stride, out=None):
    """The adjoint of im2col: add each column entry back where it was read from.

    ``out``, if given, is a (C, N, H, W) array to accumulate in (it is zeroed first).
    """
    xp = backend.xp_of(columns)
    n, c, h, w = padded_shape
    (kh, kw), (sh, sw) = kernel, stride
    oh, ow = window_grid(padded_shape, kernel, stride)
    columns = columns.reshape(c, kh, kw, n, oh, ow)
    # Accumulate in (C, N, H, W), the columns' own order, then transpose once.
    if out is None:
        image = xp.zeros((c, n, h, w), dtype=columns.dtype)
    else:
        image = out
        image.fill(0)
    for i in range(kh):
        for j in range(kw):
            image[:, :, i : i + sh * oh : sh, j : j + sw * ow : sw] += columns[:, i, j]
    return image.transpose(1, 0, 2, 3)


# The columns of a whole batch are kh*kw times its input: conv2's at batch 128
# would take 0.9 GB. A batch whose columns exceed this budget is convolved a
# chunk of images at a time, so the columns stop growing with the batch (its
# output and gradients still do); chunks of a few dozen images keep the GEMMs
# as fast as one.
COLUMNS_BUDGET_BYTES = 256 * 2**20


class Conv2d(Function):
    """y[n, o] = sum over the input channels of o's group of w[o] * x[n] (cross-correlation) + b[o]."""

    def __init__(self, stride=1, padding=0, groups=1):
        self.stride, self.padding, self.groups = pair(stride), pair(padding), groups

    def forward(self, x, weight, *bias):
        check_conv_input(x.shape, weight.shape, self.padding, self.groups)
        xp = backend.xp_of(x)
        n, (out_channels, _, kh, kw) = x.shape[0], weight.shape
        padded = pad(x, self.padding)
        oh, ow = window_grid(padded.shape, (kh, kw), self.stride)
        out = scratch(xp, "conv_out", (out_channels, n * oh * ow), x.dtype)
        for images, positions in self._batch_chunks(padded.shape, weight.shape, x.dtype):
            columns = self._columns(padded[images], weight.shape)
            for rows, outs in self._group_slices(weight.shape):
                w_group = weight[outs].reshape(outs.stop - outs.start, -1)
                xp.matmul(w_group, columns[rows], out=out[outs, positions])
        # Keep x, not the columns: recomputing im2col in backward costs a few
        # percent of the time and saves an array kh*kw times the input's size.
        self.save_for_backward(x, weight)
        # Back to (N, C, H, W) in a new array (the scratch is reused), adding the
        # bias during that copy rather than in a pass of its own.
        channels_first = out.reshape(out_channels, n, oh, ow).transpose(1, 0, 2, 3)
        result = xp.empty(channels_first.shape, dtype=x.dtype)
        if bias:
            return xp.add(channels_first, bias[0][:, None, None], out=result)
        result[...] = channels_first
        return result

    def backward(self, grad):
        x, weight = self.saved_arrays
        xp = backend.xp_of(grad)
        out_channels = weight.shape[0]
        padded = pad(x, self.padding)
        grad_rows = scratch(xp, "conv_grad_rows", (out_channels, grad.size // out_channels), grad.dtype)
        grad_rows.reshape(out_channels, *grad.shape[:1], *grad.shape[2:])[...] = grad.transpose(1, 0, 2, 3)
        grad_weight = xp.zeros_like(weight)
        image = None
        if self.needs_input_grad[0]:  # col2im accumulates in (C, N, H, W), the columns' own order
            image = scratch(xp, "conv_image", (padded.shape[1], padded.shape[0]) + padded.shape[2:], grad.dtype)
        for images, positions in self._batch_chunks(padded.shape, weight.shape, grad.dtype):
            columns = self._columns(padded[images], weight.shape)
            self._backward_chunk(columns, grad_rows[:, positions], weight, grad_weight)
            if image is not None:  # the columns now hold their own gradient
                col2im(columns, padded[images].shape, weight.shape[2:], self.stride, out=image[:, images])
        grad_x = None
        if image is not None:
            grad_x = unpad(image.transpose(1, 0, 2, 3), self.padding).copy()  # always a copy: the scratch is reused
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

    def _columns(self, padded, weight_shape):
        """im2col of the padded input into the reused scratch buffer."""
        n, c = padded.shape[:2]
        _, _, kh, kw = weight_shape
        oh, ow = window_grid(padded.shape, (kh, kw), self.stride)
        out = scratch(backend.xp_of(padded), "conv_columns", (c * kh * kw, n * oh * ow), padded.dtype)
        return im2col(padded, (kh, kw), self.stride, out=out)

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
    sends each window's gradient to exactly one input. Overlapping windows
    (section 3.4 of the paper: 3x3, stride 2) can share a winner, which then
    receives the sum of their gradients.
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
        windows = self._windows(padded)
        out = next(windows).copy()
        winner = xp.zeros(out.shape, dtype=_offset_dtype(xp, kh * kw))
        # Two buffers reused for every offset: the window copied out of its strided
        # view once (the comparisons then read contiguous memory), and where it wins.
        window, beats = xp.empty_like(out), xp.empty_like(winner)
        for offset, strided_window in enumerate(windows, start=1):
            window[...] = strided_window
            xp.greater(window, out, out=beats)  # 1 where this offset beats the maximum so far
            # The winner is the last offset that beat the running maximum (so the
            # first of equal maxima); offsets only grow, so that is the largest
            # offset * beats. Cheaper than copyto(..., where=), which is slow in NumPy.
            beats *= offset
            xp.maximum(winner, beats, out=winner)
            xp.maximum(out, window, out=out)
        self.padded_shape, self.dtype = padded.shape, x.dtype
        self.save_for_backward(winner)
        return out

    def backward(self, grad):
        (winner,) = self.saved_arrays
        xp = backend.xp_of(grad)
        grad_padded = xp.zeros(self.padded_shape, dtype=self.dtype)
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
        (kh, kw), (sh, sw) = self.kernel, self.stride
        oh, ow = window_grid(padded.shape, self.kernel, self.stride)
        for i in range(kh):
            for j in range(kw):
                yield padded[:, :, i : i + sh * oh : sh, j : j + sw * ow : sw]


def _offset_dtype(xp, count):
    """The smallest integer type that numbers every kernel offset: int8 for 3x3."""
    return xp.int8 if count <= 127 else xp.int32
