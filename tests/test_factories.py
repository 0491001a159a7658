"""Tensor factories and dtype names as PyTorch spells them: shapes, dtypes, values, devices,
seeds, gradients, the errors, and parity with torch where it is installed."""

import builtins
import sys

import numpy as np
import pytest

import tinynet
from tinynet import backend

DTYPE_NAMES = ["float32", "float64", "float16", "int8", "int16", "int32", "int64", "uint8", "bool"]
ALIASES = {"float": "float32", "double": "float64", "half": "float16", "long": "int64", "int": "int32",
           "short": "int16"}


def values(tensor):
    return backend.to_numpy(tensor.data)


# -- dtypes ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", DTYPE_NAMES)
def test_dtypes_are_numpys_scalar_types_that_arrays_and_tensors_take(name):
    dtype = getattr(tinynet, name)
    assert dtype is np.dtype(name).type
    assert np.arange(3).astype(dtype).dtype == dtype
    assert tinynet.zeros(2, dtype=dtype).dtype == dtype


def test_aliases_name_the_same_dtypes_as_in_torch():
    for alias, name in ALIASES.items():
        assert getattr(tinynet, alias) is getattr(tinynet, name)
    assert tinynet.get_default_dtype() is tinynet.float32
    assert tinynet.tensor([1.0]).long().dtype == tinynet.long


def test_aliases_named_like_builtins_do_not_replace_them_anywhere_else():
    # Only tinynet itself (and the dtypes module that defines them) holds float, int and bool.
    for module_name, module in list(sys.modules.items()):
        if module_name.startswith("tinynet.") and module_name != "tinynet.dtypes":
            for name in ("float", "int", "bool"):
                assert vars(module).get(name, getattr(builtins, name)) is getattr(builtins, name), module_name
    namespace = {}
    exec("from tinynet import *", namespace)
    assert "float" not in namespace and "bool" not in namespace and namespace["float32"] is np.float32


@pytest.mark.parametrize("name", DTYPE_NAMES + list(ALIASES))
def test_dtype_names_match_torch(name):
    torch = pytest.importorskip("torch")
    assert np.dtype(getattr(tinynet, name)).name == str(getattr(torch, name)).removeprefix("torch.")


# -- constant values --------------------------------------------------------------------


@pytest.mark.parametrize("spelling", [(2, 3), ((2, 3),), ([2, 3],), (np.int64(2), tinynet.tensor(3))])
def test_sizes_are_taken_as_ints_a_tuple_or_a_list(spelling):
    assert tinynet.zeros(*spelling).shape == (2, 3)
    assert tinynet.rand(*spelling).shape == (2, 3)
    assert tinynet.zeros(size=(2, 3)).shape == (2, 3) and tinynet.zeros(()).shape == ()


def test_zeros_ones_full_empty_eye_have_their_values_and_float32(device):
    assert np.array_equal(values(tinynet.zeros(2, 3, device=device)), np.zeros((2, 3)))
    assert np.array_equal(values(tinynet.ones((3,), device=device)), np.ones(3))
    assert np.array_equal(values(tinynet.full((2, 2), 1.5, device=device)), np.full((2, 2), 1.5))
    assert np.array_equal(values(tinynet.eye(2, 3, device=device)), np.eye(2, 3))
    assert np.array_equal(values(tinynet.eye(3, device=device)), np.eye(3))
    for t in (tinynet.zeros(2, device=device), tinynet.ones(2, device=device), tinynet.empty(4, 5, device=device),
              tinynet.eye(2, device=device), tinynet.full((2,), 1.5, device=device)):
        assert t.dtype == tinynet.float32 and t.device == device and not t.requires_grad
    assert tinynet.empty(4, 5).shape == (4, 5)


def test_full_takes_its_dtype_from_the_fill_value_as_torch():
    assert tinynet.full((2,), 7).dtype == tinynet.int64
    assert tinynet.full((2,), True).dtype == tinynet.bool
    assert tinynet.full((2,), np.float64(1.5)).dtype == tinynet.float32  # a number, not an array
    assert tinynet.full((2,), tinynet.tensor(7)).tolist() == [7, 7]
    assert tinynet.full((2,), 7, dtype=tinynet.float64).dtype == tinynet.float64


