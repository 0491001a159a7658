"""The three diagrams of the lessons, drawn from what tinynet computes.

    python tutorials/figures/draw.py [FOLDER]      (FOLDER defaults to this script's folder)

writes computational_graph.png (lesson 1), im2col.png (lesson 4) and alexnet_architecture.png
(lesson 6). Nothing in them is typed in by hand: the graph is the one the autograd engine records,
the columns are what im2col returns, the shapes are what the paper's AlexNet outputs. Each
``*_figure`` function returns the Figure and the facts it shows, so tests can check those facts.
"""

import itertools
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Circle, FancyArrowPatch, FancyBboxPatch, Rectangle

import alexnet
import tinynet
from tinynet import nn
from tinynet.reference.conv import im2col
from tinynet.tensor import _topological_order

DPI = 100  # figures are sized in inches for about 1100 px at this resolution: a lesson's width
TENSOR, FUNCTION, NO_GRAD, SCORES = "#cfe2f3", "#fce5cd", "#eeeeee", "#d9ead3"  # box colours
HIGHLIGHT, BACKWARD = "#f6b26b", "#cc0000"  # what a figure points at


# -- 1. the computational graph (lesson 1) -------------------------------------------------


def neuron_with_skip():
    """L = sum(relu(h) + h) with h = w*x + b, and names for its tensors.

    h feeds two Functions, so the order of the backward pass matters: h's Add may only run
    once both have sent their part of h's gradient. x is data, so it asks for no gradient.
    """
    w = tinynet.tensor([0.5, -1.0, 2.0], requires_grad=True)
    x = tinynet.tensor([1.0, 2.0, -0.5])
    b = tinynet.tensor([0.1, 0.2, 0.3], requires_grad=True)
    wx = w * x
    h = wx + b
    r = h.relu()
    s = r + h
    loss = s.sum()
    # Leaves are kept in the graph as themselves, results only through their creator.
    names = {id(w): "w", id(x): "x", id(b): "b", wx.creator: "wx", h.creator: "h", r.creator: "r",
             s.creator: "s", loss.creator: "L"}
    return loss, names


@dataclass
class Graph:
    functions: list  # in the order backward() calls them
    tensors: dict  # name -> (shape, requires_grad)
    edges: list  # (source, target): a tensor name and a Function, or a Function and its output's name
    outputs: dict  # Function -> the name of the tensor it made


def record_graph(loss, names):
    """The graph behind ``loss``, walked as the engine walks it: creator, then inputs."""
    functions = _topological_order(loss.creator)
    outputs = {function: names[function] for function in functions}
    tensors = {outputs[loss.creator]: (loss.shape, True)}
    edges = []
    for function in functions:
        edges.append((function, outputs[function]))
        for tensor in function.inputs:  # a leaf Tensor, or an Edge to the Function that made it
            name = names[id(tensor)] if tensor.creator is None else outputs[tensor.creator]
            tensors[name] = (tensor.shape, tensor.requires_grad)
            edges.append((name, function))
    return Graph(functions, tensors, edges, outputs)


def graph_layout(graph):
    """(column, row) of every node: data flows from left to right, each node right of its inputs."""
    column = {}
    for function in reversed(graph.functions):  # each Function after the ones it reads from
        inputs = [source for source, target in graph.edges if target is function]
        column[function] = 1 + max(column.get(source, 0) for source in inputs)
        column[graph.outputs[function]] = column[function] + 1
    leaves = [name for name in graph.tensors if name not in graph.outputs.values()]
    for leaf in leaves:  # just left of the first Function that reads it
        column[leaf] = min(column[target] for source, target in graph.edges if source == leaf) - 1
    by_column = {}
    for node, position in column.items():
        by_column.setdefault(position, []).append(node)
    return {node: (position, (len(nodes) - 1) / 2 - i) for position, nodes in by_column.items()
            for i, node in enumerate(nodes)}


def computational_graph_figure():
    graph = record_graph(*neuron_with_skip())
    title = ("L = sum(relu(h) + h),  h = w*x + b:  the tensors (boxes) and the Functions that made them (circles), "
             "as tinynet records them")
    caption = ("red: the order in which loss.backward() calls each Function's backward (a topological order). "
               "h feeds two Functions,\nso the Add that made h runs only after both have sent their part of h's "
               "gradient; w and b get theirs in .grad, x (data) none.")
    return draw_graph(graph, title, caption), graph


