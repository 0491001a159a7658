"""The DataLoader's worker processes: the same batches as no worker, kept across epochs,
shared memory for the hand-over, and a clean stop on every way out of the loop."""

import gc
import os
import queue
import signal
import subprocess
import sys
import textwrap
import weakref
from multiprocessing import shared_memory
from pathlib import Path

import numpy as np
import pytest

from tests.batches import assert_same_batches
from tinynet.data import DataLoader, TensorDataset, worker_pool
from tinynet.data import transforms as T

ROOT = Path(__file__).resolve().parent.parent


def augmented_dataset(count=21):
    images = np.random.default_rng(0).integers(0, 256, (count, 9, 9, 3), dtype=np.uint8)
    pipeline = T.Compose([T.RandomCrop(6), T.RandomHorizontalFlip(), T.ToCHW()])
    return TensorDataset(images, np.arange(count), pipeline)


def two_epochs(loader, start_batch=0):
    loader.start_batch = start_batch
    return [batch for _ in range(2) for batch in loader]


def alive(pool):
    return [process.is_alive() for process in pool.workers]


def unlinked(names):
    """Whether none of the shared memory blocks `names` can still be opened."""
    for name in names:
        try:
            shared_memory.SharedMemory(name).close()
            return False
        except FileNotFoundError:
            pass
    return True


def test_any_number_of_processes_gives_the_batches_of_none_and_resumes_exactly():
    loader = DataLoader(augmented_dataset(), batch_size=4, shuffle=True, seed=5)
    serial = two_epochs(loader)
    for workers in (1, 2):
        with DataLoader(augmented_dataset(), batch_size=4, shuffle=True, seed=5, num_workers=workers,
                        worker_type="process", prefetch=1) as processes:
            assert_same_batches(two_epochs(processes), serial)
            processes.set_epoch(0)  # resume in the middle of epoch 0: the same remaining batches
            assert_same_batches(two_epochs(processes, start_batch=3), serial[3:])
    assert not np.array_equal(serial[0][0], serial[6][0])  # the epochs differ


def test_resuming_part_way_gives_the_remaining_batches_for_every_worker_kind():
    expected = two_epochs(DataLoader(augmented_dataset(), batch_size=4, shuffle=True, seed=2))[2:]
    for workers, kind in [(0, "thread"), (2, "thread"), (2, "process")]:
        with DataLoader(augmented_dataset(), batch_size=4, shuffle=True, seed=2, num_workers=workers,
                        worker_type=kind) as loader:
            assert_same_batches(two_epochs(loader, start_batch=2), expected)


def test_processes_stay_across_epochs_and_hand_batches_over_in_shared_memory():
    with DataLoader(augmented_dataset(), batch_size=4, num_workers=2, worker_type="process") as loader:
        list(loader)
        pool = loader._pool
        pids = [process.pid for process in pool.workers]
        names = [block.name for block in pool.blocks if block is not None]
        assert names, "no batch went through shared memory"
        list(loader)
        assert loader._pool is pool and [process.pid for process in pool.workers] == pids
        assert all(alive(pool))
    assert loader._pool is None and not any(alive(pool)) and unlinked(names)


def test_batches_travel_by_pickle_when_shared_memory_is_short(monkeypatch):
    monkeypatch.setattr(worker_pool, "_allocate", lambda nbytes, reserved: None)
    expected = two_epochs(DataLoader(augmented_dataset(), batch_size=4, seed=1))
    with DataLoader(augmented_dataset(), batch_size=4, seed=1, num_workers=2, worker_type="process") as loader:
        assert_same_batches(two_epochs(loader), expected)
        assert loader._pool.blocks == [None] * 4


def test_leaving_the_loop_early_keeps_the_processes_and_drops_stale_batches():
    expected = two_epochs(DataLoader(augmented_dataset(), batch_size=2, shuffle=True, seed=3))
    loader = DataLoader(augmented_dataset(), batch_size=2, shuffle=True, seed=3, num_workers=2,
                        worker_type="process", prefetch=3)
    for _ in loader:
        break  # six batches were in flight
    assert loader.epoch == 0
    pool = loader._pool
    assert_same_batches(two_epochs(loader), expected)
    assert loader._pool is pool and all(alive(pool))
    workers, names = pool.workers, [block.name for block in pool.blocks if block is not None]
    del loader, pool
    gc.collect()  # a dropped loader stops its processes and frees its shared memory
    assert not any(process.is_alive() for process in workers) and unlinked(names)