def test_dtype_is_taken_as_a_tinynet_dtype_a_name_or_a_python_type():
    assert tinynet.zeros(2, dtype=tinynet.int32).dtype == np.int32
    assert tinynet.ones(2, dtype="float64").dtype == np.float64
    assert tinynet.ones(2, dtype=float).dtype == np.float64  # torch reads Python's float as float64 too
    assert tinynet.ones(2, dtype=bool).tolist() == [True, True]


def test_like_forms_take_the_shape_dtype_and_device_of_their_input(device):
    x = tinynet.zeros(2, 3, dtype=tinynet.int32, device=device)
    for t in (tinynet.zeros_like(x), tinynet.ones_like(x), tinynet.full_like(x, 2.7), tinynet.empty_like(x),
              tinynet.randint_like(x, 5)):
        assert t.shape == (2, 3) and t.dtype == tinynet.int32 and t.device == device
    assert values(tinynet.full_like(x, 2.7)).tolist() == [[2, 2, 2]] * 2  # the input's dtype, as torch
    assert values(tinynet.ones_like(x)).sum() == 6
    f = tinynet.zeros(4, device=device)
    assert tinynet.rand_like(f).dtype == tinynet.float32 and tinynet.randn_like(f).device == device
    assert tinynet.zeros_like(x, dtype=tinynet.float64).dtype == tinynet.float64
    assert tinynet.zeros_like(x, device="cpu").device == "cpu"


# -- ranges --------------------------------------------------------------------------------


def test_arange_counts_and_types_as_torch():
    assert tinynet.arange(5).tolist() == [0, 1, 2, 3, 4] and tinynet.arange(5).dtype == tinynet.int64
    assert tinynet.arange(1, 7, 2).tolist() == [1, 3, 5]
    assert tinynet.arange(5, 0, -2).tolist() == [5, 3, 1]
    assert tinynet.arange(end=3).tolist() == [0, 1, 2] and tinynet.arange(2, 2).shape == (0,)
    tenths = tinynet.arange(0, 1, 0.1)
    assert tenths.shape == (10,) and tenths.dtype == tinynet.float32
    assert np.array_equal(values(tenths), (np.arange(10) * 0.1).astype(np.float32))  # rounded once
    assert tinynet.arange(0, 0.3, 0.1).shape == (3,)
    assert tinynet.arange(0, 2.5, 1, dtype=tinynet.int64).tolist() == [0, 1]  # bounds truncated first


def test_linspace_includes_both_ends_in_float32(device):
    t = tinynet.linspace(0, 1, 5, device=device)
    assert t.dtype == tinynet.float32 and t.device == device
    assert values(t).tolist() == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert values(tinynet.linspace(3, -2, 4))[[0, -1]].tolist() == [3.0, -2.0]
    for start, end, steps in ((-1.3, 2.9, 11), (0.3, 0.9, 5)):  # start + step * 10 misses 2.9 in float64
        assert values(tinynet.linspace(start, end, steps, dtype=tinynet.float64))[[0, -1]].tolist() == [start, end]
    assert tinynet.linspace(2, 5, 1).tolist() == [2.0] and tinynet.linspace(2, 5, 0).shape == (0,)
    assert tinynet.linspace(0, 10, 4, dtype=tinynet.int64).tolist() == [0, 3, 6, 10]


# -- random values -------------------------------------------------------------------------


def test_rand_randn_randint_draw_from_the_seeded_generator_in_float32():
    tinynet.manual_seed(3)
    expected = np.random.default_rng(3)
    assert np.array_equal(values(tinynet.rand(4)), expected.random(4, dtype=np.float32))
    assert np.array_equal(values(tinynet.randn(2, 2)), expected.standard_normal((2, 2), dtype=np.float32))
    assert np.array_equal(values(tinynet.randint(2, 9, (5,))), expected.integers(2, 9, 5))


@pytest.mark.parametrize("draw", [lambda d: tinynet.rand(6, device=d), lambda d: tinynet.randn(2, 3, device=d),
                                  lambda d: tinynet.randint(0, 100, (6,), device=d),
                                  lambda d: tinynet.randint(100, (6,), device=d),
                                  lambda d: tinynet.randperm(20, device=d)])
