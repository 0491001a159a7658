"""Interop: torchvision's AlexNet weights in (with and without PyTorch), ONNX out.

torchvision's wheels need PyTorch's CUDA build, so the model that stands in for its
AlexNet is built here with torch.nn, with torchvision's layer names and shapes, and saved
as torchvision's file was: ``torch.save(model.state_dict(), path)``.
"""

import collections
import os
import pickle
import sys
import zipfile

import numpy as np
import pytest
from PIL import Image

import alexnet
import tinynet
from tinynet import nn
from tinynet.checkpoint import load_checkpoint
from tinynet.data import imagenet_classes, imagenet_synsets, transforms
from tinynet.experiment import eval_transform, image_data
from tinynet.torch_weights import UnsafeWeightsError, load_state_dict, read_without_torch

TORCHVISION_PARAMETERS = 61_100_840


def torchvision_layout_alexnet(torch):
    """torchvision.models.alexnet() rebuilt from torch.nn: the same names, shapes and forward."""
    n = torch.nn

    class AlexNet(n.Module):
        def __init__(self):
            super().__init__()
            self.features = n.Sequential(
                n.Conv2d(3, 64, 11, 4, 2), n.ReLU(True), n.MaxPool2d(3, 2),
                n.Conv2d(64, 192, 5, padding=2), n.ReLU(True), n.MaxPool2d(3, 2),
                n.Conv2d(192, 384, 3, padding=1), n.ReLU(True), n.Conv2d(384, 256, 3, padding=1), n.ReLU(True),
                n.Conv2d(256, 256, 3, padding=1), n.ReLU(True), n.MaxPool2d(3, 2))
            self.avgpool = n.AdaptiveAvgPool2d((6, 6))
            self.classifier = n.Sequential(n.Dropout(), n.Linear(9216, 4096), n.ReLU(True), n.Dropout(),
                                           n.Linear(4096, 4096), n.ReLU(True), n.Linear(4096, 1000))

        def forward(self, x):
            return self.classifier(torch.flatten(self.avgpool(self.features(x)), 1))

    torch.manual_seed(0)
    return AlexNet().eval()


@pytest.fixture(scope="module")
def torch():
    return pytest.importorskip("torch")


@pytest.fixture(scope="module")
def saved_alexnet(torch, tmp_path_factory):
    """(model, {format: path}) of the stand-in, saved in PyTorch's zip and legacy formats."""
    model = torchvision_layout_alexnet(torch)
    folder = tmp_path_factory.mktemp("weights")
    paths = {"zip": folder / "zip.pth", "legacy": folder / "legacy.pth"}
    torch.save(model.state_dict(), paths["zip"])
    torch.save(model.state_dict(), paths["legacy"], _use_new_zipfile_serialization=False)
    return model, paths


def tinynet_logits(checkpoint, x):
    arrays, meta = load_checkpoint(checkpoint)
    model = alexnet.AlexNet(meta["config"]["preset"], meta["config"]["num_classes"], 3).eval()
    model.load_state_dict({name[len("model."):]: array for name, array in arrays.items()})
    with tinynet.no_grad():
        return model(x).data


@pytest.mark.parametrize("with_torch", [True, False], ids=["with-torch", "without-torch"])
@pytest.mark.parametrize("form", ["zip", "legacy"])
def test_import_torchvision_gives_pytorchs_logits(torch, saved_alexnet, tmp_path, monkeypatch, capsys, form,
                                                  with_torch):
    model, paths = saved_alexnet
    if not with_torch:
        monkeypatch.setitem(sys.modules, "torch", None)  # `import torch` now fails, as where it is not installed
    out = tmp_path / "imagenet.npz"
    assert alexnet.main(["import-torchvision", str(paths[form]), "--out", str(out)]) == 0
    assert f"{TORCHVISION_PARAMETERS:,} parameters" in capsys.readouterr().out
    monkeypatch.undo()
    x = torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected = model(x).numpy()
    got = tinynet_logits(out, x.numpy())
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4 * np.abs(expected).max())
    _, meta = load_checkpoint(out)
    config = meta["config"]
    assert config["classes"] == imagenet_classes() and len(config["classes"]) == 1000
    assert (config["input_size"], config["mean"], config["std"]) == (224, [0.485, 0.456, 0.406], [0.229, 0.224, 0.225])
    assert len(meta["source"]["sha256"]) == 64


