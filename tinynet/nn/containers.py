"""Containers: Sequential runs its modules in order, ModuleList only holds them.

Both register their modules as '0', '1', ..., so a model's parameters and state_dict
see them as ``features.0.weight`` or ``blocks.2.bias``, the names torch gives.
"""

from collections import OrderedDict

from .module import Module


class Sequential(Module):
    """Modules applied in order, registered as '0', '1', ... (or by the names of an OrderedDict)."""

    def __init__(self, *modules):
        super().__init__()
        named = modules[0].items() if len(modules) == 1 and isinstance(modules[0], OrderedDict) else enumerate(modules)
        for name, module in named:
            setattr(self, str(name), _checked(module, type(self)))

    def forward(self, x):
        for module in self._modules.values():
            x = module(x)
        return x

    def __getitem__(self, index):
        if isinstance(index, slice):  # e.g. model.features[:5], a feature extractor
            return _view(Sequential, list(self._modules.items())[index])
        return list(self._modules.values())[index]

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())


class ModuleList(Module):
    """A list of modules whose parameters the model sees, for a forward that loops over them
    (a plain Python list would hide them from parameters(), state_dict() and the optimizer)."""

    def __init__(self, modules=()):
        super().__init__()
        self.extend(modules)

    def append(self, module):
        setattr(self, str(len(self)), _checked(module, type(self)))
        return self

    def extend(self, modules):
        for module in modules:
            self.append(module)
        return self

    def __getitem__(self, index):
        if isinstance(index, slice):
            return _view(ModuleList, enumerate(list(self)[index]))
        return self._modules[self._name(index)]

    def __setitem__(self, index, module):
        setattr(self, self._name(index), _checked(module, type(self)))

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())

    def _name(self, index):
        if not -len(self) <= index < len(self):
            raise IndexError(f"index {index} is out of range for a ModuleList of {len(self)} modules")
        return str(index % len(self))

    def forward(self, *inputs):
        raise TypeError("a ModuleList is not called: loop over its modules in your own forward()")


def _checked(module, container):
    if not isinstance(module, Module):
        raise TypeError(f"{container.__name__} holds Modules, got {module!r} of type {type(module).__name__}"
                        + (": create an instance, e.g. nn.ReLU()" if isinstance(module, type) else ""))
    return module


def _view(container, named_modules):
    """A container over some of another's modules. They are registered directly, not by
    setattr, so they keep the dotted names (in error messages) of the model they belong to."""
    view = container()
    for name, module in named_modules:
        view._modules[str(name)] = module
    return view
