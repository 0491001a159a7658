"""Averaging CuPy gradients over NCCL, GPU to GPU, without a trip through host memory.

MPI moves host memory unless it was built CUDA-aware; then every bucket of gradients goes
GPU -> host -> network -> host -> GPU. NCCL (NVIDIA's collectives, which CuPy wraps as
cupy.cuda.nccl) reduces in GPU memory over NVLink or the network. MPI still starts the job:
rank 0 makes NCCL's unique id and broadcasts it to the others, as ChainerMN did.
"""

import socket

from .process_group import all_gather_object, broadcast_object_list, rank, world_size


class NcclAllReduce:
    """``all_reduce(buffer)`` summing a contiguous CuPy array across ranks, in place, on
    the current stream. Each rank must use its own GPU (init() picks the local rank's)."""

    def __init__(self):
        try:
            import cupy
            from cupy.cuda import nccl
        except ImportError as error:
            raise RuntimeError("NCCL averaging needs CuPy built with NCCL (pip install -e '.[gpu]'); "
                               "without it, leave nccl=False: MPI averages through host memory") from error
        if not nccl.available:
            raise RuntimeError("this CuPy has no NCCL; leave nccl=False: MPI averages through host memory")
        self.cupy, self.nccl = cupy, nccl
        check_one_gpu_each(all_gather_object([], (socket.gethostname(), cupy.cuda.Device().id)))
        [unique_id] = broadcast_object_list([nccl.get_unique_id() if rank() == 0 else None])
        self.comm = nccl.NcclCommunicator(world_size(), unique_id, rank())
        self.types = {"float16": nccl.NCCL_FLOAT16, "float32": nccl.NCCL_FLOAT32, "float64": nccl.NCCL_FLOAT64}

    def __call__(self, buffer):
        if self.cupy.get_array_module(buffer) is not self.cupy:
            raise TypeError("NCCL reduces GPU arrays; the model is on the CPU: leave nccl=False")
        stream = self.cupy.cuda.get_current_stream()
        self.comm.allReduce(buffer.data.ptr, buffer.data.ptr, buffer.size, self.types[buffer.dtype.name],
                            self.nccl.NCCL_SUM, stream.ptr)
        return buffer


def check_one_gpu_each(placements):
    """Raise if two ranks, given by their (host, GPU id), would share a GPU: NCCL needs a GPU
    per rank (with fewer GPUs than ranks on a machine, init() hands one to several)."""
    seen = {}
    for each, placement in enumerate(placements):
        if placement in seen:
            host, gpu = placement
            raise RuntimeError(f"ranks {seen[placement]} and {each} both use GPU {gpu} of {host}: NCCL needs a GPU "
                               "per rank; start as many ranks per machine as it has GPUs, or leave nccl=False")
        seen[placement] = each
