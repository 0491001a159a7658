"""Checks of the convolution assignment, against tinynet.reference.conv (im2col, col2im, Conv2d)."""

import numpy as np

from ..reference import conv as reference
from ..windows import window_grid
from .checks import CheckFailed, Checklist, as_tuple, expect_close, expect_gradients, expect_shape, tinynet_pass

checks = Checklist()
_IM2COL = "columns[c*kh*kw + i*kw + j, n*oh*ow + y*ow + x] = x[n, c, y*stride + i, x*stride + j] (lesson 4, section 2)"
_COL2IM = "col2im adds each column entry back to the input element im2col read it from (lesson 4, section 3)"
_OUT_SIZE = "oh = (H + 2*padding - kh) // stride + 1, and likewise ow"


def _normal(seed, *shape):
    return np.random.default_rng(seed).standard_normal(shape)


def _expect_im2col(student, x, kh, kw, stride):
    expected = reference.im2col(x, (kh, kw), (stride, stride))
    rows, cols = expected.shape
    n, c = x.shape[:2]
    oh, ow = window_grid(x.shape, (kh, kw), (stride, stride))
    mistakes = [
        (expected.T, "one column per window: return (C*kh*kw, N*oh*ow), not its transpose"),
        (expected.reshape(c, kh, kw, cols).transpose(1, 2, 0, 3).reshape(rows, cols),
         "the rows are in the wrong order: the channel varies slowest (row c*kh*kw + i*kw + j), not the kernel offset"),
        (expected.reshape(rows, n, oh, ow).transpose(0, 2, 3, 1).reshape(rows, cols),
         "the columns are in the wrong order: the image varies slowest (column n*oh*ow + y*ow + x)"),
    ]
    expect_close(student.im2col(x, kh, kw, stride), expected, f"im2col of {x.shape}, {kh}x{kw} kernel, stride {stride}",
                 f"oh = (H - kh) // stride + 1 on the padded input; {_IM2COL}", mistakes)


@checks.add("im2col: layout, stride 2, a 3x2 kernel on a non-square input", hint=_IM2COL)
def im2col_layout(student):
    _expect_im2col(student, _normal(0, 2, 3, 7, 6), 3, 2, 2)


@checks.add("im2col: overlapping windows (3x3, stride 1), batch of 1", hint=_IM2COL)
def im2col_overlapping(student):
    _expect_im2col(student, _normal(1, 1, 2, 4, 5), 3, 3, 1)


def _assigned_col2im(columns, x_shape, kh, kw, stride):
    """col2im written with = instead of +=: where windows overlap, the last one wins."""
    n, c = x_shape[:2]
    oh, ow = window_grid(x_shape, (kh, kw), (stride, stride))
    columns = columns.reshape(c, kh, kw, n, oh, ow)
    x = np.zeros(x_shape)
    for i in range(kh):
        for j in range(kw):
            x[:, :, i : i + stride * oh : stride, j : j + stride * ow : stride] = columns[:, i, j].transpose(1, 0, 2, 3)
    return x


def _expect_col2im(student, x_shape, kh, kw, stride, seed):
    oh, ow = window_grid(x_shape, (kh, kw), (stride, stride))
    columns = _normal(seed, x_shape[1] * kh * kw, x_shape[0] * oh * ow)
    expected = reference.col2im(columns, x_shape, (kh, kw), (stride, stride))
    mistakes = [(_assigned_col2im(columns, x_shape, kh, kw, stride), "windows overlap, so an input element read by "
                 "several windows must receive the sum of their entries: add (+=) instead of assigning (=)")]
    expect_close(student.col2im(columns, x_shape, kh, kw, stride), expected,
                 f"col2im to {x_shape}, {kh}x{kw} kernel, stride {stride}", _COL2IM, mistakes)


@checks.add("col2im: overlapping windows (3x3, stride 1) add up", hint=_COL2IM)
def col2im_overlapping(student):
    _expect_col2im(student, (2, 2, 5, 6), 3, 3, 1, seed=2)


@checks.add("col2im: stride 2, a 3x2 kernel, a non-square input", hint=_COL2IM)
def col2im_strided(student):
    _expect_col2im(student, (2, 3, 7, 6), 3, 2, 2, seed=3)


# -- the layer ---------------------------------------------------------------------------------