def test_the_real_torchvision_alexnet_converts_where_torchvision_is_installed(torch, tmp_path):
    try:
        import torchvision
    except Exception as error:  # a torchvision built for another torch fails with RuntimeError, not ImportError
        pytest.skip(f"torchvision cannot be imported: {error}")
    model = torchvision.models.alexnet(weights=None).eval()
    torch.save(model.state_dict(), tmp_path / "tv.pth")
    assert alexnet.main(["import-torchvision", str(tmp_path / "tv.pth"), "--out", str(tmp_path / "tv.npz")]) == 0
    x = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        expected = model(x).numpy()
    np.testing.assert_allclose(tinynet_logits(tmp_path / "tv.npz", x.numpy()), expected, rtol=1e-4,
                               atol=1e-4 * np.abs(expected).max())


def test_the_reader_without_torch_equals_torch_load_on_views_and_dtypes(torch, tmp_path):
    state = {"plain": torch.arange(6.0).reshape(2, 3), "transposed": torch.arange(12.0).reshape(3, 4).t(),
             "view": torch.arange(20.0, dtype=torch.float64)[5:11], "half": torch.arange(4.0).half()}
    for legacy in (False, True):
        path = tmp_path / f"state-{legacy}.pth"
        torch.save(state, path, _use_new_zipfile_serialization=not legacy)
        arrays = read_without_torch(path)
        for name, tensor in state.items():
            assert arrays[name].dtype == tensor.numpy().dtype
            np.testing.assert_array_equal(arrays[name], tensor.numpy())


