"""The autograd engine: what the graph records, how gradients flow and add up, what is freed, dtypes, seeds."""

import gc
import weakref

import numpy as np
import pytest

import tinynet
import tinynet.functional as F
from tinynet import Function, Tensor, nn


def leaf(*values):
    return tinynet.tensor(np.array(values, dtype=np.float32), requires_grad=True)


# -- what the graph records -----------------------------------------------------


def test_graph_is_recorded_only_when_an_input_requires_grad():
    a, b = tinynet.tensor([1.0, 2.0]), tinynet.tensor([3.0, 4.0])
    plain = a * b
    assert plain.creator is None and not plain.requires_grad

    w = leaf(3.0, 4.0)
    tracked = a * w
    assert tracked.requires_grad and not tracked.is_leaf
    assert tracked.creator.inputs[1] is w
    assert tracked.creator.needs_input_grad == (False, True)


def test_no_grad_records_nothing_and_frees_saved_arrays_at_once():
    w = leaf(1.0, -2.0)
    with tinynet.no_grad():
        assert not tinynet.is_grad_enabled()
        out = w * w
        function = tinynet.ops.Mul()
        function(w, w)
    assert tinynet.is_grad_enabled()
    assert out.creator is None and not out.requires_grad
    assert function.saved_arrays == ()
    np.testing.assert_array_equal(out.data, [1.0, 4.0])


def test_no_grad_restores_the_previous_mode_after_an_exception():
    with pytest.raises(KeyError), tinynet.no_grad():
        raise KeyError("fails inside the block")
    assert tinynet.is_grad_enabled()


# -- how gradients flow -----------------------------------------------------------


def test_gradients_add_up_over_a_diamond():
    # y = x*x + x*3, both branches use x: dy/dx = 2x + 3
    x = leaf(1.0, -2.0, 0.5)
    shared = x * 1.0  # a non-leaf used twice: its Function must run once, with both contributions
    y = (shared * shared + shared * 3.0).sum()
    y.backward()
    np.testing.assert_allclose(x.grad, 2 * x.data + 3, rtol=1e-6)


def test_a_tensor_used_at_two_depths_waits_for_its_deeper_consumer():
    # y = sum(h + exp(h)) with h = 2x: h feeds the add directly and, one step deeper, through exp.
    # dy/dx = 2 (1 + exp(2x)); h's Function must not run before exp has sent its gradient.
    x = leaf(0.5, -1.0, 2.0)
    h = x * 2.0
    (h + h.exp()).sum().backward()
    np.testing.assert_allclose(x.grad, 2 * (1 + np.exp(2 * x.data)), rtol=1e-6)


def test_gradients_accumulate_on_a_leaf_across_backward_calls():
    x = leaf(1.0, 2.0)
    (x * 3.0).sum().backward()
    (x * x).sum().backward()
    np.testing.assert_allclose(x.grad, 3 + 2 * x.data)
    x.zero_grad()
    assert x.grad is None


def test_backward_on_a_leaf_itself_accumulates_the_given_gradient():
    x = leaf(1.0, 2.0)
    x.backward(np.array([1.0, 1.0], dtype=np.float32))
    x.backward(np.array([0.5, 2.0], dtype=np.float32))
    np.testing.assert_array_equal(x.grad, [1.5, 3.0])


def test_broadcasting_is_undone_in_the_gradient():
    a = tinynet.tensor(np.ones((3, 1, 4), dtype=np.float32), requires_grad=True)
    b = tinynet.tensor(np.ones((2, 4), dtype=np.float32), requires_grad=True)
    out = a * b
    assert out.shape == (3, 2, 4)
    out.sum().backward()
    assert a.grad.shape == (3, 1, 4) and b.grad.shape == (2, 4)
    np.testing.assert_array_equal(a.grad, np.full((3, 1, 4), 2.0))  # each a[i, 0, k] met 2 rows of b
    np.testing.assert_array_equal(b.grad, np.full((2, 4), 3.0))  # each b[j, k] met 3 blocks of a


def test_scalar_tensor_operand_gets_a_scalar_gradient():
    s = tinynet.tensor(2.0, requires_grad=True)
    x = tinynet.tensor(np.arange(6, dtype=np.float32).reshape(2, 3))
    (s * x).sum().backward()
    assert s.grad.shape == ()
    assert s.grad == pytest.approx(15.0)


