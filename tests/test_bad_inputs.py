"""Bad input to alexnet.py: one line that names what was wrong, exit status 2, nothing lost.

Each case is a row of a table: how to make the bad input, the command line, and a piece of
the one-line message. Checks that can run before training do, so no case costs an epoch.
"""

import errno
import json
import os
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from PIL import Image

import alexnet
from tinynet import run_folder
from tinynet.checkpoint import load_checkpoint

from .cli import TINY, one_line_error, outcome


@pytest.fixture
def trained(image_folder, tmp_path, capsys):
    """A finished one-epoch run of the small preset on the image folder, at a constant
    learning rate (no warm-up): its run folder."""
    run_dir = tmp_path / "run"
    assert alexnet.main(["train", "--data", str(image_folder), *TINY, "--warmup", "0", "--run-dir", str(run_dir)]) == 0
    capsys.readouterr()
    return run_dir


# -- flags -------------------------------------------------------------------------------

FLAG_CASES = [
    (["--lr", "0"], "--lr: expected a number above 0, got 0"),
    (["--lr", "-1"], "--lr: expected a number above 0, got -1"),
    (["--lr", "nan"], "--lr: expected a number above 0, got nan"),
    (["--momentum", "-1"], "--momentum: expected a number at least 0, got -1"),
    (["--weight-decay", "-1"], "--weight-decay: expected a number at least 0, got -1"),
    (["--seed", "-1"], "--seed: expected a whole number at least 0, got -1"),
    (["--epochs", "0"], "--epochs: expected a whole number above 0, got 0"),
    (["--epochs", "-1"], "--epochs: expected a whole number above 0, got -1"),
    (["--lr-step", "0"], "--lr-step: expected a whole number above 0, got 0"),
    (["--batch-size", "0"], "--batch-size: expected a whole number above 0, got 0"),
    (["--limit", "0"], "--limit: expected a whole number above 0, got 0"),
    (["--patience", "-1"], "--patience: expected a whole number at least 0, got -1"),
    (["--workers", "two"], "--workers: expected a whole number at least 0, got 'two'"),
    (["--preset", "vgg"], "--preset: invalid choice: 'vgg'"),
]


@pytest.mark.parametrize("flags, message", FLAG_CASES, ids=[" ".join(flags) for flags, _ in FLAG_CASES])
def test_a_bad_flag_is_one_line_before_anything_runs(capsys, tmp_path, flags, message):
    err = one_line_error(capsys, "train", *flags, "--run-dir", tmp_path / "run")
    assert message in err and "alexnet.py train -h" in err
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("top", ["0", "-1"])
def test_predict_refuses_a_top_that_shows_nothing(capsys, top):
    assert "--top: expected a whole number above 0" in one_line_error(capsys, "predict", "x.jpg", "--checkpoint",
                                                                        "c.npz", "--top", top)


# -- image folders -----------------------------------------------------------------------


def not_an_image(path):
    path.write_text("not an image")


def zero_bytes(path):
    path.write_bytes(b"")


def truncated_jpeg(path):
    Image.fromarray(np.full((64, 64, 3), 128, np.uint8)).save(path, quality=90)
    path.write_bytes(path.read_bytes()[:300])


def over_the_size_limit(path):
    Image.new("L", (300, 300)).save(path)  # over twice the limit the test sets: a decompression bomb


BAD_IMAGES = [not_an_image, zero_bytes, truncated_jpeg, over_the_size_limit]


@pytest.mark.parametrize("split", ["train", "val"])
@pytest.mark.parametrize("make", BAD_IMAGES, ids=[make.__name__ for make in BAD_IMAGES])
def test_an_unreadable_image_stops_the_run_before_training(image_folder, tmp_path, capsys, monkeypatch, split, make):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 40_000)  # the 40x40 images pass, 300x300 is a bomb
    bad = image_folder / split / "class1" / "bad.jpg"
    make(bad)
    err = one_line_error(capsys, "train", "--data", image_folder, *TINY, "--run-dir", tmp_path / "run")
    assert f"cannot read image {bad}" in err and "--skip-bad" in err
    assert "epoch 1" not in capsys.readouterr().out
    assert not (tmp_path / "run" / "checkpoint.npz").exists()


