"""Shapes and indexing as in PyTorch: gradient checks, parity with torch, and the errors
that code written from memory for torch must meet instead of a silently wrong result."""

import numpy as np
import pytest

import tinynet
from tinynet import backend, nn
from tinynet.gradcheck import check_direction, check_elementwise

TOLERANCE = 1e-6
_rng = np.random.default_rng(2)


def normal(*shape):
    return _rng.standard_normal(shape)


REPEATED = np.array([2, 0, 2, 2])  # row 2 read three times: its gradient must add up
MASK = _rng.standard_normal((3, 4)) > 0
ROWS = np.array([True, False, True])
LABELS = np.array([3, 0, 3, 1, 2])  # logp[range(N), y]: one column per row, a column used twice

# Each case is written once for both libraries: fn(lib, *inputs), lib being tinynet or torch,
# and `index(lib, array)` the library's own tensor of an index array.
CASES = {
    "view": (lambda lib, a: a.view(4, 6), [(2, 3, 4)]),
    "reshape (-1, tuple)": (lambda lib, a: a.reshape((-1, 3)), [(2, 3, 4)]),
    "permute": (lambda lib, a: a.permute(2, 0, 1), [(2, 3, 4)]),
    "permute (negative dims)": (lambda lib, a: a.permute(-1, -3, -2), [(2, 3, 4)]),
    "transpose": (lambda lib, a: a.transpose(0, 2), [(2, 3, 4)]),
    "transpose (negative dims)": (lambda lib, a: lib.transpose(a, -1, 1), [(2, 3, 4)]),
    "T": (lambda lib, a: a.T, [(3, 4)]),
    "t": (lambda lib, a: a.t() @ lib.t(a).t(), [(3, 4)]),
    "unsqueeze": (lambda lib, a: a.unsqueeze(1).unsqueeze(-1), [(3, 4)]),
    "squeeze (all)": (lambda lib, a: a.squeeze(), [(1, 3, 1, 4)]),
    "squeeze (tuple, a non-1 dim stays)": (lambda lib, a: a.squeeze((0, 1, -2)), [(1, 3, 1, 4)]),
    "flatten (all, the default)": (lambda lib, a: a.flatten(), [(2, 3, 4)]),
    "flatten (start_dim 1)": (lambda lib, a: lib.flatten(a, 1), [(2, 3, 4, 2)]),
    "flatten (middle dims)": (lambda lib, a: a.flatten(1, -2), [(2, 3, 4, 2)]),
    "expand": (lambda lib, a: a.expand(2, -1, 4), [(3, 1)]),
    "repeat": (lambda lib, a: a.repeat(2, 1, 3), [(3, 2)]),
    "clone": (lambda lib, a: a.clone() * a, [(3, 4)]),
    "cat (three inputs)": (lambda lib, a, b, c: lib.cat([a, b, c], dim=-1), [(2, 3), (2, 1), (2, 4)]),
    "stack (three inputs)": (lambda lib, a, b, c: lib.stack((a, b, c), dim=1), [(2, 3), (2, 3), (2, 3)]),
    "where (broadcast)": (lambda lib, a, b: lib.where(index(lib, MASK), a, b), [(3, 4), (4,)]),
    "where (a number)": (lambda lib, a: lib.where(index(lib, MASK), 0.5, a), [(3, 4)]),
    "masked_fill": (lambda lib, a: a.masked_fill(index(lib, MASK), -1.5), [(3, 4)]),
    "masked_fill (a mask of rows)": (lambda lib, a: a.masked_fill(index(lib, ROWS[:, None]), 0.0) * a, [(3, 4)]),
    "index (repeated, int tensor)": (lambda lib, a: a[index(lib, REPEATED)], [(3, 4)]),
    "index (list on dim 1)": (lambda lib, a: a[:, [3, 0, 3]], [(2, 4, 3)]),
    "index (NumPy array, negative)": (lambda lib, a: a[1, np.array([-1, 0, -1])], [(2, 4)]),
    "index (range and labels)": (lambda lib, a: a[range(5), index(lib, LABELS)], [(5, 4)]),
    "index (two int arrays, 2-D)": (lambda lib, a: a[index(lib, [[0, 2], [2, 2]]), index(lib, [[1, 1], [0, 3]])],
                                    [(3, 4)]),
    "index (mask)": (lambda lib, a: a[index(lib, MASK)], [(3, 4)]),
    "index (mask of rows, slice)": (lambda lib, a: a[index(lib, ROWS), 1:], [(3, 4)]),
    "index (ellipsis, array)": (lambda lib, a: a[..., index(lib, [1, 1])], [(2, 3, 2)]),
    "index (basic)": (lambda lib, a: a[1:, None, ::2, -1], [(3, 5, 4)]),
}


