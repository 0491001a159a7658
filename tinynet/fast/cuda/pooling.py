"""Max pooling in one launch each way, through the index of each window's winner.

Forward: one thread per output element scans its window in row-major order and
keeps the first maximum (as the reference's argmax does) and where it is: its
position y*W + x in the input plane. Padding is skipped, which is what -inf
padding amounts to. Backward: one thread per input element adds the gradients of
the windows it won. It visits only the windows that contain it (at most
ceil(kh/sh) * ceil(kw/sw)), and no two threads write the same element, so there
are no atomic adds and the sums are the same on every run.
"""

from ... import backend
from ...windows import output_size
from .compile import check_32_bit, elementwise

_GEOMETRY = "int32 height, int32 width, int32 kh, int32 kw, int32 sh, int32 sw, int32 ph, int32 pw, int32 oh, int32 ow"

_forward = elementwise(
    "raw T x, " + _GEOMETRY, "T out, int32 winner",
    """
    const unsigned int index = i;
    const int x_out = index % ow, y_out = index / ow % oh;
    const long long plane = (long long)(index / (oh * ow)) * height * width;  // where image n, channel c starts
    int best = -1;
    T best_value = 0;
    for (int ki = 0; ki < kh; ++ki) {
        const int y = y_out * sh - ph + ki;
        if (y < 0 || y >= height) continue;
        for (int kj = 0; kj < kw; ++kj) {
            const int x_in = x_out * sw - pw + kj;
            if (x_in < 0 || x_in >= width) continue;
            const T value = x[plane + y * width + x_in];
            if (best < 0 || value > best_value) {  // strictly greater: the first maximum wins
                best = y * width + x_in;
                best_value = value;
            }
        }
    }
    out = best_value;
    winner = best;
    """,
    "tinynet_max_pool_forward")

_backward = elementwise(
    "raw T grad, raw int32 winner, " + _GEOMETRY, "T grad_x",
    """
    const unsigned int index = i;
    const int x_in = index % width, y_in = index / width % height;
    const long long windows = (long long)(index / (height * width)) * oh * ow;  // image n, channel c's first window
    // Window y covers padded rows y*sh .. y*sh + kh - 1: those that hold row y_in + ph.
    const int top = y_in + ph < kh ? 0 : (y_in + ph - kh) / sh + 1, bottom = min((y_in + ph) / sh, oh - 1);
    const int left = x_in + pw < kw ? 0 : (x_in + pw - kw) / sw + 1, right = min((x_in + pw) / sw, ow - 1);
    const int here = y_in * width + x_in;
    T sum = 0;
    for (int y = top; y <= bottom; ++y)
        for (int x = left; x <= right; ++x)
            if (winner[windows + y * ow + x] == here) sum += grad[windows + y * ow + x];
    grad_x = sum;
    """,
    "tinynet_max_pool_backward")


def _geometry(x_shape, kernel, stride, padding):
    h, w = x_shape[2:]
    oh, ow = (output_size(size, k, s, p) for size, k, s, p in zip((h, w), kernel, stride, padding))
    return (h, w, *kernel, *stride, *padding, oh, ow)


def max_pool(x, kernel, stride, padding):
    """(out, winner): each window's maximum and the position of the first that holds it."""
    cupy = backend.cupy
    x = check_32_bit(cupy.ascontiguousarray(x))
    geometry = _geometry(x.shape, kernel, stride, padding)
    out = cupy.empty((*x.shape[:2], *geometry[-2:]), x.dtype)
    winner = cupy.empty(out.shape, cupy.int32)
    return _forward(x, *geometry, out, winner)


def max_pool_backward(grad, winner, x_shape, kernel, stride, padding):
    """The gradient of the input of shape ``x_shape``: each window's gradient sent to its winner."""
    cupy = backend.cupy
    grad_x = check_32_bit(cupy.empty(x_shape, grad.dtype))
    return _backward(cupy.ascontiguousarray(grad), winner, *_geometry(x_shape, kernel, stride, padding), grad_x)
