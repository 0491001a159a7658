"""Checkpoints: arrays and JSON metadata in one ``.npz``, written atomically.

The file is written under a temporary name in the same folder, flushed to disk
and renamed over the old one: a crash or Ctrl-C mid-write leaves the previous
checkpoint whole. It is read with ``allow_pickle=False``, so loading a file from
elsewhere cannot run code.
"""

import json
import os
import tempfile

import numpy as np

from . import backend

_META = "__meta__"


def save_checkpoint(path, arrays, meta):
    """Save ``arrays`` (name -> NumPy or CuPy array) and ``meta`` (JSON-able dict)."""
    path = os.fspath(path)
    contents = {name: backend.to_numpy(array) for name, array in arrays.items()}
    contents[_META] = np.array(json.dumps(meta))
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=folder, prefix=".checkpoint-", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as file:
            np.savez(file, **contents)
            file.flush()
            os.fsync(file.fileno())
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise


def load_checkpoint(path):
    """(arrays, meta) from a file written by ``save_checkpoint``."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no checkpoint at {path}")
    try:
        with np.load(path, allow_pickle=False) as file:
            arrays = {name: file[name] for name in file.files}
    except (ValueError, OSError, EOFError) as error:
        raise ValueError(f"{path} is not a readable tinynet checkpoint: {error}") from error
    if _META not in arrays:
        raise ValueError(f"{path} is not a tinynet checkpoint: it has no {_META} entry")
    return arrays, json.loads(str(arrays.pop(_META)))
