"""Reductions: sum, mean, max, min, var, std, norm, argmax, ... over some dims or all of them.

Every reduction takes PyTorch's ``dim=`` and ``keepdim=`` or NumPy's ``axis=`` and
``keepdims=`` (one spelling per argument), one dim or a tuple of dims, negative dims
counted from the end; no dim reduces over all of them.

The backward of a reduction gives the reduced gradient its reduced dims back (as
size 1) and spreads it over the entries that made each result: all of them for a
sum, the winner for a max.

At the bottom these are attached to ``Tensor`` as methods (``x.sum(dim=1)``); they are
also top-level functions (``tinynet.sum(x, dim=1)``), as in PyTorch. So here ``sum``,
``max``, ``min``, ``all`` and ``any`` are these functions, not Python's builtins.
"""

import math
import numbers
from typing import NamedTuple

from . import backend
from .ops import maximum, minimum
from .tensor import Function, Tensor, as_tensor

# -- which dims: PyTorch's and NumPy's spellings --------------------------------------


def _reduced_dims(op, ndim, dim, axis):
    """None (every dim) or the sorted tuple of non-negative dims to reduce."""
    if dim is not None and axis is not None:
        raise TypeError(f"{op}() got dim={dim!r} and axis={axis!r}: they are one argument "
                        "(PyTorch's name and NumPy's), pass only one")
    dim = axis if dim is None else dim
    if dim is None:
        return None
    dims = tuple(dim) if isinstance(dim, (tuple, list)) else (dim,)
    if not dims:
        raise ValueError(f"{op}(dim=()) is ambiguous: PyTorch reduces over every dim, NumPy over none; "
                         "pass dim=None to reduce over every dim")
    for d in dims:
        if isinstance(d, bool) or not isinstance(d, numbers.Integral):
            raise TypeError(f"{op}(): dim must be an int or a tuple of ints, got {dim!r}")
        if ndim == 0:
            raise IndexError(f"{op}(): a 0-dim tensor has no dim {d} to reduce over (PyTorch allows 0 and -1); "
                             "leave dim out")
        if not -ndim <= d < ndim:
            raise IndexError(f"{op}(): dim {d} is out of range for a tensor of {ndim} dimensions "
                             f"(expected {-ndim} to {ndim - 1})")
    positive = sorted(int(d) % ndim for d in dims)
    if len(set(positive)) != len(positive):
        raise ValueError(f"{op}(): dim {dim!r} names a dim twice")
    return tuple(positive)


def _keep(op, keepdim, keepdims):
    if keepdim is not None and keepdims is not None:
        raise TypeError(f"{op}() got keepdim= and keepdims=: they are one argument "
                        "(PyTorch's name and NumPy's), pass only one")
    return bool(keepdim or keepdims)


def _one_dim(op, ndim, dim, axis):
    """The single dim of max/min/argmax along a dim, or None."""
    dims = _reduced_dims(op, ndim, dim, axis)
    if dims is not None and len(dims) > 1:
        raise TypeError(f"{op}() reduces over one dim (an int), got {dim if axis is None else axis!r}; "
                        "for the largest or smallest value over several dims use amax or amin")
    return None if dims is None else dims[0]


def _restore_reduced_dims(grad, input_shape, dims, keepdim):
    """Give a reduced gradient back its reduced dims (as size 1) so it broadcasts."""
    if keepdim:
        return grad
    return grad.reshape([1 if dims is None or i in dims else size for i, size in enumerate(input_shape)])


def _count(shape, dims):
    """How many entries each result of a reduction over ``dims`` is made of."""
    return math.prod(shape if dims is None else [shape[d] for d in dims])


def _check_floating(op, x):
    if x.dtype.kind != "f":
        raise TypeError(f"{op}() needs a floating-point tensor, got {x.dtype} (as in PyTorch); "
                        f"convert it first, e.g. x.float()")


# -- the Functions ----------------------------------------------------------------------


