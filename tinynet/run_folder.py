"""A training run's folder: one writer at a time, and results that match its checkpoint.

A run folder holds ``checkpoint.npz``, ``metrics.csv`` and ``curves.png``. Opening it
as a ``RunFolder``
- creates it, or says in one line why it cannot be written (a file in the way, no
  permission);
- locks it, so a second run started into the same folder is refused, naming the process
  that holds it (the system drops the lock when that process ends, even on ``kill -9``);
- removes the temporary files that an interrupted write left there.

The epochs' metrics live in the checkpoint; ``metrics.csv`` and ``curves.png`` are
rewritten whole from them after each checkpoint, and again on resume. A kill at any
moment therefore loses no row and never repeats one.
"""

import csv
import errno
import os
import shutil
from pathlib import Path

from .atomic_file import atomic_write, stale_temporaries
from .viz import plot_layer_norms, plot_training_curves

LOCK_NAME = ".lock"
METRICS_FIELDS = ("epoch", "train_loss", "train_acc", "val_loss", "val_acc", "val_top5", "lr", "images_per_second")


class RunFolderError(OSError):
    """The run folder cannot be used: not writable, too full, or in use by another run."""


class RunFolder:
    """``with RunFolder(path) as run:`` holds the folder for this process until the block ends."""

    def __init__(self, path):
        self.path = Path(path)
        self.checkpoint = self.path / "checkpoint.npz"
        self.metrics = self.path / "metrics.csv"
        self.curves = self.path / "curves.png"
        self.norms, self.norm_plot = self.path / "norms.csv", self.path / "norms.png"
        self.removed_temporaries = []
        self._lock = None

    def __enter__(self):
        self._created = not self.path.exists()
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            self._lock = os.open(self.path / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as error:
            raise RunFolderError(f"cannot write the run folder {self.path}: {error.strerror or error}") from error
        self._take_lock()
        self.removed_temporaries = stale_temporaries(self.path)
        for path in self.removed_temporaries:
            path.unlink()
        return self

    def __exit__(self, *exc):
        if self._created and [entry.name for entry in self.path.iterdir()] == [LOCK_NAME]:
            # A run that stopped before writing anything (bad input, say) leaves no folder behind.
            (self.path / LOCK_NAME).unlink()
            self.path.rmdir()
        os.close(self._lock)  # closing the file releases the lock
        self._lock = None
        return False

    def _take_lock(self):
        try:
            _lock_file(self._lock)
        except OSError as error:
            if error.errno not in (errno.EAGAIN, errno.EWOULDBLOCK, errno.EACCES):
                os.close(self._lock)
                raise RunFolderError(f"cannot lock {self.path / LOCK_NAME}: {error.strerror} (the file system may "
                                     "not support locks; choose a --run-dir on a local disk)") from error
            holder = _read_holder(self._lock)
            os.close(self._lock)
            raise RunFolderError(
                f"{self.path} is in use by another run (process {holder}, lock file {self.path / LOCK_NAME}): "
                "wait for it to end or choose another --run-dir"
            ) from error
        # The holder's id, for the message above. A run refused in the instant between the
        # lock and this write reads the previous holder's id: a harmless misreport.
        os.ftruncate(self._lock, 0)
        os.write(self._lock, f"{os.getpid()}\n".encode())

    def holds_results(self):
        """Whether an earlier run left a checkpoint or metrics here."""
        return self.checkpoint.exists() or self.metrics.exists()

    def check_free_space(self, needed_bytes):
        """Refuse to start a run whose first checkpoint would not fit on the disk."""
        free = shutil.disk_usage(self.path).free
        if free < needed_bytes:
            raise RunFolderError(f"{self.path} has {free / 1e6:.0f} MB free; a checkpoint of this run needs about "
                                 f"{needed_bytes / 1e6:.0f} MB: free some space or choose another --run-dir")

    def write_results(self, history, norms=()):
        """metrics.csv and curves.png from ``history``, one dict per finished epoch, and
        norms.csv and norms.png from ``norms``, the rows of a NormRecorder, if any."""
        _write_csv(self.metrics, METRICS_FIELDS, history)
        plot_training_curves(history, path=self.curves)
        if norms:
            _write_csv(self.norms, list(norms[0]), norms)
            plot_layer_norms(norms, path=self.norm_plot)


def _write_csv(path, fields, rows):
    with atomic_write(path, "w") as file:
        writer = csv.DictWriter(file, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)


def _lock_file(descriptor):
    """An exclusive lock on an open file, refused at once (OSError) if another process holds it."""
    if os.name == "nt":
        import msvcrt

        msvcrt.locking(descriptor, msvcrt.LK_NBLCK, 1)
    else:
        import fcntl

        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)


def _read_holder(descriptor):
    """The process id that the lock's holder wrote into the lock file."""
    try:
        os.lseek(descriptor, 0, os.SEEK_SET)
        return os.read(descriptor, 32).decode().strip() or "unknown"
    except OSError:  # Windows refuses reads of a locked region
        return "unknown"