def test_a_very_deep_chain_back_propagates_without_recursion():
    x = leaf(1.0, 2.0)
    y = x
    for _ in range(5000):
        y = y * 1.0001
    y.sum().backward()
    # every factor is float32(1.0001), so that is the exact derivative (about e**0.5)
    expected = float(np.float32(1.0001)) ** 5000
    np.testing.assert_allclose(x.grad, [expected, expected], rtol=1e-4)


def test_backward_of_a_non_scalar_needs_a_gradient():
    x = leaf(1.0, 2.0)
    with pytest.raises(RuntimeError, match="non-scalar"):
        (x * 2.0).backward()
    y = x * 2.0
    y.backward(np.array([1.0, 10.0], dtype=np.float32))
    np.testing.assert_array_equal(x.grad, [2.0, 20.0])


def test_backward_on_a_tensor_without_grad_raises():
    with pytest.raises(RuntimeError, match="does not require grad"):
        tinynet.tensor([1.0]).sum().backward()


# -- memory: what backward frees --------------------------------------------------


def test_backward_frees_saved_arrays_and_a_second_backward_explains_why_it_fails():
    x = leaf(1.0, 2.0)
    product = x * x
    function = product.creator
    assert len(function.saved_arrays) == 2
    loss = product.sum()
    loss.backward()
    assert function.saved_arrays == () and function.inputs == ()
    with pytest.raises(RuntimeError, match="retain_graph"):
        loss.backward()


def test_retain_graph_allows_a_second_backward():
    x = leaf(1.0, 2.0)
    loss = (x * x).sum()
    loss.backward(retain_graph=True)
    assert len(loss.creator.inputs) == 1
    loss.backward()
    np.testing.assert_allclose(x.grad, 2 * (2 * x.data))


def test_detach_cuts_the_graph():
    x = leaf(1.0, 2.0)
    y = x * 3.0
    d = y.detach()
    assert d.is_leaf and not d.requires_grad
    assert d.data is y.data
    z = (y * d).sum()  # the detached factor is a constant: dz/dx = 3 * d
    z.backward()
    np.testing.assert_allclose(x.grad, 3 * d.data)


def test_detach_in_place_makes_a_computed_tensor_a_constant_leaf():
    x = leaf(1.0, 2.0)
    y = x * 3.0
    assert y.detach_() is y and y.is_leaf and not y.requires_grad
    (x * y).sum().backward()  # y is a constant now: d/dx = y
    assert x.grad.tolist() == [3.0, 6.0]


# -- getting data out ---------------------------------------------------------------


def test_item_numpy_and_to_cpu():
    x = tinynet.tensor([[1.5, 2.5]], requires_grad=True)
    assert x.sum().item() == 4.0 and isinstance(x.sum().item(), float)
    array = x.numpy()
    assert isinstance(array, np.ndarray) and array.dtype == np.float32
    np.testing.assert_array_equal(array, [[1.5, 2.5]])
    moved = x.to("cpu")
    assert moved.device == "cpu" and moved.requires_grad and moved.is_leaf
    assert len(x) == 1 and x.ndim == 2 and x.numel() == 2 and x.size() == (1, 2) and x.size(-1) == 2


# -- dtypes: float32 stays float32 --------------------------------------------------


def test_tensor_factory_defaults_floats_to_float32():
    assert tinynet.tensor([1.0, 2.0]).dtype == np.float32
    assert tinynet.tensor(3.0).dtype == np.float32
    assert tinynet.tensor([1, 2]).dtype.kind == "i"
    assert tinynet.tensor([1.0], dtype="float64").dtype == np.float64
    # An explicit array keeps its dtype: float64 is what gradient checks use.
    assert tinynet.tensor(np.zeros(2)).dtype == np.float64


SCALAR_OPERATIONS = {
    "x * 2": lambda x: x * 2,
    "x * 2.5": lambda x: x * 2.5,
    "x * np.float64(2)": lambda x: x * np.float64(2),
    "np.float64(2) * x": lambda x: np.float64(2) * x,
    "np.float64(2) + x": lambda x: np.float64(2) + x,
    "1 - x": lambda x: 1 - x,
    "x - np.float64(1)": lambda x: x - np.float64(1),
    "np.float64(2) / x": lambda x: np.float64(2) / x,
    "x / 3": lambda x: x / 3,
    "x ** 2": lambda x: x**2,
    "x ** 0.5": lambda x: x**0.5,
    "x ** np.float64(2)": lambda x: x ** np.float64(2),
    "-x": lambda x: -x,
}


