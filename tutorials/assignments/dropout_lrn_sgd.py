"""Assignment 5: dropout, local response normalisation and the paper's SGD update
(goes with lessons 5 and 7).

Three pieces of AlexNet that the paper describes in a sentence or a formula each:
inverted dropout (section 4.2), local response normalisation across channels (section 3.3)
and momentum SGD with weight decay (section 5). The layers follow CS231n's layers.py:
``*_forward`` returns ``(out, cache)`` and ``*_backward(dout, cache)`` returns dx. Work in
the dtype of the inputs: a float32 input gives a float32 output.

Replace every ``raise NotImplementedError`` with your code, then grade your file:

    python -m tinynet.grade dropout_lrn_sgd
"""

import numpy as np


def dropout_forward(x, p, random):
    """Inverted dropout at training time: zero each unit with probability p, scale the rest.

    Inputs:
    - x: array of any shape
    - p: the probability of dropping a unit, 0 <= p < 1
    - random: a function; random(shape) returns uniform numbers in [0, 1) of x's dtype.
      Call it once, as random(x.shape), and keep the units where the number is >= p: the
      grader hands you tinynet's own generator and compares your mask with tinynet's.

    Returns (out, cache): out = x * mask, where mask is 1 / (1 - p) for a kept unit and 0 for a
    dropped one. Scaling by 1/(1 - p) now keeps each unit's expected value, so nothing changes
    at test time (the paper instead multiplies by 0.5 at test time; lesson 5, section 3).
    """
    # TODO
    raise NotImplementedError


def dropout_backward(dout, cache):
    """dx: the gradient flows through the kept units only, scaled like them (the same mask)."""
    # TODO
    raise NotImplementedError


def lrn_forward(x, size=5, alpha=1e-4, beta=0.75, k=2.0):
    """Local response normalisation across channels, as in the paper (section 3.3):

        b[n, c, y, x] = a[n, c, y, x] / (k + alpha * sum over j in window(c) of a[n, j, y, x]**2) ** beta

    where window(c) holds the channels c - size//2 ... c + (size - 1)//2 that exist (clipped at
    0 and C - 1: no wrapping around). For the paper's odd size 5 that is c-2 ... c+2.

    Note: alpha is used as it is. PyTorch and Caffe divide alpha by size (alpha / n); the paper
    does not, and neither do we (tinynet: F.local_response_norm(..., alpha_over_n=False)).

    Inputs:
    - x: array (N, C, H, W); C need not be a multiple of size, and may be smaller than it

    Returns (out, cache), out of x's shape.

    Hint: pad the channel axis of x**2 with zeros (size//2 before, (size - 1)//2 after) and add
    up `size` shifted slices of it: one loop over the window, not over channels.
    """
    # TODO
    raise NotImplementedError


def lrn_backward(dout, cache):
    """dx for lrn_forward. Write s[c] = k + alpha * (window sum of a**2 around c), so b[c] = a[c] s[c]**-beta.

    Each input a[j] reaches the outputs b[i] of every channel i whose window holds j: directly
    when i == j, and through s[i] otherwise. The chain rule gives

        dx[j] = dout[j] * s[j]**-beta
                - 2 * alpha * beta * a[j] * sum over i with j in window(i) of dout[i] * a[i] * s[i]**(-beta - 1)

    j lies in window(i) exactly when i lies in the mirrored window of j: (size - 1)//2 before,
    size//2 after. For odd sizes both windows are the same.
    """
    # TODO
    raise NotImplementedError


def sgd_step(w, dw, v, lr, momentum=0.9, weight_decay=5e-4):
    """One step of the paper's update (section 5), for one weight array:

        v <- momentum * v - weight_decay * lr * w - lr * dw
        w <- w + v

    (the paper's epsilon is lr). This is not PyTorch's rule (v <- m v + dw + wd w; w <- w - lr v):
    the two agree while lr is constant and differ once it changes, because the paper's velocity
    still carries steps taken at the old rate (lesson 7, section 1).

    Inputs:
    - w, dw, v: arrays of the same shape and dtype: the weights, their gradient, the velocity
      (zeros before the first step)
    - lr, momentum, weight_decay: Python floats

    Returns (w, v) after the step, in w's dtype.
    """
    # TODO
    raise NotImplementedError
