"""SGD's two update rules against hand computation, optimizer state, and learning-rate schedules."""

import io

import numpy as np
import pytest

from tinynet import nn, optim

W0 = np.array([1.0, -2.0])
GRADS = [np.array([0.5, 0.25]), np.array([-1.0, 2.0]), np.array([0.1, 0.3])]
LR, MOMENTUM, DECAY = 0.1, 0.9, 0.01


def parameter(values=W0):
    return nn.Parameter(np.array(values, dtype=np.float32))


def run(update, lrs, w0=W0, grads=GRADS, momentum=MOMENTUM, weight_decay=DECAY):
    """Take one SGD step per (lr, grad); returns the weights after every step."""
    w = parameter(w0)
    sgd = optim.SGD([w], lr=lrs[0], momentum=momentum, weight_decay=weight_decay, update=update)
    history = []
    for lr, g in zip(lrs, grads):
        sgd.lr = lr
        w.grad = np.array(g, dtype=np.float32)
        sgd.step()
        history.append(w.data.copy())
    return history


def test_pytorch_rule_matches_hand_computation():
    # v <- m v + (g + wd w);  w <- w - lr v
    w, v, expected = W0.copy(), np.zeros(2), []
    for g in GRADS:
        v = MOMENTUM * v + (g + DECAY * w)
        w = w - LR * v
        expected.append(w)
    # the first step written out: d = [0.5 + 0.01, 0.25 - 0.02]; w = w0 - 0.1 d
    np.testing.assert_allclose(expected[0], [0.949, -2.023])
    got = run("pytorch", [LR] * 3)
    for step, (a, b) in enumerate(zip(got, expected)):
        np.testing.assert_allclose(a, b, rtol=1e-6, err_msg=f"step {step}")
        assert a.dtype == np.float32


def test_paper_rule_matches_hand_computation():
    # v <- m v - wd lr w - lr g;  w <- w + v   (section 5)
    lrs = [0.1, 0.1, 0.01]
    w, v, expected = W0.copy(), np.zeros(2), []
    for lr, g in zip(lrs, GRADS):
        v = MOMENTUM * v - DECAY * lr * w - lr * g
        w = w + v
        expected.append(w)
    got = run("paper", lrs)
    for step, (a, b) in enumerate(zip(got, expected)):
        np.testing.assert_allclose(a, b, rtol=1e-6, err_msg=f"step {step}")


def test_the_two_rules_agree_while_the_learning_rate_is_constant():
    for a, b in zip(run("pytorch", [LR] * 3), run("paper", [LR] * 3)):
        np.testing.assert_allclose(a, b, rtol=1e-6)


def test_the_two_rules_differ_after_a_learning_rate_change():
    lrs = [0.1, 0.1, 0.01]
    pytorch, paper = run("pytorch", lrs), run("paper", lrs)
    np.testing.assert_allclose(pytorch[1], paper[1], rtol=1e-6)
    # PyTorch rescales the whole velocity by the new rate; the paper's keeps the old rate's steps.
    assert np.abs(pytorch[2] - paper[2]).max() > 1e-2


def test_plain_sgd_without_momentum_or_decay():
    got = run("pytorch", [0.5], grads=[np.array([1.0, -1.0])], momentum=0.0, weight_decay=0.0)
    np.testing.assert_array_equal(got[0], W0 - 0.5 * np.array([1.0, -1.0]))


def test_step_skips_parameters_without_gradient_and_zero_grad_clears():
    a, b = parameter(), parameter()
    sgd = optim.SGD([a, b], lr=0.1, momentum=0.9)
    a.grad = np.ones(2, dtype=np.float32)
    sgd.step()
    np.testing.assert_array_equal(b.data, W0)
    assert not np.array_equal(a.data, W0)
    sgd.zero_grad()
    assert a.grad is None and b.grad is None


def _checkpoint(state):
    """Through an .npz file and back, as a checkpoint would go."""
    buffer = io.BytesIO()
    np.savez(buffer, **state)
    buffer.seek(0)
    with np.load(buffer, allow_pickle=False) as archive:
        return {key: archive[key] for key in archive.files}


