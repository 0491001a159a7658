"""The vectorised layers against the loop implementations in naive.py."""

import numpy as np
import pytest

import tinynet.functional as F
from tests import naive
from tinynet import Tensor, backend
from tinynet.fast import conv

pytestmark = pytest.mark.usefixtures("recycle_every_array")


@pytest.mark.usefixtures("layer_path")
@pytest.mark.parametrize(
    "x_shape, w_shape, stride, padding, groups",
    [
        ((2, 3, 11, 11), (4, 3, 3, 3), (2, 2), (0, 0), 1),
        ((2, 3, 8, 9), (6, 3, 5, 5), (1, 1), (2, 2), 1),
        ((1, 4, 7, 10), (6, 2, 3, 2), (2, 3), (1, 0), 2),
        ((3, 3, 15, 15), (5, 3, 11, 11), (4, 4), (0, 0), 1),
    ],
)
def test_conv2d_matches_loops(x_shape, w_shape, stride, padding, groups, rng):
    x, w, b = rng.standard_normal(x_shape), rng.standard_normal(w_shape), rng.standard_normal(w_shape[0])
    out = F.conv2d(x, w, b, stride, padding, groups).data
    np.testing.assert_allclose(out, naive.conv2d(x, w, b, stride, padding, groups), rtol=1e-10, atol=1e-10)


@pytest.mark.usefixtures("layer_path")
@pytest.mark.parametrize(
    "kernel, stride, padding", [((3, 3), (2, 2), (0, 0)), ((3, 3), (2, 2), (1, 1)), ((2, 3), (1, 2), (0, 1))]
)
def test_max_pool2d_matches_loops(kernel, stride, padding, rng):
    x = rng.standard_normal((2, 3, 9, 8))
    out = F.max_pool2d(x, kernel, stride, padding).data
    np.testing.assert_array_equal(out, naive.max_pool2d(x, kernel, stride, padding))


@pytest.mark.usefixtures("layer_path")
def test_max_pool2d_sends_each_window_gradient_to_one_input():
    x = np.zeros((1, 1, 5, 5), dtype=np.float32)  # every entry ties
    t = Tensor(x, requires_grad=True)
    out = F.max_pool2d(t, 3, 2)
    out.backward(np.ones(out.shape, dtype=np.float32))
    assert t.grad.sum() == out.numel()  # one unit per window, not spread over ties
    # the first maximum of each window wins: its top-left corner here
    winners = np.zeros((5, 5))
    winners[0:3:2, 0:3:2] = 1
    np.testing.assert_array_equal(t.grad[0, 0], winners)


@pytest.mark.usefixtures("layer_path")
@pytest.mark.parametrize("size, alpha_over_n", [(5, False), (5, True), (4, False), (1, False)])
def test_local_response_norm_matches_loops(size, alpha_over_n, rng):
    x = rng.standard_normal((2, 7, 3, 4)) * 10
    out = F.local_response_norm(x, size, 1e-2, 0.75, 2.0, alpha_over_n).data
    np.testing.assert_allclose(out, naive.local_response_norm(x, size, 1e-2, 0.75, 2.0, alpha_over_n), rtol=1e-12)


@pytest.mark.usefixtures("layer_path")
def test_cross_entropy_matches_loops_and_is_stable(rng):
    logits, targets = rng.standard_normal((6, 5)), rng.integers(0, 5, 6)
    assert F.cross_entropy(logits, targets).item() == pytest.approx(naive.cross_entropy(logits, targets), rel=1e-12)
    huge = np.array([[1000.0, 0.0], [-1000.0, 1000.0]], dtype=np.float32)
    loss = F.cross_entropy(huge, np.array([0, 0])).item()
    assert np.isfinite(loss) and loss == pytest.approx(1000.0, rel=1e-6)


def test_softmax_rows_sum_to_one_and_log_softmax_agrees(rng):
    x = rng.standard_normal((4, 6)).astype(np.float32) * 50
    probs = F.softmax(x, dim=1).data
    np.testing.assert_allclose(probs.sum(axis=1), 1, rtol=1e-6)
    np.testing.assert_allclose(np.exp(F.log_softmax(x, dim=1).data), probs, rtol=1e-5, atol=1e-30)


@pytest.mark.usefixtures("layer_path")
def test_layers_reusing_scratch_buffers_return_independent_arrays(rng):
    """The fast conv and pooling keep work buffers between calls; what they return must not live in them."""
    w = rng.standard_normal((4, 3, 3, 3)).astype(np.float32)
    x1, x2 = (rng.standard_normal((1, 3, 9, 9)).astype(np.float32) for _ in range(2))
    first = F.conv2d(x1, w, padding=1)
    expected = first.data.copy()
    second = F.conv2d(x2, w, padding=1)
    assert not np.shares_memory(first.data, second.data)
    np.testing.assert_array_equal(first.data, expected)  # the second call left the first result alone
    pooled = [F.max_pool2d(x, 3, 2) for x in (x1, x2)]
    assert not np.shares_memory(pooled[0].data, pooled[1].data)
    np.testing.assert_array_equal(pooled[0].data, naive.max_pool2d(x1, (3, 3), (2, 2), (0, 0)))


@pytest.mark.parametrize("images_per_chunk, chunks", [(1, 5), (2, 3)])
@pytest.mark.parametrize("input_needs_grad", [True, False])
def test_conv2d_in_batch_chunks_matches_one_pass(images_per_chunk, chunks, input_needs_grad, device, monkeypatch, rng):
    """A batch whose columns exceed the budget is convolved a few images at a time
    (5 images: five chunks of 1, or chunks of 2, 2 and 1) with the same output and
    gradients as in one pass, also for a first layer whose input needs no gradient."""
    x = Tensor(backend.to_device(rng.standard_normal((5, 4, 9, 8)), device), requires_grad=input_needs_grad)
    w = Tensor(backend.to_device(rng.standard_normal((6, 2, 3, 3)), device), requires_grad=True)
    b = Tensor(backend.to_device(rng.standard_normal(6), device), requires_grad=True)
    grad = backend.to_device(rng.standard_normal((5, 6, 5, 4)), device)

    def convolve():
        x.grad = w.grad = b.grad = None
        out = F.conv2d(x, w, b, stride=2, padding=1, groups=2)
        out.backward(grad)
        return [backend.to_numpy(a) for a in (out.data, x.grad, w.grad, b.grad) if a is not None]

    whole = convolve()
    columns_per_image = 4 * 3 * 3 * 5 * 4 * x.data.itemsize  # rows (C*kh*kw) x one image's 5x4 windows
    monkeypatch.setattr(conv, "COLUMNS_BUDGET_BYTES", images_per_chunk * columns_per_image)
    layer = conv.Conv2d(stride=2, padding=1, groups=2)
    assert len(list(layer._batch_chunks((5, 4, 11, 10), w.shape, x.dtype))) == chunks
    chunked = convolve()
    x_host, w_host, b_host = (backend.to_numpy(t.data) for t in (x, w, b))
    np.testing.assert_allclose(chunked[0], naive.conv2d(x_host, w_host, b_host, (2, 2), (1, 1), 2), rtol=1e-10)
    assert len(chunked) == len(whole) == (4 if input_needs_grad else 3)
    for ours, reference in zip(chunked, whole):
        np.testing.assert_allclose(ours, reference, rtol=1e-12, atol=1e-12)
