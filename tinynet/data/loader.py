"""DataLoader: batches of samples, shuffled reproducibly, prepared in the background.

Reproducibility comes first, because a resumed training run must see exactly the batches it
would have seen: the order of epoch e depends only on (seed, e), and the generator handed to
a sample's transform only on (seed, e, index). So batches are the same bit for bit whatever
the number of workers, their kind, or how the operating system schedules them.

With num_workers > 0 a pool of threads (Pillow releases the GIL while it decodes and resizes)
or of processes (worker_pool.py: no GIL to share, kept across epochs, batches handed over in
shared memory) prepares the next few batches while the model trains on the current one.

A batch is what the samples are, stacked: arrays give arrays (tinynet's uint8 batches, to be
normalised on the training device), and samples holding Tensors (transforms.ToTensor, a
TensorDataset of Tensors) give Tensors, images (N, C, H, W) and int64 labels, as torch's
DataLoader gives them.
"""

from collections import deque
from concurrent.futures import ThreadPoolExecutor
from functools import partial

import numpy as np

from .. import backend
from ..tensor import Tensor
from .dataset import BadImageError, sample_rng
from .worker_pool import WorkerPool

WORKER_TYPES = ("thread", "process")


def _as_array(value):
    """A sample's image or label as an array: a Tensor's data; a Python float as float32."""
    if isinstance(value, Tensor):
        return value.data
    return np.asarray(value, np.float32) if isinstance(value, float) else np.asarray(value)


def _stack(samples, indices, allocate=None):
    """The samples as one array, stacked into `allocate(shape, dtype)` when that gives one."""
    shapes = {sample.shape for sample in samples}
    if len(shapes) > 1:
        raise ValueError(
            f"samples {list(indices)} have different shapes {sorted(shapes)} and cannot form a "
            "batch; give the dataset a transform that makes them one size (Resize, crops)"
        )
    dtype = np.result_type(*(sample.dtype for sample in samples))
    out = allocate((len(samples), *samples[0].shape), dtype) if allocate is not None else None
    # One copy per sample: a flipped or channels-first view is laid out as it is copied.
    return backend.xp_of(samples[0]).stack(samples, out=out)


def _stack_labels(labels, indices, as_tensor):
    """The labels as one array (integers as int64), or a Tensor when the samples held Tensors."""
    stacked = _stack(labels, indices)
    if stacked.dtype.kind in "iu":
        stacked = stacked.astype(np.int64)
    return Tensor(stacked) if as_tensor else stacked


def _load_batch(dataset, indices, seed, epoch, allocate=None):
    """Load and stack the samples `indices`: (images, labels, paths of skipped bad images)."""
    images, labels, skipped = [], [], []
    holds_tensors = False
    for index in indices:
        try:
            image, label = dataset.get(index, sample_rng(seed, epoch, index))
        except BadImageError as error:
            if not getattr(dataset, "skip_bad", False):
                raise
            skipped.append(error.path)
            continue
        except Exception as error:
            error.add_note(f"(raised while loading sample {index} in epoch {epoch})")
            raise
        holds_tensors = holds_tensors or isinstance(image, Tensor) or isinstance(label, Tensor)
        images.append(_as_array(image))
        labels.append(_as_array(label))
    if not images:
        return None, np.zeros(0, np.int64), skipped
    return _stack(images, indices, allocate), _stack_labels(labels, indices, holds_tensors), skipped


def _batch(images, labels):
    """(images, labels) as the training loop receives them. Labels that are a Tensor say the
    samples held Tensors: made whole in the worker, they travel pickled, while the images come
    back as an array (from shared memory when the workers are processes) and are wrapped here."""
    return (Tensor(images), labels) if isinstance(labels, Tensor) else (images, labels)


