"""Datasets: indexable collections of (image, label) samples.

A dataset's `load(index)` reads one raw sample; `get(index, rng)` also applies the dataset's
transform (and target_transform, to the label) with an explicit random generator, so that
augmentation is reproducible; a transform that takes no `rng` is called with the sample alone
(transforms.apply_transform). The
DataLoader calls `get` with a generator made by `sample_rng(seed, epoch, index)`: a sample's
augmentation then depends only on those three numbers, never on worker count or timing.
"""

import operator
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from ..tensor import Tensor
from .transforms import apply_transform

IMG_EXTENSIONS = (
    ".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm",
)


def sample_rng(seed, epoch, index):
    """The generator for one sample's augmentation in one epoch of a seeded run."""
    return np.random.default_rng([seed, epoch, index])


class BadImageError(ValueError):
    """An image file that Pillow cannot decode (truncated, corrupt, not an image, too large)."""

    def __init__(self, path, reason):
        super().__init__(path, reason)  # both in args, so the error survives pickling
        self.path = str(path)
        self.reason = reason

    def __str__(self):
        return f"cannot read image {self.path}: {self.reason}"


def read_rgb(path, min_side=None):
    """Decode an image file into an RGB PIL image, or raise BadImageError naming the file.

    With `min_side`, a JPEG at least twice that size on its shorter side decodes at 1/2, 1/4
    or 1/8 scale (Pillow's draft mode: the decoder skips the finest DCT coefficients, which
    saves most of its work), the smallest of them whose shorter side is still at least
    `min_side`; so a transform that rescales to `min_side` never sees fewer pixels than
    it keeps. Other formats, and smaller JPEGs, decode at full size.
    """
    if min_side is not None and (not isinstance(min_side, int) or min_side < 1):
        raise ValueError(f"read_rgb: min_side must be a positive whole number, got {min_side!r}")
    return _decode(path, min_side=min_side)


def check_image(path):
    """Decode ``path`` fast, to find out whether it can be read: returns None, or raises
    BadImageError. A JPEG decodes at 1/8 scale (Pillow's draft mode), which still reads
    every byte of it, so a truncated or damaged file fails as it would in training."""
    _decode(path, scale=8)


