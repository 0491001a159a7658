"""Read a PyTorch weights file (``torch.save(model.state_dict(), path)``) into NumPy arrays.

With PyTorch installed, ``torch.load(..., weights_only=True)`` reads it. Without PyTorch,
``read_without_torch`` reads both of its formats itself:
- the zip format (PyTorch 1.6 and later): ``NAME/data.pkl`` holds the pickled dict and
  ``NAME/data/KEY`` the raw little-endian bytes of each storage;
- the legacy format (earlier releases, such as the 2017 files of torchvision's AlexNet):
  pickles one after another (a magic number, a protocol version, system information, the
  dict, the list of storage keys), then each storage as its element count (int64) and bytes.

A pickle can run any code while it loads, so the dict is unpickled with a restricted
unpickler (Python's pickle documentation, "Restricting Globals"): it resolves only the few
names that a dict of float tensors needs, and refuses any other with UnsafeWeightsError
before anything runs. Tensor data are copied out of the storages only after every view is
checked to lie inside its storage.
"""

import collections
import io
import pickle
import struct
import zipfile
from dataclasses import dataclass

import numpy as np

LEGACY_MAGIC_NUMBER = 0x1950A86A20F9469CFC6C
LEGACY_PROTOCOL_VERSION = 1001

# The storage classes of float tensors, by the name under which PyTorch pickles them.
FLOAT_STORAGES = {"FloatStorage": np.float32, "DoubleStorage": np.float64, "HalfStorage": np.float16}


class UnsafeWeightsError(ValueError):
    """A weights file that asks for more than float tensors, or is not a PyTorch weights file."""


def load_state_dict(path):
    """name -> float32/64/16 NumPy array from a PyTorch weights file, with PyTorch if it is
    installed (``weights_only=True``), else with ``read_without_torch``."""
    try:
        import torch
    except ImportError:
        return read_without_torch(path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises several types, all meaning "not loadable as weights"
        raise UnsafeWeightsError(f"{path}: PyTorch could not load it as weights ({type(error).__name__}: "
                                 f"{str(error).splitlines()[0] if str(error) else ''})") from error
    _check_is_dict_of_tensors(path, state, torch.Tensor)
    return {name: tensor.detach().numpy() for name, tensor in state.items()}


def read_without_torch(path):
    """name -> NumPy array from a PyTorch weights file, without PyTorch and without running
    any code from the file."""
    with open(path, "rb") as file:
        if zipfile.is_zipfile(file):
            return _read_zip(path, file)
        file.seek(0)
        return _read_legacy(path, file)


@dataclass
class _Storage:
    """A storage the pickle refers to; its bytes are read afterwards."""

    key: str
    dtype: type
    numel: int
    data: np.ndarray = None


@dataclass
class _TensorView:
    """A tensor the pickle describes: a strided view of a storage."""

    storage: _Storage
    offset: int
    shape: tuple
    stride: tuple

    def to_numpy(self, path, name):
        data, shape, stride = self.storage.data, tuple(self.shape), tuple(self.stride)
        last = self.offset + sum((size - 1) * step for size, step in zip(shape, stride)) if all(shape) else -1
        if self.offset < 0 or min(stride, default=0) < 0 or last >= len(data):
            raise UnsafeWeightsError(f"{path}: tensor {name} of shape {shape} lies outside its storage")
        view = np.lib.stride_tricks.as_strided(data[self.offset:], shape, [s * data.itemsize for s in stride],
                                               writeable=False)
        return np.ascontiguousarray(view)


def _rebuild_tensor(storage, offset, shape, stride, *_requires_grad_hooks_and_metadata):
    # torch._utils._rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad,
    # backward_hooks, metadata=None); the older _rebuild_tensor takes the first four.
    if not isinstance(storage, _Storage):
        raise pickle.UnpicklingError("a tensor rebuilt from something other than a storage")
    return _TensorView(storage, int(offset), tuple(shape), tuple(stride))


ALLOWED = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
} | {("torch", name): dtype for name, dtype in FLOAT_STORAGES.items()}


