"""Sliding-window arithmetic shared by both paths through convolution and pooling.

A window (receptive field) of a kh x kw kernel moves over the padded input in
steps of the stride. Everything both the reference path (tinynet/reference/)
and the fast path (tinynet/fast/) need to know about those windows lives here:
how many fit, the padding, the strided view of all of them at once, the slices
one kernel offset reads, and the shape checks with their error messages.
"""

from . import backend
from .tensor import ShapeError


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


def padded_size(shape, padding):
    """The shape of pad(x, padding) for x of ``shape`` (N, C, H, W), without padding anything."""
    n, c, h, w = shape
    return n, c, h + 2 * padding[0], w + 2 * padding[1]


def unpad(x, padding):
    """The inverse of pad: a view of x without its border."""
    ph, pw = padding
    return x[:, :, ph : x.shape[2] - ph, pw : x.shape[3] - pw]


def receptive_fields(padded, kernel, stride):
    """Every window of the padded input at once, as a view of shape (C, kh, kw, N, oh, ow).

    Element [c, i, j, n, y, x] is padded[n, c, y*sh + i, x*sw + j]: channel c,
    kernel offset (i, j) of the window at output position (y, x) of image n. No
    data moves: the view only steps through the input's memory differently.
    """
    xp = backend.xp_of(padded)
    n, c = padded.shape[:2]
    (kh, kw), (sh, sw) = kernel, stride
    oh, ow = window_grid(padded.shape, kernel, stride)
    sn, sc, sy, sx = padded.strides
    return xp.lib.stride_tricks.as_strided(
        padded, shape=(c, kh, kw, n, oh, ow), strides=(sc, sy, sx, sn, sy * sh, sx * sw)
    )


def kernel_offsets(kernel, stride, grid):
    """For each kernel offset (i, j), the spatial slices of the padded input it reads:
    ``padded[..., rows, cols]`` holds element (i, j) of every window, in output order."""
    (kh, kw), (sh, sw), (oh, ow) = kernel, stride, grid
    for i in range(kh):
        for j in range(kw):
            yield i, j, slice(i, i + sh * oh, sh), slice(j, j + sw * ow, sw)


def group_slices(in_size, out_size, groups):
    """For each of ``groups`` groups of a convolution, its slice of the ``in_size`` inputs
    (channels, or rows of im2col's columns) and of the ``out_size`` output channels."""
    ins, outs = in_size // groups, out_size // groups
    for g in range(groups):
        yield slice(g * ins, (g + 1) * ins), slice(g * outs, (g + 1) * outs)


def check_conv_input(x_shape, weight_shape, padding, groups):
    out_channels, in_per_group, kh, kw = weight_shape
    expected = f"(N, {in_per_group * groups}, H, W) with H + 2*{padding[0]} >= {kh} and W + 2*{padding[1]} >= {kw}"
    if len(x_shape) != 4 or x_shape[1] != in_per_group * groups:
        raise ShapeError(f"expected input of shape {expected}, got {tuple(x_shape)}")
    if x_shape[2] + 2 * padding[0] < kh or x_shape[3] + 2 * padding[1] < kw:
        raise ShapeError(f"input {tuple(x_shape)} is smaller than the {kh}x{kw} kernel: expected {expected}")
    if out_channels % groups:
        raise ShapeError(f"{out_channels} output channels do not split into {groups} groups")


def check_pool_input(x_shape, kernel, padding):
    (kh, kw), (ph, pw) = kernel, padding
    if len(x_shape) != 4 or x_shape[2] + 2 * ph < kh or x_shape[3] + 2 * pw < kw:
        raise ShapeError(
            f"expected input (N, C, H, W) with H + 2*{ph} >= {kh} and W + 2*{pw} >= {kw} "
            f"(the {kh}x{kw} window must fit), got {tuple(x_shape)}"
        )
