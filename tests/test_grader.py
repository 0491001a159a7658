"""The autograder works both ways: the reference solutions pass every check, the untouched stubs
fail every check as not implemented, and typical bugs planted in a solution fail with their hint."""

import subprocess
import sys
from pathlib import Path

import pytest

from tinynet import grade

ROOT = Path(__file__).resolve().parent.parent


def plant(tmp_path, assignment, *edits):
    """A copy of the reference solution with each ``old`` text (found exactly once) replaced by ``new``."""
    source = grade.solution_path(assignment).read_text()
    for old, new in edits:
        assert source.count(old) == 1, f"the solution of {assignment} no longer holds {old!r}"
        source = source.replace(old, new)
    path = tmp_path / f"{assignment}.py"
    path.write_text(source)
    return path


def failures(report):
    return {result.check.name: result.hint for result in report.results if not result.passed}


@pytest.mark.parametrize("assignment", grade.ASSIGNMENTS)
def test_the_reference_solution_passes_every_check(assignment):
    report = grade.grade(assignment, grade.solution_path(assignment))
    assert failures(report) == {}
    assert report.passed
    assert len(report.results) >= 8


@pytest.mark.parametrize("assignment", grade.ASSIGNMENTS)
def test_the_untouched_stub_fails_every_check_as_not_implemented(assignment):
    report = grade.grade(assignment)
    assert report.path == ROOT / "tutorials" / "assignments" / f"{assignment}.py"
    assert set(failures(report).values()) == {grade.NOT_IMPLEMENTED}
    assert len(failures(report)) == len(report.results)
    assert not report.passed


_BFS_ORDER = '''def topological_order(root):
    order, queue = [], [root.creator]
    while queue:
        function = queue.pop(0)
        if function not in order:
            order.append(function)
            queue.extend(t.creator for t in function.inputs if t.creator is not None)
    return order
'''

_RECURSIVE_ORDER = '''def topological_order(root):
    order, seen = [], set()

    def visit(function):
        seen.add(function)
        for tensor in function.inputs:
            if tensor.creator is not None and tensor.creator not in seen:
                visit(tensor.creator)
        order.append(function)

    visit(root.creator)
    return order[::-1]
'''

_EVERY_TIE_WINS = [  # the forward keeps the windows, the backward sends the gradient to every maximum
    ("(winner, x.shape, kernel_size", "(windows, x.shape, kernel_size"),
    ("winner, x_shape, k, s, p = cache",
     "windows, x_shape, k, s, p = cache\n    ties = windows == windows.max(axis=0)"),
    ("dout * (winner == offset)", "dout * ties[offset]"),
]

