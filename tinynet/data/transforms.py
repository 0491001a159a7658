"""Image transforms: per sample with Pillow and NumPy, per batch on NumPy or CuPy arrays.

Per-sample transforms run in the DataLoader's workers on one image, a PIL image or a uint8
array (H, W, C), and return a uint8 array (ToTensor: a float32 Tensor). tinynet's transforms
are called as `transform(x, rng)` with a numpy.random.Generator; random ones draw from it and
deterministic ones ignore it, so `Compose` passes one generator down the chain and nothing
touches a global RNG.

Any other callable works too, torchvision-style: the rule (apply_transform, which Compose,
Lambda and the datasets follow) is that a transform with a parameter named `rng` is called
as `transform(x, rng)`, and any other callable as `transform(x)`. So `lambda x: x * 2`, a
class whose `__call__(self, img)` takes the image alone, and `Lambda(f)` all work, and
a random transform of your own stays reproducible by taking `rng`.

torchvision's pipeline works as written, on one sample, and the DataLoader then gives
Tensor batches (N, C, H, W):
    Compose([ToTensor(), Normalize((0.5,), (0.5,))])
ToTensor scales uint8 pixels to 0..1; Normalize then computes (x - mean) / std, as torchvision's.
Given an array rather than a Tensor, Normalize takes pixels on the 0..255 scale instead: that
is tinynet's faster way, normalising whole uint8 batches (N, C, H, W) on the training device.

Batch transforms run in the training loop on a whole batch (N, C, H, W), on whichever
device holds it, after the batch has left the DataLoader.

The paper's pipeline (Krizhevsky et al. 2012, sections 2 and 4.1), with 227 rather than 224
so that conv1 yields 55x55:
    every image:  Resize(256), CenterCrop(256)
    training:     RandomCrop(227), RandomHorizontalFlip(), ToCHW()
                  then per batch: PCALighting(...), Normalize(mean, std)
    testing:      TenCrop(227), ToCHW(), then Normalize, and average the ten predictions

RescaledRandomCrop(256, 227) does the first three steps of training in one resampling, and
RescaledCenterCrop(256, 227) those of a single centre crop at test time: the same crops at
about half the cost (see RescaledRandomCrop).

The training crop RescaledRandomCrop says how large its input must be to keep every pixel it
will use, its `min_input_side`: ImageFolder then lets Pillow decode a large JPEG at 1/2, 1/4 or
1/8 of its size (draft mode) as long as the shorter side stays at least that long. Draft
decoding gives other pixels than decoding at full size and resizing, so the transforms that
validation and prediction use (Resize, the crops, RescaledCenterCrop) declare none: there an
image decodes at full size, as torchvision decodes it.
"""

import functools
import inspect

import numpy as np
from PIL import Image

from .. import backend
from ..tensor import Tensor
from .lighting import (
    IMAGENET_EIGENVALUES,
    IMAGENET_EIGENVECTORS,
    PCALighting,
    RGBStatistics,
    rgb_pca,
    rgb_statistics,
)

# Statistics of ImageNet's RGB pixels on the 0..1 scale, as published with torchvision and
# fb.resnet.torch: channel means and standard deviations, for Normalize (lighting.py has the
# principal axes, for PCALighting).
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

__all__ = [
    "IMAGENET_MEAN", "IMAGENET_STD", "IMAGENET_EIGENVALUES", "IMAGENET_EIGENVECTORS",
    "apply_transform", "Compose", "Lambda", "ToTensor", "Normalize",
    "Resize", "CenterCrop", "RandomCrop", "RescaledRandomCrop", "RescaledCenterCrop",
    "RandomHorizontalFlip", "TenCrop", "ToCHW", "PCALighting", "RGBStatistics", "rgb_statistics", "rgb_pca",
]


@functools.lru_cache(maxsize=256)
def _takes_rng(call):
    try:
        return "rng" in inspect.signature(call).parameters
    except (TypeError, ValueError):  # a builtin without a signature takes the sample alone
        return False


def apply_transform(transform, x, rng):
    """`transform(x, rng)` if the transform has a parameter named rng, else `transform(x)`."""
    # A class's instances share its __call__, so the signature is read once per class.
    plain = inspect.isfunction(transform) or inspect.ismethod(transform)
    return transform(x, rng) if _takes_rng(transform if plain else type(transform).__call__) else transform(x)


def _as_hwc(image):
    """A PIL image or an array as a uint8 array (H, W, C); grey images get C = 1."""
    if isinstance(image, Tensor):
        raise TypeError("this transform takes a PIL image or an (H, W, C) array, not a Tensor: "
                        "put it before ToTensor() in Compose")
    array = np.asarray(image)
    if array.ndim == 2:
        array = array[:, :, None]
    if array.ndim != 3:
        raise ValueError(f"expected an image (H, W, C), got an array of shape {array.shape}")
    return array


def _to_pil(image):
    if isinstance(image, Image.Image):
        return image
    array = _as_hwc(image)
    return Image.fromarray(array[:, :, 0] if array.shape[2] == 1 else array)


def _pair(size):
    return (size, size) if isinstance(size, int) else tuple(size)


