"""A balanced subset of Fashion-MNIST shipped inside tinynet, so examples run without downloads.

Fashion-MNIST (Xiao, Rasul and Vollgraf, 2017) has 28x28 grey images of clothing in ten
classes. The shipped file holds 20,000 training images (2,000 per class) drawn from the
official training set and 2,000 test images (200 per class) from the official test set;
scripts/build_fashion_mnist_subset.py rebuilds it. Zalando SE publishes the data under the
MIT license, reproduced in FASHION_MNIST_LICENSE beside this file.
"""

from pathlib import Path

import numpy as np

FASHION_MNIST_CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)
# Pixel statistics of the shipped training images on the 0..1 scale, for transforms.Normalize.
FASHION_MNIST_MEAN = (0.2856,)
FASHION_MNIST_STD = (0.3526,)

_SUBSET = Path(__file__).with_name("fashion_mnist_subset.npz")


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
