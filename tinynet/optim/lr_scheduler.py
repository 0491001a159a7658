"""Learning-rate schedules, as in torch.optim.lr_scheduler: each changes the rate of every
parameter group of its optimizer, multiplying it as torch's do, so schedules stack."""

import math


class LRScheduler:
    """What the schedules share: the optimizer whose groups' rates they change."""

    def __init__(self, optimizer):
        self.optimizer = optimizer
        self._remember()

    def get_last_lr(self):
        """The rate of each parameter group as this schedule's last step left it (as in torch,
        a change made after it, by another schedule, does not show here)."""
        return self._last_lr

    def _remember(self):
        self._last_lr = [group["lr"] for group in self.optimizer.param_groups]

    def _scale(self, factor):
        for group in self.optimizer.param_groups:
            group["lr"] *= factor


class StepLR(LRScheduler):
    """Multiply the learning rate by ``gamma`` every ``step_size`` epochs.

    It multiplies the current rate, as PyTorch's StepLR does, rather than setting
    base_lr x gamma^k, so a warm-up (LinearLR) running at the same time keeps its share.
    """

    def __init__(self, optimizer, step_size, gamma=0.1):
        if step_size < 1 or gamma <= 0:
            raise ValueError(f"StepLR needs step_size >= 1 and gamma > 0; got {step_size} and {gamma}")
        super().__init__(optimizer)
        self.step_size, self.gamma = step_size, gamma
        self.last_epoch = 0

    def step(self):
        self.last_epoch += 1
        if self.last_epoch % self.step_size == 0:
            self._scale(self.gamma)
        self._remember()

    def state_dict(self):
        return {"last_epoch": self.last_epoch}

    def load_state_dict(self, state):
        self.last_epoch = int(state["last_epoch"])


class ReduceLROnPlateau(LRScheduler):
    """Divide the learning rate by 10 when a metric stops improving.

    The paper (section 5) did this by hand: "divide the learning rate by 10 when
    the validation error rate stopped improving with the current learning rate".
    ``patience`` epochs without a relative improvement of ``threshold`` trigger it.
    ``min_lr`` is a floor for every group, or a list of one floor per group.
    """

    def __init__(self, optimizer, mode="min", factor=0.1, patience=10, threshold=1e-4, min_lr=0.0):
        if mode not in ("min", "max"):
            raise ValueError(f"mode must be 'min' or 'max', got {mode!r}")
        if not 0 < factor < 1:
            raise ValueError(f"factor must be in (0, 1), got {factor}")
        if patience < 0:
            raise ValueError(f"patience must be at least 0, got {patience}")
        super().__init__(optimizer)
        groups = len(optimizer.param_groups)
        self.min_lrs = list(min_lr) if isinstance(min_lr, list | tuple) else [min_lr] * groups
        if len(self.min_lrs) != groups:
            raise ValueError(f"min_lr has {len(self.min_lrs)} values for {groups} parameter groups: give one per "
                             "group, or one number for all")
        self.mode, self.factor, self.patience, self.threshold = mode, factor, patience, threshold
        self.best = math.inf if mode == "min" else -math.inf
        self.bad_epochs = 0

    def step(self, metric):
        metric = float(metric)
        if self._improved(metric):
            self.best, self.bad_epochs = metric, 0
        else:
            self._count_bad_epoch()
        self._remember()

    def _count_bad_epoch(self):
        self.bad_epochs += 1
        if self.bad_epochs > self.patience:
            for group, min_lr in zip(self.optimizer.param_groups, self.min_lrs):
                group["lr"] = max(group["lr"] * self.factor, min_lr)
            self.bad_epochs = 0

    def _improved(self, metric):
        if self.mode == "min":
            return metric < self.best * (1 - self.threshold)
        return metric > self.best * (1 + self.threshold)

    def state_dict(self):
        return {"best": self.best, "bad_epochs": self.bad_epochs}

    def load_state_dict(self, state):
        self.best, self.bad_epochs = float(state["best"]), int(state["bad_epochs"])


class LinearLR(LRScheduler):
    """Scale the learning rate linearly from ``start_factor`` to ``end_factor`` over
    ``total_iters`` calls of ``step()``, then leave it: a warm-up when stepped after every
    batch (Goyal et al. 2017, "Accurate, Large Minibatch SGD", section 2.2).

    Each step multiplies the rate by the ratio of this factor to the last, as PyTorch's
    LinearLR does, so an epoch schedule that divides the rate meanwhile still counts.
    """

    def __init__(self, optimizer, start_factor=1 / 3, end_factor=1.0, total_iters=5):
        if not 0 < start_factor <= 1 or not 0 < end_factor <= 1 or total_iters < 1:
            raise ValueError(f"LinearLR needs factors in (0, 1] and total_iters >= 1; got {start_factor}, "
                             f"{end_factor} and {total_iters}")
        super().__init__(optimizer)
        self.start_factor, self.end_factor = start_factor, end_factor
        self.total_iters, self.last_epoch = total_iters, 0
        self._scale(start_factor)
        self._remember()

    def _factor(self, iteration):
        done = min(iteration, self.total_iters) / self.total_iters
        return self.start_factor + (self.end_factor - self.start_factor) * done

    def step(self):
        self.last_epoch += 1
        self._scale(self._factor(self.last_epoch) / self._factor(self.last_epoch - 1))
        self._remember()

    def state_dict(self):
        return {"last_epoch": self.last_epoch}

    def load_state_dict(self, state):
        self.last_epoch = int(state["last_epoch"])
