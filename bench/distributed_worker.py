"""One rank of ``bench/distributed.py``: AlexNet training steps under DistributedDataParallel.

    OPENBLAS_NUM_THREADS=2 python bench/distributed_worker.py --batch 32
    OPENBLAS_NUM_THREADS=1 mpiexec -n 2 python bench/distributed_worker.py --batch 32

Every rank builds the same model (seed 0), takes its share of one fixed global batch and
times each training step: forward, cross-entropy, backward (which averages the gradients
across the ranks) and a momentum SGD update. The averaging is timed by wrapping the DDP
object's methods, not by changing the library. Rank 0 prints every rank's times as JSON.
"""

import argparse
import json
import time

import machine  # noqa: F401  (first: it puts the repository root on sys.path)
import numpy as np
from steps import batch_of, tinynet_model

import tinynet.distributed as dist
from tinynet import Tensor
from tinynet import functional as F


class AveragingClock:
    """Seconds a step spends averaging gradients, split three ways: waiting at a barrier for
    the slowest rank to finish its backward, the all_reduce calls themselves, and the rest
    (packing gradients into buckets, dividing, unpacking). Without the barrier, the first
    all_reduce would hide the wait for the other rank inside its own time."""

    def __init__(self, ddp):
        self.reset()
        average_gradients, average_buckets = ddp.average_gradients, ddp.buckets.average

        def timed_average_gradients():
            self.averaging += _seconds(average_gradients)

        def timed_average_buckets(all_reduce, world_size):
            self.wait += _seconds(dist.barrier)

            def timed_all_reduce(flat):
                self.all_reduce += _seconds(lambda: all_reduce(flat))

            average_buckets(timed_all_reduce, world_size)

        ddp.average_gradients, ddp.buckets.average = timed_average_gradients, timed_average_buckets

    def reset(self):
        self.averaging = self.wait = self.all_reduce = 0.0


def _seconds(function):
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


def share_of_batch(global_batch, rank, world_size):
    """This rank's images and labels of the one global batch that a single process would take."""
    if global_batch % world_size:
        raise SystemExit(f"global batch {global_batch} does not split evenly over {world_size} ranks: "
                         f"pick a multiple of {world_size}")
    images, labels = batch_of(global_batch)
    share = global_batch // world_size
    return images[rank * share:(rank + 1) * share], labels[rank * share:(rank + 1) * share]


def weights_checksum(model):
    """A float64 sum of every weight: equal on every rank if DDP kept the replicas equal."""
    return float(sum(np.sum(parameter.data, dtype=np.float64) for parameter in model.parameters()))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", choices=["seed", "paper"], default="seed")
    parser.add_argument("--batch", type=int, default=32, help="global batch, split evenly over the ranks")
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--warmup", type=int, default=2)
    args = parser.parse_args()
    rank, world_size = dist.rank(), dist.world_size()
    images, labels = share_of_batch(args.batch, rank, world_size)
    model, optimizer = tinynet_model(args.preset, "cpu")
    ddp = dist.DistributedDataParallel(model)
    clock = AveragingClock(ddp)
    ddp.train()
    times = []
    for _ in range(args.warmup + args.steps):
        clock.reset()
        start = time.perf_counter()
        optimizer.zero_grad()
        loss = F.cross_entropy(ddp(Tensor(images)), labels)
        loss.backward()
        optimizer.step()
        times.append({"step": time.perf_counter() - start, "averaging": clock.averaging, "wait": clock.wait,
                      "all_reduce": clock.all_reduce})
    report = {"rank": rank, "times": times[args.warmup:],
              "checksum": weights_checksum(model), "peak_rss_mb": machine.peak_rss_mb()}
    reports = dist.all_gather_object([], report)
    if rank == 0:
        print(json.dumps(reports))


if __name__ == "__main__":
    main()
