"""DistributedSampler: each rank's share of an epoch, so that the ranks together see it once.

Every rank draws the same shuffled order of the whole dataset, from (seed, epoch) alone, and
takes every world_size-th index of it starting at its rank. The shares are disjoint, and they
change each epoch identically on every rank, with no communication.

Taking strided shares also keeps the global batches: with B/N images per rank, step k's batches
on the N ranks together hold positions k*B .. (k+1)*B - 1 of the epoch's order, exactly the
batch one process with batch size B takes at step k. (The order is the DataLoader's own
shuffle, np.random.default_rng([seed, epoch]).permutation.)

The remainder, when the dataset does not divide by world_size: with drop_last=False (the
default, as in PyTorch) the first few indices of the order are repeated so that every rank
gets the same number; those samples count twice that epoch. With drop_last=True the last
len(dataset) % world_size indices of the order are left out instead (different ones each
epoch). Ranks must take equally many steps, or the ones with more wait forever for the others.
"""

import math

import numpy as np


class DistributedSampler:
    """The indices of ``dataset`` that rank ``rank`` of ``num_replicas`` loads in an epoch.

    ``num_replicas`` and ``rank`` default to the running job's (tinynet.distributed). Give it to
    a DataLoader as ``sampler=``; the loader tells it the epoch (set_epoch), so each epoch
    reshuffles and a resumed run repeats the order.
    """

    def __init__(self, dataset, num_replicas=None, rank=None, shuffle=True, seed=0, drop_last=False):
        if num_replicas is None or rank is None:
            from ..distributed import process_group

            num_replicas = process_group.world_size() if num_replicas is None else num_replicas
            rank = process_group.rank() if rank is None else rank
        if not 0 <= rank < num_replicas:
            raise ValueError(f"rank must be in 0..{num_replicas - 1} for num_replicas={num_replicas}, got {rank}")
        self.dataset, self.num_replicas, self.rank = dataset, num_replicas, rank
        self.shuffle, self.seed, self.drop_last = shuffle, seed, drop_last
        self.epoch = 0

    def set_epoch(self, epoch):
        self.epoch = epoch

    def __len__(self):
        count = len(self.dataset)
        return count // self.num_replicas if self.drop_last else math.ceil(count / self.num_replicas)

    @property
    def total_size(self):
        return len(self) * self.num_replicas

    def __iter__(self):
        count = len(self.dataset)
        order = np.random.default_rng([self.seed, self.epoch]).permutation(count) if self.shuffle else np.arange(count)
        if self.total_size > count:  # repeat from the start until every rank has len(self)
            order = np.resize(order, self.total_size)
        return iter(order[self.rank:self.total_size:self.num_replicas].tolist())
