"""Optimizers and learning-rate schedules with the names of torch.optim.

    optimizer = optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    optimizer = optim.Adam([{"params": net.features.parameters()}, {"params": net.classifier.parameters(), "lr": 1e-4}])
    scheduler = optim.lr_scheduler.StepLR(optimizer, step_size=30)   # also optim.StepLR
"""

from . import lr_scheduler
from .adam import Adam
from .lr_scheduler import LinearLR, LRScheduler, ReduceLROnPlateau, StepLR
from .optimizer import Optimizer
from .sgd import SGD, UPDATE_RULES

__all__ = ["Optimizer", "SGD", "Adam", "UPDATE_RULES", "lr_scheduler", "LRScheduler", "StepLR", "ReduceLROnPlateau",
           "LinearLR"]