def index(lib, array):
    return lib.tensor(np.asarray(array))


@pytest.mark.parametrize("name", list(CASES))
def test_gradient_matches_central_differences(name, device):
    fn, shapes = CASES[name]
    inputs = [backend.to_device(normal(*shape), device) for shape in shapes]
    assert check_elementwise(lambda *a: fn(tinynet, *a), inputs) < TOLERANCE
    assert check_direction(lambda *a: fn(tinynet, *a), inputs) < TOLERANCE


@pytest.mark.parametrize("name", list(CASES))
def test_forward_and_gradients_equal_pytorch(name):
    torch = pytest.importorskip("torch")
    fn, shapes = CASES[name]
    arrays = [normal(*shape).astype(np.float32) for shape in shapes]
    ours = [tinynet.tensor(a, requires_grad=True) for a in arrays]
    theirs = [torch.tensor(a, requires_grad=True) for a in arrays]
    out_ours, out_theirs = fn(tinynet, *ours), fn(torch, *theirs)
    assert out_ours.dtype == np.float32
    np.testing.assert_allclose(out_ours.numpy(), out_theirs.detach().numpy(), rtol=1e-4, atol=1e-5)
    upstream = normal(*out_ours.shape).astype(np.float32)
    out_ours.backward(upstream)
    out_theirs.backward(torch.from_numpy(upstream))
    for i, (a, b) in enumerate(zip(ours, theirs)):
        assert a.grad.dtype == np.float32
        np.testing.assert_allclose(a.grad, b.grad.numpy(), rtol=1e-4, atol=1e-5, err_msg=f"input {i}")


# -- what each does --------------------------------------------------------------------


def test_repeated_indices_add_up_their_gradients(device):
    x = tinynet.tensor(backend.to_device(np.zeros(4, dtype=np.float32), device), requires_grad=True)
    x[[1, 1, 1, 3]].sum().backward()
    np.testing.assert_array_equal(backend.to_numpy(x.grad), [0.0, 3.0, 0.0, 1.0])


def test_cross_entropy_by_hand_picks_each_rows_label():
    logp = tinynet.tensor(np.log(np.full((3, 4), 0.25, dtype=np.float32)), requires_grad=True)
    y = tinynet.tensor([2, 0, 2])
    loss = -logp[range(3), y].mean()
    loss.backward()
    assert loss.item() == pytest.approx(np.log(4))
    expected = np.zeros((3, 4), dtype=np.float32)
    expected[[0, 1, 2], [2, 0, 2]] = -1 / 3
    np.testing.assert_allclose(logp.grad, expected)


def test_index_tensors_index_as_their_arrays_do():
    x = tinynet.tensor(np.arange(12.0).reshape(3, 4))
    np.testing.assert_array_equal(x[tinynet.tensor(2)].numpy(), [8, 9, 10, 11])  # a 0-d tensor: as an int
    np.testing.assert_array_equal(x[tinynet.tensor([[0, 2], [1, 1]])].numpy(), x.numpy()[[[0, 2], [1, 1]]])
    assert x[tinynet.tensor(np.array([], dtype=np.int64))].shape == (0, 4)
    assert x[[]].shape == (0, 4)