def draw_graph(graph, title, caption):
    position = graph_layout(graph)
    fig = Figure(figsize=(11.5, 3.3), dpi=DPI, layout="constrained")
    ax = fig.add_subplot()
    ax.set_aspect("equal")
    ax.axis("off")
    patches = {}
    for node, (x, y) in position.items():
        if isinstance(node, str):  # a tensor: its name and shape
            shape, requires_grad = graph.tensors[node]
            text = f"{node}\n{tuple(shape)}" + ("" if requires_grad else "\nno grad")
            patches[node] = add_box(ax, (x, y), (0.78, 0.5), text, TENSOR if requires_grad else NO_GRAD, 10)
        else:  # a Function: its class, and its step in the backward pass
            patches[node] = ax.add_patch(Circle((x, y), 0.37, facecolor=FUNCTION, edgecolor="black"))
            ax.text(x, y, type(node).__name__, ha="center", va="center", fontsize=10, weight="bold")
            ax.text(x + 0.3, y + 0.37, str(graph.functions.index(node) + 1), ha="center", va="center", fontsize=11,
                    color="white", weight="bold", bbox=dict(boxstyle="circle,pad=0.2", color=BACKWARD))
    for source, target in graph.edges:
        skip = position[target][0] - position[source][0] > 1  # a straight arrow would cross the nodes between
        ax.add_patch(FancyArrowPatch(position[source], position[target], patchA=patches[source],
                                     patchB=patches[target], arrowstyle="-|>", mutation_scale=14,
                                     connectionstyle=f"arc3,rad={-0.45 if skip else 0}", zorder=0))
    columns, rows = zip(*position.values())
    ax.set_xlim(min(columns) - 0.5, max(columns) + 0.5)
    ax.set_ylim(min(rows) - 1.1, max(rows) + 1.0)
    ax.text(min(columns) - 0.4, min(rows) - 0.75, caption, fontsize=10, color=BACKWARD, va="center")
    fig.suptitle(title, fontsize=12)
    return fig


def add_box(ax, centre, size, text, colour, fontsize):
    """A rounded box with centred text; returns the box, which arrows can end on."""
    (x, y), (width, height) = centre, size
    box = ax.add_patch(FancyBboxPatch((x - width / 2, y - height / 2), width, height, boxstyle="round,pad=0.02",
                                      facecolor=colour, edgecolor="black"))
    ax.text(x, y, text, ha="center", va="center", fontsize=fontsize)
    return box


# -- 2. im2col (lesson 4) -----------------------------------------------------------------


@dataclass
class Unrolling:
    image: np.ndarray  # (1, C, H, W), each element numbered
    columns: np.ndarray  # im2col's output, (C*kh*kw, oh*ow)
    kernel: int
    field: tuple  # (y, x): the output position whose receptive field is highlighted

    @property
    def column(self):
        """Index of the highlighted field's column: im2col orders columns by output position."""
        return self.field[0] * self.out_size + self.field[1]

    @property
    def out_size(self):
        return self.image.shape[3] - self.kernel + 1


def im2col_figure(channels=2, size=4, kernel=3, field=(1, 1)):
    """Input channels (left), im2col's columns (middle), the output they make (right); a cell is one unit."""
    image = np.arange(channels * size * size, dtype=np.float32).reshape(1, channels, size, size)
    unrolling = Unrolling(image, im2col(image, (kernel, kernel), (1, 1)), kernel, field)
    columns, column, (y, x) = unrolling.columns, unrolling.column, field
    fig = Figure(figsize=(9.8, 7.2), dpi=DPI, layout="constrained")
    ax = fig.add_subplot()
    ax.set_aspect("equal")
    ax.axis("off")
    in_field = np.zeros((size, size), bool)
    in_field[y:y + kernel, x:x + kernel] = True
    tops = [c * (size + 1.5) + 1 for c in range(channels)]
    for c, top in enumerate(tops):
        draw_cells(ax, in_field, (0, top), image[0, c])
        ax.text(size / 2, top + size + 0.2, f"input channel {c}", ha="center", va="top", fontsize=11)
    left = size + 5
    draw_columns(ax, unrolling, left)
    out_left, out_top = left + columns.shape[1] + 4, columns.shape[0] - unrolling.out_size
    out_cell = np.zeros((unrolling.out_size,) * 2, bool)
    out_cell[y, x] = True
    draw_cells(ax, out_cell, (out_left, out_top))
    ax.text(out_left + unrolling.out_size / 2, out_top - 0.3,
            f"output channel o\n\ny[o, {y}, {x}] = w[o] @ column {column}\n(w[o]: o's filter, 1 x {columns.shape[0]})",
            ha="center", va="bottom", fontsize=10.5)
    # The field's arrow leaves its right side and lands above the column labels; the column's arrow
    # leaves below the matrix: neither crosses a cell (the field touches the grid's right and bottom).
    arrow = dict(arrowstyle="-|>", mutation_scale=18, color=BACKWARD, linewidth=2)
    ax.add_patch(FancyArrowPatch((x + kernel + 0.05, tops[0] + y + kernel / 2), (left + column + 0.5, -0.85),
                                 connectionstyle="arc3,rad=-0.35", **arrow))
    ax.add_patch(FancyArrowPatch((left + column + 0.5, columns.shape[0] + 0.05),
                                 (out_left + x + 0.5, out_top + y + 1.05), connectionstyle="arc3,rad=0.5", **arrow))
    ax.set_xlim(-0.5, out_left + unrolling.out_size + 1)
    ax.set_ylim(columns.shape[0] + 2.3, -3)  # rows downwards, as arrays print
    fig.suptitle(f"{kernel}x{kernel} kernel, stride 1: the receptive field of output ({y},{x}) becomes column "
                 f"{column}; all outputs at once: weights (out, {columns.shape[0]}) @ columns = (out, "
                 f"{columns.shape[1]})", fontsize=11)
    return fig, unrolling


