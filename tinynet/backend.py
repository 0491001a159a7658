"""The one place that knows about NumPy and CuPy.

Everything else asks this module for an array module (``xp``) and calls only
functions that NumPy and CuPy both have, so the same layer code runs on either.
"""

import contextlib

import numpy as np

try:  # CuPy is the optional `gpu` extra.
    import cupy
except ImportError:  # pragma: no cover - depends on the machine
    cupy = None

DEVICES = ("cpu", "gpu")
_GPU_HELP = (
    "install the GPU extra with `pip install -e .[gpu]` (CuPy for CUDA 12) "
    "on a machine with an NVIDIA GPU, or use device='cpu'"
)


def gpu_available():
    """True when CuPy is installed and can see at least one CUDA device."""
    if cupy is None:
        return False
    try:
        return cupy.cuda.runtime.getDeviceCount() > 0
    except Exception:  # CuPy raises CUDARuntimeError subclasses without a driver
        return False


def check_device(device):
    """Return ``device`` if it is usable, else raise an error that says what to do."""
    if device not in DEVICES:
        raise ValueError(f"unknown device {device!r}: expected one of {DEVICES}")
    if device == "gpu" and cupy is None:
        raise RuntimeError(f"device='gpu' needs CuPy, which is not installed: {_GPU_HELP}")
    if device == "gpu" and not gpu_available():
        raise RuntimeError(f"device='gpu' asked for, but CuPy finds no CUDA GPU: {_GPU_HELP}")
    return device


def get_xp(device):
    """The array module for a device name: numpy for 'cpu', cupy for 'gpu'."""
    return cupy if check_device(device) == "gpu" else np


def xp_of(array):
    """The array module an array belongs to (numpy for Python scalars)."""
    if cupy is not None and isinstance(array, cupy.ndarray):
        return cupy
    return np


def device_of(array):
    return "gpu" if xp_of(array) is not np else "cpu"


def to_device(array, device):
    """Copy an array to a device, or return it unchanged if it is already there."""
    if device_of(array) == check_device(device):
        return array
    if device == "gpu":
        return cupy.asarray(array)
    return cupy.asnumpy(array)


def to_numpy(array):
    return to_device(array, "cpu") if device_of(array) == "gpu" else np.asarray(array)


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
    if device not in _generators:
        _generators[device] = get_xp(device).random.default_rng(_seed)
    return _generators[device]


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
