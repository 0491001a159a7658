"""The worked solutions in tutorials/solutions/ compute what they claim.

Each solution file is a Markdown page whose ```python blocks run, top to bottom, in
one namespace, and whose ```output block under a code block is what that block
prints. These tests run every code block and compare what it prints with the
output shown, number by number within the printed precision; a number marked "~"
(a measurement from training or round-off) may move by 30%, since float32 rounding
differs between CPUs and BLAS kernels and training amplifies it. They also check that
every number the prose states (outside code) is one the page's code or outputs
contain, so that a claim cannot drift away from the computation behind it.

A block whose first line is "# needs a GPU" runs only where CuPy finds a GPU, and
its printout (timings of that card) is not compared; the prose takes no number
from it.
"""

import contextlib
import io
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from tinynet import backend

SOLUTIONS = Path(__file__).resolve().parent.parent / "tutorials" / "solutions"
PAGES = sorted(SOLUTIONS.glob("[0-9][0-9]_*.md"))

NEEDS_GPU = "# needs a GPU"
FENCE = re.compile(r"^```(\w*)\n(.*?)^```\n", re.S | re.M)
# A number as printed: digits with optional thousands separators, decimals, exponent.
NUMBER = re.compile(r"(?<![\w.])[-+]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:[eE][-+]?\d+)?(?![\w])")


@dataclass
class Block:
    kind: str  # "prose", "python", "output" or another fence's language
    text: str


def blocks(page):
    """The page cut into prose and fenced blocks, in order."""
    parts, position = [], 0
    for fence in FENCE.finditer(page):
        parts.append(Block("prose", page[position:fence.start()]))
        parts.append(Block(fence.group(1) or "text", fence.group(2)))
        position = fence.end()
    parts.append(Block("prose", page[position:]))
    return parts


def run_page(page, gpu=False):
    """Run each python block (those that need a GPU only if `gpu`); yield (code, expected output or None,
    printed output)."""
    namespace = {"__name__": "solution"}
    parts = blocks(page)
    for index, block in enumerate(parts):
        if block.kind != "python" or (block.text.startswith(NEEDS_GPU) and not gpu):
            continue
        following = [part for part in parts[index + 1:] if part.kind != "prose" or part.text.strip()]
        expected = following[0].text if following and following[0].kind == "output" else None
        printed = io.StringIO()
        with contextlib.redirect_stdout(printed):
            exec(compile(block.text, "<solution block>", "exec"), namespace)
        yield block.text, expected, printed.getvalue()


def value(token):
    return float(token.replace(",", ""))


def last_digit_unit(token):
    """The size of one unit in the last printed digit: 0.001 for '0.822', 1e-7 for '3.2e-06'."""
    mantissa, _, exponent = token.replace(",", "").lower().partition("e")
    decimals = len(mantissa.partition(".")[2])
    return 10.0 ** (int(exponent or 0) - decimals)


def allowed_difference(match, text):
    """How far a printed number may be from the one shown.

    A number marked "~" comes out of training or of round-off: float32 rounding differs
    between CPUs and BLAS libraries, and many training steps amplify it, so it may move
    by 30% (and two units of its last digit). Other integers are counts and sizes, exact;
    other decimals may differ in their last digit.
    """
    token = match.group()
    if text[:match.start()].endswith("~"):
        return 0.3 * abs(value(token)) + 2 * last_digit_unit(token)
    return last_digit_unit(token) * 1.0001 if re.search(r"[.eE]", token) else 0


def same_printout(expected, printed):
    """Equal text around the numbers, and each number within its allowed difference."""
    if NUMBER.sub("#", expected).split() != NUMBER.sub("#", printed).split():
        return False
    pairs = zip(NUMBER.finditer(expected), NUMBER.findall(printed))
    return all(abs(value(want.group()) - value(got)) <= allowed_difference(want, expected) for want, got in pairs)


