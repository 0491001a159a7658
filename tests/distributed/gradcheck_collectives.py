"""Float64 gradient checks of tinynet.distributed.functional, run on every rank:

    mpiexec -n 2 python tests/distributed/gradcheck_collectives.py

Exits 1 (after printing the worst error of each case) if any check fails or a forward result
is not what the ranks' inputs make.

A gradient check perturbs one input entry and watches the loss move. Across ranks two things
get in the way: the ranks differentiate the sum of their losses together, while each rank's
check sees only its own loss; and every rank's check perturbs its own input at the same
moment. So each case is checked once per rank, the "owner": only the owner's loss counts (the
others multiply theirs by zero) and it holds every rank's outputs (gathered), so the owner's
check sees the whole objective move; the other ranks feed their fixed inputs and perturb an
input that is multiplied by zero. Every rank's output still depends on the owner's input and
back, so the all_reduce in the backward is needed for the owner's gradient to be right.
"""

import sys

import numpy as np

import tinynet
import tinynet.distributed as dist
from tinynet.gradcheck import gradcheck

TOLERANCE = 1e-6


def rank_inputs(shape, seed):
    """Every rank's input, known to all (the same generator on each)."""
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(shape) for _ in range(dist.world_size())]


def objective(collective, inputs, owner, rank_weight):
    """The function that rank ``owner`` checks; the others run it alongside."""
    rank = dist.rank()

    def fn(x):
        live = x if rank == owner else x * 0.0 + tinynet.Tensor(inputs[rank])
        shared = collective(live)
        # Each rank uses the shared result in its own way, nonlinearly, so the gradient of a
        # rank's input depends on every rank's use of it.
        used = shared * shared * tinynet.Tensor(rank_weight(shared.shape, rank))
        everyone = dist.functional.all_gather(used, dim=0)
        return everyone if rank == owner else everyone * 0.0

    return fn


def weights_for(shape, rank):
    return np.random.default_rng(100 + rank).standard_normal(shape)


def joined(dim):
    """What all_gather returns: every rank's input, concatenated along dim."""
    return lambda inputs, rank: np.concatenate(inputs, axis=dim)


def with_halo(width):
    """What halo_exchange along dim 1 returns on ``rank``."""

    def expected(inputs, rank):
        before = [inputs[rank - 1][:, -width:]] if rank > 0 else []
        after = [inputs[rank + 1][:, :width]] if rank < len(inputs) - 1 else []
        return np.concatenate([*before, inputs[rank], *after], axis=1)

    return expected


# name: (the collective, what it returns from every rank's input, the shape of each input)
CASES = {
    "all_gather, dim 0": (lambda x: dist.functional.all_gather(x, dim=0), joined(0), (2, 3, 4)),
    "all_gather, dim 1": (lambda x: dist.functional.all_gather(x, dim=1), joined(1), (2, 3, 4)),
    "all_gather, last dim": (lambda x: dist.functional.all_gather(x, dim=-1), joined(2), (3, 2, 3)),
    "halo_exchange, width 2 of 5 channels": (lambda x: dist.functional.halo_exchange(x, 2, dim=1), with_halo(2),
                                             (2, 5, 2, 3)),
}


def main():
    rank, failures = dist.rank(), []
    for seed, (name, (collective, expected, shape)) in enumerate(CASES.items()):
        inputs = rank_inputs(shape, seed)
        with tinynet.no_grad():
            result = collective(tinynet.Tensor(inputs[rank])).data
        if not np.array_equal(result, expected(inputs, rank)):
            failures.append(f"{name}: forward differs from the ranks' inputs joined")
        for owner in range(dist.world_size()):
            error = gradcheck(objective(collective, inputs, owner, weights_for), [inputs[rank]])
            if rank == owner:
                print(f"rank {rank}: {name}: worst relative error {error:.1e}", flush=True)
                if not error < TOLERANCE:
                    failures.append(f"{name}: gradient error {error:.1e} on rank {rank} (tolerance {TOLERANCE})")
    for failure in failures:
        print(f"rank {rank}: FAILED {failure}", flush=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
