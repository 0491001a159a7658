"""Winograd's minimal filtering: a stride-1 3x3 convolution with fewer multiplications.

F(2x2, 3x3) (Lavin and Gray, "Fast Algorithms for Convolutional Neural
Networks", 2016) computes each 2x2 block of outputs from a 4x4 tile of the
padded input with 16 multiplications per pair of channels, where im2col's
product spends 36. Three linear maps do it:

    V = B^T d B     each input tile d into the Winograd domain
    U = G g G^T     each 3x3 kernel g
    Y = A^T M A     the sum over input channels, M = sum_c U * V, back to 2x2 outputs

In the Winograd domain the sum over channels is, for each of the 16 tile
elements, a matrix product (out, in) @ (in, tiles): a batch of 16 GEMMs with
4/9 of im2col's flops in the GEMMs. The 2-D transforms are Kronecker products
of the 1-D ones, so each is one small matrix product over every tile at once.

Backward is the adjoint of each step in reverse order: dM = A dY A^T, then
dU = dM @ V^T and dV = U^T @ dM per tile element, dg = G^T dU G and
dd = B dV B^T, whose overlapping tiles add back into the input's gradient.

The numbers are the convolution's in exact arithmetic and round a little
differently in float32: against float64 on conv3's shape, 6e-7 of the largest
output where im2col errs by 3e-7. F(2x2, 5x5) for conv2 and F(4x4, 3x3) erred
by 1e-5 or more, past the PyTorch parity tests' tolerance, so they are not used
(bench/README.md, "Winograd for the 3x3 convolutions", has the figures).

One work buffer serves every step whose result is consumed by the next one:
the gathered tiles, then the products M; in backward dM, then dd. Sharing it
keeps 38 MB (conv4's size at batch 32) off the peak.
"""

from functools import cache

import numpy as np

from .. import backend
from ..windows import group_slices, kernel_offsets, padded_size, receptive_fields, window_grid
from . import workspace
from .workspace import scratch

# The 1-D transforms of F(2, 3), from Lavin and Gray's section 4.1: correlating a
# tile d of 4 inputs with a kernel g of 3 taps gives y = A^T ((G g) * (B^T d)).
B_T = [[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]]
G = [[1, 0, 0], [1 / 2, 1 / 2, 1 / 2], [1 / 2, -1 / 2, 1 / 2], [0, 0, 1]]
A_T = [[1, 1, 1, 0], [0, 1, -1, -1]]
KERNEL = 3
OUTPUT_TILE = 2  # each tile gives 2x2 outputs, so tiles start 2 apart
TILE = OUTPUT_TILE + KERNEL - 1  # and read 4x4 inputs: neighbouring tiles overlap by 2


def suits(x, weight, stride, padding):
    """Whether a convolution takes this path: floating-point NumPy arrays, stride 1, a 3x3
    kernel, any padding (the argument is there for the signature that fourier.suits shares).
    On a GPU im2col's CUDA kernels measured fast enough, and memory is short. Integers stay
    with im2col: G's halves would round to 0."""
    return (backend.xp_of(x) is np and tuple(stride) == (1, 1) and tuple(weight.shape[2:]) == (KERNEL, KERNEL)
            and all(np.issubdtype(a.dtype, np.floating) for a in (x, weight)))


@cache
def transforms(dtype):
    """B^T, G and A^T in 2-D, as matrices over a tile flattened in row-major order:
    vec(B^T d B) = kron(B^T, B^T) vec(d), and likewise for G and A^T."""
    return tuple(np.kron(t, t).astype(dtype) for t in (np.array(B_T), np.array(G), np.array(A_T)))


