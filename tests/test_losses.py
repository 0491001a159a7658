"""The losses: cross_entropy, nll_loss and mse_loss with every reduction and ignore_index,
against central differences (float64) and against torch (float32), as Functions and Modules."""

import numpy as np
import pytest

import tinynet
import tinynet.functional as F
from tinynet import backend, nn
from tinynet.gradcheck import check_direction, check_elementwise

TOLERANCE = 1e-6
RTOL, ATOL = 1e-4, 1e-5
REDUCTIONS = ["mean", "sum", "none"]
_rng = np.random.default_rng(3)

LOGITS = _rng.standard_normal((6, 4))
TARGETS = np.array([0, 3, -100, 2, 1, 3])  # one row ignored with the default ignore_index
MASKED = np.array([2, 1, 2, 0, 2, 3])  # with ignore_index=2: three rows ignored, class 2 in none
LOG_PROBS = LOGITS - np.log(np.exp(LOGITS).sum(axis=1, keepdims=True))
OUTPUTS, WANTED = _rng.standard_normal((5, 3)), _rng.standard_normal((5, 3))

CASES = {
    "cross_entropy": (lambda r: lambda x, t: F.cross_entropy(x, t, reduction=r), [LOGITS, TARGETS]),
    "cross_entropy (ignore_index=2)": (
        lambda r: lambda x, t: F.cross_entropy(x, t, ignore_index=2, reduction=r), [LOGITS, MASKED]),
    "nll_loss": (lambda r: lambda x, t: F.nll_loss(x, t, reduction=r), [LOG_PROBS, TARGETS]),
    "nll_loss (ignore_index=2)": (lambda r: lambda x, t: F.nll_loss(x, t, ignore_index=2, reduction=r),
                                  [LOG_PROBS, MASKED]),
    "mse_loss": (lambda r: lambda x, y: F.mse_loss(x, y, reduction=r), [OUTPUTS, WANTED]),
}


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("name", list(CASES))
def test_gradient_matches_central_differences(name, reduction, device, layer_path):
    make, inputs = CASES[name]
    inputs = [backend.to_device(x, device) for x in inputs]
    assert check_elementwise(make(reduction), inputs) < TOLERANCE
    assert check_direction(make(reduction), inputs) < TOLERANCE


def test_ignored_rows_get_no_loss_no_gradient_and_are_not_counted():
    logits = tinynet.tensor(LOGITS.astype(np.float32), requires_grad=True)
    F.cross_entropy(logits, MASKED, ignore_index=2).backward()
    kept = MASKED != 2
    np.testing.assert_array_equal(logits.grad[~kept], 0)
    each = F.cross_entropy(tinynet.tensor(LOGITS.astype(np.float32)), MASKED, ignore_index=2, reduction="none").data
    np.testing.assert_array_equal(each[~kept], 0)
    mean = F.cross_entropy(tinynet.tensor(LOGITS.astype(np.float32)), MASKED, ignore_index=2).item()
    assert mean == pytest.approx(each[kept].sum() / kept.sum(), rel=1e-6)  # divided by 3 kept rows, not 6


def test_an_ignored_row_of_minus_infinity_does_not_poison_the_loss():
    log_probs = LOG_PROBS.astype(np.float32).copy()
    log_probs[2] = -np.inf  # the ignored row (target -100)
    log_probs = tinynet.tensor(log_probs, requires_grad=True)
    loss = F.nll_loss(log_probs, TARGETS)
    loss.backward()
    assert np.isfinite(loss.item()) and np.isfinite(log_probs.grad).all()


def test_every_row_ignored_gives_nan_for_the_mean_as_torch_does():
    with np.errstate(invalid="ignore"):
        loss = F.cross_entropy(tinynet.tensor(LOGITS.astype(np.float32)), np.full(6, -100))
    assert np.isnan(loss.item())
    assert F.cross_entropy(tinynet.tensor(LOGITS.astype(np.float32)), np.full(6, -100), reduction="sum").item() == 0


def test_the_default_reduction_keeps_float32_and_one_value():
    loss = F.cross_entropy(tinynet.tensor(LOGITS.astype(np.float32), requires_grad=True), TARGETS)
    assert loss.shape == () and loss.dtype == np.float32
    loss.backward()
    assert F.mse_loss(tinynet.tensor(OUTPUTS.astype(np.float32)), WANTED.astype(np.float32)).dtype == np.float32


# -- bad inputs ----------------------------------------------------------------------------


