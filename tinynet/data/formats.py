"""Readers for two classic dataset file formats: IDX (MNIST, Fashion-MNIST) and CIFAR-10 binary.

Both are plain bytes with a tiny header, so each reader is a few NumPy calls plus the checks
that turn a wrong or damaged file into an error that names it. CIFAR-10 is read from its
binary version only: the "python version" is a pickle, and unpickling runs arbitrary code.
"""

import gzip
from pathlib import Path

import numpy as np

# IDX header: two zero bytes, a type code, the number of dimensions, then one big-endian
# uint32 per dimension. Data follow in big-endian order (http://yann.lecun.com/exdb/mnist/).
_IDX_TYPES = {
    0x08: np.dtype("u1"),
    0x09: np.dtype("i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_GZIP_MAGIC = b"\x1f\x8b"

CIFAR10_CLASSES = (
    "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck",
)
_CIFAR_PIXELS = 3 * 32 * 32
_CIFAR_RECORD = 1 + _CIFAR_PIXELS  # one label byte, then the red, green and blue planes


def _read_bytes(path):
    """The file's bytes, gunzipped if it starts with the gzip magic (whatever its name)."""
    data = Path(path).read_bytes()
    if not data.startswith(_GZIP_MAGIC):
        return data
    try:
        return gzip.decompress(data)
    except (OSError, EOFError) as error:
        raise ValueError(f"{path}: damaged gzip data ({error})") from error


def read_idx(path):
    """Read an IDX file (gzipped or not) into a native-endian NumPy array of its shape."""
    data = _read_bytes(path)
    if len(data) < 4 or data[:2] != b"\0\0" or data[2] not in _IDX_TYPES or data[3] == 0:
        raise ValueError(
            f"{path}: not an IDX file: the magic number is {data[:4].hex() or 'missing'}, "
            "expected 0000 then a type code (08 for uint8) and the number of dimensions"
        )
    dtype, ndim = _IDX_TYPES[data[2]], data[3]
    header_size = 4 + 4 * ndim
    if len(data) < header_size:
        raise ValueError(f"{path}: IDX header cut short: {ndim} dimensions need {header_size} bytes")
    shape = tuple(int(n) for n in np.frombuffer(data, ">u4", count=ndim, offset=4))
    expected = header_size + int(np.prod(shape)) * dtype.itemsize
    if len(data) != expected:
        raise ValueError(
            f"{path}: IDX header announces shape {shape} of {dtype.name} ({expected} bytes), "
            f"but the file holds {len(data)} bytes"
        )
    array = np.frombuffer(data, dtype, offset=header_size).reshape(shape)
    return array.astype(dtype.newbyteorder("="))  # a writable copy in the machine's byte order


def write_idx(path, array):
    """Write an array as an IDX file; gzipped when the name ends in '.gz'."""
    array = np.asarray(array)
    codes = {dtype.newbyteorder("="): code for code, dtype in _IDX_TYPES.items()}
    if array.dtype not in codes or array.ndim == 0 or array.ndim > 255:
        raise ValueError(f"IDX cannot hold a {array.ndim}-d array of {array.dtype}")
    big_endian = _IDX_TYPES[codes[array.dtype]]
    header = bytes([0, 0, codes[array.dtype], array.ndim])
    header += np.asarray(array.shape, ">u4").tobytes()
    data = header + array.astype(big_endian).tobytes()
    if str(path).endswith(".gz"):
        data = gzip.compress(data)
    Path(path).write_bytes(data)


def read_cifar10_batch(path):
    """One CIFAR-10 binary file: uint8 images (N, 3, 32, 32) and int64 labels (N,)."""
    data = np.fromfile(path, dtype=np.uint8)
    if data.size == 0 or data.size % _CIFAR_RECORD:
        raise ValueError(
            f"{path}: {data.size} bytes is not a whole number of CIFAR-10 records "
            f"({_CIFAR_RECORD} bytes each: 1 label byte + {_CIFAR_PIXELS} pixel bytes)"
        )
    records = data.reshape(-1, _CIFAR_RECORD)
    labels = records[:, 0].astype(np.int64)
    if labels.max() >= len(CIFAR10_CLASSES):
        raise ValueError(
            f"{path}: label {labels.max()} is not a CIFAR-10 class (0-9); "
            "CIFAR-100 binary files have two label bytes per record and are not this format"
        )
    images = np.ascontiguousarray(records[:, 1:]).reshape(-1, 3, 32, 32)
    return images, labels


def load_cifar10_binary(root, train=True):
    """CIFAR-10 from the folder of its binary version (cifar-10-batches-bin).

    Returns uint8 images (N, 3, 32, 32) and int64 labels: the 50,000 training images of
    data_batch_1.bin ... data_batch_5.bin, or the 10,000 of test_batch.bin.
    """
    root = Path(root)
    names = [f"data_batch_{i}.bin" for i in range(1, 6)] if train else ["test_batch.bin"]
    missing = [name for name in names if not (root / name).is_file()]
    if missing:
        raise FileNotFoundError(
            f"{root}: missing {', '.join(missing)}; expected the folder cifar-10-batches-bin "
            "of the CIFAR-10 binary version"
        )
    batches = [read_cifar10_batch(root / name) for name in names]
    images = np.concatenate([images for images, _ in batches])
    labels = np.concatenate([labels for _, labels in batches])
    return images, labels