def tiles_along(size):
    """How many 2-output tiles cover ``size`` outputs (the last one may stick out)."""
    return -(-size // OUTPUT_TILE)


def output_size(x_shape, padding):
    return window_grid(padded_size(x_shape, padding), (KERNEL, KERNEL), (1, 1))


def tiled_size(th, tw):
    """The padded input that th x tw tiles read: 2 apart, each 4 wide."""
    return OUTPUT_TILE * th + TILE - OUTPUT_TILE, OUTPUT_TILE * tw + TILE - OUTPUT_TILE


def forward(x, weight, padding, groups, keep):
    """The convolution's output as a (C_out, N, oh, ow) array, and what backward needs: if
    ``keep``, V and U, the input tiles and the kernels in the Winograd domain; else None."""
    transformed, kernels = transformed_operands(x, weight, padding, keep)
    (c, positions), out_channels = transformed.shape[1:], weight.shape[0]
    products = scratch(np, "winograd_work", (TILE * TILE, out_channels, positions), transformed.dtype)
    for ins, outs in group_slices(c, out_channels, groups):
        np.matmul(kernels[:, outs], transformed[:, ins], out=products[:, outs])
    out = output_transform(products, (out_channels, x.shape[0], *output_size(x.shape, padding)))
    return out, ((transformed, kernels) if keep else None)


def transformed_operands(x, weight, padding, keep=True):
    """(V, U): the input tiles (16, C, N*th*tw) and the kernels (16, C_out, C_in/groups) in the
    Winograd domain, in the dtype of x and weight together. V in recycled memory if ``keep``
    (for backward), else in a scratch buffer."""
    n, c = x.shape[:2]
    th, tw = (tiles_along(size) for size in output_size(x.shape, padding))
    shape, dtype = (TILE * TILE, c, n * th * tw), np.result_type(x, weight)
    transformed = workspace.empty(np, shape, dtype) if keep else scratch(np, "winograd_inputs", shape, dtype)
    return input_transform(x, padding, transformed), kernel_transform(weight, dtype)


def input_transform(x, padding, out):
    """B^T d B of every 4x4 input tile d of x zero-padded, into ``out`` of shape (16, C, N*th*tw)
    (and of out's dtype)."""
    n, c, h, w = x.shape
    dtype = out.dtype
    th, tw = (tiles_along(size) for size in output_size(x.shape, padding))
    # Padded on the far side beyond the layer's own padding when an odd output
    # size leaves the last tile half outside: those outputs are computed and cut off.
    padded = scratch(np, "winograd_image", (n, c, *tiled_size(th, tw)), dtype)
    padded.fill(0)
    padded[:, :, padding[0] : padding[0] + h, padding[1] : padding[1] + w] = x
    gathered = scratch(np, "winograd_work", (TILE, TILE, c, n, th, tw), dtype)
    gathered[...] = receptive_fields(padded, (TILE, TILE), (OUTPUT_TILE, OUTPUT_TILE)).transpose(1, 2, 0, 3, 4, 5)
    b_t, _, _ = transforms(dtype)
    np.matmul(b_t, gathered.reshape(TILE * TILE, -1), out=out.reshape(TILE * TILE, -1))
    return out


def kernel_transform(weight, dtype):
    """G g G^T of every kernel in ``dtype``, as (16, C_out, C_in/groups): one matrix per tile element."""
    out_channels, in_per_group = weight.shape[:2]
    _, g, _ = transforms(dtype)
    flat = weight.reshape(out_channels * in_per_group, KERNEL * KERNEL).astype(dtype, copy=False)
    return (g @ flat.T).reshape(TILE * TILE, out_channels, in_per_group)


def output_transform(products, out_shape):
    """A^T M A of every tile's products M (16, C_out, N*th*tw), cut to ``out_shape`` (C_out, N, oh, ow)."""
    out_channels, n, oh, ow = out_shape
    th, tw = tiles_along(oh), tiles_along(ow)
    _, _, a_t = transforms(products.dtype)
    # (C_out*tiles, 16) @ (16, 4): each tile's 2x2 outputs side by side in memory,
    # so that placing them in the image copies pairs of neighbours, not single values.
    outputs = scratch(np, "winograd_outputs", (out_channels * n * th * tw, OUTPUT_TILE**2), products.dtype)
    np.matmul(products.reshape(TILE * TILE, -1).T, a_t.T, out=outputs)
    image = outputs.reshape(out_channels, n, th, tw, OUTPUT_TILE, OUTPUT_TILE).transpose(0, 1, 2, 4, 3, 5)
    out = workspace.empty(np, out_shape, products.dtype)
    out[...] = image.reshape(out_channels, n, OUTPUT_TILE * th, OUTPUT_TILE * tw)[:, :, :oh, :ow]
    return out


def backward(grad, kept, x_shape, weight_shape, padding, groups, input_grad_needed):
    """(grad_x or None, grad_weight) from the output's gradient (N, C_out, oh, ow) and
    forward's (V, U). If the input needs a gradient, V is overwritten by its own."""
    transformed, kernels = kept
    c = x_shape[1]
    out_channels, in_per_group = weight_shape[:2]
    grad_products = output_gradient(grad.astype(transformed.dtype, copy=False))
    grad_kernels = np.empty_like(kernels)
    for ins, outs in group_slices(c, out_channels, groups):
        np.matmul(grad_products[:, outs], transformed[:, ins].transpose(0, 2, 1), out=grad_kernels[:, outs])
        if input_grad_needed:  # this group's V has served its kernels' gradient: overwrite it
            np.matmul(kernels[:, outs].transpose(0, 2, 1), grad_products[:, outs], out=transformed[:, ins])
    _, g, _ = transforms(transformed.dtype)
    grad_weight = (g.T @ grad_kernels.reshape(TILE * TILE, -1)).reshape(KERNEL, KERNEL, out_channels, in_per_group)
    grad_weight = np.ascontiguousarray(grad_weight.transpose(2, 3, 0, 1))
    if not input_grad_needed:
        return None, grad_weight
    return input_gradient(transformed, x_shape, padding), grad_weight


def output_gradient(grad):
    """A dY A^T of every 2x2 tile dY of the output's gradient, as (16, C_out, N*th*tw)."""
    n, out_channels, oh, ow = grad.shape
    th, tw = tiles_along(oh), tiles_along(ow)
    padded = scratch(np, "winograd_grad_padded", (out_channels, n, OUTPUT_TILE * th, OUTPUT_TILE * tw), grad.dtype)
    padded[:, :, oh:] = 0
    padded[:, :, :, ow:] = 0
    padded[:, :, :oh, :ow] = grad.transpose(1, 0, 2, 3)
    # (C_out, N, th, 2, tw, 2) -> (C_out*N*th*tw, 4): each tile's 2x2 gradients side by side
    grad_outputs = scratch(np, "winograd_outputs", (out_channels, n, th, tw, OUTPUT_TILE, OUTPUT_TILE), grad.dtype)
    grad_outputs[...] = padded.reshape(out_channels, n, th, OUTPUT_TILE, tw, OUTPUT_TILE).transpose(0, 1, 2, 4, 3, 5)
    _, _, a_t = transforms(grad.dtype)
    grad_products = scratch(np, "winograd_work", (TILE * TILE, out_channels, n * th * tw), grad.dtype)
    np.matmul(a_t.T, grad_outputs.reshape(-1, OUTPUT_TILE**2).T, out=grad_products.reshape(TILE * TILE, -1))
    return grad_products


def input_gradient(grad_transformed, x_shape, padding):
    """B dV B^T of every tile's gradient dV (16, C, N*th*tw), added back where the tile was
    read (neighbouring tiles overlap by 2), the padding cut off."""
    n, c, h, w = x_shape
    th, tw = (tiles_along(size) for size in output_size(x_shape, padding))
    b_t, _, _ = transforms(grad_transformed.dtype)
    grad_tiles = scratch(np, "winograd_work", (TILE, TILE, c, n, th, tw), grad_transformed.dtype)
    np.matmul(b_t.T, grad_transformed.reshape(TILE * TILE, -1), out=grad_tiles.reshape(TILE * TILE, -1))
    image = scratch(np, "winograd_image", (c, n, *tiled_size(th, tw)), grad_tiles.dtype)
    image.fill(0)
    for i, j, rows, cols in kernel_offsets((TILE, TILE), (OUTPUT_TILE, OUTPUT_TILE), (th, tw)):
        image[:, :, rows, cols] += grad_tiles[i, j]
    grad_x = workspace.empty(np, x_shape, grad_tiles.dtype)
    grad_x[...] = image[:, :, padding[0] : padding[0] + h, padding[1] : padding[1] + w].transpose(1, 0, 2, 3)
    return grad_x

