"""torch.utils.data's names, so that `from tinynet.utils.data import DataLoader` works as in PyTorch.

The datasets and the DataLoader live in tinynet.data (read them there); this module only
gives them PyTorch's import path.
"""

from ..data import DataLoader, Dataset, Subset, TensorDataset, random_split
from ..data.distributed_sampler import DistributedSampler

__all__ = ["DataLoader", "Dataset", "DistributedSampler", "Subset", "TensorDataset", "random_split"]
