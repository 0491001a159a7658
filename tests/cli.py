"""Running alexnet.py's command line inside a test, and reading what it said."""

import os

import alexnet
import tinynet

# A run of seconds: the small preset, one epoch of batches of four.
TINY = ["--preset", "small", "--epochs", "1", "--batch-size", "4", "--workers", "2", "--quiet"]


def run(*argv):
    """alexnet.py's exit status for a command line (numbers and paths as they come)."""
    return alexnet.main([str(a) for a in argv])


def outcome(capsys, *argv):
    """(exit status, stderr) of a command line, whether the parser or the command refused it."""
    try:
        code = run(*argv)
    except SystemExit as exit_info:  # argparse exits by itself
        code = exit_info.code
    return code, capsys.readouterr().err.strip()


def one_line_error(capsys, *argv):
    """The message of a command line that must fail with one line and exit status 2."""
    code, err = outcome(capsys, *argv)
    assert code == 2, err
    assert "\n" not in err and "Traceback" not in err, err
    return err


def after_update(monkeypatch, count, action):
    """Run ``action(optimizer)`` right after the optimizer's ``count``-th update."""
    calls = {"count": 0}
    original = tinynet.optim.SGD.step

    def step(self):
        original(self)
        calls["count"] += 1
        if calls["count"] == count:
            action(self)

    monkeypatch.setattr(tinynet.optim.SGD, "step", step)


def signal_after_steps(monkeypatch, number, steps):
    """Send this process ``number`` (SIGINT as Ctrl-C does, or SIGTERM) after update ``steps``."""
    after_update(monkeypatch, steps, lambda optimizer: os.kill(os.getpid(), number))
