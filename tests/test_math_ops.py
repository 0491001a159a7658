"""Math, comparisons and reductions of the PyTorch surface: float64 gradient checks of every
new Function, the same code run on tinynet and on PyTorch (forward, gradient, dtype), and
the keywords, dtypes and errors a student writing PyTorch from memory meets."""

import warnings

import numpy as np
import pytest

import tinynet
from tinynet import Tensor, backend
from tinynet.gradcheck import check_direction, check_elementwise

TOLERANCE = 1e-6
_rng = np.random.default_rng(7)


def normal(*shape):
    return _rng.standard_normal(shape)


def positive(*shape):
    return _rng.uniform(0.5, 2.0, shape)


def separated(*shape):
    """Distinct values at least 0.1 apart, so no max is within eps of a tie."""
    return _rng.permutation(np.prod(shape)).reshape(shape) * 0.1 - 0.5


GRADIENT_CASES = {
    "sqrt": (lambda a: a.sqrt(), [positive(3, 4)]),
    "abs": (lambda a: tinynet.abs(a), [normal(3, 4)]),
    "tanh": (lambda a: a.tanh(), [normal(3, 4)]),
    "sigmoid": (lambda a: tinynet.sigmoid(a * 4), [normal(3, 4)]),
    "clamp (both bounds)": (lambda a: a.clamp(-0.5, 0.5), [normal(4, 5)]),
    "clamp (min only)": (lambda a: tinynet.clamp(a, min=0.2), [normal(4, 5)]),
    "clip (max only)": (lambda a: a.clip(max=-0.1), [normal(4, 5)]),
    "maximum (broadcast)": (lambda a, b: tinynet.maximum(a, b), [normal(3, 4), normal(4)]),
    "minimum (broadcast)": (lambda a, b: a.minimum(b), [normal(3, 1), normal(3, 4)]),
    "max of two tensors": (lambda a, b: tinynet.max(a, b), [normal(3, 4), normal(3, 4)]),
    "pow (tensor exponent)": (lambda a, b: a**b, [positive(3, 4), normal(3, 4)]),
    "pow (tensor base and exponent, broadcast)": (lambda a, b: tinynet.pow(a, b), [positive(3, 4), normal(4)]),
    "rpow (number base)": (lambda a: 2**a + 0.5**a, [normal(3, 4)]),
    "remainder": (lambda a, b: a % b, [normal(3, 4) * 3, positive(4)]),
    "remainder (number divisor)": (lambda a: a % 0.7, [normal(3, 4) * 3]),
    "sum (dim tuple, negative)": (lambda a: a.sum(dim=(0, -1)), [normal(2, 3, 4)]),
    "sum (keepdim)": (lambda a: tinynet.sum(a, 1, keepdim=True), [normal(2, 3, 4)]),
    "mean (dim tuple, keepdim)": (lambda a: a.mean(dim=(1, 2), keepdim=True), [normal(2, 3, 4)]),
    "var (unbiased)": (lambda a: a.var(dim=1), [normal(3, 5)]),
    "var (correction=0, all)": (lambda a: a.var(correction=0), [normal(3, 5)]),
    "std (unbiased, dims)": (lambda a: a.std(dim=(0, 2)), [normal(3, 4, 2)]),
    "std (biased, keepdim)": (lambda a: tinynet.std(a, 1, unbiased=False, keepdim=True), [normal(3, 5)]),
    "norm (all)": (lambda a: a.norm(), [normal(3, 4)]),
    "norm (dim)": (lambda a: tinynet.norm(a, dim=1, keepdim=True), [normal(3, 4)]),
    "norm (p=1)": (lambda a: a.norm(p=1, dim=0), [normal(3, 4)]),
    "max (dim, values)": (lambda a: a.max(1).values, [separated(3, 5, 2)]),
    "max (dim, keepdim)": (lambda a: a.max(dim=-1, keepdim=True).values, [separated(3, 5)]),
    "min (dim, values)": (lambda a: tinynet.min(a, dim=0).values, [separated(4, 3)]),
    "min (all)": (lambda a: a.min(), [separated(3, 4)]),
    "amax (dim tuple)": (lambda a: a.amax(dim=(0, 2)), [separated(3, 4, 2)]),
    "amin (keepdim)": (lambda a: tinynet.amin(a, 1, keepdim=True), [separated(3, 4)]),
}


