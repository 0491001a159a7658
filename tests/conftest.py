import numpy as np
import pytest
from PIL import Image

import tinynet
from tinynet import backend, layer_paths
from tinynet.fast import workspace

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


@pytest.fixture(params=layer_paths.PATHS)
def layer_path(request):
    """Run a test on both paths through the heavy layers: fast (the default) and reference."""
    with tinynet.reference_layers(request.param == "reference"):
        yield request.param


@pytest.fixture
def recycle_every_array(monkeypatch):
    """Small test arrays go through the fast path's recycled blocks too (normally only
    arrays of 1 MiB or more do), so that a block handed out while still in use shows
    as a wrong result."""
    monkeypatch.setattr(workspace, "RECYCLE_MIN_BYTES", 0)


@pytest.fixture(autouse=True)
def _seeded():
    tinynet.manual_seed(0)


@pytest.fixture
def rng():
    return np.random.default_rng(0)


@pytest.fixture
def image_folder(tmp_path):
    """train/ and val/ with three classes of 40x40 images whose colour gives the class."""
    rng = np.random.default_rng(0)
    for split, count in (("train", 8), ("val", 3)):
        for label, colour in enumerate(((200, 30, 30), (30, 200, 30), (30, 30, 200))):
            folder = tmp_path / "data" / split / f"class{label}"
            folder.mkdir(parents=True)
            for i in range(count):
                pixels = np.clip(rng.normal(colour, 25, (40, 40, 3)), 0, 255).astype(np.uint8)
                Image.fromarray(pixels).save(folder / f"{i}.{'png' if i % 2 else 'jpg'}")
    return tmp_path / "data"