class Sum(Function):
    def __init__(self, dims=None, keepdim=False):
        self.dims, self.keepdim = dims, keepdim

    def forward(self, a):
        self.input_shape = a.shape
        return a.sum(axis=self.dims, keepdims=self.keepdim)

    def backward(self, grad):
        grad = _restore_reduced_dims(grad, self.input_shape, self.dims, self.keepdim)
        return (backend.xp_of(grad).broadcast_to(grad, self.input_shape).copy(),)


class Mean(Sum):
    def forward(self, a):
        self.count = _count(a.shape, self.dims)
        return super().forward(a) / a.dtype.type(self.count)

    def backward(self, grad):
        return super().backward(grad / grad.dtype.type(self.count))


class Var(Function):
    """sum((a - mean)^2) / (N - correction): correction=1 is the unbiased estimate."""

    def __init__(self, dims=None, correction=1, keepdim=False):
        self.dims, self.correction, self.keepdim = dims, correction, keepdim

    def forward(self, a):
        centered = a - a.mean(axis=self.dims, keepdims=True)
        # As in PyTorch, N <= correction divides by zero (inf or nan), with a warning.
        count = _count(a.shape, self.dims)
        self.divisor = a.dtype.type(count - self.correction if count > self.correction else 0)
        self.save_for_backward(centered)
        return (centered * centered).sum(axis=self.dims, keepdims=self.keepdim) / self.divisor

    def backward(self, grad):
        centered = self.saved_arrays[0]
        grad = _restore_reduced_dims(grad, centered.shape, self.dims, self.keepdim)
        # The mean's own dependence on a drops out: the centered entries sum to zero.
        return (grad * centered * (2 / self.divisor),)


class Std(Var):
    def forward(self, a):
        out = backend.xp_of(a).sqrt(super().forward(a))
        self.save_for_backward(*self.saved_arrays, out)
        return out

    def backward(self, grad):
        std = self.saved_arrays[1]
        xp = backend.xp_of(grad)
        # d sqrt(v) = dv / (2 sqrt(v)); where all entries are equal (std 0) PyTorch gives 0.
        positive = std > 0
        grad = xp.where(positive, grad / (2 * xp.where(positive, std, 1)), 0).astype(grad.dtype)
        return super().backward(grad)


class EuclideanNorm(Function):
    """sqrt(sum(a^2)); the gradient a / norm is taken as 0 where the norm is 0, as in PyTorch."""

    def __init__(self, dims=None, keepdim=False):
        self.dims, self.keepdim = dims, keepdim

    def forward(self, a):
        out = backend.xp_of(a).sqrt((a * a).sum(axis=self.dims, keepdims=self.keepdim))
        self.save_for_backward(a, out)
        return out

    def backward(self, grad):
        a, out = self.saved_arrays
        xp = backend.xp_of(a)
        positive = out > 0
        scale = xp.where(positive, grad / xp.where(positive, out, 1), 0).astype(grad.dtype)
        return (a * _restore_reduced_dims(scale, a.shape, self.dims, self.keepdim),)


class Amax(Function):
    """The largest entry over some dims; equal largest entries share the gradient evenly
    (as PyTorch's amax and its max over all entries do). A NaN is the largest entry and takes
    the gradient, as in PyTorch's max over all entries (its amax gives NaN gradients there)."""

    extreme = "max"

    def __init__(self, dims=None, keepdim=False):
        self.dims, self.keepdim = dims, keepdim

    def forward(self, a):
        xp = backend.xp_of(a)
        out = getattr(a, self.extreme)(axis=self.dims, keepdims=True)
        winners = (a == out) | (xp.isnan(a) & xp.isnan(out))
        self.save_for_backward(winners / winners.sum(axis=self.dims, keepdims=True).astype(a.dtype))
        return out if self.keepdim else out.reshape(_reduced_shape(a.shape, self.dims))

    def backward(self, grad):
        (share,) = self.saved_arrays
        return (_restore_reduced_dims(grad, share.shape, self.dims, self.keepdim) * share,)


