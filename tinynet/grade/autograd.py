"""Checks of the autograd assignment: five Functions' backward and the topological order."""

import numpy as np

from ..gradcheck import gradcheck
from ..tensor import Tensor
from .checks import CheckFailed, Checklist, as_tuple, expect_close, expect_gradient_error

checks = Checklist()
_SHAPE_HINT = "backward returns one gradient per input, each of that input's shape (lesson 1, section 3)"


def _normal(rng, *shape):
    return rng.standard_normal(shape)


def _student_pass(function, inputs, grad):
    """(output, input gradients) of a student Function called on raw arrays, as the engine would."""
    out = function.forward(*inputs)
    return out, as_tuple(function.backward(grad))


def _tinynet_pass(build, inputs, seed):
    """(output, input gradients, the output's gradient used) of the same operation built from
    tinynet's Tensor operations, back-propagating a random gradient."""
    tensors = [Tensor(a, requires_grad=True) for a in inputs]
    out = build(*tensors)
    grad = np.asarray(np.random.default_rng(seed).standard_normal(out.shape))
    out.backward(grad)
    return out.data, [t.grad for t in tensors], grad


def _expect_pass(student_function, build, inputs, what, hint, mistakes=lambda grad: {}):
    """Compare the student's output and input gradients with tinynet's; ``mistakes(grad)`` maps
    an input's index to its (wrong gradient, hint) pairs."""
    expected_out, expected_grads, grad = _tinynet_pass(build, inputs, seed=1)
    out, grads = _student_pass(student_function, inputs, grad)
    expect_close(out, expected_out, f"{what} forward", "forward returns the operation's value on the raw arrays")
    if len(grads) != len(inputs):
        raise CheckFailed(f"{what} backward returned {len(grads)} gradients for {len(inputs)} inputs: {_SHAPE_HINT}")
    for index, (actual, expected) in enumerate(zip(grads, expected_grads)):
        expect_close(actual, expected, f"{what} backward, gradient of input {index}", hint,
                     mistakes(grad).get(index, ()))


@checks.add("unbroadcast: sums the broadcast axes back to the input's shape",
            hint="sum over the leading axes broadcasting added, then with keepdims=True over size-1 axes")
def unbroadcast_shapes(student):
    for shape in [(3, 1), (2, 3, 4), (1, 4), (4,), ()]:
        # tinynet's engine sums the gradient of a broadcast input: the gradient of x + zeros((2, 3, 4))
        _, [expected], grad = _tinynet_pass(lambda x: x + np.zeros((2, 3, 4)), [np.zeros(shape)], seed=0)
        extra = grad.ndim - len(shape)
        mistakes = [
            (expected.squeeze(), "keep the size-1 axes of the input: sum over them with keepdims=True "
             "(the result must have the input's shape)"),
            (grad.sum(axis=tuple(extra + i for i, size in enumerate(shape) if size == 1), keepdims=True),
             "sum away the leading axes that broadcasting added: the first grad.ndim - len(shape) axes"),
        ]
        expect_close(student.unbroadcast(grad, shape), expected, f"unbroadcast(grad of shape {grad.shape}, {shape})",
                     "each entry of the input gets the sum of the gradients of all its copies", mistakes)


@checks.add("Mul: forward and backward against tinynet", hint="dL/da = grad * b, dL/db = grad * a")
def mul_values(student):
    rng = np.random.default_rng(2)
    a, b = _normal(rng, 3, 4), _normal(rng, 3, 4)
    swapped = "the gradients are swapped: dL/da = grad * b (the other input), dL/db = grad * a"
    _expect_pass(student.Mul(), lambda x, y: x * y, [a, b], "Mul", "dL/da = grad * b, dL/db = grad * a",
                 lambda grad: {0: [(grad * a, swapped)], 1: [(grad * b, swapped)]})


@checks.add("Mul: with broadcasting, each gradient has its input's shape",
            hint="sum each gradient back to its input's shape with unbroadcast")
