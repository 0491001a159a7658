"""dtypes with PyTorch's names: tinynet.float32, tinynet.int64, tinynet.bool, and the aliases
tinynet.float, double, half, long, int and short.

They are NumPy's scalar types, so NumPy and CuPy take them as they are
(``array.astype(tinynet.float32)``) and ``t.dtype == tinynet.float32`` holds for a Tensor,
whose dtype is NumPy's.

The names float, int and bool shadow Python's builtins in this module, so its functions use
none of those builtins; the package imports the aliases in ``__init__.py`` alone.
"""

import numpy as np

float16 = np.float16
float32 = np.float32
float64 = np.float64
int8 = np.int8
int16 = np.int16
int32 = np.int32
int64 = np.int64
uint8 = np.uint8
bool = np.bool_

# PyTorch's aliases: torch.float is torch.float32, torch.long is torch.int64, and so on.
float = float32
double = float64
half = float16
long = int64
int = int32
short = int16

SUPPORTED = (float16, float32, float64, int8, int16, int32, int64, uint8, bool)
_NAMES = ", ".join(np.dtype(dtype).name for dtype in SUPPORTED)


def get_default_dtype():
    """The dtype of floating-point tensors made from Python floats: float32, as in PyTorch."""
    return float32


def as_dtype(dtype, caller):
    """``dtype`` (a tinynet dtype, a NumPy dtype or its name, or Python's float, int or bool)
    as a NumPy dtype, if tinynet supports it; otherwise a TypeError that names ``caller``."""
    try:
        resolved = np.dtype(dtype)
    except (TypeError, ValueError):
        resolved = None
    if dtype is None or resolved not in SUPPORTED:
        raise TypeError(f"{caller}: unknown dtype {dtype!r}: expected one of tinynet's dtypes ({_NAMES}), "
                        "e.g. tinynet.float32")
    return resolved
