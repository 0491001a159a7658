"""Shapes and indexing: reshape, permute, squeeze, cat, where, x[index], each as in PyTorch.

Most shape changes move no numbers, so their backward only undoes the move: reshape
the gradient back, permute it back, split it where ``cat`` joined. Indexing reads
some elements of its input, so its backward writes the gradient back to where they
were read, into zeros. Dims may be negative (counted from the end) everywhere.

At the bottom these are attached to ``Tensor`` as methods (``x.permute(0, 2, 1)``);
``cat``, ``stack``, ``where`` and the others are also top-level functions
(``tinynet.cat([a, b], dim=1)``), as in PyTorch.
"""

import itertools
import numbers

from . import backend
from .tensor import Function, Tensor, as_tensor


def _dim(dim, ndim, op, extra=0):
    """``dim`` as a position 0..ndim+extra-1; ``extra`` is 1 where a new dim may go at the end."""
    if isinstance(dim, bool) or not isinstance(dim, numbers.Integral):
        raise TypeError(f"{op}: dim must be an int, got {dim!r}")
    count = ndim + extra
    if not -count <= dim < count:
        raise IndexError(f"{op}: dim {dim} is out of range for a tensor of {ndim} dimensions "
                         f"(expected {-count} to {count - 1})")
    return int(dim) % count


def _sizes(sizes):
    """Both x.reshape(2, 3) and x.reshape((2, 3)) give (2, 3)."""
    return tuple(sizes[0]) if len(sizes) == 1 and isinstance(sizes[0], (tuple, list)) else sizes


# -- moving numbers without changing them ---------------------------------------------


class Reshape(Function):
    def __init__(self, shape):
        self.shape = shape

    def forward(self, a):
        self.input_shape = a.shape
        return a.reshape(self.shape)

    def backward(self, grad):
        return (grad.reshape(self.input_shape),)


class Permute(Function):
    """Reorder the dims: output dim i is input dim ``dims[i]``."""

    def __init__(self, dims):
        self.dims = dims

    def forward(self, a):
        return a.transpose(self.dims)

    def backward(self, grad):
        # input dim d went to the position where it appears in dims: send it back there
        inverse = sorted(range(len(self.dims)), key=self.dims.__getitem__)
        return (grad.transpose(inverse),)


class Expand(Function):
    """A view repeating size-1 dims (no copy); the engine sums the gradient back to the
    input's shape, as it does after any broadcast."""

    def __init__(self, shape):
        self.shape = shape

    def forward(self, a):
        return backend.xp_of(a).broadcast_to(a, self.shape)

    def backward(self, grad):
        return (grad,)


class Repeat(Function):
    """Tile the input ``repeats[i]`` times along dim i (a copy, unlike expand)."""

    def __init__(self, repeats):
        self.repeats = repeats

    def forward(self, a):
        self.input_shape = a.shape
        self.padded_shape = (1,) * (len(self.repeats) - a.ndim) + a.shape  # as torch: new dims in front
        return backend.xp_of(a).tile(a.reshape(self.padded_shape), self.repeats)

    def backward(self, grad):
        # Along each dim the output is `repeats` copies of `size` entries: split the dim
        # into (repeats, size) and add the copies up.
        split = [n for pair in zip(self.repeats, self.padded_shape) for n in pair]
        summed = grad.reshape(split).sum(axis=tuple(range(0, len(split), 2)))
        return (summed.reshape(self.input_shape),)


class Clone(Function):
    def forward(self, a):
        return a.copy()

    def backward(self, grad):
        return (grad,)


class Cat(Function):
    """Join the inputs along ``dim``; the gradient is split at the same places."""

    def __init__(self, dim):
        self.dim = dim

    def forward(self, *arrays):
        self.sizes = [a.shape[self.dim] for a in arrays]
        return backend.xp_of(arrays[0]).concatenate(arrays, axis=self.dim)

    def backward(self, grad):
        ends = list(itertools.accumulate(self.sizes))[:-1]
        return tuple(backend.xp_of(grad).split(grad, ends, axis=self.dim))