def test_a_comparison_selects_as_a_mask():
    x = tinynet.tensor([[-1.0, 2.0], [3.0, -4.0]], requires_grad=True)
    x[x > 0].sum().backward()
    np.testing.assert_array_equal(x.grad, [[0.0, 1.0], [1.0, 0.0]])
    np.testing.assert_array_equal(tinynet.where(x < 0, 0.0, x).numpy(), [[0.0, 2.0], [3.0, 0.0]])


def test_basic_indexing_reads_a_view_without_copying():
    x = tinynet.tensor(np.arange(12.0, dtype=np.float32).reshape(3, 4))
    assert np.shares_memory(x[1:, ::2].data, x.data)
    assert np.shares_memory(x.expand(5, 3, 4).data, x.data)


def test_flatten_merges_every_dim_by_default_but_nn_flatten_keeps_the_batch():
    x = tinynet.tensor(np.zeros((2, 3, 4, 5), dtype=np.float32))
    assert x.flatten().shape == (120,)
    assert tinynet.flatten(x, 2).shape == (2, 3, 20)
    assert nn.Flatten()(x).shape == (2, 60)
    assert tinynet.tensor(3.0).flatten().shape == (1,)


def test_squeeze_and_unsqueeze_count_dims_from_either_end():
    x = tinynet.tensor(np.zeros((1, 3, 1, 4), dtype=np.float32))
    assert x.squeeze(1).shape == (1, 3, 1, 4)  # dim 1 has size 3: a no-op, as in torch
    assert x.squeeze(-2).shape == (1, 3, 4)
    assert x.squeeze([0, 2]).shape == (3, 4)
    assert x.unsqueeze(-1).shape == (1, 3, 1, 4, 1) and x.unsqueeze(0).shape == (1, 1, 3, 1, 4)


def test_transpose_swaps_two_dims_and_T_reverses_them():
    x = tinynet.tensor(np.arange(24.0, dtype=np.float32).reshape(2, 3, 4))
    assert x.transpose(0, 2).shape == (4, 3, 2)
    np.testing.assert_array_equal(x.transpose(-1, -2).numpy(), x.numpy().swapaxes(1, 2))
    assert x.T.shape == (4, 3, 2)
    assert x[0].t().shape == (4, 3) and x[0, 0].t().shape == (4,)
    assert x.permute((1, 2, 0)).shape == (3, 4, 2)


def test_where_keeps_float32_with_python_numbers():
    x = tinynet.tensor(np.ones((2, 2), dtype=np.float32), requires_grad=True)
    condition = np.array([[True, False], [False, True]])
    out = tinynet.where(condition, x, 0.0)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out.numpy(), condition.astype(np.float32))
    assert x.where(tinynet.tensor(condition), 2).dtype == np.float32
    out.sum().backward()
    np.testing.assert_array_equal(x.grad, condition.astype(np.float32))


def test_cat_and_stack_join_along_the_dim_asked_for():
    a, b = tinynet.tensor(np.zeros((2, 3), dtype=np.float32)), tinynet.tensor(np.ones((2, 3), dtype=np.float32))
    assert tinynet.cat([a, b]).shape == (4, 3) and tinynet.cat([a, b], 1).shape == (2, 6)
    assert tinynet.stack([a, b]).shape == (2, 2, 3) and tinynet.stack([a, b], dim=-1).shape == (2, 3, 2)
    np.testing.assert_array_equal(tinynet.stack([a, b], dim=-1).numpy()[..., 1], b.numpy())


def test_clone_is_a_copy_in_the_graph():
    x = tinynet.tensor([1.0, 2.0], requires_grad=True)
    y = x.clone()
    assert not np.shares_memory(y.data, x.data) and y.creator is not None
    (y * 3.0).sum().backward()
    np.testing.assert_array_equal(x.grad, [3.0, 3.0])


# -- errors that name what was wrong -------------------------------------------------------

X = tinynet.tensor(np.zeros((2, 3, 4), dtype=np.float32))

