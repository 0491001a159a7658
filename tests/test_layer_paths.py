"""The two paths through the heavy layers: the switch, and the fast path equal to the reference path."""

import os
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

import alexnet
import tinynet
import tinynet.functional as F
from tinynet import Tensor, backend, fast, layer_paths, optim, reference
from tinynet.fast import fourier, winograd, workspace
from tinynet.windows import pair

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.usefixtures("recycle_every_array")


# -- the switch ------------------------------------------------------------------------


def layer_types(x, w):
    """The Function classes that F.* used for each heavy layer, read from the graph."""
    hidden = F.relu(F.conv2d(x, w, padding=1))
    pooled = F.max_pool2d(F.local_response_norm(hidden, 3), 2)
    loss = F.cross_entropy(F.linear(pooled.flatten(1), Tensor(np.ones((3, 4 * 2 * 2)))), np.array([0]))
    types, function = [], loss.creator
    while function is not None:
        types.append(type(function))
        function = function.inputs[0].creator
    return types


def test_the_fast_path_is_the_default_and_each_switch_selects_the_reference_path():
    x, w = Tensor(np.ones((1, 2, 4, 4)), requires_grad=True), Tensor(np.ones((4, 2, 3, 3)))
    fast_layers = {fast.Conv2d, fast.MaxPool2d, fast.Linear, fast.ReLU}
    reference_layers = {reference.Conv2d, reference.MaxPool2d, reference.Linear, reference.ReLU,
                        reference.LocalResponseNorm, reference.SoftmaxCrossEntropy}
    assert layer_paths.current_path() == "fast"
    assert fast_layers <= set(layer_types(x, w))
    with tinynet.reference_layers():
        assert layer_paths.current_path() == "reference"
        used = set(layer_types(x, w))
        assert reference_layers <= used and not fast_layers & used
    assert layer_paths.current_path() == "fast"
    tinynet.use_reference_layers()
    try:
        assert not fast_layers & set(layer_types(x, w))
    finally:
        tinynet.use_reference_layers(False)
    assert fast_layers <= set(layer_types(x, w))


def test_the_block_gives_back_the_previous_path_even_after_an_error():
    tinynet.use_reference_layers()
    try:
        with pytest.raises(ZeroDivisionError), tinynet.reference_layers(False):
            assert layer_paths.current_path() == "fast"
            raise ZeroDivisionError
        assert layer_paths.current_path() == "reference"
    finally:
        tinynet.use_reference_layers(False)


def test_a_block_in_one_thread_leaves_the_other_threads_on_the_programs_path():
    inside, outside = threading.Event(), threading.Event()
    seen = []

    def in_a_block():
        with tinynet.reference_layers():
            inside.set()
            outside.wait(5)
            seen.append(layer_paths.current_path())

    thread = threading.Thread(target=in_a_block)
    thread.start()
    inside.wait(5)
    seen.append(layer_paths.current_path())  # the main thread, while the other is in its block
    outside.set()
    thread.join()
    assert seen == ["fast", "reference"]


def test_the_programs_path_holds_in_every_thread():
    seen = []
    tinynet.use_reference_layers()
    try:
        thread = threading.Thread(target=lambda: seen.append(layer_paths.current_path()))
        thread.start()
        thread.join()
    finally:
        tinynet.use_reference_layers(False)
    assert seen == ["reference"]


@pytest.mark.parametrize("value, expected", [("reference", "reference"), ("fast", "fast"), (None, "fast")])
def test_the_environment_variable_selects_the_path(value, expected):
    env = {k: v for k, v in os.environ.items() if k != layer_paths.ENVIRONMENT_VARIABLE}
    if value is not None:
        env[layer_paths.ENVIRONMENT_VARIABLE] = value
    code = "import tinynet; print(tinynet.layer_paths.current_path(), tinynet.layer_paths.layers().__name__)"
    result = subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [expected, f"tinynet.{expected}"]


