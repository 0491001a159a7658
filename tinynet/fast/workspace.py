"""Memory the fast path keeps from one training step to the next.

On many VMs freed memory goes back to the host and comes back page by page:
measured here, a training step spent about 380 ms of its 2 s in page faults,
touching arrays it had just allocated. Two kinds of kept memory avoid that:

- ``scratch``: a named work buffer, overwritten by the next call that asks for
  it (the im2col columns of a convolution that does not keep them). Never
  returned or saved for backward.
- ``empty``: a recycled array that may be returned, saved for backward or
  become a parameter's gradient. It is cut from a kept block of memory that
  nothing but this pool refers to any more (no tensor, no view, no saved
  array), so recycling never overwrites data still in use; it only skips the
  page faults of a fresh allocation, as PyTorch's caching allocator does on a
  GPU. A block serves any shape that fills at least half of it: the gradients
  freed by ``zero_grad`` hold the next forward pass's activations.

CuPy has its own memory pool, so on a GPU ``empty`` simply allocates. Each
thread keeps its own buffers, so two threads may train at once.
"""

import sys
import threading

import numpy as np


class _Kept(threading.local):
    def __init__(self):
        self.buffers = {}  # (array module, name, dtype) -> the scratch buffer of that name
        self.blocks = []  # 1-D uint8 arrays that empty() cuts its arrays from, in use or free


_kept = _Kept()

# Small arrays come from malloc's free lists, already mapped: not worth keeping.
RECYCLE_MIN_BYTES = 1 << 20
# The most that free blocks may hold; past it they are let go (a switch from
# training to evaluation at another batch size changes every size).
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
    """An uninitialised array like ``xp.empty``, cut from a free kept block when one fits."""
    shape, dtype = tuple(shape), np.dtype(dtype)
    nbytes = int(np.prod(shape)) * dtype.itemsize
    if xp is not np or nbytes < RECYCLE_MIN_BYTES or not _COUNTS_ARE_EXACT:
        return xp.empty(shape, dtype=dtype)
    block = _best_free_block(nbytes)
    if block is None:
        if _free_bytes() > RECYCLE_LIMIT_BYTES:
            release()
        block = np.empty(nbytes, dtype=np.uint8)
        _kept.blocks.append(block)
    return block[:nbytes].view(dtype).reshape(shape)


def _best_free_block(nbytes):
    """The smallest free block that holds ``nbytes`` and is no more than twice that."""
    blocks = _kept.blocks
    fitting = [block for block, count in zip(blocks, _reference_counts(blocks))
               if count <= _ONLY_IN_THE_POOL and nbytes <= block.nbytes <= 2 * nbytes]
    return min(fitting, key=len, default=None)


def zeros(xp, shape, dtype):
    array = empty(xp, shape, dtype)
    array.fill(0)
    return array


def release():
    """Let go of every kept block that nothing else refers to, and of every scratch buffer
    (torch.cuda.empty_cache, for this pool): their memory goes back to the system."""
    blocks = _kept.blocks
    blocks[:] = [block for block, count in zip(blocks, _reference_counts(blocks)) if count > _ONLY_IN_THE_POOL]
    _kept.buffers.clear()


def _free_bytes():
    blocks = _kept.blocks
    return sum(block.nbytes for block, count in zip(blocks, _reference_counts(blocks)) if count <= _ONLY_IN_THE_POOL)


def _reference_counts(arrays):
    """How many references each array has, counted the same way for every caller."""
    return [sys.getrefcount(array) for array in arrays]


# The count of an array that only its pool list refers to, measured rather than
# assumed: what getrefcount reports varies between Python versions.
_ONLY_IN_THE_POOL = _reference_counts([np.empty(0)])[0]
# Without the GIL (free-threaded CPython) another thread may take a reference
# between the count and the reuse: there, every array is a fresh one.
_COUNTS_ARE_EXACT = getattr(sys, "_is_gil_enabled", lambda: True)()