class RunsAShellCommand:
    """A pickle that runs a shell command when loaded: what a planted weights file does."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def zip_weights_with_pickle(path, payload):
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("weights/data.pkl", pickle.dumps(payload, protocol=2))
        archive.writestr("weights/byteorder", "little")


def legacy_weights_with_pickle(path, payload):
    with open(path, "wb") as file:
        for value in (0x1950A86A20F9469CFC6C, 1001, {"little_endian": True}, payload, []):
            pickle.dump(value, file, protocol=2)


@pytest.mark.parametrize("write", [zip_weights_with_pickle, legacy_weights_with_pickle])
def test_a_planted_pickle_is_refused_and_never_runs(tmp_path, monkeypatch, capsys, write):
    marker = tmp_path / "the-command-ran"
    path = tmp_path / "alexnet.pth"
    write(path, {"features.0.weight": RunsAShellCommand(marker)})
    with pytest.raises(UnsafeWeightsError, match="asks to call .*system while loading"):
        read_without_torch(path)
    monkeypatch.setitem(sys.modules, "torch", None)
    assert alexnet.main(["import-torchvision", str(path), "--out", str(tmp_path / "out.npz")]) == 2
    err = capsys.readouterr().err.strip()
    assert "refused (nothing from it was run)" in err and "\n" not in err
    assert not marker.exists() and not (tmp_path / "out.npz").exists()


def test_a_planted_pickle_is_refused_by_torch_too(torch, tmp_path, capsys):
    """A real PyTorch file whose data.pkl is swapped for the planted one, so that torch.load
    gets as far as unpickling it."""
    marker, real, planted = tmp_path / "the-command-ran", tmp_path / "real.pth", tmp_path / "alexnet.pth"
    torch.save({"features.0.weight": torch.ones(2)}, real)
    with zipfile.ZipFile(real) as source, zipfile.ZipFile(planted, "w") as target:
        for name in source.namelist():
            data = source.read(name)
            if name.endswith("/data.pkl"):
                data = pickle.dumps({"features.0.weight": RunsAShellCommand(marker)}, protocol=2)
            target.writestr(name, data)
    assert alexnet.main(["import-torchvision", str(planted), "--out", str(tmp_path / "o.npz")]) == 2
    err = capsys.readouterr().err.strip()
    assert "refused it (nothing from it was run)" in err and "weights_only" not in err and "\n" not in err
    assert not marker.exists()


def test_integer_storages_are_refused(torch, tmp_path):
    torch.save({"count": torch.arange(3)}, tmp_path / "ints.pth")
    with pytest.raises(UnsafeWeightsError, match="LongStorage"):
        read_without_torch(tmp_path / "ints.pth")


def test_a_state_dict_of_another_shape_is_refused_by_name(torch, saved_alexnet, tmp_path, capsys):
    model, _ = saved_alexnet
    state = dict(model.state_dict())
    state["classifier.6.weight"] = torch.zeros(10, 4096)
    del state["features.0.bias"]
    torch.save(state, tmp_path / "other.pth")
    assert alexnet.main(["import-torchvision", str(tmp_path / "other.pth"), "--out", str(tmp_path / "o.npz")]) == 2
    err = capsys.readouterr().err
    assert "missing keys ['features.0.bias']" in err and "classifier.6.weight: expected (1000, 4096)" in err


def test_a_file_that_is_not_weights_is_one_line(tmp_path, capsys, monkeypatch):
    path = tmp_path / "notes.pth"
    path.write_bytes(b"not a weights file at all")
    monkeypatch.setitem(sys.modules, "torch", None)
    assert alexnet.main(["import-torchvision", str(path), "--out", str(tmp_path / "o.npz")]) == 2
    err = capsys.readouterr().err.strip()
    assert "notes.pth" in err and "\n" not in err


def test_load_state_dict_uses_torch_where_it_is_installed(torch, saved_alexnet):
    _, paths = saved_alexnet
    with_torch, without = load_state_dict(paths["zip"]), read_without_torch(paths["zip"])
    assert with_torch.keys() == without.keys()
    assert all(np.array_equal(with_torch[name], without[name]) for name in with_torch)


@pytest.mark.parametrize("height, width", [(301, 456), (456, 301)], ids=["landscape", "portrait"])
def test_predict_preprocesses_as_torchvision_does(height, width):
    """Resize the shorter side to 256, then the central 224x224. At 301x456 the longer side
    becomes 387.83 (torchvision truncates: 387) and the crop offset (387 - 224) / 2 = 81.5
    (torchvision rounds half to even: 82), so truncating or rounding differently shows."""
    image = Image.fromarray(np.random.default_rng(0).integers(0, 256, (height, width, 3), np.uint8))
    long_side = int(256 * max(height, width) / min(height, width))
    size = (long_side, 256) if width > height else (256, long_side)
    resized = np.asarray(image.resize(size, Image.Resampling.BILINEAR))
    top, left = (int(round((side - 224) / 2)) for side in resized.shape[:2])
    expected = resized[top:top + 224, left:left + 224].transpose(2, 0, 1)
    np.testing.assert_array_equal(eval_transform(224)(image, None), expected)
    try:
        from torchvision import transforms as tv
    except Exception:  # not installed, or built for another torch
        return
    reference = tv.Compose([tv.Resize(256), tv.CenterCrop(224), tv.PILToTensor()])(image).numpy()
    np.testing.assert_array_equal(expected, reference)


def test_validation_and_predict_decode_large_jpegs_at_full_size_and_see_the_same_pixels(tmp_path):
    """Draft decoding (a large JPEG decoded at 1/2 scale or less) is for training only: it gives
    other pixels than torchvision's full decode, resize and crop."""
    rng = np.random.default_rng(0)
    for split in ("train", "val"):
        for label in ("a", "b"):
            (tmp_path / split / label).mkdir(parents=True)
            pixels = rng.integers(0, 256, (900, 1200, 3), np.uint8)
            Image.fromarray(pixels).save(tmp_path / split / label / "large.jpg", quality=90)
    data = image_data(tmp_path, 227, batch_size=2)
    assert data.val.dataset.load(0)[0].size == (1200, 900)
    assert data.train.dataset.load(0)[0].size == (600, 450)  # training decodes at 1/2: 450 >= 256
    images, _ = next(iter(data.val))
    config = {"input_size": 227, "in_channels": 3, "mean": data.mean, "std": data.std}
    predicted = alexnet.load_images([path for path, _ in data.val.dataset.samples], config).data
    np.testing.assert_array_equal(predicted, transforms.Normalize(data.mean, data.std)(images))
    tv_view = eval_transform(227)(Image.open(data.val.dataset.samples[0][0]).convert("RGB"), None)
    np.testing.assert_array_equal(images[0], tv_view)


def hostile_zip(path, payload, compress=zipfile.ZIP_STORED):
    with zipfile.ZipFile(path, "w", compression=compress) as archive:
        archive.writestr("weights/data.pkl", payload)


class SetsAnAttribute:
    """Pickles as an OrderedDict whose BUILD sets an attribute other than _metadata."""

    def __reduce__(self):
        return collections.OrderedDict, (), {"evil": 1}


