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
        rule = self._paper_step if self.update == "paper" else self._pytorch_step
        for index, param in enumerate(self.params):
            if param.grad is None:
                continue
            scalar = param.dtype.type  # float32 numbers keep the update in float32
            lr, momentum, decay = scalar(self.lr), scalar(self.momentum), scalar(self.weight_decay)
            velocity = self._velocity(index, param) if self.momentum or self.update == "paper" else None
            for w, g, v in _blocks(param.data, param.grad, velocity):
                rule(w, g, v, lr, momentum, decay)

    def _pytorch_step(self, w, g, v, lr, momentum, decay):
        direction = g + w * decay if decay else g
        if v is not None:
            v *= momentum
            v += direction
            direction = v
        w -= direction * lr

    def _paper_step(self, w, g, v, lr, momentum, decay):
        v *= momentum
        v -= (g + w * decay) * lr
        w += v

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


# Elements updated at a time on the CPU. The update makes several passes (scale
# the velocity, add the gradient, the decay, then the step); done a block at a
# time, the blocks of weights, gradient and velocity (768 KB) stay in a core's L2
# cache, so each passes over main memory once and the temporaries are small and
# reused instead of three fresh arrays the size of fc6's weights (151 MB each).
# Measured: about 90 ms instead of 200 ms per AlexNet step on 2 cores.
BLOCK = 1 << 16


def _blocks(w, g, v):
    """Matching views of BLOCK elements of the weights, gradient and velocity (None
    for no momentum); the whole arrays on a GPU or when the layout is not C order."""
    arrays = [a for a in (w, g, v) if a is not None]
    if backend.device_of(w) != "cpu" or not all(a.flags.c_contiguous for a in arrays):
        yield w, g, v
        return
    w, g = w.reshape(-1), g.reshape(-1)
    v = None if v is None else v.reshape(-1)
    for start in range(0, w.size, BLOCK):
        block = slice(start, start + BLOCK)
        yield w[block], g[block], None if v is None else v[block]


class StepLR:
    """Multiply the learning rate by ``gamma`` every ``step_size`` epochs.

    It multiplies the current rate, as PyTorch's StepLR does, rather than setting
    base_lr x gamma^k, so a warm-up (LinearLR) running at the same time keeps its share.
    """

    def __init__(self, optimizer, step_size, gamma=0.1):
        if step_size < 1 or gamma <= 0:
            raise ValueError(f"StepLR needs step_size >= 1 and gamma > 0; got {step_size} and {gamma}")
        self.optimizer, self.step_size, self.gamma = optimizer, step_size, gamma
        self.last_epoch = 0

    def step(self):
        self.last_epoch += 1
        if self.last_epoch % self.step_size == 0:
            self.optimizer.lr *= self.gamma

    def state_dict(self):
        return {"last_epoch": self.last_epoch}

    def load_state_dict(self, state):
        self.last_epoch = int(state["last_epoch"])


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
        if patience < 0:
            raise ValueError(f"patience must be at least 0, got {patience}")
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


class LinearLR:
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
        self.optimizer, self.start_factor, self.end_factor = optimizer, start_factor, end_factor
        self.total_iters, self.last_epoch = total_iters, 0
        optimizer.lr *= start_factor

    def _factor(self, iteration):
        done = min(iteration, self.total_iters) / self.total_iters
        return self.start_factor + (self.end_factor - self.start_factor) * done

    def step(self):
        self.last_epoch += 1
        self.optimizer.lr *= self._factor(self.last_epoch) / self._factor(self.last_epoch - 1)

    def state_dict(self):
        return {"last_epoch": self.last_epoch}

    def load_state_dict(self, state):
        self.last_epoch = int(state["last_epoch"])
