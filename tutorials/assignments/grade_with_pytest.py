"""The autograder under pytest: one test per check, the hint as the failure message.

    pytest tutorials/assignments/grade_with_pytest.py              # every assignment
    pytest tutorials/assignments/grade_with_pytest.py -k pooling   # one of them

(The file's name keeps it out of the test suite: pytest runs it only when named.)
"""

import functools

import pytest

from tinynet import grade

CASES = [(name, check) for name in grade.ASSIGNMENTS for check in grade.checks(name)]


@functools.cache
def student(name):
    return grade.load(name)


@pytest.mark.parametrize("name, check", CASES, ids=[f"{name}: {check.name}" for name, check in CASES])
def test_check(name, check):
    result = grade.run_check(check, student(name))
    assert result.passed, result.hint
