"""Training across processes and machines, on MPI (mpi4py): torch.distributed's names.

    mpiexec -n 4 python train.py

    import tinynet.distributed as dist
    model = dist.DistributedDataParallel(model)                 # rank 0's weights on every rank
    sampler = dist.DistributedSampler(dataset, shuffle=True)   # each rank its share of each epoch
    loader = DataLoader(dataset, batch_size // dist.world_size(), sampler=sampler)
    ...
    loss.backward()                                              # grads averaged over the ranks

Without mpiexec (or with -n 1) there is one process and all of it is a no-op.
"""

from ..data.distributed_sampler import DistributedSampler
from . import functional
from .buckets import GradientBuckets
from .ddp import DistributedDataParallel
from .process_group import (
    ReduceOp,
    abort,
    all_gather,
    all_gather_object,
    all_reduce,
    barrier,
    broadcast,
    broadcast_object_list,
    get_rank,
    get_world_size,
    init,
    init_process_group,
    is_initialized,
    launched_size,
    local_rank,
    rank,
    world_size,
)

__all__ = [
    "DistributedDataParallel", "DistributedSampler", "GradientBuckets", "ReduceOp",
    "init", "init_process_group", "is_initialized", "launched_size", "rank", "world_size", "local_rank",
    "get_rank", "get_world_size", "all_reduce", "broadcast", "all_gather", "barrier",
    "broadcast_object_list", "all_gather_object", "abort", "functional",
]
