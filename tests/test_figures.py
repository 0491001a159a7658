"""The lessons' figures (tutorials/figures/draw.py): they are drawn, and what they state is true."""

import importlib.util
import re
from pathlib import Path

import numpy as np
import pytest
from matplotlib.colors import to_rgba
from matplotlib.patches import FancyArrowPatch, Rectangle
from PIL import Image

import alexnet
import tinynet
import tinynet.functional as F
from tinynet import optim
from tinynet.reference.conv import im2col

DRAW = Path(__file__).resolve().parent.parent / "tutorials" / "figures" / "draw.py"


@pytest.fixture(scope="module")
def draw():
    spec = importlib.util.spec_from_file_location("draw", DRAW)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


HIGHLIGHT = "#f6b26b"  # draw.py's colour of a highlighted cell


def texts(fig):
    return [text.get_text() for ax in fig.axes for text in ax.texts]


def test_draw_all_writes_three_images_of_lesson_width(draw, tmp_path):
    paths = draw.draw_all(tmp_path)
    assert sorted(path.name for path in paths) == ["alexnet_architecture.png", "computational_graph.png",
                                                   "im2col.png"]
    for path in paths:
        width, height = Image.open(path).size
        assert 900 <= width <= 1250 and 250 <= height <= 800, (path.name, width, height)


# -- the computational graph ---------------------------------------------------------------


def test_graph_numbers_are_the_order_backward_calls_the_functions(draw):
    x = tinynet.tensor([1.0, 2.0, 3.0], requires_grad=True)
    w = tinynet.tensor([0.5, -1.0, 2.0], requires_grad=True)
    ((x * w).sum() ** 2).backward()
    loss, names = draw.neuron_with_skip()
    graph = draw.record_graph(loss, names)
    fig = draw.draw_graph(graph, "title", "caption")
    calls = []
    for function in graph.functions:  # record each backward as the engine calls it
        function.backward = lambda grad, f=function, run=function.backward: calls.append(f) or run(grad)
    loss.backward()
    assert calls == graph.functions
    assert [type(f).__name__ for f in calls] == ["Sum", "Add", "ReLU", "Add", "Mul"]
    # Each red number sits on the Function that backward() called at that step.
    position = draw.graph_layout(graph)
    badges = {int(t.get_text()): t.get_position() for t in fig.axes[0].texts if t.get_text().isdigit()}
    assert sorted(badges) == [1, 2, 3, 4, 5]
    for step, function in enumerate(calls, start=1):
        assert np.hypot(*np.subtract(badges[step], position[function])) < 0.6


def test_graph_shows_every_recorded_input_and_runs_each_function_after_its_consumers(draw):
    x = tinynet.tensor([1.0, 2.0, 3.0], requires_grad=True)
    w = tinynet.tensor([0.5, -1.0, 2.0], requires_grad=True)
    ((x * w).sum() ** 2).backward()
    loss, names = draw.neuron_with_skip()
    graph = draw.record_graph(loss, names)
    for function in graph.functions:
        into = [source for source, target in graph.edges if target is function]
        assert len(into) == len(function.inputs)
    step = {function: i for i, function in enumerate(graph.functions)}
    maker = {name: function for function, name in graph.outputs.items()}
    for source, target in graph.edges:
        if source in maker and target in step:  # an intermediate tensor read by a Function
            assert step[maker[source]] > step[target]
    readers_of_h = [target for source, target in graph.edges if source == "h"]
    assert len(readers_of_h) == 2
    assert graph.tensors["x"] == ((3,), False) and graph.tensors["w"] == ((3,), True)
    assert graph.tensors["L"][0] == ()


# -- im2col --------------------------------------------------------------------------------


def highlighted_numbers(ax, x_from, x_to):
    """The numbers written in the highlighted cells whose left edge lies in [x_from, x_to)."""
    cells = {p.get_xy() for p in ax.patches if isinstance(p, Rectangle) and x_from <= p.get_x() < x_to
             and p.get_facecolor() == to_rgba(HIGHLIGHT)}
    return sorted(float(t.get_text()) for t in ax.texts if tuple(np.subtract(t.get_position(), 0.5)) in cells)


