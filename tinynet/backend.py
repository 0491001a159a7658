"""The one place that knows about NumPy and CuPy.

Everything else asks this module for an array module (``xp``) and calls only
functions that NumPy and CuPy both have, so the same layer code runs on either.

tinynet runs on two devices, the CPU (NumPy) and one GPU (CuPy's current device), and calls
them "cpu" and "gpu". PyTorch's names for that GPU, "cuda" and "cuda:0", and `device` objects
are accepted wherever a device is: every function here reduces them to those two names.
"""

import contextlib

import numpy as np

try:  # CuPy is the optional `gpu` extra.
    import cupy
except ImportError:  # pragma: no cover - depends on the machine
    cupy = None

DEVICES = ("cpu", "gpu")
# Every spelling of a device that tinynet understands, and which of its two devices it names.
_SPELLINGS = {"cpu": "cpu", "gpu": "gpu", "cuda": "gpu", "cuda:0": "gpu"}
_GPU_HELP = (
    "install the GPU extra with `pip install -e .[gpu]` (CuPy for CUDA 12) "
    "on a machine with an NVIDIA GPU, or use device='cpu'"
)


class device:
    """A device as torch.device spells it: device("cpu"), device("cuda"), device("cuda:0"),
    device("cuda", 0), and tinynet's own device("gpu").

    `type` ("cpu" or "cuda") and `index` (None or 0) are PyTorch's; `name` is tinynet's
    ("cpu" or "gpu"). A device equals every spelling of the same device, string or device,
    so on the GPU `x.device == "gpu"`, `x.device == "cuda"` and
    `x.device == device("cuda")` all hold: there is one GPU, so "cuda" and "cuda:0" are the
    same. It hashes as its name, so it finds the entries of a dict keyed by "cpu" and "gpu".
    """

    def __init__(self, type, index=None):
        spelling = type if index is None else f"{type}:{index}"
        self.name = device_name(spelling)
        self.type = "cpu" if self.name == "cpu" else "cuda"
        self.index = 0 if str(spelling).endswith(":0") else None

    def __str__(self):
        return self.type if self.index is None else f"{self.type}:{self.index}"

    def __repr__(self):
        index = "" if self.index is None else f", index={self.index}"
        return f"device(type={self.type!r}{index})"

    def __eq__(self, other):
        if isinstance(other, device):
            return self.name == other.name
        if isinstance(other, str):
            return self.name == _SPELLINGS.get(other)
        return NotImplemented

    def __hash__(self):
        return hash(self.name)


def device_name(spelling):
    """tinynet's name, "cpu" or "gpu", for any spelling of a device ("cpu", "gpu", "cuda",
    "cuda:0" or a `device`), without checking that the device can be used."""
    if isinstance(spelling, device):
        return spelling.name
    if isinstance(spelling, str) and spelling in _SPELLINGS:
        return _SPELLINGS[spelling]
    if isinstance(spelling, str) and spelling.startswith("cuda:"):
        raise ValueError(
            f"device {spelling!r}: tinynet runs on one GPU, CuPy's current device, called 'cuda', "
            "'cuda:0' or 'gpu'; to run on another GPU, make it the only one visible with "
            "CUDA_VISIBLE_DEVICES"
        )
    raise ValueError(
        f"unknown device {spelling!r}: expected one of {DEVICES}, PyTorch's 'cuda' or 'cuda:0', "
        "or a tinynet.device"
    )


# What Tensor.device returns: PyTorch's devices of a CPU tensor and of a tensor on the GPU.
_CPU, _GPU = device("cpu"), device("cuda", 0)


def gpu_count():
    """How many CUDA GPUs CuPy sees (0 without CuPy or without a driver)."""
    if cupy is None:
        return 0
    try:
        return cupy.cuda.runtime.getDeviceCount()
    except Exception:  # CuPy raises CUDARuntimeError subclasses without a driver
        return 0


def gpu_available():
    """True when CuPy is installed and can see at least one CUDA device."""
    return gpu_count() > 0