@pytest.mark.parametrize("update", ["pytorch", "paper"])
def test_optimizer_state_round_trip_continues_identically(update):
    model = nn.Linear(3, 2)
    sgd = optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4, update=update)
    rng = np.random.default_rng(0)
    grads = [[rng.standard_normal(p.shape).astype(np.float32) for p in model.parameters()] for _ in range(4)]

    def step(optimizer, params, gs):
        for p, g in zip(params, gs):
            p.grad = g.copy()
        optimizer.step()

    for gs in grads[:2]:
        step(sgd, model.parameters(), gs)
    weights = _checkpoint(model.state_dict())
    state = _checkpoint(sgd.state_dict())
    assert sorted(k for k in state if k.startswith("velocity")) == ["velocity.0", "velocity.1"]

    resumed = nn.Linear(3, 2)
    resumed.load_state_dict(weights)
    # made with other settings on purpose: loading must restore them all (ints included)
    other = optim.SGD(resumed.parameters(), lr=1, momentum=0, update="pytorch" if update == "paper" else "paper")
    other.load_state_dict(state)
    assert (other.lr, other.momentum, other.weight_decay, other.update) == (0.05, 0.9, 5e-4, update)
    assert all(v.dtype == np.float32 for v in other.velocity)

    for gs in grads[2:]:
        step(sgd, model.parameters(), gs)
        step(other, resumed.parameters(), gs)
    for a, b in zip(model.parameters(), resumed.parameters()):
        np.testing.assert_array_equal(a.data, b.data)


def test_load_state_dict_rejects_a_velocity_of_the_wrong_shape():
    sgd = optim.SGD(nn.Linear(3, 2).parameters(), lr=0.1, momentum=0.9)
    state = {"lr": 0.1, "momentum": 0.9, "weight_decay": 0.0, "update": "pytorch", "velocity.0": np.zeros((3, 3))}
    with pytest.raises(ValueError, match="velocity.0"):
        sgd.load_state_dict(state)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(lr=0.0), "lr > 0"),
        (dict(lr=-0.1), "lr > 0"),
        (dict(lr=0.1, momentum=-0.9), "momentum >= 0"),
        (dict(lr=0.1, weight_decay=-1e-4), "weight_decay >= 0"),
        (dict(lr=0.1, update="adam"), "unknown update rule"),
    ],
)
def test_bad_arguments_raise_value_error(kwargs, message):
    with pytest.raises(ValueError, match=message):
        optim.SGD([parameter()], **kwargs)


def test_an_empty_parameter_list_is_refused():
    with pytest.raises(ValueError, match="empty parameter list"):
        optim.SGD([], lr=0.1)


def test_step_lr_divides_every_step_size_epochs():
    sgd = optim.SGD([parameter()], lr=0.1)
    schedule = optim.StepLR(sgd, step_size=2, gamma=0.1)
    lrs = []
    for _ in range(6):
        schedule.step()
        lrs.append(sgd.lr)
    np.testing.assert_allclose(lrs, [0.1, 0.01, 0.01, 0.001, 0.001, 0.0001])

    # Resumed as a checkpoint does it: the rate comes back with the optimizer's state.
    resumed_sgd = optim.SGD([parameter()], lr=0.5)
    resumed = optim.StepLR(resumed_sgd, step_size=2, gamma=0.1)
    resumed_sgd.load_state_dict(sgd.state_dict())
    resumed.load_state_dict(schedule.state_dict())
    for _ in range(2):
        resumed.step(), schedule.step()
        assert resumed_sgd.lr == sgd.lr
    assert sgd.lr == pytest.approx(1e-5)  # epoch 8: 0.1 * 0.1**4


PLATEAU = [1.0, 0.9, 0.95, 0.95, 0.95, 0.95, 0.95, 0.95, 0.5, 0.6]


def _plateau_lrs(schedule, sgd, metrics):
    lrs = []
    for metric in metrics:
        schedule.step(metric)
        lrs.append(sgd.lr)
    return lrs


def test_reduce_on_plateau_waits_patience_epochs_then_divides_by_ten():
    sgd = optim.SGD([parameter()], lr=0.1)
    schedule = optim.ReduceLROnPlateau(sgd, patience=2)
    lrs = _plateau_lrs(schedule, sgd, PLATEAU)
    # improve, improve, 2 bad epochs tolerated, the 3rd divides; the count restarts, the 6th bad divides again
    np.testing.assert_allclose(lrs, [0.1, 0.1, 0.1, 0.1, 0.01, 0.01, 0.01, 0.001, 0.001, 0.001])


def test_reduce_on_plateau_needs_a_relative_improvement_and_respects_min_lr():
    sgd = optim.SGD([parameter()], lr=0.1)
    schedule = optim.ReduceLROnPlateau(sgd, patience=0, threshold=1e-3, min_lr=0.005)
    schedule.step(1.0)
    schedule.step(0.9995)  # better, but by less than the 0.1% threshold
    assert sgd.lr == pytest.approx(0.01)
    schedule.step(0.5)
    assert sgd.lr == pytest.approx(0.01)
    schedule.step(0.5)
    assert sgd.lr == pytest.approx(0.005)  # not 0.001: floored at min_lr


