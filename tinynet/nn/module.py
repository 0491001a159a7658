"""Module and Parameter: how layers hold their weights and find each other.

Assigning a Parameter or a Module to an attribute registers it, so
``parameters()``, ``state_dict()``, ``train()`` and ``to()`` reach the whole tree
with the same dotted names PyTorch uses (``features.0.weight``).
"""

from collections import OrderedDict

from .. import backend
from ..tensor import ShapeError, Tensor


class Parameter(Tensor):
    """A Tensor that a Module learns: it always requires grad."""

    def __init__(self, data):
        super().__init__(data, requires_grad=True)

    def __repr__(self):
        return f"Parameter(shape={self.shape}, dtype={self.dtype}, device={self.device})"


class Module:
    def __init__(self):
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "training", True)
        object.__setattr__(self, "path", "")

    def __setattr__(self, name, value):
        if "_parameters" not in self.__dict__:
            raise RuntimeError(f"{type(self).__name__}.__init__ must call super().__init__() first")
        self._parameters.pop(name, None)
        self._modules.pop(name, None)
        if isinstance(value, Parameter):
            self._parameters[name] = value
        elif isinstance(value, Module):
            self._modules[name] = value
            value._set_path(_join(self.path, name))
        object.__setattr__(self, name, value)

    def _set_path(self, path):
        """Remember the dotted name from the root, for error messages."""
        object.__setattr__(self, "path", path)
        for name, child in self._modules.items():
            child._set_path(_join(path, name))

    def __call__(self, *inputs):
        try:
            return self.forward(*inputs)
        except ShapeError as error:
            if error.layer is None:  # the innermost module names itself
                error.layer = self
                error.args = (f"{self.path or 'model'} ({self.describe()}): {error.args[0]}",)
            raise

    def forward(self, *inputs):
        raise NotImplementedError(f"{type(self).__name__} must define forward()")

    # -- the tree ------------------------------------------------------------
    def named_modules(self, prefix=""):
        yield prefix, self
        for name, child in self._modules.items():
            yield from child.named_modules(_join(prefix, name))

    def children(self):
        return iter(self._modules.values())

    def named_parameters(self):
        for prefix, module in self.named_modules():
            for name, parameter in module._parameters.items():
                yield _join(prefix, name), parameter

    def parameters(self):
        return [parameter for _, parameter in self.named_parameters()]

    def zero_grad(self):
        for parameter in self.parameters():
            parameter.grad = None

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
        """Copy arrays into the parameters; every mismatch is reported by name."""
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
            parameter.data = xp.array(backend.to_device(state[name], parameter.device), dtype=parameter.dtype)

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


class Sequential(Module):
    """Modules applied in order, registered as '0', '1', ... like torch.nn.Sequential."""

    def __init__(self, *modules):
        super().__init__()
        for index, module in enumerate(modules):
            setattr(self, str(index), module)

    def forward(self, x):
        for module in self._modules.values():
            x = module(x)
        return x

    def __getitem__(self, index):
        return list(self._modules.values())[index]

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())