class Where(Function):
    """``condition ? x : y`` element by element; each branch gets the gradient where it was chosen."""

    def __init__(self, condition):
        self.condition = condition

    def forward(self, x, y):
        return backend.xp_of(x).where(self.condition, x, y)

    def backward(self, grad):
        xp, zero = backend.xp_of(grad), grad.dtype.type(0)
        return xp.where(self.condition, grad, zero), xp.where(self.condition, zero, grad)


# -- indexing -------------------------------------------------------------------------


class GetItem(Function):
    """``x[index]``. Basic indexing (ints, slices, None, ...) reads each element at most
    once, so the gradient is written into zeros at the same place. An integer array may
    read an element several times (``x[[0, 0]]``): then the gradient is scatter-added
    (``add.at``), so that every read contributes."""

    def __init__(self, index):
        self.index = index

    def forward(self, a):
        self.input_shape = a.shape
        self.index = _array_index(self.index, a)
        _check_integer_arrays_in_range(self.index, a.shape)
        return a[self.index]

    def backward(self, grad):
        xp = backend.xp_of(grad)
        full = xp.zeros(self.input_shape, dtype=grad.dtype)
        if any(_is_array(part) and part.dtype.kind in "iu" for part in self.index):
            xp.add.at(full, self.index, grad)
        else:
            full[self.index] = grad
        return (full,)


def _is_array(part):
    return hasattr(part, "dtype") and hasattr(part, "shape")


def _array_index(index, array):
    """The index as a tuple of ints, slices, None, ... and integer or boolean arrays on
    ``array``'s device. Tensors give their arrays, lists and ranges become arrays."""
    parts = index if isinstance(index, tuple) else (index,)
    return tuple(_index_part(part, array) for part in parts)


def _index_part(part, array):
    if part is None or part is Ellipsis or isinstance(part, (numbers.Integral, slice)):
        return part
    xp = backend.xp_of(array)
    if isinstance(part, Tensor):
        part = part.data
    elif isinstance(part, range):
        part = xp.arange(part.start, part.stop, part.step)
    elif isinstance(part, list):
        if any(isinstance(item, Tensor) for item in part):
            raise TypeError("a list of tensors as an index is ambiguous: index with one tensor "
                            "(tinynet.stack the list) or a tuple of tensors")
        part = xp.asarray(part, dtype=None if part else "int64")  # [] is an empty index, not floats
    elif not _is_array(part):
        raise TypeError(f"cannot index a tensor with {type(part).__name__} {part!r}: expected ints, slices, "
                        "None, ..., or integer or boolean arrays, lists, ranges or tensors")
    if part.dtype.kind not in "iub":
        raise IndexError(f"tensors and arrays used as indices must hold integers or booleans, got dtype {part.dtype}")
    return backend.to_device(part, backend.device_of(array))


def _check_integer_arrays_in_range(parts, shape):
    """NumPy refuses an out-of-range integer array index, but CuPy wraps it around
    silently: check it here, so the GPU fails where the CPU does."""
    used = [_dims_used(part) for part in parts]
    ellipsis = [i for i, part in enumerate(parts) if part is Ellipsis]
    if ellipsis:
        used[ellipsis[0]] = len(shape) - sum(used)
    for part, dim in zip(parts, itertools.accumulate([0] + used)):
        if not (_is_array(part) and part.dtype.kind in "iu" and part.size and dim < len(shape)):
            continue
        low, high, size = int(part.min()), int(part.max()), shape[dim]
        if low < -size or high >= size:
            bad = high if high >= size else low
            raise IndexError(f"index {bad} is out of range for dim {dim} of size {size} (tensor of shape {shape})")


def _dims_used(part):
    """How many dims of the input one part of an index consumes (None and True add one)."""
    if _is_array(part) and part.dtype.kind == "b":
        return part.ndim
    return 0 if part is None or part is Ellipsis or isinstance(part, bool) else 1