def test_a_wrong_environment_value_names_the_variable_and_the_choices():
    env = dict(os.environ, **{layer_paths.ENVIRONMENT_VARIABLE: "quick"})
    result = subprocess.run([sys.executable, "-c", "import tinynet"], env=env, cwd=ROOT, capture_output=True, text=True)
    assert result.returncode != 0
    assert "TINYNET_LAYERS='quick'" in result.stderr and "('fast', 'reference')" in result.stderr


def test_on_the_reference_path_each_layers_math_is_within_three_frames_of_backward():
    """What a student meets stepping into loss.backward(): Tensor.backward, the engine's
    _run_backward, then the layer's own backward, where its math is."""
    depths = {}
    targets = {cls.backward.__code__: cls.__name__ for cls in
               (reference.Conv2d, reference.MaxPool2d, reference.LocalResponseNorm, reference.Linear,
                reference.SoftmaxCrossEntropy)}
    entry = Tensor.backward.__code__

    def profile(frame, event, arg):
        if event == "call" and frame.f_code in targets:
            depth, caller = 0, frame
            while caller is not None and caller.f_code is not entry:
                caller, depth = caller.f_back, depth + 1
            depths[targets[frame.f_code]] = depth

    x = Tensor(np.random.default_rng(0).standard_normal((2, 3, 8, 8)), requires_grad=True)
    w, v = Tensor(np.ones((4, 3, 3, 3)), requires_grad=True), Tensor(np.ones((5, 36)), requires_grad=True)
    with tinynet.reference_layers():
        hidden = F.max_pool2d(F.local_response_norm(F.conv2d(x, w, padding=1), 3), 3, 2)
        loss = F.cross_entropy(F.linear(hidden.flatten(1), v), np.array([1, 2]))
        sys.setprofile(profile)
        try:
            loss.backward()
        finally:
            sys.setprofile(None)
    assert set(depths) == set(targets.values())
    assert max(depths.values()) <= 3, depths


# -- the fast path equals the reference path -------------------------------------------------


def forward_and_backward(call, inputs, grad_seed=1):
    """Output and every input's gradient of call(*inputs), as float64 host arrays."""
    tensors = [Tensor(a, requires_grad=a.dtype.kind == "f") for a in inputs]
    out = call(*tensors)
    xp = backend.xp_of(out.data)
    upstream = xp.asarray(np.random.default_rng(grad_seed).standard_normal(out.shape).astype(out.dtype))
    out.backward(upstream)
    return [backend.to_numpy(out.data)] + [backend.to_numpy(t.grad) for t in tensors if t.requires_grad]


def on_both_paths(call, inputs):
    results = {}
    for path in layer_paths.PATHS:
        with tinynet.reference_layers(path == "reference"):
            results[path] = forward_and_backward(call, inputs)
    return results["fast"], results["reference"]


def assert_paths_agree(fast_results, reference_results, rtol=1e-5):
    """float32 agreement, relative to the size of each result: the two paths add the
    same products in different orders."""
    assert len(fast_results) == len(reference_results)
    for index, (a, b) in enumerate(zip(fast_results, reference_results)):
        assert a.shape == b.shape and a.dtype == b.dtype == np.float32, index
        scale = max(np.abs(b).max(), 1e-30)
        np.testing.assert_allclose(a, b, rtol=rtol, atol=rtol * scale, err_msg=f"result {index}")


def f32(rng, *shape):
    return rng.standard_normal(shape).astype(np.float32)


