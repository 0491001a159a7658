"""A training run around a model: its data pipeline, its saved state, its epochs.

``image_data`` builds the loaders for the embedded Fashion-MNIST subset or an
ImageNet-style folder; ``save_training_state`` and ``restore_training_state`` put a
whole run (weights, optimizer, schedule, progress, random state, configuration) in
one checkpoint and take it back exactly; ``fit`` runs the epochs, checkpointing
after each one and on Ctrl-C, and keeps metrics.csv and curves.png up to date.
"""

import contextlib
import csv
import signal
import threading
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from . import backend
from .checkpoint import load_checkpoint, save_checkpoint
from .data import (
    FASHION_MNIST_CLASSES,
    FASHION_MNIST_MEAN,
    FASHION_MNIST_STD,
    DataLoader,
    ImageFolder,
    TensorDataset,
    load_fashion_mnist,
    transforms,
)
from .optim import ReduceLROnPlateau
from .tensor import Tensor
from .train import NonFiniteLossError, evaluate, train_epoch
from .viz import plot_training_curves

EMBEDDED = "fashion-mnist"


@dataclass
class ImageData:
    train: DataLoader
    val: DataLoader
    classes: list
    in_channels: int
    mean: tuple
    std: tuple


def image_data(source, input_size, batch_size, seed=0, workers=0, val_crops=1, skip_bad=False, limit=None):
    """Loaders for the embedded set (``source == "fashion-mnist"``) or a folder holding
    ``train/`` and ``val/`` with one subfolder per class (the ImageNet layout).

    ``limit`` keeps that many training images, evenly spread over the set (so every
    class stays), for quick experiments.
    """
    if source == EMBEDDED:
        return _embedded(input_size, batch_size, seed, val_crops, limit)
    return _folder(Path(source), input_size, batch_size, seed, workers, val_crops, skip_bad, limit)


def _spread(count, limit):
    """``limit`` indices spread evenly over ``range(count)`` (all of them without a limit)."""
    if limit is None or limit >= count:
        return np.arange(count)
    return np.linspace(0, count - 1, limit).round().astype(np.int64)


def _embedded(input_size, batch_size, seed, val_crops, limit):
    if input_size != 28:
        raise ValueError(f"the embedded Fashion-MNIST images are 28x28; got --input-size {input_size}")
    if val_crops != 1:
        raise ValueError("ten-crop evaluation needs images larger than the crop; the embedded Fashion-MNIST "
                         "images are the 28x28 input itself: evaluate them without --ten-crop")
    train_x, train_y, test_x, test_y = load_fashion_mnist()
    keep = _spread(len(train_x), limit)
    train_x, train_y = train_x[keep], train_y[keep]
    # No augmentation: in a five-minute run the net underfits, and flips measured a
    # point worse; crops would cut off the edges that tell a sandal from a sneaker.
    train = TensorDataset(train_x, train_y)
    return ImageData(
        train=DataLoader(train, batch_size, shuffle=True, drop_last=True, seed=seed),
        val=DataLoader(TensorDataset(test_x, test_y), 500),
        classes=list(FASHION_MNIST_CLASSES), in_channels=1, mean=FASHION_MNIST_MEAN, std=FASHION_MNIST_STD,
    )