class _RestrictedUnpickler(pickle.Unpickler):
    """Resolves only the names in ALLOWED; storages come through ``persistent_load``."""

    def __init__(self, file, path):
        super().__init__(file)
        self.path, self.storages = path, {}

    def find_class(self, module, name):
        if (module, name) not in ALLOWED:
            raise UnsafeWeightsError(f"{self.path} asks to call {module}.{name} while loading; a weights file needs "
                                     "only float tensors, so it is refused (nothing from it was run)")
        return ALLOWED[module, name]

    def persistent_load(self, saved_id):
        # ("storage", storage class, key, location, numel), plus view metadata in the legacy format.
        if not (isinstance(saved_id, tuple) and len(saved_id) in (5, 6) and saved_id[0] == "storage"):
            raise UnsafeWeightsError(f"{self.path}: an unknown persistent object {saved_id!r:.80}")
        _, dtype, key, _location, numel, *view = saved_id
        if dtype not in FLOAT_STORAGES.values() or view not in ([], [None]):
            raise UnsafeWeightsError(f"{self.path}: storage {key} is not a plain float storage")
        return self.storages.setdefault(str(key), _Storage(str(key), dtype, int(numel)))


def _unpickle(path, file):
    unpickler = _RestrictedUnpickler(file, path)
    try:
        return unpickler.load(), unpickler.storages
    except UnsafeWeightsError:
        raise
    except Exception as error:  # a damaged pickle raises many kinds of error
        raise UnsafeWeightsError(f"{path} is not a readable PyTorch weights file ({type(error).__name__}: "
                                 f"{error})") from error


def _read_zip(path, file):
    with zipfile.ZipFile(file) as archive:
        pickles = [name for name in archive.namelist() if name.endswith("/data.pkl")]
        if len(pickles) != 1:
            raise UnsafeWeightsError(f"{path} is a zip file but not a PyTorch weights file (no NAME/data.pkl)")
        prefix = pickles[0][: -len("data.pkl")]
        if archive.namelist().count(f"{prefix}byteorder") and archive.read(f"{prefix}byteorder") != b"little":
            raise UnsafeWeightsError(f"{path} was saved on a big-endian machine, which this reader does not handle")
        state, storages = _unpickle(path, io.BytesIO(archive.read(pickles[0])))
        for storage in storages.values():
            storage.data = _storage_array(path, storage, archive.read(f"{prefix}data/{storage.key}"))
    return _arrays(path, state)


def _read_legacy(path, file):
    header = []
    for _ in range(3):  # magic number, protocol version, system information: plain values
        header.append(_unpickle(path, file)[0])
    if header[0] != LEGACY_MAGIC_NUMBER or header[1] != LEGACY_PROTOCOL_VERSION:
        raise UnsafeWeightsError(f"{path} is neither a zip nor a legacy PyTorch weights file (its start reads "
                                 f"{header[0]!r:.40})")
    if not header[2].get("little_endian", False):
        raise UnsafeWeightsError(f"{path} was saved on a big-endian machine, which this reader does not handle")
    state, storages = _unpickle(path, file)
    keys, _ = _unpickle(path, file)
    for key in keys:
        storage = storages[str(key)]
        (numel,) = struct.unpack("<q", file.read(8))
        storage.data = _storage_array(path, storage, file.read(numel * np.dtype(storage.dtype).itemsize))
    return _arrays(path, state)


def _storage_array(path, storage, raw):
    expected = storage.numel * np.dtype(storage.dtype).itemsize
    if len(raw) != expected:
        raise UnsafeWeightsError(f"{path}: storage {storage.key} has {len(raw)} bytes, expected {expected}")
    return np.frombuffer(raw, dtype=np.dtype(storage.dtype).newbyteorder("<"))


def _arrays(path, state):
    _check_is_dict_of_tensors(path, state, _TensorView)
    return {name: view.to_numpy(path, name) for name, view in state.items()}


def _check_is_dict_of_tensors(path, state, tensor_type):
    if not isinstance(state, dict):
        raise UnsafeWeightsError(f"{path} holds a {type(state).__name__}, not a state dict (name -> tensor)")
    others = [name for name, value in state.items() if not isinstance(value, tensor_type)]
    if others:
        raise UnsafeWeightsError(f"{path}: {', '.join(map(str, others[:3]))} are not tensors; expected a state dict")