LAYER_CASES = {
    "conv1-like (11x11 stride 4)": (
        lambda x, w, b: F.conv2d(x, w, b, stride=4), [(2, 3, 31, 31), (8, 3, 11, 11), (8,)]),
    "conv2-like (5x5 pad 2, groups 2)": (
        lambda x, w, b: F.conv2d(x, w, b, padding=2, groups=2), [(3, 8, 9, 9), (12, 4, 5, 5), (12,)]),
    "conv3-like (3x3 pad 1: Winograd, odd output size)": (
        lambda x, w, b: F.conv2d(x, w, b, padding=1), [(2, 6, 7, 8), (8, 6, 3, 3), (8,)]),
    "3x3, groups 2, no padding (Winograd)": (lambda x, w: F.conv2d(x, w, groups=2), [(3, 4, 6, 9), (6, 2, 3, 3)]),
    "3x3, padding (0, 1) (Winograd)": (lambda x, w: F.conv2d(x, w, padding=(0, 1)), [(2, 3, 7, 5), (4, 3, 3, 3)]),
    "3x3, padding (2, 0) (Winograd)": (lambda x, w: F.conv2d(x, w, padding=(2, 0)), [(2, 3, 4, 6), (4, 3, 3, 3)]),
    "3x3 on a 1x1 image, batch 1 (Winograd)": (lambda x, w: F.conv2d(x, w, padding=1), [(1, 2, 1, 1), (3, 2, 3, 3)]),
    "3x3 on a 2x5 image, batch 1 (Winograd)": (lambda x, w: F.conv2d(x, w, padding=1), [(1, 2, 2, 5), (3, 2, 3, 3)]),
    "5x5, padding (1, 3), even transform length (DFT)": (
        lambda x, w: F.conv2d(x, w, padding=(1, 3)), [(2, 3, 7, 7), (4, 3, 5, 5)]),
    "5x7, no padding, odd transform lengths (DFT)": (
        lambda x, w, b: F.conv2d(x, w, b), [(2, 3, 9, 11), (4, 3, 5, 7), (4,)]),
    "6x6, padding 4, more than half the kernel (DFT)": (
        lambda x, w: F.conv2d(x, w, padding=4), [(1, 2, 4, 5), (3, 2, 6, 6)]),
    "5x5 on a 1x1 image, batch 1 (DFT)": (lambda x, w: F.conv2d(x, w, padding=2), [(1, 2, 1, 1), (3, 2, 5, 5)]),
    "5x5, padding 5: outputs that read only padding (DFT)": (
        lambda x, w: F.conv2d(x, w, padding=5), [(1, 2, 4, 5), (3, 2, 5, 5)]),
    "conv (non-square, no bias)": (
        lambda x, w: F.conv2d(x, w, stride=(2, 1), padding=(1, 0)), [(2, 4, 7, 6), (6, 4, 3, 2)]),
    "max pool 3x3/2": (lambda x: F.max_pool2d(x, 3, 2), [(2, 5, 13, 13)]),
    "max pool with padding": (lambda x: F.max_pool2d(x, 3, 2, padding=1), [(2, 3, 8, 7)]),
    "linear": (lambda x, w, b: F.linear(x, w, b), [(4, 20), (10, 20), (10,)]),
    "relu": (lambda x: F.relu(x), [(3, 4, 5, 6)]),
    "local response norm (paper's alpha)": (lambda x: F.local_response_norm(x, 5, 1e-2, 0.75, 2.0), [(2, 7, 4, 3)]),
    "local response norm (even size)": (lambda x: F.local_response_norm(x, 4, 1e-2, 0.5, 1.0), [(2, 6, 3, 3)]),
}

# Softmax cross-entropy with each reduction, one row ignored: the loss and the logits' gradient.
LOSS_TARGETS = np.array([3, -100, 0, 9, 5])
LAYER_CASES |= {
    f"softmax cross-entropy ({reduction})": (
        lambda x, reduction=reduction: F.cross_entropy(x, backend.to_device(LOSS_TARGETS, backend.device_of(x.data)),
                                                       reduction=reduction),
        [(5, 10)])
    for reduction in ("mean", "sum", "none")
}


@pytest.mark.parametrize("name", list(LAYER_CASES))
def test_fast_layer_equals_reference_layer(name, device, rng):
    call, shapes = LAYER_CASES[name]
    inputs = [backend.to_device(f32(rng, *shape), device) for shape in shapes]
    assert_paths_agree(*on_both_paths(call, inputs))


def test_chunked_fast_convolution_equals_reference(device, rng, monkeypatch):
    """A batch whose columns exceed the budget goes through the fast path in chunks and
    does not keep its columns: still the reference's numbers."""
    monkeypatch.setattr(fast.conv, "COLUMNS_BUDGET_BYTES", 1)
    inputs = [backend.to_device(f32(rng, *shape), device) for shape in [(3, 4, 9, 8), (6, 2, 3, 3), (6,)]]
    assert_paths_agree(*on_both_paths(lambda x, w, b: F.conv2d(x, w, b, 2, 1, 2), inputs))


