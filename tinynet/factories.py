"""Tensor factories with PyTorch's names and signatures: zeros, ones, full, empty, eye, arange,
linspace, rand, randn, randint, their ``_like`` forms, and from_numpy.

Each takes ``dtype=``, ``device=`` and ``requires_grad=`` as torch's do, and infers dtypes as
torch does: Python floats give float32 (the default dtype), ints int64, bools bool. A ``_like``
form takes the shape, dtype and device of its input unless told otherwise. Random tensors are
drawn from the device's generator, the one ``tinynet.manual_seed`` seeds, so a seed repeats them.
"""

import math
import operator

import numpy as np

from . import backend, dtypes
from .tensor import Tensor

# -- what every factory shares ------------------------------------------------------------


def _shape(caller, sizes, size=None):
    """The shape from ``zeros(2, 3)``, ``zeros((2, 3))``, ``zeros([2, 3])`` or ``zeros(size=(2, 3))``."""
    if size is not None:
        if sizes:
            raise TypeError(f"{caller}: the size was given twice, as {sizes} and as size={size}; give it once")
        sizes = (size,)
    if not sizes:
        raise TypeError(f"{caller}: missing the size, e.g. {caller}(2, 3) or {caller}((2, 3))")
    if len(sizes) == 1 and isinstance(sizes[0], tuple | list):
        sizes = tuple(sizes[0])
    try:
        shape = tuple(operator.index(n) for n in sizes)
    except TypeError:
        raise TypeError(f"{caller}: the size must be ints, got {sizes}") from None
    if any(n < 0 for n in shape):
        raise RuntimeError(f"{caller}: the size {shape} has a negative dimension; expected sizes >= 0")
    return shape


def _count(caller, what, value):
    """A count such as linspace's steps or eye's n: an int >= 0."""
    try:
        value = operator.index(value)
    except TypeError:
        raise TypeError(f"{caller}: {what} must be an int, got {value!r}") from None
    if value < 0:
        raise RuntimeError(f"{caller}: {what} must be >= 0, got {value}")
    return value


def _dtype(caller, dtype, requires_grad, default=dtypes.float32):
    """The NumPy dtype to build in; only floating-point tensors may require gradients, as in torch."""
    dtype = dtypes.as_dtype(default if dtype is None else dtype, caller)
    if requires_grad and dtype.kind != "f":
        raise RuntimeError(f"{caller}: only floating-point tensors can require gradients, got dtype {dtype.name}")
    return dtype


def _xp(device):
    return backend.get_xp("cpu" if device is None else device)


def _generator(device):
    """The generator that tinynet.manual_seed seeds, of the device."""
    return backend.generator("cpu" if device is None else device)


def _number(caller, what, value):
    """A Python number from a Python or NumPy number or a tensor of one value (torch takes all three)."""
    if isinstance(value, np.generic) or (isinstance(value, Tensor) and value.numel() == 1):
        value = value.item()
    if not isinstance(value, int | float):  # bool is an int
        raise TypeError(f"{caller}: {what} must be a real number, got {value!r}")
    return value


def _number_dtype(value):
    """The dtype torch gives a Python number: bool, int64, or the default float32."""
    if isinstance(value, bool):
        return dtypes.bool
    return dtypes.int64 if isinstance(value, int) else dtypes.get_default_dtype()


def _like(caller, input, dtype, device):
    """The shape, dtype and device of a ``_like`` factory's result: the input's, unless given."""
    if not isinstance(input, Tensor):
        raise TypeError(f"{caller}: input must be a Tensor, got {type(input).__name__}")
    return input.shape, input.dtype if dtype is None else dtype, input.device if device is None else device


def from_numpy(array):
    """A Tensor that shares ``array``'s memory, as torch.from_numpy: changing one changes the other."""
    if not isinstance(array, np.ndarray):
        raise TypeError(f"from_numpy: expected a NumPy array, got {type(array).__name__}; "
                        "tinynet.tensor(data) copies lists, numbers and CuPy arrays")
    dtypes.as_dtype(array.dtype, "from_numpy")
    return Tensor(array)


# -- constant values ------------------------------------------------------------------------


def _filled(caller, value, shape, dtype, device, requires_grad):
    dtype = _dtype(caller, dtype, requires_grad)
    return Tensor(_xp(device).full(shape, value, dtype=dtype), requires_grad=requires_grad)


def zeros(*sizes, size=None, dtype=None, device=None, requires_grad=False):
    """A tensor of zeros: ``zeros(2, 3)``, ``zeros((2, 3))`` or ``zeros(size=(2, 3))``."""
    return _filled("zeros", 0, _shape("zeros", sizes, size), dtype, device, requires_grad)


def ones(*sizes, size=None, dtype=None, device=None, requires_grad=False):
    """A tensor of ones: ``ones(2, 3)``, ``ones((2, 3))`` or ``ones(size=(2, 3))``."""
    return _filled("ones", 1, _shape("ones", sizes, size), dtype, device, requires_grad)