# -- the PyTorch functions and Tensor methods -----------------------------------------


def reshape(input, *shape):
    """The same numbers in a new shape; one size may be -1 (inferred)."""
    return Reshape(_sizes(shape))(input)


def permute(input, *dims):
    """Reorder all the dims: x.permute(2, 0, 1) makes dim 2 the first."""
    order = tuple(_dim(d, input.ndim, "permute") for d in _sizes(dims))
    if sorted(order) != list(range(input.ndim)):
        raise ValueError(f"permute: dims {_sizes(dims)} are not an ordering of the {input.ndim} dims of a tensor "
                         f"of shape {input.shape}")
    return Permute(order)(input)


def transpose(input, *dims):
    """Swap two dims, as torch.transpose(x, 0, 1) (permute reorders all of them)."""
    if len(dims) != 2:
        raise TypeError(f"transpose swaps two dims (dim0, dim1), as in PyTorch; got {dims}: "
                        "use permute(*dims) to reorder all the dims")
    dim0, dim1 = (_dim(d, input.ndim, "transpose") for d in dims)
    order = list(range(input.ndim))
    order[dim0], order[dim1] = dim1, dim0
    return Permute(tuple(order))(input)


def t(input):
    """The transpose of a matrix; a vector or a scalar is returned as it is (as torch.t)."""
    if input.ndim > 2:
        raise ValueError(f"t() transposes tensors of at most 2 dimensions, got shape {input.shape}: "
                         "use transpose(dim0, dim1) or permute")
    return Permute(tuple(reversed(range(input.ndim))))(input)


def unsqueeze(input, dim):
    """A new dim of size 1 at position ``dim`` (-1 puts it last)."""
    dim = _dim(dim, input.ndim, "unsqueeze", extra=1)
    return Reshape(input.shape[:dim] + (1,) + input.shape[dim:])(input)


def squeeze(input, dim=None):
    """Drop dims of size 1: all of them, or those of ``dim`` (an int or a tuple); a named
    dim whose size is not 1 stays, as in PyTorch."""
    if dim is None:
        dims = range(input.ndim)
    else:
        dims = {_dim(d, input.ndim, "squeeze") for d in (dim if isinstance(dim, (tuple, list)) else (dim,))}
    kept = tuple(size for d, size in enumerate(input.shape) if d not in dims or size != 1)
    return Reshape(kept)(input)


def flatten(input, start_dim=0, end_dim=-1):
    """Merge dims start_dim..end_dim into one: all of them by default, as torch.flatten
    (nn.Flatten starts at dim 1, keeping the batch dim)."""
    start = _dim(start_dim, max(input.ndim, 1), "flatten")
    end = _dim(end_dim, max(input.ndim, 1), "flatten")
    if start > end:
        raise ValueError(f"flatten: start_dim {start_dim} comes after end_dim {end_dim} "
                         f"in a tensor of {input.ndim} dimensions")
    if input.ndim == 0:
        return Reshape((1,))(input)  # torch makes a scalar one-dimensional
    return Reshape(input.shape[:start] + (-1,) + input.shape[end + 1:])(input)


def expand(input, *sizes):
    """A view with size-1 dims repeated to ``sizes`` (-1 keeps a size), without copying."""
    sizes = _sizes(sizes)
    new = len(sizes) - input.ndim
    if new < 0:
        raise ValueError(f"expand: {len(sizes)} sizes {sizes} for a tensor of {input.ndim} dimensions "
                         f"(shape {input.shape}): give at least one size per dim")
    shape = list(sizes[:new])
    for dim, (size, old) in enumerate(zip(sizes[new:], input.shape)):
        if size not in (-1, old) and old != 1:
            raise ValueError(f"expand: dim {dim} has size {old}, which can only expand to {old} (or -1), "
                             f"not {size} (tensor of shape {input.shape})")
        shape.append(old if size == -1 else size)
    if any(size < 0 for size in shape):
        raise ValueError(f"expand: sizes {sizes} must not be negative (-1 only keeps an existing dim)")
    return Expand(tuple(shape))(input)


