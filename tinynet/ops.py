"""Elementary operations: arithmetic, reductions and reshapes, each a Function.

Every ``backward`` here is the derivative of its ``forward`` written out by hand.
Broadcasting is undone by the engine (``tensor._unbroadcast``), so a backward
may return a gradient in the broadcast shape.

At the bottom these operations are attached to ``Tensor`` as methods and
operators, so ``a * b + c`` builds the graph.
"""

from . import backend
from .tensor import Function, Tensor


class Add(Function):
    def forward(self, a, b):
        return a + b

    def backward(self, grad):
        return grad, grad


class Sub(Function):
    def forward(self, a, b):
        return a - b

    def backward(self, grad):
        return grad, -grad


class Mul(Function):
    def forward(self, a, b):
        self.save_for_backward(a, b)
        return a * b

    def backward(self, grad):
        a, b = self.saved_arrays
        return grad * b, grad * a


class Div(Function):
    def forward(self, a, b):
        self.save_for_backward(a, b)
        return a / b

    def backward(self, grad):
        a, b = self.saved_arrays
        grad_a = grad / b
        return grad_a, -grad_a * a / b


class Neg(Function):
    def forward(self, a):
        return -a

    def backward(self, grad):
        return (-grad,)


class Pow(Function):
    """``a ** exponent`` for a constant exponent."""

    def __init__(self, exponent):
        # A NumPy scalar exponent (np.float64(2)) would promote float32 to float64;
        # as a Python number it follows the array's dtype, like the other operators.
        self.exponent = exponent.item() if hasattr(exponent, "item") else exponent

    def forward(self, a):
        self.save_for_backward(a)
        return a**self.exponent

    def backward(self, grad):
        (a,) = self.saved_arrays
        return (grad * self.exponent * a ** (self.exponent - 1),)


class MatMul(Function):
    def forward(self, a, b):
        if a.ndim < 2 or b.ndim < 2:
            raise ValueError(f"matmul needs arrays of 2 or more dimensions, got shapes {a.shape} and {b.shape}")
        self.save_for_backward(a, b)
        return a @ b

    def backward(self, grad):
        a, b = self.saved_arrays
        return grad @ b.swapaxes(-1, -2), a.swapaxes(-1, -2) @ grad


class Exp(Function):
    def forward(self, a):
        out = backend.xp_of(a).exp(a)
        self.save_for_backward(out)
        return out

    def backward(self, grad):
        (out,) = self.saved_arrays
        return (grad * out,)


class Log(Function):
    def forward(self, a):
        self.save_for_backward(a)
        return backend.xp_of(a).log(a)

    def backward(self, grad):
        (a,) = self.saved_arrays
        return (grad / a,)


class ReLU(Function):
    def forward(self, a):
        out = backend.xp_of(a).maximum(a, 0)
        self.save_for_backward(out)
        return out

    def backward(self, grad):
        (out,) = self.saved_arrays
        return (grad * (out > 0),)


class Sum(Function):
    def __init__(self, axis=None, keepdims=False):
        self.axis, self.keepdims = axis, keepdims

    def forward(self, a):
        self.input_shape = a.shape
        return a.sum(axis=self.axis, keepdims=self.keepdims)

    def backward(self, grad):
        grad = _restore_reduced_axes(grad, self.input_shape, self.axis, self.keepdims)
        return (backend.xp_of(grad).broadcast_to(grad, self.input_shape).copy(),)


class Mean(Sum):
    def forward(self, a):
        total = super().forward(a)
        self.count = a.size // max(1, total.size)
        return total / a.dtype.type(self.count)

    def backward(self, grad):
        return super().backward(grad / grad.dtype.type(self.count))


class Max(Function):
    """Maximum over an axis; the gradient goes to the first maximum of each slice."""

    def __init__(self, axis=None, keepdims=False):
        if axis is not None and not isinstance(axis, int):
            raise TypeError(f"max takes one axis (an int) or None, got {axis!r}")
        self.axis, self.keepdims = axis, keepdims

    def forward(self, a):
        xp = backend.xp_of(a)
        flat = a.reshape(-1) if self.axis is None else a
        axis = 0 if self.axis is None else self.axis
        winner = xp.expand_dims(flat.argmax(axis=axis), axis)
        positions = xp.arange(flat.shape[axis]).reshape([-1 if i == axis % flat.ndim else 1 for i in range(flat.ndim)])
        self.save_for_backward((positions == winner).reshape(a.shape))
        return a.max(axis=self.axis, keepdims=self.keepdims)

    def backward(self, grad):
        (is_winner,) = self.saved_arrays
        grad = _restore_reduced_axes(grad, is_winner.shape, self.axis, self.keepdims)
        return (grad * is_winner,)


def _restore_reduced_axes(grad, input_shape, axis, keepdims):
    """Give a reduced gradient back its reduced axes (as size 1) so it broadcasts."""
    if keepdims or axis is None:
        return grad.reshape([1] * len(input_shape)) if axis is None else grad
    axes = (axis,) if isinstance(axis, int) else axis
    axes = sorted(a % len(input_shape) for a in axes)
    shape = list(grad.shape)
    for a in axes:
        shape.insert(a, 1)
    return grad.reshape(shape)


# -- Tensor methods and operators ---------------------------------------------


def _operand(value, like):
    """A Tensor for the other side of a binary operator, on ``like``'s device and,
    for plain numbers, in its dtype (so ``x * 2`` stays float32)."""
    if isinstance(value, Tensor):
        return value
    dtype = like.dtype if like.dtype.kind == "f" else None  # int tensor * 0.5 promotes to float
    return Tensor(backend.xp_of(like.data).asarray(value, dtype=dtype))


def _binary(function_class, swap=False):
    def method(self, other):
        other = _operand(other, self)
        return function_class()(other, self) if swap else function_class()(self, other)

    return method


Tensor.__add__, Tensor.__radd__ = _binary(Add), _binary(Add, swap=True)
Tensor.__sub__, Tensor.__rsub__ = _binary(Sub), _binary(Sub, swap=True)
Tensor.__mul__, Tensor.__rmul__ = _binary(Mul), _binary(Mul, swap=True)
Tensor.__truediv__, Tensor.__rtruediv__ = _binary(Div), _binary(Div, swap=True)
Tensor.__matmul__, Tensor.__rmatmul__ = _binary(MatMul), _binary(MatMul, swap=True)
Tensor.__neg__ = lambda self: Neg()(self)
Tensor.__pow__ = lambda self, exponent: Pow(exponent)(self)
Tensor.exp = lambda self: Exp()(self)
Tensor.log = lambda self: Log()(self)
Tensor.relu = lambda self: ReLU()(self)
Tensor.sum = lambda self, axis=None, keepdims=False: Sum(axis, keepdims)(self)
Tensor.mean = lambda self, axis=None, keepdims=False: Mean(axis, keepdims)(self)
Tensor.max = lambda self, axis=None, keepdims=False: Max(axis, keepdims)(self)
Tensor.argmax = lambda self, axis=None: Tensor(self.data.argmax(axis=axis))
