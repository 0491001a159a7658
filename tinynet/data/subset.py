"""Subset and random_split, as in torch.utils.data: a part of a dataset, and a random partition
of one (for example a validation set held out of the training images)."""

import math

import numpy as np

from .. import backend
from .dataset import Dataset


class Subset(Dataset):
    """The samples `indices` of `dataset`, in that order, transformed by `dataset`'s transform."""

    def __init__(self, dataset, indices):
        self.dataset = dataset
        self.indices = [int(index) for index in indices]

    # The DataLoader's handling of unreadable images (ImageFolder) is the whole dataset's.
    skip_bad = property(lambda self: getattr(self.dataset, "skip_bad", False))
    skipped = property(lambda self: getattr(self.dataset, "skipped", None))

    def __len__(self):
        return len(self.indices)

    def load(self, index):
        return self.dataset.load(self.indices[index])

    def get(self, index, rng):
        return self.dataset.get(self.indices[index], rng)


def random_split(dataset, lengths, generator=None):
    """Non-overlapping random Subsets of the given lengths, or fractions of the whole that sum
    to 1, as torch's random_split. The shuffle draws from `generator` (a numpy Generator), by
    default from tinynet's CPU generator, which tinynet.manual_seed restarts."""
    if generator is not None and not isinstance(generator, np.random.Generator):
        raise TypeError(f"random_split: generator must be a numpy.random.Generator, got {type(generator).__name__}")
    lengths = _whole_lengths(len(dataset), list(lengths))
    order = (generator or backend.generator("cpu")).permutation(len(dataset)).tolist()
    ends = np.cumsum(lengths).tolist()
    return [Subset(dataset, order[end - length:end]) for length, end in zip(lengths, ends)]


def _whole_lengths(total, lengths):
    """Lengths in samples; fractions are rounded down and the samples left over are dealt one
    each to the first parts, as torch does."""
    fractions = all(0 <= length <= 1 for length in lengths) and math.isclose(sum(lengths), 1)
    if fractions:
        counts = [math.floor(total * fraction) for fraction in lengths]
        for part in range(total - sum(counts)):
            counts[part % len(counts)] += 1
        lengths = counts
    if sum(lengths) != total or any(length < 0 or length != int(length) for length in lengths):
        raise ValueError(f"random_split: lengths {lengths} must be whole numbers that sum to the "
                         f"dataset's {total} samples, or fractions that sum to 1")
    return [int(length) for length in lengths]