def test_skip_bad_says_how_many_images_it_left_out(image_folder, tmp_path, capsys):
    not_an_image(image_folder / "train" / "class0" / "bad.jpg")
    zero_bytes(image_folder / "val" / "class2" / "empty.png")
    code, err = outcome(capsys, "train", "--data", image_folder, *TINY, "--skip-bad", "--run-dir", tmp_path / "run")
    assert code == 0
    assert "--skip-bad: left out 2 unreadable images" in err


def test_folders_that_are_not_image_folders(tmp_path, capsys):
    run_dir = ["--run-dir", tmp_path / "run"]
    assert "no train/ folder" in one_line_error(capsys, "train", "--data", tmp_path / "missing", *TINY, *run_dir)
    (tmp_path / "a-file").write_text("x")
    assert "no train/ folder" in one_line_error(capsys, "train", "--data", tmp_path / "a-file", *TINY, *run_dir)
    (tmp_path / "empty" / "train").mkdir(parents=True)
    (tmp_path / "empty" / "val").mkdir()
    assert "class subfolders" in one_line_error(capsys, "train", "--data", tmp_path / "empty", *TINY, *run_dir)
    for split in ("train", "val"):
        (tmp_path / "one" / split / "only").mkdir(parents=True)
        Image.new("RGB", (40, 40)).save(tmp_path / "one" / split / "only" / "a.png")
    assert "at least 2" in one_line_error(capsys, "train", "--data", tmp_path / "one", *TINY, *run_dir)


# -- the run folder ----------------------------------------------------------------------


def test_a_run_folder_that_cannot_be_written(image_folder, tmp_path, capsys, monkeypatch):
    (tmp_path / "a-file").write_text("x")
    err = one_line_error(capsys, "train", "--data", image_folder, *TINY, "--run-dir", tmp_path / "a-file")
    assert "cannot write the run folder" in err
    err = one_line_error(capsys, "train", "--data", image_folder, *TINY, "--run-dir", tmp_path / "a-file" / "run")
    assert "cannot write the run folder" in err and "Not a directory" in err
    # A read-only folder, as the system reports it (root may write anywhere, so it is simulated).
    real_open = os.open

    def read_only(path, flags, *args):
        if str(path).startswith(str(tmp_path / "locked")):
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return real_open(path, flags, *args)

    (tmp_path / "locked").mkdir()
    monkeypatch.setattr(os, "open", read_only)
    err = one_line_error(capsys, "train", "--data", image_folder, *TINY, "--run-dir", tmp_path / "locked")
    assert "cannot write the run folder" in err and "Permission denied" in err


