"""Assignment 4: max pooling, forward and backward (goes with lesson 5, section 1).

AlexNet pools overlapping 3x3 windows with stride 2 (paper, section 3.4): neighbouring windows
share a row or a column, so one input can be the maximum of several windows. The forward pass
keeps, for every window, which element won; the backward pass sends each window's gradient to
its winner, adding up what a winner of several windows receives.

As in CS231n's layers.py, ``max_pool_forward`` returns ``(out, cache)`` and
``max_pool_backward(dout, cache)`` returns dx. Arrays are NCHW; work in the input's dtype.
A loop over the kernel offsets (kh * kw of them) is fine; no loop over images or pixels is needed.

Replace every ``raise NotImplementedError`` with your code, then grade your file:

    python -m tinynet.grade pooling
"""

import numpy as np


def max_pool_forward(x, kernel_size=3, stride=2, padding=0):
    """The maximum of each kernel_size x kernel_size window.

    Inputs:
    - x: array (N, C, H, W)
    - kernel_size, stride, padding: ints, the same along both spatial axes

    Returns (out, cache):
    - out: array (N, C, oh, ow), oh = (H + 2*padding - kernel_size) // stride + 1, likewise ow;
      out[n, c, y, x] is the maximum of x_padded[n, c, y*stride : y*stride + k, x*stride : x*stride + k]
    - cache: what backward needs; the index of each window's winner, for instance

    Padding: the padded border must never win, even over negative inputs: pad with -inf.
    Ties: when a window holds its maximum twice, the first one in row-major order within the
    window wins (as np.argmax picks), as in tinynet and PyTorch.

    Hint: stack element (i, j) of every window, x_padded[:, :, i : i + stride*oh : stride,
    j : j + stride*ow : stride], for the k*k offsets into one array (k*k, N, C, oh, ow); its max
    and argmax over axis 0 are the output and the winners.
    """
    # TODO
    raise NotImplementedError


def max_pool_backward(dout, cache):
    """The gradient of max pooling: each window's gradient goes to its winner.

    Inputs:
    - dout: array (N, C, oh, ow), dL/d(out)
    - cache: what max_pool_forward returned

    Returns dx, an array of x's shape (without the padding). An input that wins several
    overlapping windows receives the sum of their gradients; an input that wins none gets 0.
    """
    # TODO
    raise NotImplementedError