def test_two_iterations_at_once_share_the_processes():
    expected = list(DataLoader(augmented_dataset(), batch_size=4, shuffle=True, seed=4))
    with DataLoader(augmented_dataset(), batch_size=4, shuffle=True, seed=4, num_workers=2,
                    worker_type="process") as loader:
        pairs = list(zip(loader, loader))  # each answer goes to the iteration that asked for it
        assert_same_batches([first for first, _ in pairs], expected)
        assert_same_batches([second for _, second in pairs], expected)


class Unpicklable(Exception):
    def __init__(self, message, handle):  # two arguments: unpickling would call it with one
        super().__init__(message)
        self.handle = handle


class FailOn:
    def __init__(self, index, how):
        self.index, self.how = index, how

    def __call__(self, image, rng):
        if image[0, 0, 0] == self.index:
            if self.how == "exit":
                os._exit(3)  # a worker killed, as by the out-of-memory killer
            raise Unpicklable(f"sample {self.index} holds a handle", object())
        return image


def numbered(count, transform):
    images = np.repeat(np.arange(count, dtype=np.uint8), 12).reshape(count, 2, 2, 3)
    return TensorDataset(images, np.arange(count), transform)


def test_an_error_that_cannot_be_pickled_still_comes_back_and_stops_the_workers():
    loader = DataLoader(numbered(10, FailOn(5, "raise")), batch_size=2, num_workers=2, worker_type="process")
    with pytest.raises(RuntimeError, match="Unpicklable: sample 5 holds a handle") as caught:
        list(loader)
    assert "sample 5 in epoch 0" in str(caught.value.__notes__)
    assert loader._pool.closed and not any(alive(loader._pool))
    loader.dataset = numbered(10, None)  # a later epoch starts new processes
    assert np.concatenate([labels for _, labels in loader]).tolist() == list(range(10))
    loader.close()


def test_a_worker_that_dies_is_reported_not_waited_for():
    loader = DataLoader(numbered(10, FailOn(5, "exit")), batch_size=2, num_workers=2, worker_type="process")
    with pytest.raises(RuntimeError, match=r"DataLoader worker process tinynet-loader-\d \(pid \d+\) exited "
                                           r"unexpectedly with code 3"):
        list(loader)
    assert not any(alive(loader._pool))


SCRIPT = """
import os, signal, threading, time
import numpy as np
from multiprocessing import shared_memory
from tinynet.data import DataLoader, TensorDataset

class Slow:
    def __call__(self, image, rng):
        time.sleep(0.05)
        return image

if __name__ == "__main__":
    images = np.zeros((200, 4, 4, 3), np.uint8)
    loader = DataLoader(TensorDataset(images, np.arange(200), Slow()), batch_size=2, num_workers=2,
                        worker_type="process")
    iterator = iter(loader)
    for _ in range(8):  # the processes run, and batches go through shared memory
        next(iterator)
    pool = loader._pool
    names = [block.name for block in pool.blocks if block is not None]
    # Interrupt the main process while it waits for a batch. Ctrl-C raises KeyboardInterrupt as
    # at a terminal, even where this runs as a background job, which starts with SIGINT ignored.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    threading.Timer(0.2, signal.raise_signal, (signal.SIGINT,)).start()
    try:
        for _ in iterator:
            pass
        print("not interrupted")
    except KeyboardInterrupt:
        gone = []
        for name in names:
            try:
                shared_memory.SharedMemory(name).close()
            except FileNotFoundError:
                gone.append(name)
        alive = [process.is_alive() for process in pool.workers]
        print("interrupted", "alive", alive, "blocks", len(names), "unlinked", len(gone))
"""


def test_ctrl_c_stops_the_workers_and_frees_shared_memory(tmp_path):
    script = tmp_path / "interrupted.py"
    script.write_text(textwrap.dedent(SCRIPT))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=60, env=env)
    assert done.returncode == 0, done.stderr
    words = done.stdout.split()
    assert words[:4] == ["interrupted", "alive", "[False,", "False]"], done.stdout
    assert words[5] == words[7] and int(words[5]) > 0, done.stdout  # every block allocated was freed
    assert "leaked" not in done.stderr, done.stderr


def test_shared_memory_is_refused_when_dev_shm_has_no_room_for_it():
    block = worker_pool._allocate(1000, reserved=0)
    assert block is not None and block.size >= 1000
    block.close()
    block.unlink()
    if Path("/dev/shm").is_dir():  # more than all of /dev/shm already promised: batches go by pickle
        stats = os.statvfs("/dev/shm")
        assert worker_pool._allocate(1000, reserved=stats.f_blocks * stats.f_frsize) is None