def draw_columns(ax, unrolling, left):
    """im2col's matrix with the highlighted column, each row named by its channel and kernel offset."""
    columns, kernel, out_size = unrolling.columns, unrolling.kernel, unrolling.out_size
    in_column = np.zeros(columns.shape, bool)
    in_column[:, unrolling.column] = True
    draw_cells(ax, in_column, (left, 0), columns)
    rows_per_channel = kernel * kernel
    for row in range(columns.shape[0]):
        c, offset = divmod(row, rows_per_channel)
        ax.text(left - 0.2, row + 0.5, f"c{c} ({offset // kernel},{offset % kernel})", ha="right", va="center",
                fontsize=8.5, color="#444444")
    for c in range(1, columns.shape[0] // rows_per_channel):  # a rule between one channel's rows and the next
        ax.plot([left - 2, left + columns.shape[1]], [c * rows_per_channel] * 2, color="black", linewidth=1.5)
    for position in range(columns.shape[1]):
        ax.text(left + position + 0.5, -0.2, f"({position // out_size},{position % out_size})", ha="center",
                va="bottom", fontsize=8)
    ax.text(left + columns.shape[1] / 2, -1.7, f"im2col: columns {columns.shape}\ncolumn = output position (y, x)",
            ha="center", va="bottom", fontsize=11)
    ax.text(left - 2.2, columns.shape[0] / 2, "row = channel c, kernel offset (i, j)", rotation=90, ha="right",
            va="center", fontsize=10)


def draw_cells(ax, highlighted, corner, values=None):
    """A grid of cells, the highlighted ones filled, with their values written in (if given)."""
    left, top = corner
    for (row, col), lit in np.ndenumerate(highlighted):
        ax.add_patch(Rectangle((left + col, top + row), 1, 1, edgecolor="grey",
                               facecolor=HIGHLIGHT if lit else "white"))
        if values is not None:
            ax.text(left + col + 0.5, top + row + 0.5, f"{values[row, col]:g}", ha="center", va="center",
                    fontsize=9.5)


# -- 3. the AlexNet architecture (lesson 6) ------------------------------------------------


@dataclass
class Stage:
    """A learned layer (conv or fully-connected) and the layers that follow it up to the next one."""

    name: str
    layer: object
    shape: tuple  # the learned layer's output, per image
    out_shape: tuple = None  # after the ReLU, LRN, pooling or dropout that follow it
    after: list = field(default_factory=list)


def alexnet_stages(model, size):
    """A zero image run through the model layer by layer, as ``python alexnet.py summary`` does."""
    x = tinynet.Tensor(np.zeros((1, model.in_channels, size, size), np.float32))
    stages = []
    with tinynet.no_grad():
        for block in (model.features, model.classifier):
            x = x if block is model.features else x.flatten(1)
            for layer in block:
                x = layer(x)
                if isinstance(layer, nn.Conv2d | nn.Linear):
                    kind = "conv" if isinstance(layer, nn.Conv2d) else "fc"
                    stages.append(Stage(f"{kind}{len(stages) + 1}", layer, tuple(x.shape[1:])))
                else:
                    stages[-1].after.append(type(layer).__name__)
                stages[-1].out_shape = tuple(x.shape[1:])
    return stages


def describe(stage):
    """The lines under a stage's boxes: what the layer is, what follows it, what comes out."""
    layer = stage.layer
    if isinstance(layer, nn.Linear):
        lines = [f"{layer.in_features} → {layer.out_features}"]
    else:
        (k, _), (s, _), (p, _) = layer.kernel_size, layer.stride, layer.padding
        lines = [f"{k}x{k}" + (f", stride {s}" if s > 1 else "") + (f", pad {p}" if p else ""),
                 f"groups={layer.groups}"]
    short = {"ReLU": "ReLU", "LocalResponseNorm": "LRN", "MaxPool2d": "pool 3/2", "Dropout": "dropout"}
    lines += [", ".join(short[name] for name in stage.after) or "(class scores)",
              "→ " + "x".join(map(str, stage.out_shape)),
              f"{sum(p.numel() for p in layer.parameters()):,} params"]
    return "\n".join(lines)


def halves(shape):
    """What each GPU holds of a layer's output: half of its channels (or units)."""
    return "x".join(map(str, (shape[0] // 2, *shape[1:])))


def alexnet_figure(preset="paper"):
    model = alexnet.AlexNet(preset, num_classes=1000, in_channels=3)
    size = alexnet.PRESETS[preset].input_size
    stages = alexnet_stages(model, size)
    fig = Figure(figsize=(12, 3.9), dpi=DPI, layout="constrained")
    ax = fig.add_subplot()
    ax.axis("off")
    ax.set_xlim(-0.6, len(stages) + 0.6)
    ax.set_ylim(-1.75, 1.5)
    half, both = (0.72, 0.5), (0.72, 1.25)  # a box on one GPU; a box across both
    gpu_rows, middle = (0.75, 0.0), 0.375  # GPU 1 above, GPU 2 below
    image = add_box(ax, (0, middle), both, f"image\n3x{size}x{size}", NO_GRAD, 9.5)
    previous = [image, image]  # the whole image goes to both GPUs
    for column, stage in enumerate(stages, start=1):
        if stage is stages[-1]:  # the class scores: one layer that reads both GPUs' halves of fc7
            boxes = [add_box(ax, (column, middle), both, str(stage.shape[0]), SCORES, 10.5)] * 2
        else:
            boxes = [add_box(ax, (column, row), half, halves(stage.shape), colour, 9.5)
                     for row, colour in zip(gpu_rows, (TENSOR, FUNCTION))]
        connect(ax, previous, boxes, grouped=getattr(stage.layer, "groups", 1) > 1)
        ax.text(column, 1.3, stage.name, ha="center", va="center", fontsize=11, weight="bold")
        ax.text(column, -0.4, describe(stage), ha="center", va="top", fontsize=8.8)
        previous = boxes
    for row, name in zip(gpu_rows, ("GPU 1", "GPU 2")):
        ax.text(-0.5, row, name, ha="right", va="center", fontsize=10, rotation=90)
    total = sum(p.numel() for p in model.parameters())
    fig.suptitle(f"AlexNet ({preset} preset, {total:,} parameters): each GPU holds half of every layer's channels "
                 "(boxes: channels x height x width)\ngroups=2 (conv2, conv4, conv5): each half reads only its own "
                 "GPU's maps (black);  conv3 and fc6-fc8 read both GPUs' (grey)", fontsize=11)
    return fig, stages


def connect(ax, sources, targets, grouped):
    """Grouped: each GPU's half reads its own GPU's half; otherwise every half reads both halves."""
    pairs = zip(sources, targets) if grouped else itertools.product(sources, targets)
    for source, target in dict.fromkeys(pairs):  # a box across both GPUs is linked once
        ax.add_patch(FancyArrowPatch(centre(source), centre(target), patchA=source, patchB=target,
                                     arrowstyle="-|>", mutation_scale=11, zorder=0,
                                     color="black" if grouped else "#777777"))


def centre(patch):
    box = patch.get_bbox()
    return ((box.x0 + box.x1) / 2, (box.y0 + box.y1) / 2)


# -- all three ------------------------------------------------------------------------------

FIGURES = {
    "computational_graph.png": computational_graph_figure,
    "im2col.png": im2col_figure,
    "alexnet_architecture.png": alexnet_figure,
}


def draw_all(folder):
    """Write the three PNGs into ``folder``; returns their paths."""
    paths = []
    for filename, make in FIGURES.items():
        fig, _ = make()
        paths.append(Path(folder) / filename)
        fig.savefig(paths[-1], dpi=DPI, metadata={"Software": None})  # no version stamp: reruns give equal files
    return paths


if __name__ == "__main__":
    for path in draw_all(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).parent):
        print(path)
