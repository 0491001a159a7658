"""In-place operations: ``x += y``, ``x.mul_(2)``, ``x[mask] = 0``, ``w.zero_()`` ...

They change a tensor's array where it lies, so the tensor stays the same object: a weight
updated by ``with no_grad(): w -= lr * w.grad`` is still the Parameter its Module holds.

The graph records no in-place operation (the engine stays first-order and simple), so the
rules are PyTorch's, made strict where PyTorch would track the change:
- a leaf that requires grad may change only under ``no_grad`` (a weight update);
- a tensor computed inside a graph may not change at all, and neither may a tensor change
  by an operand that requires grad: both would need the change recorded;
- a tensor that a recorded operation has read may still change (a running buffer), but then
  that operation's backward refuses to run (tensor.py counts each tensor's changes).
"""

import operator

import numpy as np

from . import backend
from .ops import clamp
from .shapes import _array_index
from .tensor import Tensor, as_tensor, is_grad_enabled, no_grad


def _check_may_change(tensor, operand=None):
    if tensor.creator is not None:
        raise RuntimeError(
            "tinynet does not record in-place operations, and this tensor was computed inside a graph; "
            "write the out-of-place form (x = x + y, x = x.clamp(...)) instead"
        )
    if not is_grad_enabled():
        return
    if tensor.requires_grad:
        raise RuntimeError(
            "a leaf tensor that requires grad cannot change in place while gradients are recorded "
            "(as in PyTorch); update weights inside `with tinynet.no_grad():`"
        )
    if isinstance(operand, Tensor) and operand.requires_grad:
        raise RuntimeError(
            "tinynet does not record in-place operations, and the operand requires grad; "
            "write x = x + y to have the result in the graph"
        )


def _write(tensor, result, index=Ellipsis):
    """Store ``result`` into ``tensor``'s array (at ``index``) in the tensor's own dtype."""
    array = result.data if isinstance(result, Tensor) else result
    dtype = getattr(array, "dtype", None)
    # float into float and int into int or float pass (x += 2.0 on float32); a float result
    # into an int tensor does not (PyTorch raises for int += 0.5).
    if dtype is not None and not np.can_cast(dtype, tensor.dtype, casting="same_kind"):
        raise RuntimeError(f"an in-place result of dtype {dtype} cannot be stored in a tensor of dtype "
                           f"{tensor.dtype} (as in PyTorch); use the out-of-place form, x = x + y")
    tensor.data[index] = array
    tensor._version += 1
    return tensor


def _in_place(out_of_place):
    """The in-place form of a binary operator: the out-of-place result, written back. (A
    TypeError for an operand that is no number, rather than NotImplemented, after which Python
    would compute x = x + y and silently rebind x to a new tensor.)"""

    def method(self, other):
        _check_may_change(self, other)
        with no_grad():
            return _write(self, out_of_place(self, other))

    return method


_iadd, _isub = _in_place(operator.add), _in_place(operator.sub)


def _add_(self, other, *, alpha=1):
    """``x.add_(y, alpha=a)`` adds a * y, as ``p.add_(p.grad, alpha=-lr)`` does in PyTorch code."""
    return _iadd(self, other if alpha == 1 else as_tensor(other) * alpha)


def _sub_(self, other, *, alpha=1):
    return _isub(self, other if alpha == 1 else as_tensor(other) * alpha)


def _zero_(self):
    _check_may_change(self)
    return _write(self, self.data.dtype.type(0))


def _fill_(self, value):
    _check_may_change(self, value)
    return _write(self, value.data if isinstance(value, Tensor) else value)


def _copy_(self, source):
    """Copy ``source``'s values (broadcast to this shape, cast to this dtype) into this tensor."""
    _check_may_change(self, source)
    source = source.data if isinstance(source, Tensor) else source
    self.data[...] = source  # a copy_ casts as PyTorch's does, float64 into float32 included
    self._version += 1
    return self


def _clamp_(self, min=None, max=None):
    _check_may_change(self)
    with no_grad():
        return _write(self, clamp(self, min, max))


def _setitem(self, index, value):
    _check_may_change(self, value)
    _write(self, value.data if isinstance(value, Tensor) else value, _array_index(index, self.data))


def _masked_fill_(self, mask, value):
    """``x[mask] = value`` with the bool mask broadcast to x's shape, as torch's masked_fill_."""
    mask = mask.data if isinstance(mask, Tensor) else mask
    if getattr(mask, "dtype", None) != np.bool_:
        raise TypeError(f"masked_fill_: the mask must be a bool tensor, got {getattr(mask, 'dtype', type(mask))}")
    if np.broadcast_shapes(mask.shape, self.shape) != self.shape:
        raise RuntimeError(f"masked_fill_: a mask of shape {mask.shape} would grow the tensor of shape {self.shape}; "
                           "expected a mask that broadcasts to the tensor's shape")
    _setitem(self, backend.xp_of(mask).broadcast_to(mask, self.shape), value)
    return self


Tensor.__iadd__, Tensor.add_ = _iadd, _add_
Tensor.__isub__, Tensor.sub_ = _isub, _sub_
Tensor.__imul__ = Tensor.mul_ = _in_place(operator.mul)
Tensor.__itruediv__ = Tensor.div_ = _in_place(operator.truediv)
Tensor.__ipow__ = Tensor.pow_ = _in_place(operator.pow)
Tensor.__ifloordiv__ = _in_place(operator.floordiv)
Tensor.__imod__ = _in_place(operator.mod)
Tensor.__iand__ = _in_place(operator.and_)
Tensor.__ior__ = _in_place(operator.or_)
Tensor.__ixor__ = _in_place(operator.xor)
Tensor.zero_ = _zero_
Tensor.fill_ = _fill_
Tensor.copy_ = _copy_
Tensor.clamp_ = _clamp_
Tensor.__setitem__ = _setitem
Tensor.masked_fill_ = _masked_fill_
