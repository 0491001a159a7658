"""Data code as PyTorch users write it: torchvision's FashionMNIST, ToTensor and Normalize,
one-argument transforms, Tensor batches from the DataLoader, TensorDataset of Tensors, and
Subset / random_split."""

import gzip

import numpy as np
import pytest
from PIL import Image

import tinynet
from tests.batches import assert_same_batches
from tinynet.data import (
    FASHION_MNIST_CLASSES,
    DataLoader,
    FashionMNIST,
    Subset,
    TensorDataset,
    random_split,
    write_idx,
)
from tinynet.data import transforms as T

RTOL, ATOL = 1e-4, 1e-5


def hwc_images(count=6, height=5, width=4, channels=3, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (count, height, width, channels), dtype=np.uint8)


def as_arrays(batches):
    """Tensor batches as (images, labels) arrays, for assert_same_batches."""
    return [(images.numpy(), labels.numpy()) for images, labels in batches]


# ---------------------------------------------------------------- ToTensor and Normalize


def test_to_tensor_gives_float_chw_on_the_unit_scale_as_torchvision():
    torch = pytest.importorskip("torch")
    image = hwc_images(1)[0]
    for given in (image, Image.fromarray(image)):
        out = T.ToTensor()(given)
        assert isinstance(out, tinynet.Tensor) and out.dtype == np.float32 and out.shape == (3, 5, 4)
        assert out.data.flags.c_contiguous
        expected = torch.from_numpy(image).permute(2, 0, 1).float().div(255)  # torchvision's to_tensor
        np.testing.assert_allclose(out.numpy(), expected.numpy(), rtol=RTOL, atol=ATOL)
    grey = T.ToTensor()(Image.fromarray(image[:, :, 0]))
    assert grey.shape == (1, 5, 4)
    np.testing.assert_allclose(grey.numpy()[0], image[:, :, 0] / 255, rtol=RTOL, atol=ATOL)


def test_to_tensor_scales_only_bytes_as_torchvision():
    values = np.full((2, 2, 1), 3.5, np.float64)
    out = T.ToTensor()(values)
    assert out.dtype == np.float32 and out.shape == (1, 2, 2)
    np.testing.assert_array_equal(out.numpy(), 3.5)


def test_normalize_of_one_tensor_image_is_torchvisions_formula():
    torch = pytest.importorskip("torch")
    image = T.ToTensor()(hwc_images(1)[0])
    mean, std = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
    out = T.Normalize(mean, std)(image)
    assert isinstance(out, tinynet.Tensor) and out.dtype == np.float32 and out.shape == (3, 5, 4)
    x = torch.from_numpy(image.numpy())
    expected = (x - torch.tensor(mean)[:, None, None]) / torch.tensor(std)[:, None, None]
    np.testing.assert_allclose(out.numpy(), expected.numpy(), rtol=RTOL, atol=ATOL)


def test_normalize_keeps_its_pixel_scale_for_arrays():
    """An array is tinynet's uint8 batch, on the 0..255 scale; a Tensor is ToTensor's 0..1."""
    pixels = np.full((2, 1, 2, 2), 255, np.uint8)
    np.testing.assert_allclose(T.Normalize((0.5,), (0.5,))(pixels), 1.0)
    one_image = np.full((1, 2, 2), 255, np.uint8)
    np.testing.assert_allclose(T.Normalize((0.5,), (0.5,))(one_image), 1.0)
    np.testing.assert_allclose(T.Normalize((0.5,), (0.5,))(tinynet.tensor(np.ones((1, 2, 2), np.float32))).numpy(), 1.0)


def test_normalize_of_a_tensor_passes_gradients_back():
    x = tinynet.tensor(np.ones((2, 3, 3), np.float32), requires_grad=True)
    T.Normalize((0.5, 0.5), (0.5, 0.25))(x).sum().backward()
    np.testing.assert_allclose(x.grad[0], 2.0)
    np.testing.assert_allclose(x.grad[1], 4.0)


def test_normalize_names_a_channel_mismatch():
    with pytest.raises(ValueError, match="3 channel statistics.*1 channels"):
        T.Normalize((0.5,) * 3, (0.5,) * 3)(T.ToTensor()(np.zeros((4, 4), np.uint8)))
    with pytest.raises(TypeError, match="must hold floats.*uint8.*ToTensor"):
        T.Normalize((0.5,), (0.5,))(tinynet.tensor(np.zeros((1, 4, 4), np.uint8)))


def test_torchvision_pipeline_on_a_pil_image():
    image = Image.fromarray(np.array([[0, 255], [51, 102]], np.uint8))
    out = T.Compose([T.ToTensor(), T.Normalize((0.5,), (0.5,))])(image)
    np.testing.assert_allclose(out.numpy(), [[[-1.0, 1.0], [-0.6, -0.2]]], rtol=RTOL, atol=ATOL)