# (assignment, [(solution text, planted bug), ...], the check that must fail, a phrase of its hint)
BUGS = [
    ("autograd", [("return grad.sum(axis=stretched, keepdims=True)", "return grad.sum(axis=stretched)")],
     "unbroadcast", "keepdims=True"),
    ("autograd", [("return grad @ b.T, a.T @ grad", "return grad @ b, a.T @ grad")],
     "MatMul: square", "missing transpose: dL/da = grad @ b.T"),
    ("autograd", [("return (grad * out,)", "return (out,)")], "Exp", "multiply by the incoming gradient"),
    ("autograd", [("unbroadcast(grad * a, b.shape)", "grad * a")],
     "Mul: with broadcasting", "summed back to its shape"),
    ("autograd", [("def topological_order(root):", _BFS_ORDER + "\n\ndef kahn(root):")],
     "topological_order: a tensor used at two depths", "which uses its output"),
    ("autograd", [("def topological_order(root):", _RECURSIVE_ORDER + "\n\ndef kahn(root):")],
     "topological_order: a graph 5,000 operations deep", "explicit stack"),
    ("linear_softmax", [("dout.T @ x, dout.sum(axis=0)", "x.T @ dout, dout.sum(axis=0)")],
     "linear_backward", "not x.T @ dout"),
    ("linear_softmax", [("dout.T @ x, dout.sum(axis=0)", "dout.T @ x, dout.mean(axis=0)")],
     "linear_backward", "not its mean"),
    ("linear_softmax", [("shifted = logits - logits.max(axis=1, keepdims=True)", "shifted = logits")],
     "softmax_cross_entropy_forward: logits of +-1000", "log-sum-exp"),
    ("linear_softmax", [("return dlogits * (dloss / len(targets))", "return dlogits * dloss")],
     "softmax_cross_entropy_backward", "divide by N"),
    ("linear_softmax", [("dlogits[np.arange(len(targets)), targets] -= 1", "pass")],
     "softmax_cross_entropy_backward", "subtract 1 at each row's target"),
    ("convolution", [("] += window_element", "] = window_element")], "col2im: overlapping", "add (+=) instead of"),
    ("convolution", [("out.reshape(f, x.shape[0], oh, ow).transpose(1, 0, 2, 3)",
                      "out.reshape(x.shape[0], f, oh, ow)")],
     "conv_forward: values", "not reshape straight to (N, F, oh, ow)"),
    ("convolution", [("dx = dpadded[:, :, padding : padded_shape[2] - padding, padding : padded_shape[3] - padding]",
                      "dx = dpadded")], "conv_backward: dx, dw, db", "dx still has the padding"),
    ("convolution", [("out = w.reshape(groups", "out = w[:, :, ::-1, ::-1].reshape(groups")],
     "conv_forward: values", "the kernel is flipped"),
    ("pooling", [("] += dout * (winner == offset)", "] = dout * (winner == offset)")],
     "max_pool_backward: overlapping windows that share a winner", "add (+=) into dx"),
    ("pooling", [("constant_values=-np.inf)", ")")], "max_pool_forward: padding 1", "pad with -inf"),
    ("pooling", [("winner = windows.argmax(axis=0)", "winner = len(windows) - 1 - windows[::-1].argmax(axis=0)")],
     "max_pool_backward: ties", "not the last"),
    ("pooling", _EVERY_TIE_WINS, "max_pool_backward: ties", "first maximum only"),
    ("dropout_lrn_sgd", [("mask = keep.astype(x.dtype) / x.dtype.type(1 - p)", "mask = keep.astype(x.dtype)")],
     "dropout_forward: p = 0.5", "divide them by 1 - p"),
    ("dropout_lrn_sgd", [("mask = keep.astype(x.dtype) / x.dtype.type(1 - p)", "mask = keep.astype(x.dtype) / p")],
     "dropout_forward: p = 0.3", "not by p"),
    ("dropout_lrn_sgd", [("scale = k + alpha * _window_sum", "scale = k + alpha / size * _window_sum")],
     "lrn_forward: 7 channels", "alpha was divided by size"),
    ("dropout_lrn_sgd", [("padded = np.pad(a, ((0, 0), (before, after), (0, 0), (0, 0)))",
                          "padded = np.concatenate([a[:, channels - before :], a, a[:, :after]], axis=1)")],
     "lrn_forward: 7 channels", "wrapped around"),
    ("dropout_lrn_sgd", [("return dout * scale**-beta - 2 * alpha * beta * x * through_scale",
                          "return dout * scale**-beta")],
     "lrn_backward", "only the direct term"),
    ("dropout_lrn_sgd", [("- weight_decay * lr * w - lr * dw", "- weight_decay * w - lr * dw")],
     "sgd_step: three steps", "scaled by the learning rate too"),
    ("dropout_lrn_sgd", [("v = momentum * v - weight_decay * lr * w - lr * dw\n    return w + v, v",
                          "v = momentum * v + dw + weight_decay * w\n    return w - lr * v, v")],
     "sgd_step: the learning rate divided", "PyTorch's rule"),
]


