"""PyTorch's way of writing a custom Function, for code that comes from PyTorch.

tinynet's own Functions (tensor.py) are instances whose ``forward`` and ``backward`` take raw
arrays and keep what they need on ``self``. PyTorch's are classes of static methods that take a
context object ``ctx`` and Tensors:

    class Swish(tinynet.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x * tinynet.sigmoid(x)

        @staticmethod
        def backward(ctx, grad_output):
            (x,) = ctx.saved_tensors
            s = tinynet.sigmoid(x)
            return grad_output * (s + x * s * (1 - s))

    y = Swish.apply(x)

``apply`` wraps such a class in one tinynet Function per call, which hands the static methods a
fresh context and Tensors, and takes arrays back out of what they return. Inside them no graph
is recorded, as in PyTorch.
"""

from .tensor import Function as _Function
from .tensor import Tensor, as_tensor, no_grad


class FunctionCtx:
    """What ``forward`` leaves for ``backward``: saved tensors, plus any attribute it sets."""

    def save_for_backward(self, *tensors):
        self.saved_tensors = tensors


class Function:
    """Base class of a custom Function written as in PyTorch (see the module docstring)."""

    @staticmethod
    def forward(ctx, *inputs):
        raise NotImplementedError("a custom Function defines a static forward(ctx, *inputs)")

    @staticmethod
    def backward(ctx, *grad_outputs):
        raise NotImplementedError("a custom Function defines a static backward(ctx, grad_output)")

    @classmethod
    def apply(cls, *args):
        """Tensors become the inputs of the graph; other arguments (numbers, None, strings) reach
        ``forward`` as they are, as in PyTorch, and get no gradient."""
        return _Call(cls, args)(*(arg for arg in args if isinstance(arg, Tensor)))


class _Call(_Function):
    """One call of a PyTorch-style Function, as a tinynet Function of raw arrays."""

    def __init__(self, definition, args):
        self.definition = definition
        self.is_tensor = tuple(isinstance(arg, Tensor) for arg in args)
        # Only the other arguments are kept: the tensors' arrays come to forward as inputs.
        self.constants = tuple(None if is_tensor else arg for arg, is_tensor in zip(args, self.is_tensor))
        self.ctx = FunctionCtx()

    def forward(self, *arrays):
        arrays, needs = iter(arrays), iter(self.needs_input_grad)
        self.ctx.needs_input_grad = tuple(is_tensor and next(needs) for is_tensor in self.is_tensor)
        args = [Tensor(next(arrays)) if is_tensor else constant
                for constant, is_tensor in zip(self.constants, self.is_tensor)]
        with no_grad():
            output = self.definition.forward(self.ctx, *args)
        return as_tensor(output).data

    def backward(self, grad_output):
        with no_grad():
            grads = self.definition.backward(self.ctx, Tensor(grad_output))
        grads = grads if isinstance(grads, tuple) else (grads,)
        if len(grads) != len(self.is_tensor):
            raise RuntimeError(f"{self.definition.__name__}.backward returned {len(grads)} gradients for "
                               f"{len(self.is_tensor)} inputs of forward (None where one needs none)")
        return tuple(None if grad is None else as_tensor(grad).data
                     for grad, is_tensor in zip(grads, self.is_tensor) if is_tensor)

    def release(self):
        super().release()
        self.ctx = None  # the saved tensors go with the rest of what backward needed

    def __repr__(self):
        return f"<{self.definition.__name__}>"