@pytest.mark.parametrize("channels, size, field", [(2, 4, (1, 1)), (1, 5, (2, 1)), (3, 4, (0, 1))])
def test_im2col_figure_highlights_the_same_field_in_the_input_and_the_columns(draw, channels, size, field):
    fig, unrolling = draw.im2col_figure(channels=channels, size=size, field=field)
    (y, x), k = field, unrolling.kernel
    receptive_field = unrolling.image[0, :, y:y + k, x:x + k]
    np.testing.assert_array_equal(unrolling.columns[:, unrolling.column], receptive_field.ravel())
    # The input grids lie left of x = size, the column matrix right of them, the output beyond it.
    in_input = highlighted_numbers(fig.axes[0], 0, size)
    in_matrix = highlighted_numbers(fig.axes[0], size, size + 5 + unrolling.columns.shape[1])
    assert in_input == in_matrix == sorted(receptive_field.ravel().tolist())


def test_im2col_figure_column_times_a_filter_is_that_output_of_the_convolution(draw):
    _, unrolling = draw.im2col_figure()
    weight = np.random.default_rng(0).standard_normal((5, 2, 3, 3)).astype(np.float32)
    out = F.conv2d(tinynet.tensor(unrolling.image), tinynet.tensor(weight)).numpy()
    y, x = unrolling.field
    np.testing.assert_allclose(weight.reshape(5, -1) @ unrolling.columns[:, unrolling.column], out[0, :, y, x],
                               rtol=1e-5)


# -- the AlexNet architecture --------------------------------------------------------------

# The paper's Figure 2 and section 3.5, channels first: what each learned layer outputs, and
# what comes out after its ReLU, LRN and pooling.
PAPER_SHAPES = [(96, 55, 55), (256, 27, 27), (384, 13, 13), (384, 13, 13), (256, 13, 13), (4096,), (4096,), (1000,)]
PAPER_STAGE_OUTPUTS = [(96, 27, 27), (256, 13, 13), (384, 13, 13), (384, 13, 13), (256, 6, 6), (4096,), (4096,),
                       (1000,)]


@pytest.fixture(scope="module")
def architecture(draw):
    return draw.alexnet_figure()


