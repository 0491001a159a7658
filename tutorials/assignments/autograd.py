"""Assignment 1: the autograd engine (goes with lesson 1, checked with the tools of lesson 2).

Write the backward pass of five operations as tinynet Functions, and the order in which
``Tensor.backward()`` visits a graph. Each Function works on raw NumPy arrays:

* ``forward(self, *arrays)`` computes the output and keeps what backward needs with
  ``self.save_for_backward(...)`` (read it back as ``self.saved_arrays``);
* ``backward(self, grad)`` receives dL/d(output), an array of the output's shape, and returns a
  tuple with dL/d(input) for each input, each of that input's shape.

Replace every ``raise NotImplementedError`` with your code, then grade your file:

    python -m tinynet.grade autograd

Your Functions mix with tinynet's own: ``Mul()(x, w)`` on Tensors records a graph, and
``loss.backward()`` calls your backward. The engine would sum a broadcast gradient back for
you; here you do it yourself (``unbroadcast``), and the grader calls your backward directly.
"""

import numpy as np

from tinynet import Function


def unbroadcast(grad, shape):
    """Sum ``grad`` back to ``shape``, undoing NumPy's broadcasting in the forward pass.

    When ``a`` of shape (3, 1) is multiplied by ``b`` of shape (2, 3, 4), the product has shape
    (2, 3, 4): ``a`` was repeated along a new leading axis and along its size-1 axis. Each copy
    of an entry of ``a`` contributed to the loss, so dL/da sums the gradient over the copies.

    Inputs:
    - grad: array of the broadcast shape, e.g. (2, 3, 4)
    - shape: the input's shape, e.g. (3, 1); it may be () for a scalar

    Returns an array of exactly ``shape``: (2, 3, 4) -> (3, 1) sums over axis 0 (the new leading
    axis) and over axis 2 (size 1 in ``shape``), keeping the latter as a size-1 axis.

    Hint: first sum away the leading axes broadcasting added (grad.ndim - len(shape) of them),
    then sum with keepdims=True over the axes where ``shape`` has 1 and ``grad`` does not.
    """
    # TODO: sum grad down to shape.
    raise NotImplementedError


class Mul(Function):
    """out = a * b elementwise, with NumPy broadcasting (a and b may differ in shape).

    dL/da = grad * b and dL/db = grad * a, each summed back to its input's shape.
    """

    def forward(self, a, b):
        # TODO: keep a and b for backward, return the product.
        raise NotImplementedError

    def backward(self, grad):
        # TODO: return (dL/da, dL/db), each of its input's shape (use unbroadcast).
        raise NotImplementedError


class Exp(Function):
    """out = exp(a); d out / da = exp(a), which is the output: keep the output, not a."""

    def forward(self, a):
        # TODO
        raise NotImplementedError

    def backward(self, grad):
        # TODO: return a tuple with one gradient. Chain rule: multiply by grad.
        raise NotImplementedError


class Log(Function):
    """out = log(a) for a > 0; d out / da = 1 / a."""

    def forward(self, a):
        # TODO
        raise NotImplementedError

    def backward(self, grad):
        # TODO
        raise NotImplementedError


class Sum(Function):
    """out = a.sum(axis=axis, keepdims=keepdims), as NumPy's sum.

    ``axis`` is None (every axis: the output is a scalar), an int (negative counts from the
    end) or a tuple of ints. Every entry of ``a`` adds to exactly one output entry with weight
    1, so dL/da[i] is the gradient of the output entry that a[i] went into: broadcast ``grad``
    back over the summed axes. With keepdims=False the summed axes are gone from ``grad``: put
    them back as size-1 axes first (np.expand_dims), then np.broadcast_to(..., input shape).
    """

    def __init__(self, axis=None, keepdims=False):
        self.axis, self.keepdims = axis, keepdims

    def forward(self, a):
        # TODO: remember a's shape (an attribute of self is fine: it is not an array).
        raise NotImplementedError

    def backward(self, grad):
        # TODO: return a tuple with one array of a's shape.
        raise NotImplementedError


class MatMul(Function):
    """out = a @ b for matrices a (n, k) and b (k, m); out is (n, m).

    dL/da = grad @ b.T, of shape (n, k); dL/db = a.T @ grad, of shape (k, m).
    Hint: if you forget which side the transpose goes on, let the shapes tell you.
    """

    def forward(self, a, b):
        # TODO
        raise NotImplementedError

    def backward(self, grad):
        # TODO
        raise NotImplementedError


def topological_order(root):
    """The Functions that produced the Tensor ``root``, in the order backward must visit them.

    A Function may run its backward only once the gradient of its output is complete, that is,
    after every Function that used its output has run. So return a list in which
    - every Function reachable from ``root.creator`` appears exactly once, root.creator first;
    - each Function comes before every Function that feeds it (an input's creator).

    The graph: ``tensor.creator`` is the Function that made a tensor (None for a leaf you made);
    ``function.inputs`` are the tensors it was called on (each has ``.creator``). A tensor can
    feed several Functions, so the graph is a DAG, not a tree.

    Lesson 1 (section 4) builds this order by a depth-first search. Write it another way here:
    Kahn's algorithm. First count, for every Function, how many Functions consume its output
    (walk the graph once with an explicit stack). Then start from root.creator and emit a
    Function once its count of consumers not yet emitted reaches 0. Any correct order passes.

    Do not recurse: the grader builds a graph 5,000 operations deep, beyond Python's
    recursion limit. Use a list as a stack (or collections.deque as a queue).
    """
    # TODO
    raise NotImplementedError