def test_a_disk_too_full_for_the_checkpoint_is_refused_before_training(image_folder, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(run_folder.shutil, "disk_usage", lambda path: shutil._ntuple_diskusage(10**9, 10**9, 10**5))
    err = one_line_error(capsys, "train", "--data", image_folder, *TINY, "--run-dir", tmp_path / "run")
    assert "0 MB free" in err and "checkpoint of this run needs about" in err


def test_a_disk_that_fills_during_the_run_stops_it_in_one_line(trained, image_folder, capsys, monkeypatch):
    before = (trained / "checkpoint.npz").read_bytes()

    def full_disk(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(np, "savez", full_disk)
    code, err = outcome(capsys, "train", "--data", image_folder, *TINY, "--epochs", 2, "--run-dir", trained, "--resume")
    assert code == 1 and "\n" not in err.strip()
    assert "No space left on device" in err and "last good checkpoint is" in err and "epoch 1 done" in err
    assert (trained / "checkpoint.npz").read_bytes() == before
    assert not list(trained.glob(".*.tmp"))


def test_a_file_system_without_locks_is_named_not_called_busy(image_folder, tmp_path, capsys, monkeypatch):
    def no_locks(descriptor):
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(run_folder, "_lock_file", no_locks)
    err = one_line_error(capsys, "train", "--data", image_folder, *TINY, "--run-dir", tmp_path / "run")
    assert "cannot lock" in err and "No locks available" in err and "in use" not in err


def test_a_second_run_into_a_busy_folder_names_the_holder(image_folder, tmp_path, capsys):
    """Another process holds the folder: the run is refused with its PID, and goes once it ends."""
    holder = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(f"""
            import sys
            from tinynet.run_folder import RunFolder
            with RunFolder({str(tmp_path / "run")!r}):
                print("locked", flush=True)
                sys.stdin.read()
        """)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        err = one_line_error(capsys, "train", "--data", image_folder, *TINY, "--run-dir", tmp_path / "run")
        assert f"in use by another run (process {holder.pid}" in err
    finally:
        holder.communicate("")
    assert alexnet.main(["train", "--data", str(image_folder), *TINY, "--run-dir", str(tmp_path / "run")]) == 0


def test_metrics_without_a_checkpoint_are_not_appended_to(image_folder, trained, capsys):
    (trained / "checkpoint.npz").unlink()
    before = (trained / "metrics.csv").read_text()
    assert "already holds a run" in one_line_error(capsys, "train", "--data", image_folder, *TINY, "--run-dir", trained)
    assert (trained / "metrics.csv").read_text() == before


def test_stale_temporary_files_are_removed_on_start(image_folder, trained, capsys):
    (trained / ".checkpoint.npz.abc123.tmp").write_bytes(b"half a checkpoint")
    (trained / ".metrics.csv.def456.tmp").write_text("epoch")
    code, err = outcome(capsys, "train", "--data", image_folder, *TINY, "--epochs", 2, "--run-dir", trained,
                        "--resume")
    assert code == 0 and "removed 2 unfinished writes" in err
    assert not list(trained.glob(".*.tmp"))


# -- resuming ----------------------------------------------------------------------------

RESUME_CHANGES = [
    (["--batch-size", "8"], "--batch-size 8"),
    (["--limit", "12"], "--limit 12"),
    (["--seed", "5"], "--seed 5"),
    (["--preset", "torchvision"], "--preset torchvision"),
    (["--input-size", "24"], "--input-size 24"),
    (["--no-pca"], "--pca False"),
]


@pytest.mark.parametrize("flags, named", RESUME_CHANGES, ids=[flags[0] for flags, _ in RESUME_CHANGES])
def test_resume_refuses_a_flag_that_changes_the_trajectory(image_folder, trained, capsys, flags, named):
    before = (trained / "checkpoint.npz").read_bytes()
    argv = ["train", "--data", image_folder, *TINY, "--epochs", 2, *flags, "--run-dir", trained, "--resume"]
    err = one_line_error(capsys, *argv)
    assert f"{named} would change the run" in err and "drop" in err
    assert (trained / "checkpoint.npz").read_bytes() == before
    _, meta = load_checkpoint(trained / "checkpoint.npz")
    assert meta["config"]["seed"] == 0


def test_resumed_data_may_move_but_not_change(image_folder, trained, tmp_path, capsys):
    moved = tmp_path / "moved"
    shutil.copytree(image_folder, moved)
    code, _ = outcome(capsys, "train", "--data", moved, *TINY, "--epochs", 2, "--run-dir", trained, "--resume")
    assert code == 0
    shutil.copy(moved / "train" / "class0" / "0.jpg", moved / "train" / "class0" / "new.jpg")
    err = one_line_error(capsys, "train", "--data", moved, *TINY, "--epochs", 3, "--run-dir", trained, "--resume")
    assert f"the training images in {moved} are not those the run" in err


def test_resume_refuses_a_checkpoint_of_an_older_tinynet(image_folder, trained, capsys):
    arrays, meta = load_checkpoint(trained / "checkpoint.npz")
    del meta["history"]
    np.savez(trained / "checkpoint.npz", **arrays, __meta__=np.array(json.dumps(meta)))
    before = (trained / "metrics.csv").read_text()
    err = one_line_error(capsys, "train", "--data", image_folder, *TINY, "--epochs", 2, "--run-dir", trained,
                         "--resume")
    assert "written by an older tinynet" in err
    assert (trained / "metrics.csv").read_text() == before


def test_resuming_without_a_checkpoint_creates_nothing(tmp_path, capsys):
    err = one_line_error(capsys, "train", *TINY, "--run-dir", tmp_path / "none", "--resume")
    assert "no checkpoint at" in err and not (tmp_path / "none").exists()


def test_a_run_refused_for_bad_input_leaves_no_folder(tmp_path, capsys):
    one_line_error(capsys, "train", "--data", tmp_path / "missing", *TINY, "--run-dir", tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_eval_of_a_skip_bad_run_skips_as_the_run_did(image_folder, tmp_path, capsys):
    not_an_image(image_folder / "val" / "class0" / "bad.jpg")
    code, _ = outcome(capsys, "train", "--data", image_folder, *TINY, "--skip-bad", "--run-dir", tmp_path / "run")
    assert code == 0
    assert alexnet.main(["eval", "--checkpoint", str(tmp_path / "run" / "checkpoint.npz"), "--quiet"]) == 0
    assert "9 images (centre crop)" in capsys.readouterr().out
    err = one_line_error(capsys, "eval", "--checkpoint", tmp_path / "run" / "checkpoint.npz", "--no-skip-bad")
    assert "bad.jpg" in err


def test_resume_says_which_flags_it_ignores(image_folder, trained, capsys):
    code, err = outcome(capsys, "train", "--data", image_folder, *TINY, "--epochs", 2, "--lr", "0.5", "--momentum",
                        "0.5", "--run-dir", trained, "--resume")
    assert code == 0
    assert "ignoring --lr 0.5 (the run's is 0.01), --momentum 0.5 (the run's is 0.9)" in err
    _, meta = load_checkpoint(trained / "checkpoint.npz")
    group = meta["optimizer"]["param_groups"][0]
    assert group["lr"] == 0.01 and group["momentum"] == 0.9


def test_resume_without_the_data_flag_takes_the_runs_own(trained, capsys):
    code, _ = outcome(capsys, "train", "--epochs", 2, "--quiet", "--run-dir", trained, "--resume")
    assert code == 0
    assert [row["epoch"] for row in load_checkpoint(trained / "checkpoint.npz")[1]["history"]] == [1, 2]


def test_resume_of_a_finished_run_trains_no_more_and_repairs_its_metrics(image_folder, trained, capsys):
    (trained / "metrics.csv").unlink()  # as a kill between the last checkpoint and its metrics leaves it
    before = (trained / "checkpoint.npz").read_bytes()
    code, _ = outcome(capsys, "train", "--data", image_folder, *TINY, "--run-dir", trained, "--resume")
    assert code == 0
    assert (trained / "checkpoint.npz").read_bytes() == before
    assert (trained / "metrics.csv").read_text().splitlines()[1].startswith("1,")


# -- damaged checkpoints -----------------------------------------------------------------


def truncated(path):
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def bit_flipped(path):
    data = bytearray(path.read_bytes())
    data[len(data) // 3] ^= 0x10  # inside conv or fc weights: the member's CRC no longer matches
    path.write_bytes(bytes(data))


def random_bytes(path):
    path.write_bytes(np.random.default_rng(0).bytes(4096))


def bad_json_header(path):
    arrays, _ = load_checkpoint(path)
    np.savez(path, **arrays, __meta__=np.array("{not json"))


def not_a_training_checkpoint(path):
    np.savez(path, weights=np.zeros(3), __meta__=np.array(json.dumps({"note": "something else"})))


DAMAGE = [truncated, bit_flipped, random_bytes, bad_json_header, not_a_training_checkpoint]


@pytest.mark.parametrize("damage", DAMAGE, ids=[damage.__name__ for damage in DAMAGE])
def test_a_damaged_checkpoint_is_named_in_one_line(image_folder, trained, capsys, damage):
    checkpoint = trained / "checkpoint.npz"
    damage(checkpoint)
    image = next((image_folder / "val" / "class0").iterdir())
    for argv in (["eval", "--checkpoint", checkpoint, "--quiet"],
                 ["predict", image, "--checkpoint", checkpoint],
                 ["train", "--data", image_folder, *TINY, "--epochs", 2, "--run-dir", trained, "--resume"]):
        assert str(checkpoint) in one_line_error(capsys, *argv)


def test_a_checkpoint_missing_an_array_is_named_in_one_line(image_folder, trained, capsys):
    arrays, meta = load_checkpoint(trained / "checkpoint.npz")
    del arrays["model.features.0.bias"]
    np.savez(trained / "checkpoint.npz", **arrays, __meta__=np.array(json.dumps(meta)))
    for argv in (["eval", "--checkpoint", trained / "checkpoint.npz", "--quiet"],
                 ["train", "--data", image_folder, *TINY, "--epochs", 2, "--run-dir", trained, "--resume"]):
        err = one_line_error(capsys, *argv)
        assert str(trained / "checkpoint.npz") in err and "features.0.bias" in err


# -- evaluation, prediction and pictures -------------------------------------------------


def test_predict_eval_and_features_name_what_is_wrong(image_folder, trained, tmp_path, capsys):
    notes = tmp_path / "notes.jpg"
    notes.write_text("not an image")
    assert "notes.jpg" in one_line_error(capsys, "predict", notes, "--checkpoint", trained / "checkpoint.npz")
    assert "no checkpoint" in one_line_error(capsys, "eval", "--checkpoint", tmp_path / "nothing.npz")
    (tmp_path / "a-file").write_text("x")
    image = next((image_folder / "val" / "class0").iterdir())
    assert "a-file" in one_line_error(capsys, "features", image, "--checkpoint",
                                      trained / "checkpoint.npz", "--out-dir", tmp_path / "a-file")


def test_eval_refuses_a_folder_of_other_classes(image_folder, trained, tmp_path, capsys):
    checkpoint = trained / "checkpoint.npz"
    more = tmp_path / "more"
    shutil.copytree(image_folder, more)
    shutil.copytree(more / "val" / "class2", more / "val" / "class3")
    err = one_line_error(capsys, "eval", "--checkpoint", checkpoint, "--data", more, "--quiet")
    assert "4 classes" in err and "trained on 3" in err and "it adds class3" in err
    renamed = tmp_path / "renamed"
    shutil.copytree(image_folder, renamed)
    (renamed / "val" / "class2").rename(renamed / "val" / "blue")
    err = one_line_error(capsys, "eval", "--checkpoint", checkpoint, "--data", renamed, "--quiet")
    assert "it lacks class2; it adds blue" in err


def test_eval_needs_only_a_val_folder(image_folder, trained, tmp_path, capsys):
    shutil.copytree(image_folder / "val", tmp_path / "only-val" / "val")
    argv = ["eval", "--checkpoint", str(trained / "checkpoint.npz"), "--data", str(tmp_path / "only-val"), "--quiet"]
    assert alexnet.main(argv) == 0
    assert "9 images (centre crop)" in capsys.readouterr().out


def test_filters_into_a_folder_that_does_not_exist_yet(trained, tmp_path, capsys):
    out = tmp_path / "missing" / "filters.png"
    assert alexnet.main(["filters", "--checkpoint", str(trained / "checkpoint.npz"), "--out", str(out)]) == 0
    assert Image.open(out).size[0] > 100
    (tmp_path / "a-file").write_text("x")
    assert "a-file" in one_line_error(capsys, "filters", "--checkpoint", trained / "checkpoint.npz", "--out",
                                      tmp_path / "a-file" / "filters.png")


def test_an_interrupt_before_any_checkpoint_does_not_claim_one(image_folder, tmp_path, capsys, monkeypatch):
    """A second Ctrl-C acts at once (KeyboardInterrupt): the message must not speak of a checkpoint."""

    def interrupted(self):
        raise KeyboardInterrupt

    monkeypatch.setattr(alexnet.optim.SGD, "step", interrupted)
    code, err = outcome(capsys, "train", "--data", image_folder, *TINY, "--run-dir", tmp_path / "run")
    assert code == 130 and err == "interrupted at once: nothing was saved"