def test_kept_columns_serve_a_gradient_of_another_dtype(monkeypatch, rng):
    """The columns kept by forward are the whole batch's, whatever dtype the gradient
    arriving in backward has (a float64 one would split the batch in two here)."""
    x = Tensor(f32(rng, 3, 4, 9, 8), requires_grad=True)
    w = Tensor(f32(rng, 6, 2, 3, 3), requires_grad=True)
    monkeypatch.setattr(fast.conv, "COLUMNS_BUDGET_BYTES", 3 * 4 * 9 * 5 * 4 * 4)  # the float32 batch, exactly
    out = F.conv2d(x, w, stride=2, padding=1, groups=2)
    upstream = rng.standard_normal(out.shape)
    out.backward(upstream, retain_graph=True)
    from_float64 = x.grad, w.grad
    x.grad = w.grad = None
    out.backward(upstream.astype(np.float32))
    np.testing.assert_allclose(from_float64[0], x.grad, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(from_float64[1], w.grad, rtol=1e-5, atol=1e-5)


# -- Winograd's F(2x2, 3x3) on the fast path -------------------------------------------------


def test_the_winograd_transforms_correlate_a_tile_exactly(rng):
    """y = A^T ((G g) * (B^T d)) is the correlation of 4 inputs with 3 taps (Lavin and Gray, eq. 5)."""
    a_t, g, b_t = (np.array(t, dtype=np.float64) for t in (winograd.A_T, winograd.G, winograd.B_T))
    for _ in range(5):
        d, taps = rng.standard_normal(4), rng.standard_normal(3)
        np.testing.assert_allclose(a_t @ ((g @ taps) * (b_t @ d)), [d[0:3] @ taps, d[1:4] @ taps], rtol=1e-14)


@pytest.mark.parametrize("kernel, stride, expected", [
    (3, 1, winograd), (3, 2, None), (5, 1, fourier), ((5, 7), 1, fourier), ((3, 5), 1, None), (11, 4, None),
    (1, 1, None),
])
def test_which_convolutions_on_the_cpu_take_winograd_or_the_dft(kernel, stride, expected, rng):
    kh, kw = pair(kernel)
    x = Tensor(f32(rng, 2, 3, 13, 13), requires_grad=True)
    out = F.conv2d(x, Tensor(f32(rng, 4, 3, kh, kw)), stride=stride, padding=1)
    assert isinstance(out.creator, fast.Conv2d) and out.creator.algorithm is expected


@pytest.mark.parametrize("kernel", [3, 5])
def test_integer_convolutions_stay_exact(kernel):
    """Integers cannot hold G's halves or the DFT's complex numbers: an integer convolution takes im2col."""
    x = np.arange(2 * 3 * 7 * 7).reshape(2, 3, 7, 7)
    w = np.arange(4 * 3 * kernel * kernel).reshape(4, 3, kernel, kernel) % 5 - 2
    fast_function = fast.Conv2d(padding=1)
    fast_out = fast_function(Tensor(x), Tensor(w)).numpy()
    assert fast_function.algorithm is None
    with tinynet.reference_layers():
        np.testing.assert_array_equal(fast_out, F.conv2d(Tensor(x), Tensor(w), padding=1).numpy())


@pytest.mark.parametrize("kernel", [3, 5], ids=["Winograd", "DFT"])
def test_with_only_the_weights_needing_a_gradient_the_fast_path_equals_the_reference(rng, kernel):
    """conv1's case: the images need no gradient, so the kept tiles or spectra are not overwritten."""
    x, w = f32(rng, 2, 3, 8, 7), f32(rng, 5, 3, kernel, kernel)
    results = {}
    for path in layer_paths.PATHS:
        with tinynet.reference_layers(path == "reference"):
            weight = Tensor(w.copy(), requires_grad=True)
            out = F.conv2d(Tensor(x), weight, padding=1)
            out.backward(np.ones(out.shape, np.float32))
            results[path] = [out.numpy(), weight.grad]
    assert_paths_agree(results["fast"], results["reference"])


@pytest.mark.parametrize("kernel", [3, 5], ids=["Winograd", "DFT"])
def test_without_gradients_the_fast_path_equals_the_reference(rng, kernel):
    """Under no_grad nothing is kept for backward: the tiles or spectra go through a scratch buffer."""
    x, w = f32(rng, 3, 4, 9, 10), f32(rng, 6, 2, kernel, kernel)
    with tinynet.no_grad():
        fast_out = F.conv2d(Tensor(x), Tensor(w), padding=1, groups=2).numpy()
        with tinynet.reference_layers():
            reference_out = F.conv2d(Tensor(x), Tensor(w), padding=1, groups=2).numpy()
    assert_paths_agree([fast_out], [reference_out])


# -- convolution through the DFT on the fast path --------------------------------------------


@pytest.mark.parametrize("size, kernel, padding", [(7, 5, 2), (6, 5, 1), (4, 6, 4)])
def test_the_dft_matrices_are_numpys_fft(size, kernel, padding, rng):
    """Along the rows the full DFT, along the columns the half spectrum, of a map zero-padded
    to the transform's length: np.fft's numbers, as matrix products."""
    t = fourier.Transforms.of((size, size), (kernel, kernel), (padding, padding), np.complex128)
    n = fourier.transform_size(size, padding)
    x = rng.standard_normal((size, size))
    np.testing.assert_allclose(t.rows_in @ x, np.fft.fft(x, n, axis=0), atol=1e-12)
    np.testing.assert_allclose(x @ t.cols_in, np.fft.rfft(x, n, axis=1), atol=1e-12)


def test_the_dft_reads_inputs_and_gradients_in_either_memory_order(rng):
    """A convolution's output is a view in (C, N) memory order, and so may be the next
    convolution's input and the gradient that reaches it; the transforms read either order."""
    def channels_first_in_memory(a):
        return np.ascontiguousarray(a.transpose(1, 0, 2, 3)).transpose(1, 0, 2, 3)

    x, w = channels_first_in_memory(f32(rng, 2, 3, 9, 8)), f32(rng, 4, 3, 5, 5)
    upstream = channels_first_in_memory(f32(rng, 2, 4, 9, 8))
    results = {}
    for path in layer_paths.PATHS:
        with tinynet.reference_layers(path == "reference"):
            image, weight = Tensor(x, requires_grad=True), Tensor(w, requires_grad=True)
            out = F.conv2d(image, weight, padding=2)
            out.backward(upstream)
            results[path] = [out.numpy(), image.grad, weight.grad]
    assert_paths_agree(results["fast"], results["reference"])


def test_a_float16_convolution_stays_float16(rng):
    """The DFT's products are complex64 at the least: float16 layers keep to im2col, and to float16."""
    x, w = Tensor(f32(rng, 2, 3, 9, 9).astype(np.float16), requires_grad=True), Tensor(f32(rng, 4, 3, 5, 5))
    out = F.conv2d(x, w.half(), padding=2)
    out.sum().backward()
    assert out.creator.algorithm is None and out.dtype == x.grad.dtype == np.float16


def test_a_kernel_spectrum_past_the_budget_leaves_the_convolution_to_im2col(rng, monkeypatch):
    """Large maps make large spectra: (frequencies, out, in) complex numbers kept for backward."""
    x, w = Tensor(f32(rng, 2, 3, 9, 9), requires_grad=True), Tensor(f32(rng, 4, 3, 5, 5))
    assert F.conv2d(x, w, padding=2).creator.algorithm is fourier
    monkeypatch.setattr(fourier, "KERNEL_SPECTRUM_BUDGET_BYTES", 11 * 6 * 4 * 3 * 8 - 1)  # one byte short
    assert F.conv2d(x, w, padding=2).creator.algorithm is None


# -- softmax cross-entropy on the fast path ---------------------------------------------------


def test_cross_entropy_of_integer_logits_equals_the_reference():
    logits, targets = np.array([[0, 1, 2], [3, 1, 2]]), np.array([1, 0])
    fast_loss = F.cross_entropy(Tensor(logits), targets).numpy()
    with tinynet.reference_layers():
        reference_loss = F.cross_entropy(Tensor(logits), targets).numpy()
    assert fast_loss.dtype == reference_loss.dtype == np.float64
    np.testing.assert_allclose(fast_loss, reference_loss, rtol=1e-12)


def test_cross_entropy_gives_the_same_gradient_twice_through_a_retained_graph(rng):
    """Backward reads the exponentials forward kept: it must leave them as they were."""
    logits = Tensor(f32(rng, 4, 6), requires_grad=True)
    loss = F.cross_entropy(logits, np.array([0, 5, 2, 2]))
    loss.backward(retain_graph=True)
    first = logits.grad.copy()
    logits.grad = None
    loss.backward()
    np.testing.assert_array_equal(logits.grad, first)


def alexnet_steps(preset, images, labels, device):
    """Two training steps from the same seeded weights, in the dtype of ``images``. Returns
    the first step's loss, logits and gradients as the arrays themselves (to check that the
    second step, recycling memory, left them alone), copies of them, and the weights after both."""
    tinynet.manual_seed(0)
    model = alexnet.AlexNet(preset, num_classes=10, in_channels=3).to(device)
    for param in model.parameters():
        param.data = param.data.astype(images.dtype)
    optimizer = optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    first = None
    for step in range(2):
        optimizer.zero_grad()
        with tinynet.backend.fixed_seed(step):  # the same dropout masks on both paths
            logits = model(Tensor(images))
        loss = F.cross_entropy(logits, labels)
        loss.backward()
        if first is None:
            first = [logits.data] + [p.grad for p in model.parameters()]
            copies = [loss.item()] + [backend.to_numpy(a).copy() for a in first]
        optimizer.step()
    weights = [backend.to_numpy(p.data) for p in model.parameters()]
    return first, copies, weights


def on_both_paths_alexnet(preset, dtype, device, rng):
    images = backend.to_device(rng.standard_normal((2, 3, 227, 227)).astype(dtype), device)
    labels = backend.to_device(np.array([3, 7]), device)
    results = {}
    for path in layer_paths.PATHS:
        with tinynet.reference_layers(path == "reference"):
            results[path] = alexnet_steps(preset, images, labels, device)
    return results["fast"], results["reference"]


def relative_differences(ours, theirs):
    return [np.linalg.norm(np.asarray(a, np.float64) - b) / max(np.linalg.norm(np.asarray(b, np.float64)), 1e-300)
            for a, b in zip(ours, theirs, strict=True)]


@pytest.mark.parametrize("preset", ["seed", "paper"])
def test_two_whole_alexnet_training_steps_are_the_same_on_both_paths(preset, device, rng):
    """In float64 every result agrees to 1e-9: the two paths differ only in rounding."""
    (_, fast_copies, fast_weights), (_, reference_copies, reference_weights) = on_both_paths_alexnet(
        preset, np.float64, device, rng)
    assert len(fast_copies) == 2 + 16 and len(fast_weights) == 16
    differences = relative_differences(fast_copies + fast_weights, reference_copies + reference_weights)
    assert max(differences) <= 1e-9, differences


@pytest.mark.parametrize("preset", ["seed", "paper"])
def test_float32_alexnet_steps_agree_on_both_paths_and_recycle_nothing_in_use(preset, device, rng):
    """In float32 the loss, the logits and the fully-connected layers' gradients agree to
    1e-4. The convolutions' gradients are left to the float64 test: a rounding difference
    of one ulp can change which of two nearly equal inputs wins a max-pooling window,
    sending that window's gradient elsewhere, and differences of 1e-3 in conv1's weight
    gradient follow (as between tinynet and PyTorch)."""
    (first, fast_copies, _), (_, reference_copies, _) = on_both_paths_alexnet(preset, np.float32, device, rng)
    for kept, copy in zip(first, fast_copies[1:]):
        np.testing.assert_array_equal(backend.to_numpy(kept), copy)  # the second step overwrote nothing
    loss_logits_and_fc = fast_copies[:2] + fast_copies[-6:], reference_copies[:2] + reference_copies[-6:]
    assert max(relative_differences(*loss_logits_and_fc)) <= 1e-4


# -- the fast path's recycled memory -----------------------------------------------------------


def test_recycled_arrays_are_never_handed_out_while_in_use():
    shape = (256, 1024)  # 1 MiB of float32: large enough to be recycled
    first = workspace.empty(np, shape, np.float32)
    first.fill(1)
    second = workspace.empty(np, shape, np.float32)
    assert not np.shares_memory(first, second)
    view = first[::2]
    address = first.__array_interface__["data"][0]
    del first
    third = workspace.empty(np, shape, np.float32)
    assert third.__array_interface__["data"][0] != address  # the view keeps it in use
    assert (view == 1).all()
    del view
    fourth = workspace.empty(np, shape, np.float32)
    assert fourth.__array_interface__["data"][0] == address  # now nothing refers to it: recycled


def test_a_free_block_serves_any_shape_that_fills_half_of_it():
    workspace.release()
    address = workspace.empty(np, (768, 1024), np.float32).__array_interface__["data"][0]  # 3 MiB, freed at once
    smaller = workspace.empty(np, (450, 1024), np.float32)  # 1.76 MiB: more than half, so it reuses the block
    assert smaller.__array_interface__["data"][0] == address and smaller.shape == (450, 1024)
    del smaller
    tiny = workspace.empty(np, (1, 1 << 20), np.uint8)  # 1 MiB: less than half of the 3 MiB block
    assert tiny.__array_interface__["data"][0] != address


def test_release_lets_go_of_free_blocks_only():
    workspace.release()
    kept = workspace.empty(np, (300, 1024), np.float32)
    workspace.empty(np, (700, 1024), np.float32)  # dropped at once: free
    workspace.release()
    assert len(workspace._kept.blocks) == 1 and np.shares_memory(workspace._kept.blocks[0], kept)


def test_gradients_kept_from_an_earlier_step_are_not_overwritten(rng):
    """A student may keep last step's gradient to compare; recycling must leave it alone."""
    layer = tinynet.nn.Linear(512, 1024)
    x = Tensor(f32(rng, 8, 512))
    layer(x).sum().backward()
    kept = layer.weight.grad
    expected = kept.copy()
    layer.weight.grad = None
    layer(x * 2).sum().backward()
    np.testing.assert_array_equal(kept, expected)
    np.testing.assert_allclose(layer.weight.grad, 2 * expected, rtol=1e-6)


@pytest.mark.parametrize("kernel, stride", [(3, 1), (5, 1), (3, 2)], ids=["Winograd", "DFT", "im2col"])
def test_a_retained_graph_gives_the_same_gradients_twice_on_the_fast_path(rng, kernel, stride):
    """The fast convolution overwrites what it kept (im2col's columns, Winograd's input
    tiles, the inputs' spectra) with their gradient; a second backward through the same
    graph must compute them again, not read gradients as inputs."""
    x = Tensor(f32(rng, 2, 3, 9, 9), requires_grad=True)
    w = Tensor(f32(rng, 4, 3, kernel, kernel), requires_grad=True)
    out = F.conv2d(x, w, stride=stride, padding=1)
    out.backward(np.ones(out.shape, np.float32), retain_graph=True)
    first = x.grad.copy(), w.grad.copy()
    x.grad = w.grad = None
    out.backward(np.ones(out.shape, np.float32))
    np.testing.assert_allclose(x.grad, first[0], rtol=1e-6)
    np.testing.assert_allclose(w.grad, first[1], rtol=1e-6)


def test_each_thread_has_its_own_work_buffers():
    """Two threads training at once must not share a scratch buffer."""
    mine = workspace.scratch(np, "test_buffer", (4,), np.float32)
    theirs = []
    thread = threading.Thread(target=lambda: theirs.append(workspace.scratch(np, "test_buffer", (4,), np.float32)))
    thread.start()
    thread.join()
    assert not np.shares_memory(mine, theirs[0])
    assert np.shares_memory(mine, workspace.scratch(np, "test_buffer", (4,), np.float32))
