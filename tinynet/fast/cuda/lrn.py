"""Local response normalisation (paper, section 3.3) in one launch each way.

One thread per element sums the squares of the n channels around its own
(forward), or the terms of the channels whose windows hold its own (backward):
the formulas of the reference LocalResponseNorm (tinynet/reference/lrn.py),
without its n shifted copies of the input.
"""

from ... import backend
from .compile import check_32_bit, elementwise

_WINDOW = "int32 channels, int32 plane, int32 before, int32 after, T alpha, T beta"

_forward = elementwise(
    "raw T x, T k, " + _WINDOW, "T out, T scale",
    """
    const unsigned int index = i;
    const int c = index / plane % channels;
    const unsigned int first = index - c * plane;  // the same pixel in channel 0
    T sum = 0;
    for (int j = max(0, c - before); j <= min(channels - 1, c + after); ++j) {
        const T a = x[first + j * plane];
        sum += a * a;
    }
    scale = k + alpha * sum;
    out = x[i] * pow(scale, -beta);
    """,
    "tinynet_lrn_forward")

# d out[i] / d x[c] = [i == c] scale[c]^-beta - 2 alpha beta x[i] x[c] scale[i]^(-beta-1)
# for every channel i whose window holds c: i in [c - after, c + before].
_backward = elementwise(
    "raw T x, raw T scale, raw T grad, " + _WINDOW, "T grad_x",
    """
    const unsigned int index = i;
    const int c = index / plane % channels;
    const unsigned int first = index - c * plane;
    T through_scale = 0;
    for (int j = max(0, c - after); j <= min(channels - 1, c + before); ++j) {
        const unsigned int o = first + j * plane;
        through_scale += grad[o] * x[o] * pow(scale[o], -beta - 1);
    }
    grad_x = grad[i] * pow(scale[i], -beta) - 2 * alpha * beta * x[i] * through_scale;
    """,
    "tinynet_lrn_backward")


def _window(x, size, alpha, beta):
    _, channels, h, w = x.shape
    return (channels, h * w, size // 2, (size - 1) // 2, alpha, beta)


def local_response_norm(x, size, alpha, beta, k):
    """(out, scale) for x (N, C, H, W); ``alpha`` as the paper writes it (not divided by n)."""
    cupy = backend.cupy
    x = check_32_bit(cupy.ascontiguousarray(x))
    out, scale = cupy.empty_like(x), cupy.empty_like(x)
    return _forward(x, x.dtype.type(k), *_window(x, size, x.dtype.type(alpha), x.dtype.type(beta)), out, scale)


def local_response_norm_backward(grad, x, scale, size, alpha, beta):
    cupy = backend.cupy
    dtype = x.dtype.type
    grad = cupy.ascontiguousarray(grad, dtype=x.dtype)
    return _backward(x, scale, grad, *_window(x, size, dtype(alpha), dtype(beta)), cupy.empty_like(x))