def test_a_pixel_transform_after_to_tensor_says_to_move_it_before():
    pipeline = T.Compose([T.ToTensor(), T.RandomHorizontalFlip()])
    with pytest.raises(TypeError, match="before ToTensor"):
        pipeline(hwc_images(1)[0], np.random.default_rng(0))


# ---------------------------------------------------------------- which transforms get rng


class HalveTorchvisionStyle:
    """A torchvision-style transform: __call__ takes the image alone."""

    def __call__(self, img):
        return img // 2


def add_noise(image, rng):
    return image + rng.integers(0, 1000, image.shape)


def test_only_transforms_with_an_rng_parameter_get_the_generator():
    image = np.full((2, 2, 1), 10, np.int64)
    rng = np.random.default_rng(4)
    assert T.apply_transform(lambda x: x + 1, image, rng)[0, 0, 0] == 11
    assert T.apply_transform(HalveTorchvisionStyle(), image, rng)[0, 0, 0] == 5
    assert T.apply_transform(np.negative, image, rng)[0, 0, 0] == -10  # a builtin: no signature to read
    assert T.apply_transform(T.Lambda(lambda x: x * 3), image, rng)[0, 0, 0] == 30
    noisy = T.apply_transform(add_noise, image, np.random.default_rng(1))
    np.testing.assert_array_equal(noisy, add_noise(image, np.random.default_rng(1)))
    np.testing.assert_array_equal(T.Lambda(add_noise)(image, np.random.default_rng(1)), noisy)
    with pytest.raises(TypeError, match="Lambda needs a function"):
        T.Lambda(3)


def test_compose_mixes_one_argument_callables_with_random_transforms_reproducibly():
    pipeline = T.Compose([HalveTorchvisionStyle(), lambda x: x.astype(np.int64), add_noise, T.Lambda(np.abs)])
    images = hwc_images(5)
    dataset = TensorDataset(images, np.arange(5), transform=pipeline)
    first = [dataset[i][0] for i in range(5)]
    np.testing.assert_array_equal(first[2], dataset[2][0])  # the same generator for the same sample
    np.testing.assert_array_equal(first[0] - images[0] // 2, add_noise(np.zeros_like(first[0]),
                                                                      np.random.default_rng([0, 0, 0])))
    loaded, _ = next(iter(DataLoader(dataset, batch_size=5)))
    np.testing.assert_array_equal(loaded, np.stack(first))


def test_target_transform_changes_the_label():
    dataset = TensorDataset(hwc_images(4), np.arange(4))
    dataset.target_transform = lambda label: label * 10
    assert dataset[3][1] == 30
    _, labels = next(iter(DataLoader(dataset, batch_size=4)))
    assert labels.tolist() == [0, 10, 20, 30] and labels.dtype == np.int64


# ---------------------------------------------------------------- Tensor batches


def tensor_pipeline(mean=(0.5, 0.5, 0.5)):
    return T.Compose([T.RandomCrop(4), T.ToTensor(), T.Normalize(mean, (0.5, 0.5, 0.5))])


def tensor_batches(num_workers, worker_type="thread"):
    dataset = TensorDataset(hwc_images(11, 6, 6), np.arange(11), tensor_pipeline())
    with DataLoader(dataset, batch_size=4, shuffle=True, num_workers=num_workers, worker_type=worker_type) as loader:
        return [batch for _ in range(2) for batch in loader]


def test_to_tensor_samples_give_tensor_batches_with_int64_labels():
    batches = tensor_batches(0)
    assert [len(labels) for _, labels in batches] == [4, 4, 3] * 2
    images, labels = batches[0]
    assert isinstance(images, tinynet.Tensor) and images.shape == (4, 3, 4, 4) and images.dtype == np.float32
    assert isinstance(labels, tinynet.Tensor) and labels.dtype == np.int64
    assert -1 <= images.numpy().min() and images.numpy().max() <= 1


def test_tensor_batches_are_the_same_from_threads_and_processes():
    serial = as_arrays(tensor_batches(0))
    assert_same_batches(as_arrays(tensor_batches(2)), serial)
    processes = tensor_batches(2, "process")
    assert all(isinstance(images, tinynet.Tensor) and isinstance(labels, tinynet.Tensor)
               for images, labels in processes)
    assert_same_batches(as_arrays(processes), serial)


