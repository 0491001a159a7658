"""SGD's two update rules against hand computation, optimizer state, and learning-rate schedules."""

import json
import tempfile
from pathlib import Path

import numpy as np
import pytest

import tinynet
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
    """Through a file and back, with tinynet.save and tinynet.load."""
    with tempfile.TemporaryDirectory() as folder:
        tinynet.save(state, Path(folder) / "state.npz")
        return tinynet.load(Path(folder) / "state.npz")


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
    assert all(entry["velocity"].dtype == np.float32 for entry in other.state)

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
        (dict(lr=-0.1), "lr >= 0"),
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


# -- parameter groups ------------------------------------------------------------------


def _set_grads(params, value=1.0):
    for p in params:
        p.grad = np.full(p.shape, value, dtype=np.float32)


@pytest.mark.parametrize("make", [lambda ps: optim.SGD(ps, lr=0.1), lambda ps: optim.Adam(ps, lr=0.1)])
def test_changing_a_groups_lr_changes_the_next_step(make):
    a, b = parameter(), parameter()
    optimizer = make([a, b])
    _set_grads([a, b])
    optimizer.step()
    moved = W0 - a.data
    for group in optimizer.param_groups:
        group["lr"] = 0.0
    optimizer.step()
    np.testing.assert_array_equal(W0 - a.data, moved)  # lr 0: the second step moved nothing
    optimizer.param_groups[0]["lr"] = 0.2
    before = a.data.copy()
    optimizer.step()
    assert np.abs(a.data - before).max() > 0


def test_each_group_takes_its_own_settings_and_the_defaults_for_the_rest():
    a, b = parameter(), parameter()
    sgd = optim.SGD([{"params": [a], "lr": 0.5}, {"params": [b], "momentum": 0.9}], lr=0.1)
    assert [g["lr"] for g in sgd.param_groups] == [0.5, 0.1]
    assert [g["momentum"] for g in sgd.param_groups] == [0.0, 0.9]
    _set_grads([a, b])
    sgd.step()
    np.testing.assert_allclose(a.data, W0 - 0.5)
    np.testing.assert_allclose(b.data, W0 - 0.1)
    assert "velocity" not in sgd.state[0] and "velocity" in sgd.state[1]


def test_lr_property_reads_the_shared_rate_sets_every_group_and_refuses_to_guess():
    sgd = optim.SGD([{"params": [parameter()]}, {"params": [parameter()]}], lr=0.1, momentum=0.9)
    assert sgd.lr == 0.1 and sgd.momentum == 0.9
    sgd.lr = 0.01
    assert [g["lr"] for g in sgd.param_groups] == [0.01, 0.01]
    sgd.param_groups[1]["lr"] = 0.5
    with pytest.raises(ValueError, match=r"different lr values \[0.01, 0.5\].*param_groups"):
        _ = sgd.lr


def test_schedules_change_every_groups_rate():
    sgd = optim.SGD([{"params": [parameter()], "lr": 1.0}, {"params": [parameter()]}], lr=0.1)
    warmup = optim.LinearLR(sgd, start_factor=0.5, total_iters=2)
    assert warmup.get_last_lr() == [0.5, 0.05]
    optim.StepLR(sgd, step_size=1, gamma=0.1).step()
    assert sgd.param_groups[0]["lr"] == pytest.approx(0.05) and sgd.param_groups[1]["lr"] == pytest.approx(0.005)
    plateau = optim.ReduceLROnPlateau(sgd, patience=0, min_lr=[0.02, 0.0])
    plateau.step(1.0), plateau.step(1.0)
    assert plateau.get_last_lr() == pytest.approx([0.02, 0.0005])  # the first group floored at its own min_lr
    with pytest.raises(ValueError, match="min_lr has 3 values for 2 parameter groups"):
        optim.ReduceLROnPlateau(sgd, min_lr=[0.1, 0.1, 0.1])