BAD_CALLS = {
    "transpose, dim 3 of 3": (lambda: X.transpose(0, 3), IndexError, r"dim 3 .* 3 dimensions \(expected -3 to 2\)"),
    "transpose, NumPy's permutation": (lambda: X.transpose(2, 0, 1), TypeError, r"two dims .* permute"),
    "t, three dims": (lambda: X.t(), ValueError, r"at most 2 dimensions, got shape \(2, 3, 4\)"),
    "permute, a dim twice": (lambda: X.permute(0, 0, 1), ValueError, r"\(0, 0, 1\) are not an ordering of the 3"),
    "permute, dim -4": (lambda: X.permute(-4, 0, 1), IndexError, r"dim -4 .* 3 dimensions"),
    "unsqueeze, dim 4": (lambda: X.unsqueeze(4), IndexError, r"dim 4 .* \(expected -4 to 3\)"),
    "squeeze, dim 3": (lambda: X.squeeze((0, 3)), IndexError, r"squeeze: dim 3 .* 3 dimensions"),
    "flatten, start after end": (lambda: X.flatten(2, 0), ValueError, r"start_dim 2 comes after end_dim 0"),
    "flatten, a float dim": (lambda: X.flatten(1.0), TypeError, r"dim must be an int, got 1.0"),
    "expand, a size that is not 1": (lambda: X.expand(2, 5, 4), ValueError, r"dim 1 has size 3, .* not 5"),
    "expand, too few sizes": (lambda: X.expand(3, 4), ValueError, r"at least one size per dim"),
    "repeat, too few counts": (lambda: X.repeat(2, 2), ValueError, r"one non-negative count per dim"),
    "cat, nothing": (lambda: tinynet.cat([]), ValueError, r"at least one tensor"),
    "cat, dims differ": (lambda: tinynet.cat([X, X[0]]), ValueError, r"same number of dims"),
    "cat, dim 3": (lambda: tinynet.cat([X, X], dim=3), IndexError, r"cat: dim 3"),
    "stack, shapes differ": (lambda: tinynet.stack([X, X[:, :2]]), ValueError, r"one shape, got .*\(2, 2, 4\)"),
    "where, a float condition": (lambda: tinynet.where(X, X, 0.0), TypeError, r"condition must be a bool .* float32"),
    "masked_fill, a float mask": (lambda: X.masked_fill(X, 0.0), TypeError, r"condition must be a bool .* float32"),
    "masked_fill, a mask larger than the input": (lambda: X[0].masked_fill(X > 0, 0.0), RuntimeError,
                                                  r"would grow the input of shape \(3, 4\) to \(2, 3, 4\)"),
    "index, out of range": (lambda: X[:, [0, 3]], IndexError, r"index 3 is out of range for dim 1 of size 3"),
    "index, negative out of range": (lambda: X[..., tinynet.tensor([-5])], IndexError, r"-5 .* dim 2 of size 4"),
    "index, float array": (lambda: X[np.array([0.0, 1.0])], IndexError, r"integers or booleans, got dtype float64"),
    "index, a float": (lambda: X[1.5], TypeError, r"cannot index a tensor with float 1.5"),
    "index, a list of tensors": (lambda: X[[tinynet.tensor(0), tinynet.tensor(1)]], TypeError, r"list of tensors"),
}


@pytest.mark.parametrize("name", list(BAD_CALLS))
def test_a_bad_call_raises_a_clear_error(name):
    call, error, message = BAD_CALLS[name]
    with pytest.raises(error, match=message):
        call()


def test_an_out_of_range_index_raises_on_every_device(device):
    """CuPy would wrap the index around: the check must catch it before."""
    x = tinynet.tensor(backend.to_device(np.zeros((2, 3), dtype=np.float32), device))
    with pytest.raises(IndexError, match="index 2 is out of range for dim 0 of size 2"):
        x[tinynet.tensor([0, 2]), 1]
    with pytest.raises(IndexError, match="index -4 is out of range for dim 1 of size 3"):
        x[:, [-4]]