def test_array_samples_still_give_array_batches():
    pipeline = T.Compose([T.RandomCrop(4), T.ToCHW()])
    images, labels = next(iter(DataLoader(TensorDataset(hwc_images(5, 6, 6), np.arange(5), pipeline), batch_size=5)))
    assert type(images) is np.ndarray and images.dtype == np.uint8 and images.shape == (5, 3, 4, 4)
    assert type(labels) is np.ndarray and labels.dtype == np.int64


def test_a_training_step_on_tensor_batches():
    dataset = TensorDataset(hwc_images(8, 6, 6), np.arange(8) % 3, tensor_pipeline())
    model = tinynet.nn.Sequential(tinynet.nn.Flatten(), tinynet.nn.Linear(48, 3))
    device = tinynet.device("cuda" if tinynet.cuda.is_available() else "cpu")
    model.to(device)
    for images, labels in DataLoader(dataset, batch_size=4, shuffle=True):
        loss = tinynet.functional.cross_entropy(model(images.to(device)), labels.to(device))
        loss.backward()
        assert np.isfinite(loss.item()) and model[1].weight.grad.shape == (3, 48)


# ---------------------------------------------------------------- TensorDataset as torch spells it


def test_tensor_dataset_of_tensors_gives_tensor_pairs_as_torch():
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(0).standard_normal((10, 3)).astype(np.float32)
    y = np.arange(10) % 4
    dataset = TensorDataset(tinynet.tensor(x), tinynet.tensor(y))
    features, label = dataset[7]
    assert isinstance(features, tinynet.Tensor) and isinstance(label, tinynet.Tensor)
    np.testing.assert_array_equal(features.numpy(), x[7])
    assert label.item() == 3 and label.dtype == np.int64 and label.shape == ()
    ours = list(DataLoader(dataset, batch_size=4))
    theirs = list(torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.from_numpy(x), torch.from_numpy(y)),
                                              batch_size=4))
    assert len(ours) == len(theirs) == 3
    for (images, labels), (want_images, want_labels) in zip(ours, theirs):
        assert isinstance(images, tinynet.Tensor) and labels.dtype == np.int64
        np.testing.assert_array_equal(images.numpy(), want_images.numpy())
        np.testing.assert_array_equal(labels.numpy(), want_labels.numpy())


def test_tensor_dataset_keeps_float_targets_and_refuses_a_third_tensor():
    x, y = tinynet.tensor(np.ones((4, 2), np.float32)), tinynet.tensor([[0.5], [1.5], [2.5], [3.5]])
    _, targets = next(iter(DataLoader(TensorDataset(x, y), batch_size=4)))
    assert targets.dtype == np.float32 and targets.shape == (4, 1)
    np.testing.assert_array_equal(targets.numpy()[:, 0], [0.5, 1.5, 2.5, 3.5])
    assert TensorDataset(np.zeros((2, 1)), np.array([0.25, 0.75]))[1][1] == 0.75  # not truncated to an int
    with pytest.raises(TypeError, match="must be callable.*two tensors"):
        TensorDataset(x, y, y)
    with pytest.raises(ValueError, match="one label per image"):
        TensorDataset(x, y[:3])


# ---------------------------------------------------------------- Subset and random_split


def test_subset_takes_the_samples_it_names_with_the_datasets_transform():
    dataset = TensorDataset(hwc_images(6), np.arange(6), transform=lambda image: image[:2])
    part = Subset(dataset, [4, 1])
    assert len(part) == 2 and part[0][1] == 4 and part[1][1] == 1
    assert part[0][0].shape == (2, 4, 3)
    assert next(iter(DataLoader(part, batch_size=2)))[1].tolist() == [4, 1]


def test_random_split_partitions_and_repeats_with_the_seed():
    dataset = TensorDataset(hwc_images(10), np.arange(10))
    tinynet.manual_seed(3)
    train, val = random_split(dataset, [7, 3])
    assert (len(train), len(val)) == (7, 3)
    assert sorted(train.indices + val.indices) == list(range(10)) and train.indices != list(range(7))
    tinynet.manual_seed(3)
    assert random_split(dataset, [7, 3])[0].indices == train.indices
    assert random_split(dataset, [5, 5], generator=np.random.default_rng(1))[0].indices == \
        np.random.default_rng(1).permutation(10)[:5].tolist()
    assert [len(part) for part in random_split(dataset, [0.34, 0.33, 0.33])] == [4, 3, 3]  # as torch deals them
    with pytest.raises(ValueError, match="sum to the dataset's 10 samples"):
        random_split(dataset, [7, 4])
    with pytest.raises(TypeError, match="numpy.random.Generator"):
        random_split(dataset, [5, 5], generator=42)


# ---------------------------------------------------------------- FashionMNIST


