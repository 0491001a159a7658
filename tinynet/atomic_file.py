"""Files that are replaced whole or not at all.

A file is written under a temporary name in its own folder, flushed to disk and
renamed over the old one. A rename within a folder is atomic, so a reader, a crash,
a ``kill -9`` or a full disk mid-write sees either the old file or the new one,
never half of either. What an interrupted write leaves behind is a hidden
``.NAME.XXXX.tmp`` file beside it, which ``stale_temporaries`` finds.
"""

import contextlib
import os
import tempfile
from pathlib import Path


@contextlib.contextmanager
def atomic_write(path, mode="wb"):
    """Open a temporary file beside ``path``; when the block ends without an error,
    make it ``path``. On an error the temporary file is removed and ``path`` is untouched."""
    path = Path(path)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, mode, **({} if "b" in mode else {"newline": ""})) as file:
            yield file
            file.flush()
            os.fsync(file.fileno())
        os.chmod(temporary, 0o644)  # mkstemp makes it private; a result file is readable like any other
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise
    _sync_folder(path.parent)


def _sync_folder(folder):
    """Flush the rename itself to disk (POSIX), so a power cut cannot undo it."""
    if os.name != "posix":
        return
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def stale_temporaries(folder):
    """Temporary files that interrupted writes left in ``folder``."""
    return sorted(Path(folder).glob(".*.tmp"))
