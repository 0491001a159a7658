"""Read a PyTorch weights file (``torch.save(model.state_dict(), path)``) into NumPy arrays.

With PyTorch installed, ``torch.load(..., weights_only=True)`` reads it. Without PyTorch,
``read_without_torch`` reads both of its formats itself:
- the zip format (PyTorch 1.6 and later): ``NAME/data.pkl`` holds the pickled dict and
  ``NAME/data/KEY`` the raw little-endian bytes of each storage, stored uncompressed;
- the legacy format (earlier releases, such as the 2017 files of torchvision's AlexNet):
  pickles one after another (a magic number, a protocol version, system information, the
  dict, the list of storage keys), then each storage as its element count (int64) and bytes.

A pickle can run any code while it loads, so the dict is unpickled by a restricted
unpickler (Python's pickle documentation, "Restricting Globals"). It resolves only the
names that a dict of float tensors needs, and none of them to anything that can run
code or make arrays: the storage classes become inert markers of their dtype, and the
tensor-rebuild call becomes ours, which only records the view it describes. BUILD, the
opcode that sets attributes, is allowed only for the ``_metadata`` of an OrderedDict, and
dicts take only string keys. Every view is checked against its storage (types, bounds,
no more elements than the storage holds) before any data is copied, and every storage's
size before it is read.
"""

import collections
import io
import math
import operator
import os
import pickle
import struct
import zipfile
from dataclasses import dataclass

import numpy as np

LEGACY_MAGIC_NUMBER = 0x1950A86A20F9469CFC6C
LEGACY_PROTOCOL_VERSION = 1001


class UnsafeWeightsError(ValueError):
    """A weights file that asks for more than float tensors, or is not a PyTorch weights file."""


def load_state_dict(path):
    """name -> float NumPy array from a PyTorch weights file, with PyTorch if it is installed
    (``weights_only=True``), else with ``read_without_torch``."""
    try:
        import torch
    except ImportError:
        return read_without_torch(path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        raise UnsafeWeightsError(f"{path} holds more than tensors, so PyTorch's weights-only loader refused it "
                                 "(nothing from it was run)") from error
    except Exception as error:  # torch raises several types, all meaning "not loadable as weights"
        raise UnsafeWeightsError(f"{path} is not a readable PyTorch weights file ({type(error).__name__})") from error
    if not isinstance(state, dict):
        raise UnsafeWeightsError(f"{path} holds a {type(state).__name__}, not a state dict (name -> tensor)")
    floats = (torch.float16, torch.float32, torch.float64)
    others = [str(name) for name, value in state.items()
              if not (isinstance(value, torch.Tensor) and value.dtype in floats and value.layout == torch.strided)]
    if others:
        raise UnsafeWeightsError(f"{path}: {', '.join(others[:3])[:200]} are not dense float tensors")
    return {name: tensor.detach().numpy() for name, tensor in state.items()}


def read_without_torch(path):
    """name -> NumPy array from a PyTorch weights file, without PyTorch and without running
    any code from the file."""
    try:
        with open(path, "rb") as file:
            if zipfile.is_zipfile(file):
                return _read_zip(path, file)
            file.seek(0)
            return _read_legacy(path, file)
    except (UnsafeWeightsError, OSError):
        raise
    except _Malformed as error:
        raise UnsafeWeightsError(f"{path}: {error}") from None
    except Exception as error:  # damage shows as many kinds of error; none may escape as a traceback
        raise UnsafeWeightsError(f"{path} is not a readable PyTorch weights file ({type(error).__name__})") \
            from error


class _Malformed(Exception):
    """Raised where the file's path is not at hand; read_without_torch adds it."""


class _StorageType:
    """What a pickled storage class (torch.FloatStorage, ...) stands for here: a dtype,
    and nothing that can be called."""

    def __init__(self, dtype):
        self.dtype = np.dtype(dtype)


@dataclass
class _Storage:
    """A storage the pickle refers to; its bytes are read afterwards."""

    key: str
    dtype: np.dtype
    numel: int
    data: np.ndarray = None


@dataclass(frozen=True)
class _TensorView:
    """A tensor the pickle describes: a strided view of a storage."""

    storage: _Storage
    offset: int
    shape: tuple
    stride: tuple

    def check(self, path, name):
        """Refuse a view that reaches outside its storage or repeats its elements."""
        count, numel = math.prod(self.shape), self.storage.numel
        last = self.offset + sum((size - 1) * step for size, step in zip(self.shape, self.stride))
        inside = self.offset >= 0 and min(self.stride, default=0) >= 0 and min(self.shape, default=0) >= 0
        if not inside or count > numel or (count and last >= numel):
            raise UnsafeWeightsError(f"{path}: tensor {name} of shape {self.shape} lies outside its storage")

    def to_numpy(self):
        data = self.storage.data
        view = np.lib.stride_tricks.as_strided(data[self.offset:], self.shape,
                                               [step * data.itemsize for step in self.stride], writeable=False)
        return np.ascontiguousarray(view)


def _rebuild_tensor(storage, offset, shape, stride, *_requires_grad_hooks_and_metadata):
    # torch._utils._rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad,
    # backward_hooks, metadata=None); the older _rebuild_tensor takes the first four.
    if type(storage) is not _Storage or type(shape) is not tuple or type(stride) is not tuple \
            or len(shape) != len(stride):
        raise _Malformed("a tensor described by something other than a storage and its size and stride")
    return _TensorView(storage, operator.index(offset), tuple(map(operator.index, shape)),
                       tuple(map(operator.index, stride)))


ALLOWED = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
    ("torch", "HalfStorage"): _StorageType(np.float16),
    ("torch", "FloatStorage"): _StorageType(np.float32),
    ("torch", "DoubleStorage"): _StorageType(np.float64),
}


