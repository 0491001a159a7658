"""ReLU in recycled memory."""

from .. import backend, ops
from . import workspace


class ReLU(ops.ReLU):
    """max(x, 0), as ops.ReLU, with its output and gradient in recycled arrays: AlexNet's
    first ReLU moves 37 MB each way at batch 32, and fresh memory that size cost its
    backward pass 85 ms in page faults against 15 ms without them."""

    def forward(self, a):
        xp = backend.xp_of(a)
        out = xp.maximum(a, 0, out=workspace.empty(xp, a.shape, a.dtype))
        self.save_for_backward(out)
        return out

    def backward(self, grad):
        (out,) = self.saved_arrays
        xp = backend.xp_of(grad)
        passes = xp.greater(out, 0, out=workspace.scratch(xp, "relu_passes", out.shape, bool))
        return (xp.multiply(grad, passes, out=workspace.empty(xp, grad.shape, grad.dtype)),)
