"""The 1,000 ImageNet (ILSVRC 2012) classes, in the order of their labels.

The names are those that torchvision publishes beside its ImageNet weights
(``torchvision/models/_meta.py``, BSD 3-Clause licence), so output i of a converted
torchvision model scores ``imagenet_classes()[i]``. They are kept one a line in
``imagenet_classes.txt`` beside this file.
"""

from pathlib import Path

_NAMES = Path(__file__).with_name("imagenet_classes.txt")


def imagenet_classes():
    """The class names as a list, label i first."""
    return _NAMES.read_text(encoding="utf-8").splitlines()
