"""Tensor and the autograd engine.

A Tensor wraps a NumPy or CuPy array. Calling a Function on tensors computes the
result at once (define-by-run) and, when gradients are wanted, records the
Function as the result's ``creator``. ``backward()`` then walks those records in
reverse topological order, calling each Function's hand-written ``backward``.
"""

import contextlib
import numbers
from typing import NamedTuple

import numpy as np

from . import backend, dtypes

_grad_enabled = True


@contextlib.contextmanager
def no_grad():
    """Within this block no graph is recorded (evaluation, weight updates)."""
    global _grad_enabled
    previous, _grad_enabled = _grad_enabled, False
    try:
        yield
    finally:
        _grad_enabled = previous


def is_grad_enabled():
    return _grad_enabled


class ShapeError(ValueError):
    """An input of the wrong shape; a Module adds its name to the message."""

    def __init__(self, message):
        super().__init__(message)
        self.layer = None


class Edge(NamedTuple):
    """What the graph keeps of an intermediate input: where its gradient goes, not its values."""

    creator: "Function"
    shape: tuple
    requires_grad: bool


class Function:
    """One differentiable operation with one output.

    Subclasses implement ``forward(*arrays) -> array`` and
    ``backward(grad_output) -> tuple of input gradients`` (``None`` where an
    input needs none), both on raw arrays. ``forward`` keeps what ``backward``
    needs with ``save_for_backward``; the engine drops it once it has been used.
    """

    def __call__(self, *inputs):
        if hasattr(self, "needs_input_grad"):
            # What one call keeps for backward (saved arrays, input shapes) the next would
            # overwrite, and the first call's gradients would silently be the second's.
            raise RuntimeError(
                f"{type(self).__name__} was called a second time: a Function instance records one call; "
                f"create a new one per call, or use {type(self).__name__}.apply(...)"
            )
        tensors = tuple(as_tensor(x) for x in inputs)
        # Known before forward, so a layer can skip work no one will need
        # (no input gradient for the images fed to the first convolution).
        self.needs_input_grad = tuple(_grad_enabled and t.requires_grad for t in tensors)
        output = Tensor(self.forward(*(t.data for t in tensors)))
        if any(self.needs_input_grad):
            output.requires_grad = True
            output.creator = self
            # Leaves are kept whole (backward sets their .grad); of an intermediate
            # result only its link is kept, so its values can be freed as soon as
            # nothing else needs them (a ReLU keeps its output, not its input).
            self.inputs = tuple(t if t.creator is None else Edge(t.creator, t.shape, t.requires_grad) for t in tensors)
            # Leaves are the only inputs an in-place operation may change (see inplace.py):
            # their versions now tell backward whether what forward read was changed since.
            self.input_versions = tuple(getattr(t, "_version", None) for t in self.inputs)
        else:
            self.saved_arrays = ()  # nothing will call backward: free at once
        return output

    @classmethod
    def apply(cls, *inputs, **options):
        """One call of a fresh instance: ``Scale.apply(x, factor=2)`` is ``Scale(factor=2)(x)``."""
        return cls(**options)(*inputs)

    def save_for_backward(self, *arrays):
        self.saved_arrays = arrays

    @property
    def saved_tensors(self):
        """PyTorch's name for what ``save_for_backward`` kept (here: arrays)."""
        return self.saved_arrays

    def release(self):
        """Forget inputs and saved arrays so their memory can be reused."""
        self.inputs = ()
        self.saved_arrays = ()

    def forward(self, *arrays):
        raise NotImplementedError

    def backward(self, grad_output):
        raise NotImplementedError

    def __repr__(self):
        return f"<{type(self).__name__}>"