def test_reduce_on_plateau_max_mode_follows_accuracy():
    sgd = optim.SGD([parameter()], lr=0.1)
    schedule = optim.ReduceLROnPlateau(sgd, mode="max", patience=1)
    assert _plateau_lrs(schedule, sgd, [0.5, 0.6, 0.55, 0.6, 0.7]) == pytest.approx([0.1, 0.1, 0.1, 0.01, 0.01])


def test_reduce_on_plateau_state_round_trips():
    sgd = optim.SGD([parameter()], lr=0.1)
    schedule = optim.ReduceLROnPlateau(sgd, patience=2)
    _plateau_lrs(schedule, sgd, PLATEAU[:4])  # best 0.9, two bad epochs so far
    state = _checkpoint(schedule.state_dict())

    resumed_sgd = optim.SGD([parameter()], lr=sgd.lr)
    resumed = optim.ReduceLROnPlateau(resumed_sgd, patience=2)
    resumed.load_state_dict(state)
    assert _plateau_lrs(resumed, resumed_sgd, PLATEAU[4:]) == _plateau_lrs(schedule, sgd, PLATEAU[4:])
    assert resumed_sgd.lr == pytest.approx(0.001)


def test_reduce_on_plateau_bad_arguments():
    sgd = optim.SGD([parameter()], lr=0.1)
    with pytest.raises(ValueError, match="mode"):
        optim.ReduceLROnPlateau(sgd, mode="lowest")
    with pytest.raises(ValueError, match="factor"):
        optim.ReduceLROnPlateau(sgd, factor=10)
    with pytest.raises(ValueError, match="patience must be at least 0, got -1"):
        optim.ReduceLROnPlateau(sgd, patience=-1)


def test_step_lr_refuses_a_step_that_would_divide_by_zero():
    sgd = optim.SGD([parameter()], lr=0.1)
    with pytest.raises(ValueError, match="step_size >= 1"):
        optim.StepLR(sgd, step_size=0)


def test_linear_lr_warms_up_linearly_then_holds():
    optimizer = optim.SGD([parameter([0.0])], lr=0.01)
    warmup = optim.LinearLR(optimizer, start_factor=0.25, total_iters=3)
    rates = [optimizer.lr]
    for _ in range(5):
        warmup.step()
        rates.append(optimizer.lr)
    np.testing.assert_allclose(rates, [0.0025, 0.005, 0.0075, 0.01, 0.01, 0.01])


def test_linear_lr_keeps_a_division_made_during_the_warm_up():
    """Chained like PyTorch's: a plateau's lr/10 in the middle of the warm-up is kept."""
    optimizer = optim.SGD([parameter([0.0])], lr=0.01)
    warmup = optim.LinearLR(optimizer, start_factor=0.5, total_iters=2)
    warmup.step()
    optimizer.lr /= 10
    warmup.step()
    assert optimizer.lr == pytest.approx(0.001)


def test_linear_lr_state_round_trips_and_continues_identically():
    first = optim.SGD([parameter([0.0])], lr=0.1)
    warmup = optim.LinearLR(first, start_factor=0.1, total_iters=10)
    for _ in range(4):
        warmup.step()
    second = optim.SGD([parameter([0.0])], lr=0.1)
    resumed = optim.LinearLR(second, start_factor=0.1, total_iters=10)
    second.load_state_dict(first.state_dict())
    resumed.load_state_dict(warmup.state_dict())
    for _ in range(8):
        warmup.step()
        resumed.step()
        assert second.lr == first.lr


@pytest.mark.parametrize("kwargs", [dict(start_factor=0), dict(start_factor=1.5), dict(total_iters=0)])
def test_linear_lr_refuses_bad_arguments(kwargs):
    optimizer = optim.SGD([parameter([0.0])], lr=0.01)
    with pytest.raises(ValueError, match="LinearLR needs factors in"):
        optim.LinearLR(optimizer, **kwargs)


def test_a_step_schedule_during_the_warm_up_scales_the_warm_up():
    """Epochs of 4 steps, a warm-up of 10, lr/2 every epoch: each rate is the warm-up's
    factor times the halvings so far, never a jump back to the full rate."""
    optimizer = optim.SGD([parameter([0.0])], lr=0.01)
    warmup = optim.LinearLR(optimizer, start_factor=0.1, total_iters=10)
    step_lr = optim.StepLR(optimizer, step_size=1, gamma=0.5)
    for step in range(1, 17):
        warmup.step()
        if step % 4 == 0:
            step_lr.step()
        factor = 0.1 + 0.9 * min(step, 10) / 10
        assert optimizer.lr == pytest.approx(0.01 * factor * 0.5 ** (step // 4))