def full(size, fill_value, *, dtype=None, device=None, requires_grad=False):
    """A tensor of ``fill_value``, whose type gives the dtype unless given: 1.5 gives float32, 7 int64."""
    fill_value = _number("full", "fill_value", fill_value)
    dtype = _number_dtype(fill_value) if dtype is None else dtype
    return _filled("full", fill_value, _shape("full", (size,)), dtype, device, requires_grad)


def empty(*sizes, size=None, dtype=None, device=None, requires_grad=False):
    """A tensor whose values are whatever the memory held: fill it before reading it."""
    dtype = _dtype("empty", dtype, requires_grad)
    return Tensor(_xp(device).empty(_shape("empty", sizes, size), dtype=dtype), requires_grad=requires_grad)


def eye(n, m=None, *, dtype=None, device=None, requires_grad=False):
    """An n x m matrix (n x n without m) with ones on the diagonal."""
    n = _count("eye", "n", n)
    m = n if m is None else _count("eye", "m", m)
    dtype = _dtype("eye", dtype, requires_grad)
    return Tensor(_xp(device).eye(n, m, dtype=dtype), requires_grad=requires_grad)


def zeros_like(input, *, dtype=None, device=None, requires_grad=False):
    return _filled("zeros_like", 0, *_like("zeros_like", input, dtype, device), requires_grad)


def ones_like(input, *, dtype=None, device=None, requires_grad=False):
    return _filled("ones_like", 1, *_like("ones_like", input, dtype, device), requires_grad)


def full_like(input, fill_value, *, dtype=None, device=None, requires_grad=False):
    """A tensor of ``fill_value`` in the input's dtype (``full_like(int_tensor, 2.7)`` holds 2s)."""
    fill_value = _number("full_like", "fill_value", fill_value)
    return _filled("full_like", fill_value, *_like("full_like", input, dtype, device), requires_grad)


def empty_like(input, *, dtype=None, device=None, requires_grad=False):
    shape, dtype, device = _like("empty_like", input, dtype, device)
    return empty(shape, dtype=dtype, device=device, requires_grad=requires_grad)


# -- ranges ---------------------------------------------------------------------------------