@pytest.mark.parametrize("name", list(GRADIENT_CASES))
def test_gradient_matches_central_differences(name, device):
    fn, inputs = GRADIENT_CASES[name]
    inputs = [backend.to_device(x, device) for x in inputs]
    assert check_elementwise(fn, inputs) < TOLERANCE
    assert check_direction(fn, inputs) < TOLERANCE


# -- the same code on tinynet and on PyTorch ----------------------------------------------

PARITY_CASES = {
    # each case: fn(lib, *tensors) written once, run with lib = tinynet and lib = torch
    "exp log": (lambda lib, a: lib.exp(a).log() + a.exp(), [normal(3, 4)]),
    "sqrt (0 gives an infinite gradient)": (lambda lib, a: lib.sqrt(a), [[0.0, 0.25, 4.0]]),
    "abs (abs'(0) = 0)": (lambda lib, a: lib.abs(a) + abs(a), [[0.0, -1.5, 2.0]]),
    "tanh (saturated)": (lambda lib, a: a.tanh(), [[-1000.0, -1.0, 0.0, 2.0, 1000.0]]),
    "sigmoid (saturated)": (lambda lib, a: lib.sigmoid(a), [[-1000.0, -30.0, 0.0, 3.0, 1000.0]]),
    "relu (relu'(0) = 0)": (lambda lib, a: lib.relu(a), [[-1.0, 0.0, 2.0]]),
    "clamp (bounds included)": (lambda lib, a: a.clamp(-0.5, 0.5), [[-1.0, -0.5, 0.0, 0.5, 1.0]]),
    "clamp (min > max)": (lambda lib, a: lib.clamp(a, min=1.0, max=0.0), [[-1.0, 0.5, 2.0]]),
    "clip (min only)": (lambda lib, a: lib.clip(a, min=0.0), [[-1.0, 0.0, 2.0]]),
    "pow (number exponents)": (lambda lib, a: a**2 + a**0 + a.pow(3), [[0.0, -1.5, 2.0]]),
    "pow (tensor exponent, zero base)": (lambda lib, a, b: a**b, [[0.0, 0.0, 2.0, 3.0], [0.0, 2.0, 0.5, -1.5]]),
    "pow (x ** x at 0)": (lambda lib, a: lib.pow(a, a), [[0.0, 0.5, 2.0]]),
    "rpow": (lambda lib, a: 2**a + 0.0**a, [[0.0, 1.0, -2.0]]),
    "remainder (sign of the divisor)": (lambda lib, a, b: a % b, [[5.0, -5.0, 2.5, -7.5], [3.0, 3.0, -2.0, 2.0]]),
    "maximum (ties share)": (lambda lib, a, b: lib.maximum(a, b), [[0.0, 2.0, 3.0], [0.0, 1.0, 5.0]]),
    "minimum (ties share)": (lambda lib, a, b: lib.minimum(a, b), [[0.0, 2.0, 3.0], [0.0, 1.0, 5.0]]),
    "max of two tensors": (lambda lib, a, b: lib.max(a, b), [[0.0, 2.0, 3.0], [0.0, 1.0, 5.0]]),
    "sum / mean": (lambda lib, a: a.sum(dim=(0, 2)) + lib.mean(a, -1).sum(0), [normal(2, 3, 4)]),
    "sum keepdim": (lambda lib, a: a.sum(1, keepdim=True) * a.mean(dim=1, keepdim=True), [normal(2, 3, 4)]),
    "max (all, ties share)": (lambda lib, a: a.max() + lib.min(a), [[1.0, 3.0, 3.0, 1.0]]),
    "max (a NaN wins)": (lambda lib, a: a.max(), [[[1.0, np.nan], [2.0, 0.0]]]),
    "max (dim, first of ties)": (lambda lib, a: a.max(dim=1).values, [[[1.0, 3.0, 3.0], [2.0, 2.0, 0.0]]]),
    "min (dim, keepdim)": (lambda lib, a: a.min(0, True).values, [[[1.0, 3.0, 3.0], [1.0, 2.0, 0.0]]]),
    "amax (dim tuple, ties share)": (lambda lib, a: a.amax(dim=(0, 1)), [[[1.0, 3.0], [3.0, 0.0]]]),
    "var (unbiased default)": (lambda lib, a: a.var(dim=1), [normal(3, 5)]),
    "var (correction=0)": (lambda lib, a: lib.var(a, correction=0), [normal(3, 5)]),
    "std (all, default)": (lambda lib, a: a.std(), [normal(3, 5)]),
    "std (unbiased=False, keepdim)": (lambda lib, a: a.std(0, unbiased=False, keepdim=True), [normal(3, 5)]),
    "std (constant rows have gradient 0)": (lambda lib, a: a.std(dim=1), [[[2.0, 2.0, 2.0], [1.0, 3.0, 2.0]]]),
    "norm (default, p=2)": (lambda lib, a: a.norm() + lib.norm(a, p=2), [normal(3, 4)]),
    "norm (dim, zero row)": (lambda lib, a: a.norm(dim=1), [[[0.0, 0.0], [3.0, 4.0]]]),
    "norm (fro, p=1)": (lambda lib, a: a.norm(p="fro") + a.norm(p=1, dim=0).sum(), [[[0.0, 2.0], [-1.0, 3.0]]]),
}


