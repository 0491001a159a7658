"""Which process this is, among how many, and the collective operations between them, on MPI.

``mpiexec -n N python script.py`` starts N copies of one script, the ranks 0..N-1. ``init()``
joins them through mpi4py; after it, ``rank()`` and ``world_size()`` tell each copy who it is,
and the collectives below move arrays between them: every rank calls the same ones in the same
order, or the job waits forever.

Run without a launcher (a plain ``python script.py``), or under ``mpiexec -n 1``, there is one
process: every collective returns at once and mpi4py is not even imported. So one script runs
unchanged on a laptop and on a cluster.

A rank that raises would leave the others waiting in their next collective (MPI has no
timeout), so ``init()`` makes an uncaught exception abort the whole job, with its traceback
and one line that names the rank. A rank killed outright is reaped by ``mpiexec`` itself,
which then stops the others.
"""

import os
import shutil
import sys
import time

import numpy as np

from .. import backend
from ..tensor import Tensor

# Variables that set the threads of BLAS (and OpenMP) in a process.
THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")

# What MPI launchers set in every process they start: MPICH's and Intel MPI's mpiexec (and
# srun with PMI), Open MPI's mpirun, MVAPICH's. Read before importing mpi4py, whose import
# starts MPI.
LAUNCHER_SIZE_VARIABLES = ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "MV2_COMM_WORLD_SIZE")


class ReduceOp:
    """How all_reduce combines the ranks' arrays, by PyTorch's names."""

    SUM, MAX, MIN = "sum", "max", "min"


class _OneProcess:
    """The world of a run without a launcher: rank 0 of 1, and no communication."""

    rank, size, local_rank, local_size = 0, 1, 0, 1


class _MPIWorld:
    """The ranks that mpiexec started, joined by MPI.COMM_WORLD."""

    def __init__(self, expected_size):
        try:
            from mpi4py import MPI
        except ImportError as error:
            raise RuntimeError(
                f"this process is one of {expected_size} started by mpiexec, but mpi4py is not installed: "
                "pip install -e '.[mpi]' (it brings mpi4py and an MPI with its mpiexec)") from error
        self.MPI, self.comm = MPI, MPI.COMM_WORLD
        self.rank, self.size = self.comm.Get_rank(), self.comm.Get_size()
        if self.size != expected_size:
            # Each process thinks it is alone: the launcher belongs to another MPI than mpi4py's.
            library = MPI.Get_library_version().splitlines()[0]
            raise RuntimeError(
                f"mpiexec started {expected_size} processes but MPI sees {self.size}: the mpiexec on PATH "
                f"({shutil.which('mpiexec') or 'none'}) is not from the MPI that mpi4py uses ({library}); "
                "run the mpiexec installed beside mpi4py (pip install mpich puts it in the environment's bin/)")
        # The ranks on the same machine, whichever MPI: which GPU this rank takes, how many cores.
        machine = self.comm.Split_type(MPI.COMM_TYPE_SHARED)
        self.local_rank, self.local_size = machine.Get_rank(), machine.Get_size()
        self.operations = {ReduceOp.SUM: MPI.SUM, ReduceOp.MAX: MPI.MAX, ReduceOp.MIN: MPI.MIN}
        self.cuda_aware = bool(getattr(MPI, "Query_cuda_support", lambda: False)())


_world = None


def launched_size():
    """How many processes the launcher started (1 when there is no launcher)."""
    for name in LAUNCHER_SIZE_VARIABLES:
        if os.environ.get(name, "").isdigit():
            return int(os.environ[name])
    return 1


def init():
    """Join the other ranks of an ``mpiexec`` run (idempotent). Returns world_size().

    Called by the functions below when needed, so calling it first is optional; it is where a
    missing mpi4py or a mismatched mpiexec is reported.
    """
    global _world
    if _world is None:
        size = launched_size()
        _world = _MPIWorld(size) if size > 1 else _OneProcess()
        if _world.size > 1:
            _abort_on_uncaught_exceptions()
            _use_own_gpu(_world.local_rank)
            _share_cores(_world.local_size)
    return _world.size


def init_process_group(backend="mpi"):
    """PyTorch's name for init(); MPI is the only process group ("nccl" is a DDP option)."""
    if backend != "mpi":
        raise ValueError(f"tinynet's processes talk over MPI: init_process_group('mpi'), got {backend!r}; "
                         "NCCL averages gradients when DistributedDataParallel(..., nccl=True) asks for it")
    return init()


def is_initialized():
    return _world is not None


def _get_world():
    init()
    return _world


def rank():
    """This process's number, 0..world_size()-1 (0 without a launcher)."""
    return _get_world().rank


def world_size():
    """How many processes take part (1 without a launcher)."""
    return _get_world().size


def local_rank():
    """This process's number among the ranks on its own machine."""
    return _get_world().local_rank


