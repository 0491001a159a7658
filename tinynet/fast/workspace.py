"""Memory the fast path keeps from one training step to the next.

On many VMs freed memory goes back to the host and comes back page by page:
measured here, a training step spent about 380 ms of its 2 s in page faults,
touching arrays it had just allocated. Two kinds of kept memory avoid that:

- ``scratch``: a named work buffer, overwritten by the next call that asks for
  it (the im2col columns of a convolution that does not keep them). Never
  returned or saved for backward.
- ``empty``: a recycled array that may be returned, saved for backward or
  become a parameter's gradient. It is handed out again only once nothing
  but this pool refers to it: no tensor, no view, no saved array. Recycling
  therefore never overwrites data still in use; it only skips the page faults
  of a fresh allocation, as PyTorch's caching allocator does on a GPU.

CuPy has its own memory pool, so on a GPU ``empty`` simply allocates. Each
thread keeps its own buffers, so two threads may train at once.
"""

import sys
import threading

import numpy as np


class _Kept(threading.local):
    def __init__(self):
        self.buffers = {}  # (array module, name, dtype) -> the scratch buffer of that name
        self.recycled = {}  # (shape, dtype) -> arrays handed out by empty(), alive or free


_kept = _Kept()

# Small arrays come from malloc's free lists, already mapped: not worth keeping.
RECYCLE_MIN_BYTES = 1 << 20
# The most that free recycled arrays may hold; past it they are let go (a switch
# from training to evaluation changes every shape, and the old ones go).
RECYCLE_LIMIT_BYTES = 3 << 30


def scratch(xp, name, shape, dtype):
    """An uninitialised array of ``shape`` that the next call with the same name reuses.

    Only for temporaries: never return it or save it for backward.
    """
    size = 1
    for dim in shape:
        size *= dim
    key, buffers = (xp.__name__, name, xp.dtype(dtype).str), _kept.buffers
    buffer = buffers.get(key)
    if buffer is None or buffer.size < size:
        buffer = buffers[key] = None  # free the old one before allocating the larger one
        buffer = buffers[key] = xp.empty(size, dtype=dtype)
    return buffer[:size].reshape(shape)


def empty(xp, shape, dtype):
    """An uninitialised array like ``xp.empty``, recycled from a dead one of the same shape."""
    shape, dtype = tuple(shape), np.dtype(dtype)
    if xp is not np or int(np.prod(shape)) * dtype.itemsize < RECYCLE_MIN_BYTES:
        return xp.empty(shape, dtype=dtype)
    arrays = _kept.recycled.setdefault((shape, dtype.str), [])
    for array, count in zip(arrays, _reference_counts(arrays)):
        if count <= _ONLY_IN_THE_POOL:
            return array
    if _free_bytes() > RECYCLE_LIMIT_BYTES:
        release()
    array = np.empty(shape, dtype=dtype)
    arrays.append(array)
    return array


def zeros(xp, shape, dtype):
    array = empty(xp, shape, dtype)
    array.fill(0)
    return array


def release():
    """Let go of every kept array that nothing else refers to (torch.cuda.empty_cache, for
    this pool): their memory goes back to the system."""
    for key, arrays in list(_kept.recycled.items()):
        counts = _reference_counts(arrays)
        arrays[:] = [array for array, count in zip(arrays, counts) if count > _ONLY_IN_THE_POOL]
        if not arrays:
            del _kept.recycled[key]
    _kept.buffers.clear()


def _free_bytes():
    return sum(array.nbytes for arrays in _kept.recycled.values()
               for array, count in zip(arrays, _reference_counts(arrays)) if count <= _ONLY_IN_THE_POOL)


def _reference_counts(arrays):
    """How many references each array has, counted the same way for every caller."""
    return [sys.getrefcount(array) for array in arrays]


# The count of an array that only its pool list refers to, measured rather than
# assumed: what getrefcount reports varies between Python versions.
_ONLY_IN_THE_POOL = _reference_counts([np.empty(0)])[0]
