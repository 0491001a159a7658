"""In-place operations: they change the tensor itself, and refuse what would be silently wrong."""

import numpy as np
import pytest

import tinynet
from tinynet import nn


def weight():
    return tinynet.tensor([1.0, 2.0, 3.0], requires_grad=True)


def test_a_hand_written_update_keeps_the_weight_a_trainable_leaf():
    w = weight()
    (w * w).sum().backward()
    same = w
    with tinynet.no_grad():
        w -= 0.1 * w.grad  # w.grad is an array here; a tensor works too
    assert w is same and w.requires_grad and w.is_leaf and w.dtype == np.float32
    np.testing.assert_allclose(w.numpy(), [0.8, 1.6, 2.4], rtol=1e-6)
    w.grad = None
    (w * w).sum().backward()  # the next step's graph is recorded as before
    np.testing.assert_allclose(w.grad, [1.6, 3.2, 4.8], rtol=1e-6)


def test_a_scaled_layer_weight_stays_its_parameter():
    layer = nn.Linear(3, 2)
    parameter = layer.weight
    before = parameter.numpy().copy()
    with tinynet.no_grad():
        layer.weight *= 0.5
    assert layer.weight is parameter and any(p is parameter for p in layer.parameters())
    np.testing.assert_allclose(layer.weight.numpy(), before * 0.5)


@pytest.mark.parametrize("change", [
    lambda w: w.__isub__(1.0), lambda w: w.mul_(2), lambda w: w.zero_(), lambda w: w.fill_(1.0),
    lambda w: w.copy_(np.zeros(3)), lambda w: w.clamp_(0, 1), lambda w: w.__setitem__(0, 5.0),
], ids=["-=", "mul_", "zero_", "fill_", "copy_", "clamp_", "setitem"])
def test_a_leaf_that_requires_grad_changes_only_under_no_grad(change):
    w = weight()
    with pytest.raises(RuntimeError, match="leaf tensor that requires grad.*no_grad"):
        change(w)
    np.testing.assert_array_equal(w.numpy(), [1.0, 2.0, 3.0])  # refused before anything changed
    with tinynet.no_grad():
        change(w)
    assert w.requires_grad and w.is_leaf and w.numpy().tolist() != [1.0, 2.0, 3.0]


def test_a_tensor_computed_in_a_graph_cannot_change_in_place():
    h = weight() * 2
    for change in (lambda: h.add_(1), lambda: h.__setitem__(0, 0.0)):
        with pytest.raises(RuntimeError, match="computed inside a graph.*out-of-place"):
            change()
    with tinynet.no_grad(), pytest.raises(RuntimeError, match="computed inside a graph"):
        h.zero_()


def test_an_operand_that_requires_grad_is_refused_with_the_out_of_place_form():
    total = tinynet.tensor([0.0, 0.0, 0.0])
    with pytest.raises(RuntimeError, match="operand requires grad.*x = x \\+ y"):
        total += weight()


def test_a_change_after_use_stops_the_backward_that_would_read_it():
    x = tinynet.tensor([1.0, 2.0, 3.0])  # no gradient of its own, but Mul keeps it for w's
    w = weight()
    loss = (w * x).sum()
    x.mul_(10)
    with pytest.raises(RuntimeError, match="changed by an in-place operation after it was used"):
        loss.backward()
    loss = (w * x).sum()  # used after the change: fine
    loss.backward()
    np.testing.assert_array_equal(w.grad, [10.0, 20.0, 30.0])


def test_plain_tensors_change_in_place_with_pytorchs_results():
    x = tinynet.tensor([[1.0, -2.0, 3.0], [4.0, 5.0, -6.0]])
    x += 1
    x.sub_(np.float64(0.5))
    x *= tinynet.tensor([2.0, 1.0, 1.0])
    x /= 2
    x[x < 0] = 0
    x[0, 1] = tinynet.tensor(7.0)
    x[:, [0, 2]] += 1  # through __getitem__ then __setitem__, as Python does
    x.clamp_(max=4.0)
    assert x.dtype == np.float32
    np.testing.assert_array_equal(x.numpy(), [[2.5, 4.0, 2.75], [4.0, 2.75, 1.0]])


def test_a_float_result_cannot_go_into_an_int_tensor():
    counts = tinynet.tensor([1, 2, 3])
    counts += 2
    assert counts.dtype == np.int64 and counts.tolist() == [3, 4, 5]
    with pytest.raises(RuntimeError, match="dtype float32 cannot be stored in a tensor of dtype int64"):
        counts *= 0.5
    assert counts.tolist() == [3, 4, 5]


