"""Fashion-MNIST as an ImageNet-layout folder of colour JPEGs, for training on real files offline.

``write_fashion_mnist_folder`` writes train/CLASS/*.jpg and val/CLASS/*.jpg, the layout of
ImageNet and Imagenette, so a run on it is a run on a real labelled folder: every image is
decoded from JPEG, rescaled, cropped and normalised as an ImageNet photo would be.

Training images come from Fashion-MNIST's training set and validation images from its
test set, so no garment is in both. Each 28x28 grey garment is drawn large, at a random
scale and position, in a random colour on a random background, darker on average: a net must learn
shapes, not one colour or one place, and the colour pipeline (per-channel statistics, PCA
lighting) sees real RGB variation. An image depends only on its index and a fixed seed,
so every run writes the same files.
"""

from pathlib import Path

import numpy as np
from PIL import Image

from .fashion_mnist import FASHION_MNIST_CLASSES, load_fashion_mnist
from .formats import read_idx

# Where Debian's dataset-fashion-mnist package puts all 70,000 images.
DEBIAN_IDX = Path("/usr/share/datasets/fashion-mnist")
SEED = 2012


def load_grey_garments(idx_folder=DEBIAN_IDX):
    """(train_images, train_labels, test_images, test_labels, source): uint8 (N, 28, 28)
    images from the IDX files in ``idx_folder`` if it has them, else the subset shipped
    with tinynet, and a few words naming which."""
    if idx_folder is not None and (Path(idx_folder) / "train-images-idx3-ubyte.gz").is_file():
        arrays = [read_idx(Path(idx_folder) / f"{prefix}-{kind}-idx{dims}-ubyte.gz")
                  for prefix in ("train", "t10k") for kind, dims in (("images", 3), ("labels", 1))]
        return (*arrays, f"the Fashion-MNIST files in {idx_folder}")
    train_x, train_y, test_x, test_y = load_fashion_mnist()
    return train_x[:, 0], train_y, test_x[:, 0], test_y, "the Fashion-MNIST subset shipped with tinynet"


def render(garment, rng, side):
    """One grey 28x28 garment as a side x side RGB image: scaled, placed and coloured at random."""
    scale = int(rng.uniform(0.55, 1.0) * side)
    alpha = np.asarray(Image.fromarray(garment).resize((scale, scale), Image.Resampling.BICUBIC), np.float32) / 255
    top, left = rng.integers(0, side - scale + 1, size=2)
    mask = np.zeros((side, side, 1), np.float32)
    mask[top:top + scale, left:left + scale, 0] = alpha
    background = rng.uniform(0.0, 0.45, size=3)  # darker than the garment on average, as in the originals
    garment_colour = rng.uniform(0.35, 1.0, size=3)
    image = background * (1 - mask) + garment_colour * mask
    image += rng.normal(0.0, 0.02, size=image.shape)  # sensor-like noise, so no area is exactly flat
    return Image.fromarray((np.clip(image, 0, 1) * 255).round().astype(np.uint8))


def write_split(folder, images, labels, per_class, seed, side):
    """The first ``per_class`` images of every class (fewer where the source has fewer) as
    folder/CLASS/NNNNN.jpg, NNNNN being the index in the source; returns how many."""
    count = 0
    for label, name in enumerate(FASHION_MNIST_CLASSES):
        class_folder = Path(folder) / name.replace("/", "-")
        class_folder.mkdir(parents=True, exist_ok=True)
        indices = np.flatnonzero(labels == label)[:per_class]
        for index in indices:
            rng = np.random.default_rng([seed, int(index)])
            render(images[index], rng, side).save(class_folder / f"{index:05d}.jpg", quality=90)
        count += len(indices)
    return count


def write_fashion_mnist_folder(out, train_per_class=1000, val_per_class=200, image_size=256, idx_folder=DEBIAN_IDX):
    """Write the folder; returns (training images, validation images, source in words)."""
    if min(train_per_class, val_per_class) < 1 or image_size < 28:
        raise ValueError(f"expected at least 1 image per class in each split and an image size of at least 28; got "
                         f"{train_per_class}, {val_per_class} and {image_size}")
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise FileExistsError(f"{out} exists and is not empty: choose a new folder")
    train_x, train_y, test_x, test_y, source = load_grey_garments(idx_folder)
    train = write_split(out / "train", train_x, train_y, train_per_class, SEED, image_size)
    val = write_split(out / "val", test_x, test_y, val_per_class, SEED + 1, image_size)
    return train, val, source
