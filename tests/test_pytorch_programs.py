"""PyTorch programs as students write them (tests/pytorch_programs/), run unchanged on tinynet.

Each program says `import torch`. Run on tinynet, `torch` and its submodules are tinynet's
modules of the same names; where PyTorch is installed, the same file also runs on it, from the
same starting weights and batches, and the two must agree.
"""

import contextlib
import importlib
import runpy
import sys
from pathlib import Path

import numpy as np
import pytest

import tinynet
from tinynet.data import load_fashion_mnist

PROGRAMS = Path(__file__).with_name("pytorch_programs")
TORCH_MODULES = ("torch", "torch.nn", "torch.nn.functional", "torch.optim", "torch.utils", "torch.utils.data",
                 "torch.autograd")


@pytest.fixture(scope="module")
def fashion():
    train_images, train_labels, test_images, test_labels = load_fashion_mnist()
    return train_images[:4000], train_labels[:4000], test_images, test_labels


@contextlib.contextmanager
def modules_named_torch(library):
    """While a program is imported, `import torch` (and torch.nn, ...) gives ``library``'s modules."""
    saved = {name: sys.modules.get(name) for name in TORCH_MODULES}
    try:
        for name in TORCH_MODULES:
            sys.modules[name] = importlib.import_module(library + name[len("torch"):])
        yield
    finally:
        for name, module in saved.items():
            if module is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = module


def run_program(program, library):
    """The program's globals (its functions and classes), imported with `torch` = ``library``."""
    with modules_named_torch(library):
        return runpy.run_path(str(PROGRAMS / f"{program}.py"))


@pytest.fixture
def on_tinynet():
    return lambda program: run_program(program, "tinynet")


@pytest.fixture
def on_torch():
    pytest.importorskip("torch", reason="comparing with PyTorch needs torch (pip install torch)")
    return lambda program: run_program(program, "torch")


def same_start(ours, theirs):
    """Give tinynet's model the PyTorch model's initial weights."""
    ours.load_state_dict({name: value.detach().numpy() for name, value in theirs.state_dict().items()})


# -- a multilayer perceptron with SGD --------------------------------------------------------


def test_the_mlp_learns_on_tinynet(on_tinynet, fashion):
    train_images, train_labels, test_images, test_labels = fashion
    program = on_tinynet("mlp")
    tinynet.manual_seed(0)
    model = program["MLP"]()
    losses = program["train"](model, train_images, train_labels)
    assert np.mean(losses[-10:]) < 0.6 * np.mean(losses[:10])
    assert program["accuracy"](model, test_images, test_labels) > 0.65  # chance is 0.1


def test_the_mlp_trains_as_on_pytorch(on_tinynet, on_torch, fashion):
    train_images, train_labels, test_images, test_labels = fashion
    theirs = on_torch("mlp")
    ours = on_tinynet("mlp")
    model_theirs, model_ours = theirs["MLP"](), ours["MLP"]()
    same_start(model_ours, model_theirs)
    losses_theirs = theirs["train"](model_theirs, train_images[:2000], train_labels[:2000], epochs=1)
    losses_ours = ours["train"](model_ours, train_images[:2000], train_labels[:2000], epochs=1)
    # float32 sums in other orders drift apart over 20 momentum steps, far less than this
    np.testing.assert_allclose(losses_ours, losses_theirs, rtol=1e-3)
    accuracy_ours = ours["accuracy"](model_ours, test_images, test_labels)
    accuracy_theirs = theirs["accuracy"](model_theirs, test_images, test_labels)
    assert abs(accuracy_ours - accuracy_theirs) <= 0.01


# -- a convolutional network with a DataLoader, Adam, dropout and saving ---------------------


def test_the_cnn_learns_and_saves_on_tinynet(on_tinynet, fashion, tmp_path):
    train_images, train_labels, test_images, test_labels = fashion
    program = on_tinynet("cnn")
    tinynet.manual_seed(0)
    model = program["build_model"]()
    losses = program["train"](model, program["make_loader"](train_images[:2000], train_labels[:2000]))
    assert np.mean(losses[-5:]) < 0.6 * np.mean(losses[:5])
    test_loader = program["make_loader"](test_images, test_labels, shuffle=False)
    assert program["evaluate"](model, test_loader) > 0.6  # chance is 0.1
    reloaded = program["save_and_reload"](model, tmp_path / "cnn.pt")
    np.testing.assert_array_equal(program["predictions"](reloaded, test_images[:200]),
                                  program["predictions"](model, test_images[:200]))


