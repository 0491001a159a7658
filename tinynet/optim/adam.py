"""Adam: a step per weight scaled by running averages of its gradient and squared gradient."""

import math

from .. import backend
from .optimizer import Optimizer, blocks


class Adam(Optimizer):
    """Adam (Kingma and Ba, 2015, Algorithm 1), computed as torch.optim.Adam computes it.

    With g = grad + weight_decay * w (L2 decay, as torch's Adam; AdamW decouples it) and t
    the number of steps this weight has taken:

        m <- b1 m + (1 - b1) g              running mean of the gradient
        v <- b2 v + (1 - b2) g^2            running mean of its square
        w <- w - lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)

    m and v start at 0, so early on they are too small: dividing by 1 - b^t (the bias
    correction) makes them unbiased. ``amsgrad=True`` divides by the largest v seen so far
    instead (Reddi et al., 2018), so a weight's step never grows when its gradients shrink.
    """

    state_arrays = ("exp_avg", "exp_avg_sq", "max_exp_avg_sq")
    state_counts = ("step",)

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, amsgrad=False):
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay, amsgrad=amsgrad))

    def check_group(self, group):
        for name in ("lr", "eps", "weight_decay"):
            if group[name] < 0:
                raise ValueError(f"Adam needs {name} >= 0, got {group[name]}")
        if len(group["betas"]) != 2 or not all(0 <= beta < 1 for beta in group["betas"]):
            raise ValueError(f"Adam needs betas (b1, b2) with each in [0, 1), got {group['betas']}")

    def step(self):
        for group, index, param in self.with_grads():
            state = self._state(index, param, group["amsgrad"])
            state["step"] += 1
            beta1, beta2 = group["betas"]
            scalar = param.dtype.type  # float32 numbers keep the update in float32
            step_size = scalar(group["lr"] / (1 - beta1 ** state["step"]))
            root_correction = scalar(math.sqrt(1 - beta2 ** state["step"]))
            settings = scalar(beta1), scalar(beta2), scalar(group["eps"]), scalar(group["weight_decay"])
            moments = state["exp_avg"], state["exp_avg_sq"], state.get("max_exp_avg_sq") if group["amsgrad"] else None
            for w, g, m, v, v_max in blocks(param.data, param.grad, *moments):
                _adam_step(w, g, m, v, v_max, step_size, root_correction, *settings)

    def _state(self, index, param, amsgrad):
        """This parameter's step count and moments, zeros on its first step."""
        state = self.state[index]
        zeros = backend.xp_of(param.data).zeros_like
        if not state:
            state.update(step=0, exp_avg=zeros(param.data), exp_avg_sq=zeros(param.data))
        if amsgrad and "max_exp_avg_sq" not in state:
            state["max_exp_avg_sq"] = zeros(param.data)
        return state


def _adam_step(w, g, m, v, v_max, step_size, root_correction, beta1, beta2, eps, decay):
    if decay:
        g = g + w * decay
    m *= beta1
    m += g * (1 - beta1)
    v *= beta2
    v += g * g * (1 - beta2)
    if v_max is not None:
        backend.xp_of(v).maximum(v_max, v, out=v_max)
        v = v_max
    w -= step_size * m / (backend.xp_of(v).sqrt(v) / root_correction + eps)
