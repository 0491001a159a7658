"""Worker processes for the DataLoader: started once, kept across epochs, batches in shared memory.

Threads stop scaling at about eight cores, because the Python work around each Pillow call holds
the GIL. Processes have a GIL each. Two costs made them slow before: starting fresh "spawn"
processes (each imports NumPy and tinynet) every epoch, and pickling every batch through a pipe.
So this pool starts its processes once and keeps them until the loader is closed, and a
worker writes each batch into a block of shared memory that the main process copies out once.

The protocol, all driven by the main process:
- the main process owns `slots`, blocks of shared memory, one per batch in flight;
- a task names its batch's sample indices and a slot; any idle worker takes it, loads and
  stacks the samples straight into the slot, and answers with the labels and the shape;
- a batch that does not fit its slot (the first ones, before the size is known) comes back
  pickled instead, and the main process then gives that slot the size it needs;
- a worker's exception comes back with the sample index in its notes and is raised again in
  the main process; a worker that dies is reported by its exit code.
Results arrive in any order; `run` yields them in the order of the batches.
"""

import os
import pickle
import queue
import signal
import time
import traceback
import weakref
from functools import partial
from multiprocessing import get_context, shared_memory

import numpy as np

# How long the main process waits for a result before it checks that the workers live, and a
# worker for a task before it checks that the main process lives (so no worker is orphaned).
POLL_SECONDS = 1.0
# How long closing waits for the workers to finish their batches before they are terminated.
JOIN_SECONDS = 5.0


def _attach(attached, slot, name):
    """The worker's mapping of a slot's shared memory, reopened when the slot was replaced."""
    if slot in attached and attached[slot].name != name:
        attached.pop(slot).close()
    if slot not in attached:
        attached[slot] = shared_memory.SharedMemory(name)
    return attached[slot]


def _slot_array(attached, slot, name, size, in_slot, shape, dtype):
    """An array (shape, dtype) in the task's slot, or None if it does not fit."""
    if name is None or int(np.prod(shape)) * np.dtype(dtype).itemsize > size:
        return None
    in_slot.append(np.ndarray(shape, dtype, buffer=_attach(attached, slot, name).buf))
    return in_slot[-1]


def _portable(error, worker):
    """`error`, or a RuntimeError with its text when it cannot travel back by pickle."""
    error.add_note(f"(in DataLoader worker process {worker}, at:\n"
                   f"{''.join(traceback.format_tb(error.__traceback__)).rstrip()})")
    error.__traceback__ = None  # its frames may hold views of a slot; the text above is kept
    try:
        pickle.loads(pickle.dumps(error))
        return error
    except Exception:
        portable = RuntimeError(f"{type(error).__name__}: {error}")
        for note in getattr(error, "__notes__", []):
            portable.add_note(note)
        return portable


def _serve(load_batch, dataset, task, attached, worker):
    """The answer to one task: (task id, kind, images or their shape, labels, skipped)."""
    task_id, indices, seed, epoch, slot, name, size = task
    in_slot = []  # the slot's array, once the samples are stacked into it
    try:
        images, labels, skipped = load_batch(dataset, indices, seed, epoch,
                                             partial(_slot_array, attached, slot, name, size, in_slot))
        if images is None:
            return task_id, "empty", None, labels, skipped
        if in_slot:
            return task_id, "shared", (images.shape, images.dtype.str), labels, skipped
        return task_id, "pickled", images, labels, skipped
    except Exception as error:
        return task_id, "error", _portable(error, worker), None, None
    finally:
        # No view of the slot outlives the task, even one that failed after taking it: closing
        # the block as the worker exits would raise BufferError, or leave the view pointing
        # at memory no longer mapped.
        in_slot.clear()


def _worker_loop(load_batch, dataset, tasks, results, worker, parent):
    # Ctrl-C reaches the whole process group: the main process handles it and stops us.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    attached = {}
    try:
        while True:
            try:
                task = tasks.get(timeout=POLL_SECONDS)
            except queue.Empty:
                if os.getppid() != parent:
                    return  # the main process is gone
                continue
            if task is None:
                return
            results.put(_serve(load_batch, dataset, task, attached, worker))
    finally:
        for block in attached.values():
            block.close()


