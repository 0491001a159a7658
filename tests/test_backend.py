"""NumPy/CuPy backend: array modules, device moves and their errors, the same numbers on every
device, and seeded randomness."""

import importlib.util

import numpy as np
import pytest

import tinynet
import tinynet.functional as F
from tinynet import backend, nn

CUPY_INSTALLED = importlib.util.find_spec("cupy") is not None
DEVICE_ATOL = 1e-5  # float32 on CPU vs GPU: the same math, summed in a different order


# -- NumPy side of the helpers ---------------------------------------------------------


def test_numpy_arrays_and_scalars_belong_to_numpy_on_the_cpu():
    array = np.zeros(3, dtype=np.float32)
    assert backend.xp_of(array) is np
    assert backend.xp_of(2.0) is np
    assert backend.device_of(array) == "cpu"
    assert backend.get_xp("cpu") is np
    assert backend.to_device(array, "cpu") is array  # no copy when already there
    assert backend.to_numpy(array) is array
    converted = backend.to_numpy([1.0, 2.0])
    assert isinstance(converted, np.ndarray)
    np.testing.assert_array_equal(converted, [1.0, 2.0])


def test_an_unknown_device_names_the_allowed_ones():
    for call in (lambda: backend.check_device("tpu"), lambda: tinynet.tensor([1.0], device="cuda")):
        with pytest.raises(ValueError) as caught:
            call()
        assert "'cpu'" in str(caught.value) and "'gpu'" in str(caught.value)
    assert backend.check_device("cpu") == "cpu"


@pytest.mark.skipif(CUPY_INSTALLED, reason="only without CuPy")
@pytest.mark.parametrize(
    "call",
    [
        lambda: backend.check_device("gpu"),
        lambda: tinynet.tensor([1.0, 2.0], device="gpu"),
        lambda: tinynet.tensor([1.0]).to("gpu"),
        lambda: nn.Linear(2, 2).to("gpu"),
        lambda: backend.generator("gpu"),
    ],
    ids=["check_device", "tensor", "Tensor.to", "Module.to", "generator"],
)
def test_gpu_without_cupy_says_how_to_install_it(call):
    with pytest.raises(RuntimeError) as caught:
        call()
    message = str(caught.value)
    assert "pip install" in message and "[gpu]" in message and "device='cpu'" in message
    assert not tinynet.gpu_available()


# -- the same numbers on every device ---------------------------------------------------


def _small_alexnet():
    return nn.Sequential(
        nn.Conv2d(3, 8, 5, stride=2), nn.ReLU(), nn.LocalResponseNorm(5, alpha=1e-2, k=2.0), nn.MaxPool2d(3, 2),
        nn.Conv2d(8, 8, 3, padding=1, groups=2), nn.ReLU(), nn.MaxPool2d(3, 2, padding=1),
        nn.Flatten(), nn.Linear(8 * 2 * 2, 5),
    )


def _forward_backward(device):
    tinynet.manual_seed(5)
    model = _small_alexnet().to(device)
    x = np.random.default_rng(0).standard_normal((2, 3, 17, 17)).astype(np.float32)
    images = tinynet.tensor(x, requires_grad=True, device=device)
    targets = backend.to_device(np.array([1, 4]), device)
    loss = F.cross_entropy(model(images), targets)
    loss.backward()
    return loss, images, model


def test_layers_give_the_same_numbers_on_every_device(device):
    loss_cpu, images_cpu, model_cpu = _forward_backward("cpu")
    loss, images, model = _forward_backward(device)
    assert loss.device == device and backend.device_of(images.grad) == device
    assert loss.dtype == np.float32
    assert loss.item() == pytest.approx(loss_cpu.item(), abs=DEVICE_ATOL)
    np.testing.assert_allclose(backend.to_numpy(images.grad), images_cpu.grad, atol=DEVICE_ATOL)
    for (name, p), (_, p_cpu) in zip(model.named_parameters(), model_cpu.named_parameters()):
        assert p.device == device and backend.device_of(p.grad) == device, name
        np.testing.assert_array_equal(p.numpy(), p_cpu.numpy(), err_msg=name)  # init drawn on CPU, then moved
        np.testing.assert_allclose(backend.to_numpy(p.grad), p_cpu.grad, atol=DEVICE_ATOL, err_msg=name)


