"""Colour: the pixel statistics of a set of RGB images, and the paper's PCA colour augmentation.

Section 2 of the paper subtracts the training set's mean activity from each pixel, and section
4.1 shifts the colour of every training image along the principal axes of the RGB pixels.
rgb_statistics measures both on the images trained on; PCALighting applies the shift per batch.
transforms re-exports these names, so `transforms.PCALighting` is the usual spelling.
"""

from typing import NamedTuple

import numpy as np

from .. import backend

# The eigenvalues (as standard deviations, see PCALighting) and eigenvectors (columns) of the
# covariance of ImageNet's RGB pixels on the 0..1 scale, as published with fb.resnet.torch.
IMAGENET_EIGENVALUES = (0.2175, 0.0188, 0.0045)
IMAGENET_EIGENVECTORS = (
    (-0.5675, 0.7192, 0.4009),
    (-0.5808, -0.0045, -0.8140),
    (-0.5836, -0.6948, 0.4203),
)


class PCALighting:
    """The paper's PCA colour augmentation (section 4.1), on a batch (N, 3, H, W).

    To every pixel of image n it adds the same RGB offset [p1, p2, p3] [a1 l1, a2 l2, a3 l3]^T,
    where p_i are the eigenvectors of the RGB covariance, l_i the matching spreads (below),
    and a_i ~ N(0, alpha_std) is drawn once per image. Each image is seen once per epoch, so
    that is once per image per epoch, as in the paper.

    Which l_i: tinynet takes the square roots of the covariance's eigenvalues, the standard
    deviation of the pixels along each principal axis, and so does rgb_statistics. The offset
    is added to pixels, so it must be in pixel units; a variance is in squared units, and the
    paper's literal "eigenvalue" would give an offset that changes relative to the pixels when
    their scale does (255 times larger on the 0..255 scale than on 0..1). With standard
    deviations, a_i ~ N(0, 0.1) moves each image by about a tenth of the data's own spread
    along each axis, on any scale. The ImageNet defaults (0.2175, 0.0188, 0.0045, as published
    with fb.resnet.torch) are used on the same footing, on the 0..1 scale.

    Input pixels are on the 0..255 scale (uint8 or float, before Normalize); the output is
    float32 on the same scale. `rng` is a numpy Generator also for CuPy batches, so both
    draw the same a_i.
    """

    def __init__(self, eigenvalues=IMAGENET_EIGENVALUES, eigenvectors=IMAGENET_EIGENVECTORS,
                 alpha_std=0.1):
        self.eigenvalues = np.asarray(eigenvalues, np.float64)
        self.eigenvectors = np.asarray(eigenvectors, np.float64)
        self.alpha_std = alpha_std

    def __call__(self, batch, rng):
        xp = backend.xp_of(batch)
        if batch.ndim != 4 or batch.shape[1] != 3:
            raise ValueError(f"PCALighting expects an RGB batch (N, 3, H, W), got {batch.shape}")
        alpha = rng.normal(0.0, self.alpha_std, size=(batch.shape[0], 3))
        offsets = (alpha * self.eigenvalues) @ self.eigenvectors.T  # row n: sum_i a_i l_i p_i
        offsets = xp.asarray((255 * offsets).astype(np.float32))
        x = batch.astype(xp.float32)  # the one copy; the offset is added in place
        x += offsets[:, :, None, None]
        return x


class RGBStatistics(NamedTuple):
    """Pixel statistics of a set of RGB images, all on the 0..1 scale."""

    mean: tuple  # per channel, for Normalize
    std: tuple  # per channel, for Normalize
    eigenvalues: tuple  # standard deviations along the principal axes, descending, for PCALighting
    eigenvectors: tuple  # the principal axes, as columns


def rgb_statistics(images):
    """The RGBStatistics of ``images``: a uint8 array (N, 3, H, W), or any iterable of
    uint8 (3, H, W) images, which may differ in size.

    Section 2 of the paper subtracts "the mean activity over the training set" and
    section 4.1 takes the principal components of "the set of RGB pixel values
    throughout the ImageNet training set": both belong to the data set trained on.
    The "eigenvalues" are the square roots of the covariance's eigenvalues, the
    spread of the pixels along each axis (see PCALighting for why).
    """
    count, total, products = 0, np.zeros(3), np.zeros((3, 3))
    for image in images:  # one image at a time bounds the float64 copy
        image = np.asarray(image)
        if image.ndim != 3 or image.shape[0] != 3:
            raise ValueError(f"rgb_statistics expects RGB images (3, H, W), got one of shape {image.shape}")
        pixels = image.reshape(3, -1).astype(np.float64) / 255
        count += pixels.shape[1]
        total += pixels.sum(axis=1)
        products += pixels @ pixels.T
    if count < 2:
        raise ValueError("rgb_statistics needs at least two pixels")
    mean = total / count
    covariance = products / count - np.outer(mean, mean)
    eigenvalues, eigenvectors = np.linalg.eigh(covariance)  # ascending order
    order = np.argsort(eigenvalues)[::-1]
    deviations = np.sqrt(np.clip(eigenvalues[order], 0, None))  # variances -> standard deviations
    std = np.sqrt(np.clip(np.diag(covariance), 0, None))
    rounded = [values.round(6).tolist() for values in (mean, std, deviations, eigenvectors[:, order])]
    return RGBStatistics(*map(tuple, rounded[:3]), tuple(map(tuple, rounded[3])))


def rgb_pca(images):
    """Eigenvalues (descending) and eigenvectors (columns) of the RGB covariance of images,
    as PCALighting takes them: the eigenvalues as standard deviations (see rgb_statistics)."""
    statistics = rgb_statistics(images)
    return np.float32(statistics.eigenvalues), np.float32(statistics.eigenvectors)
