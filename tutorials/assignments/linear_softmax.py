"""Assignment 2: a fully-connected layer and softmax cross-entropy (goes with lesson 3).

Each layer is a pair of functions on NumPy arrays, in the style of CS231n's layers.py:

* ``*_forward(inputs...)`` returns ``(out, cache)``: the output, and whatever backward needs;
* ``*_backward(dout, cache)`` receives dL/d(out) and returns dL/d(each input), each of that
  input's shape.

Work in the dtype of the inputs (the grader checks float64, as gradient checks need). Replace
every ``raise NotImplementedError`` with your code, then grade your file:

    python -m tinynet.grade linear_softmax
"""

import numpy as np


def linear_forward(x, w, b):
    """The fully-connected layer: out = x w^T + b.

    Inputs:
    - x: array (N, D), a batch of N inputs of D features
    - w: array (M, D), the weights, laid out as PyTorch's nn.Linear: (out_features, in_features)
    - b: array (M,), the biases

    Returns (out, cache):
    - out: array (N, M)
    - cache: what linear_backward needs (x and w)
    """
    # TODO
    raise NotImplementedError


def linear_backward(dout, cache):
    """The gradients of the fully-connected layer.

    Inputs:
    - dout: array (N, M), dL/d(out)
    - cache: what linear_forward returned

    Returns (dx, dw, db), of the shapes of x (N, D), w (M, D) and b (M,):
    dx = dout w, dw = dout^T x, db = the sum of dout over the batch.
    Hint: write each as a matrix product and check its shape before its values.
    """
    # TODO
    raise NotImplementedError


def softmax_cross_entropy_forward(logits, targets):
    """The mean over the batch of -log softmax(logits)[target].

    Inputs:
    - logits: array (N, C), one row of C class scores per example
    - targets: integer array (N,), the class of each example, in [0, C)

    Returns (loss, cache):
    - loss: a float, L = -(1/N) sum_i log p[i, targets[i]], with
      p[i, c] = exp(logits[i, c]) / sum_k exp(logits[i, k])  (the softmax over the classes, axis 1)
    - cache: what the backward needs

    Numerical stability: exp(1000) overflows to inf. Subtract each row's maximum from its logits
    first (it cancels in the softmax) and compute log p as shifted - log(sum(exp(shifted)))
    (the log-sum-exp trick) instead of log(exp(...) / ...). Lesson 3, section 3.
    """
    # TODO
    raise NotImplementedError


def softmax_cross_entropy_backward(dloss, cache):
    """dL/d(logits): (p - one_hot(targets)) / N, times the upstream gradient dloss (a float).

    Inputs:
    - dloss: a float, the gradient of the final objective with respect to the loss (1.0 when the
      loss is the objective itself)
    - cache: what softmax_cross_entropy_forward returned

    Returns dlogits, an array (N, C). Hint: p[i, targets[i]] - 1 at each row's target.
    """
    # TODO
    raise NotImplementedError