class Tensor:
    """An array with an optional gradient and a link to the Function that made it.

    ``Tensor(array)`` wraps the array itself, in its dtype, as every Function's output does;
    ``tinynet.tensor(data)`` is the copying constructor that PyTorch code uses. The operators
    and most methods are attached by ops.py, reductions.py, comparisons.py, shapes.py,
    inplace.py (``+=``, ``add_``) and conversions.py (``to``, ``float``, ``cuda``).
    """

    __array_priority__ = 1000  # numpy scalar * Tensor must call Tensor.__rmul__
    _version = 0  # how many in-place operations changed the data (see inplace.py)

    def __init__(self, data, requires_grad=False):
        self.data = _wrapped(data)
        self.requires_grad = requires_grad
        self.grad = None
        self.creator = None

    # -- what it holds -----------------------------------------------------
    shape = property(lambda self: self.data.shape)
    dtype = property(lambda self: self.data.dtype)
    ndim = property(lambda self: self.data.ndim)
    device = property(lambda self: backend.device_of(self.data))
    is_leaf = property(lambda self: self.creator is None)
    grad_fn = property(lambda self: self.creator, doc="PyTorch's name for the Function that made this tensor")

    def size(self, dim=None):
        """The shape, or the size of one dim (``x.size(0)`` is the batch size)."""
        if dim is None:
            return self.shape
        if not -self.ndim <= dim < max(self.ndim, 1):
            raise IndexError(f"size: dim {dim} is out of range for a tensor of {self.ndim} dims")
        return self.shape[dim]

    def numel(self):
        return self.data.size

    def dim(self):
        return self.ndim

    def __len__(self):
        return len(self.data)

    def __iter__(self):
        """The sub-tensors along the first dim, as ``for row in x`` gives them in PyTorch."""
        if self.ndim == 0:
            raise TypeError("iteration over a 0-dim tensor; use .item() for its value")
        return (self[i] for i in range(len(self.data)))

    def __repr__(self):
        grad = ", requires_grad=True" if self.requires_grad else ""
        return f"Tensor({self.data!r}{grad})"

    def __format__(self, spec):
        """``f"{loss:.4f}"`` formats the value of a 0-dim tensor, as in PyTorch."""
        return format(self.item(), spec) if self.ndim == 0 else super().__format__(spec)

    # -- to Python and NumPy -------------------------------------------------
    def item(self):
        return self._one_value("item")

    def tolist(self):
        return self.data.tolist()

    def __float__(self):
        return float(self._one_value("float"))

    def __int__(self):
        return int(self._one_value("int"))

    def __index__(self):
        """An integer tensor of one value serves where Python wants an int (range(n), list[i])."""
        if self.dtype.kind not in "iu":
            raise TypeError(f"only integer tensors of one value can be used as an index, got {self.dtype}")
        return int(self._one_value("index"))

    def _one_value(self, what):
        if self.data.size != 1:
            raise TypeError(f"{what}() needs a tensor of one value, got shape {self.shape}")
        return self.data.item()

    def __array__(self, dtype=None, copy=None):
        """np.asarray(t) shares the memory of a CPU tensor, as in PyTorch; np.array(t) copies."""
        array = self.numpy()
        if dtype is not None:
            dtype = np.dtype(dtype)
        must_copy = self.device != "cpu" or (dtype is not None and dtype != array.dtype)
        if copy is False and must_copy:
            raise ValueError(f"np.asarray(copy=False) cannot give the values of a {self.dtype} tensor on "
                             f"{self.device} as {dtype or array.dtype} without copying them")
        if dtype is not None:
            array = array.astype(dtype, copy=False)
        return array.copy() if copy and not must_copy else array

    def numpy(self):
        """The data as a NumPy array (copied from the GPU if needed)."""
        return backend.to_numpy(self.data)

    def detach(self):
        """The same data, cut from the graph."""
        return Tensor(self.data)

    def detach_(self):
        """Cut this tensor from the graph: it becomes a leaf that requires no grad."""
        self.creator = None
        self.requires_grad = False
        return self

    def requires_grad_(self, requires_grad=True):
        """Make this leaf start (or stop) recording operations; returns it."""
        if self.creator is not None:
            raise RuntimeError("requires_grad_ applies to leaf tensors; this one was computed "
                               "(use .detach().requires_grad_() for a new leaf)")
        if requires_grad and self.dtype.kind != "f":
            raise RuntimeError(f"only floating-point tensors can require gradients, got {self.dtype}")
        self.requires_grad = requires_grad
        return self

    def zero_grad(self):
        self.grad = None

    # -- the backward pass -------------------------------------------------
    def backward(self, grad=None, retain_graph=False):
        """Accumulate d(self)/d(leaf) into ``.grad`` of every leaf that requires it.

        ``grad`` defaults to 1 for a scalar. Each Function is visited after all
        the Functions that use its output, so its gradient is complete when its
        ``backward`` runs; a tensor used twice simply receives two contributions.
        """
        if not self.requires_grad:
            raise RuntimeError("backward() called on a tensor that does not require grad")
        if grad is None:
            if self.data.size != 1:
                raise RuntimeError(f"backward() needs a gradient for a non-scalar of shape {self.shape}")
            grad = backend.xp_of(self.data).ones_like(self.data)
        grad = _as_array(grad)
        if self.creator is None:
            _accumulate(self, grad)
            return
        pending = {self.creator: grad}
        try:
            for function in _topological_order(self.creator):
                _run_backward(function, pending.pop(function), pending)
                if not retain_graph:
                    function.release()
            while _queued_callbacks:
                _queued_callbacks.pop(0)()
        finally:
            _queued_callbacks.clear()


# Callbacks that a Function's backward asked to run once the whole backward pass is done.
_queued_callbacks = []


def queue_callback(callback):
    """Call ``callback()`` when the backward pass now running has finished, every leaf's
    ``.grad`` complete. Called from a Function's backward; DistributedDataParallel averages
    the gradients across processes this way, as PyTorch's does with its engine's queue_callback.
    A callback already queued in this pass is not queued again: a model with two outputs that
    both reach the loss averages its gradients once."""
    if callback not in _queued_callbacks:
        _queued_callbacks.append(callback)


