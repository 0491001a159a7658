"""Every layer, the loss, a whole AlexNet-shaped network and the optimizer against PyTorch.

Weights are copied across, both sides run in float32, and the forward output, the input
gradient and every parameter gradient must agree. Run with ``-s`` to see the largest
differences found.
"""

import os

import numpy as np
import pytest

import tinynet
import tinynet.functional as F
from tinynet import nn, optim

torch = pytest.importorskip("torch", reason="PyTorch parity tests need torch (pip install torch)")

# Both frameworks compute in float32 (about 7 significant digits) but sum in different
# orders (im2col + BLAS GEMM here, oneDNN/ATen kernels there), so results differ in the last
# bits of each sum, and more where a sum is long (a conv weight gradient adds up N*oh*ow
# products). RTOL bounds the relative error of ordinary entries; ATOL covers entries near
# zero, which are differences of larger float32 numbers. The worst case seen (conv1's
# weight gradient) uses about 15% of this tolerance, the whole network about 6%; a wrong
# index, scale or window is off by orders of magnitude more. `pytest -s` prints the margins.
RTOL = 1e-4
ATOL = 1e-5


@pytest.fixture(scope="module", autouse=True)
def _torch_threads():
    """Give torch the same cores NumPy's BLAS uses, and put its setting back afterwards."""
    previous = torch.get_num_threads()
    torch.set_num_threads(len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count())
    yield
    torch.set_num_threads(previous)


def assert_close(name, ours, theirs, rtol=RTOL, atol=ATOL):
    ours = ours.numpy() if isinstance(ours, tinynet.Tensor) else np.asarray(ours)
    theirs = theirs.detach().numpy() if isinstance(theirs, torch.Tensor) else np.asarray(theirs)
    assert ours.shape == theirs.shape, name
    assert ours.dtype == theirs.dtype == np.float32, name
    difference = np.abs(ours.astype(np.float64) - theirs)
    used = (difference / (atol + rtol * np.abs(theirs))).max()  # 1.0 would just pass
    print(f"{name:<45} max |difference| {difference.max():.1e}  max |value| {np.abs(theirs).max():.1e}  "
          f"tolerance used {used:.1%}")
    np.testing.assert_allclose(ours, theirs, rtol=rtol, atol=atol, err_msg=name)


def copy_weights(ours, theirs):
    """tinynet's (seeded) weights into the torch module, matched by their dotted names."""
    state = {name: torch.from_numpy(p.numpy().copy()) for name, p in ours.named_parameters()}
    theirs.load_state_dict(state, strict=True)


def random(*shape, scale=1.0, seed=0):
    return (np.random.default_rng(seed).standard_normal(shape) * scale).astype(np.float32)


def run_both(name, ours, theirs, x, rtol=RTOL, atol=ATOL):
    """Forward both modules on x, back-propagate the same random upstream gradient, compare all."""
    copy_weights(ours, theirs)
    x_ours = tinynet.tensor(x, requires_grad=True)
    x_theirs = torch.tensor(x, requires_grad=True)
    out_ours, out_theirs = ours(x_ours), theirs(x_theirs)
    assert_close(f"{name} forward", out_ours, out_theirs, rtol, atol)
    upstream = random(*out_ours.shape, seed=1)
    out_ours.backward(upstream)
    out_theirs.backward(torch.from_numpy(upstream))
    assert_close(f"{name} grad input", x_ours.grad, x_theirs.grad, rtol, atol)
    theirs_params = dict(theirs.named_parameters())
    for param_name, param in ours.named_parameters():
        assert_close(f"{name} grad {param_name}", param.grad, theirs_params[param_name].grad, rtol, atol)
    return out_ours, out_theirs


# -- one layer at a time ---------------------------------------------------------------


@pytest.mark.usefixtures("layer_path")
def test_linear():
    run_both("Linear", nn.Linear(20, 10), torch.nn.Linear(20, 10), random(4, 20))
    run_both("Linear (no bias)", nn.Linear(20, 10, bias=False), torch.nn.Linear(20, 10, bias=False), random(4, 20))


@pytest.mark.usefixtures("layer_path")
def test_conv2d_like_conv1_kernel_11_stride_4():
    ours, theirs = nn.Conv2d(3, 8, 11, stride=4), torch.nn.Conv2d(3, 8, 11, stride=4)
    out, _ = run_both("Conv2d 11x11/4", ours, theirs, random(2, 3, 39, 39))
    assert out.shape == (2, 8, 8, 8)


