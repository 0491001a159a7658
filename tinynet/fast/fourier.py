"""Convolution by the convolution theorem: stride-1 kernels of 5x5 and larger, frequency by frequency.

Correlating a map with a kernel is, after a discrete Fourier transform (DFT) of
both, a product at each frequency. So the layer becomes three steps:

    X = DFT(x)          every input map, zero-padded to N1 x N2
    Y = W @ X           at each frequency, a complex (out, in) @ (in, images)
                        product, W being the DFT of the kernels
    y = DFT^-1(Y)       back to the outputs

N1 x N2 is just large enough that the transform's wrap-around only ever reads
zeros (``transform_size``). Real maps have Hermitian spectra, so along the last
axis half the frequencies suffice: conv2 (27x27 maps, 5x5 kernels, padding 2)
takes 29 x 15 complex products per pair of channels and image, 1,740 real
multiplications, where im2col's GEMM spends 18,225: 10x fewer.

The DFTs are matrix products with DFT matrices, one axis at a time, not np.fft:
the kernels are only 5x5 inside their 29x29 transform, and NumPy's FFT runs on
one thread (an rfft2 of conv2's 24,576 kernels took 150 ms). The DFT matrices
fold in what makes the circular correlation the layer's: the padding, as a
shift of the kernel, and the half spectrum's doubled frequencies.

Backward is the adjoint of each step: dY = (DFT^-1)^H dy; dW = dY @ X^H and
dX = W^H @ dY at each frequency; dx = DFT^H dX and dw = DFT^H dW, real parts.

In float32 the results err by about as much as im2col's: on conv2's shape, 4e-7
of the largest output against float64, where PyTorch's own float32 convolution
errs by 5e-7 (bench/README.md has the figures).
"""

from functools import lru_cache

import numpy as np

from .. import backend
from ..windows import group_slices, output_size
from . import workspace
from .workspace import scratch

# A kernel spectrum is (frequencies, out, in) complex numbers, kept for backward;
# past this size (large images) im2col, whose columns are chunked, is used instead.
KERNEL_SPECTRUM_BUDGET_BYTES = 256 * 2**20


