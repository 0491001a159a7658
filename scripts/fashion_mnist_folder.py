"""Build an ImageNet-layout folder of 256x256 colour JPEGs from Fashion-MNIST, offline.

    python scripts/fashion_mnist_folder.py data/fashion-folder
    python alexnet.py train --data data/fashion-folder

The folder holds train/CLASS/*.jpg and val/CLASS/*.jpg, the layout of ImageNet and
Imagenette, so a run on it is a run on a real labelled folder: every image is decoded
from JPEG, rescaled, cropped and normalised as an ImageNet photo would be.

The images come from Debian's dataset-fashion-mnist package (all 70,000) when it is
installed, else from the 22,000 images shipped with tinynet. Training images come from
Fashion-MNIST's training set and validation images from its test set, so no garment is
in both. Each 28x28 grey garment is rendered large, at a random scale and position, in a
random colour on a random darker background: a net must learn shapes, not one colour or
one place, and the colour pipeline (per-channel statistics, PCA lighting) sees real RGB
variation. A fixed seed makes every run of the script write the same files.
"""

import argparse
from pathlib import Path

import numpy as np
from PIL import Image

from tinynet.data import FASHION_MNIST_CLASSES, load_fashion_mnist, read_idx

DEBIAN_IDX = Path("/usr/share/datasets/fashion-mnist")
SEED = 2012


def load_source(idx_folder):
    """(train_images, train_labels, test_images, test_labels) as uint8 (N, 28, 28) and int labels."""
    if idx_folder is not None and (idx_folder / "train-images-idx3-ubyte.gz").is_file():
        return tuple(read_idx(idx_folder / f"{prefix}-{kind}-idx{dims}-ubyte.gz")
                     for prefix in ("train", "t10k") for kind, dims in (("images", 3), ("labels", 1)))
    train_x, train_y, test_x, test_y = load_fashion_mnist()
    return train_x[:, 0], train_y, test_x[:, 0], test_y


def first_per_class(labels, per_class):
    """Indices of the first ``per_class`` images of each class, or fewer where the source has fewer."""
    return [np.flatnonzero(labels == label)[:per_class] for label in range(len(FASHION_MNIST_CLASSES))]


def render(garment, rng, side):
    """One grey 28x28 garment as a side x side RGB image: scaled, placed and coloured at random."""
    scale = int(rng.uniform(0.55, 1.0) * side)
    alpha = np.asarray(Image.fromarray(garment).resize((scale, scale), Image.Resampling.BICUBIC), np.float32) / 255
    top, left = rng.integers(0, side - scale + 1, size=2)
    mask = np.zeros((side, side, 1), np.float32)
    mask[top:top + scale, left:left + scale, 0] = alpha
    background = rng.uniform(0.0, 0.45, size=3)  # darker than the garment, as in the originals
    garment_colour = rng.uniform(0.35, 1.0, size=3)
    image = background * (1 - mask) + garment_colour * mask
    image += rng.normal(0.0, 0.02, size=image.shape)  # sensor-like noise, so no two pixels are exactly flat
    return Image.fromarray((np.clip(image, 0, 1) * 255).round().astype(np.uint8))


def write_split(folder, images, labels, per_class, seed, side):
    """Render ``per_class`` images of every class into folder/CLASS/NNNNN.jpg; returns the count."""
    count = 0
    for label, indices in enumerate(first_per_class(labels, per_class)):
        class_folder = folder / FASHION_MNIST_CLASSES[label].replace("/", "-")
        class_folder.mkdir(parents=True, exist_ok=True)
        for index in indices:
            rng = np.random.default_rng([seed, int(index)])  # an image depends on its index alone
            render(images[index], rng, side).save(class_folder / f"{index:05d}.jpg", quality=90)
        count += len(indices)
    return count


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="folder to create, with train/ and val/ inside")
    parser.add_argument("--train-per-class", type=int, default=1000,
                        help="training images per class (default 1000, 10,000 in all)")
    parser.add_argument("--val-per-class", type=int, default=200,
                        help="validation images per class (default 200, 2,000 in all)")
    parser.add_argument("--image-size", type=int, default=256, help="side of the square JPEGs (default 256)")
    parser.add_argument("--idx-folder", type=Path, default=DEBIAN_IDX,
                        help=f"folder with Fashion-MNIST's IDX .gz files (default {DEBIAN_IDX}, if present)")
    args = parser.parse_args(argv)
    if min(args.train_per_class, args.val_per_class) < 1 or args.image_size < 28:
        parser.error("expected at least 1 image per class in each split and an image size of at least 28")
    if args.out.exists() and any(args.out.iterdir()):
        parser.error(f"{args.out} exists and is not empty: choose a new folder")
    train_x, train_y, test_x, test_y = load_source(args.idx_folder)
    source = "Debian's dataset-fashion-mnist" if len(train_x) == 60_000 else "the Fashion-MNIST subset in tinynet"
    made = {split: write_split(args.out / split, images, labels, per_class, SEED + offset, args.image_size)
            for offset, (split, images, labels, per_class) in enumerate(
                (("train", train_x, train_y, args.train_per_class), ("val", test_x, test_y, args.val_per_class)))}
    print(f"{args.out}: {made['train']:,} training and {made['val']:,} validation images of "
          f"{args.image_size}x{args.image_size}, 10 classes, from {source}")


if __name__ == "__main__":
    main()
