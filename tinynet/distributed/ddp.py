"""DistributedDataParallel: one model replicated on every rank, trained on different batches.

Data parallelism in three moves, as PyTorch's DDP makes them:
1. at the start, every rank takes rank 0's weights (they must begin equal and stay equal);
2. each rank runs forward and backward on its own share of the global batch;
3. when backward finishes, the gradients are averaged across ranks (all_reduce, then divided
   by the number of ranks), so every rank's optimizer takes the same step.

Because each rank's loss is the mean over its share, the average of their gradients is the
gradient of the mean loss over the whole global batch: N ranks with B/N images each take the
same steps as one process with B images, up to the order of float32 sums.
"""

import contextlib

from ..nn.module import Module
from ..tensor import Function, Tensor, queue_callback
from .buckets import DEFAULT_BUCKET_MB, GradientBuckets
from .process_group import all_reduce, broadcast, world_size


class DistributedDataParallel(Module):
    """``model = DistributedDataParallel(model)``: call it as the model; ``loss.backward()``
    then leaves every parameter's grad averaged over all ranks.

    ``bucket_mb`` sizes the flat buffers gradients travel in (buckets.py). ``nccl=True``
    averages CuPy gradients over NCCL instead of MPI (nccl.py). On one process it changes
    nothing. The wrapped model is ``.module``. Unlike PyTorch's wrapper, this one adds no
    "module." to the names: parameters(), state_dict(), train() and the rest reach the model's
    own, so a checkpoint saved with the wrapper loads without it, and the other way round.

    A parameter that gets no gradient on a rank counts as zeros there, and has the averaged
    gradient on every rank afterwards, so the optimizer's weight decay moves it like the others
    (PyTorch's find_unused_parameters leaves such a parameter untouched). A parameter frozen with
    ``requires_grad_(False)`` is left out altogether. The model's output may be a Tensor or a
    tuple or list of them.
    """

    def __init__(self, module, bucket_mb=DEFAULT_BUCKET_MB, nccl=False):
        super().__init__()
        object.__setattr__(self, "module", module)  # not a child: the wrapper adds no level to the names
        self.world_size = world_size()
        self.buckets = GradientBuckets(module.parameters(), bucket_mb)
        self.sync_gradients = True
        self._all_reduce = all_reduce
        if self.world_size > 1:
            if nccl:
                from .nccl import NcclAllReduce

                self._all_reduce = NcclAllReduce()
            for parameter in module.parameters():  # move 1: every rank starts from rank 0's weights
                broadcast(parameter.data, src=0)

    def named_modules(self, prefix=""):
        return self.module.named_modules(prefix)

    def __repr__(self):
        return "DistributedDataParallel(\n  (module): " + repr(self.module).replace("\n", "\n  ") + "\n)"

    def forward(self, *inputs, **options):
        output = self.module(*inputs, **options)
        if self.world_size == 1 or not self.sync_gradients:
            return output
        # Move 3 is queued by the backward of a marker on each output Tensor, so it runs once
        # per backward pass through this model, after every gradient is complete.
        if isinstance(output, Tensor):
            return self._marked(output)
        if isinstance(output, (tuple, list)):
            return type(output)(self._marked(item) if isinstance(item, Tensor) else item for item in output)
        raise TypeError(f"DistributedDataParallel averages the gradients through the model's output: expected a "
                        f"Tensor, or a tuple or list holding Tensors, got {type(output).__name__}")

    def _marked(self, tensor):
        if not tensor.requires_grad:
            return tensor
        return _AverageGradientsAfterBackward.apply(tensor, model=self)

    def average_gradients(self):
        """Average every parameter's grad across ranks (what backward does on its own)."""
        self.buckets.average(self._all_reduce, self.world_size)

    @contextlib.contextmanager
    def no_sync(self):
        """Backward passes inside the block only add to the local grads (gradient accumulation);
        the first backward after it averages what they accumulated."""
        self.sync_gradients = False
        try:
            yield
        finally:
            self.sync_gradients = True


class _AverageGradientsAfterBackward(Function):
    """The identity, whose backward asks the engine to average the gradients once it is done."""

    def __init__(self, model):
        self.model = model

    def forward(self, x):
        return x

    def backward(self, grad_output):
        queue_callback(self.model.average_gradients)
        return (grad_output,)
