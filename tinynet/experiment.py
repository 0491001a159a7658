"""A training run around a model: its data pipeline, its saved state, its epochs.

``image_data`` builds the loaders for the embedded Fashion-MNIST subset or an
ImageNet-style folder; ``save_training_state`` and ``restore_training_state`` put a
whole run (weights, optimizer, schedule, progress, random state, configuration) in
one checkpoint and take it back exactly; ``fit`` runs the epochs in a RunFolder,
checkpointing after each one and on Ctrl-C or SIGTERM, refusing to save weights
that are no longer finite, and rebuilding metrics.csv and curves.png from the
checkpoint each time.
"""

import contextlib
import signal
import threading
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from . import backend
from .checkpoint import CheckpointError, load_checkpoint, load_checkpoint_meta, save_checkpoint
from .data import (
    FASHION_MNIST_CLASSES,
    FASHION_MNIST_MEAN,
    FASHION_MNIST_STD,
    BadImageError,
    DataLoader,
    ImageFolder,
    TensorDataset,
    load_fashion_mnist,
    transforms,
)
from .optim import ReduceLROnPlateau
from .tensor import Tensor
from .train import NonFiniteError, check_finite_weights, evaluate, new_totals, train_epoch

EMBEDDED = "fashion-mnist"


@dataclass
class ImageData:
    train: DataLoader
    val: DataLoader
    classes: list
    in_channels: int
    mean: tuple
    std: tuple

    @property
    def skipped(self):
        """Paths of the unreadable images that ``skip_bad`` left out, in both splits."""
        return [path for loader in (self.train, self.val) if loader is not None
                for path in getattr(loader.dataset, "skipped", [])]


def image_data(source, input_size, batch_size, seed=0, workers=0, val_crops=1, skip_bad=False, limit=None,
               val_only=False, progress=False):
    """Loaders for the embedded set (``source == "fashion-mnist"``) or a folder holding
    ``train/`` and ``val/`` with one subfolder per class (the ImageNet layout).

    ``limit`` keeps that many training images, evenly spread over the set (so every
    class stays), for quick experiments. ``val_only`` builds the validation loader
    alone (``train`` is None), for evaluation. Every image of a folder is decoded once
    before anything else, so an unreadable file stops a run at its start rather than
    an epoch into it; ``skip_bad`` leaves such files out instead (``skipped`` lists them).
    """
    if source == EMBEDDED:
        return _embedded(input_size, batch_size, seed, val_crops, limit, val_only)
    return _folder(Path(source), input_size, batch_size, seed, workers, val_crops, skip_bad, limit, val_only,
                   progress)


def _spread(count, limit):
    """``limit`` indices spread evenly over ``range(count)`` (all of them without a limit)."""
    if limit is None or limit >= count:
        return np.arange(count)
    return np.linspace(0, count - 1, limit).round().astype(np.int64)


def _embedded(input_size, batch_size, seed, val_crops, limit, val_only):
    if input_size != 28:
        raise ValueError(f"the embedded Fashion-MNIST images are 28x28; got --input-size {input_size}")
    if val_crops != 1:
        raise ValueError("ten-crop evaluation needs images larger than the crop; the embedded Fashion-MNIST "
                         "images are the 28x28 input itself: evaluate them without --ten-crop")
    train_x, train_y, test_x, test_y = load_fashion_mnist()
    keep = _spread(len(train_x), limit)
    # No augmentation: in a five-minute run the net underfits, and flips measured a
    # point worse; crops would cut off the edges that tell a sandal from a sneaker.
    train = TensorDataset(train_x[keep], train_y[keep])
    return ImageData(
        train=None if val_only else DataLoader(train, batch_size, shuffle=True, drop_last=True, seed=seed),
        val=DataLoader(TensorDataset(test_x, test_y), 500),
        classes=list(FASHION_MNIST_CLASSES), in_channels=1, mean=FASHION_MNIST_MEAN, std=FASHION_MNIST_STD,
    )


