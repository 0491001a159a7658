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


def make_device(spelling):
    """tinynet.device("cuda:0") for "cuda:0", tinynet.device("cuda", 0) for ("cuda", 0)."""
    return tinynet.device(*spelling) if isinstance(spelling, tuple) else tinynet.device(spelling)


def test_an_unknown_device_names_the_allowed_ones():
    for call in (lambda: backend.check_device("tpu"), lambda: tinynet.tensor([1.0], device="mps"),
                 lambda: tinynet.device(0), lambda: nn.Linear(2, 2).to("cuda0")):
        with pytest.raises(ValueError, match="unknown device") as caught:
            call()
        assert all(name in str(caught.value) for name in ("'cpu'", "'gpu'", "'cuda'"))
    assert backend.check_device("cpu") == "cpu"


def test_a_second_gpu_is_refused_with_the_way_to_reach_it():
    for spelling in ("cuda:1", ("cuda", 1)):
        with pytest.raises(ValueError, match="one GPU.*CUDA_VISIBLE_DEVICES"):
            make_device(spelling)
    with pytest.raises(ValueError, match="CUDA_VISIBLE_DEVICES"):
        tinynet.tensor([1.0]).to("cuda:1")


# -- devices with PyTorch's names ---------------------------------------------------------


@pytest.mark.parametrize("spelling, text, type_, index", [
    ("cpu", "cpu", "cpu", None),
    ("cuda", "cuda", "cuda", None),
    ("cuda:0", "cuda:0", "cuda", 0),
    (("cuda", 0), "cuda:0", "cuda", 0),
    ("gpu", "cuda", "cuda", None),
])
def test_a_device_is_spelled_as_in_pytorch(spelling, text, type_, index):
    made = make_device(spelling)
    assert (str(made), made.type, made.index) == (text, type_, index)
    assert tinynet.device(made) == made and str(tinynet.device(made)) == text
    expected = "device(type='cuda', index=0)" if index == 0 else f"device(type='{type_}')"
    assert repr(made) == expected


def test_a_device_equals_every_spelling_of_the_same_device_and_no_other():
    cuda, cpu = tinynet.device("cuda"), tinynet.device("cpu")
    assert cuda == "cuda" and cuda == "cuda:0" and cuda == "gpu" and cuda == tinynet.device("cuda:0")
    assert cpu == "cpu" and "cpu" == cpu
    assert cuda != "cpu" and cpu != "gpu" and cuda != cpu and cpu != "tpu" and cuda != 0
    assert {"cpu": 1, "gpu": 2}[cuda] == 2 and {"cpu": 1, "gpu": 2}[cpu] == 1  # hashes as tinynet's name
    assert cuda in backend.DEVICES and cpu in backend.DEVICES


def test_a_tensor_reports_its_device_as_pytorch_and_as_tinynet_names_it():
    x = tinynet.tensor([1.0, 2.0])
    assert isinstance(x.device, tinynet.device)
    assert x.device == "cpu" and x.device.type == "cpu" and str(x.device) == "cpu"
    assert x.to(x.device).device == "cpu" and tinynet.tensor([1.0], device=x.device).device == "cpu"
    assert backend.generator(x.device) is backend.generator("cpu")


def test_the_usual_pytorch_device_idiom_runs_without_a_gpu():
    device = tinynet.device("cuda" if tinynet.cuda.is_available() else "cpu")
    assert tinynet.cuda.is_available() == tinynet.gpu_available()
    assert (tinynet.cuda.device_count() > 0) == tinynet.gpu_available()
    model = nn.Linear(3, 2).to(device)
    x = tinynet.tensor(np.ones((4, 3), np.float32)).to(device)
    assert model(x).device == device and model.weight.device == device
    assert backend.get_xp(device) is backend.xp_of(model(x).data)


@pytest.mark.parametrize("spelling", ["cuda", "cuda:0", ("cuda", 0)])
def test_cuda_names_the_gpu(spelling, device):
    cuda = make_device(spelling) if isinstance(spelling, tuple) else spelling
    if device == "cpu":
        if tinynet.gpu_available():
            pytest.skip("checks the message shown when no GPU is present")
        with pytest.raises(RuntimeError, match=r"needs CuPy|finds no CUDA GPU") as caught:
            tinynet.tensor([1.0]).to(cuda)
        assert "pip install" in str(caught.value) and "device='cpu'" in str(caught.value)
        return
    moved = tinynet.tensor([[1.0, 2.0]], requires_grad=True).to(cuda)
    assert moved.device == "gpu" and moved.device == cuda and str(moved.device) == "cuda:0"
    assert backend.xp_of(moved.data) is backend.get_xp(cuda) is not np
    model = nn.Linear(2, 3).to(cuda)
    assert all(p.device == "gpu" for p in model.parameters())
    assert model(moved).device == "cuda"
    assert backend.generator(cuda) is backend.generator("gpu")


@pytest.mark.skipif(CUPY_INSTALLED, reason="only without CuPy")
@pytest.mark.parametrize(
    "call",
    [
        lambda: backend.check_device("gpu"),
        lambda: tinynet.tensor([1.0, 2.0], device="gpu"),
        lambda: tinynet.tensor([1.0]).to("gpu"),
        lambda: nn.Linear(2, 2).to("gpu"),
        lambda: backend.generator("gpu"),
        lambda: tinynet.tensor([1.0]).to("cuda"),
        lambda: nn.Linear(2, 2).to(tinynet.device("cuda:0")),
        lambda: tinynet.tensor([1.0], device=tinynet.device("cuda")),
    ],
    ids=["check_device", "tensor", "Tensor.to", "Module.to", "generator", "Tensor.to cuda", "Module.to cuda:0",
         "tensor device object"],
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