@pytest.mark.usefixtures("layer_path")
def test_conv2d_like_conv2_padding_2_groups_2():
    ours = nn.Conv2d(8, 12, 5, padding=2, groups=2)
    theirs = torch.nn.Conv2d(8, 12, 5, padding=2, groups=2)
    out, _ = run_both("Conv2d 5x5 pad 2 groups 2", ours, theirs, random(2, 8, 9, 9))
    assert out.shape == (2, 12, 9, 9)


@pytest.mark.usefixtures("layer_path")
def test_conv2d_non_square_stride_and_padding():
    ours = nn.Conv2d(4, 6, (3, 2), stride=(2, 1), padding=(1, 0), groups=2)
    theirs = torch.nn.Conv2d(4, 6, (3, 2), stride=(2, 1), padding=(1, 0), groups=2)
    run_both("Conv2d non-square", ours, theirs, random(2, 4, 7, 6))


@pytest.mark.usefixtures("layer_path")
@pytest.mark.parametrize("padding", [0, 1])
def test_max_pool_3x3_stride_2(padding):
    # continuous random inputs: no ties, so both pick the same winner in every window
    ours, theirs = nn.MaxPool2d(3, 2, padding=padding), torch.nn.MaxPool2d(3, 2, padding=padding)
    run_both(f"MaxPool2d(3, 2, padding={padding})", ours, theirs, random(2, 4, 13, 13))


@pytest.mark.usefixtures("layer_path")
def test_relu():
    run_both("ReLU", nn.ReLU(), torch.nn.ReLU(), random(3, 4, 5))


def test_dropout_in_eval_mode_is_the_identity_in_both():
    run_both("Dropout eval", nn.Dropout(0.5).eval(), torch.nn.Dropout(0.5).eval(), random(4, 50))


def test_dropout_in_train_mode_uses_the_same_convention():
    """The masks come from different generators, so compare through each side's own mask:
    both are inverted dropout, output = input * mask with mask in {0, 1/(1-p)}."""
    x = random(200, 100)  # no zeros, so the mask can be read back from the output
    x_ours = tinynet.tensor(x, requires_grad=True)
    x_theirs = torch.tensor(x, requires_grad=True)
    out_ours = nn.Dropout(0.5)(x_ours)
    out_theirs = torch.nn.Dropout(0.5)(x_theirs)
    for name, out in (("tinynet", out_ours.numpy()), ("torch", out_theirs.detach().numpy())):
        mask = (out != 0).astype(np.float32) * np.float32(2.0)
        np.testing.assert_array_equal(out, x * mask, err_msg=name)
        assert 0.47 < (mask != 0).mean() < 0.53, name
    mask = (out_ours.numpy() != 0) * np.float32(2.0)
    out_ours.backward(np.ones(x.shape, dtype=np.float32))
    np.testing.assert_array_equal(x_ours.grad, mask)
    # torch's gradient through its own mask obeys the same rule
    out_theirs.backward(torch.ones(x.shape))
    np.testing.assert_array_equal(x_theirs.grad.numpy(), (out_theirs.detach().numpy() != 0) * np.float32(2.0))


@pytest.mark.usefixtures("layer_path")
@pytest.mark.parametrize("alpha, scale", [(1e-4, 30.0), (0.1, 1.0)])
def test_lrn_with_alpha_over_n_equals_torch(alpha, scale):
    # scale: with the paper's tiny alpha, inputs of size 1 would hardly be normalised at all
    ours = nn.LocalResponseNorm(5, alpha=alpha, beta=0.75, k=2.0, alpha_over_n=True)
    theirs = torch.nn.LocalResponseNorm(5, alpha=alpha, beta=0.75, k=2.0)
    run_both(f"LRN alpha/n alpha={alpha}", ours, theirs, random(2, 9, 4, 4, scale=scale))


@pytest.mark.usefixtures("layer_path")
def test_lrn_paper_convention_equals_torch_with_alpha_times_n():
    ours = nn.LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=2.0)  # paper: alpha not divided by n
    theirs = torch.nn.LocalResponseNorm(5, alpha=5 * 1e-4, beta=0.75, k=2.0)
    run_both("LRN paper convention", ours, theirs, random(2, 9, 4, 4, scale=30.0))
    # and the two conventions really differ on such inputs
    x = random(2, 9, 4, 4, scale=30.0)
    torch_default = torch.nn.LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=2.0)(torch.tensor(x)).numpy()
    assert np.abs(ours(tinynet.tensor(x)).numpy() - torch_default).max() > 1e-2


@pytest.mark.usefixtures("layer_path")
def test_lrn_even_size():
    ours = nn.LocalResponseNorm(4, alpha=0.1, beta=0.75, k=1.0, alpha_over_n=True)
    run_both("LRN size 4", ours, torch.nn.LocalResponseNorm(4, alpha=0.1, beta=0.75, k=1.0), random(2, 7, 3, 3))