def test_in_place_operations_match_pytorch():
    torch = pytest.importorskip("torch")
    results = []
    for lib in (tinynet, torch):
        x = lib.tensor([[1.0, -2.0, 3.0], [4.0, 5.0, -6.0]])
        x.add_(1).mul_(2)
        x[x > 5] = 0
        x[1] = lib.tensor([9.0, 8.0, 7.0])
        x.clamp_(-1, 8)
        y = lib.tensor([0, 0, 0])
        y.copy_(lib.tensor([1.7, -2.2, 3.9]))  # copy_ casts, truncating towards zero
        z = lib.tensor([1.0, 2.0])
        z.fill_(3)
        counts = lib.tensor([[1, 2], [3, 4]])
        counts.masked_fill_(lib.tensor([True, False]), 0.7)  # a mask of columns, the value cast to int64
        filled = counts.masked_fill(lib.tensor([[False], [True]]), -1)
        results.append((x.tolist(), y.tolist(), z.tolist(), counts.tolist(), filled.tolist(), str(filled.dtype)[-5:]))
    assert results[0] == results[1]


def test_masked_fill_in_place_refuses_a_mask_that_is_not_bool_or_would_grow_the_tensor():
    x = tinynet.zeros(2, 3)
    with pytest.raises(TypeError, match="masked_fill_: the mask must be a bool tensor, got float32"):
        x.masked_fill_(tinynet.ones(2, 3), 1.0)
    with pytest.raises(RuntimeError, match=r"a mask of shape \(4, 2, 3\) would grow the tensor of shape \(2, 3\)"):
        x.masked_fill_(tinynet.ones(4, 2, 3) > 0, 1.0)
    with pytest.raises(RuntimeError, match="requires grad cannot change in place"):
        tinynet.ones(2, requires_grad=True).masked_fill_(tinynet.tensor([True, False]), 0.0)
    assert x.tolist() == [[0.0] * 3] * 2


def test_the_scaled_layer_weight_with_gradients_on_raises_pytorchs_error():
    layer = nn.Linear(3, 2)
    before = layer.weight.numpy().copy()
    with pytest.raises(RuntimeError, match="leaf tensor that requires grad.*tinynet.no_grad"):
        layer.weight *= 0.5
    np.testing.assert_array_equal(layer.weight.numpy(), before)
    torch = pytest.importorskip("torch")
    with pytest.raises(RuntimeError, match="leaf Variable that requires grad"):
        torch.nn.Linear(3, 2).weight.mul_(0.5)


def test_a_hand_written_update_on_every_device(device):
    w = tinynet.tensor([1.0, 2.0, 3.0], device=device, requires_grad=True)
    (w * w).sum().backward()
    same = w
    with tinynet.no_grad():
        w -= 0.5 * w.grad  # a raw NumPy or CuPy array
        w.add_(w.grad, alpha=-0.25)
    assert w is same and w.requires_grad and w.device == device
    np.testing.assert_allclose(w.numpy(), [-0.5, -1.0, -1.5])


def test_the_tensor_keeps_its_dtype_whatever_the_operand():
    x = tinynet.tensor([1.0, 2.0])
    x += np.array([0.1, 0.2], np.float64)  # a float64 array: stored as float32
    x.sub_(tinynet.tensor([1.0, 1.0], dtype=tinynet.float64), alpha=2)
    x *= np.float64(3)
    x.div_(tinynet.tensor(2))  # an int tensor divides as floats
    x **= 2
    assert x.dtype == np.float32
    np.testing.assert_allclose(x.numpy(), [((1.1 - 2) * 1.5) ** 2, ((2.2 - 2) * 1.5) ** 2], rtol=1e-5)
    counts = tinynet.tensor([7, 8, 9])
    counts //= 2
    counts %= 3
    assert counts.dtype == np.int64 and counts.tolist() == [0, 1, 1]
    for change in (lambda: counts.__iadd__(0.5), lambda: counts.div_(2)):
        with pytest.raises(RuntimeError, match="dtype float32 cannot be stored in a tensor of dtype int64"):
            change()


def test_masks_combine_in_place():
    mask = tinynet.tensor([True, True, False])
    same = mask
    mask &= tinynet.tensor([1.0, -1.0, 1.0]) > 0
    mask |= tinynet.tensor([False, False, True])
    mask ^= tinynet.tensor([True, False, False])
    assert mask is same and mask.tolist() == [False, False, True]


def test_what_is_no_number_is_refused_instead_of_rebinding_the_name():
    x = tinynet.tensor([1.0, 2.0])
    same = x
    with pytest.raises(TypeError, match="unsupported operand"):
        x += "1"
    assert x is same and x.tolist() == [1.0, 2.0]


def test_in_place_arithmetic_matches_pytorch():
    torch = pytest.importorskip("torch")
    results = []
    for lib in (tinynet, torch):
        x = lib.tensor([[1.0, -2.0, 3.0], [4.0, 5.0, -6.0]])
        x += lib.tensor([0.5, 0.25, 0.125])
        x.sub_(lib.tensor([1.0, 2.0, 3.0]), alpha=0.5)
        x.add_(2, alpha=3)
        x /= lib.tensor([[2.0], [4.0]])
        x.pow_(2)
        x %= 3
        x.div_(lib.tensor(2))
        results.append(x.tolist())
        with pytest.raises(RuntimeError):
            lib.tensor([1, 2]).add_(0.5)
    np.testing.assert_allclose(results[0], results[1], rtol=1e-6)
