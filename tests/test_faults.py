"""kill -9 at any moment of a training run loses nothing: resuming gives the same weights
bit for bit, and metrics.csv holds every epoch exactly once with the same figures.

Each round starts a run in a child process and kills it (SIGKILL, which no handler can
catch) at a chosen point: during a checkpoint's write (the data written, not yet renamed),
just after a checkpoint's rename (before metrics.csv follows it), or at a random moment.
Then it resumes, or starts again if no checkpoint was written, until the run finishes.
"""

import csv
import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np

from tinynet.checkpoint import load_checkpoint

ROOT = Path(__file__).resolve().parent.parent

# Runs alexnet.py's command line, killing itself at the FAULT given in the environment:
# "write:N" inside the N-th checkpoint write, "rename:N" just after the N-th rename of
# checkpoint.npz, "time:S" after S seconds, "none" never.
DRIVER = textwrap.dedent("""
    import os, signal, sys, threading
    import numpy as np

    kind, when = os.environ["FAULT"].split(":")
    count = [0]

    def die():
        os.kill(os.getpid(), signal.SIGKILL)

    def event():
        count[0] += 1
        if count[0] == int(when):
            die()

    if kind == "time":
        timer = threading.Timer(float(when), die)
        timer.daemon = True
        timer.start()
    elif kind == "write":
        savez = np.savez

        def savez_then_die(file, **arrays):
            savez(file, **arrays)
            file.flush()
            event()

        np.savez = savez_then_die
    elif kind == "rename":
        replace = os.replace

        def replace_then_die(source, target):
            replace(source, target)
            if os.path.basename(target) == "checkpoint.npz":
                event()

        os.replace = replace_then_die

    import alexnet
    sys.exit(alexnet.main(sys.argv[1:]))
""")

EPOCHS = 3
TRAIN = ["train", "--preset", "small", "--epochs", str(EPOCHS), "--batch-size", "4", "--workers", "2", "--pca",
         "--schedule", "plateau", "--quiet"]
SPEED_DEPENDENT = "images_per_second"


def start(data, run_dir, fault):
    """Run training in a child until it ends or is killed; returns (exit status, seconds)."""
    resume = ["--resume"] if (run_dir / "checkpoint.npz").exists() else []
    began = time.perf_counter()
    child = subprocess.run([sys.executable, "-c", DRIVER, *TRAIN, "--data", str(data), "--run-dir", str(run_dir),
                            *resume], env=os.environ | {"FAULT": fault}, cwd=ROOT, capture_output=True, text=True,
                           timeout=120)
    assert child.returncode in (0, -signal.SIGKILL), child.stderr
    return child.returncode, time.perf_counter() - began


def state(run_dir):
    arrays, meta = load_checkpoint(run_dir / "checkpoint.npz")
    with open(run_dir / "metrics.csv") as file:
        rows = [{k: v for k, v in row.items() if k != SPEED_DEPENDENT} for row in csv.DictReader(file)]
    return arrays, meta["progress"], rows


def test_kill_9_at_any_moment_then_resume_loses_nothing(image_folder, tmp_path):
    code, seconds = start(image_folder, tmp_path / "straight", "none:0")
    assert code == 0
    weights, progress, rows = state(tmp_path / "straight")
    assert [row["epoch"] for row in rows] == ["1", "2", "3"]

    rng = random.Random(0)
    plans = [["write:1"], ["write:2", "rename:1"], ["rename:1"], ["rename:3"], ["write:3", "write:1"]]
    plans += [[f"time:{rng.uniform(0.3, seconds):.2f}" for _ in range(2)] for _ in range(3)]
    for number, faults in enumerate(plans):
        run_dir = tmp_path / f"round{number}"
        for fault in faults:
            code, _ = start(image_folder, run_dir, fault)
            if fault.startswith("time") and code == 0:
                break  # the run ended before the moment drawn
            assert code == -signal.SIGKILL, f"{faults}: {fault} was never reached"
        else:
            assert start(image_folder, run_dir, "none:0")[0] == 0
        resumed_weights, resumed_progress, resumed_rows = state(run_dir)
        assert resumed_progress == progress, faults
        assert resumed_rows == rows, faults
        assert resumed_weights.keys() == weights.keys()
        for key in weights:
            np.testing.assert_array_equal(resumed_weights[key], weights[key], err_msg=f"{faults}: {key}")
        assert not list(run_dir.glob(".*.tmp")), faults