def mul_broadcast(student):
    rng = np.random.default_rng(3)
    a, b = _normal(rng, 2, 3, 4), _normal(rng, 3, 1)
    not_summed = ("the gradient of the broadcast input b (3, 1) must be summed back to its shape: "
                  "unbroadcast(grad * a, b.shape)")
    _expect_pass(student.Mul(), lambda x, y: x * y, [a, b], "Mul (2, 3, 4) * (3, 1)",
                 "sum each gradient back to its input's shape with unbroadcast",
                 lambda grad: {1: [(grad * a, not_summed)]})


@checks.add("Exp: forward and backward against tinynet", hint="d exp(a) / da = exp(a): return (grad * out,)")
def exp_values(student):
    a = _normal(np.random.default_rng(4), 3, 5)
    _expect_pass(student.Exp(), lambda x: x.exp(), [a], "Exp", "d exp(a) / da = exp(a), times grad",
                 lambda grad: {0: [(np.exp(a), "multiply by the incoming gradient (chain rule): grad * exp(a)"),
                                   (grad * a, "the derivative of exp(a) is exp(a) (the output), not a")]})


@checks.add("Log: forward and backward against tinynet", hint="d log(a) / da = 1 / a: return (grad / a,)")
def log_values(student):
    a = np.random.default_rng(5).uniform(0.5, 2.0, (3, 5))
    _expect_pass(student.Log(), lambda x: x.log(), [a], "Log", "d log(a) / da = 1 / a, times grad",
                 lambda grad: {0: [(1 / a, "multiply by the incoming gradient (chain rule): grad / a"),
                                   (grad * a, "the derivative of log(a) is 1 / a: divide by a, don't multiply"),
                                   (grad * np.log(a), "the derivative of log(a) is 1 / a, not log(a)")]})


@checks.add("Sum: backward for axis None, an int, a negative int and a tuple, with and without keepdims",
            hint="with keepdims=False put the summed axes back (np.expand_dims), then np.broadcast_to the input shape")
def sum_axes(student):
    a = _normal(np.random.default_rng(6), 2, 3, 4)
    for axis in (None, 1, -1, (0, 2)):
        for keepdims in (False, True):
            _expect_pass(student.Sum(axis=axis, keepdims=keepdims), _tinynet_sum(axis, keepdims), [a],
                         f"Sum(axis={axis}, keepdims={keepdims})",
                         "every entry of a gets the gradient of the output entry it was added into")


def _tinynet_sum(axis, keepdims):
    return lambda x: x.sum(axis=axis, keepdims=keepdims)


@checks.add("MatMul: forward and backward, rectangular matrices",
            hint="dL/da = grad @ b.T has a's shape (n, k); dL/db = a.T @ grad has b's shape (k, m)")
def matmul_rectangular(student):
    rng = np.random.default_rng(7)
    a, b = _normal(rng, 2, 3), _normal(rng, 3, 4)
    _expect_pass(student.MatMul(), lambda x, y: x @ y, [a, b], "MatMul (2, 3) @ (3, 4)",
                 "dL/da = grad @ b.T has a's shape (n, k); dL/db = a.T @ grad has b's shape (k, m)")


@checks.add("MatMul: square matrices, where a missing transpose still has the right shape",
            hint="dL/da = grad @ b.T; dL/db = a.T @ grad")
def matmul_square(student):
    rng = np.random.default_rng(8)
    a, b = _normal(rng, 3, 3), _normal(rng, 3, 3)
    _expect_pass(student.MatMul(), lambda x, y: x @ y, [a, b], "MatMul (3, 3) @ (3, 3)",
                 "dL/da = grad @ b.T; dL/db = a.T @ grad",
                 lambda grad: {0: [(grad @ b, "missing transpose: dL/da = grad @ b.T"),
                                   (b.T @ grad, "wrong side: dL/da = grad @ b.T (grad on the left)")],
                               1: [(a @ grad, "missing transpose: dL/db = a.T @ grad"),
                                   (grad @ a.T, "wrong side: dL/db = a.T @ grad (grad on the right)")]})


@checks.add("gradient checks (float64, central differences) of all five Functions",
            hint="each backward returns the derivative of its own forward, times grad")
