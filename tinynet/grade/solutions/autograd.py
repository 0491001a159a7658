"""Reference solution: the autograd assignment (tutorials/assignments/autograd.py)."""

import numpy as np

from tinynet import Function


def unbroadcast(grad, shape):
    grad = grad.sum(axis=tuple(range(grad.ndim - len(shape))))
    stretched = tuple(axis for axis, size in enumerate(shape) if size == 1 and grad.shape[axis] != 1)
    return grad.sum(axis=stretched, keepdims=True)


class Mul(Function):
    def forward(self, a, b):
        self.save_for_backward(a, b)
        return a * b

    def backward(self, grad):
        a, b = self.saved_arrays
        return unbroadcast(grad * b, a.shape), unbroadcast(grad * a, b.shape)


class Exp(Function):
    def forward(self, a):
        out = np.exp(a)
        self.save_for_backward(out)
        return out

    def backward(self, grad):
        (out,) = self.saved_arrays
        return (grad * out,)


class Log(Function):
    def forward(self, a):
        self.save_for_backward(a)
        return np.log(a)

    def backward(self, grad):
        (a,) = self.saved_arrays
        return (grad / a,)


class Sum(Function):
    def __init__(self, axis=None, keepdims=False):
        self.axis, self.keepdims = axis, keepdims

    def forward(self, a):
        self.input_shape = a.shape
        return a.sum(axis=self.axis, keepdims=self.keepdims)

    def backward(self, grad):
        if not self.keepdims:
            axes = tuple(range(len(self.input_shape))) if self.axis is None else self.axis
            grad = np.expand_dims(grad, axes)
        return (np.broadcast_to(grad, self.input_shape).copy(),)


class MatMul(Function):
    def forward(self, a, b):
        self.save_for_backward(a, b)
        return a @ b

    def backward(self, grad):
        a, b = self.saved_arrays
        return grad @ b.T, a.T @ grad


def topological_order(root):
    """Kahn's algorithm: emit a Function once every Function consuming its output is emitted."""
    consumers, stack, seen = {}, [root.creator], {root.creator}
    while stack:
        function = stack.pop()
        for tensor in function.inputs:
            if tensor.creator is not None:
                consumers[tensor.creator] = consumers.get(tensor.creator, 0) + 1
                if tensor.creator not in seen:
                    seen.add(tensor.creator)
                    stack.append(tensor.creator)
    order, ready = [], [root.creator]
    while ready:
        function = ready.pop()
        order.append(function)
        for tensor in function.inputs:
            if tensor.creator is not None:
                consumers[tensor.creator] -= 1
                if consumers[tensor.creator] == 0:
                    ready.append(tensor.creator)
    return order