def test_the_same_seed_gives_the_same_tensors(draw, device):
    tinynet.manual_seed(0)
    first, second = draw(device), draw(device)
    tinynet.manual_seed(0)
    again = draw(device)
    assert np.array_equal(values(first), values(again))
    assert not np.array_equal(values(first), values(second))


def test_random_tensors_have_their_distributions_and_dtypes(device):
    uniform = values(tinynet.rand(10_000, device=device))
    assert uniform.dtype == np.float32 and 0 <= uniform.min() and uniform.max() < 1
    assert abs(uniform.mean() - 0.5) < 0.02
    normal = values(tinynet.randn(10_000, dtype=tinynet.float64, device=device))
    assert normal.dtype == np.float64 and abs(normal.mean()) < 0.05 and abs(normal.std() - 1) < 0.05
    integers = values(tinynet.randint(-2, 3, (1000,), device=device))
    assert integers.dtype == np.int64 and sorted(set(integers.tolist())) == [-2, -1, 0, 1, 2]
    assert tinynet.randint(10, size=(2, 3), device=device).shape == (2, 3)
    assert tinynet.randint(high=10, size=[4]).shape == (4,)
    assert tinynet.randint(0, 2, (3,), dtype=tinynet.bool).dtype == tinynet.bool
    assert tinynet.randint(0, 10, (3,), dtype=tinynet.float32).dtype == tinynet.float32
    like = values(tinynet.randint_like(tinynet.zeros(200, device=device), 3, 5))
    assert like.dtype == np.float32 and set(like.tolist()) == {3.0, 4.0}


def test_randperm_orders_0_to_n_minus_1_and_every_order_comes_up(device):
    perm = values(tinynet.randperm(1000, device=device))
    assert perm.dtype == np.int64 and np.array_equal(np.sort(perm), np.arange(1000))
    orders = {tuple(values(tinynet.randperm(3, device=device))) for _ in range(200)}
    assert len(orders) == 6


def test_half_precision_rand_stays_below_one():
    # A float32 draw within 2**-12 of 1 rounds to 1.0 in float16: about 24 of these 100,000.
    halves = values(tinynet.rand(100_000, dtype=tinynet.float16))
    assert halves.dtype == np.float16 and halves.max() < 1 and halves.min() >= 0
    assert tinynet.randn(3, dtype=tinynet.half).dtype == np.float16


# -- gradients, devices, memory ------------------------------------------------------------


@pytest.mark.parametrize("make", [
    lambda **kw: tinynet.zeros(2, 3, **kw), lambda **kw: tinynet.ones(2, 3, **kw),
    lambda **kw: tinynet.full((2, 3), 0.5, **kw), lambda **kw: tinynet.empty(2, 3, **kw),
    lambda **kw: tinynet.eye(2, 3, **kw), lambda **kw: tinynet.arange(0.0, 6.0, **kw),
    lambda **kw: tinynet.linspace(0, 1, 6, **kw), lambda **kw: tinynet.rand(2, 3, **kw),
    lambda **kw: tinynet.randn(2, 3, **kw), lambda **kw: tinynet.zeros_like(tinynet.ones(2, 3), **kw),
    lambda **kw: tinynet.rand_like(tinynet.ones(2, 3), **kw),
])
def test_requires_grad_gives_a_leaf_that_backward_fills(make, device):
    x = make(requires_grad=True, device=device)
    assert x.is_leaf and x.requires_grad and x.device == device
    (x * 3.0).sum().backward()
    assert np.array_equal(backend.to_numpy(x.grad), np.full(x.shape, 3.0))


def test_device_takes_every_spelling(device):
    spellings = ["cpu", tinynet.device("cpu")] if device == "cpu" else ["gpu", "cuda", "cuda:0", tinynet.device("cuda")]
    for spelling in spellings:
        for t in (tinynet.ones(2, device=spelling), tinynet.arange(3, device=spelling),
                  tinynet.randn(2, device=spelling), tinynet.randint(5, (2,), device=spelling)):
            assert t.device == device


