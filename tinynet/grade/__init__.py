"""The autograder of the assignments in tutorials/assignments/.

    python -m tinynet.grade convolution                      # grades tutorials/assignments/convolution.py
    python -m tinynet.grade conv path/to/my_convolution.py   # another file
    python -m tinynet.grade all                              # every assignment
    python -m tinynet.grade conv --solution                  # the reference solution

Each check prints PASS or FAIL with a hint, then a score; the exit status is 1 if a check
(not counting bonus checks) failed. From Python or pytest:

    report = tinynet.grade.grade("pooling")
    assert report.passed, report.text()

or ``pytest tutorials/assignments/grade_with_pytest.py``, one test per check.

Each assignment's checks live in a module of the same name here; the reference solutions,
which the test suite grades, in solutions/.
"""

import importlib
from dataclasses import dataclass
from pathlib import Path

from .checks import NOT_IMPLEMENTED, Check, Result, Student, run_check

ASSIGNMENTS = ("autograd", "linear_softmax", "convolution", "pooling", "dropout_lrn_sgd")
ALIASES = {"linear": "linear_softmax", "softmax": "linear_softmax", "conv": "convolution", "pool": "pooling",
           "dropout": "dropout_lrn_sgd", "lrn": "dropout_lrn_sgd", "sgd": "dropout_lrn_sgd"}
SOLUTIONS = Path(__file__).parent / "solutions"

__all__ = ["ASSIGNMENTS", "Check", "NOT_IMPLEMENTED", "Report", "Result", "checks", "default_path", "grade", "load",
           "resolve", "run_check", "solution_path", "student_path"]


def resolve(assignment):
    """The assignment's full name from its name or a short one (conv, pool, lrn, ...)."""
    name = ALIASES.get(assignment, assignment)
    if name not in ASSIGNMENTS:
        raise ValueError(f"no assignment {assignment!r}: expected one of {ASSIGNMENTS} (or {tuple(ALIASES)})")
    return name


def checks(assignment):
    """The list of Checks of an assignment, in the order they run."""
    return importlib.import_module(f".{resolve(assignment)}", __name__).checks


def default_path(assignment):
    """The student's file: tutorials/assignments/<name>.py under the current folder, or else
    under the repository this package was installed from (pip install -e .)."""
    relative = Path("tutorials", "assignments", f"{resolve(assignment)}.py")
    here = Path.cwd() / relative
    return here if here.exists() else Path(__file__).resolve().parents[2] / relative


def solution_path(assignment):
    return SOLUTIONS / f"{resolve(assignment)}.py"


@dataclass(frozen=True)
class Report:
    assignment: str
    path: Path
    results: tuple

    @property
    def passed(self):
        """Whether every check passed, bonus checks aside."""
        return all(result.passed for result in self.results if not result.check.bonus)

    def score(self):
        """(passed, total) over the checks that are not bonus, and the same over the bonus ones."""
        def count(bonus):
            chosen = [result for result in self.results if result.check.bonus == bonus]
            return sum(result.passed for result in chosen), len(chosen)

        return count(False), count(True)

    def text(self):
        lines = [f"{self.assignment}: {self.path}"]
        for result in self.results:
            name = f"(bonus) {result.check.name}" if result.check.bonus else result.check.name
            lines.append(f"  {'PASS' if result.passed else 'FAIL'}  {name}")
            if not result.passed:
                lines.append(f"        hint: {result.hint}")
        (passed, total), (bonus_passed, bonus_total) = self.score()
        bonus = f", bonus {bonus_passed}/{bonus_total}" if bonus_total else ""
        lines.append(f"Score: {passed}/{total} checks passed{bonus}")
        return "\n".join(lines)


def student_path(assignment, path=None):
    """``path``, or the default file of the assignment; an error if there is no such file."""
    name = resolve(assignment)
    path = Path(path) if path is not None else default_path(name)
    if not path.is_file():
        raise FileNotFoundError(f"no file {path} to grade for {name}: pass the path of your {name}.py")
    return path


def load(assignment, path=None):
    """The student's module (default: default_path), to hand to run_check."""
    return Student(student_path(assignment, path))


def grade(assignment, path=None):
    """Run every check of ``assignment`` on the file at ``path`` (default: default_path)."""
    name, path = resolve(assignment), student_path(assignment, path)
    try:
        student = Student(path)
    except Exception as error:  # the file does not even import: every check fails, with the reason
        hint = f"{path} could not be imported: {type(error).__name__}: {error}"
        return Report(name, path, tuple(Result(check, False, hint) for check in checks(name)))
    return Report(name, path, tuple(run_check(check, student) for check in checks(name)))
