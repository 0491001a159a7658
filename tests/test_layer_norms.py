"""Per-layer norms, norms.csv and norms.png, and the divergence guard's warning."""

import csv
import math
import signal

import numpy as np
import pytest

import tinynet
from tinynet import nn
from tinynet.checkpoint import load_checkpoint
from tinynet.layer_norms import WATCH_STEPS, DivergenceGuard, NormRecorder, layer_norms

from .cli import TINY, run, signal_after_steps

CALM = {"features.0": (10.0, 1.0)}  # a step of lr x 1 against weights of norm 10


def test_layer_norms_are_the_norms_of_each_weight_and_its_gradient():
    model = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
    loss = (model(tinynet.Tensor(np.ones((5, 4), np.float32))) ** 2).sum()
    loss.backward()
    norms = layer_norms(model)
    assert list(norms) == ["0", "2"]  # layers with a weight; biases are left out
    weight, grad = norms["2"]
    assert weight == pytest.approx(np.linalg.norm(model[2].weight.data))
    assert grad == pytest.approx(np.linalg.norm(model[2].weight.grad))


def test_the_guard_names_the_step_and_a_loss_far_above_an_even_guess():
    guard = DivergenceGuard(num_classes=10)
    assert guard.check(0, 2.5, 0.01, CALM) is None
    warning = guard.check(1, 15.4, 0.01, CALM | {"classifier.6": (2.2, 80.0)})
    assert warning.startswith("step 1: the loss is 15.4, over 3 x ln(10) = 6.91, the loss of an even guess; "
                              "classifier.6 has the largest gradient for its size, norm 80 against weights of norm 2.2")
    assert "--warmup" in warning and "--record-norms" in warning


def test_the_guard_names_a_layer_whose_step_is_larger_than_its_weights():
    guard = DivergenceGuard(num_classes=10)
    warning = guard.check(3, 2.3, 0.01, CALM | {"classifier.0": (60.0, 7000.0)})
    assert warning.startswith("step 3: classifier.0's step, lr 0.01 x gradient norm 7e+03 = 70, is larger than its "
                              "weights (norm 60)")


def test_the_guard_warns_once_and_only_in_the_first_steps():
    guard = DivergenceGuard(num_classes=10)
    assert guard.check(WATCH_STEPS, 50.0, 0.01, CALM) is None  # past the first steps
    assert guard.check(5, 50.0, 0.01, CALM) is not None
    assert guard.check(6, 50.0, 0.01, CALM) is None  # said once is enough


def test_the_recorder_keeps_a_row_every_few_steps():
    recorder = NormRecorder(every=3)
    for step in range(7):
        if recorder.due(step):
            recorder.record(step, 2.0 - step / 10, 0.01, {"fc": (1.0, 0.5)})
    assert [row["step"] for row in recorder.rows] == [0, 3, 6]
    assert recorder.rows[1] == {"step": 3, "loss": pytest.approx(1.7), "lr": 0.01, "fc.weight": 1.0, "fc.grad": 0.5}
    with pytest.raises(ValueError, match="every >= 1"):
        NormRecorder(every=0)


def read_norms(run_dir):
    with open(run_dir / "norms.csv") as file:
        return list(csv.DictReader(file))


def test_record_norms_writes_norms_csv_and_png_beside_the_metrics(image_folder, tmp_path):
    assert run("train", "--data", image_folder, *TINY, "--record-norms", 2, "--run-dir", tmp_path / "run") == 0
    rows = read_norms(tmp_path / "run")
    assert [int(row["step"]) for row in rows] == [0, 2, 4]  # 24 images in batches of 4: steps 0..5
    assert {"loss", "lr", "features.0.weight", "features.0.grad", "classifier.6.grad"} <= set(rows[0])
    assert all(math.isfinite(float(value)) for row in rows for value in row.values())
    assert (tmp_path / "run" / "norms.png").stat().st_size > 0


def test_a_resumed_run_keeps_its_norms_without_a_gap_or_a_repeat(image_folder, tmp_path, monkeypatch):
    common = ["--data", image_folder, *TINY, "--epochs", 2, "--record-norms", 1]
    assert run("train", *common, "--run-dir", tmp_path / "straight") == 0
    assert run("train", *common[:-4], "--epochs", 1, "--record-norms", 1, "--run-dir", tmp_path / "resumed") == 0
    # The resumed run keeps the interval it started with.
    assert run("train", *common[:-2], "--record-norms", 5, "--run-dir", tmp_path / "resumed", "--resume") == 0
    straight, resumed = read_norms(tmp_path / "straight"), read_norms(tmp_path / "resumed")
    assert [row["step"] for row in resumed] == [str(step) for step in range(12)]
    assert resumed == straight
    arrays, meta = load_checkpoint(tmp_path / "resumed" / "checkpoint.npz")
    assert arrays["norms"].shape == (12, len(meta["norm_columns"]))
    assert meta["norm_columns"][:3] == ["step", "loss", "lr"]


def test_norms_recorded_before_a_ctrl_c_mid_epoch_are_kept_once(image_folder, tmp_path, monkeypatch):
    common = ["--data", image_folder, *TINY, "--epochs", 2, "--record-norms", 1]
    assert run("train", *common, "--run-dir", tmp_path / "straight") == 0
    signal_after_steps(monkeypatch, signal.SIGINT, 8)  # two steps into epoch 2
    assert run("train", *common, "--run-dir", tmp_path / "resumed") == 130
    monkeypatch.undo()
    assert run("train", *common, "--run-dir", tmp_path / "resumed", "--resume") == 0
    assert read_norms(tmp_path / "resumed") == read_norms(tmp_path / "straight")


@pytest.mark.filterwarnings("ignore:overflow:RuntimeWarning", "ignore:invalid value:RuntimeWarning")
def test_a_run_that_blows_up_is_warned_about_once_before_it_stops(image_folder, tmp_path, capsys):
    """lr 0.5 from the first step: the run blows up (the loss is NaN within a few steps),
    and the guard has said so once before it stops."""
    assert run("train", "--data", image_folder, *TINY, "--warmup", 0, "--lr", 0.5, "--run-dir", tmp_path / "run") == 1
    err = capsys.readouterr().err
    assert err.count("warning: step ") == 1 and "training may be diverging" in err and "--warmup 100" in err
    assert err.index("warning: step ") < err.index("training stopped: the loss became nan")


def test_asking_a_finished_run_for_no_more_epochs_rewrites_its_lost_norms(image_folder, tmp_path):
    assert run("train", "--data", image_folder, *TINY, "--record-norms", 2, "--run-dir", tmp_path / "run") == 0
    kept = read_norms(tmp_path / "run")
    (tmp_path / "run" / "norms.csv").unlink()  # as a kill between the checkpoint's rename and the CSV's would
    assert run("train", "--data", image_folder, *TINY, "--run-dir", tmp_path / "run", "--resume") == 0
    assert read_norms(tmp_path / "run") == kept