HOSTILE = {
    "an attribute set by BUILD": (pickle.dumps(SetsAnAttribute(), protocol=2), "sets attributes"),
    "a key that is not a name": (pickle.dumps({("deep",): 1}, protocol=2), "mapping that is not of names"),
    "a set": (pickle.dumps({"a": {1, 2}}, protocol=4), "holds a set"),
    "not a dict": (pickle.dumps([1, 2], protocol=2), "not a state dict"),
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_pickles_are_refused(tmp_path, name):
    payload, message = HOSTILE[name]
    hostile_zip(tmp_path / "w.pth", payload)
    with pytest.raises(UnsafeWeightsError, match=message):
        read_without_torch(tmp_path / "w.pth")


def test_a_compressed_member_is_refused_before_it_is_unpacked(tmp_path):
    hostile_zip(tmp_path / "bomb.pth", b"\0" * 10_000_000, compress=zipfile.ZIP_DEFLATED)
    assert (tmp_path / "bomb.pth").stat().st_size < 100_000
    with pytest.raises(UnsafeWeightsError, match="not stored as PyTorch stores it"):
        read_without_torch(tmp_path / "bomb.pth")


def test_views_are_checked_against_their_storage_to_the_element(torch, tmp_path):
    """A view that ends on the storage's last element reads; one more element is refused,
    and so is a view that repeats elements (stride 0) to exceed its storage."""
    path = tmp_path / "view.pth"
    torch.save({"w": torch.arange(4.0)[1:4]}, path, _use_new_zipfile_serialization=False)
    np.testing.assert_array_equal(read_without_torch(path)["w"], [1, 2, 3])
    data = path.read_bytes()
    assert data.count(b"K\x03\x85") == 1  # the size tuple (3,): BININT1 3, TUPLE1
    path.write_bytes(data.replace(b"K\x03\x85", b"K\x04\x85"))
    with pytest.raises(UnsafeWeightsError, match="lies outside its storage"):
        read_without_torch(path)
    torch.save({"w": torch.zeros(1).expand(1000)}, path)
    with pytest.raises(UnsafeWeightsError, match="lies outside its storage"):
        read_without_torch(path)


def test_truncated_legacy_data_is_one_line(torch, saved_alexnet, tmp_path, monkeypatch, capsys):
    _, paths = saved_alexnet
    cut = tmp_path / "cut.pth"
    cut.write_bytes(paths["legacy"].read_bytes()[:-1000])
    monkeypatch.setitem(sys.modules, "torch", None)
    assert alexnet.main(["import-torchvision", str(cut), "--out", str(tmp_path / "o.npz")]) == 2
    err = capsys.readouterr().err.strip()
    assert "cut.pth" in err and "\n" not in err


def test_a_converted_checkpoint_serves_eval_filters_and_features(torch, saved_alexnet, tmp_path, capsys):
    """eval finds ImageNet's class folders by their WordNet ids (n01440764, ...)."""
    _, paths = saved_alexnet
    checkpoint = tmp_path / "imagenet.npz"
    assert alexnet.main(["import-torchvision", str(paths["zip"]), "--out", str(checkpoint)]) == 0
    pixels = np.random.default_rng(0).integers(0, 256, (8, 8, 3), np.uint8)
    for synset in imagenet_synsets():
        (tmp_path / "imagenet" / "val" / synset).mkdir(parents=True)
        Image.fromarray(pixels).save(tmp_path / "imagenet" / "val" / synset / "a.png")
    capsys.readouterr()
    assert alexnet.main(["eval", "--checkpoint", str(checkpoint), "--data", str(tmp_path / "imagenet"), "--quiet",
                         "--batch-size", "250"]) == 0
    assert "1000 images (centre crop)" in capsys.readouterr().out
    assert alexnet.main(["filters", "--checkpoint", str(checkpoint), "--out", str(tmp_path / "filters.png")]) == 0
    image = tmp_path / "imagenet" / "val" / "n01440764" / "a.png"
    assert alexnet.main(["features", str(image), "--checkpoint", str(checkpoint), "--out-dir",
                         str(tmp_path / "maps")]) == 0
    assert len(list((tmp_path / "maps").glob("*.png"))) == 5


# -- ONNX ---# -- ONNX --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def onnxruntime():
    pytest.importorskip("onnx")
    return pytest.importorskip("onnxruntime")


def run_onnx(onnxruntime, path, x):
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {"images": x})[0]


