"""What every assignment's checks share: running one, comparing arrays, explaining a failure.

A check runs the student's functions on small inputs and compares what they return with
tinynet's own layers. When the numbers differ, the check first tries the answers that typical
mistakes would give (a missing transpose, the wrong axis, alpha divided by n, ...): if the
student's result equals one of them, the hint names that mistake; otherwise it says what was
expected and where to look.
"""

import importlib.util
import itertools
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..gradcheck import gradcheck
from ..tensor import Function, Tensor

GRADCHECK_TOLERANCE = 1e-6
NOT_IMPLEMENTED = "not implemented yet"


class CheckFailed(AssertionError):
    """A check's verdict on a wrong answer; its message is the hint shown to the student."""


@dataclass(frozen=True)
class Check:
    name: str
    run: Callable  # run(student) returns nothing or raises CheckFailed
    hint: str  # shown when the student's code raises an error the check did not foresee
    bonus: bool = False


@dataclass(frozen=True)
class Result:
    check: Check
    passed: bool
    hint: str = ""


class Checklist(list):
    """An assignment's checks in order; ``@checks.add(name, hint)`` registers one."""

    def add(self, name, hint, bonus=False):
        def register(run):
            self.append(Check(name, run, hint, bonus))
            return run

        return register


def run_check(check, student):
    """The verdict of one check; the student's errors become failures, never crashes."""
    try:
        with np.errstate(all="ignore"):  # an overflow shows as a failed comparison, with its hint
            check.run(student)
    except NotImplementedError:
        return Result(check, False, NOT_IMPLEMENTED)
    except CheckFailed as failure:
        return Result(check, False, str(failure))
    except Exception as error:  # the student's code raised: report it with the check's own hint
        return Result(check, False, f"{type(error).__name__}: {error}. {check.hint}")
    return Result(check, True)


class Student:
    """The student's module; a name it lacks fails the check that asked for it."""

    _counter = itertools.count()

    def __init__(self, path):
        self.path = str(path)
        spec = importlib.util.spec_from_file_location(f"tinynet_student_{next(self._counter)}", self.path)
        self.module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(self.module)

    def __getattr__(self, name):
        try:
            return getattr(self.module, name)
        except AttributeError:
            raise CheckFailed(f"{self.path} defines no {name}: keep the names of the stubs") from None


# -- comparing arrays --------------------------------------------------------------------------


def expect_close(actual, expected, what, hint, mistakes=(), rtol=1e-5, atol=1e-7):
    """Pass if ``actual`` equals ``expected`` (shape and values), else fail with the best hint.

    ``mistakes`` lists (wrong answer, hint) pairs: the answers typical mistakes give, or a
    test ``wrong(actual) -> bool`` that recognises one.
    """
    if actual is None:
        raise CheckFailed(f"{what} is None: return it")
    actual = np.asarray(actual)
    expected = np.asarray(expected)
    if actual.shape == expected.shape and np.allclose(actual, expected, rtol=rtol, atol=atol, equal_nan=True):
        return
    for wrong, why in mistakes:
        if _matches(actual, wrong, rtol, atol):
            raise CheckFailed(f"{what}: {why}")
    if actual.shape != expected.shape:
        raise CheckFailed(f"{what} has shape {actual.shape}, expected {expected.shape}. {hint}")
    if not np.isfinite(actual).all():
        raise CheckFailed(f"{what} holds inf or nan where tinynet's is finite. {hint}")
    worst = np.unravel_index(np.argmax(np.abs(actual - expected)), actual.shape)
    raise CheckFailed(f"{what} differs from tinynet's at index {tuple(int(i) for i in worst)}: "
                      f"{float(actual[worst]):.6g} instead of {float(expected[worst]):.6g}. {hint}")


def _matches(actual, wrong, rtol, atol):
    if callable(wrong):
        return wrong(actual)
    wrong = np.asarray(wrong)
    return wrong.shape == actual.shape and np.allclose(actual, wrong, rtol=rtol, atol=atol, equal_nan=True)


def expect_shape(actual, shape, what, hint):
    if np.shape(actual) != tuple(shape):
        raise CheckFailed(f"{what} has shape {np.shape(actual)}, expected {tuple(shape)}. {hint}")


def expect_dtype(actual, dtype, what):
    dtype = np.dtype(dtype)
    if np.asarray(actual).dtype != dtype:
        raise CheckFailed(f"{what} is {np.asarray(actual).dtype}, expected {dtype} like the input: "
                          f"make new arrays with dtype=x.dtype (np.zeros(shape, dtype=x.dtype))")


def tinynet_pass(build, inputs, dout):
    """tinynet's output of ``build(*tensors)`` and its gradients for the float inputs, given dout."""
    tensors = [Tensor(a, requires_grad=np.asarray(a).dtype.kind == "f") for a in inputs]
    out = build(*tensors)
    out.backward(np.asarray(dout, dtype=out.dtype))
    return out.data, [t.grad for t in tensors if t.requires_grad]


def as_tuple(grads):
    return grads if isinstance(grads, tuple) else (grads,)


# -- gradient checks of the student's backward --------------------------------------------------


class StudentLayer(Function):
    """A student's ``forward(*arrays, **options) -> (out, cache)`` and ``backward(dout, cache)``
    as one tinynet Function, so that tinynet's gradcheck can compare its backward with
    central differences of its own forward. Inputs without a gradient (class targets) get None."""

    def __init__(self, forward, backward, **options):
        self.student_forward, self.student_backward, self.options = forward, backward, options

    def forward(self, *arrays):
        out, self.cache = self.student_forward(*arrays, **self.options)
        return np.asarray(out)

    def backward(self, grad):
        grads = as_tuple(self.student_backward(grad, self.cache))
        return grads + (None,) * (len(self.inputs) - len(grads))


def expect_gradients(forward, backward, inputs, what, hint, **options):
    """gradcheck (float64, central differences) of the student's backward against their forward."""
    error = gradcheck(lambda *tensors: StudentLayer(forward, backward, **options)(*tensors), inputs)
    expect_gradient_error(error, what, hint)


def expect_gradient_error(error, what, hint):
    if not error < GRADCHECK_TOLERANCE:  # `not <` also catches nan
        raise CheckFailed(f"{what}: gradient check error {error:.1e}, expected below {GRADCHECK_TOLERANCE:.0e}: "
                          f"the backward does not match central differences of the forward. {hint}")
