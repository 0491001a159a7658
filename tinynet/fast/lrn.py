"""Local response normalisation: the reference's arithmetic on the CPU, one CUDA kernel
each way on a GPU (cuda/lrn.py).

On a CPU the reference (n shifted adds of a padded copy) already runs 2-4x faster
than PyTorch's; on a GPU those are n+4 launches and as many temporary arrays.
"""

import numpy as np

from .. import backend
from ..reference import lrn as reference
from .cuda import lrn as cuda_lrn


class LocalResponseNorm(reference.LocalResponseNorm):
    def forward(self, x):
        xp = backend.xp_of(x)
        if xp is np:
            return super().forward(x)
        reference.check_input(x.shape)
        x = xp.ascontiguousarray(x)  # the kernels index it as (N, C, H, W) in C order
        out, scale = cuda_lrn.local_response_norm(x, self.size, self.alpha, self.beta, self.k)
        self.save_for_backward(x, scale)
        return out

    def backward(self, grad):
        if backend.xp_of(grad) is np:
            return super().backward(grad)
        x, scale = self.saved_arrays
        return (cuda_lrn.local_response_norm_backward(grad, x, scale, self.size, self.alpha, self.beta),)