def test_the_cnn_trains_as_on_pytorch(on_tinynet, on_torch, fashion):
    train_images, train_labels = fashion[0][:640], fashion[1][:640]
    theirs, ours = on_torch("cnn"), on_tinynet("cnn")
    model_theirs, model_ours = theirs["build_model"](dropout=0.0), ours["build_model"](dropout=0.0)
    same_start(model_ours, model_theirs)
    losses = [program["train"](model, program["make_loader"](train_images, train_labels, shuffle=False))
              for program, model in ((theirs, model_theirs), (ours, model_ours))]
    np.testing.assert_allclose(losses[1], losses[0], rtol=2e-3)


# -- custom autograd Functions ---------------------------------------------------------------


def regression_data():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 3)).astype(np.float32)
    y = (x @ np.array([[1.0], [-2.0], [0.5]], np.float32)).clip(0, None)
    return x, y


def test_custom_functions_agree_with_autograd_and_fit_on_tinynet(on_tinynet):
    program = on_tinynet("custom_function")
    rng = np.random.default_rng(1)
    x, w, b = (rng.standard_normal(shape).astype(np.float32) for shape in ((5, 4), (3, 4), (3,)))
    results = program["gradients_against_autograd"](x, w, b)
    for custom, builtin in zip(results["custom"], results["autograd"]):
        np.testing.assert_allclose(custom, builtin, rtol=1e-5, atol=1e-7)
    losses, _ = program["fit"](*regression_data())
    assert losses[-1] < 0.1 * losses[0]


def test_custom_functions_give_pytorchs_gradients_and_fit(on_tinynet, on_torch):
    theirs, ours = on_torch("custom_function"), on_tinynet("custom_function")
    rng = np.random.default_rng(1)
    inputs = [rng.standard_normal(shape).astype(np.float32) for shape in ((5, 4), (3, 4), (3,))]
    for got, expected in zip(ours["gradients_against_autograd"](*inputs)["custom"],
                             theirs["gradients_against_autograd"](*inputs)["custom"]):
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-7)
    losses_ours, w_ours = ours["fit"](*regression_data())
    losses_theirs, w_theirs = theirs["fit"](*regression_data())
    np.testing.assert_allclose(losses_ours, losses_theirs, rtol=1e-4, atol=1e-7)
    np.testing.assert_allclose(w_ours, w_theirs, rtol=1e-4, atol=1e-6)


# -- tensor basics -----------------------------------------------------------------------------


def test_tensor_basics_give_what_pytorch_gives(on_tinynet, on_torch):
    expected = on_torch("tensor_basics")["results"]()
    got = on_tinynet("tensor_basics")["results"]()
    assert got.keys() == expected.keys()
    for key in expected:
        assert_same(got[key], expected[key], key)


def test_gradients_through_indexing_and_reductions_match_pytorch(on_tinynet, on_torch):
    (loss_ours, grad_ours), (loss_theirs, grad_theirs) = (on_tinynet("tensor_basics")["gradients"](),
                                                          on_torch("tensor_basics")["gradients"]())
    assert loss_ours == pytest.approx(loss_theirs, rel=1e-6)
    np.testing.assert_allclose(grad_ours, grad_theirs, rtol=1e-5, atol=1e-7)


def assert_same(got, expected, where):
    """Equal values of equal types (float32 rounding allowed); dtype names without 'torch.'."""
    if isinstance(expected, str):
        assert got == expected.removeprefix("torch."), where
    elif isinstance(expected, list):
        assert isinstance(got, list) and len(got) == len(expected), f"{where}: {got} != {expected}"
        for index, (g, e) in enumerate(zip(got, expected)):
            assert_same(g, e, f"{where}[{index}]")
    elif isinstance(expected, float):
        assert isinstance(got, float) and got == pytest.approx(expected, rel=1e-6), f"{where}: {got} != {expected}"
    else:
        assert type(got) is type(expected) and got == expected, f"{where}: {got!r} != {expected!r}"


def test_the_readmes_pytorch_example_learns(capsys):
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    section = readme.split("## Coming from PyTorch", 1)[1]
    code = section.split("```python\n", 1)[1].split("```", 1)[0]
    tinynet.manual_seed(0)
    exec(compile(code, "README.md", "exec"), {})
    assert float(capsys.readouterr().out) > 0.8  # chance is at most 0.5 (the middle class)
