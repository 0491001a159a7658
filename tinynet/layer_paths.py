"""Which path through the heavy layers runs: the fast one (the default) or the reference one.

Convolution, max pooling, the fully-connected layer and ReLU each exist twice,
computing the same numbers:

- ``tinynet/reference/``: the textbook forward and backward, to read, teach and
  step through in a debugger;
- ``tinynet/fast/``: the same Functions with every trick that measured well on
  a 2-core CPU, used for training and benchmarks.

Local response normalisation and softmax cross-entropy exist twice too, but
their fast versions differ from the reference on a GPU only (CUDA kernels).

The functional API (``F.conv2d`` and the rest, hence every ``nn`` layer) asks
this module which path to take each time it builds a Function, so the switch
holds for a whole program or for a block:

    tinynet.use_reference_layers()          # from here on, in every thread
    with tinynet.reference_layers():        # inside this block only (and its thread)
        loss = F.cross_entropy(model(x), y)
        loss.backward()                     # steps into tinynet/reference/

or, without touching the code, ``TINYNET_LAYERS=reference python alexnet.py``.
"""

import contextlib
import contextvars
import os

from . import fast, reference

MODULES = {"fast": fast, "reference": reference}
PATHS = tuple(MODULES)
ENVIRONMENT_VARIABLE = "TINYNET_LAYERS"


def _from_environment():
    path = os.environ.get(ENVIRONMENT_VARIABLE, "fast")
    if path not in PATHS:
        raise ValueError(f"{ENVIRONMENT_VARIABLE}={path!r} is not a layer path: expected one of {PATHS}")
    return path


# The program's path, and the path of the innermost `with reference_layers(...)`
# block around the running code, if any. The block's is a context variable, so
# a block in one thread leaves the other threads on the program's path.
_program_path = _from_environment()
_block_path = contextvars.ContextVar("tinynet_block_layer_path", default=None)


def use_reference_layers(enabled=True):
    """Run the textbook layers from now on, in every thread (or, with False, the fast ones again)."""
    global _program_path
    _program_path = "reference" if enabled else "fast"


@contextlib.contextmanager
def reference_layers(enabled=True):
    """Run the textbook layers (or, with False, the fast ones) inside this block only."""
    token = _block_path.set("reference" if enabled else "fast")
    try:
        yield
    finally:
        _block_path.reset(token)


def current_path():
    """"fast" or "reference": the path the next layer call takes."""
    return _block_path.get() or _program_path


def layers():
    """The module holding the current path's Functions: tinynet.fast or tinynet.reference."""
    return MODULES[current_path()]