def run(lib, fn, inputs):
    """fn on float32 copies of the inputs, back-propagated with a fixed upstream gradient."""
    tensors = [lib.tensor(np.asarray(x, dtype=np.float32), requires_grad=True) for x in inputs]
    out = fn(lib, *tensors)
    shape = tuple(out.shape)
    upstream = np.linspace(0.5, 1.5, int(np.prod(shape)), dtype=np.float32).reshape(shape)
    out.backward(upstream if lib is tinynet else lib.tensor(upstream))
    return _numpy(out), [_numpy(t.grad) for t in tensors]


def _numpy(value):
    if isinstance(value, Tensor):
        return value.numpy()
    if hasattr(value, "detach"):
        return value.detach().numpy()
    return backend.to_numpy(value)


@pytest.mark.parametrize("name", list(PARITY_CASES))
def test_forward_and_gradient_agree_with_pytorch(name):
    torch = pytest.importorskip("torch")
    fn, inputs = PARITY_CASES[name]
    with warnings.catch_warnings():
        # sqrt'(0) is inf in both; NumPy says so with a warning, which is fine here
        warnings.filterwarnings("ignore", "divide by zero", RuntimeWarning)
        ours, our_grads = run(tinynet, fn, inputs)
    theirs, their_grads = run(torch, fn, inputs)
    for label, a, b in [("forward", ours, theirs)] + [(f"grad {i}", g, h) for i, (g, h) in
                                                      enumerate(zip(our_grads, their_grads))]:
        assert a.shape == b.shape and a.dtype == b.dtype == np.float32, f"{name} {label}"
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5, err_msg=f"{name} {label}")


