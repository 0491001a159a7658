import numpy as np
import pytest
from matplotlib.figure import Figure
from PIL import Image

from tinynet import viz

RNG = np.random.default_rng(0)
CLASSES = ["cat", "dog", "car"]


def images_in(fig):
    return [image for ax in fig.axes for image in ax.get_images()]


def titles_in(fig):
    return [ax.get_title() for ax in fig.axes]


def history():
    # Epoch 2 has no validation row and reads like csv.DictReader output: strings and ''.
    return [
        {"epoch": 1, "train_loss": 6.9, "train_acc": 0.01, "val_loss": 6.8, "val_acc": 0.02,
         "val_top5": 0.07, "lr": 0.01},
        {"epoch": "2", "train_loss": "5.0", "train_acc": "0.1", "val_loss": "",
         "val_acc": None, "lr": "0.01"},
        {"epoch": 3, "train_loss": 4.0, "train_acc": 0.2, "val_loss": 4.1, "val_acc": 0.19,
         "val_top5": 0.4, "lr": 0.001},
    ]


class FakeCupyArray:
    """Stands in for a CuPy array: only ``.get()`` copies it to the host."""

    def __init__(self, array):
        self.array = array

    def get(self):
        return self.array


def test_confusion_matrix_counts_pairs():
    targets = np.array([0, 0, 1, 2, 2, 2])
    predictions = np.array([0, 1, 1, 2, 0, 2])
    expected = np.array([[1, 1, 0],
                         [0, 1, 0],
                         [1, 0, 2]])
    np.testing.assert_array_equal(viz.confusion_matrix(targets, predictions, 3), expected)


def test_confusion_matrix_keeps_absent_classes():
    matrix = viz.confusion_matrix(np.array([1]), np.array([1]), 4)
    assert matrix.shape == (4, 4) and matrix.sum() == 1 and matrix[1, 1] == 1


def test_confusion_matrix_rejects_bad_labels():
    with pytest.raises(ValueError, match=r"targets in \[0, 3\), got values from 0 to 3"):
        viz.confusion_matrix(np.array([0, 3]), np.array([0, 1]), 3)
    with pytest.raises(ValueError, match="2 predictions for 3 targets"):
        viz.confusion_matrix(np.array([0, 1, 2]), np.array([0, 1]), 3)


def test_plot_confusion_matrix_shows_percentages_or_counts():
    targets, predictions = np.array([0, 0, 1, 2]), np.array([0, 1, 1, 2])
    fig = viz.plot_confusion_matrix(targets, predictions, CLASSES)
    assert isinstance(fig, Figure)
    assert len(fig.axes) == 2  # the matrix and its colour bar
    matrix_ax = fig.axes[0]
    assert [t.get_text() for t in matrix_ax.get_yticklabels()] == CLASSES
    cells = [t.get_text() for t in matrix_ax.texts]
    assert cells[:3] == ["50%", "50%", "0%"] and cells[-1] == "100%"

    fig = viz.plot_confusion_matrix(targets, predictions, CLASSES, normalize=False)
    assert [t.get_text() for t in fig.axes[0].texts][:3] == ["1", "1", "0"]


def test_plot_training_curves_skips_missing_values():
    fig = viz.plot_training_curves(history())
    loss_ax, acc_ax = fig.axes
    curves = {line.get_label(): line.get_xdata() for line in loss_ax.lines + acc_ax.lines}
    np.testing.assert_array_equal(curves["train"], [1, 2, 3])
    np.testing.assert_array_equal(curves["val"], [1, 3])
    np.testing.assert_array_equal(curves["val top-5"], [1, 3])
    # The learning rate changed between epochs 2 and 3.
    np.testing.assert_array_equal(curves["lr change"], [2.5, 2.5])
    assert {"train top-1", "val top-1"} <= set(curves)
    assert loss_ax.get_legend() is not None and acc_ax.get_legend() is not None


def test_plot_training_curves_numbers_epochs_when_missing():
    fig = viz.plot_training_curves([{"train_loss": 2.0}, {"train_loss": 1.0}])
    (line,) = fig.axes[0].lines
    np.testing.assert_array_equal(line.get_xdata(), [1, 2])
    assert fig.axes[1].get_legend() is None


def test_plot_filters_scales_each_filter_to_rgb():
    weights = RNG.normal(size=(6, 3, 5, 5)).astype(np.float32)
    weights[1] *= 100
    images = images_in(viz.plot_filters(weights))
    assert len(images) == 6
    for image in images:
        data = image.get_array()
        assert data.shape == (5, 5, 3)
        assert data.min() == 0 and data.max() == pytest.approx(1)