def test_architecture_shapes_are_the_paper_models(architecture):
    fig, stages = architecture
    assert [s.name for s in stages] == ["conv1", "conv2", "conv3", "conv4", "conv5", "fc6", "fc7", "fc8"]
    assert [s.shape for s in stages] == PAPER_SHAPES
    assert [s.out_shape for s in stages] == PAPER_STAGE_OUTPUTS
    shown = texts(fig)
    boxes = [text for text in shown if re.fullmatch(r"\d+(x\d+)*", text)]
    halves = [(c // 2, *rest) for c, *rest in PAPER_SHAPES[:-1]]  # each GPU's box: half the channels
    assert boxes == ["x".join(map(str, half)) for half in halves for _gpu in range(2)] + ["1000"]
    assert any(text.endswith("→ 256x6x6\n442,624 params") for text in shown)


def test_architecture_states_the_parameter_count_and_draws_the_two_gpu_split(architecture):
    fig, stages = architecture
    assert "60,965,224 parameters" in fig.get_suptitle()
    assert sum(p.numel() for s in stages for p in s.layer.parameters()) == 60_965_224
    assert [getattr(s.layer, "groups", 1) for s in stages[:5]] == [1, 2, 1, 2, 2]
    # Black (the title says): a grouped layer's half reads its own GPU's half, so conv2, conv4 and
    # conv5 have 2 each. Grey: a half reads both halves, 4 each for conv3, fc6 and fc7, and
    # the whole image and the whole fc8 are linked to both halves, 2 each.
    colours = [to_rgba(p.get_edgecolor()) for p in fig.axes[0].patches if isinstance(p, FancyArrowPatch)]
    assert colours.count(to_rgba("black")) == 3 * 2
    assert colours.count(to_rgba("#777777")) == 3 * 4 + 2 + 2


# -- the syllabus's numbers ----------------------------------------------------------------

SYLLABUS = DRAW.parent.parent / "SYLLABUS.md"


def listed(values, spec="g"):
    return "[" + ", ".join(format(value, spec) for value in values) + "]"


def syllabus_numbers(draw, stages):
    """The numbers tutorials/SYLLABUS.md states in its answers, computed, as the syllabus writes them."""
    x = tinynet.tensor([1.0, 2.0, 3.0], requires_grad=True)
    w = tinynet.tensor([0.5, -1.0, 2.0], requires_grad=True)
    ((x * w).sum() ** 2).backward()
    loss, names = draw.neuron_with_skip()
    leaves = {names[id(t)]: t for f in draw.record_graph(loss, names).functions for t in f.inputs if t.creator is None}
    loss.backward()
    scores = tinynet.tensor([[2.0, 1.0, 0.0]], requires_grad=True)
    ce = F.cross_entropy(scores, np.array([0]))
    ce.backward()
    columns = im2col(np.zeros((1, 3, 227, 227), np.float32), (11, 11), (4, 4))
    activity = np.array([1, 2, 40, 3, 1, 50, 2], np.float32).reshape(1, 7, 1, 1)
    lrn = [F.local_response_norm(tinynet.Tensor(activity), 5, 1e-4, 0.75, 2.0, alpha_over_n=over_n).numpy()[0, 2, 0, 0]
           for over_n in (False, True)]
    weight = tinynet.tensor([1.0], requires_grad=True)
    weight.grad = np.array([0.5], np.float32)
    optim.SGD([weight], lr=0.01, momentum=0.9, weight_decay=5e-4, update="paper").step()
    params = [sum(p.numel() for p in s.layer.parameters()) for s in stages]
    madds = [alexnet.layer_cost(s.layer, tinynet.Tensor(np.zeros((1, *s.shape), np.float32)))[1] for s in stages]
    # every layer's output once: the learned layer's, then one per ReLU, LRN or dropout, and the pooled one
    outputs = sum(np.prod(s.shape) * (1 + len(s.after) - ("MaxPool2d" in s.after))
                  + np.prod(s.out_shape) * ("MaxPool2d" in s.after) for s in stages)
    fits = [size for size in range(200, 300) if alexnet.feature_size(alexnet.PRESETS["paper"], size) == 6]
    side_224 = alexnet.feature_size(alexnet.PRESETS["paper"], 224)
    seed = sum(p.numel() for p in alexnet.AlexNet("seed", 1000, 3).parameters())
    small = sum(p.numel() for p in alexnet.AlexNet("small", 10, 1).parameters())
    return [
        f"dL/dx = 2z·w = {listed(x.grad)}", f"dL/dw = 2z·x = {listed(w.grad)}",
        f"w.grad = x · dL/dh = {listed(leaves['w'].grad)}", f"b.grad = {listed(leaves['b'].grad)}",
        f"{small:,} parameters of the small AlexNet", f"{2 * small:,}",
        f"p = {listed(F.softmax(scores, dim=1).numpy()[0], '.3f')}", f"{ce.item():.3f}",
        f"gradient = p − onehot = {listed(scores.grad[0], '.3f')}".replace("-", "−"),
        f"{columns.shape}", f"{columns.nbytes / 2**20:.2f} MiB", f"{columns.size / (3 * 227 * 227):.2f} times",
        f"{227 * 227 * 3 * 55 * 55 * 96:,}", f"{params[0]:,}",
        f"= {lrn[0]:.2f}", f"= {lrn[1]:.2f}", f"{float(weight.data[0]):g}",
        f"from {fits[0]} to {fits[-1]}", f"{4096 * 256 * side_224**2 + 4096:,}", f"{params[5]:,}",
        f"{sum(params):,} against {seed:,}", f"{params[1]:,} instead of {256 * 96 * 5 * 5 + 256:,}",
        f"{sum(madds):,}", f"{sum(params[:5]) / sum(params):.1%} of the parameters",
        f"{sum(madds[:5]) / sum(madds):.1%} of the multiply-adds",
        f"{outputs:,} values per image, {outputs * 4 * 128 / 2**30:.2f} GiB",
        f"{3 * sum(params) * 4 / 2**20:.1f} MiB ({3 * sum(params) * 4 / 2**30:.2f} GiB)",
        f"{2 * (256 - 224 + 1) ** 2:,} for 224", f"{2 * (256 - 227 + 1) ** 2:,} for 227",
        f"{1_200_000 // 128:,} steps per epoch, {90 * 1_200_000 // 128:,} in all",
    ]


def test_syllabus_answers_state_the_numbers_the_code_computes(draw, architecture):
    text = " ".join(SYLLABUS.read_text(encoding="utf-8").split())  # line breaks as spaces
    missing = [number for number in syllabus_numbers(draw, architecture[1]) if number not in text]
    assert not missing, f"tutorials/SYLLABUS.md does not state these computed values: {missing}"
