"""Changes of dtype and device: ``x.to(...)``, ``x.float()``, ``x.double()``, ``x.cuda()`` ...

A dtype change inside the graph is a Function (Cast) whose gradient goes back in the input's
dtype, so ``x.double()`` in the middle of a computation trains as in PyTorch.

A device change of a computed tensor is a Function too (ToDevice), whose gradient moves back.
A leaf is different: its copy on the other device is a new leaf that keeps requires_grad, so
``w = tinynet.randn(3, requires_grad=True).to("cuda")`` gives the trainable weight it means.
(In PyTorch that ``w`` is the result of an operation, whose ``.grad`` stays None.)
"""

import numpy as np

from . import backend, dtypes
from .tensor import Function, Tensor


class Cast(Function):
    """A change of dtype inside the graph: the gradient goes back in the input's dtype."""

    def __init__(self, dtype):
        self.dtype = dtype

    def forward(self, a):
        self.input_dtype = a.dtype
        return a.astype(self.dtype)

    def backward(self, grad):
        return (grad.astype(self.input_dtype),)


class ToDevice(Function):
    """A move between the CPU and the GPU inside the graph: the gradient moves back."""

    def __init__(self, device):
        self.device = device

    def forward(self, a):
        self.source = backend.device_of(a)
        return backend.to_device(a, self.device)

    def backward(self, grad):
        return (backend.to_device(grad, self.source),)


def to(self, *targets, dtype=None, device=None, non_blocking=False, copy=False):
    """``to(dtype)``, ``to(device)``, ``to(device, dtype)`` or ``to(other_tensor)``; the tensor
    itself when nothing changes, unless ``copy=True``. (``non_blocking`` is accepted as in
    PyTorch; moves here are synchronous, which gives the same values.)"""
    for target in targets:
        if isinstance(target, Tensor):
            device, dtype = target.device, target.dtype
        elif _is_dtype(target):
            dtype = target
        else:
            device = target
    result = self
    if device is not None and self.device != backend.device_name(device):
        result = _moved(self, backend.check_device(device))
    dtype = None if dtype is None else dtypes.as_dtype(dtype, "to")
    if dtype is not None and result.dtype != dtype:
        result = _cast(result, dtype)
    return self.clone() if copy and result is self else result


def _moved(tensor, device):
    if tensor.creator is None:
        return Tensor(backend.to_device(tensor.data, device), tensor.requires_grad)
    return ToDevice(device)(tensor)


def _cast(tensor, dtype):
    # Integers and bools carry no gradient, as in PyTorch: x.long() leaves the graph.
    if dtype.kind != "f":
        return Tensor(tensor.data.astype(dtype))
    return Cast(dtype)(tensor)


def _is_dtype(target):
    """Whether ``to`` got a dtype (anything NumPy reads as one) rather than a device."""
    if isinstance(target, str) and target.split(":")[0] in ("cpu", "gpu", "cuda"):
        return False
    try:
        np.dtype(target)
    except TypeError:
        return False
    return True


def _to_dtype(dtype):
    name = np.dtype(dtype).name

    def method(self):
        return self.to(dtype)

    method.__doc__ = f"This tensor as {name} (itself if it is {name} already): x.to(tinynet.{name})."
    return method


def _to_device(device):
    def method(self):
        return self.to(device)

    method.__doc__ = f"This tensor on {device!r} (itself if it is there already): x.to({device!r})."
    return method


Tensor.to = to
Tensor.float = _to_dtype(dtypes.float32)
Tensor.double = _to_dtype(dtypes.float64)
Tensor.half = _to_dtype(dtypes.float16)
Tensor.long = _to_dtype(dtypes.int64)
Tensor.int = _to_dtype(dtypes.int32)
Tensor.bool = _to_dtype(dtypes.bool)
Tensor.cpu = _to_device("cpu")
Tensor.cuda = _to_device("cuda")
