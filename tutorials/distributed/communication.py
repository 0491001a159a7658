"""What one data-parallel step costs on this machine: computing, and averaging the gradients.

    mpiexec -n 2 python tutorials/distributed/communication.py [--preset paper] [--batch 2]

Each rank runs forward and backward of the chosen AlexNet preset on --batch 227x227 images
without averaging (DistributedDataParallel.no_sync), then averages the gradients on their own
(average_gradients: every gradient packed into flat buckets, all_reduce, divide). Both are
timed --repeats times after one untimed warm-up; the script prints the median of the slower
rank's times, with the bytes that were averaged (and writes them to --json, for a notebook).
"""

import argparse
import json
import statistics
import sys
import time

import numpy as np

import alexnet
import tinynet
import tinynet.distributed as dist
import tinynet.functional as F


def slowest(seconds):
    """The slowest rank's time: a step is done when the last rank is."""
    return float(dist.all_reduce(np.array([seconds]), dist.ReduceOp.MAX)[0])


def timed(work, repeats):
    """The median over ``repeats`` of the slowest rank's time for ``work()``, after a warm-up."""
    work()
    times = []
    for _ in range(repeats):
        dist.barrier()  # start together, so that no rank's time includes waiting for another
        start = time.perf_counter()
        work()
        times.append(slowest(time.perf_counter() - start))
    return statistics.median(times)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", choices=("paper", "seed"), default="paper")
    parser.add_argument("--batch", type=int, default=2, help="images per rank")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", help="also write the measurements to this file")
    args = parser.parse_args()
    rank, world = dist.rank(), dist.world_size()

    tinynet.manual_seed(0)
    model = dist.DistributedDataParallel(alexnet.AlexNet(args.preset, num_classes=1000, in_channels=3))
    rng = np.random.default_rng(rank)
    images = tinynet.Tensor(rng.standard_normal((args.batch, 3, 227, 227)).astype(np.float32))
    labels = rng.integers(0, 1000, args.batch)

    def forward_backward():
        with model.no_sync():
            model.zero_grad()
            F.cross_entropy(model(images), labels).backward()

    compute = timed(forward_backward, args.repeats)
    communicate = timed(model.average_gradients, args.repeats)
    if rank == 0:
        values = sum(p.numel() for p in model.parameters())
        megabytes = values * 4 / 1e6
        print(f"{args.preset} AlexNet on {world} ranks, {args.batch} images per rank, median of {args.repeats}:")
        print(f"  forward + backward:        {compute:6.3f} s per step ({compute / args.batch:.3f} s per image)")
        print(f"  averaging the gradients:   {communicate:6.3f} s per step ({values:,} float32 values, "
              f"{megabytes:.0f} MB, in {len(model.buckets.groups)} buckets: {megabytes / communicate:,.0f} MB/s)")
        print(f"  communication / computation: {communicate / compute:.2f}")
        if args.json:
            with open(args.json, "w") as file:
                json.dump(dict(preset=args.preset, ranks=world, batch=args.batch, values=values, compute_s=compute,
                               communicate_s=communicate), file)
    return 0


if __name__ == "__main__":
    sys.exit(main())
