import numpy as np
import pytest

import tinynet
from tinynet import backend

DEVICES = [
    "cpu",
    pytest.param(
        "gpu", marks=pytest.mark.skipif(not backend.gpu_available(), reason="needs CuPy and an NVIDIA GPU")
    ),
]


@pytest.fixture(params=DEVICES)
def device(request):
    """Run a test on every backend: NumPy always, CuPy when a GPU is there."""
    return request.param


@pytest.fixture(autouse=True)
def _seeded():
    tinynet.manual_seed(0)


@pytest.fixture
def rng():
    return np.random.default_rng(0)
