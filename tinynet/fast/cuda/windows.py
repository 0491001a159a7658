"""im2col and col2im in one launch each, with the padding read as zeros in place.

The array versions (tinynet/reference/conv.py) pad the input into a new array,
then copy one strided view (im2col) or add kh*kw slices one launch at a time
(col2im). Here one thread computes one output element: im2col reads the input
element its column entry comes from (0 in the padding); col2im gathers, for one
input element, the column entries of every window that read it, so no two
threads write the same element and the sum needs no atomics.

Each thread finds its place by dividing its index by the layer's sizes, several
times. Those sizes are written into the kernel's source as constants, so the
compiler turns each division into a multiplication and a shift: one kernel is
compiled per layer shape and chunk size, and CuPy keeps it on disk. The index
arithmetic is 32-bit (see compile.py): convolution chunks its batch to keep the
columns small.

Layouts, as in the reference: the input is (N, C, H, W) in C order; the columns
are (C*kh*kw, N*oh*ow), row (c, i, j) and column (n, y, x) holding the input
element at row y*sh - ph + i, column x*sw - pw + j of channel c of image n.
"""

import functools

from ... import backend
from ...windows import output_size
from .compile import check_32_bit, elementwise

SIZES = ("channels", "height", "width", "kh", "kw", "sh", "sw", "ph", "pw", "oh", "ow", "images")

_IM2COL = """
    const unsigned int index = i, positions = images * oh * ow;
    const unsigned int row = index / positions, position = index % positions;
    const int c = row / (kh * kw), ki = row / kw % kh, kj = row % kw;
    const int n = position / (oh * ow), y = position / ow % oh, x_out = position % ow;
    const int in_y = y * sh - ph + ki, in_x = x_out * sw - pw + kj;
    const bool inside = 0 <= in_y && in_y < height && 0 <= in_x && in_x < width;
    column = inside ? x[((long long)(n * channels + c) * height + in_y) * width + in_x] : (T)0;
"""

_COL2IM = """
    const unsigned int index = i;
    const int in_x = index % width, in_y = index / width % height, c = index / (width * height) % channels;
    const int n = index / (width * height * channels);
    const long long positions = (long long)images * oh * ow;
    T sum = 0;
    for (int ki = 0; ki < kh; ++ki) {
        const int from_top = in_y + ph - ki;  // = y * sh for the window y that reads row in_y at offset ki
        if (from_top < 0 || from_top % sh || from_top / sh >= oh) continue;
        for (int kj = 0; kj < kw; ++kj) {
            const int from_left = in_x + pw - kj;
            if (from_left < 0 || from_left % sw || from_left / sw >= ow) continue;
            const long long row = (c * kh + ki) * kw + kj;
            sum += columns[row * positions + (n * oh + from_top / sh) * ow + from_left / sw];
        }
    }
    grad_x = sum;
"""


@functools.cache
def _im2col(sizes):
    return elementwise("raw T x", "T column", _with_sizes(_IM2COL, sizes), "tinynet_im2col")


@functools.cache
def _col2im(sizes):
    return elementwise("raw T columns", "T grad_x", _with_sizes(_COL2IM, sizes), "tinynet_col2im")


def _with_sizes(operation, sizes):
    """The operation, after the layer's sizes declared as constants: 'const int channels = 96, ...;'."""
    return f"const int {', '.join(f'{name} = {size}' for name, size in zip(SIZES, sizes, strict=True))};" + operation


def _sizes(x_shape, kernel, stride, padding):
    n, c, h, w = x_shape
    oh, ow = (output_size(size, k, s, p) for size, k, s, p in zip((h, w), kernel, stride, padding))
    return (c, h, w, *kernel, *stride, *padding, oh, ow, n)


def im2col(x, kernel, stride, padding, out):
    """Write the columns of ``x`` (N, C, H, W) into ``out`` (C*kh*kw, N*oh*ow); returns ``out``."""
    x = backend.cupy.ascontiguousarray(x)
    return _im2col(_sizes(x.shape, kernel, stride, padding))(x, check_32_bit(out))


def col2im(columns, kernel, stride, padding, grad_x):
    """Write into ``grad_x`` (N, C, H, W, C order) the sum of the column entries read from
    each of its elements: the gradient of im2col."""
    return _col2im(_sizes(grad_x.shape, kernel, stride, padding))(check_32_bit(columns), check_32_bit(grad_x))
