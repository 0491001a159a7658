"""The 1,000 ImageNet (ILSVRC 2012) classes, in the order of their labels.

Two lists, one entry a line in the text files beside this file:
- ``imagenet_classes()``: the names that torchvision publishes beside its ImageNet weights
  (``torchvision/models/_meta.py``, BSD 3-Clause licence), so output i of a converted
  torchvision model scores ``imagenet_classes()[i]``;
- ``imagenet_synsets()``: the WordNet ids (n01440764, ...) that name ImageNet's class
  folders, as listed by timm (``timm/data/_info/imagenet_synsets.txt``, Apache 2.0). Sorted,
  they are the label order, so a standard ImageNet val/ folder matches them.
"""

from pathlib import Path

_NAMES = Path(__file__).with_name("imagenet_classes.txt")
_SYNSETS = Path(__file__).with_name("imagenet_synsets.txt")


def imagenet_classes():
    """The class names as a list, label i first."""
    return _NAMES.read_text(encoding="utf-8").splitlines()


def imagenet_synsets():
    """The WordNet ids of the class folders as a list, label i first."""
    return _SYNSETS.read_text(encoding="utf-8").splitlines()
