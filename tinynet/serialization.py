"""``tinynet.save`` and ``tinynet.load``: state dicts, and dicts and lists around them, in a file.

    tinynet.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(), "epoch": 3}, "run.npz")
    state = tinynet.load("run.npz")
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])

The file is a checkpoint (see checkpoint.py): the arrays go into an .npz read with
``allow_pickle=False``, the structure around them (dicts, lists, tuples, numbers,
strings, bools, None) into its JSON metadata, and it is written atomically. torch.save
pickles instead, which stores any object but lets a file run any code when loaded;
here an object of another kind is refused when saving, with the place it was found.
"""

import os

import numpy as np

from . import backend
from .checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from .nn.module import Parameter
from .tensor import Tensor

_KEY = "saved_object"  # the metadata entry that holds the structure
_PLAIN = (str, int, float, bool, type(None))  # stored as JSON values themselves


def save(obj, f):
    """Write ``obj`` to the file ``f`` (a path), replacing it whole or not at all."""
    arrays = {}
    structure = _encode(obj, "", arrays)
    save_checkpoint(f, arrays, {_KEY: structure})


def load(f, map_location=None, weights_only=True):
    """What ``save`` wrote. Arrays and Tensors go back to the device they were saved from,
    or all to ``map_location`` ('cpu', 'gpu', 'cuda'). ``weights_only`` is accepted for torch's
    sake and changes nothing: this format never holds code to run, whatever its value."""
    arrays, meta = load_checkpoint(f)
    if _KEY not in meta:
        raise CheckpointError(f"{os.fspath(f)} is a tinynet checkpoint but was not written by tinynet.save: read it "
                              "with tinynet.checkpoint.load_checkpoint")
    if map_location is not None:
        backend.check_device(map_location)
    try:
        return _decode(meta[_KEY], arrays, map_location, f)
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        raise CheckpointError(f"{os.fspath(f)} has a damaged {_KEY} entry ({type(error).__name__}: {error})") from error


def _encode(obj, path, arrays):
    """The JSON form of ``obj``; its arrays are added to ``arrays`` under new names."""
    if isinstance(obj, Tensor):
        return {"type": "parameter" if isinstance(obj, Parameter) else "tensor",
                "requires_grad": obj.requires_grad, **_stored(obj.data, path, arrays)}
    if isinstance(obj, np.generic):  # before plain values: np.float64 is also a float
        return {"type": "scalar", **_stored(np.asarray(obj), path, arrays)}
    if isinstance(obj, _PLAIN):
        return obj
    if isinstance(obj, backend.xp_of(obj).ndarray):  # a NumPy or CuPy array
        return {"type": "array", **_stored(obj, path, arrays)}
    if isinstance(obj, dict):
        for key in obj:
            if type(key) not in (str, int):
                raise TypeError(f"tinynet.save cannot store the key {key!r} of {path or 'the object'}: keys must be "
                                f"str or int, got {type(key).__name__}")
        items = [[key, _encode(value, f"{path}[{key!r}]", arrays)] for key, value in obj.items()]
        return {"type": "dict", "items": items}
    if isinstance(obj, list | tuple):
        items = [_encode(value, f"{path}[{index}]", arrays) for index, value in enumerate(obj)]
        return {"type": "tuple" if isinstance(obj, tuple) else "list", "items": items}
    raise TypeError(f"tinynet.save cannot store {path or 'the object'}, of type {type(obj).__name__}: it stores dicts, "
                    "lists and tuples of arrays, Tensors, numbers, strings, bools and None")


def _stored(array, path, arrays):
    if array.dtype.hasobject:
        raise TypeError(f"tinynet.save cannot store {path or 'the object'}: an array of Python objects (dtype object) "
                        "needs pickle, which this format refuses")
    name = str(len(arrays))
    arrays[name] = array
    return {"array": name, "device": "gpu" if backend.device_of(array) == "gpu" else "cpu"}


def _decode(node, arrays, map_location, f):
    if not isinstance(node, dict):
        return node
    kind = node["type"]
    if kind in ("dict", "list", "tuple"):
        if kind == "dict":
            return {key: _decode(value, arrays, map_location, f) for key, value in node["items"]}
        items = [_decode(value, arrays, map_location, f) for value in node["items"]]
        return tuple(items) if kind == "tuple" else items
    array = arrays[node["array"]]
    if kind == "scalar":
        return array[()]
    array = backend.to_device(array, _device(node["device"], map_location, f))
    if kind == "array":
        return array
    return Parameter(array, node["requires_grad"]) if kind == "parameter" else Tensor(array, node["requires_grad"])


def _device(saved, map_location, f):
    if map_location is not None:
        return map_location
    if saved == "gpu" and not backend.gpu_available():
        raise RuntimeError(f"{os.fspath(f)} holds arrays saved from the GPU, and no GPU is usable here: load them "
                           "onto the CPU with tinynet.load(path, map_location='cpu')")
    return saved
