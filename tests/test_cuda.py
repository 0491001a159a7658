"""What only a GPU can show: the CUDA kernels' own edge cases, a training step that never
waits for the GPU, the fused SGD update, and the TF32 switch. The kernels' numbers are
also held equal to the reference path in test_layer_paths.py and gradient-checked in
float64 in test_gradcheck_functions.py, on the GPU wherever there is one."""

import numpy as np
import pytest

import alexnet
import tinynet
import tinynet.functional as F
from tinynet import Tensor, backend, optim

needs_gpu = pytest.mark.skipif(not backend.gpu_available(), reason="needs CuPy and an NVIDIA GPU")


@pytest.fixture
def highest_precision():
    yield
    tinynet.set_float32_matmul_precision("highest")


def test_an_unknown_matmul_precision_names_the_choices():
    with pytest.raises(ValueError, match="'highest', 'high'"):
        tinynet.set_float32_matmul_precision("medium")
    assert tinynet.get_float32_matmul_precision() == "highest"


def test_tf32_leaves_the_cpu_alone(highest_precision, rng):
    a, b = rng.standard_normal((64, 64)).astype(np.float32), rng.standard_normal((64, 64)).astype(np.float32)
    exact = tinynet.matmul(tinynet.tensor(a), tinynet.tensor(b)).numpy()
    tinynet.set_float32_matmul_precision("high")
    assert tinynet.get_float32_matmul_precision() == "high"
    np.testing.assert_array_equal(tinynet.matmul(tinynet.tensor(a), tinynet.tensor(b)).numpy(), exact)


@needs_gpu
def test_tf32_rounds_the_gpus_float32_products_and_highest_does_not(highest_precision, rng):
    a, b = rng.standard_normal((512, 512)), rng.standard_normal((512, 512))
    exact = a @ b
    on_gpu = [backend.to_device(m.astype(np.float32), "gpu") for m in (a, b)]

    def error():
        product = backend.to_numpy(on_gpu[0] @ on_gpu[1])
        return np.linalg.norm(product - exact) / np.linalg.norm(exact)

    assert error() < 1e-6  # float32: 23 bits of mantissa
    tinynet.set_float32_matmul_precision("high")
    assert 1e-5 < error() < 1e-2  # TF32: inputs rounded to 10 bits
    tinynet.set_float32_matmul_precision("highest")
    assert error() < 1e-6


@needs_gpu
def test_a_training_step_never_waits_for_the_gpu():
    """Forward, loss, backward and the SGD update only queue work: no number is read back."""
    cupyx = pytest.importorskip("cupyx")
    tinynet.manual_seed(0)
    model = alexnet.AlexNet("paper", num_classes=10, in_channels=3).to("gpu")
    optimizer = optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4, update="paper")
    images = backend.to_device(np.random.default_rng(0).standard_normal((4, 3, 227, 227), dtype=np.float32), "gpu")
    labels = backend.to_device(np.array([1, 2, 3, 4]), "gpu")

    def step():
        optimizer.zero_grad()
        loss = F.cross_entropy(model(Tensor(images)), labels)
        loss.backward()
        optimizer.step()
        return loss

    step()  # compiles the kernels and builds the optimizer's state
    before = backend.to_numpy(model.classifier[-1].weight.data)
    with cupyx.allow_synchronize(False):  # raises cupyx.DeviceSynchronized at any wait
        loss = step()
    assert np.isfinite(loss.item())
    assert not np.array_equal(backend.to_numpy(model.classifier[-1].weight.data), before)  # the update ran


