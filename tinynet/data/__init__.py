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
    FashionMNIST,
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
from .subset import Subset, random_split

__all__ = [
    "BadImageError",
    "CIFAR10_CLASSES",
    "DataLoader",
    "Dataset",
    "FASHION_MNIST_CLASSES",
    "FASHION_MNIST_MEAN",
    "FASHION_MNIST_STD",
    "FashionMNIST",
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
    "random_split",
    "sample_rng",
    "Subset",
    "transforms",
    "write_idx",
]