def _conv_inputs(n, c, h, w, f, kh, kw, groups=1, seed=4):
    return _normal(seed, n, c, h, w), _normal(seed + 1, f, c // groups, kh, kw), _normal(seed + 2, f)


def _expect_forward(student, x, w, b, stride, padding, groups=1):
    expected = reference.Conv2d(stride, padding, groups)(x, w, b).data
    flipped = reference.Conv2d(stride, padding, groups)(x, w[:, :, ::-1, ::-1].copy(), b).data
    bias = b[:, None, None]
    unbiased = expected - bias
    mistakes = [
        (unbiased, "the bias is missing: add b[f] to every position of output channel f"),
        (unbiased.transpose(1, 0, 2, 3).reshape(expected.shape) + bias, "the product is (F, N*oh*ow): reshape it to "
         "(F, N, oh, ow) and transpose to (N, F, oh, ow), not reshape straight to (N, F, oh, ow)"),
        (flipped, "the kernel is flipped: tinynet (like PyTorch) computes a cross-correlation, w[f, c, i, j] "
         "multiplies x_padded[n, c, y*stride + i, x*stride + j]"),
    ]
    out, _ = student.conv_forward(x, w, b, stride=stride, padding=padding, groups=groups)
    expect_close(out, expected, "out", f"{_OUT_SIZE}; pad with zeros on the spatial axes only", mistakes)


def _expect_backward(student, x, w, b, stride, padding, groups=1):
    conv = reference.Conv2d
    out = conv(stride, padding, groups)(x, w, b).data
    dout = _normal(9, *out.shape)
    _, (dx, dw, db) = tinynet_pass(lambda *t: conv(stride, padding, groups)(*t), [x, w, b], dout)
    padded = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    _, (dpadded, _, _) = tinynet_pass(lambda *t: conv(stride, 0, groups)(*t), [padded, w, b], dout)
    _, cache = student.conv_forward(x, w, b, stride=stride, padding=padding, groups=groups)
    grads = as_tuple(student.conv_backward(dout.copy(), cache))
    if len(grads) != 3:
        raise CheckFailed(f"conv_backward returned {len(grads)} arrays, expected 3: (dx, dw, db)")
    expect_close(grads[2], db, "db", "db = dout.sum(axis=(0, 2, 3)): over the batch and both spatial axes")
    expect_close(grads[1], dw, "dw", "dw = dout_rows @ columns.T, dout_rows being dout.transpose(1, 0, 2, 3) "
                 "reshaped to (F, N*oh*ow)")
    expect_close(grads[0], dx, "dx", f"dx = col2im(w.reshape(F, -1).T @ dout_rows, ...) without its padding; {_COL2IM}",
                 [(dpadded, "dx still has the padding: cut it off, dx_padded[:, :, p:p + H, p:p + W]")])


@checks.add("conv_forward: output shape with stride 2 and padding 1 on a non-square input", hint=_OUT_SIZE)
def forward_shape(student):
    x, w, b = _conv_inputs(2, 3, 7, 9, 4, 3, 3)
    out, _ = student.conv_forward(x, w, b, stride=2, padding=1)
    expect_shape(out, (2, 4, 4, 5), "out", f"{_OUT_SIZE}: (7 + 2 - 3) // 2 + 1 = 4, (9 + 2 - 3) // 2 + 1 = 5")


@checks.add("conv_forward: values against tinynet (stride 2, padding 1, non-square input)", hint=_OUT_SIZE)
def forward_values(student):
    _expect_forward(student, *_conv_inputs(2, 3, 7, 9, 4, 3, 3), stride=2, padding=1)


@checks.add("conv_forward: batch of 1, a 3x2 kernel, padding 2", hint=_OUT_SIZE)
def forward_batch_of_one(student):
    _expect_forward(student, *_conv_inputs(1, 2, 5, 4, 3, 3, 2, seed=5), stride=1, padding=2)


@checks.add("conv_backward: dx, dw, db against tinynet (stride 2, padding 1, non-square input)",
            hint="see the steps in conv_backward's docstring; every gradient has its input's shape")
def backward_values(student):
    _expect_backward(student, *_conv_inputs(2, 3, 7, 9, 4, 3, 3, seed=6), stride=2, padding=1)


@checks.add("conv_backward: stride 3 > kernel 2, so some pixels are never read (their gradient is 0)",
            hint="col2im starts from zeros and only adds where windows read")
def backward_skipping(student):
    _expect_backward(student, *_conv_inputs(1, 2, 8, 7, 3, 2, 2, seed=7), stride=3, padding=0)


@checks.add("conv: gradient check (float64), stride 2, padding 1, a 3x2 kernel",
            hint="conv_backward must be the derivative of conv_forward")
def gradient_check(student):
    expect_gradients(student.conv_forward, student.conv_backward, list(_conv_inputs(2, 2, 5, 6, 3, 3, 2, seed=8)),
                     "conv", "compare dx, dw and db with the steps in the docstring", stride=2, padding=1)


@checks.add("groups=2: forward and backward against tinynet, and a gradient check", bonus=True,
            hint="one product per group: w.reshape(groups, F // groups, -1) @ columns.reshape(groups, -1, N*oh*ow)")
def grouped(student):
    inputs = _conv_inputs(2, 4, 6, 5, 6, 3, 3, groups=2, seed=10)
    _expect_forward(student, *inputs, stride=1, padding=1, groups=2)
    _expect_backward(student, *inputs, stride=1, padding=1, groups=2)
    expect_gradients(student.conv_forward, student.conv_backward, list(_conv_inputs(1, 4, 4, 4, 4, 2, 2, 2, seed=11)),
                     "grouped conv", "each group's gradients come from its own product", stride=1, padding=1, groups=2)