class DataLoader:
    """Iterate over a dataset in batches of (images, labels).

    images stacks the samples as the dataset's transform leaves them (for example uint8
    (N, C, H, W), or a float32 Tensor after ToTensor); labels is int64 (N,), a Tensor when the
    samples held Tensors. `DataLoader(dataset, batch_size=64, shuffle=True)` reads as in
    PyTorch, but the order is drawn from `seed`, so every run shuffles alike. Each complete
    pass adds one to `epoch`; set it (or call set_epoch) to resume a run, and set `start_batch`
    to resume within an epoch. Samples that an ImageFolder with skip_bad=True cannot decode
    are left out of their batch, which is then smaller.

    `sampler` (a DistributedSampler, or any iterable of indices with a length) replaces the
    loader's own order: under mpiexec, each rank loads its share of every epoch.

    num_workers=0 loads in the calling thread. Otherwise `worker_type` "thread" or "process"
    pools prepare up to num_workers * prefetch batches ahead, in order.

    Processes scale past the GIL (threads stop gaining at about eight cores). They start with
    "spawn" (safe beside threads and CUDA, the same on every system) when the first epoch
    begins, each receives a pickled copy of the dataset, and they stay for the following
    epochs; `close()` (or `with DataLoader(...) as loader:`, or dropping the loader) stops
    them. Another dataset, or one of another length, restarts them; any other change to the
    dataset after they started is not seen by them: call close() after making it. As with any "spawn" pool,
    the script that creates the loader must run its work under `if __name__ == "__main__":`.
    """

    def __init__(self, dataset, batch_size=1, shuffle=False, drop_last=False, seed=0,
                 num_workers=0, worker_type="thread", prefetch=2, sampler=None):
        if sampler is not None and shuffle:
            raise ValueError("sampler and shuffle=True exclude each other: the sampler decides the order "
                             "(DistributedSampler(dataset, shuffle=True) shuffles)")
        if batch_size < 1 or num_workers < 0 or prefetch < 1:
            raise ValueError(
                f"need batch_size >= 1, num_workers >= 0 and prefetch >= 1; got {batch_size}, "
                f"{num_workers} and {prefetch}"
            )
        if worker_type not in WORKER_TYPES:
            raise ValueError(f"worker_type must be one of {WORKER_TYPES}, got {worker_type!r}")
        self.dataset = dataset
        self.sampler = sampler
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.drop_last = drop_last
        self.seed = seed
        self.num_workers = num_workers
        self.worker_type = worker_type
        self.prefetch = prefetch
        self.epoch = 0
        self.start_batch = 0
        self._pool = None  # the worker processes, kept across epochs

    def close(self):
        """Stop the worker processes, if any (a later epoch starts new ones)."""
        if self._pool is not None:
            self._pool.close()
            self._pool = None

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

    def __getstate__(self):  # a copy of the loader gets no share in this one's processes
        return {**self.__dict__, "_pool": None}

    def set_epoch(self, epoch):
        self.epoch = epoch

    def __len__(self):
        full, rest = divmod(len(self.sampler if self.sampler is not None else self.dataset), self.batch_size)
        return full if self.drop_last or rest == 0 else full + 1

    def batch_indices(self, epoch):
        """The sample indices of each batch of `epoch`, in order."""
        order = self._order(epoch)
        return [order[start:start + self.batch_size].tolist()
                for start in range(0, len(self) * self.batch_size, self.batch_size)]

    def _order(self, epoch):
        """The sample indices of `epoch` in the order they are loaded."""
        if self.sampler is not None:
            if hasattr(self.sampler, "set_epoch"):
                self.sampler.set_epoch(epoch)  # the loader numbers the epochs, so a resumed run needs only `epoch`
            return np.fromiter(iter(self.sampler), np.int64)
        if self.shuffle:
            return np.random.default_rng([self.seed, epoch]).permutation(len(self.dataset))
        return np.arange(len(self.dataset))

    def __iter__(self):
        # start_batch > 0 resumes an epoch that was interrupted part way (it applies once).
        epoch, first, self.start_batch = self.epoch, self.start_batch, 0
        batches = self.batch_indices(epoch)[first:]
        if self.num_workers == 0:
            results = (_load_batch(self.dataset, indices, self.seed, epoch) for indices in batches)
        elif self.worker_type == "process":
            results = self._processes().run(batches, self.seed, epoch)
        else:
            results = self._threads(batches, epoch)
        try:
            for images, labels, skipped in results:
                self._record_skipped(skipped)
                if len(labels):
                    yield _batch(images, labels)
        finally:
            results.close()  # left early: threads stop at once, processes drop the batches in flight
        self.epoch = epoch + 1

    def _record_skipped(self, paths):
        skipped = getattr(self.dataset, "skipped", None)
        if skipped is not None:
            skipped.extend(path for path in paths if path not in skipped)

    def _processes(self):
        # The pool's own finalizer stops it once nothing holds it (this loader, an iteration).
        slots = self.num_workers * self.prefetch
        if self._pool is None or not self._pool.serves(self.dataset, self.num_workers, slots):
            self.close()
            self._pool = WorkerPool(_load_batch, self.dataset, self.num_workers, slots)
        return self._pool

    def _threads(self, batches, epoch):
        pool = ThreadPoolExecutor(self.num_workers, thread_name_prefix="tinynet-loader")
        load = partial(_load_batch, self.dataset)
        pending = deque()
        try:
            for indices in batches:
                pending.append(pool.submit(load, indices, self.seed, epoch))
                if len(pending) >= self.num_workers * self.prefetch:
                    yield pending.popleft().result()  # re-raises a worker's exception here
            while pending:
                yield pending.popleft().result()
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