def _allocate(nbytes, reserved):
    """A new block of shared memory, or None when /dev/shm has not room for it beside the
    `reserved` bytes of blocks made before (a container's default /dev/shm is 64 MB):
    writing past a full /dev/shm kills a process with SIGBUS, so such batches travel by
    pickle instead. A block takes room only once written, hence the reserve."""
    try:
        if os.path.isdir("/dev/shm"):
            stats = os.statvfs("/dev/shm")
            # Twice the block: the room is checked now but taken later, when a worker writes, so
            # as much again is left for whatever fills /dev/shm meanwhile (the other loader's
            # workers, other programs). Refusing costs a pickled batch; running out, a worker.
            if stats.f_bavail * stats.f_frsize < reserved + 2 * nbytes:
                return None
        return shared_memory.SharedMemory(create=True, size=nbytes)
    except OSError:
        return None


def _shutdown(workers, tasks, results, blocks):
    """Stop the workers (asked, then terminated) and free the shared memory. Safe to repeat."""
    try:
        _stop(workers, tasks, results)
    finally:
        # Even when a second Ctrl-C cuts the wait for the workers short. Not before that wait:
        # a worker still attaching a block would register it with the resource tracker after
        # the unlink, and the tracker would report it leaked.
        for block in blocks:
            if block is not None:
                block.close()
                block.unlink()
        blocks.clear()


def _stop(workers, tasks, results):
    """Ask the workers to stop, terminate those still running after JOIN_SECONDS, close the queues."""
    started = [process for process in workers if process.pid is not None]  # start() may have failed
    for _ in started:
        try:
            tasks.put(None)
        except (OSError, ValueError):
            pass
    stopped = True  # every worker read its way to the stop sign
    deadline = time.monotonic() + JOIN_SECONDS
    for process in started:
        process.join(max(0.0, deadline - time.monotonic()))
        if process.is_alive():
            process.terminate()
            process.join(JOIN_SECONDS)
        stopped = stopped and process.exitcode == 0
    for channel in (tasks, results):
        channel.close()
    if stopped:
        tasks.join_thread()  # the thread that fed the tasks' pipe is done: none is left behind
    else:
        tasks.cancel_join_thread()  # nobody reads what is left in the pipe: do not wait on it


def _describe(dataset):
    """`dataset`'s class, and its transform's when it has one, for an error message."""
    transform = getattr(dataset, "transform", None)
    if transform is None:
        return f"the {type(dataset).__name__}"
    name = getattr(transform, "__name__", type(transform).__name__)
    return f"the {type(dataset).__name__} with transform {name}"