def _folder(root, input_size, batch_size, seed, workers, val_crops, skip_bad, limit):
    """Section 4.1: random crops and flips of the rescaled images for training, the
    centre crop (or ten crops) for validation."""
    for split in ("train", "val"):
        if not (root / split).is_dir():
            expected = f"{root}/train/CLASS/*.jpg and {root}/val/CLASS/*.jpg"
            raise FileNotFoundError(f"{root} has no {split}/ folder: expected {expected}")
    crop = [transforms.RandomCrop(input_size), transforms.RandomHorizontalFlip()]
    train = ImageFolder(root / "train", transforms.Compose(_rescale(input_size) + crop + [transforms.ToCHW()]),
                        skip_bad)
    val = ImageFolder(root / "val", eval_transform(input_size, val_crops), skip_bad)
    train.samples = [train.samples[i] for i in _spread(len(train.samples), limit)]
    train.targets = [label for _, label in train.samples]
    if len(train.classes) < 2:
        raise ValueError(f"{root / 'train'} has {len(train.classes)} class folder; a classifier needs at least 2")
    if val.classes != train.classes:
        raise ValueError(f"{root}: val/ classes {val.classes} differ from train/ classes {train.classes}")
    loader = dict(num_workers=workers, seed=seed)
    return ImageData(
        train=DataLoader(train, batch_size, shuffle=True, drop_last=True, **loader),
        val=DataLoader(val, max(1, batch_size // val_crops), **loader),
        classes=train.classes, in_channels=3, mean=transforms.IMAGENET_MEAN, std=transforms.IMAGENET_STD,
    )


def _rescale(input_size):
    """Section 2: images rescaled so the shorter side is 256, then the central 256x256.
    Small presets rescale to 8/7 of their input instead (32 for 28): the same margin."""
    side = 256 if input_size > 128 else round(input_size * 8 / 7)
    return [transforms.Resize(side), transforms.CenterCrop(side)]


def eval_transform(input_size, crops=1):
    """How validation and prediction see an image: the centre crop, or ten crops."""
    view = transforms.TenCrop(input_size) if crops == 10 else transforms.CenterCrop(input_size)
    return transforms.Compose(_rescale(input_size) + [view, transforms.ToCHW()])


def batch_preparer(mean, std, device, pca=False, seed=0):
    """``prepare(images, labels, step)``: uint8 batch -> float32 Tensor and labels on ``device``.

    PCA colour augmentation (section 4.1) draws from a generator of (seed, step), so a
    resumed run repeats it exactly.
    """
    normalise, lighting = transforms.Normalize(mean, std), transforms.PCALighting() if pca else None

    def prepare(images, labels, step):
        x = backend.to_device(images, device)
        if lighting is not None:
            x = lighting(x, np.random.default_rng([seed, step]))
        return Tensor(normalise(x)), backend.to_device(labels, device)

    return prepare


# -- checkpoints of a training run -----------------------------------------------------


def save_training_state(path, model, optimizer, scheduler, progress, config):
    """One atomic .npz: weights, velocities, schedule, progress (epoch, step, batch), RNG, config."""
    arrays = {f"model.{name}": array for name, array in model.state_dict().items()}
    optimizer_state = optimizer.state_dict()
    arrays.update({f"optimizer.{k}": v for k, v in optimizer_state.items() if k.startswith("velocity.")})
    meta = {
        "config": config,
        "progress": progress,
        "optimizer": {k: v for k, v in optimizer_state.items() if not k.startswith("velocity.")},
        "scheduler": scheduler.state_dict() if scheduler is not None else None,
        "rng": backend.get_rng_state(),
    }
    save_checkpoint(path, arrays, meta)


def read_training_state(path):
    """(arrays, meta) of a training checkpoint, refusing files that are not one."""
    arrays, meta = load_checkpoint(path)
    if "config" not in meta or "progress" not in meta:
        raise ValueError(f"{path} is a checkpoint, but not of a training run (no config/progress)")
    return arrays, meta


def restore_training_state(arrays, meta, model, optimizer=None, scheduler=None):
    """Load what ``save_training_state`` wrote; returns the saved progress dict."""
    model.load_state_dict({k[len("model."):]: v for k, v in arrays.items() if k.startswith("model.")})
    if optimizer is not None:
        velocities = {k[len("optimizer."):]: v for k, v in arrays.items() if k.startswith("optimizer.")}
        optimizer.load_state_dict(meta["optimizer"] | velocities)
    if scheduler is not None and meta["scheduler"] is not None:
        scheduler.load_state_dict(meta["scheduler"])
    backend.set_rng_state(meta["rng"])
    return meta["progress"]


# -- the training loop of a run ----------------------------------------------------------


class CheckpointMismatchError(ValueError):
    """A checkpoint from a run with another preset, class count or input size."""


def check_same_model(checkpoint, saved, config):
    for key in ("preset", "num_classes", "in_channels", "input_size"):
        if saved[key] != config[key]:
            raise CheckpointMismatchError(
                f"{checkpoint} was trained with {key}={saved[key]!r}, this run has {config[key]!r}; "
                "use another run folder or the same settings"
            )


def fit(model, data, optimizer, scheduler, run_dir, config, epochs, prepare_train, prepare_val,
        resume=False, progress=True):
    """Train for ``epochs`` epochs in all, evaluating and checkpointing after each.

    Returns "done", or "interrupted" after a Ctrl-C (the state is saved at a step
    boundary and ``resume=True`` continues exactly). A NaN or infinite loss raises
    NonFiniteLossError naming the step and the last good checkpoint.
    """
    checkpoint = Path(run_dir) / "checkpoint.npz"
    state = {"epoch": 0, "step": 0, "batch": 0}
    if resume:
        arrays, meta = read_training_state(checkpoint)
        check_same_model(checkpoint, meta["config"], config)
        state = restore_training_state(arrays, meta, model, optimizer, scheduler)
        data.train.epoch, data.train.start_batch = state["epoch"], state["batch"]
    with _stop_at_step_boundary_on_ctrl_c() as stop:
        for epoch in range(state["epoch"], epochs):
            position = dict(state)

            def after_step(step, position=position):
                position.update(step=step + 1, batch=position["batch"] + 1)
                if stop.requested:
                    raise _StopRequested

            try:
                stats = train_epoch(model, data.train, optimizer, prepare_train, state["step"], after_step,
                                    progress, description=f"epoch {epoch + 1}/{epochs}")
            except _StopRequested:  # raised between steps, so the state is consistent
                save_training_state(checkpoint, model, optimizer, scheduler, position, config)
                return "interrupted"
            except NonFiniteLossError as error:
                last = f"{checkpoint} (epoch {state['epoch']})" if checkpoint.exists() else "none yet"
                error.args = (f"{error}; the last good checkpoint is {last}",)
                raise
            val = evaluate(model, data.val, prepare_val, progress=progress)
            lr = optimizer.lr  # the rate this epoch trained with, before the schedule moves it
            _step_scheduler(scheduler, val)
            state = {"epoch": epoch + 1, "step": position["step"], "batch": 0}
            save_training_state(checkpoint, model, optimizer, scheduler, state, config)
            record_epoch(Path(run_dir), epoch + 1, stats, val, lr)
    return "done"


class _StopRequested(Exception):
    """Raised after a step when Ctrl-C asked the run to stop."""


@contextlib.contextmanager
def _stop_at_step_boundary_on_ctrl_c():
    """The first Ctrl-C asks the loop to stop after the current step, so the saved
    state is never half-updated; a second one interrupts at once, saving nothing
    (the checkpoint of the last finished epoch stays as it was)."""
    stop = SimpleNamespace(requested=False)
    if threading.current_thread() is not threading.main_thread():
        yield stop  # signal handlers can only be set from the main thread
        return

    def request_stop(signum, frame):
        stop.requested = True
        signal.signal(signal.SIGINT, previous)

    previous = signal.signal(signal.SIGINT, request_stop)
    try:
        yield stop
    finally:
        signal.signal(signal.SIGINT, previous)


def _step_scheduler(scheduler, val):
    if isinstance(scheduler, ReduceLROnPlateau):
        scheduler.step(1 - val["top1"])  # the paper watched the validation error rate
    elif scheduler is not None:
        scheduler.step()


def record_epoch(run_dir, epoch, stats, val, lr):
    """Print the epoch's line, append it to metrics.csv and redraw curves.png."""
    row = dict(epoch=epoch, train_loss=stats["loss"], train_acc=stats["top1"], val_loss=val["loss"],
               val_acc=val["top1"], val_top5=val["top5"], lr=lr, images_per_second=stats["images_per_second"])
    print(f"epoch {epoch}: train loss {row['train_loss']:.4f} acc {row['train_acc']:.2%} | val loss "
          f"{row['val_loss']:.4f} top-1 {row['val_acc']:.2%} top-5 {row['val_top5']:.2%} | "
          f"{row['images_per_second']:.0f} img/s, lr {lr:g}", flush=True)
    metrics = run_dir / "metrics.csv"
    new = not metrics.exists()
    with metrics.open("a", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=list(row))
        if new:
            writer.writeheader()
        writer.writerow(row)
    with metrics.open(newline="") as file:
        plot_training_curves(list(csv.DictReader(file)), path=run_dir / "curves.png")
