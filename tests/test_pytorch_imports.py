"""PyTorch's import paths reach tinynet's modules: the same objects, not copies."""

import subprocess
import sys

import tinynet
import tinynet.data
import tinynet.functional


def test_nn_functional_is_the_very_functional_module():
    import tinynet.nn.functional as F  # isort files it apart: no tinynet/nn/functional.py exists

    from tinynet.nn import functional as nn_functional
    assert F is tinynet.functional and nn_functional is tinynet.functional
    assert tinynet.nn.functional is tinynet.functional
    assert sys.modules["tinynet.nn.functional"] is tinynet.functional
    from tinynet.nn.functional import cross_entropy, relu
    assert relu is tinynet.functional.relu and cross_entropy is tinynet.functional.cross_entropy


def test_utils_data_gives_the_datasets_and_loader_of_tinynet_data():
    from tinynet.utils.data import DataLoader, Dataset, Subset, TensorDataset, random_split
    assert (DataLoader, Dataset, TensorDataset) == (tinynet.data.DataLoader, tinynet.data.Dataset,
                                                    tinynet.data.TensorDataset)
    assert (Subset, random_split) == (tinynet.data.Subset, tinynet.data.random_split)
    assert tinynet.utils.data.DataLoader is tinynet.data.DataLoader


def test_device_and_cuda_are_at_the_top_level():
    assert tinynet.device("cpu") == "cpu" and isinstance(tinynet.cuda.is_available(), bool)
    assert isinstance(tinynet.cuda.device_count(), int)


def run_fresh(code):
    """Run `code` in a new interpreter, so that no earlier import has loaded a module for it."""
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout


def test_utils_is_there_after_import_tinynet_alone_and_loads_on_first_use():
    out = run_fresh(
        "import sys, tinynet\n"
        "print('tinynet.data' in sys.modules)\n"
        "print(tinynet.utils.data.DataLoader is tinynet.data.DataLoader)\n"
        "import tinynet.nn.functional as F\n"
        "print(F is tinynet.functional)\n"
        "try:\n"
        "    tinynet.no_such_name\n"
        "except AttributeError as error:\n"
        "    print(error)\n"
    )
    assert out.split("\n")[:4] == ["False", "True", "True", "module 'tinynet' has no attribute 'no_such_name'"]
