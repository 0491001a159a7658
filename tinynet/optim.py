"""Momentum SGD with weight decay, and learning-rate schedules."""

import math

from . import backend

UPDATE_RULES = ("pytorch", "paper")


class SGD:
    """Stochastic gradient descent with momentum and L2 weight decay.

    Two update rules, equal while the learning rate is constant:

    - ``update="pytorch"`` (torch.optim.SGD): v <- m v + (g + wd w);  w <- w - lr v
    - ``update="paper"`` (AlexNet paper, section 5):
      v <- m v - wd lr w - lr g;  w <- w + v

    They differ when the learning rate changes: the paper's velocity carries the
    old rate's steps, PyTorch's is rescaled by the new rate at once.
    """

    def __init__(self, params, lr, momentum=0.0, weight_decay=0.0, update="pytorch"):
        if update not in UPDATE_RULES:
            raise ValueError(f"unknown update rule {update!r}: expected one of {UPDATE_RULES}")
        if lr <= 0 or momentum < 0 or weight_decay < 0:
            raise ValueError(f"expected lr > 0, momentum >= 0, weight_decay >= 0; got {lr}, {momentum}, {weight_decay}")
        self.params = list(params)
        if not self.params:
            raise ValueError("SGD got an empty parameter list")
        self.lr, self.momentum, self.weight_decay, self.update = lr, momentum, weight_decay, update
        self.velocity = [None] * len(self.params)

    def zero_grad(self):
        for param in self.params:
            param.grad = None

    def step(self):
        for index, param in enumerate(self.params):
            if param.grad is not None:
                step = self._paper_step if self.update == "paper" else self._pytorch_step
                step(index, param)

    def _pytorch_step(self, index, param):
        direction = param.grad + param.data * param.dtype.type(self.weight_decay) if self.weight_decay else param.grad
        if self.momentum:
            velocity = self._velocity(index, param)
            velocity *= param.dtype.type(self.momentum)
            velocity += direction
            direction = velocity
        param.data -= direction * param.dtype.type(self.lr)

    def _paper_step(self, index, param):
        velocity = self._velocity(index, param)
        velocity *= param.dtype.type(self.momentum)
        velocity -= (param.grad + param.data * param.dtype.type(self.weight_decay)) * param.dtype.type(self.lr)
        param.data += velocity

    def _velocity(self, index, param):
        if self.velocity[index] is None:
            self.velocity[index] = backend.xp_of(param.data).zeros_like(param.data)
        return self.velocity[index]

    def state_dict(self):
        """Hyperparameters and velocities as a flat name -> value dict (checkpoint friendly)."""
        state = {"lr": self.lr, "momentum": self.momentum, "weight_decay": self.weight_decay, "update": self.update}
        state.update({f"velocity.{i}": v for i, v in enumerate(self.velocity) if v is not None})
        return state

    def load_state_dict(self, state):
        # float(), not the current value's type: SGD(lr=1, momentum=0) must not turn a saved 0.9 into int 0.
        self.lr, self.momentum, self.weight_decay = (float(state[key]) for key in ("lr", "momentum", "weight_decay"))
        self.update = str(state["update"])
        self.velocity = [None] * len(self.params)
        for key, value in state.items():
            if key.startswith("velocity."):
                index = int(key.split(".")[1])
                if index >= len(self.params) or tuple(value.shape) != self.params[index].shape:
                    raise ValueError(f"optimizer state {key} of shape {tuple(value.shape)} matches no parameter")
                param = self.params[index]
                self.velocity[index] = backend.to_device(value, param.device).astype(param.dtype)


class StepLR:
    """Multiply the learning rate by ``gamma`` every ``step_size`` epochs."""

    def __init__(self, optimizer, step_size, gamma=0.1):
        self.optimizer, self.step_size, self.gamma = optimizer, step_size, gamma
        self.base_lr, self.last_epoch = optimizer.lr, 0

    def step(self):
        self.last_epoch += 1
        self.optimizer.lr = self.base_lr * self.gamma ** (self.last_epoch // self.step_size)

    def state_dict(self):
        return {"base_lr": self.base_lr, "last_epoch": self.last_epoch}

    def load_state_dict(self, state):
        self.base_lr, self.last_epoch = float(state["base_lr"]), int(state["last_epoch"])


class ReduceLROnPlateau:
    """Divide the learning rate by 10 when a metric stops improving.

    The paper (section 5) did this by hand: "divide the learning rate by 10 when
    the validation error rate stopped improving with the current learning rate".
    ``patience`` epochs without a relative improvement of ``threshold`` trigger it.
    """

    def __init__(self, optimizer, mode="min", factor=0.1, patience=10, threshold=1e-4, min_lr=0.0):
        if mode not in ("min", "max"):
            raise ValueError(f"mode must be 'min' or 'max', got {mode!r}")
        if not 0 < factor < 1:
            raise ValueError(f"factor must be in (0, 1), got {factor}")
        self.optimizer, self.mode, self.factor = optimizer, mode, factor
        self.patience, self.threshold, self.min_lr = patience, threshold, min_lr
        self.best = math.inf if mode == "min" else -math.inf
        self.bad_epochs = 0

    def step(self, metric):
        metric = float(metric)
        if self._improved(metric):
            self.best, self.bad_epochs = metric, 0
            return
        self.bad_epochs += 1
        if self.bad_epochs > self.patience:
            self.optimizer.lr = max(self.optimizer.lr * self.factor, self.min_lr)
            self.bad_epochs = 0

    def _improved(self, metric):
        if self.mode == "min":
            return metric < self.best * (1 - self.threshold)
        return metric > self.best * (1 + self.threshold)

    def state_dict(self):
        return {"best": self.best, "bad_epochs": self.bad_epochs}

    def load_state_dict(self, state):
        self.best, self.bad_epochs = float(state["best"]), int(state["bad_epochs"])
