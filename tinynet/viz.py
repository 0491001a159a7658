"""Plots for looking inside a network and its training.

Training curves, first-layer filters (AlexNet paper, Figure 3), feature maps, a confusion
matrix, image grids and nearest neighbours in feature space (Figure 4).

Each function takes NumPy (or CuPy) arrays and returns a matplotlib Figure built directly
rather than through pyplot: that works on a machine without a display, leaves the user's
backend alone, and needs no ``plt.close()``. Each also takes an optional ``path`` to save
the Figure as a PNG.
"""

import io
import math

import numpy as np
from matplotlib.figure import Figure

from .atomic_file import atomic_write

# Beyond this many classes the numbers no longer fit in the cells of a confusion matrix.
_MAX_ANNOTATED_CLASSES = 20


class _Figure(Figure):
    """A Figure that a notebook shows as an image.

    Jupyter's inline backend teaches the notebook to draw Figures only once pyplot has been
    imported; this Figure draws itself, with or without pyplot.
    """

    def _repr_png_(self):
        buffer = io.BytesIO()
        self.savefig(buffer, format="png", bbox_inches="tight")
        return buffer.getvalue()


def plot_training_curves(history, path=None):
    """Loss and accuracy per epoch from ``history``, a list of dicts, one per epoch.

    The keys are those of the metrics CSV: 'epoch', 'train_loss', 'train_acc', 'val_loss',
    'val_acc', 'val_top5', 'lr'. Any of them may be missing, None or '' (so the rows of
    ``csv.DictReader`` work as they are). Dotted lines mark where the learning rate changed,
    which is where the curves of the paper's schedule (section 5) step down.
    """
    fig = _Figure(figsize=(10, 4), layout="constrained")
    loss_ax, acc_ax = fig.subplots(1, 2)
    panels = [
        (loss_ax, "loss", [("train_loss", "train"), ("val_loss", "val")]),
        (acc_ax, "accuracy", [("train_acc", "train top-1"), ("val_acc", "val top-1"),
                              ("val_top5", "val top-5")]),
    ]
    lr_epochs, lrs = _series(history, "lr")
    changes = [(before + after) / 2 for before, after, old, new
               in zip(lr_epochs, lr_epochs[1:], lrs, lrs[1:]) if new != old]
    for ax, ylabel, curves in panels:
        for key, label in curves:
            epochs, values = _series(history, key)
            if epochs:
                ax.plot(epochs, values, marker=".", label=label)
        for i, epoch in enumerate(changes):
            ax.axvline(epoch, color="gray", linestyle=":", label="lr change" if i == 0 else None)
        ax.set(xlabel="epoch", ylabel=ylabel)
        ax.grid(True, alpha=0.3)
        if ax.lines:
            ax.legend()
    return _save(fig, path)


def plot_layer_norms(rows, path=None):
    """The loss, and each layer's gradient and weight norms, against the step.

    ``rows`` are those of norms.csv (a NormRecorder's): 'step', 'loss', and 'LAYER.grad'
    and 'LAYER.weight' for every layer. Logarithmic axes show a gradient that grows a
    hundredfold as plainly as one that shrinks.
    """
    fig = _Figure(figsize=(15, 4), layout="constrained")
    loss_ax, grad_ax, weight_ax = fig.subplots(1, 3)
    steps = [_number(row, "step") for row in rows]
    loss_ax.plot(steps, [_number(row, "loss") for row in rows], color="black")
    loss_ax.set(xlabel="step", ylabel="training loss", yscale="log")
    layers = [key[:-len(".grad")] for key in rows[0] if key.endswith(".grad")]
    for ax, suffix in ((grad_ax, "grad"), (weight_ax, "weight")):
        for layer in layers:
            ax.plot(steps, [_number(row, f"{layer}.{suffix}") for row in rows], label=layer)
        ax.set(xlabel="step", ylabel=f"{'gradient' if suffix == 'grad' else 'weight'} norm", yscale="log")
        ax.legend(fontsize=7)
    for ax in (loss_ax, grad_ax, weight_ax):
        ax.grid(True, alpha=0.3)
    return _save(fig, path)