def _folder(root, input_size, batch_size, seed, workers, val_crops, skip_bad, limit, val_only, progress):
    """Section 4.1: random crops and flips of the rescaled images for training, the
    centre crop (or ten crops) for validation."""
    for split in ("val",) if val_only else ("train", "val"):
        if not (root / split).is_dir():
            expected = f"{root}/train/CLASS/*.jpg and {root}/val/CLASS/*.jpg"
            raise FileNotFoundError(f"{root} has no {split}/ folder: expected {expected}")
    val = ImageFolder(root / "val", eval_transform(input_size, val_crops), skip_bad)
    train = None
    if not val_only:
        crop = [transforms.RandomCrop(input_size), transforms.RandomHorizontalFlip()]
        train = ImageFolder(root / "train", transforms.Compose(_rescale(input_size) + crop + [transforms.ToCHW()]),
                            skip_bad)
        train.samples = [train.samples[i] for i in _spread(len(train.samples), limit)]
        train.targets = [label for _, label in train.samples]
        if len(train.classes) < 2:
            raise ValueError(f"{root / 'train'} has {len(train.classes)} class folder; a classifier needs at least 2")
        if val.classes != train.classes:
            raise ValueError(f"{root}: val/ classes {val.classes} differ from train/ classes {train.classes}")
    _check_images([folder for folder in (train, val) if folder is not None], skip_bad, workers, progress)
    loader = dict(num_workers=workers, seed=seed)
    return ImageData(
        train=None if val_only else DataLoader(train, batch_size, shuffle=True, drop_last=True, **loader),
        val=DataLoader(val, max(1, batch_size // val_crops), **loader),
        classes=val.classes, in_channels=3, mean=transforms.IMAGENET_MEAN, std=transforms.IMAGENET_STD,
    )


def _check_images(folders, skip_bad, workers, progress):
    """Decode every image once; refuse the first unreadable one, or leave them all out."""
    for folder in folders:
        bad = folder.unreadable(workers, progress)
        if bad and not skip_bad:
            more = f" (and {len(bad) - 1} more unreadable in {folder.root})" if len(bad) > 1 else ""
            raise BadImageError(bad[0].path, f"{bad[0].reason}{more}; skip_bad (--skip-bad) leaves such files out")
        folder.leave_out([error.path for error in bad])
        if not folder.samples:
            raise ValueError(f"{folder.root}: none of its {len(bad)} images can be read")


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


def save_training_state(path, model, optimizer, scheduler, progress, config, history=()):
    """One atomic .npz: weights, velocities, schedule, progress (epoch, step, batch and
    the running totals of an unfinished epoch), the metrics of every finished epoch
    (``history``), RNG, config."""
    arrays = {f"model.{name}": array for name, array in model.state_dict().items()}
    optimizer_state = optimizer.state_dict()
    arrays.update({f"optimizer.{k}": v for k, v in optimizer_state.items() if k.startswith("velocity.")})
    meta = {
        "config": config,
        "progress": progress,
        "history": list(history),
        "optimizer": {k: v for k, v in optimizer_state.items() if not k.startswith("velocity.")},
        "scheduler": scheduler.state_dict() if scheduler is not None else None,
        "rng": backend.get_rng_state(),
    }
    save_checkpoint(path, arrays, meta)


def read_training_state(path):
    """(arrays, meta) of a training checkpoint, refusing files that are not one."""
    arrays, meta = load_checkpoint(path)
    return arrays, _training_meta(path, meta)


def read_training_meta(path):
    """The metadata of a training checkpoint (config, progress, history), without its arrays."""
    return _training_meta(path, load_checkpoint_meta(path))


def _training_meta(path, meta):
    missing = [key for key in ("config", "progress", "optimizer", "scheduler", "rng") if key not in meta]
    if missing:
        raise CheckpointError(f"{path} is a checkpoint, but not of a training run (no {', '.join(missing)})")
    return meta


def model_state(arrays):
    """The model's weights among a checkpoint's arrays, where they are saved as "model.NAME"."""
    return {name[len("model."):]: array for name, array in arrays.items() if name.startswith("model.")}


def restore_training_state(arrays, meta, model, optimizer=None, scheduler=None):
    """Load what ``save_training_state`` wrote; returns the saved progress dict."""
    model.load_state_dict(model_state(arrays))
    if optimizer is not None:
        velocities = {k[len("optimizer."):]: v for k, v in arrays.items() if k.startswith("optimizer.")}
        optimizer.load_state_dict(meta["optimizer"] | velocities)
    if scheduler is not None and meta["scheduler"] is not None:
        scheduler.load_state_dict(meta["scheduler"])
    backend.set_rng_state(meta["rng"])
    return meta["progress"]


class CheckpointMismatchError(ValueError):
    """A checkpoint from a run with another preset, class count or input size."""


def check_same_model(checkpoint, saved, config):
    for key in ("preset", "num_classes", "in_channels", "input_size"):
        if saved[key] != config[key]:
            raise CheckpointMismatchError(
                f"{checkpoint} was trained with {key}={saved[key]!r}, this run has {config[key]!r}; "
                "use another run folder or the same settings"
            )


# -- the training loop of a run ----------------------------------------------------------


def fit(model, data, optimizer, scheduler, run, config, epochs, prepare_train, prepare_val,
        resume=False, progress=True):
    """Train for ``epochs`` epochs in all, evaluating and checkpointing after each.

    ``run`` is an open RunFolder. Returns "done", or the name of the signal (SIGINT
    for Ctrl-C, SIGTERM) that stopped the run: the state is then saved at a step
    boundary, with the unfinished epoch's running totals, and ``resume=True``
    continues exactly. A NaN or infinity in the loss or the weights raises
    NonFiniteError naming the step and the last good checkpoint; no checkpoint is
    ever written with non-finite weights.
    """
    state, history = {"epoch": 0, "step": 0, "batch": 0, "totals": None}, []
    if resume:
        arrays, meta = read_training_state(run.checkpoint)
        check_same_model(run.checkpoint, meta["config"], config)
        state = restore_training_state(arrays, meta, model, optimizer, scheduler)
        history = meta.get("history", [])
        run.write_results(history)  # a kill between the checkpoint's rename and the metrics' loses no row
        data.train.epoch, data.train.start_batch = state["epoch"], state["batch"]
    saved = _describe(run.checkpoint, state) if resume else None

    def refuse_nonfinite_weights(step):
        try:
            check_finite_weights(model, step)
        except NonFiniteError as error:
            raise _naming_last_good(error, saved) from None

    def save(progress_now):
        nonlocal saved
        refuse_nonfinite_weights(progress_now["step"] - 1)
        try:
            save_training_state(run.checkpoint, model, optimizer, scheduler, progress_now, config, history)
            run.write_results(history)
        except OSError as error:  # a full disk, say: every file in the folder is still whole
            raise SaveError(f"could not write to {run.path}: {error.strerror or error}; the last good "
                            f"checkpoint is {saved or NONE_SAVED}") from error
        saved = _describe(run.checkpoint, progress_now)

    with _stop_at_step_boundary() as stop:
        for epoch in range(state["epoch"], epochs):
            position = dict(state, totals=state.get("totals") or new_totals())

            def after_step(step, position=position):
                position.update(step=step + 1, batch=position["batch"] + 1)
                if stop.signal is not None:
                    raise _StopRequested

            try:
                stats = train_epoch(model, data.train, optimizer, prepare_train, state["step"], after_step,
                                    progress, description=f"epoch {epoch + 1}/{epochs}", totals=position["totals"])
            except _StopRequested:  # raised between steps, so the state is consistent
                save(position)
                return stop.signal
            except NonFiniteError as error:
                raise _naming_last_good(error, saved) from None
            refuse_nonfinite_weights(position["step"] - 1)  # before evaluating them
            val = evaluate(model, data.val, prepare_val, progress=progress)
            history.append(_metrics_row(epoch + 1, stats, val, optimizer.lr))
            _step_scheduler(scheduler, val)  # after the row, which records the rate this epoch trained with
            state = {"epoch": epoch + 1, "step": position["step"], "batch": 0, "totals": None}
            save(state)
            _print_row(history[-1])
    return "done"


NONE_SAVED = "none: no checkpoint was written yet"


def _describe(checkpoint, progress):
    """Where a checkpoint stands, in words: "runs/x/checkpoint.npz (after 40 steps: epoch 2 done)"."""
    steps = progress["step"]
    if progress["batch"] == 0:
        return f"{checkpoint} (after {steps} steps: epoch {progress['epoch']} done)"
    return f"{checkpoint} (after {steps} steps, {progress['batch']} into epoch {progress['epoch'] + 1})"


def _naming_last_good(error, saved):
    error.args = (f"{error}; the last good checkpoint is {saved or NONE_SAVED}",)
    return error


class SaveError(RuntimeError):
    """A checkpoint or the metrics could not be written (a full disk, say)."""


class _StopRequested(Exception):
    """Raised after a step when Ctrl-C or SIGTERM asked the run to stop."""


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


@contextlib.contextmanager
def _stop_at_step_boundary():
    """The first Ctrl-C (SIGINT) or SIGTERM asks the loop to stop after the current step,
    so the saved state is never half-updated; ``stop.signal`` then names it. A second
    signal acts at once, as it would without this block (Ctrl-C raises KeyboardInterrupt),
    saving nothing: every checkpoint on disk is whole, so nothing is lost but the steps
    since the last one."""
    stop = SimpleNamespace(signal=None)
    if threading.current_thread() is not threading.main_thread():
        yield stop  # signal handlers can only be set from the main thread
        return
    previous = {number: signal.getsignal(number) for number in STOP_SIGNALS}

    def request_stop(number, frame):
        stop.signal = signal.Signals(number).name
        for each, handler in previous.items():
            signal.signal(each, handler)

    for number in STOP_SIGNALS:
        signal.signal(number, request_stop)
    try:
        yield stop
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


def _step_scheduler(scheduler, val):
    if isinstance(scheduler, ReduceLROnPlateau):
        scheduler.step(1 - val["top1"])  # the paper watched the validation error rate
    elif scheduler is not None:
        scheduler.step()


def _metrics_row(epoch, stats, val, lr):
    return dict(epoch=epoch, train_loss=stats["loss"], train_acc=stats["top1"], val_loss=val["loss"],
                val_acc=val["top1"], val_top5=val["top5"], lr=lr, images_per_second=stats["images_per_second"])


def _print_row(row):
    print(f"epoch {row['epoch']}: train loss {row['train_loss']:.4f} acc {row['train_acc']:.2%} | val loss "
          f"{row['val_loss']:.4f} top-1 {row['val_acc']:.2%} top-5 {row['val_top5']:.2%} | "
          f"{row['images_per_second']:.0f} img/s, lr {row['lr']:g}", flush=True)