@pytest.mark.parametrize("name", list(SCALAR_OPERATIONS))
def test_python_and_numpy_scalars_keep_float32(name):
    """A float64 scalar on either side must not promote a float32 tensor (or its gradient) to float64."""
    x = tinynet.tensor([1.0, 2.0, 4.0], requires_grad=True)
    out = SCALAR_OPERATIONS[name](x)
    assert isinstance(out, Tensor)
    assert out.dtype == np.float32
    out.sum().backward()
    assert x.grad.dtype == np.float32


def _float32(rng, *shape):
    return tinynet.tensor(rng.standard_normal(shape).astype(np.float32), requires_grad=True)


FUNCTIONS = {
    "matmul": (lambda a, b: a @ b, [(3, 4), (4, 2)]),
    "exp/log": (lambda a: (a * a + 1.0).log().exp(), [(3, 4)]),
    "sum/mean/max": (lambda a: a.sum(axis=0) + a.mean(axis=0) + a.max(axis=0).values, [(3, 4)]),
    "reshape/transpose/T/getitem": (lambda a: a.reshape(4, 3).transpose(1, 0).T[1:, ::2].flatten(0), [(3, 4)]),
    "relu": (lambda a: a.relu(), [(3, 4)]),
    "linear": (lambda x, w, b: F.linear(x, w, b), [(4, 5), (3, 5), (3,)]),
    "conv2d groups": (
        lambda x, w, b: F.conv2d(x, w, b, stride=2, padding=1, groups=2),
        [(2, 4, 7, 7), (4, 2, 3, 3), (4,)],
    ),
    "max_pool2d": (lambda x: F.max_pool2d(x, 3, 2, padding=1), [(2, 3, 7, 7)]),
    "local_response_norm": (lambda x: F.local_response_norm(x, 5), [(2, 7, 3, 3)]),
    "local_response_norm alpha/n": (lambda x: F.local_response_norm(x, 5, alpha_over_n=True), [(2, 7, 3, 3)]),
    "dropout": (lambda x: F.dropout(x, 0.5), [(4, 5)]),
    "cross_entropy": (lambda x: F.cross_entropy(x, np.array([0, 2, 1, 0])), [(4, 3)]),
    "softmax": (lambda x: F.softmax(x, dim=1), [(4, 3)]),
    "log_softmax": (lambda x: F.log_softmax(x, dim=1), [(4, 3)]),
}


@pytest.mark.parametrize("name", list(FUNCTIONS))
def test_every_function_keeps_float32_forward_and_backward(name, rng):
    fn, shapes = FUNCTIONS[name]
    inputs = [_float32(rng, *shape) for shape in shapes]
    out = fn(*inputs)
    assert out.dtype == np.float32
    out.backward(np.ones(out.shape, dtype=np.float32))
    assert [t.grad.dtype for t in inputs] == [np.float32] * len(inputs)


# -- seeds --------------------------------------------------------------------------


def _seeded_run(seed):
    """Build a small conv net with dropout, then forward and backward once."""
    tinynet.manual_seed(seed)
    model = nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Dropout(0.5), nn.Linear(4 * 4 * 4, 3),
    )
    x = np.random.default_rng(0).standard_normal((2, 3, 8, 8)).astype(np.float32)
    loss = F.cross_entropy(model(tinynet.tensor(x)), np.array([0, 2]))
    loss.backward()
    return [loss.data] + [p.data for p in model.parameters()] + [p.grad for p in model.parameters()]


def test_the_same_seed_gives_bit_identical_runs():
    first, second = _seeded_run(3), _seeded_run(3)
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a, b)
    other = _seeded_run(4)
    assert not np.array_equal(first[1], other[1])  # the seed really drives the weights


def test_an_integer_tensor_times_a_float_promotes_to_float():
    out = tinynet.tensor([1, 2, 3]) * 0.5
    assert out.dtype.kind == "f"
    np.testing.assert_allclose(out.data, [0.5, 1.0, 1.5])


def test_max_over_several_axes_is_refused_clearly():
    with pytest.raises(TypeError, match="one dim.*amax"):
        tinynet.tensor(np.ones((2, 3)), requires_grad=True).max(axis=(0, 1))