def repeat(input, *repeats):
    """Tile the tensor: ``repeats[i]`` copies along dim i (extra repeats add dims in front)."""
    repeats = _sizes(repeats)
    if len(repeats) < input.ndim or any(r < 0 for r in repeats):
        raise ValueError(f"repeat: need one non-negative count per dim of the tensor of shape {input.shape}, "
                         f"got {repeats}")
    return Repeat(tuple(repeats))(input)


def clone(input):
    """A copy that stays in the graph: its gradient flows back to ``input``."""
    return Clone()(input)


def cat(tensors, dim=0):
    """Join tensors of the same number of dims along ``dim``."""
    tensors = [as_tensor(t) for t in tensors]
    if not tensors:
        raise ValueError("cat needs at least one tensor")
    ndims = {t.ndim for t in tensors}
    if len(ndims) != 1:
        raise ValueError(f"cat: the tensors must have the same number of dims, got shapes {[t.shape for t in tensors]}")
    return Cat(_dim(dim, tensors[0].ndim, "cat"))(*tensors)


def stack(tensors, dim=0):
    """Join tensors of one shape along a new dim ``dim``."""
    tensors = [as_tensor(t) for t in tensors]
    if not tensors:
        raise ValueError("stack needs at least one tensor")
    shapes = [t.shape for t in tensors]
    if len(set(shapes)) != 1:
        raise ValueError(f"stack needs tensors of one shape, got {shapes}")
    dim = _dim(dim, tensors[0].ndim, "stack", extra=1)
    return Cat(dim)(*(unsqueeze(t, dim) for t in tensors))


def where(condition, input, other):
    """``input`` where ``condition`` holds, else ``other``; broadcasts like torch.where.
    Either branch may be a Python number, which takes the other branch's dtype."""
    condition = condition.data if isinstance(condition, Tensor) else condition
    condition = backend.xp_of(condition).asarray(condition)
    if condition.dtype.kind != "b":
        raise TypeError(f"where: condition must be a bool tensor or array, got dtype {condition.dtype} "
                        "(compare first, e.g. x > 0)")
    input = _branch(input, other)
    other = _branch(other, input)
    return Where(backend.to_device(condition, input.device))(input, other)


def masked_fill(input, mask, value):
    """``value`` where the bool ``mask`` holds, else ``input``, in input's shape and dtype
    (torch's masked_fill): ``scores.masked_fill(~mask, float("-inf"))``."""
    filled = where(mask, value, input)
    if filled.shape != input.shape:
        raise RuntimeError(f"masked_fill: the mask would grow the input of shape {input.shape} to {filled.shape}; "
                           "expected a mask that broadcasts to the input's shape")
    return filled if filled.dtype == input.dtype else filled.to(input.dtype)


def _branch(value, other):
    """One branch of ``where`` as a Tensor. A Python number takes the dtype of a float
    Tensor on the other side (so where(c, x, 0.0) stays float32) and its device."""
    if not isinstance(value, numbers.Number) or not isinstance(other, Tensor):
        return as_tensor(value)
    array = backend.to_device(as_tensor(value).data, other.device)
    return Tensor(array.astype(other.dtype) if other.dtype.kind == "f" else array)


Tensor.__getitem__ = lambda self, index: GetItem(index)(self)
Tensor.reshape = reshape
Tensor.view = reshape  # a copy where torch's view would need a contiguous tensor (see reshape)
Tensor.permute = permute
Tensor.transpose = transpose
Tensor.T = property(lambda self: Permute(tuple(reversed(range(self.ndim))))(self))
Tensor.t = t
Tensor.unsqueeze = unsqueeze
Tensor.squeeze = squeeze
Tensor.flatten = flatten
Tensor.expand = expand
Tensor.repeat = repeat
Tensor.clone = clone
Tensor.where = lambda self, condition, other: where(condition, self, other)
Tensor.masked_fill = masked_fill