def arange(start=None, end=None, step=1, *, dtype=None, device=None, requires_grad=False):
    """``arange(end)``, ``arange(start, end)`` or ``arange(start, end, step)``: from start up to,
    not including, end. Ints give int64, a float anywhere float32, as in torch."""
    if start is None and end is None:
        raise TypeError("arange: missing the end, e.g. arange(5) or arange(0, 1, 0.1)")
    if end is None:
        start, end = 0, start
    start = _number("arange", "start", 0 if start is None else start)
    end = _number("arange", "end", end)
    step = _number("arange", "step", step)
    if not all(math.isfinite(value) for value in (start, end, step)):
        raise RuntimeError(f"arange: start, end and step must be finite, got {start}, {end} and {step}")
    integers = all(isinstance(value, int) for value in (start, end, step))
    dtype = _dtype("arange", dtype, requires_grad, default=dtypes.int64 if integers else dtypes.float32)
    if dtype.kind in "biu":  # as torch, an integer dtype truncates the bounds: arange(0, 2.5, dtype=int64) is [0, 1]
        start, end, step, integers = int(start), int(end), int(step), True
    _check_step(start, end, step)
    # torch's count: ceil((end - start) / step), in float64 unless all are ints, so arange(0, 1, 0.1)
    # has 10 values; and its values: start + step * i in int64 or float64, each rounded once to the dtype.
    count = -((start - end) // step) if integers else math.ceil((end - start) / step)
    index = _xp(device).arange(count, dtype=dtypes.int64 if integers else dtypes.float64)
    return Tensor((start + step * index).astype(dtype, copy=False), requires_grad=requires_grad)


def _check_step(start, end, step):
    if step == 0:
        raise RuntimeError("arange: step must be nonzero")
    if (end - start) * step < 0:
        raise RuntimeError(f"arange: a step of {step} never goes from {start} to {end}; "
                           "expected a step of the sign of end - start")


def linspace(start, end, steps, *, dtype=None, device=None, requires_grad=False):
    """``steps`` evenly spaced values from start to end, both included; float32 unless given."""
    start, end = _number("linspace", "start", start), _number("linspace", "end", end)
    steps = _count("linspace", "steps", steps)
    dtype = _dtype("linspace", dtype, requires_grad)
    xp = _xp(device)
    index = xp.arange(steps, dtype=dtypes.float64)
    step = (end - start) / (steps - 1) if steps > 1 else 0.0
    # As torch does, the first half counts up from start and the second half down from end,
    # so both ends are exact; a single step gives start.
    halfway = max(steps // 2, 1)
    values = xp.where(index < halfway, start + step * index, end - step * (steps - 1 - index))
    return Tensor(values.astype(dtype), requires_grad=requires_grad)


# -- random values --------------------------------------------------------------------------


def _floating(caller, dtype, requires_grad):
    dtype = _dtype(caller, dtype, requires_grad)
    if dtype.kind != "f":
        raise TypeError(f"{caller}: draws floating-point values, got dtype {dtype.name}; "
                        "expected float16, float32 or float64 (randint draws integers)")
    return dtype


def _uniform(caller, shape, dtype, device, requires_grad):
    dtype = _floating(caller, dtype, requires_grad)
    generator = _generator(device)
    if dtype != dtypes.float16:
        return Tensor(generator.random(shape, dtype=dtype), requires_grad=requires_grad)
    # NumPy and CuPy draw float32 or float64 only. A float32 draw rounded to float16 can reach
    # 1.0, which rand never gives, so those become the largest float16 below 1.
    halves = generator.random(shape, dtype=dtypes.float32).astype(dtype)
    below_one = dtypes.float16(1 - np.finfo(dtype).epsneg)
    return Tensor(backend.xp_of(halves).minimum(halves, below_one), requires_grad=requires_grad)


def _normal(caller, shape, dtype, device, requires_grad):
    dtype = _floating(caller, dtype, requires_grad)
    generator = _generator(device)
    drawn = generator.standard_normal(shape, dtype=dtypes.float32 if dtype == dtypes.float16 else dtype)
    return Tensor(drawn.astype(dtype, copy=False), requires_grad=requires_grad)


def _integers(caller, low, high, shape, dtype, device, requires_grad):
    try:
        low, high = operator.index(low), operator.index(high)
    except TypeError:
        raise TypeError(f"{caller}: low and high must be ints, got {low!r} and {high!r}") from None
    if high <= low:
        raise RuntimeError(f"{caller}: high ({high}) must be greater than low ({low}); it draws from [low, high)")
    dtype = _dtype(caller, dtype, requires_grad, default=dtypes.int64)
    smallest, largest = _value_range(dtype)
    if low < smallest or high - 1 > largest:
        raise RuntimeError(f"{caller}: the values of [{low}, {high}) do not all fit in {dtype.name}, "
                           f"which holds {smallest} to {largest}")
    generator = _generator(device)
    drawn = generator.integers(low, high, size=shape, dtype=dtypes.int64)
    return Tensor(drawn.astype(dtype, copy=False), requires_grad=requires_grad)


def _value_range(dtype):
    if dtype.kind == "b":
        return 0, 1
    info = np.iinfo(dtype) if dtype.kind in "iu" else np.finfo(dtype)
    return info.min, info.max


def rand(*sizes, size=None, dtype=None, device=None, requires_grad=False):
    """Values drawn uniformly from [0, 1): ``rand(2, 3)`` or ``rand((2, 3))``."""
    return _uniform("rand", _shape("rand", sizes, size), dtype, device, requires_grad)


def randn(*sizes, size=None, dtype=None, device=None, requires_grad=False):
    """Values drawn from the standard normal distribution: ``randn(2, 3)`` or ``randn((2, 3))``."""
    return _normal("randn", _shape("randn", sizes, size), dtype, device, requires_grad)


def randint(low=None, high=None, size=None, *, dtype=None, device=None, requires_grad=False):
    """Integers drawn uniformly from [low, high): ``randint(high, size)`` or
    ``randint(low, high, size)``, the size a tuple such as (3,); int64 unless given."""
    if size is None and isinstance(high, tuple | list):  # randint(high, size)
        low, high, size = None, low, high
    if high is None:  # randint(high, size=...)
        low, high = None, low
    if high is None or size is None:
        raise TypeError("randint: missing the high bound or the size: randint(high, size) or "
                        "randint(low, high, size), the size a tuple such as (3,)")
    low = 0 if low is None else low
    return _integers("randint", low, high, _shape("randint", (size,)), dtype, device, requires_grad)


def randperm(n, *, dtype=None, device=None, requires_grad=False):
    """0 .. n-1 in a random order (int64 unless given), to shuffle a dataset by hand:
    ``x[torch.randperm(len(x))]``."""
    n = _count("randperm", "n", n)
    dtype = _dtype("randperm", dtype, requires_grad, default=dtypes.int64)
    if n - 1 > _value_range(dtype)[1]:
        raise RuntimeError(f"randperm: the values 0 .. {n - 1} do not all fit in {dtype.name}")
    # The order that sorts n uniform draws is a uniformly random permutation, on NumPy and CuPy alike.
    order = _generator(device).random(n).argsort()
    return Tensor(order.astype(dtype), requires_grad=requires_grad)


def rand_like(input, *, dtype=None, device=None, requires_grad=False):
    return _uniform("rand_like", *_like("rand_like", input, dtype, device), requires_grad)


def randn_like(input, *, dtype=None, device=None, requires_grad=False):
    return _normal("randn_like", *_like("randn_like", input, dtype, device), requires_grad)


def randint_like(input, low=None, high=None, *, dtype=None, device=None, requires_grad=False):
    """Integers from [low, high) in the input's shape and dtype: ``randint_like(x, high)`` or
    ``randint_like(x, low, high)``."""
    if high is None:
        low, high = 0, low
    if high is None:
        raise TypeError("randint_like: missing the high bound: randint_like(input, high) or "
                        "randint_like(input, low, high)")
    low = 0 if low is None else low
    return _integers("randint_like", low, high, *_like("randint_like", input, dtype, device), requires_grad)
