"""tinynet.save and tinynet.load: what they store exactly, what they refuse, and damaged files."""

import numpy as np
import pytest

import tinynet
from tinynet import backend, nn, optim
from tinynet.checkpoint import CheckpointError, save_checkpoint
from tinynet.serialization import load


def everything():
    return {
        "float32": np.arange(6, dtype=np.float32).reshape(2, 3),
        "float64": np.array([0.1, np.nan, -np.inf]),
        "ints": np.array([[1, -2]], dtype=np.int64),
        "mask": np.array([True, False]),
        "scalar": np.float32(2.5),
        "tensor": tinynet.tensor([1.0, 2.0], requires_grad=True),
        "parameter": nn.Parameter(np.ones(3, dtype=np.float32)),
        "nested": {"list": [1, 2.5, "three", None, True], "tuple": (0, np.zeros(0, dtype=np.float32)), 7: "int key"},
        "empty": {},
    }


def test_round_trip_is_exact_and_keeps_kinds_and_dtypes(tmp_path):
    saved = everything()
    tinynet.save(saved, tmp_path / "all.npz")
    loaded = tinynet.load(tmp_path / "all.npz")
    assert list(loaded) == list(saved) and list(loaded["nested"]) == ["list", "tuple", 7]
    for key in ("float32", "float64", "ints", "mask"):
        np.testing.assert_array_equal(loaded[key], saved[key])
        assert loaded[key].dtype == saved[key].dtype, key
    assert type(loaded["scalar"]) is np.float32 and loaded["scalar"] == 2.5
    assert type(loaded["tensor"]) is tinynet.Tensor and loaded["tensor"].requires_grad
    assert type(loaded["parameter"]) is nn.Parameter
    np.testing.assert_array_equal(loaded["parameter"].data, 1.0)
    assert loaded["nested"]["list"] == [1, 2.5, "three", None, True] and loaded["nested"][7] == "int key"
    assert isinstance(loaded["nested"]["tuple"], tuple) and loaded["nested"]["tuple"][1].shape == (0,)
    assert loaded["empty"] == {}
    assert tinynet.load(tmp_path / "all.npz", map_location="cpu", weights_only=False)["ints"].dtype == np.int64


def test_model_and_optimizer_state_dicts_round_trip_exactly(tmp_path):
    tinynet.manual_seed(1)
    model = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
    sgd = optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
    model(tinynet.tensor(np.ones((2, 4), dtype=np.float32))).sum().backward()
    sgd.step()
    tinynet.save(model.state_dict(), tmp_path / "model.npz")
    tinynet.save(sgd.state_dict(), tmp_path / "sgd.npz")

    tinynet.manual_seed(2)
    again = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
    again.load_state_dict(tinynet.load(tmp_path / "model.npz"))
    for (name, a), (_, b) in zip(model.named_parameters(), again.named_parameters()):
        np.testing.assert_array_equal(a.data, b.data, err_msg=name)
    resumed = optim.SGD(again.parameters(), lr=1.0)
    resumed.load_state_dict(tinynet.load(tmp_path / "sgd.npz"))
    assert resumed.state_dict()["param_groups"] == sgd.state_dict()["param_groups"]
    for ours, theirs in zip(resumed.state, sgd.state):
        np.testing.assert_array_equal(ours["velocity"], theirs["velocity"])


@pytest.mark.parametrize("obj, where, kind", [
    ({"model": {"fc": lambda: 0}}, r"\['model'\]\['fc'\]", "function"),
    ([1, {"x": {2, 3}}], r"\[1\]\['x'\]", "set"),
    (object(), "the object", "object"),
])
def test_what_cannot_be_stored_is_named_by_its_place_and_type(tmp_path, obj, where, kind):
    with pytest.raises(TypeError, match=f"cannot store {where}, of type {kind}"):
        tinynet.save(obj, tmp_path / "bad.npz")
    assert not list(tmp_path.iterdir())  # refused before anything was written


def test_keys_and_object_arrays_that_would_need_pickle_are_refused(tmp_path):
    tinynet.save({"kept": 1}, tmp_path / "x.npz")
    with pytest.raises(TypeError, match=r"the key \(1, 2\) of \['a'\]: keys must be str or int, got tuple"):
        tinynet.save({"a": {(1, 2): 3}}, tmp_path / "x.npz")
    with pytest.raises(TypeError, match=r"cannot store \['a'\]: an array of Python objects"):
        tinynet.save({"a": np.array([{}, None])}, tmp_path / "x.npz")
    assert tinynet.load(tmp_path / "x.npz") == {"kept": 1}  # the earlier file is whole
    assert [p.name for p in tmp_path.iterdir()] == ["x.npz"]  # and no temporary file is left


def test_a_damaged_file_raises_the_checkpoint_error(tmp_path):
    path = tmp_path / "state.npz"
    tinynet.save({"w": np.arange(1000, dtype=np.float32)}, path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="state.npz"):
        tinynet.load(path)
    path.write_bytes(b"not a checkpoint at all")
    with pytest.raises(CheckpointError):
        tinynet.load(path)


def test_a_checkpoint_not_written_by_save_is_named_as_such(tmp_path):
    save_checkpoint(tmp_path / "run.npz", {"model.w": np.zeros(2)}, {"config": {}})
    with pytest.raises(CheckpointError, match="not written by tinynet.save: read it with .*load_checkpoint"):
        tinynet.load(tmp_path / "run.npz")


def test_arrays_saved_from_a_gpu_need_map_location_where_there_is_none(tmp_path, monkeypatch):
    structure = {"type": "dict", "items": [["w", {"type": "array", "array": "0", "device": "gpu"}]]}
    save_checkpoint(tmp_path / "gpu.npz", {"0": np.ones(2, dtype=np.float32)}, {"saved_object": structure})
    monkeypatch.setattr(backend, "gpu_available", lambda: False)
    with pytest.raises(RuntimeError, match="saved from the GPU.*map_location='cpu'"):
        load(tmp_path / "gpu.npz")
    np.testing.assert_array_equal(load(tmp_path / "gpu.npz", map_location="cpu")["w"], [1.0, 1.0])
    with pytest.raises(ValueError, match="unknown device 'tpu'"):
        load(tmp_path / "gpu.npz", map_location="tpu")


def test_arrays_go_back_to_their_device_or_to_map_location(tmp_path, device):
    model = nn.Linear(3, 2).to(device)
    tinynet.save({"state": model.state_dict(), "tensor": tinynet.tensor([1.0]).to(device)}, tmp_path / "m.npz")
    loaded = tinynet.load(tmp_path / "m.npz")
    assert all(backend.device_of(a) == device for a in loaded["state"].values())
    assert loaded["tensor"].device == device
    on_cpu = tinynet.load(tmp_path / "m.npz", map_location="cpu")
    assert all(isinstance(a, np.ndarray) for a in on_cpu["state"].values())
    again = nn.Linear(3, 2).to(device)
    again.load_state_dict(loaded["state"])
    np.testing.assert_array_equal(backend.to_numpy(again.weight.data), backend.to_numpy(model.weight.data))
