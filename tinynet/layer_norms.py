"""Per-layer weight and gradient norms, and a warning when the first steps blow up.

When a recipe dies, the loss alone says that it died, not where. The norms of each layer's
weights and gradients say where: in the paper's literal recipe on a small data set the
loss jumps several-fold within a few steps while the gradients of the fully-connected
layers grow hundreds of times larger than at the start (lesson 9).
"""

import math

from . import backend

# Steps after the start of a run in which the guard watches for a blow-up: past them a
# recipe has either settled or the loss curve already shows what went wrong.
WATCH_STEPS = 200
# A loss this many times ln(classes), the loss of an even guess, is far beyond noise.
LOSS_FACTOR = 3.0


def layer_norms(model):
    """{layer: (weight norm, gradient norm)} of every layer with a weight; called after a
    step, it gives the weights as updated and the gradient that updated them."""
    weights = [(name[:-len(".weight")], param) for name, param in model.named_parameters()
               if name.endswith(".weight") and param.grad is not None]
    if not weights:
        return {}
    xp = backend.xp_of(weights[0][1].data)
    # All norms stay on the device and come to the host in one transfer: one GPU sync a step, not two a layer.
    values = backend.to_numpy(xp.stack([xp.linalg.norm(array) for _, param in weights
                                        for array in (param.data, param.grad)])).reshape(-1, 2)
    return {layer: (float(weight), float(grad)) for (layer, _), (weight, grad) in zip(weights, values)}


class NormRecorder:
    """Every ``every`` steps, a row: the step, its loss and learning rate, and each
    layer's weight and gradient norm (columns "LAYER.weight" and "LAYER.grad")."""

    def __init__(self, every):
        if every < 1:
            raise ValueError(f"NormRecorder needs every >= 1 step, got {every}")
        self.every, self.rows = every, []

    def due(self, step):
        return step % self.every == 0

    def record(self, step, loss, lr, norms):
        row = {"step": step, "loss": loss, "lr": lr}
        for layer, (weight, grad) in norms.items():
            row |= {f"{layer}.weight": weight, f"{layer}.grad": grad}
        self.rows.append(row)


class DivergenceGuard:
    """In the first WATCH_STEPS steps, finds the first sign that training is blowing up:
    a loss over LOSS_FACTOR x ln(classes), or a layer whose plain SGD step (learning rate
    x gradient norm) is larger than its weights. ``check`` returns a warning once, then
    None; it names the step, the layer and the value."""

    HINT = ("the learning rate is too high for the net as it starts. A warm-up (--warmup 100) or a lower --lr "
            "usually cures it, and He initialisation (--init kaiming) where the paper's N(0, 0.01) is used; "
            "--record-norms 1 records each layer's norms to show where")

    def __init__(self, num_classes):
        self.limit = LOSS_FACTOR * math.log(num_classes)
        self.num_classes, self.warned = num_classes, False

    def watching(self, step):
        return not self.warned and step < WATCH_STEPS

    def check(self, step, loss, lr, norms):
        if not self.watching(step):
            return None
        problem = None
        if loss > self.limit:
            problem = (f"the loss is {loss:.3g}, over {LOSS_FACTOR:g} x ln({self.num_classes}) = {self.limit:.3g}, "
                       f"the loss of an even guess{_steepest(norms)}")
        elif (layer := _largest_gradient_for_its_size(norms)) is not None:
            weight, grad = norms[layer]
            if lr * grad > weight:
                problem = (f"{layer}'s step, lr {lr:.3g} x gradient norm {grad:.3g} = {lr * grad:.3g}, is larger "
                           f"than its weights (norm {weight:.3g})")
        if problem is None:
            return None
        self.warned = True
        return f"step {step}: {problem}; training may be diverging. Likely cause: {self.HINT}"


def _largest_gradient_for_its_size(norms):
    """Where the loss pulls hardest: the layer with the largest gradient norm / weight norm."""
    ratios = {layer: grad / weight for layer, (weight, grad) in norms.items() if weight > 0}
    return max(ratios, key=ratios.get) if ratios else None


def _steepest(norms):
    layer = _largest_gradient_for_its_size(norms)
    if layer is None:
        return ""
    weight, grad = norms[layer]
    return f"; {layer} has the largest gradient for its size, norm {grad:.3g} against weights of norm {weight:.3g}"