DTYPE_CASES = [
    "lib.tensor([1.0, 2.0]) * np.float64(2)", "np.float64(2) * lib.tensor([1.0, 2.0])",
    "lib.tensor([1.0, 2.0]) / 3", "2.5 - lib.tensor([1.0, 2.0])", "lib.tensor([1, 2]) * 0.5",
    "lib.tensor([1, 2]) + 1", "1 - lib.tensor([1, 2])", "lib.tensor([1, 2]) / 2",
    "lib.tensor([1, 2]) / lib.tensor([2, 2])", "lib.tensor([1, 2]) + lib.tensor([1.5, 2.0])",
    "lib.tensor([True, False]) + lib.tensor([True, True])", "lib.tensor([True, False]) * 2",
    "lib.tensor([True]) * 0.5", "lib.tensor([True]) + True", "lib.tensor([1.0, 2.0]) * True",
    "2 ** lib.tensor([1, 2])", "2.0 ** lib.tensor([1, 2])", "2 ** lib.tensor([1.0, 2.0])",
    "lib.tensor([1, 2]) ** 0.5", "lib.tensor([1, 2]) ** 2", "lib.tensor([1, 2]) // 2",
    "lib.tensor([1.0, -2.0]) // 2", "lib.tensor([5, -5]) % 3", "lib.tensor([5.0, -5.0]) % 3",
    "lib.tensor([1.0, 2.0]) * lib.tensor(np.float64(2))",
    "lib.tensor([1, 2]) + lib.tensor(np.float64(2.5))",
    "lib.tensor([1, 2]).exp()", "lib.sqrt(lib.tensor([1, 4]))", "lib.sigmoid(lib.tensor([0]))",
    "lib.tensor([1, -2]).abs()", "lib.tensor([1, 2]).clamp(0, 1)", "lib.tensor([1, 2]).clamp(0.5, 1)",
    "lib.tensor([1, 2]).sum()", "lib.tensor([True, False]).sum()", "lib.tensor([1, 2]).max()",
    "lib.tensor([1.0, 2.0]).argmax()", "lib.tensor([[1, 5], [7, 2]]).argmin(dim=1, keepdim=True)",
    "lib.tensor([1.0, 2.0]) == 1", "lib.tensor([1, 2]) == lib.tensor([1.0, 2.0])",
    "lib.tensor([1.0, 2.0]) < np.float32(1.5)", "~lib.tensor([True, False])", "~lib.tensor([1, 2])",
    "lib.tensor([1, 2]) & 3", "lib.tensor([True, False]) | False", "lib.tensor([True]) ^ lib.tensor([True])",
    "lib.tensor([[1.0, 0.0]]).all(dim=1)", "lib.tensor([[1.0, 0.0]]).any()",
    "lib.isclose(lib.tensor([1.0, 2.0]), lib.tensor([1.0, 2.1]))",
]


@pytest.mark.parametrize("expression", DTYPE_CASES)
def test_dtype_and_values_agree_with_pytorch(expression):
    """PyTorch's promotion: numbers never promote float32, int tensors with floats give float32."""
    torch = pytest.importorskip("torch")
    ours, theirs = eval(expression, {"lib": tinynet, "np": np}), eval(expression, {"lib": torch, "np": np})
    assert str(ours.dtype) == str(theirs.dtype).replace("torch.", ""), expression
    assert not ours.requires_grad
    np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-6, err_msg=expression)


# -- comparisons: bool tensors outside the graph ----------------------------------------


@pytest.mark.parametrize("other", [1.0, np.float64(1.0), np.array([1.0, 0.5, 3.0]), [1.0, 0.5, 3.0],
                                   tinynet.tensor([1.0, 0.5, 3.0])], ids=lambda value: type(value).__name__)
def test_comparisons_take_any_operand_on_either_side(other):
    x = tinynet.tensor([0.5, 1.0, 2.0], requires_grad=True)
    expected_other = np.broadcast_to(np.asarray(other.numpy() if isinstance(other, Tensor) else other), (3,))
    for result, expected in [
        (x == other, x.data == expected_other), (x != other, x.data != expected_other),
        (x < other, x.data < expected_other), (x <= other, x.data <= expected_other),
        (x > other, x.data > expected_other), (x >= other, x.data >= expected_other),
        (other < x, expected_other < x.data), (other == x, expected_other == x.data),
    ]:
        assert isinstance(result, Tensor) and result.dtype == np.bool_
        assert not result.requires_grad and result.creator is None
        np.testing.assert_array_equal(result.numpy(), expected)


@pytest.mark.parametrize("a, b", [([1.0, 2.0], [1.0, 2.0]), ([1.0, 2.0], [1.0, 2.5]), ([1.0, 2.0], [[1.0, 2.0]]),
                                  ([1, 2], [1.0, 2.0]), ([], [])])
def test_equal_is_one_python_bool_for_shape_and_values_as_torch(a, b):
    torch = pytest.importorskip("torch")
    ours = tinynet.equal(tinynet.tensor(a), tinynet.tensor(b))
    assert type(ours) is bool and ours == torch.equal(torch.tensor(a), torch.tensor(b))
    assert tinynet.tensor(a).equal(tinynet.tensor(b)) == ours


