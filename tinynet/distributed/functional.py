"""Communication that autograd differentiates: the building blocks of model parallelism.

In model parallelism each rank holds part of a layer (some of its kernels, some of its
neurons), and the ranks exchange activations where a layer needs the others' parts, as the
paper's two GPUs did (section 3.2). For ``loss.backward()`` to reach every rank's weights,
the exchange must be a Function with a backward, like any other layer.

What the ranks differentiate together is the sum of their losses, sum over r of L_r: each
collective's backward is the adjoint of its forward over all ranks. So when every rank
computes the same loss from gathered outputs, each rank backpropagates loss / world_size,
as DistributedDataParallel averages gradients. (torch.distributed.nn.functional follows the
same rule.)

    import tinynet.distributed as dist
    maps = dist.functional.all_gather(my_maps, dim=1)   # every rank's channels, in rank order

With one process (no mpiexec) both functions return their input, and their backward the
incoming gradient.
"""

from .. import backend
from ..shapes import cat
from ..tensor import Function, as_tensor
from . import process_group


class AllGather(Function):
    """Concatenate every rank's tensor along ``dim``, in rank order; every rank gets the whole.

    Backward: rank r's slice of the result went to every rank, and each used it in its own
    way, so the gradient of rank r's tensor is the sum over ranks of their gradients of that
    slice: an all_reduce of the incoming gradient, then rank r's slice (a reduce-scatter).
    """

    def __init__(self, dim):
        self.dim = dim

    def forward(self, x):
        xp = backend.xp_of(x)
        self.size = x.shape[self.dim]
        parts = []
        process_group.all_gather(parts, xp.ascontiguousarray(x))
        return xp.concatenate(parts, axis=self.dim)

    def backward(self, grad):
        summed = grad.copy()  # all_reduce works in place, and grad may be shared with other inputs
        process_group.all_reduce(summed)
        start = process_group.rank() * self.size
        index = [slice(None)] * summed.ndim
        index[self.dim] = slice(start, start + self.size)
        return (summed[tuple(index)],)


def all_gather(tensor, dim=0):
    """Every rank's ``tensor`` concatenated along ``dim`` in rank order, differentiably.

    All ranks pass tensors of one shape and dtype, and every rank must call it (it is a
    collective). torch.distributed.nn.functional.all_gather returns the ranks' tensors as a
    tuple instead: torch.cat of that tuple along ``dim`` is this result.
    """
    tensor = as_tensor(tensor)
    return AllGather(_dim(dim, tensor.ndim, "all_gather"))(tensor)


def halo_exchange(tensor, width, dim=1):
    """``tensor`` extended along ``dim`` by its neighbours' edges: the last ``width`` entries
    of rank r-1's tensor in front, the first ``width`` of rank r+1's behind (nothing in front
    on rank 0, nothing behind on the last rank).

    What a layer needs when its window crosses the border between two ranks' parts, such as
    local response normalisation over channels split between two GPUs: each rank computes
    on the extended tensor and keeps its own part. Gradients flow back to the neighbours.
    Built on all_gather (one collective, every rank's edges to every rank), which with two
    ranks is exactly the exchange; with many, point-to-point messages to the two neighbours
    would send less.
    """
    tensor = as_tensor(tensor)
    dim = _dim(dim, tensor.ndim, "halo_exchange")
    size = tensor.shape[dim]
    if not 0 < width <= size:
        raise ValueError(f"halo_exchange: width must be in 1..{size} (the size of dim {dim} of the tensor of "
                         f"shape {tensor.shape}), got {width}")
    rank, world = process_group.rank(), process_group.world_size()
    edges = all_gather(cat([_narrow(tensor, dim, 0, width), _narrow(tensor, dim, size - width, width)], dim), dim)
    # Rank q's edges sit at q * 2 * width in the gathered tensor: its first entries, then its last.
    before = [_narrow(edges, dim, (rank - 1) * 2 * width + width, width)] if rank > 0 else []
    after = [_narrow(edges, dim, (rank + 1) * 2 * width, width)] if rank < world - 1 else []
    return cat([*before, tensor, *after], dim)


def _narrow(tensor, dim, start, length):
    index = [slice(None)] * tensor.ndim
    index[dim] = slice(start, start + length)
    return tensor[tuple(index)]


def _dim(dim, ndim, name):
    if not -ndim <= dim < ndim:
        raise ValueError(f"{name}: dim must be in {-ndim}..{ndim - 1} for a tensor of {ndim} dims, got {dim}")
    return dim % ndim
