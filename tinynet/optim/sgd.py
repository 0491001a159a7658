"""Momentum SGD with weight decay: torch's update, and the AlexNet paper's."""

import numpy as np

from .. import backend
from ..fast.cuda import sgd as cuda_sgd
from .optimizer import Optimizer, blocks, group_setting

UPDATE_RULES = ("pytorch", "paper")


class SGD(Optimizer):
    """Stochastic gradient descent with momentum and L2 weight decay.

    Two update rules, equal while the learning rate is constant:

    - ``update="pytorch"`` (torch.optim.SGD): v <- m v + (1 - dampening)(g + wd w);  w <- w - lr v
      (the first step sets v to g + wd w; ``nesterov=True`` steps along g + wd w + m v instead)
    - ``update="paper"`` (AlexNet paper, section 5):
      v <- m v - wd lr w - lr g;  w <- w + v

    They differ when the learning rate changes: the paper's velocity carries the
    old rate's steps, PyTorch's is rescaled by the new rate at once.

    The arguments come in torch's order, so ``SGD(params, 0.01, 0.9)`` means the same
    there; ``update`` is keyword-only. Each parameter group may set any of them.
    """

    state_arrays = ("velocity",)

    def __init__(self, params, lr=1e-3, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False, *,
                 update="pytorch"):
        defaults = dict(lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay, nesterov=nesterov,
                        update=update)
        super().__init__(params, defaults)

    momentum = group_setting("momentum")
    weight_decay = group_setting("weight_decay")
    update = group_setting("update")

    def check_group(self, group):
        if group["update"] not in UPDATE_RULES:
            raise ValueError(f"unknown update rule {group['update']!r}: expected one of {UPDATE_RULES}")
        for name in ("lr", "momentum", "dampening", "weight_decay"):
            if group[name] < 0:
                raise ValueError(f"SGD needs {name} >= 0, got {group[name]}")
        if group["nesterov"] and (group["momentum"] == 0 or group["dampening"] != 0):
            raise ValueError("Nesterov momentum needs momentum > 0 and dampening = 0")
        if group["update"] == "paper" and (group["dampening"] or group["nesterov"]):
            raise ValueError("the paper's update has no dampening or Nesterov momentum: use update='pytorch'")

    def step(self):
        for group, index, param in self.with_grads():
            scalar = param.dtype.type  # float32 numbers keep the update in float32
            lr, momentum, dampening, decay = (scalar(group[k]) for k in ("lr", "momentum", "dampening", "weight_decay"))
            paper = group["update"] == "paper"
            velocity, first = self._velocity(index, param) if momentum or paper else (None, False)
            if velocity is not None and backend.xp_of(param.data) is not np:  # one fused CUDA kernel
                _fused_step(param.data, param.grad, velocity, group, lr, momentum, dampening, decay, first)
                continue
            for w, g, v in blocks(param.data, param.grad, velocity):
                if paper:
                    _paper_step(w, g, v, lr, momentum, decay)
                else:
                    _pytorch_step(w, g, v, lr, momentum, dampening, decay, group["nesterov"], first)

    def _velocity(self, index, param):
        """(this parameter's velocity, whether it was just made) — zeros on its first step."""
        state = self.state[index]
        first = "velocity" not in state
        if first:
            state["velocity"] = backend.xp_of(param.data).zeros_like(param.data)
        return state["velocity"], first


def _fused_step(w, g, v, group, lr, momentum, dampening, decay, first):
    if group["update"] == "paper":
        cuda_sgd.paper_step(w, g, v, lr, momentum, decay)
    else:
        cuda_sgd.pytorch_step(w, g, v, lr, momentum, dampening, decay, group["nesterov"], first)


def _pytorch_step(w, g, v, lr, momentum, dampening, decay, nesterov, first):
    direction = g + w * decay if decay else g
    if v is not None:
        if first:  # torch starts the velocity at the first direction, undamped
            v += direction
        else:
            v *= momentum
            v += direction * (1 - dampening) if dampening else direction
        direction = direction + v * momentum if nesterov else v
    w -= direction * lr


def _paper_step(w, g, v, lr, momentum, decay):
    v *= momentum
    v -= (g + w * decay) * lr
    w += v
