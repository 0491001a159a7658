"""Comparisons and logic: ``==``, ``<``, ``&``, ``~`` ... give bool tensors, as in PyTorch.

Their results are outside the graph (never recorded, requires_grad False): a comparison
is a step function, flat wherever it is differentiable, so no gradient flows through
it. Floor division (``//``) is here too for the same reason: floor(a / b) is constant
between its jumps, so as a constant its gradient contribution, zero, is the right one.

Since ``==`` compares values, a Tensor hashes by identity (as in PyTorch), and the
truth of a tensor of several values is an error: ``if pred == y:`` must not be
silently true.
"""

from . import backend
from .ops import check_integer_divisor
from .promotion import promoted
from .tensor import Tensor, as_tensor


def _outside_graph(xp_function, reflected=False, check=None):
    """A binary operator that computes ``xp_function`` on the promoted operands' arrays."""

    def method(self, other):
        pair = promoted(self, other)
        if pair is NotImplemented:
            return NotImplemented  # Python then tries the other side, or == falls back to `is`
        a, b = pair[::-1] if reflected else pair
        if check is not None:
            check(a, b)
        return Tensor(getattr(backend.xp_of(a.data), xp_function)(a.data, b.data))

    return method


def _check_logical(a, b):
    if a.dtype.kind not in "biu" or b.dtype.kind not in "biu":
        raise TypeError(f"&, | and ^ need bool or integer tensors (as in PyTorch), got {a.dtype} and {b.dtype}; "
                        "compare first, e.g. (x > 0) & (y > 0)")


def _invert(self):
    if self.dtype.kind not in "biu":
        raise TypeError(f"~ needs a bool or integer tensor (as in PyTorch), got {self.dtype}; "
                        "for a mask of the others compare first, e.g. ~(x > 0)")
    return Tensor(backend.xp_of(self.data).invert(self.data))


def _truth(self):
    if self.data.size != 1:
        raise RuntimeError(f"the truth value of a tensor of {self.data.size} values is ambiguous; "
                           "use .any() or .all()")
    return bool(self.data)


def eq(x, other):
    return as_tensor(x) == other


def ne(x, other):
    return as_tensor(x) != other


def lt(x, other):
    return as_tensor(x) < other


def le(x, other):
    return as_tensor(x) <= other


def gt(x, other):
    return as_tensor(x) > other


def ge(x, other):
    return as_tensor(x) >= other


def isclose(x, other, rtol=1e-05, atol=1e-08, equal_nan=False):
    """|x - other| <= atol + rtol * |other|, entry by entry, as a bool tensor."""
    a, b = promoted(as_tensor(x), other)
    return Tensor(backend.xp_of(a.data).isclose(a.data, b.data, rtol=rtol, atol=atol, equal_nan=equal_nan))


def allclose(x, other, rtol=1e-05, atol=1e-08, equal_nan=False):
    """True if every entry is close (see ``isclose``): a Python bool, as in PyTorch."""
    return bool(isclose(x, other, rtol, atol, equal_nan).data.all())


def equal(x, other):
    """True if both have the same shape and the same values: a Python bool, as in PyTorch."""
    x, other = as_tensor(x), as_tensor(other)
    return x.shape == other.shape and bool((x == other).data.all())


Tensor.__eq__ = _outside_graph("equal")
Tensor.__ne__ = _outside_graph("not_equal")
Tensor.__lt__ = _outside_graph("less")
Tensor.__le__ = _outside_graph("less_equal")
Tensor.__gt__ = _outside_graph("greater")
Tensor.__ge__ = _outside_graph("greater_equal")
Tensor.__hash__ = object.__hash__  # identity, as before == compared values (and as in PyTorch)
Tensor.__bool__ = _truth
Tensor.__and__ = Tensor.__rand__ = _outside_graph("bitwise_and", check=_check_logical)
Tensor.__or__ = Tensor.__ror__ = _outside_graph("bitwise_or", check=_check_logical)
Tensor.__xor__ = Tensor.__rxor__ = _outside_graph("bitwise_xor", check=_check_logical)
Tensor.__invert__ = _invert
Tensor.__floordiv__ = _outside_graph("floor_divide", check=lambda a, b: check_integer_divisor(b))
Tensor.__rfloordiv__ = _outside_graph("floor_divide", reflected=True, check=lambda a, b: check_integer_divisor(b))
for _function in (eq, ne, lt, le, gt, ge, isclose, allclose, equal):
    setattr(Tensor, _function.__name__, _function)