@pytest.mark.parametrize("in_channels", [1, 4])
def test_plot_filters_shows_other_channel_counts_in_grayscale(in_channels):
    images = images_in(viz.plot_filters(RNG.normal(size=(5, in_channels, 3, 3)), ncols=2))
    assert len(images) == 5 and images[0].get_array().shape == (3, 3)


def test_plot_filters_rejects_bad_shape():
    with pytest.raises(ValueError, match=r"\(out_channels, in_channels, kh, kw\), "
                                         r"got shape \(3, 4\)"):
        viz.plot_filters(np.zeros((3, 4)))


def test_plot_feature_maps_limits_count_and_accepts_batch_of_one():
    maps = np.maximum(RNG.normal(size=(1, 10, 6, 6)), 0)
    assert len(images_in(viz.plot_feature_maps(maps))) == 10
    fig = viz.plot_feature_maps(maps[0], max_maps=4, title="conv1")
    assert len(images_in(fig)) == 4 and fig.get_suptitle() == "conv1"


def test_plot_feature_maps_rejects_several_images():
    with pytest.raises(ValueError, match=r"\(C, H, W\) or \(1, C, H, W\), got shape \(2, 3, 4, 4\)"):
        viz.plot_feature_maps(np.zeros((2, 3, 4, 4)))


def test_plot_images_titles_with_class_names():
    images = RNG.integers(0, 256, size=(5, 3, 8, 8), dtype=np.uint8)
    fig = viz.plot_images(images, labels=np.array([0, 1, 2, 1, 0]), class_names=CLASSES, ncols=4)
    assert len(images_in(fig)) == 5
    assert titles_in(fig) == ["cat", "dog", "car", "dog", "cat"]
    # uint8 pixels keep their brightness instead of being stretched.
    np.testing.assert_allclose(images_in(fig)[0].get_array(), images[0].transpose(1, 2, 0) / 255)


def test_plot_images_accepts_grayscale_and_cupy_arrays():
    fig = viz.plot_images(FakeCupyArray(RNG.random((3, 8, 8))), labels=[7, 8, 9])
    assert len(images_in(fig)) == 3 and titles_in(fig) == ["7", "8", "9"]


def test_plot_images_rejects_wrong_label_count():
    with pytest.raises(ValueError, match="2 labels for 3 images"):
        viz.plot_images(np.zeros((3, 8, 8)), labels=[0, 1])


def test_plot_nearest_neighbours_shows_query_then_neighbours():
    fig = viz.plot_nearest_neighbours(RNG.random((2, 3, 8, 8)), RNG.random((2, 4, 3, 8, 8)))
    assert len(images_in(fig)) == 2 * 5
    assert titles_in(fig)[:5] == ["query"] + [f"neighbour {i}" for i in range(1, 5)]


def test_plot_nearest_neighbours_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match=r"matching query_images \(2, 3, 8, 8\), "
                                         r"got \(3, 4, 3, 8, 8\)"):
        viz.plot_nearest_neighbours(np.zeros((2, 3, 8, 8)), np.zeros((3, 4, 3, 8, 8)))
    with pytest.raises(ValueError, match=r"\(Q, k, C, H, W\), got shape \(2, 3, 8, 8\)"):
        viz.plot_nearest_neighbours(np.zeros((2, 3, 8, 8)), np.zeros((2, 3, 8, 8)))


@pytest.mark.parametrize("plot", [
    lambda path: viz.plot_training_curves(history(), path=path),
    lambda path: viz.plot_filters(RNG.normal(size=(4, 3, 3, 3)), path=path),
    lambda path: viz.plot_feature_maps(RNG.random((4, 5, 5)), path=path),
    lambda path: viz.plot_confusion_matrix([0, 1, 2], [0, 2, 2], CLASSES, path=path),
    lambda path: viz.plot_images(RNG.random((2, 3, 8, 8)), path=path),
    lambda path: viz.plot_nearest_neighbours(RNG.random((1, 3, 8, 8)),
                                             RNG.random((1, 2, 3, 8, 8)), path=path),
], ids=["curves", "filters", "feature_maps", "confusion", "images", "neighbours"])
def test_path_writes_a_png_and_nothing_else(plot, tmp_path):
    path = tmp_path / "plot.png"
    assert isinstance(plot(path), Figure)
    with Image.open(path) as image:
        assert image.format == "PNG" and image.width > 0 and image.height > 0
    assert list(tmp_path.iterdir()) == [path]


def test_figure_renders_itself_in_notebooks():
    png = viz.plot_filters(np.ones((1, 1, 2, 2)))._repr_png_()
    assert png.startswith(b"\x89PNG")
