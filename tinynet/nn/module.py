"""Module and Parameter: how layers hold their weights and find each other.

Assigning a Parameter or a Module to an attribute registers it, so
``parameters()``, ``state_dict()``, ``train()`` and ``to()`` reach the whole tree
with the same dotted names PyTorch uses (``features.0.weight``).
"""

from collections import OrderedDict

from .. import backend
from ..tensor import ShapeError, Tensor


class Parameter(Tensor):
    """A Tensor that a Module learns: it requires grad unless frozen (``requires_grad_(False)``)."""

    def __init__(self, data, requires_grad=True):
        super().__init__(data.data if isinstance(data, Tensor) else data, requires_grad=requires_grad)

    def __repr__(self):
        return f"Parameter(shape={self.shape}, dtype={self.dtype}, device={self.device})"


class Module:
    def __init__(self):
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "training", True)
        object.__setattr__(self, "path", "")

    def __setattr__(self, name, value):
        """Register a Parameter or a Module assigned to an attribute, as torch does. A name
        that holds a parameter takes only a Parameter or None (no bias): a plain Tensor there
        would be dropped from parameters() and state_dict() without a word."""
        if "_parameters" not in self.__dict__:
            raise RuntimeError(f"{type(self).__name__}.__init__ must call super().__init__() first")
        if isinstance(value, Parameter):
            self._modules.pop(name, None)
            self._parameters[name] = value
        elif name in self._parameters:
            if value is not None:
                raise TypeError(f"cannot assign {type(value).__name__} as parameter {name!r} (nn.Parameter or None "
                                f"expected): wrap it in nn.Parameter(...), or set {name}.data to change its values")
            self._parameters[name] = None
        elif isinstance(value, Module):
            self._modules[name] = value
            value._set_path(_join(self.path, name))
        elif name in self._modules:
            if value is not None:
                raise TypeError(f"cannot assign {type(value).__name__} as child module {name!r} (nn.Module or None "
                                "expected)")
            self._modules[name] = None
        object.__setattr__(self, name, value)

    def register_parameter(self, name, param):
        """``self.register_parameter("bias", None)``: a parameter slot that holds None (no bias)
        until a Parameter is assigned to it, as in PyTorch."""
        if param is not None and not isinstance(param, Parameter):
            raise TypeError(f"register_parameter: {name!r} takes an nn.Parameter or None, got {type(param).__name__}")
        self._parameters[name] = param
        object.__setattr__(self, name, param)

    def __delattr__(self, name):
        self._parameters.pop(name, None)
        self._modules.pop(name, None)
        object.__delattr__(self, name)

    def _set_path(self, path):
        """Remember the dotted name from the root, for error messages."""
        object.__setattr__(self, "path", path)
        for name, child in self.named_children():
            child._set_path(_join(path, name))

    def __call__(self, *inputs, **options):
        try:
            return self.forward(*inputs, **options)
        except ShapeError as error:
            if error.layer is None:  # the innermost module names itself
                error.layer = self
                error.args = (f"{self.path or 'model'} ({self.describe()}): {error.args[0]}",)
            raise

    def forward(self, *inputs):
        raise NotImplementedError(f"{type(self).__name__} must define forward()")

    # -- the tree ------------------------------------------------------------
    def named_children(self):
        """(name, module) of the direct children, skipping names set to None."""
        return ((name, child) for name, child in self._modules.items() if child is not None)

    def children(self):
        return (child for _, child in self.named_children())

    def named_modules(self, prefix=""):
        yield prefix, self
        for name, child in self.named_children():
            yield from child.named_modules(_join(prefix, name))

    def modules(self):
        return (module for _, module in self.named_modules())

    def apply(self, fn):
        """Call ``fn`` on every child's subtree, then on this module (the order torch uses,
        so ``model.apply(init_weights)`` reaches every layer); returns self."""
        for child in self.children():
            child.apply(fn)
        fn(self)
        return self

    def named_parameters(self):
        for prefix, module in self.named_modules():
            for name, parameter in module._parameters.items():
                if parameter is not None:
                    yield _join(prefix, name), parameter

    def parameters(self):
        return [parameter for _, parameter in self.named_parameters()]

    def requires_grad_(self, requires_grad=True):
        """Freeze (False) or unfreeze every parameter: a frozen one gets no gradient, so
        optimizers leave it alone. Returns self."""
        for parameter in self.parameters():
            parameter.requires_grad = requires_grad
        return self

    def zero_grad(self, set_to_none=True):
        """Forget every parameter's gradient (``set_to_none=False``: fill it with zeros instead)."""
        for parameter in self.parameters():
            clear_grad(parameter, set_to_none)

    # -- modes and devices ---------------------------------------------------
    def train(self, mode=True):
        for _, module in self.named_modules():
            object.__setattr__(module, "training", mode)
        return self

    def eval(self):
        return self.train(False)

    def to(self, device):
        """Move every parameter to ``device`` in place ('cpu' or 'gpu')."""
        for parameter in self.parameters():
            parameter.data = backend.to_device(parameter.data, device)
            parameter.grad = None
        return self

    # -- saving and loading --------------------------------------------------
    def state_dict(self):
        """Name -> array of every parameter (the arrays themselves, not copies)."""
        return OrderedDict((name, parameter.data) for name, parameter in self.named_parameters())

    def load_state_dict(self, state):
        """Copy arrays (or Tensors) into the parameters; every mismatch is reported by name."""
        own = dict(self.named_parameters())
        missing = [name for name in own if name not in state]
        unexpected = [name for name in state if name not in own]
        misshaped = [
            f"{name}: expected {own[name].shape}, got {tuple(state[name].shape)}"
            for name in own
            if name in state and tuple(state[name].shape) != own[name].shape
        ]
        problems = [f"missing keys {missing}"] * bool(missing) + [f"unexpected keys {unexpected}"] * bool(unexpected)
        problems += [f"shape mismatch for {m}" for m in misshaped]
        if problems:
            raise RuntimeError(f"cannot load state into {type(self).__name__}: " + "; ".join(problems))
        for name, parameter in own.items():
            xp = backend.xp_of(parameter.data)
            parameter.data = xp.array(backend.to_device(_array(state[name]), parameter.device), dtype=parameter.dtype)

    # -- printing ------------------------------------------------------------
    def describe(self):
        """One line of this module's own settings, e.g. Conv2d(3, 96, kernel_size=(11, 11))."""
        return f"{type(self).__name__}({self.extra_repr()})"

    def extra_repr(self):
        return ""

    def __repr__(self):
        if not self._modules:
            return self.describe()
        lines = [f"{type(self).__name__}("]
        for name, child in self._modules.items():
            lines.append(f"  ({name}): " + repr(child).replace("\n", "\n  "))
        return "\n".join(lines + [")"])


def _join(prefix, name):
    return f"{prefix}.{name}" if prefix else name


def _array(value):
    return value.data if isinstance(value, Tensor) else value


def clear_grad(tensor, set_to_none):
    if set_to_none or tensor.grad is None:
        tensor.grad = None
    else:  # a fresh array: the old one may be recycled memory that a layer hands out again
        tensor.grad = backend.xp_of(tensor.data).zeros_like(tensor.data)
