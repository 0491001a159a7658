"""Building a kernel once, on first use: importing tinynet never needs CuPy."""

import functools

import numpy as np

from ... import backend

TYPE_NAMES = {np.dtype(np.float32): "float", np.dtype(np.float64): "double"}

# The kernels number elements with 32-bit integers: a GPU divides 64-bit integers in
# software, many times slower, and im2col divides several times for every element.
INDEX_LIMIT = 2**31


def check_32_bit(array):
    """``array``, if its elements can be numbered with 32-bit integers; else a clear error."""
    if array.size >= INDEX_LIMIT:
        raise ValueError(f"an array of {array.size:,} elements is too large for tinynet's CUDA kernels, which "
                         f"number elements with 32-bit integers (fewer than 2**31): use a smaller batch")
    return array


def elementwise(in_params, out_params, operation, name):
    """A cupy.ElementwiseKernel, built when first called: one GPU thread per element of
    the outputs, ``i`` its index; ``raw`` arrays are indexed by hand. ``T`` stands for the
    dtype of the arrays, so one kernel serves float32 and float64."""
    build = functools.cache(lambda: backend.cupy.ElementwiseKernel(in_params, out_params, operation, name))
    return lambda *args: build()(*args)


def templated(source, name):
    """``kernel(dtype)``: the function ``name`` of ``source`` (CUDA C++, a template over
    the floating-point type) for arrays of ``dtype``, called as ``kernel(dtype)(grid, block, args)``."""
    @functools.cache
    def module():
        expressions = [f"{name}<{type_name}>" for type_name in TYPE_NAMES.values()]
        return backend.cupy.RawModule(code=source, options=("-std=c++17",), name_expressions=expressions)

    def kernel(dtype):
        if np.dtype(dtype) not in TYPE_NAMES:
            raise TypeError(f"{name} runs on float32 or float64 arrays, got {np.dtype(dtype)}")
        return module().get_function(f"{name}<{TYPE_NAMES[np.dtype(dtype)]}>")

    return kernel