def test_dropout_on_every_device(device):
    x = tinynet.tensor(np.ones((200, 500), dtype=np.float32), requires_grad=True, device=device)
    out = F.dropout(x, 0.5)
    assert out.device == device and out.dtype == np.float32
    kept = out.numpy() != 0
    assert 0.49 < kept.mean() < 0.51
    np.testing.assert_array_equal(out.numpy()[kept], 2.0)
    out.backward(backend.to_device(np.ones(x.shape, dtype=np.float32), device))
    np.testing.assert_array_equal(backend.to_numpy(x.grad), out.numpy())
    with backend.fixed_seed(7):
        first = F.dropout(x, 0.5).numpy()
    with backend.fixed_seed(7):
        np.testing.assert_array_equal(F.dropout(x, 0.5).numpy(), first)


def test_module_to_device_moves_every_parameter_and_back(device):
    model = _small_alexnet()
    before = {name: p.numpy().copy() for name, p in model.named_parameters()}
    assert model.to(device) is model
    assert all(p.device == device and p.dtype == np.float32 for p in model.parameters())
    out = model(tinynet.tensor(np.ones((1, 3, 17, 17), dtype=np.float32), device=device))
    assert out.device == device and out.shape == (1, 5)
    model.to("cpu")
    for name, p in model.named_parameters():
        assert p.device == "cpu"
        np.testing.assert_array_equal(p.data, before[name])


def test_tensor_to_device_and_back(device):
    x = tinynet.tensor([[1.0, 2.0]], requires_grad=True)
    moved = x.to(device)
    assert moved.device == device and moved.requires_grad and moved.is_leaf
    back = moved.to("cpu")
    assert isinstance(back.data, np.ndarray)
    np.testing.assert_array_equal(back.data, x.data)


# -- seeds -----------------------------------------------------------------------------------


def test_manual_seed_repeats_every_draw():
    tinynet.manual_seed(11)
    first = [nn.Linear(30, 20).weight.numpy(), F.dropout(np.ones((10, 10), dtype=np.float32), 0.5).numpy()]
    tinynet.manual_seed(11)
    second = [nn.Linear(30, 20).weight.numpy(), F.dropout(np.ones((10, 10), dtype=np.float32), 0.5).numpy()]
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a, b)
    tinynet.manual_seed(12)
    assert not np.array_equal(nn.Linear(30, 20).weight.numpy(), first[0])


def test_fixed_seed_restores_the_previous_generator_state():
    tinynet.manual_seed(3)
    expected = backend.generator("cpu").random(8)  # what the next draws would be without the block

    tinynet.manual_seed(3)
    head = backend.generator("cpu").random(4)
    with backend.fixed_seed(99):
        inside = backend.generator("cpu").random(3)
    tail = backend.generator("cpu").random(4)
    np.testing.assert_array_equal(np.concatenate([head, tail]), expected)
    np.testing.assert_array_equal(inside, np.random.default_rng(99).random(3))


def test_fixed_seed_restores_a_generator_not_yet_created():
    tinynet.manual_seed(3)
    with backend.fixed_seed(99):
        backend.generator("cpu").random(5)
    np.testing.assert_array_equal(backend.generator("cpu").random(4), np.random.default_rng(3).random(4))


def test_rng_state_round_trips():
    tinynet.manual_seed(8)
    backend.generator("cpu").random(3)
    state = backend.get_rng_state()
    expected = backend.generator("cpu").random(5)
    tinynet.manual_seed(0)
    backend.set_rng_state(state)
    np.testing.assert_array_equal(backend.generator("cpu").random(5), expected)