def test_accuracy_from_a_comparison():
    pred, y = tinynet.tensor([1, 2, 3, 4]), tinynet.tensor([1, 0, 3, 0])
    correct = pred == y
    assert correct.sum().item() == 2
    assert (correct.sum() / len(y)).item() == 0.5
    np.testing.assert_array_equal((~correct).numpy(), [False, True, False, True])
    np.testing.assert_array_equal(((pred > 1) & (pred < 4)).numpy(), [False, True, True, False])
    np.testing.assert_array_equal(((pred < 2) | (pred > 3)).numpy(), [True, False, False, True])
    assert tinynet.eq(pred, y).sum().item() == 2 and pred.ne(y).sum().item() == 2
    assert pred.gt(2).sum().item() == 2 and tinynet.le(pred, 2).sum().item() == 2


def test_tensors_hash_by_identity_and_refuse_an_ambiguous_truth():
    a, b = tinynet.tensor([1.0, 2.0]), tinynet.tensor([1.0, 2.0])
    assert len({a, b}) == 2 and {a: 1, b: 2}[b] == 2
    assert a in [a] and (a == None) is False and (a != None) is True  # noqa: E711
    with pytest.raises(RuntimeError, match="ambiguous.*any"):
        bool(a == b)
    with pytest.raises(RuntimeError, match="ambiguous"):
        if a > 0:
            pass
    assert bool(tinynet.tensor([3.0]) > 2) and not tinynet.tensor(0.0)


def test_logic_on_floats_is_refused_clearly():
    x = tinynet.tensor([1.0, 2.0])
    with pytest.raises(TypeError, match="bool or integer.*float32"):
        x & (x > 1)
    with pytest.raises(TypeError, match="bool or integer"):
        _ = ~x