@needs_gpu
@pytest.mark.parametrize("update", ["paper", "pytorch"])
@pytest.mark.parametrize("nesterov", [False, True])
def test_the_fused_sgd_update_equals_the_array_update(update, nesterov, rng):
    if update == "paper" and nesterov:
        pytest.skip("the paper's update has no Nesterov momentum")
    start, grads = rng.standard_normal(1000).astype(np.float32), rng.standard_normal((3, 1000)).astype(np.float32)
    weights = {}
    for device in ("cpu", "gpu"):
        w = tinynet.nn.Parameter(backend.to_device(start.copy(), device))  # on the CPU, not start itself
        sgd = optim.SGD([w], lr=0.1, momentum=0.9, weight_decay=0.01, nesterov=nesterov, update=update)
        for g in grads:  # the first step starts the velocity, the others carry it
            w.grad = backend.to_device(g, device)
            sgd.step()
        weights[device] = backend.to_numpy(w.data)
    np.testing.assert_allclose(weights["gpu"], weights["cpu"], rtol=1e-6, atol=1e-6)


@needs_gpu
def test_a_target_out_of_range_on_the_gpu_makes_the_loss_nan_and_on_the_host_raises():
    logits = Tensor(backend.to_device(np.zeros((3, 5), np.float32), "gpu"))
    bad = np.array([0, 5, 1])
    assert np.isnan(F.cross_entropy(logits, backend.to_device(bad, "gpu")).item())
    with pytest.raises(ValueError, match=r"targets must lie in \[0, 5\).*got 5"):
        F.cross_entropy(logits, bad)


@needs_gpu
def test_ignored_rows_and_a_batch_of_only_ignored_rows():
    logits = Tensor(backend.to_device(np.log(np.array([[1, 1, 2], [1, 2, 1]], np.float32)), "gpu"))
    loss = F.cross_entropy(logits, backend.to_device(np.array([2, -100]), "gpu"))
    assert loss.item() == pytest.approx(np.log(2), rel=1e-6)  # row 0 alone: -log(2/4)
    assert np.isnan(F.cross_entropy(logits, backend.to_device(np.array([-100, -100]), "gpu")).item())


@needs_gpu
def test_max_pooling_sends_a_tied_windows_gradient_to_its_first_maximum():
    x = Tensor(backend.to_device(np.ones((1, 1, 3, 3), np.float32), "gpu"), requires_grad=True)
    F.max_pool2d(x, 2, 1).sum().backward()  # four windows, each of four equal ones
    expected = np.array([[1, 1, 0], [1, 1, 0], [0, 0, 0]], np.float32)  # each window's top-left
    np.testing.assert_array_equal(backend.to_numpy(x.grad)[0, 0], expected)


@needs_gpu
def test_convolution_kernels_handle_a_batch_larger_than_the_column_budget(monkeypatch, rng):
    """Chunks of a few images through one scratch buffer, each written back in its place."""
    columns_per_image = 4 * 3 * 3 * 7 * 7 * 4  # rows (C*kh*kw) x positions x float32 bytes
    monkeypatch.setattr(tinynet.fast.conv, "COLUMNS_BUDGET_BYTES", 2 * columns_per_image)  # 2 images a chunk
    x, w = rng.standard_normal((5, 4, 7, 7)).astype(np.float32), rng.standard_normal((6, 4, 3, 3)).astype(np.float32)
    results = {}
    for device in ("cpu", "gpu"):
        xt = Tensor(backend.to_device(x, device), requires_grad=True)
        wt = Tensor(backend.to_device(w, device), requires_grad=True)
        F.conv2d(xt, wt, padding=1).sum().backward()
        results[device] = backend.to_numpy(xt.grad), backend.to_numpy(wt.grad)
    for gpu, cpu in zip(results["gpu"], results["cpu"]):
        np.testing.assert_allclose(gpu, cpu, rtol=1e-5, atol=1e-5)


def test_an_array_too_large_for_32_bit_indices_is_refused_with_what_to_do():
    from types import SimpleNamespace

    from tinynet.fast.cuda.compile import check_32_bit

    small = SimpleNamespace(size=2**31 - 1)
    assert check_32_bit(small) is small
    with pytest.raises(ValueError, match="2,147,483,648 elements.*use a smaller batch"):
        check_32_bit(SimpleNamespace(size=2**31))