@pytest.mark.parametrize("assignment, edits, check, hint", BUGS, ids=[f"{b[0]}: {b[3]}" for b in BUGS])
def test_a_planted_bug_fails_its_check_with_its_hint(tmp_path, assignment, edits, check, hint):
    report = grade.grade(assignment, plant(tmp_path, assignment, *edits))
    failed = failures(report)
    assert not report.passed
    matching = [name for name in failed if name.startswith(check)]
    assert matching, f"no failed check named {check!r}; failed: {failed}"
    assert hint in failed[matching[0]]


def test_a_bug_in_the_bonus_alone_leaves_the_assignment_passed(tmp_path):
    ungrouped = [("w.reshape(groups, f // groups, -1) @ columns.reshape(groups, -1, columns.shape[1])",
                  "w.reshape(1, f, -1) @ columns.reshape(1, -1, columns.shape[1])")]
    report = grade.grade("convolution", plant(tmp_path, "convolution", *ungrouped))
    assert [result.check.bonus for result in report.results if not result.passed] == [True]
    assert report.passed
    assert report.text().endswith("Score: 10/10 checks passed, bonus 0/1")


def test_an_error_the_checks_did_not_foresee_is_a_failure_with_the_checks_hint(tmp_path):
    path = plant(tmp_path, "linear_softmax", ("return x @ w.T + b, (x, w)", "return x @ w + b, (x, w)"))
    hint = failures(grade.grade("linear_softmax", path))["linear_forward: output shape (N, M) for N != D != M"]
    assert hint.startswith("ValueError: ") and hint.endswith("out = x @ w.T + b")


def test_a_file_without_the_stubs_names_or_that_does_not_import_fails_every_check(tmp_path):
    empty = tmp_path / "pooling.py"
    empty.write_text("import numpy as np\n")
    assert all("defines no max_pool_forward" in hint for hint in failures(grade.grade("pooling", empty)).values())
    broken = tmp_path / "broken.py"
    broken.write_text("def max_pool_forward(x:\n")
    report = grade.grade("pool", broken)
    assert len(failures(report)) == len(report.results)
    assert all("could not be imported: SyntaxError" in hint for hint in failures(report).values())


def test_unknown_assignments_and_missing_files_are_refused(tmp_path):
    with pytest.raises(ValueError, match="no assignment 'convolutions': expected one of"):
        grade.grade("convolutions")
    with pytest.raises(FileNotFoundError, match="pass the path of your pooling.py"):
        grade.grade("pool", tmp_path / "nothing.py")


def run_grader(*args):
    return subprocess.run([sys.executable, "-m", "tinynet.grade", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)


def test_the_command_line_passes_the_solutions_with_exit_status_0():
    done = run_grader("all", "--solution")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "FAIL" not in done.stdout
    for assignment in grade.ASSIGNMENTS:
        counted = sum(not check.bonus for check in grade.checks(assignment))
        assert f"Score: {counted}/{counted} checks passed" in done.stdout


def test_the_command_line_fails_a_stub_with_exit_status_1_and_hints():
    done = run_grader("pool")
    assert done.returncode == 1
    lines = done.stdout.splitlines()
    assert lines[0] == f"pooling: {ROOT / 'tutorials' / 'assignments' / 'pooling.py'}"
    assert "  FAIL  max_pool_backward: ties go to the first maximum of each window" in lines
    assert lines.count("        hint: not implemented yet") == 8
    assert "Score: 0/8 checks passed" in lines


def test_the_command_line_grades_a_given_file_and_refuses_an_unknown_name(tmp_path):
    path = plant(tmp_path, "pooling", ("constant_values=-np.inf)", ")"))
    done = run_grader("pooling", str(path))
    assert done.returncode == 1
    assert "hint: out (3x3, stride 2, padding 1): the padding won over negative inputs" in done.stdout
    assert "Score: 7/8 checks passed" in done.stdout
    refused = run_grader("pooled")
    assert refused.returncode == 2 and "no assignment 'pooled'" in refused.stderr


def test_pytest_runs_one_test_per_check():
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-k", "pooling",
                           "tutorials/assignments/grade_with_pytest.py"], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 1
    assert "8 failed" in done.stdout and "AssertionError: not implemented yet" in done.stdout