def test_floor_division_is_outside_the_graph_and_integer_division_by_zero_raises():
    x = tinynet.tensor([5.0, -5.0], requires_grad=True)
    out = x // 2
    assert not out.requires_grad
    np.testing.assert_array_equal(out.numpy(), [2.0, -3.0])
    np.testing.assert_array_equal((7 // tinynet.tensor([2, -2])).numpy(), [3, -4])
    with pytest.raises(ZeroDivisionError):
        tinynet.tensor([1, 2]) // 0
    with pytest.raises(ZeroDivisionError):
        tinynet.tensor([1, 2]) % tinynet.tensor([1, 0])


def test_isclose_and_allclose():
    a = tinynet.tensor([1.0, 2.0, float("nan")])
    np.testing.assert_array_equal(tinynet.isclose(a, a + 1e-7).numpy(), [True, True, False])
    assert a.isclose(a, equal_nan=True).all().item()
    assert tinynet.allclose(a[:2], [1.0, 2.0]) is True and not tinynet.allclose(a[:2], [1.0, 2.1])


# -- reductions: dims and their errors ----------------------------------------------------


def test_dim_and_axis_keepdim_and_keepdims_are_the_same_argument():
    x = tinynet.tensor(normal(2, 3, 4).astype(np.float32))
    expected = x.data.sum(axis=(0, 2), keepdims=True)
    for out in (x.sum(dim=(0, 2), keepdim=True), x.sum(axis=(0, -1), keepdims=True), x.sum((-3, 2), True),
                tinynet.sum(x, dim=[0, 2], keepdims=True)):
        np.testing.assert_allclose(out.numpy(), expected, rtol=1e-6)
    with pytest.raises(TypeError, match="dim=1 and axis=1.*only one"):
        x.mean(dim=1, axis=1)
    with pytest.raises(TypeError, match="keepdim= and keepdims="):
        x.sum(1, keepdim=True, keepdims=True)


@pytest.mark.parametrize("dim, error, message", [
    ((), ValueError, r"dim=\(\)\) is ambiguous"), (3, IndexError, "dim 3 is out of range.*3 dimensions"),
    ((0, -3), ValueError, "twice"), (1.0, TypeError, "must be an int"),
])
def test_bad_dims_are_refused_clearly(dim, error, message):
    with pytest.raises(error, match=message):
        tinynet.tensor(np.ones((2, 3, 4), np.float32)).sum(dim=dim)


def test_a_0_dim_tensor_has_no_dim_to_reduce_over():
    with pytest.raises(IndexError, match="0-dim tensor has no dim 0.*leave dim out"):
        tinynet.tensor(3.0).sum(0)
    assert tinynet.tensor(3.0).sum().item() == 3.0


def test_max_and_min_with_a_dim_return_values_and_indices():
    a = tinynet.tensor([[1.0, 5.0, 5.0], [7.0, 2.0, 7.0]], requires_grad=True)
    values, indices = a.max(1)
    np.testing.assert_array_equal(values.numpy(), [5.0, 7.0])
    np.testing.assert_array_equal(indices.numpy(), [1, 0])  # the first of equal maxima
    assert indices.dtype == np.int64 and not indices.requires_grad and values.requires_grad
    assert a.max(dim=0, keepdim=True).values.shape == (1, 3) and a.max(axis=0).indices.shape == (3,)
    smallest = tinynet.min(a, dim=-1)
    np.testing.assert_array_equal(smallest.indices.numpy(), [0, 1])
    whole = a.max()
    assert isinstance(whole, Tensor) and whole.item() == 7.0
    with pytest.raises(TypeError, match="one dim.*amax"):
        a.max(dim=(0, 1))


def test_argmax_and_argmin_give_int64_outside_the_graph():
    a = tinynet.tensor([[1.0, 5.0], [7.0, 2.0]], requires_grad=True)
    for out, expected in [(a.argmax(), 2), (a.argmax(dim=1), [1, 0]), (tinynet.argmin(a, 0), [0, 1]),
                          (a.argmax(axis=-1, keepdim=True), [[1], [0]]), (a.argmin(keepdim=True), [[0]])]:
        assert out.dtype == np.int64 and not out.requires_grad
        np.testing.assert_array_equal(out.numpy(), expected)


def test_reductions_that_need_floats_refuse_integers_as_pytorch_does():
    i = tinynet.tensor([1, 2, 3])
    for op in (i.mean, i.std, i.var, i.norm):
        with pytest.raises(TypeError, match="floating-point.*int64"):
            op()
    assert i.sum().item() == 6 and i.max().item() == 3


def test_std_and_var_keywords():
    x = tinynet.tensor([1.0, 2.0, 4.0])
    assert x.var().item() == pytest.approx(np.var([1, 2, 4], ddof=1))  # unbiased, unlike NumPy's default
    assert x.var(unbiased=False).item() == pytest.approx(np.var([1, 2, 4]))
    assert x.std(correction=0).item() == pytest.approx(np.std([1, 2, 4]))
    with pytest.raises(TypeError, match="unbiased= and correction="):
        x.std(unbiased=True, correction=1)
    with pytest.raises(TypeError, match="pass unbiased=False by name"):
        x.std(False)


def test_norm_refuses_an_unsupported_p():
    with pytest.raises(ValueError, match="p=3.*2, 'fro' or 1"):
        tinynet.tensor([1.0, 2.0]).norm(p=3)


def test_all_and_any_over_dims():
    m = tinynet.tensor([[True, False], [True, True]])
    np.testing.assert_array_equal(m.all(dim=1).numpy(), [False, True])
    np.testing.assert_array_equal(tinynet.any(m, 0, keepdim=True).numpy(), [[True, True]])
    assert m.any().item() and not m.all().item() and m.all().dtype == np.bool_


# -- math functions: names, dtypes, errors ------------------------------------------------


def test_math_functions_exist_at_the_top_level_and_as_methods():
    x = tinynet.tensor([0.5, 1.5])
    for name in ("exp", "log", "sqrt", "abs", "tanh", "sigmoid", "relu"):
        np.testing.assert_allclose(getattr(tinynet, name)(x).numpy(), getattr(x, name)().numpy())


def test_sigmoid_does_not_overflow_for_large_inputs():
    x = tinynet.tensor([-1000.0, -100.0, 100.0, 1000.0], requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = x.sigmoid()
        out.sum().backward()
    assert out.numpy()[0] == 0 and 0 < out.numpy()[1] < 1e-40 and (out.numpy()[2:] == 1).all()
    assert np.isfinite(x.grad).all()


def test_clamp_and_maximum_refuse_what_they_cannot_do():
    x = tinynet.tensor([1.0, 2.0])
    with pytest.raises(ValueError, match="min or max"):
        x.clamp()
    with pytest.raises(TypeError, match="numbers as min and max.*maximum"):
        x.clamp(min=tinynet.tensor([0.0, 3.0]))
    with pytest.raises(TypeError, match="two tensors.*clamp"):
        tinynet.maximum(x, 1.5)