def _decode(path, scale=1, min_side=None):
    try:
        with Image.open(path) as image:
            if min_side is not None:  # draft picks the largest of 1/8, 1/4, 1/2 that keeps this size
                image.draft("RGB", (min_side, min_side))
            elif scale > 1:
                image.draft("RGB", (max(1, image.width // scale), max(1, image.height // scale)))
            image.load()  # decode now: a truncated file fails here, not later inside a transform
            # Grey, palette and CMYK images become 3 channels; RGB ones are kept, not copied.
            return image if image.mode == "RGB" else image.convert("RGB")
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as error:
        raise BadImageError(path, f"{type(error).__name__}: {error}") from error


# Images whose decoding check is handed to the threads at a time.
CHECK_CHUNK = 4096


def _check_quietly(path):
    try:
        check_image(path)
    except BadImageError as error:
        return error
    return None


class Dataset:
    """Base class: subclasses define `__len__` and `load(index) -> (image, label)`.

    As torch's Dataset, `dataset[i]` gives sample i; here transformed as in the first epoch of
    a DataLoader run with seed 0, so that it shows what training sees.
    """

    transform = None
    target_transform = None

    def __len__(self):
        raise NotImplementedError

    def load(self, index):
        raise NotImplementedError

    def get(self, index, rng):
        """Sample `index` with the transform applied, its randomness drawn from `rng`."""
        image, label = self.load(index)
        if self.transform is not None:
            image = apply_transform(self.transform, image, rng)
        if self.target_transform is not None:
            label = apply_transform(self.target_transform, label, rng)
        return image, label

    def __getitem__(self, index):
        """Sample `index` as the DataLoader gives it in epoch 0 of a run with seed 0."""
        index = operator.index(index)
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} is out of range for a dataset of {len(self)} samples")
        return self.get(index, sample_rng(0, 0, index))


class TensorDataset(Dataset):
    """Images and labels held in memory: sample i is (images[i], labels[i]).

    Given NumPy arrays (tinynet's way), an image is an array (usually uint8, for the
    transforms) and a label a Python number. Given Tensors, as torch's `TensorDataset(x, y)`,
    sample i is the pair of Tensors (x[i], y[i]), and the DataLoader gives Tensor batches.
    Integer labels become int64; others (regression targets) keep their dtype. Unlike torch's,
    it holds exactly two tensors: the third argument is the transform.
    """

    def __init__(self, images, labels, transform=None):
        if transform is not None and not callable(transform):
            raise TypeError(
                f"TensorDataset(images, labels, transform): the transform must be callable, got a "
                f"{type(transform).__name__}; tinynet's TensorDataset holds two tensors, inputs and targets"
            )
        self.as_tensors = isinstance(images, Tensor) or isinstance(labels, Tensor)
        images, labels = (x.data if isinstance(x, Tensor) else np.asarray(x) for x in (images, labels))
        if images.ndim == 0 or labels.ndim == 0 or len(images) != len(labels):
            raise ValueError(
                f"TensorDataset needs one label per image: got images of shape {images.shape} "
                f"and labels of shape {labels.shape}"
            )
        self.images = images
        self.labels = labels.astype(np.int64) if labels.dtype.kind in "iu" else labels
        self.transform = transform

    def __len__(self):
        return len(self.images)

    def load(self, index):
        image, label = self.images[index], self.labels[index]
        if self.as_tensors:
            return Tensor(image), Tensor(label)
        return image, label.item() if label.ndim == 0 else label


class ImageFolder(Dataset):
    """Images stored one folder per class, as ImageNet and Imagenette are: root/<class>/<image>.

    Classes are the subfolder names in sorted order, so label i is `classes[i]`. Images are
    decoded to RGB when loaded; when the transform has a `min_input_side` (a training
    transform starting with RescaledRandomCrop), a large JPEG decodes at the smallest draft
    scale that keeps it (read_rgb); with any other transform, at full size, as torchvision
    decodes it. `unreadable()` finds the files that cannot be decoded, and
    `leave_out()` drops them (a training run does both before it starts, so that its batches
    never change). A file that fails later, while loading, raises BadImageError; with
    `skip_bad=True` the DataLoader leaves it out of its batch instead, which is then smaller,
    and appends its path to `skipped`.
    """

    def __init__(self, root, transform=None, skip_bad=False, extensions=IMG_EXTENSIONS):
        self.root = Path(root)
        self.transform = transform
        self.skip_bad = skip_bad
        self.extensions = tuple(extension.lower() for extension in extensions)
        self.classes = self._find_classes()
        self.class_to_idx = {name: label for label, name in enumerate(self.classes)}
        self.samples = self._find_samples()
        self.targets = [label for _, label in self.samples]
        self.skipped = []

    def __len__(self):
        return len(self.samples)

    def load(self, index):
        path, label = self.samples[index]
        # A transform that says how large its input must be lets a large JPEG decode smaller.
        return read_rgb(path, getattr(self.transform, "min_input_side", None)), label

    def unreadable(self, workers=0, progress=False):
        """BadImageError for every image that cannot be decoded, in sample order;
        ``workers`` threads decode at once (Pillow releases the GIL while decoding)."""
        paths = [path for path, _ in self.samples]
        bad = []
        with ThreadPoolExecutor(max(1, workers)) as pool, \
                tqdm(total=len(paths), desc=f"checking {self.root}", unit="image", disable=not progress,
                     leave=False) as bar:
            for start in range(0, len(paths), CHECK_CHUNK):  # in chunks: a million pending tasks take gigabytes
                chunk = paths[start:start + CHECK_CHUNK]
                bad += [error for error in pool.map(_check_quietly, chunk) if error is not None]
                bar.update(len(chunk))
        return bad

    def leave_out(self, paths):
        """Drop the samples of ``paths`` and count them in ``skipped``."""
        dropped = set(paths)
        self.samples = [sample for sample in self.samples if sample[0] not in dropped]
        self.targets = [label for _, label in self.samples]
        known = set(self.skipped)
        self.skipped += [path for path in paths if path not in known]

    def _is_image(self, name):
        # Names starting with a dot are hidden files, such as the "._photo.jpg" resource forks
        # that macOS leaves beside copied images; they are not images.
        return not name.startswith(".") and name.lower().endswith(self.extensions)

    def _find_classes(self):
        if not self.root.is_dir():
            raise FileNotFoundError(f"image folder {self.root} does not exist or is not a folder")
        entries = [entry for entry in os.scandir(self.root) if not entry.name.startswith(".")]
        classes = sorted(entry.name for entry in entries if entry.is_dir())
        if classes:
            return classes
        expected = f"expected one subfolder per class: {self.root}/<class>/<image>.jpg"
        if any(self._is_image(entry.name) for entry in entries):
            raise ValueError(f"image folder {self.root} holds images but no class subfolders; {expected}")
        raise ValueError(f"image folder {self.root} has no class subfolders; {expected}")

    def _find_samples(self):
        samples, empty = [], []
        for label, name in enumerate(self.classes):
            paths = sorted(
                os.path.join(folder, file)
                for folder, _, files in os.walk(self.root / name, followlinks=True)
                for file in files
                if self._is_image(file)
            )
            samples += [(path, label) for path in paths]
            if not paths:
                empty.append(name)
        if empty:
            raise ValueError(
                f"image folder {self.root}: no images in the class folders {', '.join(empty)} "
                f"(looked for files ending in {', '.join(self.extensions)})"
            )
        return samples
