"""Gradients packed into a few flat buffers, so that averaging them takes a few large messages.

Every message costs a fixed latency (tens of microseconds on a LAN, more through MPI's
host staging of GPU memory) on top of its bytes. AlexNet has 16 parameter tensors; sent one
by one, the small biases would cost as much latency as the 151 MB fc6 weight. Packed into
buckets of about 25 MB (PyTorch DDP's default), the whole model goes in a handful of messages.
"""

from .. import backend

DEFAULT_BUCKET_MB = 25


class GradientBuckets:
    """The parameters of a model, grouped into flat buffers of at most ``bucket_mb`` megabytes
    (a larger tensor gets a bucket of its own), one dtype and device per bucket."""

    def __init__(self, parameters, bucket_mb=DEFAULT_BUCKET_MB):
        if bucket_mb <= 0:
            raise ValueError(f"bucket_mb must be positive, got {bucket_mb}")
        self.groups = _group(parameters, bucket_mb * 2**20)
        self.buffers = [None] * len(self.groups)  # allocated on first use, on the parameters' device

    def average(self, all_reduce, world_size):
        """Set every parameter's grad to the mean of its grads on all ranks: pack each bucket,
        sum it across ranks with ``all_reduce(buffer)`` (in place), divide, unpack. A parameter
        without a grad on this rank counts as zeros (the others may have one); afterwards every
        parameter has one, the same on every rank."""
        for index, group in enumerate(self.groups):
            flat = self._buffer(index)
            _pack(group, flat)
            all_reduce(flat)
            flat /= world_size
            _unpack(flat, group)

    def _buffer(self, index):
        group = self.groups[index]
        first = group[0]
        if self.buffers[index] is None or backend.device_of(self.buffers[index]) != backend.device_of(first.data):
            size = sum(parameter.numel() for parameter in group)
            self.buffers[index] = backend.xp_of(first.data).empty(size, first.dtype)
        return self.buffers[index]


def _group(parameters, bucket_bytes):
    """Consecutive parameters of one dtype and device, filled up to bucket_bytes; in reverse order, the
    order in which backward completes their gradients (the last layer's first)."""
    groups, current, current_bytes = [], [], 0
    for parameter in reversed([p for p in parameters if p.requires_grad]):
        nbytes = parameter.numel() * parameter.data.itemsize
        alike = current and current[0].dtype == parameter.dtype and current[0].device == parameter.device
        if current and not (alike and current_bytes + nbytes <= bucket_bytes):
            groups.append(current)
            current, current_bytes = [], 0
        current.append(parameter)
        current_bytes += nbytes
    if current:
        groups.append(current)
    return groups


def _pack(group, flat):
    offset = 0
    for parameter in group:
        size = parameter.numel()
        if parameter.grad is None:
            flat[offset:offset + size] = 0
        else:
            flat[offset:offset + size] = parameter.grad.reshape(-1)
        offset += size


def _unpack(flat, group):
    offset = 0
    for parameter in group:
        size, averaged = parameter.numel(), flat[offset:offset + parameter.numel()].reshape(parameter.shape)
        if parameter.grad is not None and parameter.grad.dtype == averaged.dtype:
            parameter.grad[...] = averaged  # into the gradient's own memory: no new array each step
        else:
            # A copy, not a view of the bucket: the next step packs into the same buffer.
            parameter.grad = averaged.copy()
        offset += size
