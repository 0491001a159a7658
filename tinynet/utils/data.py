"""torch.utils.data's names, so that `from tinynet.utils.data import DataLoader` works as in PyTorch.

The datasets and the DataLoader live in tinynet.data (read them there); this module only
gives them PyTorch's import path.
"""

from ..data import DataLoader, Dataset, Subset, TensorDataset, random_split

__all__ = ["DataLoader", "Dataset", "Subset", "TensorDataset", "random_split"]