# References and settings rather than claims: "lesson 6", "sections 4.1 and 4.2", "exercise 3", "Zhang et al.,
# 2017", "**2." opening an answer, and keyword arguments such as `limit=None, epochs=4`.
REFERENCE = re.compile(r"\b(?:lesson|section|exercise|figure|table)s?\s+\d+(?:\.\d+)?"
                       r"(?:(?:,|\s+and|\s+or)\s+\d+(?:\.\d+)?)*"
                       r"|et al\.,?\s+\d{4}|^\s*(?:\*\*)?\d+\.(?=[\s*])|\b\w+=[-+.\w]+", re.I | re.M)


def stated_numbers(prose):
    """The numbers in the prose that state something: all but references to lessons, sections and exercises."""
    return NUMBER.findall(REFERENCE.sub("", prose))


def agrees(stated, known):
    """A stated number agrees with a computed one when it is that number, rounded as stated.

    Signs are ignored: prose says "loses 27" where the code prints -27.
    """
    return abs(abs(value(stated)) - abs(value(known))) <= last_digit_unit(stated) / 2 * 1.0001


@pytest.mark.parametrize("path", PAGES, ids=[path.stem for path in PAGES])
def test_solution_code_prints_what_the_page_shows(path, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # files a solution writes go into a temporary folder
    page = path.read_text()
    with np.printoptions():  # a page may set NumPy's print options; they end with it
        runs = list(run_page(page, gpu=backend.gpu_available()))
    assert runs, f"{path.name} has no python block"
    for code, expected, printed in runs:
        if code.startswith(NEEDS_GPU):
            assert expected is None, f"{path.name}: a block that needs a GPU shows an output; its timings vary by card"
            continue
        if expected is None:
            assert not printed, f"{path.name}: a block prints but shows no output block:\n{code}\nprinted:\n{printed}"
            continue
        assert same_printout(expected, printed), (
            f"{path.name}: a block prints something else than its output block shows.\n"
            f"--- code\n{code}--- shown\n{expected}--- printed\n{printed}")


@pytest.mark.parametrize("path", PAGES, ids=[path.stem for path in PAGES])
def test_every_number_stated_in_the_prose_is_computed_or_given_in_code(path):
    parts = blocks(path.read_text())
    known = [number for part in parts if part.kind in ("python", "output") for number in NUMBER.findall(part.text)]
    stated = [number for part in parts if part.kind == "prose" for number in stated_numbers(part.text)]
    unaccounted = sorted({number for number in stated if not any(agrees(number, k) for k in known)})
    assert not unaccounted, f"{path.name} states numbers that no code or output of the page contains: {unaccounted}"


def test_same_printout_tolerates_the_last_digit_and_nothing_more():
    assert same_printout("loss 0.822, 3.2e-06 at step 1,024\n", "loss 0.823, 3.3e-06 at step 1,024\n")
    assert not same_printout("loss 0.822", "loss 0.824")
    assert not same_printout("step 1,024", "step 1,025")
    assert not same_printout("loss 0.822", "error 0.822")
    assert not same_printout("loss 0.822 0.5", "loss 0.822")


def test_same_printout_lets_a_marked_measurement_move_by_30_percent():
    assert same_printout("top-1 ~40%, loss ~1.39, step ~135", "top-1 ~45%, loss ~1.55, step ~171")
    assert not same_printout("top-1 ~40%", "top-1 ~60%")
    assert not same_printout("top-1 ~40%", "top-1 45%")


def test_references_are_not_claims():
    assert stated_numbers("**2. Loss.** As lesson 6 and sections 4.1 and 4.2 show, 0.63 after 1 epoch") == ["0.63", "1"]
    assert stated_numbers("`train(limit=2000, epochs=3)` reaches 73.7%") == ["73.7"]


def test_agrees_with_a_number_rounded_as_stated():
    assert agrees("0.52", "0.5234") and agrees("3e-6", "3.2e-06") and agrees("95", "94.5")
    assert not agrees("0.6", "0.52") and not agrees("1e-5", "3.2e-06") and not agrees("234", "258")