@pytest.mark.usefixtures("layer_path")
def test_cross_entropy():
    logits, targets = random(8, 10, scale=3.0), np.random.default_rng(2).integers(0, 10, 8)
    ours = tinynet.tensor(logits, requires_grad=True)
    theirs = torch.tensor(logits, requires_grad=True)
    loss_ours = F.cross_entropy(ours, targets)
    loss_theirs = torch.nn.functional.cross_entropy(theirs, torch.from_numpy(targets))
    assert_close("cross_entropy loss", loss_ours, loss_theirs)
    loss_ours.backward()
    loss_theirs.backward()
    assert_close("cross_entropy grad logits", ours.grad, theirs.grad)


@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
@pytest.mark.parametrize("dim", [0, 1])
def test_softmax_and_log_softmax(name, dim):
    x = random(6, 7, scale=4.0)
    ours = tinynet.tensor(x, requires_grad=True)
    theirs = torch.tensor(x, requires_grad=True)
    out_ours = getattr(F, name)(ours, dim=dim)
    out_theirs = getattr(torch.nn.functional, name)(theirs, dim=dim)
    assert_close(f"{name} dim={dim}", out_ours, out_theirs)
    upstream = random(6, 7, seed=3)
    out_ours.backward(upstream)
    out_theirs.backward(torch.from_numpy(upstream))
    assert_close(f"{name} dim={dim} grad", ours.grad, theirs.grad)


# -- a whole AlexNet-shaped network -------------------------------------------------------

WIDTHS = (8, 16, 24, 24, 16)  # AlexNet's 96, 256, 384, 384, 256, scaled down
HIDDEN, CLASSES = 32, 10


def alexnet_shaped(lib, dropout):
    """The paper's layer order with small widths, in tinynet (lib=nn) or torch (lib=torch.nn).

    67x67 input: conv1 11x11/4 -> 15, pool -> 7, conv2 -> 7, pool -> 3, conv3..5 -> 3, pool -> 1.
    """
    c1, c2, c3, c4, c5 = WIDTHS
    lrn = (
        (lambda: nn.LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=2.0))
        if lib is nn
        else (lambda: torch.nn.LocalResponseNorm(5, alpha=5e-4, beta=0.75, k=2.0))  # alpha * n: paper's LRN
    )
    return lib.Sequential(
        lib.Conv2d(3, c1, 11, stride=4), lib.ReLU(), lrn(), lib.MaxPool2d(3, 2),
        lib.Conv2d(c1, c2, 5, padding=2, groups=2), lib.ReLU(), lrn(), lib.MaxPool2d(3, 2),
        lib.Conv2d(c2, c3, 3, padding=1), lib.ReLU(),
        lib.Conv2d(c3, c4, 3, padding=1, groups=2), lib.ReLU(),
        lib.Conv2d(c4, c5, 3, padding=1, groups=2), lib.ReLU(), lib.MaxPool2d(3, 2),
        lib.Flatten(),
        lib.Dropout(dropout), lib.Linear(c5, HIDDEN), lib.ReLU(),
        lib.Dropout(dropout), lib.Linear(HIDDEN, HIDDEN), lib.ReLU(),
        lib.Linear(HIDDEN, CLASSES),
    )


@pytest.mark.usefixtures("layer_path")
@pytest.mark.parametrize("mode", ["eval", "train with p=0"])
def test_alexnet_shaped_network_agrees_end_to_end(mode):
    ours = alexnet_shaped(nn, dropout=0.5 if mode == "eval" else 0.0)
    theirs = alexnet_shaped(torch.nn, dropout=0.5 if mode == "eval" else 0.0)
    if mode == "eval":
        ours.eval(), theirs.eval()
    copy_weights(ours, theirs)
    x, targets = random(2, 3, 67, 67, scale=2.0), np.array([3, 7])

    x_ours = tinynet.tensor(x, requires_grad=True)
    x_theirs = torch.tensor(x, requires_grad=True)
    logits_ours, logits_theirs = ours(x_ours), theirs(x_theirs)
    assert logits_ours.shape == (2, CLASSES)
    assert_close(f"AlexNet-shaped ({mode}) logits", logits_ours, logits_theirs, RTOL, ATOL)
    loss_ours = F.cross_entropy(logits_ours, targets)
    loss_theirs = torch.nn.functional.cross_entropy(logits_theirs, torch.from_numpy(targets))
    assert_close(f"AlexNet-shaped ({mode}) loss", loss_ours, loss_theirs, RTOL, ATOL)
    loss_ours.backward()
    loss_theirs.backward()
    assert_close(f"AlexNet-shaped ({mode}) grad input", x_ours.grad, x_theirs.grad, RTOL, ATOL)
    theirs_params = dict(theirs.named_parameters())
    names = [name for name, _ in ours.named_parameters()]
    assert names == list(theirs_params) and len(names) == 16
    for name, param in ours.named_parameters():
        assert_close(f"AlexNet-shaped ({mode}) grad {name}", param.grad, theirs_params[name].grad, RTOL, ATOL)