class _RestrictedUnpickler(pickle._Unpickler):  # the Python implementation, whose opcodes can be replaced
    """Resolves only the names in ALLOWED; storages come through ``persistent_load``."""

    dispatch = dict(pickle._Unpickler.dispatch)

    def __init__(self, file, path, storages):
        super().__init__(file)
        self.path, self.storages = path, storages

    def find_class(self, module, name):
        if (module, name) not in ALLOWED:
            raise UnsafeWeightsError(f"{self.path} asks to call {str(module)[:80]}.{str(name)[:80]} while loading; "
                                     "a weights file needs only float tensors, so it is refused (nothing from it was "
                                     "run)")
        return ALLOWED[module, name]

    def persistent_load(self, saved_id):
        # ("storage", storage type, key, location, numel), and in the legacy format a sixth
        # entry, view metadata, which is None unless storages share memory.
        if type(saved_id) is not tuple or len(saved_id) not in (5, 6) or saved_id[0] != "storage":
            raise UnsafeWeightsError(f"{self.path}: a persistent object other than a storage")
        _, kind, key, _location, numel, *view = saved_id
        if type(kind) is not _StorageType or type(key) is not str or len(key) > 64 or view not in ([], [None]):
            raise UnsafeWeightsError(f"{self.path}: a storage that is not a plain float storage")
        storage = _Storage(key, kind.dtype, operator.index(numel))
        known = self.storages.setdefault(key, storage)
        if (known.dtype, known.numel) != (storage.dtype, storage.numel):
            raise UnsafeWeightsError(f"{self.path}: storage {key} is declared twice, differently")
        return known

    def load_build(self):
        """BUILD sets an object's attributes: allowed only for the state dict's _metadata."""
        state = self.stack.pop()
        target = self.stack[-1]
        if type(target) is not collections.OrderedDict or type(state) is not dict or set(state) - {"_metadata"}:
            raise UnsafeWeightsError(f"{self.path} sets attributes of a {type(target).__name__} while loading, which "
                                     "a weights file does not need: refused (nothing from it was run)")
        target.__dict__.update(state)

    def set_items(self, target, items):
        """Dict items with string keys only: a state dict has no others, and hashing a crafted
        key (a deep tree of tuples) could take forever."""
        keys = items[::2]
        if type(target) not in (dict, collections.OrderedDict) or not all(type(key) is str for key in keys):
            raise UnsafeWeightsError(f"{self.path} holds a mapping that is not of names, which a weights file does "
                                     "not need: refused")
        target.update(zip(keys, items[1::2]))

    def load_setitem(self):
        value, key = self.stack.pop(), self.stack.pop()
        self.set_items(self.stack[-1], [key, value])

    def load_setitems(self):
        items = self.pop_mark()
        self.set_items(self.stack[-1], items)

    def load_dict(self):
        items = self.pop_mark()
        self.append({})
        self.set_items(self.stack[-1], items)

    def refuse_sets(self):
        raise UnsafeWeightsError(f"{self.path} holds a set, which a weights file does not need: refused")

    dispatch[pickle.BUILD[0]] = load_build
    dispatch[pickle.SETITEM[0]] = load_setitem
    dispatch[pickle.SETITEMS[0]] = load_setitems
    dispatch[pickle.DICT[0]] = load_dict
    for opcode in (pickle.EMPTY_SET, pickle.ADDITEMS, pickle.FROZENSET):
        dispatch[opcode[0]] = refuse_sets


