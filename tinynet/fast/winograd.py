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
4/9 of im2col's flops in all. The 2-D transforms are Kronecker products of the
1-D ones, so each is one small matrix product over every tile at once.

Backward is the adjoint of each step in reverse order: dM = A dY A^T, then
dU = dM @ V^T and dV = U^T @ dM per tile element, dg = G^T dU G and
dd = B dV B^T, whose overlapping tiles add back into the input's gradient.

The numbers are the convolution's in exact arithmetic and round a little
differently in float32: measured against float64 on conv3's shape, 6e-7 of the
largest output against im2col's 3e-7. F(2x2, 5x5) for conv2 measured 35% faster
than im2col there but erred by up to 1.4e-5, past the PyTorch parity tests'
tolerance, so 5x5 kernels stay with im2col.
"""

from functools import cache

import numpy as np

from ..windows import kernel_offsets, receptive_fields
from . import workspace
from .workspace import scratch

# The 1-D transforms of F(2, 3), from Lavin and Gray's section 4.1: correlating a
# tile d of 4 inputs with a kernel g of 3 taps gives y = A^T ((G g) * (B^T d)).
B_T = [[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]]
G = [[1, 0, 0], [1 / 2, 1 / 2, 1 / 2], [1 / 2, -1 / 2, 1 / 2], [0, 0, 1]]
A_T = [[1, 1, 1, 0], [0, 1, -1, -1]]
KERNEL, OUTPUTS_PER_TILE, TILE = 3, 2, 4


def suits(x, weight_shape, stride):
    """Whether a convolution of ``x`` takes this path: on the CPU, stride 1, a 3x3 kernel.
    (On a GPU im2col's CUDA kernels measured fast enough, and memory is short.)"""
    return isinstance(x, np.ndarray) and tuple(stride) == (1, 1) and tuple(weight_shape[2:]) == (KERNEL, KERNEL)


@cache
def transforms(dtype):
    """The 2-D transforms as matrices over a tile flattened in row-major order:
    vec(B^T d B) = kron(B^T, B^T) vec(d), and likewise for G and A^T."""
    return tuple(np.kron(t, t).astype(dtype) for t in (np.array(B_T), np.array(G), np.array(A_T)))


def tile_grid(x_shape, padding):
    """(oh, ow, th, tw): the output's size and the number of 2x2 output tiles along each axis."""
    _, _, h, w = x_shape
    oh, ow = h + 2 * padding[0] - KERNEL + 1, w + 2 * padding[1] - KERNEL + 1
    return oh, ow, -(-oh // OUTPUTS_PER_TILE), -(-ow // OUTPUTS_PER_TILE)


def tiled_size(th, tw):
    """The padded input that th x tw tiles read: 4x4 tiles, 2 apart, overlapping by 2."""
    return OUTPUTS_PER_TILE * th + TILE - OUTPUTS_PER_TILE, OUTPUTS_PER_TILE * tw + TILE - OUTPUTS_PER_TILE


def forward(x, weight, padding, groups, keep):
    """The convolution's output as a (C_out, N, oh, ow) array, and what backward needs:
    the input tiles in the Winograd domain (in recycled memory if ``keep``) and the kernels'."""
    n, c = x.shape[:2]
    out_channels = weight.shape[0]
    oh, ow, th, tw = tile_grid(x.shape, padding)
    shape = (TILE * TILE, c, n * th * tw)
    tiles = workspace.empty(np, shape, x.dtype) if keep else scratch(np, "winograd_inputs", shape, x.dtype)
    input_transform(x, padding, tiles)
    kernels = kernel_transform(weight)
    # in the buffer that held the gathered tiles (transformed by now): 38 MB less at the peak
    products = scratch(np, "winograd_tiles", (TILE * TILE, out_channels, n * th * tw), x.dtype)
    for rows, outs in group_slices(c, out_channels, groups):
        np.matmul(kernels[:, outs], tiles[:, rows], out=products[:, outs])
    return output_transform(products, (out_channels, n, oh, ow)), (tiles, kernels)


def input_transform(x, padding, out):
    """B^T d B of every 4x4 input tile d of x zero-padded, into ``out`` of shape (16, C, N*th*tw)."""
    n, c, h, w = x.shape
    _, _, th, tw = tile_grid(x.shape, padding)
    # Padded on the far side beyond the layer's own padding when an odd output
    # size leaves the last tile half outside: those outputs are computed and cut off.
    padded = scratch(np, "winograd_image", (n, c, *tiled_size(th, tw)), x.dtype)
    padded.fill(0)
    padded[:, :, padding[0] : padding[0] + h, padding[1] : padding[1] + w] = x
    tiles = scratch(np, "winograd_tiles", (TILE, TILE, c, n, th, tw), x.dtype)
    step = (OUTPUTS_PER_TILE, OUTPUTS_PER_TILE)
    tiles[...] = receptive_fields(padded, (TILE, TILE), step).transpose(1, 2, 0, 3, 4, 5)
    b_t, _, _ = transforms(x.dtype)
    np.matmul(b_t, tiles.reshape(TILE * TILE, -1), out=out.reshape(TILE * TILE, -1))


def kernel_transform(weight):
    """G g G^T of every kernel, as (16, C_out, C_in/groups): one matrix per tile element."""
    out_channels, in_per_group = weight.shape[:2]
    _, g, _ = transforms(weight.dtype)
    return (g @ weight.reshape(out_channels * in_per_group, -1).T).reshape(-1, out_channels, in_per_group)


def output_transform(products, out_shape):
    """A^T M A of every tile's products M (16, C_out, N*th*tw), cut to ``out_shape`` (C_out, N, oh, ow)."""
    out_channels, n, oh, ow = out_shape
    m = OUTPUTS_PER_TILE
    _, _, th, tw = tile_grid((n, 0, oh + KERNEL - 1, ow + KERNEL - 1), (0, 0))
    _, _, a_t = transforms(products.dtype)
    # (C_out*tiles, 16) @ (16, 4): each tile's 2x2 outputs side by side in memory,
    # so that placing them in the image copies pairs of neighbours, not single values.
    outputs = scratch(np, "winograd_outputs", (out_channels * n * th * tw, m * m), products.dtype)
    np.matmul(products.reshape(TILE * TILE, -1).T, a_t.T, out=outputs)
    image = outputs.reshape(out_channels, n, th, tw, m, m).transpose(0, 1, 2, 4, 3, 5)
    out = workspace.empty(np, out_shape, products.dtype)
    out[...] = image.reshape(out_channels, n, m * th, m * tw)[:, :, :oh, :ow]
    return out


def backward(grad, saved, x_shape, weight_shape, padding, groups, input_grad_needed):
    """(grad_x or None, grad_weight) from the output's gradient (N, C_out, oh, ow).
    The saved input tiles are overwritten by their own gradient."""
    tiles, kernels = saved
    c = x_shape[1]
    out_channels, in_per_group = weight_shape[:2]
    b_t, g, _ = transforms(grad.dtype)
    grad_products = output_gradient(grad)
    grad_kernels = np.empty_like(kernels)
    for rows, outs in group_slices(c, out_channels, groups):
        np.matmul(grad_products[:, outs], tiles[:, rows].transpose(0, 2, 1), out=grad_kernels[:, outs])
        if input_grad_needed:  # this group's tiles have served its kernels' gradient: overwrite them
            np.matmul(kernels[:, outs].transpose(0, 2, 1), grad_products[:, outs], out=tiles[:, rows])
    grad_weight = (g.T @ grad_kernels.reshape(TILE * TILE, -1)).reshape(KERNEL, KERNEL, out_channels, in_per_group)
    grad_weight = np.ascontiguousarray(grad_weight.transpose(2, 3, 0, 1))
    if not input_grad_needed:
        return None, grad_weight
    return input_gradient(tiles, x_shape, padding), grad_weight


def output_gradient(grad):
    """A dY A^T of every 2x2 tile dY of the output's gradient, as (16, C_out, N*th*tw)."""
    n, out_channels, oh, ow = grad.shape
    m = OUTPUTS_PER_TILE
    _, _, th, tw = tile_grid((n, 0, oh + KERNEL - 1, ow + KERNEL - 1), (0, 0))
    padded = scratch(np, "winograd_grad_padded", (out_channels, n, m * th, m * tw), grad.dtype)
    padded[:, :, oh:] = 0
    padded[:, :, :, ow:] = 0
    padded[:, :, :oh, :ow] = grad.transpose(1, 0, 2, 3)
    # (C_out, N, th, 2, tw, 2) -> (C_out*N*th*tw, 4): each tile's 2x2 gradients side by side
    grad_outputs = scratch(np, "winograd_outputs", (out_channels, n, th, tw, m, m), grad.dtype)
    grad_outputs[...] = padded.reshape(out_channels, n, th, m, tw, m).transpose(0, 1, 2, 4, 3, 5)
    _, _, a_t = transforms(grad.dtype)
    grad_products = scratch(np, "winograd_tiles", (TILE * TILE, out_channels, n * th * tw), grad.dtype)
    np.matmul(a_t.T, grad_outputs.reshape(-1, m * m).T, out=grad_products.reshape(TILE * TILE, -1))
    return grad_products


def input_gradient(grad_tiles_domain, x_shape, padding):
    """B dV B^T of every tile's gradient dV (16, C, N*th*tw), added back where the tile was
    read (neighbouring tiles overlap by 2), the padding cut off."""
    n, c, h, w = x_shape
    _, _, th, tw = tile_grid(x_shape, padding)
    b_t, _, _ = transforms(grad_tiles_domain.dtype)
    grad_tiles = scratch(np, "winograd_tiles", (TILE, TILE, c, n, th, tw), grad_tiles_domain.dtype)
    np.matmul(b_t.T, grad_tiles_domain.reshape(TILE * TILE, -1), out=grad_tiles.reshape(TILE * TILE, -1))
    image = scratch(np, "winograd_image", (c, n, *tiled_size(th, tw)), grad_tiles.dtype)
    image.fill(0)
    step = (OUTPUTS_PER_TILE, OUTPUTS_PER_TILE)
    for i, j, rows, cols in kernel_offsets((TILE, TILE), step, (th, tw)):
        image[:, :, rows, cols] += grad_tiles[i, j]
    grad_x = workspace.empty(np, x_shape, grad_tiles.dtype)
    grad_x[...] = image[:, :, padding[0] : padding[0] + h, padding[1] : padding[1] + w].transpose(1, 0, 2, 3)
    return grad_x


def group_slices(in_channels, out_channels, groups):
    """For each group: its input channels and its output channels."""
    ins, outs = in_channels // groups, out_channels // groups
    for k in range(groups):
        yield slice(k * ins, (k + 1) * ins), slice(k * outs, (k + 1) * outs)