def suits(x, weight, stride, padding):
    """Whether a convolution takes this path: float32 or float64 NumPy arrays (float16 has no
    complex counterpart), stride 1, a kernel of at least 5x5, and a kernel spectrum within the
    budget. 3x3 kernels take Winograd's F(2x2, 3x3): through the DFT, conv3-5 made a seed
    training step 9% shorter but its peak memory 140 MB larger (112 complex numbers kept for
    every 9 weights), past the 1.3x of PyTorch's that bench/alexnet.py checks."""
    if backend.xp_of(x) is not np or tuple(stride) != (1, 1) or min(weight.shape[2:]) < 5:
        return False
    if np.result_type(x, weight) not in (np.float32, np.float64):
        return False
    (h, w), (ph, pw) = x.shape[2:], padding
    frequencies = transform_size(h, ph) * (transform_size(w, pw) // 2 + 1)
    complex_bytes = np.dtype(complex_type(x, weight)).itemsize
    return frequencies * weight.shape[0] * weight.shape[1] * complex_bytes <= KERNEL_SPECTRUM_BUDGET_BYTES


def complex_type(x, weight):
    """complex64 for float32 layers, complex128 for float64 ones."""
    return np.result_type(x, weight, np.complex64)


def transform_size(size, padding):
    """The DFT length along an axis, whatever the kernel: output i reads input i + u - padding
    for each tap u, so the circular correlation wraps onto zeros (never onto the map) once the
    length is at least size + padding. (With more padding than kernel - 1 there are more
    outputs than that: those past it read only padding, as do the ones they wrap onto, and
    both are 0.)"""
    return size + padding


def dft_matrices(size, kernel, padding, half):
    """The DFT matrices along one axis of length ``size`` (complex128), over all of the
    transform's N frequencies or, if ``half``, over the first N//2 + 1 (a real map's
    spectrum holds the others as conjugates):

    analysis (freqs, size): the DFT of a map, zero-padded to N;
    kernel (freqs, kernel): the DFT of a kernel, conjugated and shifted by the padding,
        so that their product is the spectrum of the padded correlation;
    synthesis (outputs, freqs): the inverse DFT at the layer's outputs; in a half
        spectrum each frequency but 0 and N/2 counts twice, for its missing conjugate.
    """
    n = transform_size(size, padding)
    freqs = np.arange(n // 2 + 1 if half else n)
    outputs = np.arange(output_size(size, kernel, 1, padding))

    def turns(a, b):
        return np.exp(2j * np.pi * np.outer(a, b) / n)

    weights = np.ones(len(freqs))
    if half:
        weights[1 : (n + 1) // 2] = 2
    analysis = turns(freqs, -np.arange(size))
    kernel_dft = turns(freqs, np.arange(kernel) - padding)
    synthesis = turns(outputs, freqs) * weights / n
    return analysis, kernel_dft, synthesis


def real_part_rows(matrix):
    """The rows of a complex matrix as (re, -im) pairs, for real_part_of_product."""
    return np.stack([matrix.real, -matrix.imag], axis=1).reshape(-1, matrix.shape[1])


def real_part_of_product(z, rows, out):
    """Re(z @ M) into ``out``, for complex z and ``rows`` = real_part_rows(M): one real GEMM
    of z's (re, im) pairs with them, since Re(z m) = z.re m.re - z.im m.im."""
    return np.matmul(z.view(rows.dtype).reshape(-1, rows.shape[0]), rows, out=out.reshape(-1, rows.shape[1]))


def real_times_complex(x, matrix, name):
    """x @ matrix along the last axis of a real (N, C, H, W) array x, into a complex scratch
    buffer of that ``name``: one real GEMM with the matrix's (re, im) pairs, whose results are
    the (re, im) pairs of the product. The GEMM reads x's rows in their memory order, C order or
    the (C, N) order of a convolution's output, so that no copy of x comes before it; the
    result has x's axes, N first."""
    order = (1, 0, 2, 3) if x.transpose(1, 0, 2, 3).flags.c_contiguous else (0, 1, 2, 3)
    rows = x.transpose(order)
    real = matrix.real.dtype
    out = scratch(np, name, (*rows.shape[:3], matrix.shape[1]), matrix.dtype)
    np.matmul(rows.astype(real, copy=False).reshape(-1, matrix.shape[0]), matrix.view(real),
              out=out.view(real).reshape(-1, 2 * matrix.shape[1]))
    return out.transpose(order)


class Transforms:
    """Every matrix one layer's shapes need, ready for its GEMMs in ``dtype`` (complex64 or
    complex128): the rows transformed over all frequencies, the columns over half of them.
    The adjoints (conjugate transposes) serve backward."""

    def __init__(self, spatial, kernel, padding, dtype):
        (h, w), (kh, kw), (ph, pw) = spatial, kernel, padding
        rows_in, rows_kernel, rows_out = dft_matrices(h, kh, ph, half=False)
        cols_in, cols_kernel, cols_out = dft_matrices(w, kw, pw, half=True)
        real = np.finfo(dtype).dtype

        def ready(m, dtype=dtype):
            return np.ascontiguousarray(m, dtype=dtype)

        self.frequencies = (len(rows_in), len(cols_in))
        self.rows_in, self.rows_in_adjoint = ready(rows_in), ready(rows_in.conj().T)
        self.rows_out, self.rows_out_adjoint = ready(rows_out), ready(rows_out.conj().T)
        # the columns' transforms meet real maps: forward's analysis and backward's adjoint of
        # the synthesis multiply real arrays, the others keep the real part of their products
        self.cols_in, self.cols_in_adjoint = ready(cols_in.T), ready(real_part_rows(cols_in.conj()), real)
        self.cols_out, self.cols_out_adjoint = ready(real_part_rows(cols_out.T), real), ready(cols_out.conj())
        # both axes of a kernel at once: it is small (kh*kw values), its transform large
        self.kernel = ready(np.kron(rows_kernel, cols_kernel))
        self.kernel_adjoint = ready(self.kernel.conj().T)

    @staticmethod
    @lru_cache(maxsize=16)  # a few layers' shapes; bounded, for programs that vary the image size
    def of(spatial, kernel, padding, dtype):
        return Transforms(spatial, kernel, padding, np.dtype(dtype))


def transforms(x, weight, padding):
    return Transforms.of(x.shape[2:], weight.shape[2:], tuple(padding), complex_type(x, weight))


def forward(x, weight, padding, groups, keep):
    """The convolution's output as a (C_out, N, oh, ow) array, and what backward needs: if
    ``keep``, X and W, the spectra of the inputs and of the kernels; else None."""
    t = transforms(x, weight, padding)
    spectra, kernels = transformed_operands(x, weight, padding, keep)
    (c, n), out_channels = spectra.shape[1:], weight.shape[0]
    products = scratch(np, "fourier_products", (spectra.shape[0], out_channels, n), spectra.dtype)
    for ins, outs in group_slices(c, out_channels, groups):
        np.matmul(kernels[:, outs], spectra[:, ins], out=products[:, outs])
    out = output_transform(products, t)
    return out, ((spectra, kernels) if keep else None)


def transformed_operands(x, weight, padding, keep=True):
    """(X, W): the inputs' spectra (F1*F2, C, N) and the kernels' (F1*F2, C_out, C_in/groups),
    X in recycled memory if ``keep`` (for backward, which overwrites it), else in a scratch buffer."""
    t = transforms(x, weight, padding)
    n, c = x.shape[:2]
    shape, dtype = (len(t.kernel), c, n), complex_type(x, weight)
    spectra = workspace.empty(np, shape, dtype) if keep else scratch(np, "fourier_inputs", shape, dtype)
    return input_transform(x, t, spectra), kernel_transform(weight, t)


def input_transform(x, t, out):
    """The DFT of every map of x, into ``out`` (F1*F2, C, N): each row to half a spectrum
    first, then each column."""
    n, c, h, w = x.shape
    f1, f2 = t.frequencies
    rows_done = real_times_complex(x, t.cols_in, "fourier_work_a")
    # (h, f2, C, N): the column transform is then one GEMM whose result is already in
    # the (frequency, channel, image) order of the products at each frequency
    rearranged = scratch(np, "fourier_work_b", (h, f2, c, n), out.dtype)
    rearranged[...] = rows_done.transpose(2, 3, 1, 0)
    np.matmul(t.rows_in, rearranged.reshape(h, -1), out=out.reshape(f1, -1))
    return out


def kernel_transform(weight, t):
    """The DFT of every kernel, as (F1*F2, C_out, C_in/groups) in recycled memory: one GEMM over
    both axes of all the kernels at once. (Complex by real: half of its multiplications are by
    zero, and it still takes a few milliseconds.)"""
    out_channels, in_per_group, kh, kw = weight.shape
    flat = weight.reshape(out_channels * in_per_group, kh * kw).T.astype(t.kernel.dtype)
    kernels = workspace.empty(np, (len(t.kernel), out_channels, in_per_group), t.kernel.dtype)
    np.matmul(t.kernel, flat, out=kernels.reshape(len(t.kernel), -1))
    return kernels


def output_transform(products, t):
    """The inverse DFT of the products (F1*F2, C_out, N) at the layer's outputs: each column
    first, then each row, keeping the real part. A (C_out, N, oh, ow) array in recycled memory."""
    (f1, f2), (_, out_channels, n) = t.frequencies, products.shape
    oh, ow = len(t.rows_out), t.cols_out.shape[1]
    columns_done = scratch(np, "fourier_work_a", (oh, f2, out_channels, n), products.dtype)
    np.matmul(t.rows_out, products.reshape(f1, -1), out=columns_done.reshape(oh, -1))
    rearranged = scratch(np, "fourier_work_b", (out_channels, n, oh, f2), products.dtype)
    rearranged[...] = columns_done.transpose(2, 3, 0, 1)
    out = workspace.empty(np, (out_channels, n, oh, ow), t.cols_out.dtype)
    real_part_of_product(rearranged, t.cols_out, out)
    return out


def backward(grad, kept, x_shape, weight_shape, padding, groups, input_grad_needed):
    """(grad_x or None, grad_weight) from the output's gradient (N, C_out, oh, ow) and
    forward's (X, W), which are overwritten by their own gradients (X only if the input
    needs one): no third array of W's size, the largest here."""
    spectra, kernels = kept
    t = Transforms.of(tuple(x_shape[2:]), tuple(weight_shape[2:]), tuple(padding), spectra.dtype)
    c, out_channels = x_shape[1], weight_shape[0]
    grad_products = output_gradient(grad, t)
    if input_grad_needed:
        conjugate_grad = scratch(np, "fourier_work_a", grad_products.shape, grad_products.dtype)
        np.conjugate(grad_products, out=conjugate_grad)
    for ins, outs in group_slices(c, out_channels, groups):
        # at each frequency dX = W^H @ dY = conj(W^T @ conj(dY)) and dW = dY @ X^H: NumPy's
        # products take transposes for free but would copy W to conjugate it
        conjugate_spectra = scratch(np, "fourier_work_b", spectra[:, ins].shape, spectra.dtype)
        np.conjugate(spectra[:, ins], out=conjugate_spectra)
        if input_grad_needed:  # this group's X lives on in the copy: dX overwrites it
            np.matmul(kernels[:, outs].transpose(0, 2, 1), conjugate_grad[:, outs], out=spectra[:, ins])
        # and this group's W has served dX: dW overwrites it
        np.matmul(grad_products[:, outs], conjugate_spectra.transpose(0, 2, 1), out=kernels[:, outs])
    grad_weight = kernel_gradient(kernels, t, weight_shape)
    if not input_grad_needed:
        return None, grad_weight
    np.conjugate(spectra, out=spectra)
    return input_gradient(spectra, t, x_shape), grad_weight


def output_gradient(grad, t):
    """The adjoint of output_transform: dY (F1*F2, C_out, N) from the outputs' gradient."""
    n, out_channels, oh, ow = grad.shape
    f1, f2 = t.frequencies
    rows_done = real_times_complex(grad, t.cols_out_adjoint, "fourier_work_a")
    rearranged = scratch(np, "fourier_work_b", (oh, f2, out_channels, n), rows_done.dtype)
    rearranged[...] = rows_done.transpose(2, 3, 1, 0)
    grad_products = scratch(np, "fourier_products", (f1 * f2, out_channels, n), rows_done.dtype)
    np.matmul(t.rows_out_adjoint, rearranged.reshape(oh, -1), out=grad_products.reshape(f1, -1))
    return grad_products


def kernel_gradient(grad_kernels, t, weight_shape):
    """The adjoint of kernel_transform, real part: the weights' gradient."""
    flat = (t.kernel_adjoint @ grad_kernels.reshape(len(t.kernel), -1)).real
    return np.ascontiguousarray(flat.T).reshape(weight_shape)


def input_gradient(grad_spectra, t, x_shape):
    """The adjoint of input_transform, real part: the inputs' gradient (N, C, H, W) in recycled memory."""
    n, c, h, w = x_shape
    f1, f2 = t.frequencies
    columns_done = scratch(np, "fourier_work_a", (h, f2, c, n), grad_spectra.dtype)
    np.matmul(t.rows_in_adjoint, grad_spectra.reshape(f1, -1), out=columns_done.reshape(h, -1))
    rearranged = scratch(np, "fourier_work_b", (n, c, h, f2), grad_spectra.dtype)
    rearranged[...] = columns_done.transpose(3, 2, 0, 1)
    grad_x = workspace.empty(np, x_shape, t.cols_in_adjoint.dtype)
    real_part_of_product(rearranged, t.cols_in_adjoint, grad_x)
    return grad_x
