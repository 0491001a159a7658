"""What every optimizer shares: parameter groups, per-parameter state, saving and loading."""

from .. import backend
from ..nn.module import clear_grad
from ..tensor import Tensor


def group_setting(name):
    """A property for a setting of every parameter group at once: ``optimizer.lr`` reads the
    rate the groups share (an error if they differ) and setting it sets every group's.
    torch has only ``param_groups``; tinynet keeps this shorthand, which the training loop,
    the schedules' users and the lessons read, and which means the same with one group."""

    def read(self):
        values = [group[name] for group in self.param_groups]
        if any(value != values[0] for value in values):
            raise ValueError(f"the parameter groups have different {name} values {values}: "
                             f"read param_groups[i][{name!r}] instead of .{name}")
        return values[0]

    def write(self, value):
        for group in self.param_groups:
            group[name] = value

    return property(read, write, doc=f"The {name} of every parameter group (they must agree to read it).")


class Optimizer:
    """Parameters in groups, each with its own settings, and a state for each parameter.

    ``param_groups`` is a list of dicts, as in torch: ``{"params": [...], "lr": 0.01, ...}``,
    a setting a group leaves out taking the optimizer's default. Changing ``group["lr"]``
    changes the rate the next ``step()`` uses. ``state[i]`` holds what a subclass keeps
    for the i-th parameter, counted over the groups in order (its velocity, its moments).
    """

    state_arrays = ()  # names of the per-parameter arrays a subclass keeps
    state_counts = ()  # names of its per-parameter integers (Adam's step count)

    def __init__(self, params, defaults):
        self.defaults = defaults
        self.param_groups, self.state = [], []
        for group in _as_groups(params, type(self).__name__):
            self.add_param_group(group)

    lr = group_setting("lr")

    def add_param_group(self, group):
        """Add ``{"params": [...], setting: value, ...}``; settings left out take the defaults."""
        params = group["params"]
        params = [params] if isinstance(params, Tensor) else list(params)
        for param in params:
            if not isinstance(param, Tensor) or not param.is_leaf:
                raise TypeError(f"{type(self).__name__} optimizes leaf Tensors (parameters), got {param!r}")
        known = {id(p) for g in self.param_groups for p in g["params"]}
        if len({id(p) for p in params} | known) != len(params) + len(known):
            raise ValueError("some parameters appear twice, in one parameter group or in two")
        group = {**self.defaults, **group, "params": params}
        self.check_group(group)
        self.param_groups.append(group)
        self.state.extend({} for _ in params)

    def check_group(self, group):
        """Raise a ValueError for a setting the update cannot use (each subclass knows its own)."""

    def zero_grad(self, set_to_none=True):
        """Forget every parameter's gradient (``set_to_none=False``: fill it with zeros instead)."""
        for group in self.param_groups:
            for param in group["params"]:
                clear_grad(param, set_to_none)

    def with_grads(self):
        """(group, index, parameter) for every parameter that has a gradient to apply."""
        everything = ((group, param) for group in self.param_groups for param in group["params"])
        for index, (group, param) in enumerate(everything):
            if param.grad is not None:
                yield group, index, param

    # -- saving and loading --------------------------------------------------
    def state_dict(self):
        """A flat dict a checkpoint can hold: ``param_groups`` (each group's settings, its
        parameters as their indices) and every parameter's state as "NAME.INDEX" -> value,
        e.g. "velocity.3" -> the 4th parameter's velocity (the arrays themselves, not copies)."""
        groups, start = [], 0
        for group in self.param_groups:
            settings = {k: v for k, v in group.items() if k != "params"}
            groups.append({**settings, "params": list(range(start, start + len(group["params"])))})
            start += len(group["params"])
        state = {"param_groups": groups}
        state.update({f"{name}.{index}": value
                      for index, entries in enumerate(self.state) for name, value in entries.items()})
        return state

    def load_state_dict(self, state):
        """Take back what ``state_dict`` gave, checked whole before anything changes. A state
        saved before parameter groups existed (its settings at the top: "lr", "momentum", ...)
        loads too, its settings going to every group."""
        if "param_groups" in state:
            saved_groups = state["param_groups"]
        else:
            settings = {k: state[k] for k in self.defaults if k in state}
            saved_groups = [{**settings, "params": group["params"]} for group in self.param_groups]
        self._check_same_groups(saved_groups)
        per_parameter = self._saved_per_parameter(state)
        for saved, group in zip(saved_groups, self.param_groups):
            group.update({k: v for k, v in saved.items() if k != "params"})
        self.state = per_parameter

    def _check_same_groups(self, saved_groups):
        sizes = [len(group["params"]) for group in self.param_groups]
        saved_sizes = [len(group["params"]) for group in saved_groups]
        if sizes != saved_sizes:
            raise ValueError(f"the saved optimizer state has parameter groups of {saved_sizes} parameters; this "
                             f"{type(self).__name__} has groups of {sizes}")

    def _saved_per_parameter(self, state):
        params = [param for group in self.param_groups for param in group["params"]]
        entries = [{} for _ in params]
        for key, value in state.items():
            if key == "param_groups" or key in self.defaults:
                continue
            name, _, index = key.rpartition(".")
            if name not in self.state_arrays + self.state_counts or not index.isdigit() or int(index) >= len(params):
                raise ValueError(f"optimizer state {key!r} matches no state of {type(self).__name__}, which keeps "
                                 f"{', '.join(self.state_arrays + self.state_counts)} for each of {len(params)} "
                                 "parameters")
            entries[int(index)][name] = self._restored(key, value, params[int(index)])
        return entries

    def _restored(self, key, value, param):
        """A saved count as an int, a saved array on the parameter's device in its dtype (a copy)."""
        if key.rpartition(".")[0] in self.state_counts:
            return int(value)
        value = value.data if isinstance(value, Tensor) else value
        if tuple(value.shape) != param.shape:
            raise ValueError(f"optimizer state {key} of shape {tuple(value.shape)} does not match its parameter's "
                             f"shape {param.shape}")
        return backend.to_device(value, param.device).astype(param.dtype)


def _as_groups(params, optimizer):
    if isinstance(params, Tensor):
        raise TypeError(f"{optimizer} takes an iterable of Tensors or of dicts (parameter groups), got one Tensor: "
                        "pass model.parameters() or [tensor]")
    params = list(params)
    if not params:
        raise ValueError(f"{optimizer} got an empty parameter list")
    return params if isinstance(params[0], dict) else [{"params": params}]


# Elements updated at a time on the CPU. An update makes several passes (scale the
# velocity, add the gradient, the decay, then the step); done a block at a time, the
# blocks of weights, gradient and state (768 KB for SGD) stay in a core's L2 cache, so
# each passes over main memory once and the temporaries are small and reused instead
# of fresh arrays the size of fc6's weights (151 MB each). Measured: about 90 ms instead
# of 200 ms per AlexNet SGD step on 2 cores.
BLOCK = 1 << 16


def blocks(*arrays):
    """Matching views of BLOCK elements of each array (None stays None); the whole arrays
    on a GPU or when one of them is not in C order."""
    present = [a for a in arrays if a is not None]
    if backend.device_of(present[0]) != "cpu" or not all(a.flags.c_contiguous for a in present):
        yield arrays
        return
    flat = [None if a is None else a.reshape(-1) for a in arrays]
    for start in range(0, present[0].size, BLOCK):
        yield tuple(None if a is None else a[start:start + BLOCK] for a in flat)