def gradient_checks(student):
    rng = np.random.default_rng(9)
    cases = {
        "Mul": (lambda x, y: student.Mul()(x, y), [_normal(rng, 2, 3), _normal(rng, 3)]),
        "Exp": (lambda x: student.Exp()(x), [_normal(rng, 2, 3)]),
        "Log": (lambda x: student.Log()(x), [rng.uniform(0.5, 2.0, (2, 3))]),
        "Sum": (lambda x: student.Sum(axis=1)(x), [_normal(rng, 2, 3, 2)]),
        "MatMul": (lambda x, y: student.MatMul()(x, y), [_normal(rng, 2, 3), _normal(rng, 3, 2)]),
    }
    for name, (fn, inputs) in cases.items():
        try:
            error = gradcheck(fn, inputs)
        except (NotImplementedError, CheckFailed):
            raise
        except Exception as failure:
            raise CheckFailed(f"{name} raised {type(failure).__name__}: {failure}") from None
        expect_gradient_error(error, name, f"{name}.backward must return the derivative of {name}.forward, times grad")


# -- the topological order ---------------------------------------------------------------------


def _reachable(root):
    found, stack = {root.creator}, [root.creator]
    while stack:
        for tensor in stack.pop().inputs:
            if tensor.creator is not None and tensor.creator not in found:
                found.add(tensor.creator)
                stack.append(tensor.creator)
    return found


def _expect_order(order, root):
    order = list(order)
    if any(item is None or isinstance(item, Tensor) for item in order):
        raise CheckFailed("the order holds tensors or None: list Functions (tensor.creator), and skip leaves")
    if len(set(order)) != len(order):
        raise CheckFailed("a Function appears more than once: mark the Functions already listed (a set)")
    reachable = _reachable(root)
    if set(order) != reachable:
        raise CheckFailed(f"{len(reachable - set(order))} Functions reachable from root.creator are missing and "
                          f"{len(set(order) - reachable)} are not in the graph: follow every input's creator")
    if order[0] is not root.creator:
        raise CheckFailed(f"the order starts with {order[0]!r}: it must start with root.creator, {root.creator!r}")
    position = {function: index for index, function in enumerate(order)}
    for function in order:
        for tensor in function.inputs:
            if tensor.creator is not None and position[tensor.creator] < position[function]:
                raise CheckFailed(
                    f"{tensor.creator!r} is listed before {function!r}, which uses its output: a Function must come "
                    "after every Function that consumes its output (a plain depth-first pre-order or a "
                    "breadth-first order is not enough; count each Function's consumers)")


def _order_check(name, build):
    @checks.add(f"topological_order: {name}", hint="walk function.inputs and tensor.creator; see lesson 1, section 4")
    def run(student):
        root = build()
        _expect_order(student.topological_order(root), root)

    return run


def _chain():
    a = Tensor(np.ones(3), requires_grad=True)
    return ((a * 2.0).exp().log() * a).sum()


def _diamond():
    x, w = Tensor(np.ones(3), requires_grad=True), Tensor(np.arange(3.0), requires_grad=True)
    z = (x * w).sum()
    return z * z


def _two_depths():
    a = Tensor(np.ones((2, 3)), requires_grad=True)
    h = a * 2.0  # h feeds the subtraction directly and, three operations deep, through exp and sum
    return (h - h.exp().sum(axis=1, keepdims=True)).sum()


def _deep():
    t = Tensor(np.ones(2), requires_grad=True)
    for _ in range(2500):
        t = t.exp().log()
    return t.sum()


_order_check("a chain with a leaf used twice", _chain)
_order_check("a tensor used by both inputs of one Function", _diamond)
_order_check("a tensor used at two depths", _two_depths)


@checks.add("topological_order: a graph 5,000 operations deep",
            hint="a recursive search exceeds Python's recursion limit here: use an explicit stack (a list)")
def deep_order(student):
    root = _deep()
    try:
        order = student.topological_order(root)
    except RecursionError:
        raise CheckFailed("RecursionError: a recursive search exceeds Python's recursion limit on a graph 5,000 "
                          "operations deep; use an explicit stack (a list of the Functions still to visit)") from None
    _expect_order(order, root)