def test_add_param_group_extends_the_state_and_the_numbering():
    a, b = parameter(), parameter()
    sgd = optim.SGD([a], lr=0.1, momentum=0.9)
    sgd.add_param_group({"params": b, "lr": 0.01})
    _set_grads([a, b])
    sgd.step()
    assert sorted(k for k in sgd.state_dict() if "." in k) == ["velocity.0", "velocity.1"]
    assert sgd.state_dict()["param_groups"][1] == {
        "lr": 0.01, "momentum": 0.9, "dampening": 0.0, "weight_decay": 0.0, "nesterov": False, "update": "pytorch",
        "params": [1]}


def test_parameters_are_checked_when_the_optimizer_is_made():
    a = parameter()
    with pytest.raises(TypeError, match="iterable of Tensors or of dicts.*got one Tensor"):
        optim.SGD(a, lr=0.1)
    with pytest.raises(ValueError, match="appear twice"):
        optim.SGD([a, a], lr=0.1)
    with pytest.raises(ValueError, match="appear twice"):
        optim.Adam([{"params": [a]}, {"params": [a]}])
    with pytest.raises(TypeError, match="leaf Tensors"):
        optim.SGD([a * 2], lr=0.1)
    with pytest.raises(ValueError, match="Nesterov momentum needs momentum > 0"):
        optim.SGD([a], lr=0.1, nesterov=True)
    with pytest.raises(ValueError, match="paper's update has no dampening"):
        optim.SGD([a], lr=0.1, momentum=0.9, dampening=0.1, update="paper")
    with pytest.raises(ValueError, match="SGD needs weight_decay >= 0"):
        optim.SGD([{"params": [a], "weight_decay": -1.0}], lr=0.1)


def test_sgd_arguments_come_in_torchs_order():
    sgd = optim.SGD([parameter()], 0.1, 0.9, 0.5, 1e-4, False)
    assert sgd.param_groups[0] | {"params": None} == {
        "lr": 0.1, "momentum": 0.9, "dampening": 0.5, "weight_decay": 1e-4, "nesterov": False, "update": "pytorch",
        "params": None}


@pytest.mark.parametrize("make", [lambda ps: optim.SGD(ps, lr=0.1), lambda ps: optim.Adam(ps)])
def test_zero_grad_sets_to_none_or_fills_with_zeros(make):
    a = parameter()
    optimizer = make([a])
    _set_grads([a], 3.0)
    optimizer.zero_grad(set_to_none=False)
    np.testing.assert_array_equal(a.grad, [0.0, 0.0])
    assert a.grad.dtype == np.float32
    optimizer.zero_grad()
    assert a.grad is None


# -- saved state -----------------------------------------------------------------------


def test_a_state_saved_before_parameter_groups_still_loads():
    """A training checkpoint written before param_groups kept the settings at the top."""
    model = nn.Linear(3, 2)
    velocity = np.arange(6, dtype=np.float64).reshape(2, 3)
    old = {"lr": 0.05, "momentum": 0.9, "weight_decay": 5e-4, "update": "paper", "velocity.0": velocity}
    sgd = optim.SGD(model.parameters(), lr=1.0)
    sgd.load_state_dict(old)
    assert (sgd.lr, sgd.momentum, sgd.weight_decay, sgd.update) == (0.05, 0.9, 5e-4, "paper")
    np.testing.assert_array_equal(sgd.state[0]["velocity"], velocity)
    assert sgd.state[0]["velocity"].dtype == np.float32 and sgd.state[1] == {}


def test_load_state_dict_refuses_other_groups_and_foreign_state_without_changing_anything():
    a, b = parameter(), parameter()
    sgd = optim.SGD([a, b], lr=0.1, momentum=0.9)
    two_groups = optim.SGD([{"params": [parameter()]}, {"params": [parameter()]}], lr=0.3).state_dict()
    with pytest.raises(ValueError, match=r"groups of \[1, 1\] parameters; this SGD has groups of \[2\]"):
        sgd.load_state_dict(two_groups)
    adam = optim.Adam([parameter(), parameter()])
    _set_grads([p for g in adam.param_groups for p in g["params"]])
    adam.step()
    with pytest.raises(ValueError, match="'step.0' matches no state of SGD, which keeps velocity"):
        sgd.load_state_dict(adam.state_dict())
    assert sgd.lr == 0.1 and sgd.state == [{}, {}]


