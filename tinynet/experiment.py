"""A training run around a model: its data pipeline and its saved state.

``image_data`` builds the loaders for the embedded Fashion-MNIST subset or an
ImageNet-style folder; ``save_training_state`` and ``restore_training_state`` put a
whole run (weights, optimizer, schedule, progress, random state, configuration) in
one checkpoint and take it back exactly. ``training_run.fit`` runs the epochs.
"""

import hashlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

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
    Subset,
    TensorDataset,
    load_fashion_mnist,
    read_rgb,
    transforms,
)
from .data.distributed_sampler import DistributedSampler
from .tensor import Tensor

EMBEDDED = "fashion-mnist"


@dataclass
class ImageData:
    train: DataLoader
    val: DataLoader
    classes: list
    in_channels: int
    mean: tuple  # per channel on the 0..1 scale: the training images' own for a folder
    std: tuple
    pca: tuple = None  # (eigenvalues, eigenvectors) of the training images' RGB, for PCALighting
    fingerprint: str = None  # of the training samples, to tell on resume whether they are the same

    @property
    def val_size(self):
        """How many validation images there are in all (under mpiexec a rank loads its share)."""
        dataset = self.val.dataset
        return len(dataset.dataset) if isinstance(dataset, Subset) else len(dataset)

    @property
    def skipped(self):
        """Paths of the unreadable images that ``skip_bad`` left out, in both splits."""
        return [path for loader in (self.train, self.val) if loader is not None
                for path in getattr(loader.dataset, "skipped", None) or []]


def image_data(source, input_size, batch_size, seed=0, workers=0, val_crops=1, skip_bad=False, limit=None,
               val_only=False, classes=None, progress=False, statistics=None, shard=(0, 1)):
    """Loaders for the embedded set (``source == "fashion-mnist"``) or a folder holding
    ``train/`` and ``val/`` with one subfolder per class (the ImageNet layout).

    ``limit`` keeps that many training images, evenly spread over the set (so every
    class stays), for quick experiments. ``val_only`` builds the validation loader
    alone (``train`` is None), for evaluation; ``classes``, the class names a model was
    trained on, refuses a folder of other classes. Every image of a folder is decoded
    once before anything else, so an unreadable file stops a run at its start rather
    than an epoch into it; ``skip_bad`` leaves such files out instead (``skipped`` lists
    them). A folder's pixel statistics (``training_statistics``) are computed from its
    training images unless ``statistics`` gives them (a resumed run's, as saved).

    ``shard`` = (rank, world_size) under mpiexec: each rank loads its share of every global
    batch of ``batch_size`` images (a DistributedSampler) and of the validation images.
    """
    if source == EMBEDDED:
        data = _embedded(input_size, batch_size, seed, val_crops, limit, val_only, shard)
        check_same_classes(data.classes, classes, source)
        return data
    return _folder(Path(source), input_size, batch_size, seed, workers, val_crops, skip_bad, limit, val_only,
                   classes, progress, statistics, shard)


def check_same_classes(found, expected, source):
    """Output i of a model means its class i: a data set of other classes cannot be scored."""
    if expected is None or list(found) == list(expected):
        return
    missing, extra = [c for c in expected if c not in found], [c for c in found if c not in expected]
    parts = [f"it lacks {', '.join(missing[:3])}"] * bool(missing) + [f"it adds {', '.join(extra[:3])}"] * bool(extra)
    difference = "; ".join(parts) or "the same names in another order"
    raise ValueError(f"{source} has {len(found)} classes and the model was trained on {len(expected)}: {difference}; "
                     "use data of the classes it was trained on")


def _spread(count, limit):
    """``limit`` indices spread evenly over ``range(count)`` (all of them without a limit)."""
    if limit is None or limit >= count:
        return np.arange(count)
    return np.linspace(0, count - 1, limit).round().astype(np.int64)


def _training_loader(dataset, batch_size, seed, shard, **options):
    """Shuffled full batches, the same every run of one seed. Under mpiexec, each rank loads
    batch_size / world_size images of each global batch (DistributedSampler): together the
    ranks see at each step the batch one process would."""
    rank, world_size = shard
    if world_size == 1:
        return DataLoader(dataset, batch_size, shuffle=True, drop_last=True, seed=seed, **options)
    sampler = DistributedSampler(dataset, world_size, rank, shuffle=True, seed=seed, drop_last=True)
    return DataLoader(dataset, batch_size // world_size, drop_last=True, seed=seed, sampler=sampler, **options)


def _share(dataset, shard):
    """A rank's share of the validation images: every world_size-th one (none repeated, so
    that the summed metrics count each image once)."""
    rank, world_size = shard
    return dataset if world_size == 1 else Subset(dataset, range(rank, len(dataset), world_size))


def _embedded(input_size, batch_size, seed, val_crops, limit, val_only, shard):
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
        train=None if val_only else _training_loader(train, batch_size, seed, shard),
        val=DataLoader(_share(TensorDataset(test_x, test_y), shard), 500),
        classes=list(FASHION_MNIST_CLASSES), in_channels=1, mean=FASHION_MNIST_MEAN, std=FASHION_MNIST_STD,
        fingerprint=_fingerprint([EMBEDDED, *map(str, keep)]),
    )