def test_from_numpy_shares_memory_both_ways():
    array = np.zeros(3, dtype=np.float64)
    t = tinynet.from_numpy(array)
    assert t.dtype == tinynet.float64 and t.data is array
    array[0] = 5
    t[1] = 7
    assert t.tolist() == [5.0, 7.0, 0.0] and array.tolist() == [5.0, 7.0, 0.0]
    assert tinynet.from_numpy(np.arange(3)).dtype == tinynet.int64


# -- errors ----------------------------------------------------------------------------------


@pytest.mark.parametrize("call, error, message", [
    (lambda: tinynet.zeros(-1, 3), RuntimeError, r"zeros: the size \(-1, 3\) has a negative dimension"),
    (lambda: tinynet.rand(2.5), TypeError, r"rand: the size must be ints, got \(2.5,\)"),
    (lambda: tinynet.ones(), TypeError, "ones: missing the size"),
    (lambda: tinynet.zeros((2,), size=(2,)), TypeError, "zeros: the size was given twice"),
    (lambda: tinynet.zeros(2, dtype="flaot32"), TypeError, "zeros: unknown dtype 'flaot32': expected one of"),
    (lambda: tinynet.zeros(2, dtype=np.complex64), TypeError, "zeros: unknown dtype"),
    (lambda: tinynet.ones(2, dtype=tinynet.int64, requires_grad=True), RuntimeError,
     "ones: only floating-point tensors can require gradients, got dtype int64"),
    (lambda: tinynet.arange(5, requires_grad=True), RuntimeError, "arange: only floating-point"),
    (lambda: tinynet.randint(5, 5, (3,)), RuntimeError, r"randint: high \(5\) must be greater than low \(5\)"),
    (lambda: tinynet.randint(7, 2, (3,)), RuntimeError, "randint: high"),
    (lambda: tinynet.randint(10), TypeError, "randint: missing the high bound or the size"),
    (lambda: tinynet.randint(0.5, 10, (3,)), TypeError, "randint: low and high must be ints"),
    (lambda: tinynet.randint(0, 300, (3,), dtype=tinynet.uint8), RuntimeError, "do not all fit in uint8"),
    (lambda: tinynet.randperm(300, dtype=tinynet.uint8), RuntimeError, "randperm: the values 0 .. 299 do not all fit"),
    (lambda: tinynet.randperm(-1), RuntimeError, "randperm: n must be >= 0, got -1"),
    (lambda: tinynet.randint_like(tinynet.zeros(2)), TypeError, "randint_like: missing the high bound"),
    (lambda: tinynet.rand(2, dtype=tinynet.int64), TypeError, "rand: draws floating-point values, got dtype int64"),
    (lambda: tinynet.randn_like(tinynet.arange(3)), TypeError, "randn_like: draws floating-point"),
    (lambda: tinynet.full((2,), "a"), TypeError, "full: fill_value must be a real number"),
    (lambda: tinynet.eye(-1), RuntimeError, "eye: n must be >= 0, got -1"),
    (lambda: tinynet.eye(2, 2.0), TypeError, "eye: m must be an int"),
    (lambda: tinynet.arange(0, 1, 0), RuntimeError, "arange: step must be nonzero"),
    (lambda: tinynet.arange(0, 2.5, 0.5, dtype=tinynet.int64), RuntimeError, "arange: step must be nonzero"),
    (lambda: tinynet.arange(0, 1, -1), RuntimeError, "arange: a step of -1 never goes from 0 to 1"),
    (lambda: tinynet.arange(0, float("inf")), RuntimeError, "arange: start, end and step must be finite"),
    (lambda: tinynet.arange(), TypeError, "arange: missing the end"),
    (lambda: tinynet.linspace(0, 1, -1), RuntimeError, "linspace: steps must be >= 0, got -1"),
    (lambda: tinynet.zeros_like(np.zeros(2)), TypeError, "zeros_like: input must be a Tensor, got ndarray"),
    (lambda: tinynet.from_numpy([1.0]), TypeError, "from_numpy: expected a NumPy array, got list"),
    (lambda: tinynet.from_numpy(np.array(["a"])), TypeError, "from_numpy: unknown dtype"),
    (lambda: tinynet.zeros(2, device="tpu"), ValueError, "unknown device 'tpu'"),
])
def test_bad_arguments_are_refused_by_name(call, error, message):
    with pytest.raises(error, match=message):
        call()


