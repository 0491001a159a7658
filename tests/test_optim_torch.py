"""SGD with parameter groups, Adam and the schedules against torch.optim, step by step.

Both sides start from the same float32 weights and receive the same gradients at every
step, so the weights after each step must agree to float32 rounding.
"""

import numpy as np
import pytest

from tinynet import nn, optim

torch = pytest.importorskip("torch", reason="PyTorch parity tests need torch (pip install torch)")

RTOL, ATOL = 1e-4, 1e-5
SHAPES = [(4, 3), (4,), (2, 5)]


def twins(seed=0):
    """The same random weights as tinynet Parameters and as torch leaf tensors."""
    rng = np.random.default_rng(seed)
    values = [rng.standard_normal(shape).astype(np.float32) for shape in SHAPES]
    return [nn.Parameter(v.copy()) for v in values], [torch.tensor(v.copy(), requires_grad=True) for v in values]


def run_both(ours, theirs, make_ours, make_theirs, steps=6, between=None, skip=None):
    """Step both optimizers with the same gradients; ``between(step, ours, theirs)`` may change
    settings, and the parameter numbered ``skip`` gets no gradient on odd steps."""
    ours_opt, theirs_opt = make_ours(ours), make_theirs(theirs)
    rng = np.random.default_rng(1)
    for step in range(steps):
        if between is not None:
            between(step, ours_opt, theirs_opt)
        ours_opt.zero_grad(), theirs_opt.zero_grad()
        for index, (a, b) in enumerate(zip(ours, theirs)):
            if index == skip and step % 2:
                continue
            grad = rng.standard_normal(a.shape).astype(np.float32)
            a.grad, b.grad = grad.copy(), torch.from_numpy(grad.copy())
        ours_opt.step(), theirs_opt.step()
        for index, (a, b) in enumerate(zip(ours, theirs)):
            np.testing.assert_allclose(a.data, b.detach().numpy(), rtol=RTOL, atol=ATOL,
                                       err_msg=f"parameter {index} after step {step}")
            assert a.dtype == np.float32
    return ours_opt, theirs_opt


@pytest.mark.parametrize("settings", [
    dict(),
    dict(lr=0.01, betas=(0.8, 0.99), eps=1e-6),
    dict(lr=0.003, weight_decay=0.05),
    dict(lr=0.003, weight_decay=0.01, amsgrad=True),
])
def test_adam_matches_torch_over_several_steps(settings):
    ours, theirs = twins()
    run_both(ours, theirs, lambda ps: optim.Adam(ps, **settings), lambda ps: torch.optim.Adam(ps, **settings))


def test_adam_follows_an_lr_change_and_counts_steps_per_parameter_like_torch():
    def halve_at_three(step, ours_opt, theirs_opt):
        if step == 3:
            for group in ours_opt.param_groups + theirs_opt.param_groups:
                group["lr"] /= 2

    ours, theirs = twins(2)
    ours_opt, _ = run_both(ours, theirs, lambda ps: optim.Adam(ps, lr=0.01), lambda ps: torch.optim.Adam(ps, lr=0.01),
                           steps=7, between=halve_at_three, skip=1)
    assert [entry["step"] for entry in ours_opt.state] == [7, 4, 7]


def test_adam_groups_match_torch():
    ours, theirs = twins(3)
    run_both(ours, theirs,
             lambda ps: optim.Adam([{"params": ps[:2], "lr": 0.02, "amsgrad": True}, {"params": ps[2:]}], lr=0.001),
             lambda ps: torch.optim.Adam([{"params": ps[:2], "lr": 0.02, "amsgrad": True}, {"params": ps[2:]}],
                                         lr=0.001))


@pytest.mark.parametrize("settings", [
    dict(lr=0.05, momentum=0.9, dampening=0.3),
    dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=1e-3),
])
def test_sgd_dampening_and_nesterov_match_torch(settings):
    ours, theirs = twins(4)
    run_both(ours, theirs, lambda ps: optim.SGD(ps, **settings), lambda ps: torch.optim.SGD(ps, **settings))


def test_sgd_per_group_options_match_torch():
    def groups(ps):
        return [{"params": ps[:1], "lr": 0.2, "momentum": 0.5}, {"params": ps[1:], "weight_decay": 0.01}]

    def raise_second_group_lr(step, ours_opt, theirs_opt):
        if step == 2:
            ours_opt.param_groups[1]["lr"] = theirs_opt.param_groups[1]["lr"] = 0.1

    ours, theirs = twins(5)
    run_both(ours, theirs, lambda ps: optim.SGD(groups(ps), lr=0.01, momentum=0.9),
             lambda ps: torch.optim.SGD(groups(ps), lr=0.01, momentum=0.9), between=raise_second_group_lr)


def test_schedules_change_every_group_like_torch():
    ours, theirs = twins(6)
    ours_opt = optim.SGD([{"params": ours[:1], "lr": 1.0}, {"params": ours[1:]}], lr=0.1)
    theirs_opt = torch.optim.SGD([{"params": theirs[:1], "lr": 1.0}, {"params": theirs[1:]}], lr=0.1)
    ours_warmup = optim.LinearLR(ours_opt, start_factor=0.2, total_iters=4)
    theirs_warmup = torch.optim.lr_scheduler.LinearLR(theirs_opt, start_factor=0.2, total_iters=4)
    ours_step = optim.lr_scheduler.StepLR(ours_opt, step_size=3, gamma=0.5)
    theirs_step = torch.optim.lr_scheduler.StepLR(theirs_opt, step_size=3, gamma=0.5)
    for _ in range(8):
        theirs_opt.step()  # torch warns when a schedule steps before its optimizer
        for ours_schedule, theirs_schedule in ((ours_warmup, theirs_warmup), (ours_step, theirs_step)):
            ours_schedule.step(), theirs_schedule.step()
        assert ours_warmup.get_last_lr() == pytest.approx(theirs_warmup.get_last_lr(), rel=1e-12)

    ours_plateau = optim.ReduceLROnPlateau(ours_opt, patience=1, min_lr=[0.05, 0.0])
    theirs_plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(theirs_opt, patience=1, min_lr=[0.05, 0.0])
    for metric in [1.0, 1.0, 1.0, 1.0, 0.5, 0.6, 0.6, 0.6]:
        ours_plateau.step(metric), theirs_plateau.step(metric)
        assert [g["lr"] for g in ours_opt.param_groups] == pytest.approx(
            [g["lr"] for g in theirs_opt.param_groups], rel=1e-12)