# -- the optimizer and schedules ---------------------------------------------------------


def test_sgd_pytorch_rule_matches_torch_optim_sgd():
    ours = nn.Linear(6, 4)
    theirs = torch.nn.Linear(6, 4)
    copy_weights(ours, theirs)
    sgd = optim.SGD(ours.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
    torch_sgd = torch.optim.SGD(theirs.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
    for step in range(4):
        if step == 2:  # a learning-rate change, which the pytorch rule must follow like torch
            sgd.lr = torch_sgd.param_groups[0]["lr"] = 0.005
        x, targets = random(5, 6, seed=step), np.arange(5) % 4
        sgd.zero_grad(), torch_sgd.zero_grad()
        F.cross_entropy(ours(tinynet.tensor(x)), targets).backward()
        torch.nn.functional.cross_entropy(theirs(torch.tensor(x)), torch.from_numpy(targets)).backward()
        sgd.step(), torch_sgd.step()
    theirs_params = dict(theirs.named_parameters())
    for name, param in ours.named_parameters():
        assert_close(f"SGD after 4 steps: {name}", param.data, theirs_params[name], RTOL, ATOL)


def test_schedules_match_torch():
    metrics = [1.0, 0.9, 0.95, 0.95, 0.95, 0.899, 0.95, 0.95, 0.95, 0.95, 0.3, 0.4]
    sgd = optim.SGD([nn.Parameter(np.zeros(1, dtype=np.float32))], lr=0.1)
    torch_sgd = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)
    plateau = optim.ReduceLROnPlateau(sgd, patience=2)
    torch_plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(torch_sgd, patience=2)
    for metric in metrics:
        plateau.step(metric)
        torch_plateau.step(metric)
        assert sgd.lr == pytest.approx(torch_sgd.param_groups[0]["lr"], rel=1e-12)

    sgd = optim.SGD([nn.Parameter(np.zeros(1, dtype=np.float32))], lr=0.1)
    torch_sgd = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)
    step_lr = optim.StepLR(sgd, step_size=3, gamma=0.5)
    torch_step_lr = torch.optim.lr_scheduler.StepLR(torch_sgd, step_size=3, gamma=0.5)
    for _ in range(10):
        torch_sgd.step()  # torch warns when the scheduler steps before the optimizer
        step_lr.step()
        torch_step_lr.step()
        assert sgd.lr == pytest.approx(torch_sgd.param_groups[0]["lr"], rel=1e-12)


def test_linear_warm_up_matches_torch_linear_lr():
    sgd = optim.SGD([nn.Parameter(np.zeros(1, dtype=np.float32))], lr=0.01)
    torch_sgd = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.01)
    warmup = optim.LinearLR(sgd, start_factor=0.01, total_iters=100)
    torch_warmup = torch.optim.lr_scheduler.LinearLR(torch_sgd, start_factor=0.01, total_iters=100)
    for _ in range(120):
        assert sgd.lr == pytest.approx(torch_sgd.param_groups[0]["lr"], rel=1e-9)
        torch_sgd.step()
        warmup.step()
        torch_warmup.step()


def test_warm_up_under_a_step_schedule_matches_torch():
    sgd = optim.SGD([nn.Parameter(np.zeros(1, dtype=np.float32))], lr=0.01)
    torch_sgd = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.01)
    schedules = [optim.LinearLR(sgd, start_factor=0.1, total_iters=10), optim.StepLR(sgd, step_size=1)]
    torch_schedules = [torch.optim.lr_scheduler.LinearLR(torch_sgd, start_factor=0.1, total_iters=10),
                       torch.optim.lr_scheduler.StepLR(torch_sgd, step_size=1)]
    for step in range(1, 25):  # epochs of 4 steps: the warm-up steps every step, StepLR every epoch
        torch_sgd.step()
        due = schedules if step % 4 == 0 else schedules[:1]
        torch_due = torch_schedules if step % 4 == 0 else torch_schedules[:1]
        for ours, theirs in zip(due, torch_due):
            ours.step()
            theirs.step()
        assert sgd.lr == pytest.approx(torch_sgd.param_groups[0]["lr"], rel=1e-9)