def _folder(root, input_size, batch_size, seed, workers, val_crops, skip_bad, limit, val_only, classes, progress,
            statistics, shard):
    """Section 4.1: random crops and flips of the rescaled images for training, the
    centre crop (or ten crops) for validation."""
    splits = ("val",) if val_only else ("train", "val")
    for split in splits:
        if not (root / split).is_dir():
            expected = " and ".join(f"{root}/{name}/CLASS/*.jpg" for name in splits)
            raise FileNotFoundError(f"{root} has no {split}/ folder: expected {expected}")
    val = ImageFolder(root / "val", eval_transform(input_size, val_crops), skip_bad)
    check_same_classes(val.classes, classes, root)
    train = None
    if not val_only:
        train = ImageFolder(root / "train", train_transform(input_size), skip_bad)
        train.samples = [train.samples[i] for i in _spread(len(train.samples), limit)]
        train.targets = [label for _, label in train.samples]
        if len(train.classes) < 2:
            raise ValueError(f"{root / 'train'} has {len(train.classes)} class folder; a classifier needs at least 2")
        if val.classes != train.classes:
            raise ValueError(f"{root}: val/ classes {val.classes} differ from train/ classes {train.classes}")
    _check_images([folder for folder in (train, val) if folder is not None], skip_bad, workers, progress)
    # Training loads with processes: threads stop gaining at about eight cores (the GIL), and
    # a GPU wants more. Validation loads with threads: processes of its own would sit idle
    # through every training epoch beside the training ones (32 processes for --workers 16),
    # where threads start with each pass; and most of its work, decoding at full size, runs
    # in Pillow without the GIL.
    val_loader = DataLoader(_share(val, shard), max(1, batch_size // val_crops), num_workers=workers, seed=seed,
                            worker_type="thread")
    if val_only:  # evaluation normalises with the statistics of the images the model trained on
        return ImageData(train=None, val=val_loader, classes=val.classes, in_channels=3, mean=None, std=None)
    if statistics is None:
        statistics = training_statistics(train, input_size, workers)
    return ImageData(
        train=_training_loader(train, batch_size, seed, shard, num_workers=workers, worker_type="process"),
        val=val_loader,
        classes=val.classes, in_channels=3, mean=statistics.mean, std=statistics.std,
        pca=(statistics.eigenvalues, statistics.eigenvectors),
        fingerprint=_fingerprint(
            [*train.classes] + [f"{Path(path).relative_to(root)}\t{label}" for path, label in train.samples]),
    )


# Training images whose pixels give a folder's statistics: a sample spread over the whole
# set pins the mean and spread of its pixels to about three decimals, where decoding a
# million ImageNet photos would take an hour.
STATISTICS_SAMPLE = 2000


def training_statistics(folder, input_size, workers=0):
    """transforms.RGBStatistics of the training images as the net sees them before
    cropping (rescaled to 256x256), from up to STATISTICS_SAMPLE of them."""
    rescale = transforms.Compose(_rescale(input_size) + [transforms.ToCHW()])
    paths = [folder.samples[i][0] for i in _spread(len(folder.samples), STATISTICS_SAMPLE)]
    chunk = 4 * max(1, workers)  # images in flight: a bounded number are ever held decoded
    with ThreadPoolExecutor(max(1, workers)) as pool:  # Pillow decodes without the GIL
        return transforms.rgb_statistics(
            image for start in range(0, len(paths), chunk)
            for image in pool.map(lambda path: rescale(read_rgb(path)), paths[start:start + chunk]))


def _fingerprint(lines):
    """A short digest of the lines that name a training set's samples, in order."""
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()[:16]


def _check_images(folders, skip_bad, workers, progress):
    """Decode every image once; refuse the first unreadable one, or leave them all out."""
    for folder in folders:
        bad = folder.unreadable(workers, progress)
        if bad and not skip_bad:
            more = f" (and {len(bad) - 1} more unreadable in {folder.root})" if len(bad) > 1 else ""
            raise BadImageError(bad[0].path, f"{bad[0].reason}{more}; --skip-bad leaves such files out")
        folder.leave_out([error.path for error in bad])
        if not folder.samples:
            raise ValueError(f"{folder.root}: none of its {len(bad)} images can be read")


def _rescale(input_size):
    """Section 2: images rescaled so the shorter side is 256, then the central 256x256.
    Small presets rescale to 8/7 of their input instead (32 for 28): the same margin."""
    side = 256 if input_size > 128 else round(input_size * 8 / 7)
    return [transforms.Resize(side), transforms.CenterCrop(side)]


def train_transform(input_size):
    """Section 4.1: a random crop of the rescaled image (_rescale), flipped half the time;
    RescaledRandomCrop resamples only the crop's box, in one step, and lets a large JPEG
    decode in draft mode (ImageFolder), which only training does: its pixels differ a little
    from a full decode's."""
    side = _rescale(input_size)[0].size
    return transforms.Compose([transforms.RescaledRandomCrop(side, input_size), transforms.RandomHorizontalFlip(),
                               transforms.ToCHW()])


def eval_transform(input_size, crops=1):
    """How validation and prediction see an image: the centre crop, or ten crops. Decoded at
    full size (none of its steps asks for draft decoding), resized then cropped, two
    resamplings as torchvision does, so that a network imported from torchvision sees exactly
    the pixels it was trained to see."""
    view = transforms.TenCrop(input_size) if crops == 10 else transforms.CenterCrop(input_size)
    return transforms.Compose(_rescale(input_size) + [view, transforms.ToCHW()])


def batch_preparer(mean, std, device, pca=None, seed=0, rank=0):
    """``prepare(images, labels, step)``: uint8 batch -> float32 Tensor and labels on ``device``.

    ``pca``, the (eigenvalues, eigenvectors) of the training images' colours, turns on
    PCA colour augmentation (section 4.1). It draws from a generator of (seed, step), and of
    the rank under mpiexec (rank 0 draws as one process does), so a resumed run repeats it
    exactly and each rank's images get their own colours.
    """
    key = [seed] if rank == 0 else [seed, rank]
    normalise, lighting = transforms.Normalize(mean, std), transforms.PCALighting(*pca) if pca else None

    def prepare(images, labels, step):
        x = backend.to_device(images, device)
        if lighting is not None:
            x = lighting(x, np.random.default_rng([*key, step]))
        return Tensor(normalise(x)), backend.to_device(labels, device)

    return prepare


# -- checkpoints of a training run -----------------------------------------------------


def save_training_state(path, model, optimizer, scheduler, progress, config, history=(), warmup=None, norms=(),
                        rank_rngs=None):
    """One atomic .npz: weights, velocities, schedule and warm-up, progress (epoch, step,
    batch and the running totals of an unfinished epoch), the metrics of every finished
    epoch (``history``), the rows of layer norms recorded so far (``norms``), RNG, config.
    ``rank_rngs``, under mpiexec, holds every rank's generator state, so that each rank's
    dropout draws continue on resume."""
    arrays = {f"model.{name}": array for name, array in model.state_dict().items()}
    optimizer_state = optimizer.state_dict()  # flat: settings, and one array per state entry
    arrays.update({f"optimizer.{k}": v for k, v in optimizer_state.items() if _is_array(v)})
    meta = {
        "config": config,
        "progress": progress,
        "history": list(history),
        "optimizer": {k: v for k, v in optimizer_state.items() if not _is_array(v)},
        "scheduler": scheduler.state_dict() if scheduler is not None else None,
        "warmup": warmup.state_dict() if warmup is not None else None,
        "rng": backend.get_rng_state(),
    }
    if rank_rngs is not None:
        meta["rank_rngs"] = list(rank_rngs)
    if norms:  # an array, not JSON: a long run records millions of numbers
        meta["norm_columns"] = list(norms[0])
        arrays["norms"] = np.array([[row[column] for column in meta["norm_columns"]] for row in norms], np.float64)
    save_checkpoint(path, arrays, meta)


def _is_array(value):
    return hasattr(value, "shape") and hasattr(value, "dtype")


def saved_norms(arrays, meta):
    """The rows of layer norms that ``save_training_state`` kept, as NormRecorder made them."""
    if "norms" not in arrays:
        return []
    columns = meta["norm_columns"]
    return [{column: int(value) if column == "step" else float(value) for column, value in zip(columns, row)}
            for row in arrays["norms"]]


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
    if "history" not in meta:
        raise CheckpointError(f"{path} was written by an older tinynet that kept no metrics history in it, so it "
                              "cannot be resumed without losing metrics.csv: start a new run (eval and predict "
                              "still read it)")
    return meta


def model_state(arrays):
    """The model's weights among a checkpoint's arrays, where they are saved as "model.NAME"."""
    return {name[len("model."):]: array for name, array in arrays.items() if name.startswith("model.")}


def restore_training_state(arrays, meta, model, optimizer=None, scheduler=None, warmup=None):
    """Load what ``save_training_state`` wrote; returns the saved progress dict."""
    model.load_state_dict(model_state(arrays))
    if optimizer is not None:
        state = {k[len("optimizer."):]: v for k, v in arrays.items() if k.startswith("optimizer.")}
        optimizer.load_state_dict(meta["optimizer"] | state)
    if scheduler is not None and meta["scheduler"] is not None:
        scheduler.load_state_dict(meta["scheduler"])
    if warmup is not None and meta.get("warmup") is not None:
        warmup.load_state_dict(meta["warmup"])
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
