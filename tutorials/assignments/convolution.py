"""Assignment 3: convolution by im2col and col2im (goes with lesson 4).

A convolution becomes one matrix product once every receptive field is copied into a column
(im2col); its backward adds the column gradients back where they were read from (col2im).
The forward/backward pair follows CS231n's layers.py: ``conv_forward`` returns ``(out, cache)``
and ``conv_backward(dout, cache)`` returns the gradients. Arrays are NCHW; work in the input's
dtype. Loops over the kernel offsets (kh * kw of them) are fine; loops over images or pixels are
not needed.

Replace every ``raise NotImplementedError`` with your code, then grade your file:

    python -m tinynet.grade convolution

The bonus (groups > 1, the paper's two-GPU split of section 3.2) is graded separately and does
not count towards the score.
"""

import numpy as np


def im2col(x, kh, kw, stride):
    """Copy every kh x kw window of the (already padded) input into a column.

    Inputs:
    - x: array (N, C, H, W)
    - kh, kw: the kernel's height and width
    - stride: int, the step between windows, the same along both axes

    Returns columns, an array (C*kh*kw, N*oh*ow) with oh = (H - kh) // stride + 1 and
    ow = (W - kw) // stride + 1, laid out as tinynet.reference.conv.im2col:
        columns[c*kh*kw + i*kw + j, n*oh*ow + y*ow + x] = x[n, c, y*stride + i, x*stride + j]
    Row: the channel varies slowest, then the kernel row i, then the kernel column j.
    Column: the image n varies slowest, then the output row y, then the output column x.

    Hint: make an array (C, kh, kw, N, oh, ow) and fill it with one loop over the kernel
    offsets (i, j): x[:, :, i : i + stride*oh : stride, j : j + stride*ow : stride] is element
    (i, j) of every window at once, of shape (N, C, oh, ow). Then reshape. Lesson 4, section 2.
    """
    # TODO
    raise NotImplementedError


def col2im(columns, x_shape, kh, kw, stride):
    """The adjoint of im2col: add every column entry back to the input element it was read from.

    Inputs:
    - columns: array (C*kh*kw, N*oh*ow), laid out as im2col's output
    - x_shape: (N, C, H, W), the shape of the (padded) input im2col read
    - kh, kw, stride: as for im2col

    Returns an array of shape x_shape. Where windows overlap (stride < kernel) one input element
    was read by several windows: it receives the sum of their entries. Lesson 4, section 3.
    """
    # TODO
    raise NotImplementedError


def conv_forward(x, w, b, stride=1, padding=0, groups=1):
    """A convolutional layer (a cross-correlation, as in every deep-learning library).

    Inputs:
    - x: array (N, C, H, W)
    - w: array (F, C // groups, kh, kw), F filters
    - b: array (F,)
    - stride: int; padding: int, zeros added on each side of both spatial axes
    - groups (bonus): the C channels and the F filters split into `groups` equal parts, and
      filter group g sees only channel group g: one product per group (lesson 6, the paper's
      two GPUs). Leave it at 1 for the main part.

    Returns (out, cache):
    - out: array (N, F, oh, ow), oh = (H + 2*padding - kh) // stride + 1, likewise ow, with
          out[n, f, y, x] = b[f] + sum_{c, i, j} w[f, c, i, j] * x_padded[n, c, y*stride + i, x*stride + j]
    - cache: what conv_backward needs

    Steps: pad x with zeros (np.pad, spatial axes only); columns = im2col(...); the product
    w.reshape(F, -1) @ columns has shape (F, N*oh*ow): reshape it to (F, N, oh, ow) and move the
    batch axis first, then add the bias. Do not flip the kernel.
    """
    # TODO
    raise NotImplementedError


def conv_backward(dout, cache):
    """The gradients of conv_forward.

    Inputs:
    - dout: array (N, F, oh, ow), dL/d(out)
    - cache: what conv_forward returned

    Returns (dx, dw, db), of the shapes of x, w and b:
    - db: dout summed over the batch and both spatial axes
    - dw: (dout as a matrix (F, N*oh*ow)) @ columns.T, reshaped to w's shape
    - dx: w.reshape(F, -1).T @ (dout as a matrix) gives the columns' gradient; col2im adds it
      back into the padded input's shape; then cut the padding off.
    With groups (bonus), each group's filters, dout rows and column rows form their own products.
    """
    # TODO
    raise NotImplementedError