# -- parity with torch ---------------------------------------------------------------------

# Each call is evaluated with `lib` bound to tinynet and to torch.
DETERMINISTIC = [
    "lib.zeros(2, 3)", "lib.zeros((2, 3), dtype=lib.int32)", "lib.ones([4])", "lib.ones(2, dtype=lib.bool)",
    "lib.full((2,), 1.5)", "lib.full((2,), 7)", "lib.full((2,), True)", "lib.full((1, 2), 3, dtype=lib.float16)",
    "lib.eye(3)", "lib.eye(2, 4, dtype=lib.long)", "lib.empty(3, 2).shape",
    "lib.arange(5)", "lib.arange(2, 9, 3)", "lib.arange(5, 0, -2)", "lib.arange(3, dtype=lib.float64)",
    "lib.arange(0, 1, 0.1)", "lib.arange(0, 0.3, 0.1)", "lib.arange(-1.5, 1, 0.7)", "lib.arange(1, 2.2, 0.4)",
    "lib.arange(0, 10, 0.01)", "lib.arange(-3.3, 17.1, 0.13)", "lib.arange(0.5, 7.9, 2, dtype=lib.int32)",
    "lib.arange(-2.7, 3, 1, dtype=lib.int64)", "lib.arange(0, 1, 0.1, dtype=lib.double)",
    "lib.linspace(0, 1, 5)", "lib.linspace(3, -2, 4)", "lib.linspace(-1, 1, 1001)", "lib.linspace(0.1, 7.3, 37)",
    "lib.linspace(2, 5, 1)", "lib.linspace(0, 10, 4, dtype=lib.int64)", "lib.linspace(0, 1, 7, dtype=lib.float64)",
    "lib.linspace(-1.3, 2.9, 11, dtype=lib.float64)",
    "lib.zeros_like(lib.ones(2, dtype=lib.int32))", "lib.ones_like(lib.zeros(3, dtype=lib.half))",
    "lib.full_like(lib.zeros(2, dtype=lib.int64), 2.7)", "lib.full_like(lib.zeros(2), 2.7, dtype=lib.float64)",
    "lib.empty_like(lib.zeros(2, 3, dtype=lib.uint8)).shape",
]


@pytest.mark.parametrize("call", DETERMINISTIC)
def test_deterministic_factories_match_torch(call):
    torch = pytest.importorskip("torch")
    ours, theirs = eval(call, {"lib": tinynet}), eval(call, {"lib": torch})
    if isinstance(theirs, torch.Size):
        assert ours == tuple(theirs)
        return
    assert ours.shape == tuple(theirs.shape)
    assert np.dtype(ours.dtype).name == str(theirs.dtype).removeprefix("torch.")
    if theirs.dtype.is_floating_point:
        # torch's vector kernels add steps in float32 where this rounds each float64 value once:
        # the last bit may differ.
        np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=2e-7, atol=1e-7)
    else:
        assert np.array_equal(ours.numpy(), theirs.numpy())


@pytest.mark.parametrize("call", ["lib.rand(2, 3)", "lib.randn((4,))", "lib.randint(10, (3, 2))",
                                  "lib.randint(-5, 5, (2,), dtype=lib.int32)", "lib.rand(2, dtype=lib.float64)",
                                  "lib.randn_like(lib.zeros(2, dtype=lib.half))", "lib.randint_like(lib.zeros(3), 4)",
                                  "lib.randperm(7)", "lib.randperm(4, dtype=lib.int32)", "lib.randperm(0)"])
def test_random_factories_give_torchs_shapes_and_dtypes(call):
    torch = pytest.importorskip("torch")
    ours, theirs = eval(call, {"lib": tinynet}), eval(call, {"lib": torch})
    assert ours.shape == tuple(theirs.shape)
    assert np.dtype(ours.dtype).name == str(theirs.dtype).removeprefix("torch.")