def _share_cores(local_size):
    """Ranks on one machine share its cores: BLAS in each takes cores / ranks threads, unless
    the environment sets a thread count. Left alone, each rank would start a thread per core,
    N ranks N times too many, and OpenBLAS's spinning threads then slow every step several
    times (the small AlexNet on 2 cores: 71 img/s with 2 ranks of 2 threads, 1,026 with 1)."""
    if local_size == 1 or any(name in os.environ for name in THREAD_VARIABLES):
        return
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    threads = max(1, cores // local_size)
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        print(f"warning: {local_size} ranks share this machine's {cores} cores, and BLAS in each may use all of "
              f"them: pip install threadpoolctl (in the [mpi] extra), or set OMP_NUM_THREADS={threads}",
              file=sys.stderr)
        return
    threadpool_limits(threads, user_api="blas")


def _use_own_gpu(local_rank):
    """Ranks on one machine with several GPUs take one each (CuPy's current device, which
    tinynet runs on); ranks beyond the GPU count share them round-robin."""
    count = backend.gpu_count()
    if count > 1:
        backend.cupy.cuda.Device(local_rank % count).use()


get_rank, get_world_size = rank, world_size  # PyTorch's names


def _array(tensor):
    return tensor.data if isinstance(tensor, Tensor) else tensor


def _host_stage(array, world):
    """MPI reads host memory unless it is CUDA-aware: a CuPy array goes through a NumPy copy."""
    if backend.xp_of(array) is np:
        return array
    if world.cuda_aware:
        backend.xp_of(array).cuda.get_current_stream().synchronize()  # MPI does not wait for CuPy's stream
        return array
    return backend.to_numpy(array)


def _copy_back(staged, array):
    if staged is not array:
        array[...] = backend.to_device(staged, backend.device_of(array))


def all_reduce(tensor, op=ReduceOp.SUM):
    """Combine ``tensor`` (a Tensor or an array) across ranks, in place: afterwards every rank
    holds the sum (or max, min) of all ranks' values. Returns it."""
    world, array = _get_world(), _array(tensor)
    if world.size > 1:
        staged = _contiguous(_host_stage(array, world))
        world.comm.Allreduce(world.MPI.IN_PLACE, staged, op=world.operations[op])
        _copy_back(staged, array)
    return tensor


def broadcast(tensor, src=0):
    """Overwrite ``tensor`` (a Tensor or an array) on every rank with rank ``src``'s, in place."""
    world, array = _get_world(), _array(tensor)
    if world.size > 1:
        staged = _contiguous(_host_stage(array, world))
        world.comm.Bcast(staged, root=src)
        _copy_back(staged, array)
    return tensor


def all_gather(tensor_list, tensor):
    """Fill ``tensor_list`` with every rank's ``tensor``, in rank order (PyTorch's signature);
    all ranks' tensors have one shape and dtype."""
    world, array = _get_world(), _array(tensor)
    staged = _contiguous(_host_stage(array, world))
    gathered = backend.xp_of(staged).empty((world.size, *staged.shape), staged.dtype)
    if world.size > 1:
        world.comm.Allgather(staged, gathered)
    else:
        gathered[0] = staged
    tensor_list[:] = [Tensor(backend.to_device(part, backend.device_of(array))) if isinstance(tensor, Tensor)
                      else backend.to_device(part, backend.device_of(array)) for part in gathered]
    return tensor_list


def _contiguous(array):
    if array.flags.c_contiguous:
        return array
    raise ValueError(f"collectives send arrays laid out in one block; got a strided view of shape {array.shape}: "
                     "pass a contiguous copy (x.contiguous(), np.ascontiguousarray)")


def barrier():
    """Wait until every rank has reached this call."""
    world = _get_world()
    if world.size > 1:
        world.comm.Barrier()


def broadcast_object_list(object_list, src=0):
    """Replace the items of ``object_list`` on every rank with rank ``src``'s (pickled)."""
    world = _get_world()
    if world.size > 1:
        object_list[:] = world.comm.bcast(list(object_list), root=src)
    return object_list


def all_gather_object(object_list, obj):
    """Fill ``object_list`` with every rank's ``obj`` (pickled), in rank order."""
    world = _get_world()
    object_list[:] = world.comm.allgather(obj) if world.size > 1 else [obj]
    return object_list


# How long a rank waits before aborting the job, so that the launcher passes on what the
# rank has just printed: MPICH's mpiexec may drop output still in a rank's pipe when an
# abort tears the job down (seen once: an error message lost, the job's stderr empty).
ABORT_GRACE_S = 0.5


def abort(code=1, message=None):
    """Stop every rank of the job now: what one rank does when it cannot go on, rather than
    leave the others waiting for it in a collective. ``message`` goes to stderr first."""
    world = _get_world()
    if message:
        print(message, file=sys.stderr, flush=True)
    if world.size > 1:
        sys.stdout.flush()
        sys.stderr.flush()
        time.sleep(ABORT_GRACE_S)
        world.comm.Abort(code)
    sys.exit(code)


def _abort_on_uncaught_exceptions():
    show = sys.excepthook

    def abort_job(kind, value, traceback):
        show(kind, value, traceback)
        abort(1, f"rank {_world.rank} of {_world.size} stopped with {kind.__name__}; stopping every rank (the "
                 "others would wait for it forever)")

    sys.excepthook = abort_job
