"""A Tensor to and from Python, NumPy, other dtypes and other devices, as PyTorch code expects."""

import numpy as np
import pytest

import tinynet
from tinynet import Tensor, backend
from tinynet.conversions import Cast, ToDevice
from tinynet.gradcheck import check_elementwise, gradcheck

TOLERANCE = 1e-6


# -- the constructors ------------------------------------------------------------------------


def test_tensor_class_reads_a_list_as_float32_like_torch_Tensor():
    assert Tensor([1, 2]).dtype == tinynet.float32 and Tensor([[True], [False]]).tolist() == [[1.0], [0.0]]
    array = np.arange(3)
    wrapped = Tensor(array)
    assert wrapped.data is array and wrapped.dtype == np.int64  # an array is wrapped as it is


@pytest.mark.parametrize("call", [lambda: Tensor(3), lambda: Tensor(2, 3), lambda: Tensor(1.5)],
                         ids=["Tensor(3)", "Tensor(2, 3)", "Tensor(1.5)"])
def test_tensor_class_refuses_a_bare_number_that_torch_reads_as_a_size(call):
    with pytest.raises(TypeError, match=r"not a bare number.*tinynet\.tensor\(.*tinynet\.zeros\(n\)"):
        call()


@pytest.mark.parametrize("data", ["abc", None, np.array([1 + 2j]), [{"a": 1}]], ids=["str", "None", "complex", "dict"])
def test_tensor_refuses_what_is_no_number(data):
    with pytest.raises(TypeError, match="tensor: cannot make a tensor of .*: expected numbers or bools"):
        tinynet.tensor(data)


def test_tensor_refuses_an_unknown_dtype():
    with pytest.raises(TypeError, match="tensor: unknown dtype 'complex64'.*tinynet.float32"):
        tinynet.tensor([1.0], dtype="complex64")


def test_tensor_of_tensors_takes_their_values():
    x = tinynet.tensor([[1.5, 2.5]], requires_grad=True)
    copied = tinynet.tensor(x)
    assert copied.dtype == np.float32 and not copied.requires_grad and copied.data is not x.data
    assert tinynet.tensor([x[0, 0], x[0, 1]]).tolist() == [1.5, 2.5]
    assert tinynet.tensor(x, dtype=tinynet.float64).dtype == np.float64


def test_tensor_infers_dtypes_as_torch_does():
    torch = pytest.importorskip("torch")
    for data in (1.5, 2, True, [1, 2.5], [[1, 2]], [True, False], [True, 2], np.float64(1.5), np.int32(3),
                 np.array([1, 2], np.int32), np.array([1.0], np.float64), np.array([1.0], np.float16)):
        ours, theirs = tinynet.tensor(data), torch.tensor(data)
        assert np.dtype(ours.dtype).name == str(theirs.dtype).removeprefix("torch."), data
        assert ours.tolist() == theirs.tolist()


# -- to Python and NumPy ---------------------------------------------------------------------


def test_python_numbers_and_truth_of_one_value():
    assert float(tinynet.tensor([[2.5]])) == 2.5 and int(tinynet.tensor(-2.7)) == -2
    assert bool(tinynet.tensor([1.0])) and not bool(tinynet.tensor(0))
    assert tinynet.tensor(3).item() == 3 and isinstance(tinynet.tensor(3).item(), int)
    with pytest.raises(TypeError, match=r"item\(\) needs a tensor of one value, got shape \(2,\)"):
        tinynet.tensor([1.0, 2.0]).item()
    with pytest.raises(TypeError, match=r"int\(\) needs a tensor of one value, got shape \(2,\)"):
        int(tinynet.tensor([1, 2]))


def test_a_0_dim_tensor_formats_as_its_value():
    loss = tinynet.tensor([0.123456]).sum()
    assert f"loss {loss:.3f}" == "loss 0.123" and f"{tinynet.tensor(7):>3d}" == "  7"
    assert f"{tinynet.tensor([1.0])}" == str(tinynet.tensor([1.0]))
    with pytest.raises(TypeError, match="unsupported format string"):
        f"{tinynet.tensor([1.0]):.2f}"  # as in PyTorch: only a 0-dim tensor has one value to format


def test_iteration_gives_rows_and_refuses_a_0_dim_tensor():
    rows = list(tinynet.tensor([[1.0, 2.0], [3.0, 4.0]]))
    assert [row.tolist() for row in rows] == [[1.0, 2.0], [3.0, 4.0]]
    with pytest.raises(TypeError, match="iteration over a 0-dim tensor; use .item()"):
        list(tinynet.tensor(1.0))


@pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy keyword")  # torch's
def test_numpy_asarray_shares_memory_and_array_copies_as_with_torch():
    torch = pytest.importorskip("torch")
    for lib in (tinynet, torch):
        x = lib.tensor([1.0, 2.0])
        np.asarray(x)[0] = 5.0  # a view of the tensor's memory
        np.array(x)[1] = 7.0  # a copy
        assert x.tolist() == [5.0, 2.0], lib.__name__
    x = tinynet.tensor([1.0, 2.0])
    assert np.asarray(x, dtype=np.float64).dtype == np.float64 and np.array(x, copy=False) is x.data
    with pytest.raises(ValueError, match=r"copy=False\) cannot give .* float32 tensor on cpu as float64"):
        np.asarray(x, dtype=np.float64, copy=False)


# -- dtypes --------------------------------------------------------------------------------------


def test_conversion_methods_give_pytorchs_dtypes():
    torch = pytest.importorskip("torch")
    for method in ("float", "double", "half", "long", "int", "bool"):
        ours = getattr(tinynet.tensor([1.5, -2.0]), method)()
        theirs = getattr(torch.tensor([1.5, -2.0]), method)()
        assert np.dtype(ours.dtype).name == str(theirs.dtype).removeprefix("torch."), method
        assert ours.tolist() == theirs.tolist(), method


def test_to_takes_dtypes_devices_tensors_and_keywords():
    x = tinynet.tensor([1.0, -2.0], requires_grad=True)
    assert x.to(tinynet.float64).dtype == np.float64 and x.to("float16").dtype == np.float16
    assert x.to("cpu", tinynet.float64).dtype == np.float64 and x.to(tinynet.tensor([1])).dtype == np.int64
    assert x.to(tinynet.device("cpu")) is x and x.float() is x and x.cpu() is x
    assert x.to("cpu", non_blocking=True) is x
    copied = x.to(copy=True)
    assert copied is not x and copied.tolist() == x.tolist()
    with pytest.raises(TypeError, match="to: unknown dtype .*complex64"):
        x.to(np.complex64)
    with pytest.raises(ValueError, match="unknown device 'gpu0'"):
        x.to("gpu0")


def test_a_cast_to_float_stays_in_the_graph_and_one_to_integers_leaves_it():
    x = tinynet.tensor([1.0, -2.0, 3.0], requires_grad=True)
    y = x.double()
    assert y.dtype == np.float64 and isinstance(y.creator, Cast)
    (y * y).sum().backward()
    assert x.grad.dtype == np.float32 and x.grad.tolist() == [2.0, -4.0, 6.0]
    counts = x.long()
    assert counts.dtype == np.int64 and not counts.requires_grad and counts.creator is None


def test_cast_gradient_matches_central_differences():
    # float32 rounding would swamp a 1e-6 check, so the values are multiples of 1/16, which
    # float32 holds exactly, as it does x +- eps with eps = 2**-10, and their squares; the
    # function is quadratic, so its central difference is exact. (Hence the entry-by-entry
    # check: a random direction's steps are no multiples of eps.)
    x = np.array([[0.5, -1.25, 3.0], [2.0, 0.0625, -0.75]])

    def fn(a):
        single = a.float()
        return (single * single * 0.5).double() + a

    assert check_elementwise(fn, [x], eps=2.0**-10) < TOLERANCE


def test_casts_in_a_graph_give_pytorchs_gradients():
    torch = pytest.importorskip("torch")
    values = np.array([0.3, -1.7, 2.2], np.float32)
    grads = []
    for lib in (tinynet, torch):
        x = lib.tensor(values, requires_grad=True)
        y = (x.double() * 3).exp().float() + x.half().float()
        y.sum().backward()
        grads.append(np.asarray(x.grad))
    np.testing.assert_allclose(grads[0], grads[1], rtol=1e-4, atol=1e-5)


# -- devices -----------------------------------------------------------------------------------


def test_a_device_move_keeps_the_graph_of_a_computed_tensor(device):
    x = tinynet.tensor([1.0, -2.0, 3.0], requires_grad=True)
    h = (x * 2).to(device)
    assert h.device == device and h.requires_grad
    (h * h).sum().backward()  # gradient 8x, back on x's device
    assert backend.device_of(x.grad) == "cpu" and x.grad.tolist() == [8.0, -16.0, 24.0]


def test_a_moved_leaf_is_a_trainable_leaf(device):
    w = tinynet.tensor([1.0, 2.0], requires_grad=True).to(device)
    assert w.device == device and w.is_leaf and w.requires_grad
    (w * w).sum().backward()
    assert backend.device_of(w.grad) == device and backend.to_numpy(w.grad).tolist() == [2.0, 4.0]


def test_device_move_gradient_matches_central_differences(device):
    x = np.random.default_rng(0).standard_normal((3, 4))
    # There and back, so that the checked result lies beside the inputs.
    assert gradcheck(lambda a: ToDevice("cpu")(ToDevice(device)(a * a) * 2), [x]) < TOLERANCE