def _unpickle(path, file, storages=None):
    return _RestrictedUnpickler(file, path, {} if storages is None else storages).load()


def _read_zip(path, file):
    with zipfile.ZipFile(file) as archive:
        names = archive.namelist()
        pickles = [name for name in names if name.endswith("/data.pkl")]
        if len(pickles) != 1:
            raise UnsafeWeightsError(f"{path} is a zip file but not a PyTorch weights file (no NAME/data.pkl)")
        prefix = pickles[0][: -len("data.pkl")]
        if f"{prefix}byteorder" in names and archive.read(f"{prefix}byteorder") != b"little":
            raise UnsafeWeightsError(f"{path} was saved on a big-endian machine, which this reader does not handle")
        storages = {}
        state = _unpickle(path, io.BytesIO(_member(path, archive, pickles[0])), storages)
        for storage in storages.values():
            raw = _member(path, archive, f"{prefix}data/{storage.key}", _nbytes(storage))
            storage.data = _storage_array(path, storage, raw)
    return _arrays(path, state)


def _member(path, archive, name, size=None):
    """The bytes of a zip member, which PyTorch stores uncompressed; its size is checked
    before it is read, so a small file cannot unpack into a huge one."""
    info = archive.getinfo(name)
    if info.compress_type != zipfile.ZIP_STORED or (size is not None and info.file_size != size):
        raise UnsafeWeightsError(f"{path}: {name[:80]} is not stored as PyTorch stores it")
    return archive.read(info)


def _read_legacy(path, file):
    magic, version, system = (_unpickle(path, file) for _ in range(3))
    if type(magic) is not int or magic != LEGACY_MAGIC_NUMBER or version != LEGACY_PROTOCOL_VERSION:
        raise UnsafeWeightsError(f"{path} is neither a zip nor a legacy PyTorch weights file")
    if type(system) is not dict or system.get("little_endian") is not True:
        raise UnsafeWeightsError(f"{path} was not saved on a little-endian machine, which this reader needs")
    storages = {}
    state = _unpickle(path, file, storages)
    keys = _unpickle(path, file)
    if type(keys) is not list or not all(type(key) is str for key in keys) or sorted(keys) != sorted(storages):
        raise UnsafeWeightsError(f"{path}: its list of storages does not match the tensors")
    left = os.fstat(file.fileno()).st_size - file.tell()
    for key in keys:
        storage = storages[key]
        (numel,) = struct.unpack("<q", file.read(8))
        left -= 8 + _nbytes(storage)
        if numel != storage.numel or left < 0:
            raise UnsafeWeightsError(f"{path}: storage {key} does not have the size its tensors give it")
        storage.data = _storage_array(path, storage, file.read(_nbytes(storage)))
    return _arrays(path, state)


def _nbytes(storage):
    return storage.numel * storage.dtype.itemsize


def _storage_array(path, storage, raw):
    if len(raw) != _nbytes(storage):
        raise UnsafeWeightsError(f"{path}: storage {storage.key} has {len(raw)} bytes, expected {_nbytes(storage)}")
    return np.frombuffer(raw, dtype=storage.dtype.newbyteorder("<"))


def _arrays(path, state):
    if not isinstance(state, dict):
        raise UnsafeWeightsError(f"{path} holds a {type(state).__name__}, not a state dict (name -> tensor)")
    if not all(type(name) is str and type(view) is _TensorView for name, view in state.items()):
        raise UnsafeWeightsError(f"{path} holds entries that are not named tensors; expected a state dict")
    for name, view in state.items():
        view.check(path, name[:80])
    return {name: view.to_numpy() for name, view in state.items()}
