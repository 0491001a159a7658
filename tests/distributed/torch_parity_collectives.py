"""tinynet.distributed.functional against torch.distributed.nn.functional, on every rank:

    mpiexec -n 2 python tests/distributed/torch_parity_collectives.py

torch's ranks join over gloo (TCP on this machine, the port chosen by rank 0 and sent over
MPI), tinynet's over MPI. Both gather float32 tensors of the same values, each rank uses the
result in its own way, and the forward results and the input gradients must agree (RTOL 1e-4,
ATOL 1e-5). Exits 1 if they do not.
"""

import socket
import sys

import numpy as np
import torch
import torch.distributed
import torch.distributed.nn.functional

import tinynet
import tinynet.distributed as dist

RTOL, ATOL = 1e-4, 1e-5


def join_torch_ranks():
    port = [None]
    if dist.rank() == 0:
        with socket.socket() as probe:  # a free port, released just before torch takes it
            probe.bind(("127.0.0.1", 0))
            port[0] = probe.getsockname()[1]
    dist.broadcast_object_list(port, src=0)
    torch.distributed.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port[0]}", rank=dist.rank(),
                                         world_size=dist.world_size())


def torch_halo_exchange(x, width):
    """halo_exchange along dim 1 from torch's differentiable all_gather."""
    rank, world = dist.rank(), dist.world_size()
    edges = torch.distributed.nn.functional.all_gather(torch.cat([x[:, :width], x[:, -width:]], 1))
    before = [edges[rank - 1][:, width:]] if rank > 0 else []
    after = [edges[rank + 1][:, :width]] if rank < world - 1 else []
    return torch.cat([*before, x, *after], 1)


# name: (tinynet's collective, torch's, the shape of each rank's input)
CASES = {
    "all_gather, dim 1": (lambda x: dist.functional.all_gather(x, dim=1),
                          lambda x: torch.cat(torch.distributed.nn.functional.all_gather(x), 1), (2, 3, 4)),
    "all_gather, dim 0": (lambda x: dist.functional.all_gather(x, dim=0),
                          lambda x: torch.cat(torch.distributed.nn.functional.all_gather(x), 0), (3, 5)),
    "halo_exchange, width 2": (lambda x: dist.functional.halo_exchange(x, 2, dim=1),
                               lambda x: torch_halo_exchange(x, 2), (2, 6, 3, 3)),
}


def compare(name, ours, theirs):
    ok = np.allclose(ours, theirs, rtol=RTOL, atol=ATOL)
    print(f"rank {dist.rank()}: {name}: max |difference| {np.abs(ours - theirs).max():.1e}"
          f"{'' if ok else '  FAILED'}", flush=True)
    return ok


def main():
    join_torch_ranks()
    rank, results = dist.rank(), []
    for seed, (name, (ours, theirs, shape)) in enumerate(CASES.items()):
        x = np.random.default_rng([seed, rank]).standard_normal(shape).astype(np.float32)
        mine, torch_x = tinynet.Tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
        out, torch_out = ours(mine), theirs(torch_x)
        # A use of the result that differs between ranks, so the backward must sum them.
        weight = np.random.default_rng([seed, rank, 1]).standard_normal(out.shape).astype(np.float32)
        (out * out * tinynet.Tensor(weight)).sum().backward()
        (torch_out * torch_out * torch.tensor(weight)).sum().backward()
        results.append(compare(f"{name} (forward)", out.numpy(), torch_out.detach().numpy()))
        results.append(compare(f"{name} (input gradient)", mine.grad, torch_x.grad.numpy()))
    torch.distributed.destroy_process_group()
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