class WorkerPool:
    """`num_workers` spawned processes, each holding a copy of `dataset`, that run
    `load_batch(dataset, indices, seed, epoch, allocate) -> (images or None, labels, skipped
    paths)` with up to `slots` batches in flight; `allocate(shape, dtype)` returns an array
    in shared memory to stack the samples into, or None."""

    def __init__(self, load_batch, dataset, num_workers, slots):
        context = get_context("spawn")
        self.dataset, self.dataset_length = dataset, len(dataset)  # what the workers hold a copy of
        self.tasks, self.results = context.Queue(), context.Queue()
        self.workers = [
            context.Process(target=_worker_loop, name=f"tinynet-loader-{worker}", daemon=True,
                            args=(load_batch, dataset, self.tasks, self.results, worker, os.getpid()))
            for worker in range(num_workers)
        ]
        self.blocks = [None] * slots  # the slots' shared memory, None until a batch size is known
        self.free = list(range(slots))
        self.owner = {}  # task id -> slot, for every task sent and not yet answered
        self.wanted = set()  # task ids whose answers a run in progress waits for
        self.inbox = {}  # task id -> answer, received but not yet taken by its run
        self.batch_bytes = 0
        self.next_task = 0
        self.closed = False
        # Closing frees everything even if the pool is only dropped, or the program exits.
        self._finalizer = weakref.finalize(self, _shutdown, self.workers, self.tasks, self.results, self.blocks)
        try:
            for process in self.workers:
                process.start()  # pickles the dataset for the new process
        except (pickle.PicklingError, TypeError, AttributeError) as error:
            self.close()
            raise TypeError(
                f"the DataLoader's worker processes each receive a pickled copy of the dataset, and "
                f"{_describe(dataset)} cannot be pickled ({error}); give it a transform defined at the top "
                "level of a module (a lambda or a local function cannot be pickled), or use "
                'worker_type="thread"') from error

    def serves(self, dataset, num_workers, slots):
        """Whether this pool is open and was started for `dataset` (this very object, still of
        the same length) with `num_workers` processes and `slots` batches in flight."""
        return (not self.closed and dataset is self.dataset and len(dataset) == self.dataset_length
                and num_workers == len(self.workers) and slots == len(self.blocks))

    def close(self):
        self.closed = True
        self._finalizer()

    def run(self, batches, seed, epoch):
        """Yield load_batch's result for each list of indices in `batches`, in order.

        Several runs may be in progress at once (two iterations of one loader): each takes
        its own answers from `inbox`. Leaving early (break, or the generator dropped) keeps
        the pool: the answers to its batches still in flight are dropped as they arrive.
        A worker's error is raised by the run it belongs to, and closes the pool."""
        ids = []  # task id of each batch sent, by position
        done = 0
        try:
            while done < len(batches):
                self._check_open()
                while self.free and len(ids) < min(len(batches), done + len(self.blocks)):
                    ids.append(self._send(batches[len(ids)], seed, epoch))
                    self.wanted.add(ids[-1])
                if len(ids) == done:  # other runs' batches hold every slot: wait for one to free
                    self._receive()
                    continue
                while ids[done] not in self.inbox:
                    self._receive()
                self.wanted.discard(ids[done])
                result = self.inbox.pop(ids[done])
                if isinstance(result, BaseException):
                    raise result
                yield result
                done += 1
        except GeneratorExit:
            self._forget(ids[done:])
            raise
        except BaseException:
            self._forget(ids[done:])
            self.close()
            raise

    def _check_open(self):
        if self.closed:
            raise RuntimeError("the DataLoader's worker processes were stopped (close(), or an error "
                               "in another iteration of the same loader)")

    def _forget(self, task_ids):
        self.wanted.difference_update(task_ids)
        for task_id in task_ids:
            self.inbox.pop(task_id, None)

    def _send(self, indices, seed, epoch):
        slot = self.free.pop()
        block = self.blocks[slot]
        if self.batch_bytes and (block is None or block.size < self.batch_bytes):
            if block is not None:
                block.close()
                block.unlink()
                self.blocks[slot] = None
            reserved = sum(other.size for other in self.blocks if other is not None)
            self.blocks[slot] = block = _allocate(self.batch_bytes, reserved)
        task_id, self.next_task = self.next_task, self.next_task + 1
        self.owner[task_id] = slot
        name, size = (block.name, block.size) if block is not None else (None, 0)
        self.tasks.put((task_id, indices, seed, epoch, slot, name, size))
        return task_id

    def _receive(self):
        """Take the next answer off the queue, free its slot, and keep it in `inbox` if a run
        wants it: (images or None, labels, skipped), or the worker's exception."""
        while True:
            self._check_open()
            try:
                task_id, kind, images, labels, skipped = self.results.get(timeout=POLL_SECONDS)
                break
            except queue.Empty:
                dead = [process for process in self.workers if not process.is_alive()]
                if dead:
                    raise RuntimeError(
                        f"DataLoader worker process {dead[0].name} (pid {dead[0].pid}) exited "
                        f"unexpectedly with code {dead[0].exitcode}") from None
        slot = self.owner.pop(task_id)
        if kind == "shared" and task_id in self.wanted:
            shape, dtype = images
            images = np.ndarray(shape, dtype, buffer=self.blocks[slot].buf).copy()
        elif kind == "pickled":
            self.batch_bytes = max(self.batch_bytes, images.nbytes)
        self.free.append(slot)
        if task_id in self.wanted:
            self.inbox[task_id] = images if kind == "error" else (images, labels, skipped)