class Amin(Amax):
    extreme = "min"


class MaxAlongDim(Function):
    """The values of max along one dim; the gradient goes to the entry that ``indices``
    names (the first of equal maxima), as in PyTorch. The indices are kept in
    ``self.indices`` for the caller."""

    pick = "argmax"

    def __init__(self, dim, keepdim=False):
        self.dim, self.keepdim = dim, keepdim

    def forward(self, a):
        xp = backend.xp_of(a)
        index = xp.expand_dims(getattr(a, self.pick)(axis=self.dim), self.dim)
        self.indices = (index if self.keepdim else index.squeeze(self.dim)).astype(xp.int64)
        self.input_shape = a.shape
        self.save_for_backward(index)
        values = xp.take_along_axis(a, index, axis=self.dim)
        return values if self.keepdim else values.squeeze(self.dim)

    def backward(self, grad):
        (index,) = self.saved_arrays
        xp = backend.xp_of(grad)
        if not self.keepdim:
            grad = xp.expand_dims(grad, self.dim)
        along = [-1 if i == self.dim else 1 for i in range(len(self.input_shape))]
        positions = xp.arange(self.input_shape[self.dim]).reshape(along)
        return (grad * (positions == index),)


class MinAlongDim(MaxAlongDim):
    pick = "argmin"


def _reduced_shape(shape, dims):
    return tuple(size for i, size in enumerate(shape) if dims is not None and i not in dims)


# -- the PyTorch surface ----------------------------------------------------------------


class ValuesIndices(NamedTuple):
    """What max and min along a dim return, as PyTorch's ``torch.return_types.max``."""

    values: Tensor
    indices: Tensor


def sum(x, dim=None, keepdim=None, *, axis=None, keepdims=None):
    """Sum over ``dim`` (every dim if None). Integer and bool tensors sum to int64."""
    x = as_tensor(x)
    return Sum(_reduced_dims("sum", x.ndim, dim, axis), _keep("sum", keepdim, keepdims))(x)


def mean(x, dim=None, keepdim=None, *, axis=None, keepdims=None):
    """Mean over ``dim``; integer tensors are refused, as in PyTorch (which cannot pick a dtype)."""
    x = as_tensor(x)
    _check_floating("mean", x)
    return Mean(_reduced_dims("mean", x.ndim, dim, axis), _keep("mean", keepdim, keepdims))(x)


def var(x, dim=None, unbiased=None, keepdim=None, *, correction=None, axis=None, keepdims=None):
    """Variance over ``dim``, unbiased (divided by N - 1) by default as in PyTorch, where
    NumPy's default divides by N: ``correction=0`` (or ``unbiased=False``) gives NumPy's."""
    return _spread(Var, "var", x, dim, unbiased, keepdim, correction, axis, keepdims)


def std(x, dim=None, unbiased=None, keepdim=None, *, correction=None, axis=None, keepdims=None):
    """Standard deviation over ``dim``, unbiased by default (see ``var``)."""
    return _spread(Std, "std", x, dim, unbiased, keepdim, correction, axis, keepdims)


def _spread(function_class, op, x, dim, unbiased, keepdim, correction, axis, keepdims):
    x = as_tensor(x)
    _check_floating(op, x)
    if isinstance(dim, bool):
        raise TypeError(f"{op}(): the first argument is dim; pass unbiased={dim} by name")
    if unbiased is not None and correction is not None:
        raise TypeError(f"{op}() got unbiased= and correction=: pass only one (unbiased=False is correction=0)")
    correction = (1 if unbiased is None or unbiased else 0) if correction is None else correction
    return function_class(_reduced_dims(op, x.ndim, dim, axis), correction, _keep(op, keepdim, keepdims))(x)