def _check_fits(name, image, height, width):
    if image.shape[0] < height or image.shape[1] < width:
        raise ValueError(
            f"{name}: the image is {image.shape[0]}x{image.shape[1]}, smaller than the "
            f"{height}x{width} crop; resize it first"
        )


def _center_offsets(shape, height, width):
    # Rounded like torchvision's center_crop, so both crop the same pixels.
    return int(round((shape[0] - height) / 2)), int(round((shape[1] - width) / 2))


def _rescaled_size(width, height, side):
    """(width, height) once the shorter side is scaled to `side`; the longer side is truncated,
    as torchvision does."""
    short, long = sorted((width, height))
    scaled = (side, int(side * long / short))
    return scaled if width <= height else scaled[::-1]


class Compose:
    """Apply transforms in order, passing the same generator to each that takes one."""

    def __init__(self, transforms):
        self.transforms = list(transforms)

    @property
    def min_input_side(self):
        """The first transform's: only it sees the image as decoded."""
        return getattr(self.transforms[0], "min_input_side", None) if self.transforms else None

    def __call__(self, image, rng=None):
        for transform in self.transforms:
            image = apply_transform(transform, image, rng)
        return image


class Lambda:
    """A function as a transform, as torchvision's Lambda (called with rng if it takes one)."""

    def __init__(self, function):
        if not callable(function):
            raise TypeError(f"Lambda needs a function, got {type(function).__name__}")
        self.function = function

    def __call__(self, image, rng=None):
        return apply_transform(self.function, image, rng)


class ToTensor:
    """A PIL image or an array (H, W, C) to a float32 Tensor (C, H, W), as torchvision's ToTensor.

    uint8 pixels (and PIL images of them) are divided by 255, to the 0..1 scale; an array of
    another dtype keeps its values, as in torchvision. A grey image (H, W) gets one channel.
    """

    def __call__(self, image, rng=None):
        array = _as_hwc(image)
        chw = array.transpose(2, 0, 1).astype(np.float32, order="C")
        if array.dtype == np.uint8:
            chw /= 255
        return Tensor(chw)


class Resize:
    """Scale the shorter side to `size` keeping the aspect ratio, or to exactly (h, w)."""

    def __init__(self, size, resample=Image.Resampling.BILINEAR):
        self.size = size
        self.resample = resample

    def __call__(self, image, rng=None):
        image = _to_pil(image)
        if isinstance(self.size, int):
            width, height = _rescaled_size(*image.size, self.size)
        else:
            height, width = self.size
        return _as_hwc(image.resize((width, height), self.resample))


class CenterCrop:
    """The central (h, w) patch."""

    def __init__(self, size):
        self.size = _pair(size)

    def __call__(self, image, rng=None):
        image, (height, width) = _as_hwc(image), self.size
        _check_fits("CenterCrop", image, height, width)
        top, left = _center_offsets(image.shape, height, width)
        return image[top:top + height, left:left + width]


class RandomCrop:
    """A (h, w) patch at a uniformly random position (section 4.1: 224x224 out of 256x256)."""

    def __init__(self, size):
        self.size = _pair(size)

    def __call__(self, image, rng):
        image, (height, width) = _as_hwc(image), self.size
        _check_fits("RandomCrop", image, height, width)
        top = rng.integers(0, image.shape[0] - height + 1)
        left = rng.integers(0, image.shape[1] - width + 1)
        return image[top:top + height, left:left + width]


class RescaledRandomCrop:
    """Resize(side), CenterCrop(side) and RandomCrop(size) in one resampling.

    Why: the three-step way resamples the whole image to a shorter side of 256 (341x256 for a
    500x375 photo), keeps its central 256x256 and then a random 227x227 window of that: more
    than half of the resampled pixels are thrown away. The window is a box in the original
    image, and Pillow's `resize(size, resample, box=...)` resamples that box alone, with the
    same scale and the same filter, so it costs about 0.6 of the first step and saves the
    crops' copies. An image whose shorter side is already `side` (a dataset rescaled beforehand,
    as the paper's was) is cropped without resampling, exactly as the three steps crop it.

    The same crop: the offsets are drawn from `rng` exactly as RandomCrop draws them (top,
    then left, each uniform over the side - size + 1 positions of the central square), and
    the box is where Resize would have sent those pixels, so the crop covers the same part of
    the image. Not bit for bit the same: Pillow places the filter of a box-relative pixel by
    a slightly different floating-point sum, which moves about one value in a thousand by one
    level (measured on photo-like JPEGs; tested: never more than one level).
    """

    def __init__(self, side, size, resample=Image.Resampling.BILINEAR):
        self.side = side
        self.size = _pair(size)
        self.resample = resample
        if not isinstance(side, int) or side < 1 or min(self.size) < 1 or max(self.size) > side:
            raise ValueError(f"{type(self).__name__}: need a crop {self.size} that fits in the "
                             f"{side}x{side} centre square of the rescaled image")

    @property
    def min_input_side(self):
        return self.side

    def offsets(self, rng):
        """Where the crop starts in the central side x side square: (top, left)."""
        height, width = self.size
        return rng.integers(0, self.side - height + 1), rng.integers(0, self.side - width + 1)

    def box(self, width, height, top, left):
        """The crop at (top, left) of the rescaled centre square, as a box (x0, y0, x1, y1) in
        an image of width x height."""
        rescaled = _rescaled_size(width, height, self.side)
        scale_x, scale_y = width / rescaled[0], height / rescaled[1]
        center_top, center_left = _center_offsets(rescaled[::-1], self.side, self.side)
        y0, x0 = center_top + top, center_left + left
        return (x0 * scale_x, y0 * scale_y, (x0 + self.size[1]) * scale_x, (y0 + self.size[0]) * scale_y)

    def __call__(self, image, rng):
        image = _to_pil(image)
        top, left = self.offsets(rng)
        if _rescaled_size(*image.size, self.side) == image.size:  # already rescaled: a plain crop
            x0, y0, x1, y1 = (round(edge) for edge in self.box(*image.size, top, left))
            return _as_hwc(image)[y0:y1, x0:x1]
        return _as_hwc(image.resize(self.size[::-1], self.resample, box=self.box(*image.size, top, left)))


