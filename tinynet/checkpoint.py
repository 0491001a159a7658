"""Checkpoints: arrays and JSON metadata in one ``.npz``, written atomically.

The file is written through ``atomic_write``: a crash, Ctrl-C or full disk
mid-write leaves the previous checkpoint whole. It is read with
``allow_pickle=False``, so loading a file from elsewhere cannot run code, and
any damage (a truncated file, a flipped bit, a broken header) is reported as a
ValueError that names the file.
"""

import json
import os
import zipfile

import numpy as np

from . import backend
from .atomic_file import atomic_write

_META = "__meta__"


def save_checkpoint(path, arrays, meta):
    """Save ``arrays`` (name -> NumPy or CuPy array) and ``meta`` (JSON-able dict)."""
    contents = {name: backend.to_numpy(array) for name, array in arrays.items()}
    contents[_META] = np.array(json.dumps(meta))
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with atomic_write(path) as file:
        np.savez(file, **contents)


class CheckpointError(ValueError):
    """A file that is not a readable tinynet checkpoint: damaged, truncated, or something else."""


def load_checkpoint(path):
    """(arrays, meta) from a file written by ``save_checkpoint``."""
    with _opened(path) as file:
        # Reading every array checks every member's CRC: damage anywhere is found now.
        arrays = _read(path, lambda: {name: file[name] for name in file.files if name != _META})
        return arrays, _meta(path, file)


def load_checkpoint_meta(path):
    """The metadata of a checkpoint alone, without reading its arrays."""
    with _opened(path) as file:
        return _meta(path, file)


def _opened(path):
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no checkpoint at {path}")
    loaded = _read(path, lambda: np.load(path, allow_pickle=False))
    if not isinstance(loaded, np.lib.npyio.NpzFile):
        raise CheckpointError(f"{path} holds a single array, not a tinynet checkpoint (.npz)")
    return loaded


def _read(path, read):
    try:
        return read()
    except (ValueError, OSError, EOFError, KeyError, zipfile.BadZipFile) as error:
        raise CheckpointError(f"{path} is not a readable tinynet checkpoint ({type(error).__name__}: {error})") \
            from error


def _meta(path, file):
    if _META not in file.files:
        raise CheckpointError(f"{path} is not a tinynet checkpoint: it has no {_META} entry")
    text = _read(path, lambda: str(file[_META]))
    try:
        meta = json.loads(text)
    except ValueError as error:
        raise CheckpointError(f"{path} has a damaged metadata entry ({error})") from error
    if not isinstance(meta, dict):
        raise CheckpointError(f"{path} has a damaged metadata entry: expected a JSON object, got {type(meta).__name__}")
    return meta
