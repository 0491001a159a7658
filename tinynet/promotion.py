"""Which dtype a binary operation gives, by PyTorch's rules, which differ from NumPy's.

    x * 2, x * 0.5, x * np.float64(2)  stay float32 (a number takes the tensor's dtype)
    int tensor * 0.5                   is float32 (PyTorch's default float), not float64
    int tensor + 1                     stays int64
    int tensor + float32 tensor        is float32 (the floating-point one decides)
    int tensor / int tensor            is float32 (true division; see ``floating``)

An operation calls ``promoted(a, b)`` on its two operands before its Function runs.
"""

import numbers

from . import backend
from .tensor import Tensor, as_tensor

# bool < integer < floating point: an operand of a higher kind decides the result's dtype.
_KIND = {"b": 0, "u": 1, "i": 1, "f": 2}


def number_dtype(number, dtype):
    """The dtype a Python number takes beside a tensor of ``dtype``: the tensor's, unless the
    number is of a higher kind (int tensor * 0.5), then PyTorch's default (float32, int64)."""
    kind = "b" if isinstance(number, bool) else "i" if isinstance(number, numbers.Integral) else "f"
    if _KIND[kind] <= _KIND[dtype.kind]:
        return dtype
    return {"i": "int64", "f": "float32"}[kind]


def _operand(value, like):
    """The other side of a binary operation as a Tensor on ``like``'s device, or
    NotImplemented for what is no number. A Python or NumPy number takes the dtype
    ``number_dtype`` gives (``x * 2`` and ``x * np.float64(2)`` stay float32); an array
    or list is a tensor of its own dtype (a list of floats is float32)."""
    xp = backend.xp_of(like.data)
    if isinstance(value, numbers.Number):
        value = value.item() if hasattr(value, "item") else value
        return Tensor(xp.asarray(value, dtype=number_dtype(value, like.dtype)))
    array = as_tensor(value).data
    return Tensor(xp.asarray(array)) if array.dtype.kind in _KIND else NotImplemented


def _result_dtype(a, b):
    """As in PyTorch: the higher kind wins; within a kind, a tensor with dims decides over
    a 0-dim one (float32 weights times a float64 scalar tensor stay float32); else NumPy's
    promotion (int32 and int64 give int64)."""
    kind_a, kind_b = _KIND[a.dtype.kind], _KIND[b.dtype.kind]
    if kind_a != kind_b:
        return a.dtype if kind_a > kind_b else b.dtype
    if (a.ndim == 0) != (b.ndim == 0):
        return a.dtype if b.ndim == 0 else b.dtype
    return backend.xp_of(a.data).promote_types(a.dtype, b.dtype)


def cast(tensor, dtype):
    # Only constants are cast, outside the graph; a tensor that needs a gradient keeps
    # its dtype and NumPy's promotion applies (a 0-dim float64 one makes float64).
    if tensor.dtype == dtype or tensor.requires_grad:
        return tensor
    return Tensor(tensor.data.astype(dtype))


def promoted(a, b):
    """Both operands of a binary operation as tensors of one dtype by PyTorch's rules
    (at least one is a Tensor), or NotImplemented if one is no number."""
    a = a if isinstance(a, Tensor) else _operand(a, b)
    b = b if isinstance(b, Tensor) else _operand(b, a)
    if a is NotImplemented or b is NotImplemented:
        return NotImplemented
    dtype = _result_dtype(a, b)
    return cast(a, dtype), cast(b, dtype)


def floating(x):
    """x itself if it is floating-point, else (an integer or bool tensor, which carries no
    gradient) a float32 copy: exp, sqrt, division ... of integers are float32 in PyTorch."""
    x = as_tensor(x)
    return x if x.dtype.kind == "f" else Tensor(x.data.astype("float32"))