class RescaledCenterCrop(RescaledRandomCrop):
    """Resize(side), CenterCrop(side) and CenterCrop(size) in one resampling: the test-time
    view of RescaledRandomCrop (see it for why, and how close it is to the three steps)."""

    min_input_side = None  # a test-time view: decoded at full size, never in draft mode

    def offsets(self, rng=None):
        return _center_offsets((self.side, self.side), *self.size)

    def __call__(self, image, rng=None):
        return super().__call__(image, rng)


class RandomHorizontalFlip:
    """Mirror the image left to right with probability p (section 4.1's reflections)."""

    def __init__(self, p=0.5):
        self.p = p

    def __call__(self, image, rng):
        image = _as_hwc(image)
        return image[:, ::-1] if rng.random() < self.p else image


class TenCrop:
    """The four corner patches, the center patch, and their mirror images (section 4.1, testing).

    Returns a uint8 array (10, h, w, C): the five crops (top-left, top-right, bottom-left,
    bottom-right, center), then the same five flipped left to right.
    """

    def __init__(self, size):
        self.size = _pair(size)

    def __call__(self, image, rng=None):
        image, (height, width) = _as_hwc(image), self.size
        _check_fits("TenCrop", image, height, width)
        bottom, right = image.shape[0] - height, image.shape[1] - width
        corners = [(0, 0), (0, right), (bottom, 0), (bottom, right)]
        offsets = corners + [_center_offsets(image.shape, height, width)]
        crops = np.stack([image[top:top + height, left:left + width] for top, left in offsets])
        return np.concatenate([crops, crops[:, :, ::-1]])


class ToCHW:
    """Channels first: (H, W, C) -> (C, H, W), and (K, H, W, C) -> (K, C, H, W) for TenCrop."""

    def __call__(self, image, rng=None):
        image = np.asarray(image)
        if image.ndim == 2:  # a grey image has one channel
            image = image[:, :, None]
        return np.moveaxis(image, -1, -3)


class Normalize:
    """`(x - mean) / std` per channel, for a Tensor on the 0..1 scale (ToTensor's output) as
    torchvision's Normalize, and for an array of pixels on the 0..255 scale (uint8 or float,
    tinynet's batches) as float32 `(x / 255 - mean) / std`.

    `mean` and `std` are per channel on the 0..1 scale, like IMAGENET_MEAN and IMAGENET_STD.
    The channel axis is the third from last, so one image (C, H, W), a batch (N, C, H, W) and
    TenCrop's (N, 10, C, H, W) all work. On a Tensor it is Tensor arithmetic, so gradients flow.
    """

    def __init__(self, mean, std):
        self.mean = np.asarray(mean, np.float32).reshape(-1, 1, 1)
        self.std = np.asarray(std, np.float32).reshape(-1, 1, 1)

    def __call__(self, batch, rng=None):
        self._check_channels(batch)
        xp = backend.xp_of(batch.data if isinstance(batch, Tensor) else batch)  # follow the batch's device
        if isinstance(batch, Tensor):
            if batch.dtype.kind != "f":  # torchvision refuses it too: 0..255 pixels would pass unscaled
                raise TypeError(f"Normalize: a Tensor must hold floats on the 0..1 scale (ToTensor's), "
                                f"got {batch.dtype}; use ToTensor() first, or pass the uint8 array itself")
            return (batch - xp.asarray(self.mean)) / xp.asarray(self.std)
        x = batch.astype(xp.float32)  # a copy: the in-place steps below leave `batch` alone
        x /= 255
        x -= xp.asarray(self.mean)
        x /= xp.asarray(self.std)
        return x

    def _check_channels(self, batch):
        if batch.ndim < 3 or batch.shape[-3] != len(self.mean):
            raise ValueError(
                f"Normalize has {len(self.mean)} channel statistics but the batch of shape "
                f"{batch.shape} has {batch.shape[-3] if batch.ndim >= 3 else 'no'} channels "
                "on its channel axis (third from last)"
            )