def test_the_graph_keeps_leaves_but_not_the_values_of_intermediate_results():
    """A ReLU saves its output for backward, not its input: once the caller drops the
    pre-activation tensor, its array must be freed, with backward still correct."""
    x = tinynet.tensor(np.array([-1.0, 2.0, 3.0], np.float32), requires_grad=True)
    pre_activation = x * 2.0
    values = weakref.ref(pre_activation.data)
    out = F.relu(pre_activation)
    assert out.creator.inputs[0].creator is pre_activation.creator
    del pre_activation
    gc.collect()
    assert values() is None
    out.sum().backward()
    np.testing.assert_array_equal(x.grad, [0.0, 2.0, 2.0])
    assert (x * 2.0).creator.inputs[0] is x  # a leaf is kept whole: backward sets its .grad


# -- Python, NumPy and PyTorch's spellings ---------------------------------------


def test_sizes_as_pytorch_spells_them():
    x = tinynet.tensor(np.zeros((4, 3, 2), np.float32))
    assert x.size() == (4, 3, 2) == x.shape and x.size(0) == 4 and x.size(-1) == 2
    assert x.numel() == 24 and x.dim() == 3 == x.ndim
    with pytest.raises(IndexError, match="dim 3 is out of range for a tensor of 3 dims"):
        x.size(3)


def test_numpy_and_python_read_the_values():
    x = tinynet.tensor([[1.5, 2.5]])
    array = np.asarray(x)
    assert array.dtype == np.float32 and array.tolist() == [[1.5, 2.5]]
    assert np.asarray(x, dtype=np.float64).dtype == np.float64
    assert tinynet.tensor(x).dtype == np.float32 and tinynet.tensor([x[0, 0], x[0, 1]]).tolist() == [1.5, 2.5]
    assert x.tolist() == [[1.5, 2.5]] and float(x[0, 1]) == 2.5 and int(x[0, 1]) == 2
    n = tinynet.tensor(3)
    assert list(range(n)) == [0, 1, 2] and [10, 20, 30, 40][n] == 40
    with pytest.raises(TypeError, match=r"float\(\) needs a tensor of one value, got shape \(1, 2\)"):
        float(x)
    with pytest.raises(TypeError, match="only integer tensors"):
        range(tinynet.tensor(2.0))


def test_tensor_copies_its_data_and_keeps_or_sets_its_dtype():
    array = np.array([1.0, 2.0], np.float64)
    t = tinynet.tensor(array)
    array[0] = 5.0
    assert t.tolist() == [1.0, 2.0] and t.dtype == np.float64  # a copy, in the array's dtype
    assert tinynet.tensor([1, 2]).dtype == np.int64 and tinynet.tensor([1.0]).dtype == np.float32
    assert tinynet.tensor([True]).dtype == np.bool_
    assert tinynet.tensor([1, 2], dtype=np.float32).dtype == np.float32
    with pytest.raises(RuntimeError, match="only floating-point tensors can require gradients, got int64"):
        tinynet.tensor([1, 2], requires_grad=True)


def test_dtype_conversions_stay_in_the_graph():
    x = tinynet.tensor([1.0, -2.0, 3.0], requires_grad=True)
    y = x.double()
    assert y.dtype == np.float64 and x.float() is x
    (y * y).sum().backward()
    assert x.grad.dtype == np.float32 and x.grad.tolist() == [2.0, -4.0, 6.0]
    assert x.long().dtype == np.int64 and x.int().dtype == np.int32 and x.bool().dtype == np.bool_
    assert x.to(np.float64).dtype == np.float64 and x.to("float16").dtype == np.float16
    assert x.to("cpu", np.float64).dtype == np.float64 and x.to(tinynet.tensor([1])).dtype == np.int64
    assert x.to(dtype="float64", device="cpu").dtype == np.float64 and x.cpu() is x


def test_requires_grad_switches_a_leaf():
    x = tinynet.tensor([1.0, 2.0])
    assert x.requires_grad_() is x and x.requires_grad
    (x * x).sum().backward()
    assert x.grad.tolist() == [2.0, 4.0]
    with pytest.raises(RuntimeError, match="leaf tensors"):
        (x * 2).requires_grad_()
    with pytest.raises(RuntimeError, match="only floating-point"):
        tinynet.tensor([1, 2]).requires_grad_()


class Scale(Function):
    def __init__(self, factor=2.0):
        self.factor = factor

    def forward(self, x):
        return x * self.factor

    def backward(self, grad):
        return (grad * self.factor,)


