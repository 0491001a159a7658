"""Training on an image folder: the Fashion-MNIST folder script, the recipes, and the
folder's own pixel statistics."""

import csv
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import alexnet
import tinynet
from tinynet import experiment, functional, optim
from tinynet.checkpoint import load_checkpoint, save_checkpoint
from tinynet.data import transforms
from tinynet.data.fashion_folder import write_fashion_mnist_folder
from tinynet.experiment import batch_preparer, image_data

from .cli import TINY, run

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "fashion_mnist_folder.py"


def build_folder(out, *flags):
    """Run the folder script; returns what it printed."""
    done = subprocess.run([sys.executable, str(SCRIPT), str(out), *map(str, flags)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_the_script_builds_an_imagenet_layout_folder_of_colour_jpegs(tmp_path):
    out = build_folder(tmp_path / "folder", "--train-per-class", 3, "--val-per-class", 2, "--image-size", 64,
                       "--idx-folder", tmp_path / "no-such-folder")
    assert "30 training and 20 validation images of 64x64, 10 classes, from the Fashion-MNIST subset shipped" in out
    for split, count in (("train", 3), ("val", 2)):
        classes = sorted(path.name for path in (tmp_path / "folder" / split).iterdir())
        assert classes == sorted(name.replace("/", "-") for name in tinynet.data.FASHION_MNIST_CLASSES)
        files = sorted((tmp_path / "folder" / split).glob("*/*.jpg"))
        assert len(files) == 10 * count
    with Image.open(files[0]) as image:
        assert image.format == "JPEG" and image.mode == "RGB" and image.size == (64, 64)
        pixels = np.asarray(image, np.float64)
    assert pixels.reshape(-1, 3).std(axis=0).min() > 1  # a garment on a background, not a flat colour


def test_the_script_writes_the_same_files_every_time_and_refuses_a_full_folder(tmp_path):
    flags = ("--train-per-class", 1, "--val-per-class", 1, "--image-size", 48, "--idx-folder", tmp_path / "none")
    build_folder(tmp_path / "a", *flags)
    build_folder(tmp_path / "b", *flags)
    for first in sorted((tmp_path / "a").rglob("*.jpg")):
        assert first.read_bytes() == (tmp_path / "b" / first.relative_to(tmp_path / "a")).read_bytes()
    done = subprocess.run([sys.executable, str(SCRIPT), str(tmp_path / "a")], capture_output=True, text=True)
    assert done.returncode == 2 and "exists and is not empty" in done.stderr


def test_the_images_differ_in_colour_placement_and_scale(tmp_path):
    build_folder(tmp_path / "f", "--train-per-class", 4, "--val-per-class", 1, "--image-size", 64,
                 "--idx-folder", tmp_path / "none")
    images = [np.asarray(Image.open(path), np.float64) for path in sorted((tmp_path / "f" / "train").glob("*/*.jpg"))]
    backgrounds = np.array([image[:3, :3].reshape(-1, 3).mean(axis=0) for image in images])  # corners are background
    assert backgrounds.std(axis=0).min() > 10  # each channel varies from image to image
    bright = [np.argwhere(image.max(axis=2) > image[:3, :3].max() + 40) for image in images]
    boxes = np.array([[*points.min(axis=0), *points.max(axis=0)] for points in bright if len(points)])
    assert boxes[:, 0].std() > 1 and (boxes[:, 2] - boxes[:, 0]).std() > 1  # where, and how large


def saved_config(run_dir):
    return load_checkpoint(run_dir / "checkpoint.npz")[1]["config"]


def test_a_folder_run_normalises_with_its_training_images_own_statistics(image_folder, tmp_path):
    assert run("train", "--data", image_folder, *TINY, "--run-dir", tmp_path / "run") == 0
    config = saved_config(tmp_path / "run")
    # The small preset sees images rescaled to 32x32 before its 28x28 crops.
    rescale = transforms.Compose([transforms.Resize(32), transforms.CenterCrop(32), transforms.ToCHW()])
    images = [rescale(Image.open(path).convert("RGB")) for path in (image_folder / "train").glob("*/*")]
    pixels = np.concatenate([image.reshape(3, -1) for image in images], axis=1) / 255
    np.testing.assert_allclose(config["mean"], pixels.mean(axis=1), atol=1e-5)
    np.testing.assert_allclose(config["std"], pixels.std(axis=1), atol=1e-5)
    eigenvalues, eigenvectors = config["pca_basis"]
    np.testing.assert_allclose(np.square(eigenvalues).sum(), pixels.var(axis=1).sum(), rtol=1e-4)
    assert np.abs(np.asarray(config["mean"]) - transforms.IMAGENET_MEAN).max() > 0.05


def test_eval_scores_with_the_statistics_the_run_trained_with(image_folder, tmp_path, capsys):
    assert run("train", "--data", image_folder, *TINY, "--run-dir", tmp_path / "run") == 0
    with open(tmp_path / "run" / "metrics.csv") as file:
        last = list(csv.DictReader(file))[-1]
    capsys.readouterr()
    assert run("eval", "--checkpoint", tmp_path / "run" / "checkpoint.npz", "--quiet") == 0
    out = capsys.readouterr().out
    assert f"loss {float(last['val_loss']):.4f}" in out and f"top-1 {float(last['val_acc']):.2%}" in out


def test_the_folder_recipe_is_the_default_and_the_paper_recipe_is_one_flag_away(image_folder, tmp_path):
    assert run("train", "--data", image_folder, *TINY, "--run-dir", tmp_path / "folder") == 0
    assert run("train", "--data", image_folder, *TINY, "--recipe", "paper", "--run-dir", tmp_path / "paper") == 0
    folder, paper = saved_config(tmp_path / "folder"), saved_config(tmp_path / "paper")
    assert (folder["recipe"], folder["init"], folder["warmup"], folder["lr"]) == ("folder", "kaiming", 100, 0.01)
    assert (paper["recipe"], paper["init"], paper["warmup"], paper["lr"]) == ("paper", "paper", 0, 0.01)
    assert folder["pca"] and paper["pca"] and folder["schedule"] == paper["schedule"] == "plateau"


def test_an_explicit_init_overrides_the_recipes(image_folder, tmp_path):
    assert run("train", "--data", image_folder, *TINY, "--init", "pytorch", "--run-dir", tmp_path / "run") == 0
    assert saved_config(tmp_path / "run")["init"] == "pytorch"


def test_a_resumed_run_refuses_another_recipe(image_folder, tmp_path, capsys):
    assert run("train", "--data", image_folder, *TINY, "--run-dir", tmp_path / "run") == 0
    capsys.readouterr()
    code = run("train", "--data", image_folder, *TINY, "--epochs", 2, "--recipe", "paper", "--run-dir",
               tmp_path / "run", "--resume")
    assert code == 2 and "--recipe paper would change the run" in capsys.readouterr().err


def first_losses(recipe, x, y, steps=10):
    """The paper preset's training losses over ``steps`` SGD steps of one batch, started
    and driven as ``recipe`` says (its init, learning rate and warm-up)."""
    settings = alexnet.RECIPES[recipe]
    tinynet.manual_seed(0)
    model = alexnet.AlexNet("paper", num_classes=10, init=settings["init"])
    optimizer = optim.SGD(model.parameters(), lr=settings["lr"], momentum=0.9, weight_decay=5e-4, update="paper")
    warmup = optim.LinearLR(optimizer, 1 / settings["warmup"], total_iters=settings["warmup"]) if settings[
        "warmup"] else None
    losses = []
    for _ in range(steps):
        loss = functional.cross_entropy(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if warmup is not None:
            warmup.step()
        losses.append(loss.item())
    return losses


@pytest.mark.slow
def test_the_folder_recipe_learns_where_the_papers_literal_recipe_blows_up(tmp_path):
    """Twenty Fashion-MNIST JPEGs, two per class, as one batch: the folder recipe lowers
    the loss; the paper's N(0, 0.01) start with biases of 1 at lr 0.01 leaps to many
    times ln(10) within a few steps (README, "Training on an image folder")."""
    write_fashion_mnist_folder(tmp_path / "folder", train_per_class=2, val_per_class=1)
    data = image_data(tmp_path / "folder", 227, batch_size=20)
    images, labels = next(iter(data.train))
    x, y = batch_preparer(data.mean, data.std, "cpu")(images, labels, 0)
    even_guess = math.log(10)

    folder = first_losses("folder", x, y)
    assert max(folder) < 2 * even_guess
    assert np.mean(folder[-3:]) < np.mean(folder[:3]) - 0.25

    paper = first_losses("paper", x, y)
    assert max(paper) > 3 * even_guess


def test_a_folder_run_trains_from_worker_processes_and_validates_from_threads(image_folder):
    """Validation processes would sit idle through every training epoch beside the training ones."""
    data = image_data(image_folder, 32, batch_size=4, workers=2)
    assert (data.train.worker_type, data.train.num_workers) == ("process", 2)
    assert (data.val.worker_type, data.val.num_workers) == ("thread", 2)
    assert image_data(image_folder, 32, batch_size=4, workers=2, val_only=True).val.worker_type == "thread"


def test_a_resumed_folder_run_keeps_the_statistics_it_started_with(image_folder, tmp_path, monkeypatch):
    assert run("train", "--data", image_folder, *TINY, "--run-dir", tmp_path / "run") == 0

    def recompute(*args):
        raise AssertionError("a resumed run recomputed the folder's statistics")

    before = saved_config(tmp_path / "run")
    monkeypatch.setattr(experiment, "training_statistics", recompute)
    assert run("train", "--data", image_folder, *TINY, "--epochs", 2, "--run-dir", tmp_path / "run", "--resume") == 0
    after = saved_config(tmp_path / "run")
    assert [after[key] for key in ("mean", "std", "pca_basis")] == [before[key] for key in ("mean", "std", "pca_basis")]


def test_a_resumed_run_on_the_embedded_data_takes_the_default_recipe(tmp_path):
    flags = ["--limit", 64, "--batch-size", 32, "--quiet", "--run-dir", tmp_path / "run"]
    assert run("train", "--epochs", 1, *flags) == 0
    assert saved_config(tmp_path / "run")["recipe"] == "default"
    assert run("train", "--epochs", 2, *flags, "--resume") == 0


def test_eval_reads_a_paper_checkpoint_written_with_torchvisions_dropout_order(tmp_path):
    """Older paper-preset checkpoints name fc6 and fc7 classifier.1 and .4; they load as .0 and .3."""
    model = alexnet.AlexNet("paper", num_classes=10, init="kaiming")
    old_names = {"classifier.0": "classifier.1", "classifier.3": "classifier.4"}
    arrays = {}
    for name, array in model.state_dict().items():
        layer, _, kind = name.rpartition(".")
        arrays[f"model.{old_names.get(layer, layer)}.{kind}"] = array
    config = dict(preset="paper", num_classes=10, in_channels=3, input_size=227, classes=list("abcdefghij"),
                  mean=[0.5] * 3, std=[0.25] * 3, data=None)
    save_checkpoint(tmp_path / "old.npz", arrays, {"config": config})
    args = alexnet.parse_args(["predict", "--checkpoint", str(tmp_path / "old.npz"), "x.jpg"])
    loaded, _ = alexnet.load_model(args)
    for name, array in model.state_dict().items():
        np.testing.assert_array_equal(loaded.state_dict()[name], array)
