"""CUDA kernels for the fast path on a GPU, compiled by CuPy the first time each is used.

A layer written with array operations launches one GPU kernel per operation and
per kernel offset (col2im adds kh*kw slices; a max pool compares kh*kw of them);
each kernel here does a layer's whole pass in one launch, one GPU thread per
output element. Each file holds one layer's kernels: the CUDA source, short and
commented, and the Python function that launches it. The tests hold every kernel
equal to the reference path (tinynet/reference/) on the GPU, in float32 and in
the float64 of the gradient checks.

Nothing here runs on the CPU: the fast layers call these functions only when
their input is a CuPy array.
"""
