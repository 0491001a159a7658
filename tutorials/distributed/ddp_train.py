"""Data parallelism on two processes: DistributedDataParallel against one process.

    mpiexec -n 2 python tutorials/distributed/ddp_train.py [--steps 10] [--batch 64]

Both ranks train the small AlexNet on the embedded Fashion-MNIST with SGD, each on its half of
every global batch of --batch images (DistributedSampler). The ranks seed their generators
differently, so they start from different weights; DistributedDataParallel's first move,
the broadcast of rank 0's weights, makes them equal. After every backward it averages the
gradients, so the ranks take identical steps.

Rank 0 also trains a plain copy of the same start on the whole global batches, as one process
would. The script prints both runs' losses and how far their weights end apart. Dropout is off
(eval mode; gradients still flow): each rank would draw its own masks, and one process others.
"""

import argparse
import copy
import sys

import numpy as np

import alexnet
import tinynet
import tinynet.distributed as dist
import tinynet.functional as F
from tinynet import optim
from tinynet.data import FASHION_MNIST_MEAN, FASHION_MNIST_STD, DataLoader, TensorDataset, load_fashion_mnist


def normalised(images):
    return tinynet.Tensor(((images / 255 - FASHION_MNIST_MEAN[0]) / FASHION_MNIST_STD[0]).astype(np.float32))


def largest_difference(model, other):
    return max(float(np.abs(a.data - b.data).max()) for a, b in zip(model.parameters(), other.parameters()))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--batch", type=int, default=64, help="the global batch, over all ranks")
    parser.add_argument("--lr", type=float, default=0.02)
    args = parser.parse_args()
    rank, world = dist.rank(), dist.world_size()
    if args.batch % world:
        dist.abort(2, f"--batch {args.batch} does not split into {world} equal shares")

    images, labels = load_fashion_mnist()[:2]
    dataset = TensorDataset(images, labels)
    tinynet.manual_seed(rank)  # a different start on each rank, to see the broadcast at work
    model = alexnet.AlexNet("small", num_classes=10, in_channels=1).eval()
    alone = copy.deepcopy(model) if rank == 0 else None  # one process, from rank 0's start
    before = [p.data.copy() for p in model.parameters()]
    model = dist.DistributedDataParallel(model)  # move 1: rank 0's weights on every rank
    moved = max(float(np.abs(p.data - b).max()) for p, b in zip(model.parameters(), before))
    changes = []
    dist.all_gather_object(changes, moved)
    if rank == 0:
        print("the broadcast changed the weights by up to: " + ", ".join(
            f"{change:.3f} on rank {r}" for r, change in enumerate(changes)))
    start = [p.data.copy() for p in model.parameters()]

    # Move 2: each rank its share of every global batch; one process takes the whole batch.
    shares = DataLoader(dataset, args.batch // world, sampler=dist.DistributedSampler(dataset, shuffle=True))
    optimizer = optim.SGD(model.parameters(), lr=args.lr, momentum=0.9)
    if rank == 0:
        batches = iter(DataLoader(dataset, args.batch, shuffle=True))
        alone_optimizer = optim.SGD(alone.parameters(), lr=args.lr, momentum=0.9)
        print(f"\n{'step':>4}  {f'loss, {world} ranks':>14}  {'loss, 1 process':>15}  {'weights apart':>13}")
    for step, (x, y) in zip(range(args.steps), shares):
        loss = F.cross_entropy(model(normalised(x)), y)
        optimizer.zero_grad()
        loss.backward()  # move 3: the gradients are averaged over the ranks when it ends
        optimizer.step()
        mean_loss = dist.all_reduce(np.array([loss.item()]))[0] / world  # the global batch's loss
        if rank == 0:
            x_all, y_all = next(batches)
            whole_loss = F.cross_entropy(alone(normalised(x_all)), y_all)
            alone_optimizer.zero_grad()
            whole_loss.backward()
            alone_optimizer.step()
            apart = largest_difference(model, alone)
            print(f"{step:>4}  {mean_loss:>14.6f}  {whole_loss.item():>15.6f}  {apart:>13.1e}")

    gathered = []
    dist.all_gather_object(gathered, [p.data for p in model.parameters()])
    if rank == 0:
        between_ranks = max((float(np.abs(a - b).max()) for other in gathered[1:] for a, b in zip(gathered[0], other)),
                            default=0.0)
        print(f"\nafter {args.steps} steps of {args.batch} images:")
        print(f"  the ranks' weights differ by {between_ranks:.1e} (identical: {between_ranks == 0})")
        print(f"  {world} ranks against 1 process: largest weight difference {largest_difference(model, alone):.1e}")
        trained = max(float(np.abs(p.data - s).max()) for p, s in zip(model.parameters(), start))
        print(f"  (training moved the weights by up to {trained:.1e})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
