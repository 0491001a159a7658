"""Data parallelism changes nothing but the speed: the small AlexNet trained for a few SGD steps
(dropout off) with a global batch of 16, in as many processes as this is started with.

    python equivalence.py OUT.npz [DEVICE]                 # one process, batches of 16
    mpiexec -n 2 python equivalence.py OUT.npz [DEVICE]    # two, each 8 images of every batch

Rank 0 writes the final weights to OUT.npz; run both and compare. DEVICE is cpu (default) or gpu.
"""

import sys

import numpy as np

import alexnet
import tinynet
import tinynet.distributed as dist
from tinynet import nn, optim
from tinynet.experiment import batch_preparer, image_data
from tinynet.train import train_epoch

GLOBAL_BATCH, STEPS = 16, 6


def main(out, device="cpu"):
    data = image_data("fashion-mnist", 28, GLOBAL_BATCH, seed=3, limit=GLOBAL_BATCH * STEPS,
                      shard=(dist.rank(), dist.world_size()))
    tinynet.manual_seed(dist.rank())  # each rank its own weights: the wrapper must start them all from rank 0's
    model = alexnet.AlexNet("small", 10, 1).to(device)
    for layer in model.modules():
        if isinstance(layer, nn.Dropout):
            layer.p = 0.0
    model = dist.DistributedDataParallel(model, bucket_mb=0.5)  # several buckets
    sgd = optim.SGD(model.parameters(), lr=0.02, momentum=0.9, weight_decay=5e-4, update="paper")
    stats = train_epoch(model, data.train, sgd, batch_preparer(data.mean, data.std, device), progress=False)
    assert stats["steps"] == STEPS, stats
    weights = {name: tinynet.backend.to_numpy(array) for name, array in model.state_dict().items()}
    for other in dist.all_gather_object([], weights)[1:]:  # the replicas stayed identical, bit for bit
        assert all(np.array_equal(other[name], weights[name]) for name in weights), "the ranks' weights differ"
    if dist.rank() == 0:
        np.savez(out, mean_loss=stats["loss"], **weights)


if __name__ == "__main__":
    main(*sys.argv[1:])