def test_an_iteration_of_a_closed_loader_says_its_workers_were_stopped():
    loader = DataLoader(numbered(10, None), batch_size=2, num_workers=1, worker_type="process", prefetch=1)
    iterator = iter(loader)
    next(iterator)
    loader.close()
    with pytest.raises(RuntimeError, match="worker processes were stopped"):
        next(iterator)


def test_an_iteration_waits_for_slots_that_other_iterations_hold():
    expected = list(DataLoader(numbered(40, None), batch_size=2))
    with DataLoader(numbered(40, None), batch_size=2, num_workers=1, worker_type="process", prefetch=2) as loader:
        iterators = [iter(loader) for _ in range(3)]
        batches = [[] for _ in iterators]
        # The first two iterations end up with a batch in flight each, in both slots: the
        # third starts with no slot free and none of its own batches to wait for.
        for which in (0, 1, 1, 0, 2, 2):
            batches[which].append(next(iterators[which]))
        for got in batches:
            assert_same_batches(got, expected[:len(got)])


def test_a_dataset_that_cannot_be_pickled_is_named_and_leaves_nothing_running(capfd):
    loader = DataLoader(numbered(10, lambda image, rng: image), batch_size=2, num_workers=2, worker_type="process")
    with pytest.raises(TypeError, match=r"TensorDataset with transform <lambda> cannot be pickled .*"
                                        r'worker_type="thread"'):
        list(loader)
    assert loader._pool is None
    gc.collect()  # the pool that failed to start is freed without complaint
    assert "Exception ignored" not in capfd.readouterr().err


def test_a_loader_given_another_dataset_restarts_its_workers_and_lets_the_old_pool_go():
    loader = DataLoader(numbered(10, None), batch_size=2, num_workers=1, worker_type="process")
    list(loader)
    old = weakref.ref(loader._pool)
    loader.dataset = None  # unless the pool holds it, its address may go to the next dataset
    loader.dataset = numbered(10, None)
    loader.dataset.images = loader.dataset.images[::-1].copy()  # of the same length, other images
    assert np.concatenate([images[:, 0, 0, 0] for images, _ in loader]).tolist() == list(range(9, -1, -1))
    gc.collect()
    assert old() is None, "the stopped pool is still held"
    loader.close()


@pytest.fixture
def ctrl_c_raises():
    """SIGINT raises KeyboardInterrupt, as at a terminal, even where pytest runs as a background
    job, which starts with SIGINT ignored."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


def test_a_second_ctrl_c_while_closing_still_frees_the_shared_memory(monkeypatch, ctrl_c_raises):
    loader = DataLoader(numbered(10, None), batch_size=2, num_workers=1, worker_type="process")
    list(loader)
    pool = loader._pool
    names = [block.name for block in pool.blocks if block is not None]
    assert names
    monkeypatch.setattr(pool.workers[0], "join", lambda timeout=None: signal.raise_signal(signal.SIGINT))
    with pytest.raises(KeyboardInterrupt):
        loader.close()
    assert unlinked(names)
    monkeypatch.undo()
    pool.workers[0].terminate()
    pool.workers[0].join()


def test_a_worker_that_fails_after_taking_its_slot_lets_go_of_it(monkeypatch):
    views, views_at_close = [], []  # weak references to the slot's arrays; whether each was alive

    def fill_then_fail(dataset, indices, seed, epoch, allocate):
        views.append(weakref.ref(allocate((2, 3), np.uint8)))
        raise ValueError("failed after taking the slot")

    class Recorded(shared_memory.SharedMemory):
        def close(self):
            views_at_close.extend(view() is not None for view in views)
            super().close()

    block = shared_memory.SharedMemory(create=True, size=64)
    monkeypatch.setattr(worker_pool.shared_memory, "SharedMemory", Recorded)
    monkeypatch.setattr(worker_pool.signal, "signal", lambda *args: None)  # the loop runs here, in pytest
    try:
        tasks, results = queue.Queue(), queue.Queue()
        tasks.put((0, [0], 0, 0, 0, block.name, block.size))
        tasks.put(None)
        worker_pool._worker_loop(fill_then_fail, None, tasks, results, 0, os.getppid())
        task_id, kind, error, _, _ = results.get_nowait()
        assert (task_id, kind, str(error)) == (0, "error", "failed after taking the slot")
        assert views_at_close and not any(views_at_close), "a view of the slot outlived its task"
    finally:
        block.close()
        block.unlink()