def norm(x, p="fro", dim=None, keepdim=None, *, axis=None, keepdims=None):
    """The 2-norm (p=2 or 'fro', the default) or 1-norm (p=1) of the entries over ``dim``
    (every entry if None), as a vector norm."""
    x = as_tensor(x)
    _check_floating("norm", x)
    dims, keep = _reduced_dims("norm", x.ndim, dim, axis), _keep("norm", keepdim, keepdims)
    if p in (2, "fro"):
        return EuclideanNorm(dims, keep)(x)
    if p == 1:
        return sum(x.abs(), dims, keep)
    raise ValueError(f"norm(): p={p!r} is not supported here; expected 2, 'fro' or 1")


def amax(x, dim=None, keepdim=None, *, axis=None, keepdims=None):
    """The largest value over ``dim`` (a tuple allowed); ties share the gradient evenly."""
    x = as_tensor(x)
    return Amax(_reduced_dims("amax", x.ndim, dim, axis), _keep("amax", keepdim, keepdims))(x)


def amin(x, dim=None, keepdim=None, *, axis=None, keepdims=None):
    x = as_tensor(x)
    return Amin(_reduced_dims("amin", x.ndim, dim, axis), _keep("amin", keepdim, keepdims))(x)


def max(x, dim=None, keepdim=None, *, axis=None, keepdims=None):
    """Without a dim, the largest value. With a dim, ``(values, indices)`` along it, as in
    PyTorch. With a tensor in place of dim, the elementwise ``maximum`` of the two."""
    return _extreme("max", Amax, MaxAlongDim, x, dim, keepdim, axis, keepdims)


def min(x, dim=None, keepdim=None, *, axis=None, keepdims=None):
    """Like ``max``, for the smallest values."""
    return _extreme("min", Amin, MinAlongDim, x, dim, keepdim, axis, keepdims)


def _extreme(op, over_all, along_dim, x, dim, keepdim, axis, keepdims):
    x = as_tensor(x)
    if isinstance(dim, Tensor):
        return (maximum if op == "max" else minimum)(x, dim)
    dim, keep = _one_dim(op, x.ndim, dim, axis), _keep(op, keepdim, keepdims)
    if dim is None:
        return over_all(None, keep)(x)
    function = along_dim(dim, keep)
    values = function(x)
    return ValuesIndices(values, Tensor(function.indices))


def argmax(x, dim=None, keepdim=None, *, axis=None, keepdims=None):
    """int64 indices of the largest values along ``dim``; of the flattened tensor if None."""
    return _position("argmax", x, dim, keepdim, axis, keepdims)


def argmin(x, dim=None, keepdim=None, *, axis=None, keepdims=None):
    return _position("argmin", x, dim, keepdim, axis, keepdims)


def _position(op, x, dim, keepdim, axis, keepdims):
    x = as_tensor(x)
    dim, keep = _one_dim(op, x.ndim, dim, axis), _keep(op, keepdim, keepdims)
    xp = backend.xp_of(x.data)
    return Tensor(getattr(x.data, op)(axis=dim, keepdims=keep).astype(xp.int64))


def all(x, dim=None, keepdim=None, *, axis=None, keepdims=None):
    """True where every entry over ``dim`` is non-zero (a bool tensor, outside the graph)."""
    x = as_tensor(x)
    return Tensor(x.data.all(axis=_reduced_dims("all", x.ndim, dim, axis), keepdims=_keep("all", keepdim, keepdims)))


def any(x, dim=None, keepdim=None, *, axis=None, keepdims=None):
    """True where some entry over ``dim`` is non-zero (a bool tensor, outside the graph)."""
    x = as_tensor(x)
    return Tensor(x.data.any(axis=_reduced_dims("any", x.ndim, dim, axis), keepdims=_keep("any", keepdim, keepdims)))


for _name in ("sum", "mean", "var", "std", "norm", "amax", "amin", "max", "min", "argmax", "argmin", "all", "any"):
    setattr(Tensor, _name, globals()[_name])
