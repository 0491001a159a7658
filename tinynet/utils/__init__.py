"""PyTorch's import paths for what tinynet keeps elsewhere: `tinynet.utils.data` is torch.utils.data."""

from . import data

__all__ = ["data"]