def test_a_function_instance_refuses_a_second_call_and_apply_makes_a_fresh_one():
    a, b = leaf(1.0, 2.0), leaf(3.0, 4.0)
    scale = Scale()
    scale(a)
    with pytest.raises(RuntimeError, match="Scale was called a second time.*Scale.apply"):
        scale(b)
    (Scale.apply(a, factor=3.0).sum() + Scale.apply(b).sum()).backward()
    assert a.grad.tolist() == [3.0, 3.0] and b.grad.tolist() == [2.0, 2.0]


def test_pytorch_style_functions_get_a_context_and_tensors():
    class Cube(tinynet.autograd.Function):
        @staticmethod
        def forward(ctx, x, power):
            ctx.save_for_backward(x)
            ctx.power = int(power)
            return x ** ctx.power

        @staticmethod
        def backward(ctx, grad_output):
            (x,) = ctx.saved_tensors
            assert isinstance(x, Tensor) and isinstance(grad_output, Tensor)
            return grad_output * ctx.power * x ** (ctx.power - 1), None

    x = leaf(1.0, -2.0)
    y = Cube.apply(x, 3)
    assert not y.creator.ctx.saved_tensors[0].requires_grad  # no graph inside forward
    y.sum().backward()
    assert x.grad.tolist() == [3.0, 12.0]

    class Wrong(tinynet.autograd.Function):
        @staticmethod
        def forward(ctx, x, y):
            return x * y

        @staticmethod
        def backward(ctx, grad_output):
            return grad_output

    with pytest.raises(RuntimeError, match="Wrong.backward returned 1 gradients for 2 inputs"):
        Wrong.apply(leaf(1.0), leaf(2.0)).sum().backward()


def affine_function(framework):
    """PyTorch's LinearFunction example, with an optional bias and a Python number argument."""

    class Affine(framework.autograd.Function):
        @staticmethod
        def forward(ctx, x, weight, bias=None, scale=1.0):
            ctx.save_for_backward(x, weight)
            ctx.scale = scale
            output = x.mm(weight.t()) * scale
            return output if bias is None else output + bias

        @staticmethod
        def backward(ctx, grad_output):
            x, weight = ctx.saved_tensors
            grad = grad_output * ctx.scale
            needs = ctx.needs_input_grad
            return grad.mm(weight) if needs[0] else None, grad.t().mm(x), grad.sum(0) if needs[2] else None, None

    return Affine


@pytest.mark.parametrize("with_bias", [False, True])
def test_pytorch_style_functions_take_none_and_numbers_as_they_are_like_torch(with_bias):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    arrays = [rng.standard_normal(shape).astype(np.float32) for shape in ((4, 3), (2, 3), (2,))]
    results = []
    for framework in (tinynet, torch):
        x, weight, bias = (framework.tensor(a, requires_grad=True) for a in arrays)
        out = affine_function(framework).apply(x, weight, bias if with_bias else None, 0.5)
        (out ** 2).sum().backward()
        grads = [np.asarray(t.grad) for t in (x, weight, bias)] if with_bias else [np.asarray(x.grad)]
        results.append([np.asarray(out.detach())] + grads)
    for ours, theirs in zip(*results):
        np.testing.assert_allclose(ours, theirs, rtol=1e-4, atol=1e-5)


def test_a_pytorch_style_function_sees_false_in_needs_input_grad_for_non_tensors():
    seen = []

    class Record(tinynet.autograd.Function):
        @staticmethod
        def forward(ctx, x, label, y):
            seen.append((label, ctx.needs_input_grad))
            return x * y

        @staticmethod
        def backward(ctx, grad_output):
            return grad_output, None, None

    Record.apply(leaf(1.0), "mean", tinynet.tensor([2.0])).sum().backward()
    assert seen == [("mean", (True, False, False))]


def test_grad_fn_is_the_recording_function_or_none_as_in_torch():
    torch = pytest.importorskip("torch")
    for framework in (tinynet, torch):
        x = framework.ones(2, requires_grad=True)
        y = x * 2
        with framework.no_grad():
            untracked = x * 2
        assert x.grad_fn is None and y.grad_fn is not None and untracked.grad_fn is None
        assert framework.ones(2).grad_fn is None and y.detach().grad_fn is None
    z = tinynet.ones(2, requires_grad=True) * 3
    assert z.grad_fn is z.creator