def plot_filters(weights, path=None, ncols=None):
    """Convolution kernels, shape (out_channels, in_channels, kh, kw), as a grid of images.

    Each filter is min-max scaled on its own, as in the paper's Figure 3: their ranges differ,
    and a shared scale would leave most of them flat grey. Three input channels are shown as
    RGB, one as grayscale, any other count as the grayscale mean over channels. For conv1's
    96 filters, ``ncols=16`` gives the paper's layout.
    """
    weights = _as_numpy(weights)
    _check_ndim("plot_filters", "weights", weights, "(out_channels, in_channels, kh, kw)", 4)
    fig, axes = _grid(len(weights), ncols, panel_inches=0.6)
    for ax, image in zip(axes, _displayable(weights)):
        _show(ax, image)
    return _save(fig, path)


def plot_feature_maps(maps, path=None, max_maps=64, title=None):
    """The activations of one image, shape (C, H, W) or (1, C, H, W): its first ``max_maps``
    channels, each scaled on its own so that weakly active channels stay visible."""
    maps = _as_numpy(maps)
    if maps.ndim == 4 and len(maps) == 1:
        maps = maps[0]
    _check_ndim("plot_feature_maps", "maps", maps, "(C, H, W) or (1, C, H, W)", 3)
    maps = maps[:max_maps]
    fig, axes = _grid(len(maps), None, panel_inches=1.0)
    for ax, image in zip(axes, _rescale_each(maps)):
        _show(ax, image, cmap="viridis")
    if title is not None:
        fig.suptitle(title)
    return _save(fig, path)


def confusion_matrix(targets, predictions, num_classes):
    """Entry [i, j] counts the samples of true class i predicted as class j."""
    targets = _as_numpy(targets).astype(np.int64).ravel()
    predictions = _as_numpy(predictions).astype(np.int64).ravel()
    if targets.shape != predictions.shape:
        raise ValueError(f"confusion_matrix expects as many predictions as targets, "
                         f"got {predictions.size} predictions for {targets.size} targets")
    for name, labels in (("targets", targets), ("predictions", predictions)):
        if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
            raise ValueError(f"confusion_matrix expects {name} in [0, {num_classes}), "
                             f"got values from {labels.min()} to {labels.max()}")
    # Each (target, prediction) pair gets its own bin, so one bincount counts them all.
    pairs = targets * num_classes + predictions
    return np.bincount(pairs, minlength=num_classes**2).reshape(num_classes, num_classes)


def plot_confusion_matrix(targets, predictions, class_names, path=None, normalize=True):
    """The confusion matrix of class labels, true classes down, predicted across.

    With ``normalize`` each row is divided by its class's sample count, so the diagonal is
    each class's recall and classes of different sizes compare; cells show percentages.
    Otherwise cells show counts.
    """
    num_classes = len(class_names)
    matrix = confusion_matrix(targets, predictions, num_classes)
    if normalize:
        matrix = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    side = min(max(4, 0.5 * num_classes + 2), 20)
    fig = _Figure(figsize=(side + 1, side), layout="constrained")
    ax = fig.add_subplot()
    image = ax.imshow(matrix, cmap="Blues", vmin=0)
    fig.colorbar(image, ax=ax)
    ticks = range(num_classes)
    ax.set(xticks=ticks, yticks=ticks, xticklabels=class_names, yticklabels=class_names,
           xlabel="predicted", ylabel="true")
    ax.tick_params(axis="x", labelrotation=90)
    if num_classes <= _MAX_ANNOTATED_CLASSES:
        dark = matrix.max() / 2
        for (row, col), value in np.ndenumerate(matrix):
            ax.text(col, row, f"{value:.0%}" if normalize else str(value), ha="center",
                    va="center", fontsize=8, color="white" if value > dark else "black")
    return _save(fig, path)


def plot_images(images, labels=None, class_names=None, path=None, ncols=8):
    """A grid of images, shape (N, C, H, W) or (N, H, W), titled by their labels.

    uint8 images are shown as they are; float images (such as normalised network inputs)
    are each min-max scaled. A title is ``class_names[label]``, or the label itself.
    """
    images = _as_numpy(images)
    if images.ndim == 3:
        images = images[:, None]
    _check_ndim("plot_images", "images", images, "(N, C, H, W) or (N, H, W)", 4)
    titles = [None] * len(images)
    if labels is not None:
        labels = _as_numpy(labels).ravel()
        if len(labels) != len(images):
            raise ValueError(f"plot_images expects one label per image, "
                             f"got {len(labels)} labels for {len(images)} images")
        titles = [str(label) if class_names is None else class_names[int(label)]
                  for label in labels]
    fig, axes = _grid(len(images), ncols, panel_inches=1.5)
    for ax, image, title in zip(axes, _displayable(images), titles):
        _show(ax, image, title=title)
    return _save(fig, path)


