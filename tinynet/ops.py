"""Elementwise operations: arithmetic and math functions, each a Function.

Every ``backward`` here is the derivative of its ``forward`` written out by hand.
Broadcasting is undone by the engine (``tensor._unbroadcast``), so a backward
may return a gradient in the broadcast shape. Where a derivative is undefined at
a point (abs at 0, clamp at its bounds) the value PyTorch uses is given.

At the bottom these operations are attached to ``Tensor`` as methods and
operators, so ``a * b + c`` builds the graph; the math functions are also
top-level functions (``tinynet.exp(x)``), as in PyTorch.
"""

import numbers

from . import backend
from .promotion import cast, floating, number_dtype, promoted
from .tensor import Function, Tensor, as_tensor

# -- arithmetic -------------------------------------------------------------------------


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


class Remainder(Function):
    """a % b with the sign of b (Python's and PyTorch's rule): a - b * floor(a / b)."""

    def forward(self, a, b):
        check_integer_divisor(b)
        self.save_for_backward(a, b)
        return backend.xp_of(a).remainder(a, b)

    def backward(self, grad):
        a, b = self.saved_arrays
        return grad, -grad * backend.xp_of(a).floor_divide(a, b)


def check_integer_divisor(b):
    # NumPy gives 0 with a warning; PyTorch raises, and a silent 0 would be a wrong answer.
    if b.dtype.kind in "biu" and (b == 0).any():
        raise ZeroDivisionError("integer division or modulo by zero")


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
        if self.exponent == 0:  # a ** 0 is 1 everywhere, also at a = 0 where a ** -1 is inf
            return (grad * 0,)
        return (grad * self.exponent * a ** (self.exponent - 1),)


class PowByTensor(Function):
    """``a ** b`` for a tensor exponent: d/da = b a^(b-1), d/db = a^b log(a).

    Where the formulas are 0 * inf, PyTorch takes 0: d/da where b = 0, and d/db where
    a = 0 and b >= 0 (0 ** b is constant 0 or 1 there). A negative base has no real
    logarithm: its d/db is nan, with NumPy's warning.
    """

    def forward(self, a, b):
        out = a**b
        self.save_for_backward(a, b, out)
        return out

    def backward(self, grad):
        a, b, out = self.saved_arrays
        xp = backend.xp_of(a)
        # b a^(b-1) is 0 where b = 0; a^1 there keeps 0 ** -1 (inf) out of the product.
        grad_a = grad * b * a ** xp.where(b == 0, 1, b - 1)
        at_zero = a == 0
        # log 0 = -inf (taken without NumPy's warning), but 0 where 0 ** b is flat (b >= 0)
        log_a = xp.where(at_zero, xp.where(b >= 0, 0, -xp.inf), xp.log(xp.where(at_zero, 1, a)))
        return grad_a, (grad * out * log_a).astype(grad.dtype)


class MatMul(Function):
    def forward(self, a, b):
        if a.ndim < 2 or b.ndim < 2:
            raise ValueError(f"matmul needs arrays of 2 or more dimensions, got shapes {a.shape} and {b.shape}")
        self.save_for_backward(a, b)
        return a @ b

    def backward(self, grad):
        a, b = self.saved_arrays
        return grad @ b.swapaxes(-1, -2), a.swapaxes(-1, -2) @ grad


# -- math functions ---------------------------------------------------------------------


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


class Sqrt(Function):
    """The gradient 1 / (2 sqrt(a)) is inf at a = 0, as in PyTorch."""

    def forward(self, a):
        out = backend.xp_of(a).sqrt(a)
        self.save_for_backward(out)
        return out

    def backward(self, grad):
        (out,) = self.saved_arrays
        return (grad / (2 * out),)


class Abs(Function):
    """The gradient is sign(a), 0 at a = 0 as in PyTorch."""

    def forward(self, a):
        self.save_for_backward(a)
        return backend.xp_of(a).abs(a)

    def backward(self, grad):
        (a,) = self.saved_arrays
        return (grad * backend.xp_of(a).sign(a),)


class Tanh(Function):
    def forward(self, a):
        out = backend.xp_of(a).tanh(a)
        self.save_for_backward(out)
        return out

    def backward(self, grad):
        (out,) = self.saved_arrays
        return (grad * (1 - out * out),)


class Sigmoid(Function):
    """1 / (1 + e^-a), computed from e^-|a| so that no exponential overflows: for a < 0 it
    is written e^a / (1 + e^a), the same number."""

    def forward(self, a):
        xp = backend.xp_of(a)
        e = xp.exp(-xp.abs(a))
        out = xp.where(a >= 0, 1 / (1 + e), e / (1 + e))
        self.save_for_backward(out)
        return out

    def backward(self, grad):
        (out,) = self.saved_arrays
        return (grad * out * (1 - out),)


class ReLU(Function):
    def forward(self, a):
        out = backend.xp_of(a).maximum(a, 0)
        self.save_for_backward(out)
        return out

    def backward(self, grad):
        (out,) = self.saved_arrays
        return (grad * (out > 0),)


class Clamp(Function):
    """a limited to [low, high] (either may be None). The gradient passes where
    low <= a <= high, bounds included, as in PyTorch; if low > high every entry is high."""

    def __init__(self, low=None, high=None):
        self.low, self.high = low, high

    def forward(self, a):
        xp = backend.xp_of(a)
        out = a if self.low is None else xp.maximum(a, self.low)
        out = out if self.high is None else xp.minimum(out, self.high)
        inside = xp.ones(a.shape, dtype=bool)
        if self.low is not None:
            inside &= a >= self.low
        if self.high is not None:
            inside &= a <= self.high
        self.save_for_backward(inside)
        return out

    def backward(self, grad):
        (inside,) = self.saved_arrays
        return (grad * inside,)


