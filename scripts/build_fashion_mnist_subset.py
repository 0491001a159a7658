"""Build tinynet/data/fashion_mnist_subset.npz, the small Fashion-MNIST set shipped with tinynet.

Usage, from the repository root, with the folder holding Fashion-MNIST's four IDX files
(train-images-idx3-ubyte.gz and the others; Debian's dataset-fashion-mnist package puts them
in /usr/share/datasets/fashion-mnist):

    python -m scripts.build_fashion_mnist_subset /usr/share/datasets/fashion-mnist

It keeps 2,000 training images per class from the official training set and 200 test images
per class from the official test set, chosen with a fixed seed, so running it again writes
the same arrays. The original indices are stored beside the images, so that every sample can
be traced back to the official files.
"""

import argparse
from pathlib import Path

import numpy as np

from tinynet.data.formats import read_idx

SEED = 2012
TRAIN_PER_CLASS = 2000
TEST_PER_CLASS = 200
OUTPUT = Path(__file__).resolve().parent.parent / "tinynet" / "data" / "fashion_mnist_subset.npz"


def read_split(folder, prefix):
    """Images (N, 1, 28, 28) uint8 and labels (N,) uint8 of one official split."""
    images = read_idx(folder / f"{prefix}-images-idx3-ubyte.gz")
    labels = read_idx(folder / f"{prefix}-labels-idx1-ubyte.gz")
    if images.shape[1:] != (28, 28) or len(images) != len(labels):
        raise ValueError(f"{folder}: {prefix} images {images.shape} and labels {labels.shape} "
                         "are not Fashion-MNIST's")
    return images[:, None], labels


def balanced_indices(labels, per_class, rng):
    """`per_class` indices of each class drawn without replacement, in ascending order."""
    chosen = [rng.choice(np.flatnonzero(labels == label), per_class, replace=False)
              for label in range(10)]
    return np.sort(np.concatenate(chosen))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("idx_folder", type=Path, help="folder with Fashion-MNIST's IDX .gz files")
    parser.add_argument("--output", type=Path, default=OUTPUT)
    args = parser.parse_args()

    rng = np.random.default_rng(SEED)
    arrays = {}
    for split, prefix, per_class in (("train", "train", TRAIN_PER_CLASS),
                                     ("test", "t10k", TEST_PER_CLASS)):
        images, labels = read_split(args.idx_folder, prefix)
        indices = balanced_indices(labels, per_class, rng)
        arrays[f"{split}_images"] = images[indices]
        arrays[f"{split}_labels"] = labels[indices]
        arrays[f"{split}_indices"] = indices.astype(np.uint16)  # 0..59,999 fits in 16 bits
    np.savez_compressed(args.output, **arrays)
    print(f"wrote {args.output} ({args.output.stat().st_size / 2**20:.1f} MiB)")


if __name__ == "__main__":
    main()