def _run_backward(function, grad_output, pending):
    if not function.inputs:
        raise RuntimeError(
            f"{function!r} was already back-propagated and its buffers freed; "
            "call backward(retain_graph=True) the first time to go through a graph twice"
        )
    _check_unchanged(function)
    grads = function.backward(grad_output)
    for tensor, grad in zip(function.inputs, grads):
        if grad is None or not tensor.requires_grad:
            continue
        grad = _unbroadcast(grad, tensor.shape)
        if tensor.creator is None:
            _accumulate(tensor, grad)
        elif tensor.creator in pending:
            pending[tensor.creator] = pending[tensor.creator] + grad
        else:
            pending[tensor.creator] = grad


def _check_unchanged(function):
    """Refuse a backward whose forward read a tensor that was changed in place since."""
    for tensor, version in zip(function.inputs, function.input_versions):
        if isinstance(tensor, Tensor) and tensor._version != version:
            raise RuntimeError(
                f"a tensor of shape {tensor.shape} that {function!r} used was changed by an in-place "
                "operation after it was used, so its gradient would be wrong; change a copy "
                "(x = x.clone()) or do the in-place operation after backward()"
            )


def _topological_order(root):
    """Functions reachable from ``root``, each before the Functions feeding it.

    A depth-first search that lists a Function once everything it feeds from is
    listed (post-order), reversed. A Function counts as visited when it is
    expanded, not when it is pushed: a tensor used at two depths (h and h.exp()
    both feeding one sum) must wait for its deeper consumer. An explicit stack
    instead of recursion: a graph thousands of operations deep must not hit
    Python's recursion limit.
    """
    order, visited, stack = [], set(), [(root, False)]
    while stack:
        function, expanded = stack.pop()
        if expanded:
            order.append(function)
            continue
        if function in visited:
            continue
        visited.add(function)
        stack.append((function, True))
        for tensor in function.inputs:
            if tensor.creator is not None and tensor.creator not in visited:
                stack.append((tensor.creator, False))
    return order[::-1]


def _unbroadcast(grad, shape):
    """Sum a gradient back to ``shape``, undoing the broadcasting of the forward pass."""
    if grad.shape == shape:
        return grad
    extra = grad.ndim - len(shape)
    axes = tuple(range(extra)) + tuple(
        i + extra for i, size in enumerate(shape) if size == 1 and grad.shape[i + extra] != 1
    )
    return grad.sum(axis=axes, keepdims=True).reshape(shape)


def _accumulate(tensor, grad):
    tensor.grad = grad if tensor.grad is None else tensor.grad + grad


def _as_array(data):
    """An ndarray from an array, a Tensor, a Python number or a nested list; floats become
    float32. (A Tensor gives its array: NumPy would make an object array of it.)"""
    if isinstance(data, Tensor):
        return data.data
    xp = backend.xp_of(data)
    if isinstance(data, xp.ndarray):
        return data
    if hasattr(data, "dtype"):  # a NumPy scalar keeps its dtype
        return xp.asarray(data)
    array = xp.asarray(data)
    return array.astype(xp.float32) if array.dtype.kind == "f" else array


def _wrapped(data):
    """What ``Tensor(data)`` holds: an array as it is (its dtype, its memory), a Tensor's array,
    or a list as float32, since ``torch.Tensor([1, 2])`` is a float tensor."""
    if isinstance(data, numbers.Number) and not hasattr(data, "dtype"):
        raise TypeError(f"Tensor({data!r}): Tensor takes data (an array, a list, a tensor), not a bare number, "
                        "which PyTorch's legacy torch.Tensor(n) reads as a size; write "
                        f"tinynet.tensor({data!r}) for a tensor holding the number, or tinynet.zeros(n) for n values")
    if isinstance(data, list | tuple):
        return _as_array(data).astype("float32")
    return _as_array(data)


def as_tensor(x):
    return x if isinstance(x, Tensor) else Tensor(_as_array(x))


def tensor(data, *, dtype=None, device=None, requires_grad=False):
    """A new Tensor holding a copy of ``data``, like ``torch.tensor``: Python floats become
    float32, ints int64 and bools bool; arrays and tensors keep their dtype unless ``dtype`` is
    given, and the data stays on its device unless ``device`` is given."""
    array = _as_array(data)
    if array.dtype.kind not in "biuf":
        raise TypeError(f"tensor: cannot make a tensor of {type(data).__name__} {data!r:.40}: expected numbers "
                        "or bools (a number, a nested list, an array or a tensor)")
    if device is not None:
        array = backend.to_device(array, device)
    dtype = array.dtype if dtype is None else dtypes.as_dtype(dtype, "tensor")
    array = array.astype(dtype)  # astype copies
    if requires_grad and array.dtype.kind != "f":
        raise RuntimeError(f"only floating-point tensors can require gradients, got {array.dtype}")
    return Tensor(array, requires_grad=requires_grad)