@pytest.mark.parametrize("loss", [F.cross_entropy, F.nll_loss])
def test_class_losses_name_bad_targets(loss):
    logits = tinynet.tensor(LOGITS.astype(np.float32))
    with pytest.raises(ValueError, match=r"targets must lie in \[0, 4\) or equal ignore_index=-100, got 4"):
        loss(logits, np.array([0, 1, 2, 3, 4, 0]))
    with pytest.raises(ValueError, match="got -1"):
        loss(logits, np.array([0, 1, -1, 3, 2, 0]))
    with pytest.raises(tinynet.ShapeError, match=r"integer class indices of shape \(6,\).*float32 \(6, 4\)"):
        loss(logits, np.zeros((6, 4), dtype=np.float32))  # class probabilities are not taken
    with pytest.raises(tinynet.ShapeError, match=r"expected input of shape \(N, classes\), got \(6, 4, 1\)"):
        loss(tinynet.tensor(np.zeros((6, 4, 1), dtype=np.float32)), TARGETS)
    with pytest.raises(ValueError, match=r"reduction must be one of \('mean', 'sum', 'none'\), got 'avg'"):
        loss(logits, TARGETS, reduction="avg")
    with pytest.raises(TypeError):  # torch's third positional argument is a class weight, not taken here
        loss(logits, TARGETS, None)


def test_mse_loss_refuses_a_target_of_another_shape_or_dtype():
    outputs = tinynet.tensor(np.zeros((4, 1), dtype=np.float32))
    with pytest.raises(tinynet.ShapeError, match=r"target of the input's shape \(4, 1\), got \(4,\)"):
        F.mse_loss(outputs, np.zeros(4, dtype=np.float32))
    with pytest.raises(TypeError, match="target of the input's dtype float32, got float64"):
        F.mse_loss(outputs, np.zeros((4, 1)))


def test_loss_modules_are_the_functions_with_their_settings():
    logits = tinynet.tensor(LOGITS.astype(np.float32))
    criterion = nn.CrossEntropyLoss(ignore_index=2, reduction="sum")
    assert criterion(logits, MASKED).item() == F.cross_entropy(logits, MASKED, ignore_index=2, reduction="sum").item()
    assert repr(criterion) == "CrossEntropyLoss(ignore_index=2, reduction='sum')"
    assert not isinstance(nn.NLLLoss(), nn.CrossEntropyLoss)  # code that looks for one must not find the other
    log_probs = nn.LogSoftmax(dim=1)(logits)
    assert nn.NLLLoss()(log_probs, TARGETS).item() == pytest.approx(nn.CrossEntropyLoss()(logits, TARGETS).item())
    assert nn.MSELoss(reduction="none")(logits, logits).shape == (6, 4)
    with pytest.raises(ValueError, match="reduction must be one of"):
        nn.MSELoss(reduction="elementwise_mean")
    with pytest.raises(TypeError):
        nn.CrossEntropyLoss(None)  # torch's positional class weight


# -- PyTorch parity ------------------------------------------------------------------------


def _torch_case(name, reduction):
    torch = pytest.importorskip("torch", reason="PyTorch parity tests need torch")
    functions = {"cross_entropy": torch.nn.functional.cross_entropy, "nll_loss": torch.nn.functional.nll_loss}
    if name == "mse_loss":
        return lambda x, y: torch.nn.functional.mse_loss(x, y, reduction=reduction), [OUTPUTS, WANTED]
    function, ignore = functions[name.split()[0]], 2 if "ignore" in name else -100
    inputs = CASES[name][1]
    return lambda x, t: function(x, t, ignore_index=ignore, reduction=reduction), inputs


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("name", list(CASES))
def test_forward_and_gradients_match_torch(name, reduction, layer_path):
    torch = pytest.importorskip("torch", reason="PyTorch parity tests need torch")
    theirs_fn, inputs = _torch_case(name, reduction)
    ours_inputs = [tinynet.tensor(x.astype(np.float32) if x.dtype.kind == "f" else x,
                                  requires_grad=x.dtype.kind == "f") for x in inputs]
    theirs_inputs = [torch.tensor(x.astype(np.float32) if x.dtype.kind == "f" else x,
                                  requires_grad=x.dtype.kind == "f") for x in inputs]
    ours, theirs = CASES[name][0](reduction)(*ours_inputs), theirs_fn(*theirs_inputs)
    np.testing.assert_allclose(ours.data, theirs.detach().numpy(), rtol=RTOL, atol=ATOL, err_msg=f"{name} loss")
    assert ours.dtype == np.float32
    weights = np.random.default_rng(0).standard_normal(ours.shape).astype(np.float32)
    ours.backward(weights)
    theirs.backward(torch.from_numpy(weights))
    for index, (a, b) in enumerate(zip(ours_inputs, theirs_inputs)):
        if b.requires_grad:
            np.testing.assert_allclose(a.grad, b.grad.numpy(), rtol=RTOL, atol=ATOL, err_msg=f"{name} grad {index}")
