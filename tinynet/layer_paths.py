"""Which path through the heavy layers runs: the fast one (the default) or the reference one.

Convolution, max pooling, local response normalisation, the fully-connected
layer and softmax cross-entropy each exist twice, computing the same numbers:

- ``tinynet/reference/``: the textbook forward and backward, to read, teach and
  step through in a debugger;
- ``tinynet/fast/``: the same Functions with every trick that measured well on
  a 2-core CPU, used for training and benchmarks.

The functional API (``F.conv2d`` and the rest, hence every ``nn`` layer) asks
this module which path to take each time it builds a Function, so the switch
holds for a whole program or for a block:

    tinynet.use_reference_layers()          # from here on
    with tinynet.reference_layers():        # inside this block only
        loss = F.cross_entropy(model(x), y)
        loss.backward()                     # steps into tinynet/reference/

or, without touching the code, ``TINYNET_LAYERS=reference python alexnet.py``.
"""

import contextlib
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


_current = _from_environment()


def use_reference_layers(enabled=True):
    """Run the textbook layers from now on (or, with False, the fast ones again)."""
    global _current
    _current = "reference" if enabled else "fast"


@contextlib.contextmanager
def reference_layers(enabled=True):
    """Run the textbook layers inside this block, then go back to the path before it."""
    global _current
    previous = _current
    use_reference_layers(enabled)
    try:
        yield
    finally:
        _current = previous


def current_path():
    """"fast" or "reference": the path the next layer call takes."""
    return _current


def layers():
    """The module holding the current path's Functions: tinynet.fast or tinynet.reference."""
    return MODULES[_current]