def test_fashion_mnist_without_root_is_the_shipped_subset_as_torchvision_gives_it():
    train, test = FashionMNIST(), FashionMNIST(train=False)
    assert (len(train), len(test)) == (20000, 2000)
    image, label = train[0]
    assert isinstance(image, Image.Image) and image.mode == "L" and image.size == (28, 28)
    assert isinstance(label, int) and train.classes == list(FASHION_MNIST_CLASSES)
    assert train.class_to_idx["Ankle boot"] == 9
    assert train.data.shape == (20000, 28, 28) and train.targets.dtype == np.int64
    np.testing.assert_array_equal(np.asarray(image), train.data[0])


def test_fashion_mnist_with_to_tensor_loads_as_in_pytorch():
    dataset = FashionMNIST(train=False, transform=T.Compose([T.ToTensor(), T.Normalize((0.5,), (0.5,))]),
                           target_transform=lambda label: label + 100)
    image, label = dataset[0]
    assert image.shape == (1, 28, 28) and label >= 100
    images, labels = next(iter(DataLoader(dataset, batch_size=64, shuffle=True)))
    assert images.shape == (64, 1, 28, 28) and images.dtype == np.float32 and labels.dtype == np.int64
    assert images.numpy().min() >= -1 and images.numpy().max() <= 1 and labels.numpy().min() >= 100


def write_fashion_files(folder, count=12, gz=False):
    """Fake IDX files with torchvision's names, images filled with their label."""
    folder.mkdir(parents=True, exist_ok=True)
    for prefix, offset in (("train", 0), ("t10k", 5)):
        labels = (np.arange(count) + offset) % 10
        images = np.repeat(labels.astype(np.uint8), 28 * 28).reshape(count, 28, 28)
        write_idx(folder / f"{prefix}-images-idx3-ubyte{'.gz' if gz else ''}", images)
        write_idx(folder / f"{prefix}-labels-idx1-ubyte{'.gz' if gz else ''}", labels.astype(np.uint8))


@pytest.mark.parametrize("layout", ["root", "torchvision raw folder", "gzipped"])
def test_fashion_mnist_reads_idx_files_under_root(tmp_path, layout):
    folder = tmp_path / "FashionMNIST" / "raw" if layout == "torchvision raw folder" else tmp_path
    write_fashion_files(folder, gz=layout == "gzipped")
    train, test = FashionMNIST(tmp_path), FashionMNIST(str(tmp_path), train=False, download=True)
    assert len(train) == len(test) == 12
    assert train[3][1] == 3 and test[3][1] == 8 and np.asarray(test[3][0]).max() == 8
    assert train.targets.dtype == np.int64


def test_fashion_mnist_reads_a_gzipped_file_whatever_its_name(tmp_path):
    write_fashion_files(tmp_path)
    path = tmp_path / "train-images-idx3-ubyte"
    path.write_bytes(gzip.compress(path.read_bytes()))
    assert len(FashionMNIST(tmp_path)) == 12


def test_fashion_mnist_says_where_to_put_missing_files(tmp_path):
    write_fashion_files(tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte").unlink()
    assert len(FashionMNIST(tmp_path)) == 12  # the training files are all there
    for download in (False, True):
        with pytest.raises(FileNotFoundError) as caught:
            FashionMNIST(tmp_path, train=False, download=download)
        message = str(caught.value)
        assert "t10k-labels-idx1-ubyte" in message and "t10k-images" not in message
        assert str(tmp_path / "FashionMNIST" / "raw") in message and "root=None" in message
        assert ("downloads nothing" in message) == download
    with pytest.raises(ValueError, match="downloads nothing.*root=None"):
        FashionMNIST(download=True)


def test_fashion_mnist_refuses_files_of_another_shape(tmp_path):
    write_fashion_files(tmp_path)
    write_idx(tmp_path / "train-labels-idx1-ubyte", np.zeros(11, np.uint8))
    with pytest.raises(ValueError, match="not Fashion-MNIST.*12, 28, 28.*11"):
        FashionMNIST(tmp_path)


def test_fashion_mnist_in_worker_processes_gives_the_batches_of_none(tmp_path):
    write_fashion_files(tmp_path / "FashionMNIST" / "raw", count=40)
    pipeline = T.Compose([T.RandomCrop(24), T.ToTensor(), T.Normalize((0.5,), (0.5,))])
    serial = list(DataLoader(FashionMNIST(tmp_path, transform=pipeline), batch_size=8, shuffle=True))
    with DataLoader(FashionMNIST(tmp_path, transform=pipeline), batch_size=8, shuffle=True, num_workers=2,
                    worker_type="process") as loader:
        assert_same_batches(as_arrays(loader), as_arrays(serial))
    assert serial[0][0].shape == (8, 1, 24, 24)