def check_device(device):
    """tinynet's name ("cpu" or "gpu") of ``device`` if it is usable, else raise an error
    that says what to do."""
    name = device_name(device)
    if name == "gpu" and cupy is None:
        raise RuntimeError(f"device '{device}' needs CuPy, which is not installed: {_GPU_HELP}")
    if name == "gpu" and not gpu_available():
        raise RuntimeError(f"device '{device}' asked for, but CuPy finds no CUDA GPU: {_GPU_HELP}")
    return name


def get_xp(device):
    """The array module for a device name: numpy for 'cpu', cupy for 'gpu'."""
    return cupy if check_device(device) == "gpu" else np


def xp_of(array):
    """The array module an array belongs to (numpy for Python scalars)."""
    if cupy is not None and isinstance(array, cupy.ndarray):
        return cupy
    return np


def device_of(array):
    """The `device` an array is on; it compares equal to "cpu" or "gpu" (and "cuda")."""
    return _GPU if xp_of(array) is not np else _CPU


def to_device(array, device):
    """Copy an array to a device, or return it unchanged if it is already there."""
    name = check_device(device)
    if device_of(array) == name:
        return array
    return cupy.asarray(array) if name == "gpu" else cupy.asnumpy(array)


def to_numpy(array):
    return to_device(array, "cpu") if device_of(array) == "gpu" else np.asarray(array)


# float32 matrix products on the GPU: "highest" computes them in float32; "high" lets cuBLAS
# round their inputs to TF32 (10 bits of mantissa instead of 23) and run them on the tensor
# cores, several times faster. PyTorch's names; as there, the CPU is unaffected. Unlike
# PyTorch, tinynet's convolutions are matrix products too, so this one switch covers them
# (PyTorch's cuDNN convolutions have their own, torch.backends.cudnn.allow_tf32, on by default).
MATMUL_PRECISIONS = ("highest", "high")
_matmul_precision = "highest"


def set_float32_matmul_precision(precision):
    """Like torch.set_float32_matmul_precision: "highest" (float32, the default) or "high" (TF32)."""
    global _matmul_precision
    if precision not in MATMUL_PRECISIONS:
        raise ValueError(f"unknown float32 matmul precision {precision!r}: expected one of {MATMUL_PRECISIONS} "
                         "('high' allows TF32 on the GPU)")
    _matmul_precision = precision
    if gpu_available():
        _set_cupy_compute_type(precision == "high")


def get_float32_matmul_precision():
    return _matmul_precision


def _set_cupy_compute_type(tf32):
    # CuPy reads its compute type from CUPY_TF32 at the first product, or takes it from this
    # function, which it has kept since version 8 without giving it a public name.
    from cupy._core import _routines_linalg as linalg

    linalg.set_compute_type(np.float32, linalg.COMPUTE_TYPE_TF32 if tf32 else linalg.COMPUTE_TYPE_DEFAULT)


# Randomness: one generator per device, all restarted by manual_seed, so that
# initialisation, dropout and everything else drawn from them repeat bit for bit.
_seed = 0
_generators = {}


def manual_seed(seed):
    """Seed every generator tinynet draws from (weights, dropout masks)."""
    global _seed
    _seed = int(seed)
    _generators.clear()


def generator(device="cpu"):
    """The random generator of a device, created from the last seed on first use."""
    name = check_device(device)
    if name not in _generators:
        _generators[name] = get_xp(name).random.default_rng(_seed)
    return _generators[name]


def get_rng_state():
    """The CPU generator's state as a JSON-able dict (for checkpoints)."""
    return generator("cpu").bit_generator.state


def set_rng_state(state):
    generator("cpu").bit_generator.state = state


@contextlib.contextmanager
def fixed_seed(seed):
    """Run a block with every generator restarted from ``seed``, then restore them.

    Used to evaluate one random function (dropout) several times with the same draws.
    """
    global _seed
    saved = _seed, dict(_generators)
    manual_seed(seed)
    try:
        yield
    finally:
        _seed = saved[0]
        _generators.clear()
        _generators.update(saved[1])