def plot_nearest_neighbours(query_images, neighbour_images, path=None):
    """One row per query image, shape (Q, C, H, W): the query, then its k neighbours from
    ``neighbour_images``, shape (Q, k, C, H, W).

    The paper's Figure 4 picks neighbours by Euclidean distance between the 4096-wide
    activations of the last hidden layer: close there means alike in content, even when the
    pixels differ. Images are scaled as in ``plot_images``.
    """
    queries, neighbours = _as_numpy(query_images), _as_numpy(neighbour_images)
    name = "plot_nearest_neighbours"
    _check_ndim(name, "query_images", queries, "(Q, C, H, W)", 4)
    _check_ndim(name, "neighbour_images", neighbours, "(Q, k, C, H, W)", 5)
    if neighbours.shape[0] != queries.shape[0] or neighbours.shape[2:] != queries.shape[1:]:
        raise ValueError(f"{name} expects neighbour_images of shape (Q, k, C, H, W) matching "
                         f"query_images {queries.shape}, got {neighbours.shape}")
    rows = np.concatenate([queries[:, None], neighbours], axis=1)
    per_row = rows.shape[1]
    images = _displayable(rows.reshape(-1, *rows.shape[2:]))
    # Only the first row is titled: the columns mean the same in every row.
    titles = ["query"] + [f"neighbour {i}" for i in range(1, per_row)] + [None] * (len(images) - per_row)
    fig, axes = _grid(len(images), per_row, panel_inches=1.2)
    for ax, image, title in zip(axes, images, titles):
        _show(ax, image, title=title)
    return _save(fig, path)


def _as_numpy(array):
    """A NumPy array from a NumPy or CuPy array (CuPy's ``.get()`` copies it to the host)."""
    return np.asarray(array.get() if hasattr(array, "get") else array)


def _check_ndim(function, name, array, expected, ndim):
    if array.ndim != ndim:
        raise ValueError(f"{function} expects {name} of shape {expected}, got shape {array.shape}")


def _series(history, key):
    """The epochs and values of ``key`` over the rows of ``history`` that have it."""
    points = [(_number(row, "epoch", default=i + 1), _number(row, key))
              for i, row in enumerate(history)]
    points = [(epoch, value) for epoch, value in points if value is not None]
    return [epoch for epoch, _ in points], [value for _, value in points]


def _number(row, key, default=None):
    # CSV rows hold numbers as strings and missing ones as ''.
    value = row.get(key)
    return default if value is None or value == "" else float(value)


def _rescale_each(batch):
    """Min-max scale each item of ``batch`` to [0, 1] on its own; a constant item becomes 0."""
    axes = tuple(range(1, batch.ndim))
    low = batch.min(axis=axes, keepdims=True)
    span = batch.max(axis=axes, keepdims=True) - low
    return (batch - low) / np.where(span > 0, span, 1)


def _displayable(images):
    """(N, C, H, W) images to (N, H, W, 3) RGB or (N, H, W) grayscale in [0, 1]."""
    is_uint8 = images.dtype == np.uint8
    channels = images.shape[1]
    if channels == 3:
        images = images.transpose(0, 2, 3, 1)
    elif channels == 1:
        images = images[:, 0]
    else:
        images = images.mean(axis=1)
    return images / 255.0 if is_uint8 else _rescale_each(images.astype(np.float64))


def _grid(count, ncols, panel_inches):
    """A Figure with ``count`` axes in rows of ``ncols``; a near-square grid when None."""
    if count == 0:
        raise ValueError("nothing to plot: the array is empty")
    ncols = min(count, ncols or math.ceil(math.sqrt(count)))
    nrows = math.ceil(count / ncols)
    fig = _Figure(figsize=(ncols * panel_inches, nrows * panel_inches), layout="constrained")
    return fig, [fig.add_subplot(nrows, ncols, i + 1) for i in range(count)]


def _show(ax, image, title=None, cmap="gray"):
    # Nearest interpolation keeps the pixels of an 11x11 kernel sharp instead of blurred.
    ax.imshow(image, cmap=cmap, vmin=0, vmax=1, interpolation="nearest")
    ax.set_axis_off()
    if title is not None:
        ax.set_title(title, fontsize=8)


def _save(fig, path):
    """Write ``fig`` as a PNG to ``path`` atomically, so whoever reads the file (say,
    while training refreshes it) never sees half a PNG."""
    if path is not None:
        with atomic_write(path) as file:
            fig.savefig(file, format="png", bbox_inches="tight")
    return fig
