"""Softmax cross-entropy: the reference on the CPU, one CUDA kernel each way on a GPU
(cuda/cross_entropy.py), with no wait for the GPU in between.

The reference checks that every target is a class by reading the targets, which on
a GPU waits for all the work queued before it: measured, 20 ms of every training
step. Here targets still on the host are checked there before they are copied;
targets already on the GPU are checked by the kernel, which makes the loss NaN
if one is out of range.
"""

import numpy as np

from .. import backend
from ..reference import cross_entropy as reference
from .cuda import cross_entropy as cuda_cross_entropy


class SoftmaxCrossEntropy(reference.SoftmaxCrossEntropy):
    def forward(self, logits, targets):
        xp = backend.xp_of(logits)
        if xp is np:
            return super().forward(logits, targets)
        reference.check_target_shape(logits.shape, targets)
        if backend.xp_of(targets) is np:
            reference.check_target_values(logits.shape[1], targets, self.ignore_index)
        targets = xp.asarray(targets, dtype=xp.int64)
        logits = xp.ascontiguousarray(logits)
        log_sum_exp, losses, total = cuda_cross_entropy.softmax_cross_entropy(logits, targets, self.ignore_index)
        self.save_for_backward(logits, log_sum_exp, targets, total)
        return {"none": losses, "sum": total[0], "mean": total[2]}[self.reduction]

    def backward(self, grad):
        if backend.xp_of(grad) is np:
            return super().backward(grad)
        logits, log_sum_exp, targets, total = self.saved_arrays
        grad_logits = cuda_cross_entropy.softmax_cross_entropy_backward(
            logits, log_sum_exp, targets, grad, total, self.ignore_index, self.reduction)
        return grad_logits, None
