"""torch.cuda's first questions, answered for CuPy: is there a GPU to run on, and how many.

    device = tinynet.device("cuda" if tinynet.cuda.is_available() else "cpu")
"""

from . import backend


def is_available():
    """True when CuPy is installed and sees a CUDA GPU, so that device "cuda" can be used."""
    return backend.gpu_available()


def device_count():
    """How many CUDA GPUs CuPy sees; tinynet runs on one of them, CuPy's current device."""
    return backend.gpu_count()