def test_adam_state_round_trips_through_a_file_and_continues_identically():
    rng = np.random.default_rng(0)
    grads = [rng.standard_normal(2).astype(np.float32) for _ in range(5)]
    a, b = parameter(), parameter()
    adam = optim.Adam([a], lr=0.01, weight_decay=0.1, amsgrad=True)
    for g in grads[:2]:
        a.grad = g
        adam.step()
    resumed = optim.Adam([b])
    b.data = a.data.copy()
    resumed.load_state_dict(_checkpoint(adam.state_dict()))
    assert resumed.param_groups[0]["betas"] == (0.9, 0.999) and resumed.param_groups[0]["amsgrad"]
    assert resumed.state[0]["step"] == 2 and resumed.state[0]["exp_avg"].dtype == np.float32
    for g in grads[2:]:
        a.grad, b.grad = g, g.copy()
        adam.step(), resumed.step()
    np.testing.assert_array_equal(a.data, b.data)


def test_adam_matches_the_algorithm_written_out():
    lr, (b1, b2), eps, decay = 0.01, (0.8, 0.9), 1e-3, 0.1
    w, m, v, expected = W0.copy(), np.zeros(2), np.zeros(2), []
    for t, g in enumerate(GRADS, start=1):
        g = g + decay * w
        m, v = b1 * m + (1 - b1) * g, b2 * v + (1 - b2) * g * g
        w = w - lr * (m / (1 - b1**t)) / (np.sqrt(v / (1 - b2**t)) + eps)
        expected.append(w)
    p = parameter()
    adam = optim.Adam([p], lr=lr, betas=(b1, b2), eps=eps, weight_decay=decay)
    for g, want in zip(GRADS, expected):
        p.grad = g.astype(np.float32)
        adam.step()
        np.testing.assert_allclose(p.data, want, rtol=1e-5)
        assert p.dtype == np.float32 and adam.state[0]["exp_avg_sq"].dtype == np.float32


@pytest.mark.parametrize("kwargs, message", [
    (dict(lr=-1.0), "Adam needs lr >= 0"),
    (dict(eps=-1e-8), "Adam needs eps >= 0"),
    (dict(betas=(0.9, 1.0)), r"betas \(b1, b2\) with each in \[0, 1\)"),
    (dict(betas=(0.9,)), r"betas \(b1, b2\)"),
])
def test_adam_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        optim.Adam([parameter()], **kwargs)


def test_a_training_checkpoint_holds_adams_state_as_well_as_sgds(tmp_path):
    from tinynet.experiment import read_training_state, restore_training_state, save_training_state

    def stepped(optimizer_class):
        tinynet.manual_seed(0)
        model = nn.Linear(3, 2)
        optimizer = optimizer_class(model.parameters(), lr=0.1)
        model(tinynet.tensor(np.ones((4, 3), np.float32))).sum().backward()
        optimizer.step()
        return model, optimizer

    for optimizer_class in (optim.Adam, optim.SGD):
        model, optimizer = stepped(optimizer_class)
        path = tmp_path / f"{optimizer_class.__name__}.npz"
        save_training_state(path, model, optimizer, None, {"epoch": 1}, {"preset": "test"})
        fresh_model = nn.Linear(3, 2)
        fresh_optimizer = optimizer_class(fresh_model.parameters(), lr=0.5)
        restore_training_state(*read_training_state(path), fresh_model, fresh_optimizer)
        saved, restored = optimizer.state_dict(), fresh_optimizer.state_dict()
        assert saved.keys() == restored.keys()
        for key in saved:
            if hasattr(saved[key], "shape"):
                np.testing.assert_array_equal(restored[key], saved[key])
            else:  # settings go through JSON, where Adam's betas tuple becomes a list
                assert json.dumps(restored[key]) == json.dumps(saved[key]), key