class Maximum(Function):
    """The larger of a and b, entry by entry; the gradient goes to the larger one, half to
    each where they are equal (as in PyTorch)."""

    def forward(self, a, b):
        self.save_for_backward(a, b)
        return backend.xp_of(a).maximum(a, b)

    def backward(self, grad):
        a, b = self.saved_arrays
        return _to_winners(grad, a > b, a < b, a == b)


class Minimum(Function):
    def forward(self, a, b):
        self.save_for_backward(a, b)
        return backend.xp_of(a).minimum(a, b)

    def backward(self, grad):
        a, b = self.saved_arrays
        return _to_winners(grad, a < b, a > b, a == b)


def _to_winners(grad, a_wins, b_wins, tie):
    half = grad * tie * 0.5
    return grad * a_wins + half, grad * b_wins + half


# -- the PyTorch surface ----------------------------------------------------------------


def _binary(function_class, reflected=False, true_division=False):
    def method(self, other):
        pair = promoted(self, other)
        if pair is NotImplemented:
            return NotImplemented
        a, b = (floating(t) for t in pair) if true_division else pair
        return function_class()(b, a) if reflected else function_class()(a, b)

    return method


def pow(x, exponent):
    """x ** exponent. Either may be a tensor (``pow(2, x)`` too); the gradient reaches every
    tensor that requires one."""
    if not isinstance(exponent, Tensor):
        x = as_tensor(x)
    if isinstance(exponent, numbers.Number):
        dtype = number_dtype(exponent, x.dtype)  # int tensor ** 0.5 is float32
        return Pow(exponent)(x if dtype == x.dtype else Tensor(x.data.astype(dtype)))
    pair = promoted(x, exponent)
    if pair is NotImplemented:
        raise TypeError(f"pow() takes numbers or tensors, got {type(x).__name__} and {type(exponent).__name__}")
    return PowByTensor()(*pair)


def exp(x):
    return Exp()(floating(x))


def log(x):
    return Log()(floating(x))


def sqrt(x):
    return Sqrt()(floating(x))


def tanh(x):
    return Tanh()(floating(x))


def sigmoid(x):
    return Sigmoid()(floating(x))


def abs(x):
    return Abs()(x)


def clamp(x, min=None, max=None):
    """x limited to [min, max]; either bound may be None, not both. Integer tensors with
    a float bound become float32, as in PyTorch."""
    x = as_tensor(x)
    if min is None and max is None:
        raise ValueError("clamp() needs min or max (or both), got neither")
    bounds = [bound for bound in (min, max) if bound is not None]
    for bound in bounds:
        if not isinstance(bound, numbers.Number):
            raise TypeError(f"clamp() takes numbers as min and max, got {type(bound).__name__}; "
                            "for bounds that are tensors use tinynet.maximum and tinynet.minimum")
    for bound in bounds:
        x = cast(x, number_dtype(bound, x.dtype))
    return Clamp(*(None if b is None else b.item() if hasattr(b, "item") else b for b in (min, max)))(x)


clip = clamp


def maximum(a, b):
    """The larger of a and b, entry by entry (both tensors, as in PyTorch)."""
    return Maximum()(*_tensor_pair("maximum", a, b))


def minimum(a, b):
    return Minimum()(*_tensor_pair("minimum", a, b))


def _tensor_pair(op, a, b):
    if not isinstance(a, Tensor) or not isinstance(b, Tensor):
        raise TypeError(f"{op}() takes two tensors (as in PyTorch), got {type(a).__name__} and "
                        f"{type(b).__name__}; for a number bound use clamp(min=...) or clamp(max=...)")
    return promoted(a, b)


Tensor.__add__, Tensor.__radd__ = _binary(Add), _binary(Add, reflected=True)
Tensor.__sub__, Tensor.__rsub__ = _binary(Sub), _binary(Sub, reflected=True)
Tensor.__mul__, Tensor.__rmul__ = _binary(Mul), _binary(Mul, reflected=True)
Tensor.__truediv__ = _binary(Div, true_division=True)
Tensor.__rtruediv__ = _binary(Div, reflected=True, true_division=True)
Tensor.__mod__, Tensor.__rmod__ = _binary(Remainder), _binary(Remainder, reflected=True)
Tensor.__matmul__, Tensor.__rmatmul__ = _binary(MatMul), _binary(MatMul, reflected=True)
Tensor.__neg__ = lambda self: Neg()(self)
Tensor.__abs__ = abs
Tensor.__pow__ = pow
Tensor.__rpow__ = lambda self, base: pow(base, self)
Tensor.relu = lambda self: ReLU()(self)
Tensor.clamp = Tensor.clip = clamp
for _function in (pow, exp, log, sqrt, tanh, sigmoid, abs, maximum, minimum):
    setattr(Tensor, _function.__name__, _function)


def matmul(a, b):
    return as_tensor(a) @ b


def mm(a, b):
    """Matrix product of two 2-D tensors (torch.mm); matmul also takes batches."""
    a = as_tensor(a)
    if a.ndim != 2 or as_tensor(b).ndim != 2:
        raise ValueError(f"mm multiplies 2-D tensors, got shapes {a.shape} and {as_tensor(b).shape}; use matmul")
    return a @ b


Tensor.matmul, Tensor.mm = matmul, mm