@pytest.mark.parametrize("preset", sorted(alexnet.PRESETS))
def test_export_onnx_gives_tinynets_logits_for_every_preset(onnxruntime, preset, tmp_path):
    channels = 1 if preset == "small" else 3
    model = alexnet.AlexNet(preset, num_classes=10, in_channels=channels).eval()
    for layer in [*model.features, *model.classifier]:  # He weights: the paper's N(0, 0.01) leaves the
        if isinstance(layer, (nn.Conv2d, nn.Linear)):  # logits nearly equal for every input
            nn.init.kaiming_normal_(layer.weight)
    side = model.preset.input_size
    path = tmp_path / f"{preset}.onnx"
    tinynet.onnx_export.export_onnx([*model.features, nn.Flatten(), *model.classifier], (channels, side, side), path)
    for batch in (1, 3):  # the batch dimension is symbolic
        x = np.random.default_rng(batch).standard_normal((batch, channels, side, side)).astype(np.float32)
        with tinynet.no_grad():
            expected = model(x).data
        got = run_onnx(onnxruntime, path, x)
        np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4 * np.abs(expected).max())


def test_onnx_keeps_uneven_padding_and_strides(onnxruntime, tmp_path):
    layers = [nn.Conv2d(2, 4, (3, 5), stride=(2, 1), padding=(1, 2)), nn.ReLU(),
              nn.MaxPool2d((3, 2), stride=(1, 2), padding=(1, 0)), nn.Flatten(), nn.Linear(4 * 5 * 5, 3)]
    x = np.random.default_rng(0).standard_normal((2, 2, 9, 10)).astype(np.float32)
    tinynet.onnx_export.export_onnx(layers, (2, 9, 10), tmp_path / "uneven.onnx")
    with tinynet.no_grad():
        expected = tinynet.Tensor(x)
        for layer in layers:
            expected = layer(expected)
    np.testing.assert_allclose(run_onnx(onnxruntime, tmp_path / "uneven.onnx", x), expected.data, rtol=1e-4,
                               atol=1e-5)


def test_onnx_export_refuses_what_it_cannot_write(tmp_path):
    pytest.importorskip("onnx")
    with pytest.raises(ValueError, match="odd size"):
        tinynet.onnx_export.export_onnx([nn.LocalResponseNorm(size=4)], (3, 8, 8), tmp_path / "lrn.onnx")
    with pytest.raises(ValueError, match="no layer that computes"):
        tinynet.onnx_export.export_onnx([nn.Dropout()], (3, 8, 8), tmp_path / "nothing.onnx")


@pytest.mark.parametrize("alpha_over_n", [False, True], ids=["paper-alpha", "pytorch-alpha"])
def test_onnx_lrn_keeps_the_alpha_convention(onnxruntime, tmp_path, alpha_over_n):
    """Large activations, so that the normalisation changes the output by far more than the tolerance."""
    layers = [nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(),
              nn.LocalResponseNorm(size=5, alpha=1e-2, beta=0.75, k=2.0, alpha_over_n=alpha_over_n)]
    x = 30 * np.random.default_rng(0).standard_normal((2, 3, 8, 8)).astype(np.float32)
    tinynet.onnx_export.export_onnx(layers, (3, 8, 8), tmp_path / "lrn.onnx")
    with tinynet.no_grad():
        hidden = layers[1](layers[0](x))
        expected = layers[2](hidden).data
    assert np.abs(expected - hidden.data / 2.0**0.75).max() > 0.1 * np.abs(expected).max()  # LRN matters here
    np.testing.assert_allclose(run_onnx(onnxruntime, tmp_path / "lrn.onnx", x), expected, rtol=1e-4, atol=1e-5)


def test_export_onnx_from_the_command_line(onnxruntime, image_folder, tmp_path, capsys):
    run_dir = tmp_path / "run"
    assert alexnet.main(["train", "--data", str(image_folder), "--preset", "small", "--epochs", "1", "--batch-size",
                         "4", "--quiet", "--run-dir", str(run_dir)]) == 0
    out = tmp_path / "exported" / "small.onnx"
    assert alexnet.main(["export-onnx", "--checkpoint", str(run_dir / "checkpoint.npz"), "--out", str(out)]) == 0
    assert "opens in Netron" in capsys.readouterr().out
    image = next((image_folder / "val" / "class0").iterdir())
    x = alexnet.load_images([image], load_checkpoint(run_dir / "checkpoint.npz")[1]["config"]).data
    model, _ = alexnet.load_model(alexnet.parse_args(["eval", "--checkpoint", str(run_dir / "checkpoint.npz")]))
    with tinynet.no_grad():
        expected = model(x).data
    np.testing.assert_allclose(run_onnx(onnxruntime, out, x), expected, rtol=1e-4, atol=1e-5)


def test_normalisation_constants_match_torchvision():
    assert transforms.IMAGENET_MEAN == (0.485, 0.456, 0.406) and transforms.IMAGENET_STD == (0.229, 0.224, 0.225)
