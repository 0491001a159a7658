"""Data: datasets, file formats, transforms, and a reproducible DataLoader with prefetching."""

from . import transforms
from .dataset import (
    IMG_EXTENSIONS,
    BadImageError,
    Dataset,
    ImageFolder,
    TensorDataset,
    read_rgb,
    sample_rng,
)
from .fashion_mnist import (
    FASHION_MNIST_CLASSES,
    FASHION_MNIST_MEAN,
    FASHION_MNIST_STD,
    load_fashion_mnist,
)
from .formats import (
    CIFAR10_CLASSES,
    load_cifar10_binary,
    read_cifar10_batch,
    read_idx,
    write_idx,
)
from .imagenet import imagenet_classes, imagenet_synsets
from .loader import DataLoader

__all__ = [
    "BadImageError",
    "CIFAR10_CLASSES",
    "DataLoader",
    "Dataset",
    "FASHION_MNIST_CLASSES",
    "FASHION_MNIST_MEAN",
    "FASHION_MNIST_STD",
    "imagenet_classes",
    "imagenet_synsets",
    "IMG_EXTENSIONS",
    "ImageFolder",
    "TensorDataset",
    "load_cifar10_binary",
    "load_fashion_mnist",
    "read_cifar10_batch",
    "read_idx",
    "read_rgb",
    "sample_rng",
    "transforms",
    "write_idx",
]
