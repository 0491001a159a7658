"""What the loader tests compare: two lists of (images, labels) batches, equal bit for bit."""

import numpy as np


def assert_same_batches(batches, expected):
    assert len(batches) == len(expected)
    for (images, labels), (want_images, want_labels) in zip(batches, expected):
        assert images.dtype == want_images.dtype and images.shape == want_images.shape
        np.testing.assert_array_equal(images, want_images)
        np.testing.assert_array_equal(labels, want_labels)
