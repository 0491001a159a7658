"""A balanced subset of Fashion-MNIST shipped inside tinynet, so examples run without downloads.

Fashion-MNIST (Xiao, Rasul and Vollgraf, 2017) has 28x28 grey images of clothing in ten
classes. The shipped file holds 20,000 training images (2,000 per class) drawn from the
official training set and 2,000 test images (200 per class) from the official test set;
scripts/build_fashion_mnist_subset.py rebuilds it. Zalando SE publishes the data under the
MIT license, reproduced in FASHION_MNIST_LICENSE beside this file.

FashionMNIST is the dataset as torchvision's datasets.FashionMNIST gives it: the shipped subset
with no root, the full set from the official IDX files under a root.
"""

from pathlib import Path

import numpy as np
from PIL import Image

from .dataset import Dataset
from .formats import read_idx

FASHION_MNIST_CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)
# Pixel statistics of the shipped training images on the 0..1 scale, for transforms.Normalize.
FASHION_MNIST_MEAN = (0.2856,)
FASHION_MNIST_STD = (0.3526,)

_SUBSET = Path(__file__).with_name("fashion_mnist_subset.npz")
# The official files, named as torchvision names them: (images, labels) of each split.
IDX_FILES = {
    True: ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    False: ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
SOURCE = "https://github.com/zalandoresearch/fashion-mnist"


def load_fashion_mnist():
    """(train_images, train_labels, test_images, test_labels) of the shipped subset.

    Images are uint8 (N, 1, 28, 28), labels int64 (N,) indexing FASHION_MNIST_CLASSES.
    """
    with np.load(_SUBSET, allow_pickle=False) as arrays:
        return (
            arrays["train_images"],
            arrays["train_labels"].astype(np.int64),
            arrays["test_images"],
            arrays["test_labels"].astype(np.int64),
        )


class FashionMNIST(Dataset):
    """Fashion-MNIST as torchvision's datasets.FashionMNIST: `dataset[i]` is (image, label),
    the image a 28x28 PIL image of mode "L" before `transform` and the label an int before
    `target_transform`. `data` (uint8 (N, 28, 28)) and `targets` (int64 (N,)) are NumPy arrays.

    With root=None: the subset shipped with tinynet (20,000 training, 2,000 test images). With
    a root: the full set (60,000 and 10,000), read from the official IDX files, gzipped or not,
    in root itself or in root/FashionMNIST/raw/, where torchvision keeps them. tinynet downloads
    nothing: with download=True the files must be there already, and the error says where.
    """

    classes = list(FASHION_MNIST_CLASSES)
    class_to_idx = {name: label for label, name in enumerate(FASHION_MNIST_CLASSES)}

    def __init__(self, root=None, train=True, transform=None, target_transform=None, download=False):
        if root is None and download:
            raise ValueError(
                "FashionMNIST: download=True, but tinynet downloads nothing; with root=None it uses the "
                f"subset shipped with tinynet (leave out download=True), or give a root holding {SOURCE}'s files"
            )
        self.root, self.train = root, train
        self.transform, self.target_transform = transform, target_transform
        self.data, self.targets = _shipped_split(train) if root is None else _read_split(Path(root), train, download)

    def __len__(self):
        return len(self.data)

    def load(self, index):
        return Image.fromarray(self.data[index]), int(self.targets[index])


def _shipped_split(train):
    train_images, train_labels, test_images, test_labels = load_fashion_mnist()
    return (train_images[:, 0], train_labels) if train else (test_images[:, 0], test_labels)


def _find_idx(root, name):
    """root/name or root/FashionMNIST/raw/name, gzipped (name.gz) or not; None when not found."""
    for folder in (root, root / "FashionMNIST" / "raw"):
        for path in (folder / name, folder / f"{name}.gz"):
            if path.is_file():
                return path
    return None


def _read_split(root, train, download):
    names = IDX_FILES[train]
    paths = [_find_idx(root, name) for name in names]
    missing = [name for name, path in zip(names, paths) if path is None]
    if missing:
        why = "download=True, but tinynet downloads nothing, and" if download else "FashionMNIST:"
        raise FileNotFoundError(
            f"{why} {', '.join(missing)} (or .gz) is in neither {root} nor {root / 'FashionMNIST' / 'raw'}; "
            f"download the files from {SOURCE} and put them there, or use root=None for the subset "
            "shipped with tinynet"
        )
    images, labels = read_idx(paths[0]), read_idx(paths[1])
    if images.dtype != np.uint8 or images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
        raise ValueError(
            f"{paths[0]} and {paths[1]} are not Fashion-MNIST: expected uint8 images (N, 28, 28) and "
            f"N labels, got {images.dtype} images of shape {images.shape} and labels of shape {labels.shape}"
        )
    return images, labels.astype(np.int64)
