"""Tests for tinynet.data: file formats, datasets, transforms, the DataLoader, the shipped set."""

import gc
import threading

import numpy as np
import pytest
from PIL import Image

from tests.batches import assert_same_batches
from tinynet.data import (
    FASHION_MNIST_CLASSES,
    FASHION_MNIST_MEAN,
    FASHION_MNIST_STD,
    BadImageError,
    DataLoader,
    Dataset,
    ImageFolder,
    TensorDataset,
    load_cifar10_binary,
    load_fashion_mnist,
    read_cifar10_batch,
    read_idx,
    read_rgb,
    write_idx,
)
from tinynet.data import transforms as T


def random_images(shape, seed=0):
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


# ---------------------------------------------------------------- IDX and CIFAR-10 files


@pytest.mark.parametrize("name", ["images.idx", "images.idx.gz"])
@pytest.mark.parametrize("dtype", [np.uint8, np.int16, np.int32, np.float32, np.float64])
def test_idx_round_trip(tmp_path, name, dtype):
    array = (np.arange(2 * 3 * 5) - 7).reshape(2, 3, 5).astype(dtype)
    if dtype == np.uint8:
        array = random_images((2, 3, 5))
    write_idx(tmp_path / name, array)
    back = read_idx(tmp_path / name)
    assert back.dtype == array.dtype and back.dtype.isnative
    np.testing.assert_array_equal(back, array)
    back[0, 0, 0] = 1  # a writable array, not a view of the file's bytes


def test_idx_is_big_endian_with_the_documented_header(tmp_path):
    write_idx(tmp_path / "labels.idx", np.array([1, 2, 258], np.int32))
    data = (tmp_path / "labels.idx").read_bytes()
    assert data == bytes([0, 0, 0x0C, 1, 0, 0, 0, 3]) + bytes([0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 1, 2])


def damage_magic(data):
    return b"\x01\x02" + data[2:]


def damage_size(data):
    return data[:-3]


@pytest.mark.parametrize("name, damage, message", [
    ("magic.idx", damage_magic, r"magic\.idx: not an IDX file: the magic number is 01020802"),
    ("short.idx", damage_size, r"short\.idx: IDX header announces shape \(4, 6\).*file holds 33 bytes"),
    ("broken.idx.gz", damage_size, r"broken\.idx\.gz: damaged gzip data"),
])
def test_idx_damage_is_reported_with_the_file_name(tmp_path, name, damage, message):
    write_idx(tmp_path / name, random_images((4, 6)))
    (tmp_path / name).write_bytes(damage((tmp_path / name).read_bytes()))
    with pytest.raises(ValueError, match=message):
        read_idx(tmp_path / name)


def write_cifar(path, images, labels):
    records = np.concatenate([labels[:, None].astype(np.uint8), images.reshape(len(images), -1)], 1)
    records.tofile(path)


def test_cifar10_binary_reading(tmp_path):
    images, labels = random_images((12, 3, 32, 32)), np.arange(12) % 10
    for i in range(5):
        write_cifar(tmp_path / f"data_batch_{i + 1}.bin", images[2 * i:2 * i + 2], labels[2 * i:2 * i + 2])
    write_cifar(tmp_path / "test_batch.bin", images[10:], labels[10:])

    train_images, train_labels = load_cifar10_binary(tmp_path)
    assert train_images.dtype == np.uint8 and train_labels.dtype == np.int64
    np.testing.assert_array_equal(train_images, images[:10])
    np.testing.assert_array_equal(train_labels, labels[:10])
    test_images, test_labels = load_cifar10_binary(tmp_path, train=False)
    np.testing.assert_array_equal(test_images, images[10:])
    np.testing.assert_array_equal(test_labels, labels[10:])


def test_cifar10_errors_name_the_problem(tmp_path):
    (tmp_path / "odd.bin").write_bytes(bytes(3073 + 5))
    with pytest.raises(ValueError, match=r"odd\.bin: 3078 bytes is not a whole number"):
        read_cifar10_batch(tmp_path / "odd.bin")
    write_cifar(tmp_path / "c100.bin", random_images((1, 3, 32, 32)), np.array([42]))
    with pytest.raises(ValueError, match="label 42 is not a CIFAR-10 class"):
        read_cifar10_batch(tmp_path / "c100.bin")
    with pytest.raises(FileNotFoundError, match="data_batch_1.bin"):
        load_cifar10_binary(tmp_path)


# ---------------------------------------------------------------- ImageFolder


def save(path, array, format=None):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path, format)


@pytest.fixture
def image_root(tmp_path):
    root = tmp_path / "images"
    save(root / "cow" / "b.png", random_images((20, 30, 3), 1))
    save(root / "cow" / "a.JPG", random_images((24, 24, 3), 2), "JPEG")
    save(root / "ant" / "grey.png", random_images((16, 16), 3))
    save(root / "ant" / "deeper" / "c.jpeg", random_images((18, 22, 3), 4), "JPEG")
    save(root / "bee" / "d.bmp", random_images((10, 12, 3), 5))
    (root / "bee" / "notes.txt").write_text("not an image")
    (root / "bee" / "._d.bmp").write_bytes(b"macOS resource fork")
    return root


def test_image_folder_classes_and_samples(image_root):
    dataset = ImageFolder(image_root)
    assert dataset.classes == ["ant", "bee", "cow"]
    assert dataset.class_to_idx == {"ant": 0, "bee": 1, "cow": 2}
    names = [path.split("images/")[1] for path, _ in dataset.samples]
    assert names == ["ant/deeper/c.jpeg", "ant/grey.png", "bee/d.bmp", "cow/a.JPG", "cow/b.png"]
    assert dataset.targets == [0, 0, 1, 2, 2]
    image, label = dataset[1]
    assert isinstance(image, Image.Image) and image.mode == "RGB" and image.size == (16, 16)
    assert label == 0
    np.testing.assert_array_equal(np.asarray(dataset[4][0]), random_images((20, 30, 3), 1))


def test_image_folder_corrupt_file_raises_with_its_name(image_root):
    good = (image_root / "cow" / "b.png").read_bytes()
    (image_root / "cow" / "b.png").write_bytes(good[: len(good) // 2])
    dataset = ImageFolder(image_root, transform=T.Compose([T.Resize((8, 8)), T.ToCHW()]))
    with pytest.raises(BadImageError, match=r"cannot read image .*cow/b\.png: OSError"):
        dataset[4]
    with pytest.raises(BadImageError, match=r"cow/b\.png"):
        list(DataLoader(dataset, batch_size=2, num_workers=2))


@pytest.mark.parametrize("worker_type", ["thread", "process"])
def test_image_folder_skip_bad_counts_and_goes_on(image_root, worker_type):
    (image_root / "ant" / "grey.png").write_bytes(b"\x89PNG garbage")
    dataset = ImageFolder(image_root, transform=T.Compose([T.Resize((8, 8)), T.ToCHW()]),
                          skip_bad=True)
    loader = DataLoader(dataset, batch_size=2, num_workers=2, worker_type=worker_type)
    for _ in range(2):  # the same file is skipped, and listed once, every epoch
        batches = list(loader)
        assert [len(labels) for _, labels in batches] == [1, 2, 1]
        assert np.concatenate([labels for _, labels in batches]).tolist() == [0, 1, 2, 2]
        assert batches[0][0].shape == (1, 3, 8, 8)
        assert dataset.skipped == [str(image_root / "ant" / "grey.png")]
    loader.close()


def test_image_folder_layout_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        ImageFolder(tmp_path / "missing")
    with pytest.raises(ValueError, match=r"has no class subfolders; expected one subfolder per class"):
        ImageFolder(tmp_path)
    save(tmp_path / "flat.png", random_images((4, 4, 3)))
    with pytest.raises(ValueError, match="holds images but no class subfolders"):
        ImageFolder(tmp_path)
    save(tmp_path / "full" / "x.png", random_images((4, 4, 3)))
    (tmp_path / "hollow").mkdir()
    with pytest.raises(ValueError, match="no images in the class folders hollow"):
        ImageFolder(tmp_path)


# ---------------------------------------------------------------- per-sample transforms


def positions(height, width):
    """An image whose pixel (y, x) holds (y, x, 7), so a crop shows where it came from."""
    y, x = np.mgrid[:height, :width]
    return np.stack([y, x, np.full_like(y, 7)], axis=-1).astype(np.uint8)


def test_horizontal_flip_really_flips():
    image, rng = positions(4, 6), np.random.default_rng(0)
    flipped = T.RandomHorizontalFlip(p=1.0)(image, rng)
    assert flipped[:, :, 1].tolist() == [[5, 4, 3, 2, 1, 0]] * 4
    assert T.RandomHorizontalFlip(p=0.0)(image, rng) is image
    flips = [T.RandomHorizontalFlip()(image, np.random.default_rng(s))[0, 0, 1] == 5 for s in range(400)]
    assert 150 < sum(flips) < 250


def test_center_crop_is_centered():
    crop = T.CenterCrop(4)(positions(8, 10), None)
    assert crop.shape == (4, 4, 3)
    assert (crop[0, 0, 0], crop[0, 0, 1]) == (2, 3)
    assert T.CenterCrop((2, 3))(positions(7, 7))[0, 0, :2].tolist() == [2, 2]


def test_random_crop_stays_inside_and_reaches_every_offset():
    image = positions(6, 5)
    corners = set()
    for seed in range(200):
        crop = T.RandomCrop((4, 3))(image, np.random.default_rng(seed))
        top, left = int(crop[0, 0, 0]), int(crop[0, 0, 1])
        np.testing.assert_array_equal(crop, image[top:top + 4, left:left + 3])
        corners.add((top, left))
    assert corners == {(t, c) for t in range(3) for c in range(3)}
    with pytest.raises(ValueError, match="RandomCrop: the image is 6x5, smaller than the 8x8 crop"):
        T.RandomCrop(8)(image, np.random.default_rng(0))


def test_resize_shorter_side_and_exact_size():
    landscape, portrait = np.full((40, 60, 3), 9, np.uint8), np.full((60, 40, 1), 9, np.uint8)
    assert T.Resize(20)(landscape).shape == (20, 30, 3)
    assert T.Resize(20)(portrait).shape == (30, 20, 1)
    out = T.Resize((7, 5))(Image.fromarray(landscape))
    assert out.shape == (7, 5, 3) and out.dtype == np.uint8 and (out == 9).all()


def test_ten_crop_is_five_crops_and_their_mirrors():
    image = positions(9, 8)
    crops = T.TenCrop(5)(image)
    assert crops.shape == (10, 5, 5, 3) and crops.dtype == np.uint8
    tops_lefts = [tuple(crop[0, 0, :2]) for crop in crops[:5]]
    assert tops_lefts == [(0, 0), (0, 3), (4, 0), (4, 3), (2, 2)]
    for k in range(5):
        np.testing.assert_array_equal(crops[5 + k], crops[k][:, ::-1])
    chw = T.ToCHW()(crops)
    assert chw.shape == (10, 3, 5, 5)
    np.testing.assert_array_equal(chw[3, 1], crops[3, :, :, 1])


def test_compose_passes_one_generator_through():
    pipeline = T.Compose([T.RandomCrop(4), T.RandomHorizontalFlip(), T.ToCHW()])
    image = random_images((8, 8, 3))
    rng = np.random.default_rng(5)
    expected = T.ToCHW()(T.RandomHorizontalFlip()(T.RandomCrop(4)(image, rng), rng))
    np.testing.assert_array_equal(pipeline(image, np.random.default_rng(5)), expected)
    assert pipeline(image, np.random.default_rng(5)).shape == (3, 4, 4)


THREE_STEP = T.Compose([T.Resize(256), T.CenterCrop(256), T.RandomCrop(227)])


@pytest.mark.parametrize("shape", [(375, 500, 3), (500, 375, 3), (300, 300, 3), (120, 150, 3), (257, 700, 3)])
def test_rescaled_random_crop_is_the_three_step_crop_in_one_resampling(shape):
    # Noise: a crop misplaced by one pixel, or scaled differently, would differ by tens of levels.
    image = random_images(shape, seed=shape[0])
    tops = set()
    for seed in range(8):
        fused = T.RescaledRandomCrop(256, 227)(Image.fromarray(image), np.random.default_rng(seed))
        three_step = THREE_STEP(image, np.random.default_rng(seed))
        assert fused.shape == three_step.shape == (227, 227, 3) and fused.dtype == np.uint8
        difference = np.abs(fused.astype(int) - three_step)
        assert difference.max() <= 1 and difference.mean() < 0.01  # resampled, not bit for bit
        tops.add(T.RescaledRandomCrop(256, 227).offsets(np.random.default_rng(seed)))
    assert len(tops) == 8  # each seed its own crop


def test_rescaled_crops_of_a_rescaled_image_are_exact():
    image = random_images((256, 300, 3))
    for seed in range(5):
        np.testing.assert_array_equal(T.RescaledRandomCrop(256, 227)(image, np.random.default_rng(seed)),
                                      THREE_STEP(image, np.random.default_rng(seed)))
    np.testing.assert_array_equal(T.RescaledCenterCrop(256, 227)(image),
                                  T.Compose([T.Resize(256), T.CenterCrop(256), T.CenterCrop(227)])(image))


def test_rescaled_center_crop_is_the_three_step_centre():
    image = random_images((375, 500, 3))
    three_step = T.Compose([T.Resize(32), T.CenterCrop(32), T.CenterCrop((28, 20))])(image)
    fused = T.RescaledCenterCrop(32, (28, 20))(image)
    assert fused.shape == (28, 20, 3)
    assert np.abs(fused.astype(int) - three_step).max() <= 1


def test_rescaled_crop_refuses_a_crop_larger_than_the_square():
    with pytest.raises(ValueError, match=r"RescaledRandomCrop: need a crop \(300, 300\) that fits in the 256x256"):
        T.RescaledRandomCrop(256, 300)
    with pytest.raises(ValueError, match="RescaledCenterCrop"):
        T.RescaledCenterCrop(0, 1)


def test_only_the_training_crop_says_how_large_an_input_it_needs():
    assert T.Compose([T.RescaledRandomCrop(256, 227), T.ToCHW()]).min_input_side == 256
    assert T.Compose([T.RandomCrop(4)]).min_input_side is None and T.Compose([]).min_input_side is None
    # What validation and prediction use decodes at full size, as torchvision does.
    assert T.Compose([T.Resize(256), T.CenterCrop(227)]).min_input_side is None
    assert T.RescaledCenterCrop(256, 227).min_input_side is None


def test_draft_decoding_never_goes_below_the_side_asked_for(tmp_path):
    save(tmp_path / "big.jpg", random_images((520, 600, 3)), "JPEG")
    save(tmp_path / "grey.jpg", random_images((1100, 1300)), "JPEG")
    save(tmp_path / "big.png", random_images((520, 600, 3)))
    assert read_rgb(tmp_path / "big.jpg", 256).size == (300, 260)  # 1/2: the shorter side is 260
    assert read_rgb(tmp_path / "big.jpg", 261).size == (600, 520)  # 1/2 would give 260 < 261
    grey = read_rgb(tmp_path / "grey.jpg", 256)
    assert grey.size == (325, 275) and grey.mode == "RGB"  # 1/4
    assert read_rgb(tmp_path / "big.png", 256).size == (600, 520)  # not a JPEG: full size
    assert read_rgb(tmp_path / "big.jpg").size == (600, 520)
    with pytest.raises(ValueError, match="min_side must be a positive whole number"):
        read_rgb(tmp_path / "big.jpg", 0)


class SizeOf:
    """A transform that needs a shorter side of `side` and returns the size it was given."""

    min_input_side = 256

    def __call__(self, image, rng):
        return np.array(image.size)


def test_image_folder_decodes_large_jpegs_only_as_large_as_the_transform_needs(tmp_path):
    save(tmp_path / "a" / "big.jpg", random_images((1040, 1200, 3)), "JPEG")
    save(tmp_path / "b" / "small.jpg", random_images((300, 400, 3)), "JPEG")
    assert [ImageFolder(tmp_path, SizeOf())[i][0].tolist() for i in range(2)] == [[300, 260], [400, 300]]
    assert ImageFolder(tmp_path)[0][0].size == (1200, 1040)  # no transform: the whole image
    out = ImageFolder(tmp_path, T.Compose([T.RescaledRandomCrop(256, 227), T.ToCHW()]))[0][0]
    assert out.shape == (3, 227, 227)


# ---------------------------------------------------------------- batch transforms


def test_normalize_values_and_dtype():
    batch = random_images((2, 3, 4, 5))
    mean, std = (0.5, 0.4, 0.3), (0.2, 0.25, 0.5)
    out = T.Normalize(mean, std)(batch)
    assert out.dtype == np.float32 and out.shape == batch.shape
    expected = (batch / 255.0 - np.reshape(mean, (3, 1, 1))) / np.reshape(std, (3, 1, 1))
    np.testing.assert_allclose(out, expected, rtol=1e-6, atol=1e-6)
    ten_crops = random_images((2, 10, 3, 4, 4))  # TenCrop batches: channels third from last
    assert T.Normalize(mean, std)(ten_crops).shape == (2, 10, 3, 4, 4)
    with pytest.raises(ValueError, match="Normalize has 3 channel statistics"):
        T.Normalize(mean, std)(random_images((2, 1, 4, 4)))


def test_pca_lighting_matches_the_paper_formula():
    batch = random_images((4, 3, 5, 6))
    eigenvalues = np.array([0.3, 0.02, 0.004])
    eigenvectors = np.linalg.qr(np.random.default_rng(1).normal(size=(3, 3)))[0]
    out = T.PCALighting(eigenvalues, eigenvectors)(batch, np.random.default_rng(7))
    assert out.dtype == np.float32

    alpha = np.random.default_rng(7).normal(0, 0.1, size=(4, 3))
    for n in range(4):
        # [p1, p2, p3][a1 l1, a2 l2, a3 l3]^T, on the 0..1 scale, added to every pixel
        offset = 255 * eigenvectors @ (alpha[n] * eigenvalues)
        np.testing.assert_allclose(out[n], batch[n] + offset[:, None, None], rtol=1e-5, atol=1e-3)
    assert not np.allclose(out[0] - batch[0], out[1] - batch[1])


def test_rgb_pca_recovers_a_known_axis():
    rng = np.random.default_rng(0)
    axis = np.array([1.0, 2.0, -2.0]) / 3
    t = rng.normal(0, 0.15, size=(20, 1, 16, 16))
    pixels = 0.5 + t * axis[None, :, None, None] + rng.normal(0, 0.01, size=(20, 3, 16, 16))
    images = np.clip(np.round(pixels * 255), 0, 255).astype(np.uint8)

    eigenvalues, eigenvectors = T.rgb_pca(images)
    assert eigenvalues.dtype == np.float32 and eigenvectors.shape == (3, 3)
    assert abs(eigenvectors[:, 0] @ axis) > 0.999
    assert eigenvalues[0] == pytest.approx(0.15, rel=0.05)  # a standard deviation, as the published values
    assert eigenvalues[1] < 0.1 * eigenvalues[0] and eigenvalues[1] >= eigenvalues[2]
    mixed_sizes = [images[0], images[1, :, :8, :12]]
    pixels = np.concatenate([image.reshape(3, -1) for image in mixed_sizes], axis=1) / 255
    expected = np.sort(np.linalg.eigvalsh(np.cov(pixels, bias=True)))[::-1]
    np.testing.assert_allclose(T.rgb_pca(mixed_sizes)[0], np.sqrt(np.clip(expected, 0, None)), rtol=1e-4)


# ---------------------------------------------------------------- DataLoader


def numbered_dataset(count=10, transform=None):
    """Image i is a 2x2 HWC patch filled with i, and label i."""
    images = np.repeat(np.arange(count, dtype=np.uint8), 12).reshape(count, 2, 2, 3)
    return TensorDataset(images, np.arange(count), transform)


def test_loader_batches_and_len():
    loader = DataLoader(numbered_dataset(10), batch_size=4)
    batches = list(loader)
    assert len(loader) == 3 and [len(labels) for _, labels in batches] == [4, 4, 2]
    images, labels = batches[0]
    assert images.dtype == np.uint8 and images.shape == (4, 2, 2, 3)
    assert labels.dtype == np.int64 and labels.tolist() == [0, 1, 2, 3]
    assert (images[:, 0, 0, 0] == labels).all()
    dropping = DataLoader(numbered_dataset(10), batch_size=4, drop_last=True)
    assert len(dropping) == 2 and [len(labels) for _, labels in dropping] == [4, 4]
    assert len(DataLoader(numbered_dataset(8), batch_size=4)) == 2


def epoch_labels(loader):
    return np.concatenate([labels for _, labels in loader]).tolist()


def test_loader_shuffle_is_seeded_and_changes_each_epoch():
    loader = DataLoader(numbered_dataset(20), batch_size=6, shuffle=True, seed=3)
    first, second = epoch_labels(loader), epoch_labels(loader)
    assert loader.epoch == 2
    assert sorted(first) == sorted(second) == list(range(20))
    assert first != second and first != list(range(20))

    resumed = DataLoader(numbered_dataset(20), batch_size=6, shuffle=True, seed=3)
    assert epoch_labels(resumed) == first
    resumed.set_epoch(1)
    assert epoch_labels(resumed) == second
    other_seed = DataLoader(numbered_dataset(20), batch_size=6, shuffle=True, seed=4)
    assert epoch_labels(other_seed) != first


def augmented_batches(num_workers, worker_type="thread"):
    pipeline = T.Compose([T.RandomCrop(6), T.RandomHorizontalFlip(), T.ToCHW()])
    dataset = TensorDataset(random_images((13, 9, 9, 3)), np.arange(13), pipeline)
    loader = DataLoader(dataset, batch_size=4, shuffle=True, seed=11,
                        num_workers=num_workers, worker_type=worker_type)
    return [batch for _ in range(2) for batch in loader]


def test_loader_output_does_not_depend_on_workers():
    serial = augmented_batches(0)
    assert serial[0][0].shape == (4, 3, 6, 6)
    assert_same_batches(augmented_batches(2), serial)
    assert_same_batches(augmented_batches(3), serial)
    assert not np.array_equal(serial[0][0], serial[4][0])  # epochs differ


def test_loader_process_workers_give_the_same_batches():
    assert_same_batches(augmented_batches(2, "process"), augmented_batches(0))


def test_getitem_matches_the_first_epoch_of_seed_zero():
    pipeline = T.Compose([T.RandomCrop(6), T.RandomHorizontalFlip()])
    dataset = TensorDataset(random_images((5, 9, 9, 3)), np.arange(5), pipeline)
    images, _ = next(iter(DataLoader(dataset, batch_size=5)))
    for i in range(5):
        np.testing.assert_array_equal(dataset[i][0], images[i])
    np.testing.assert_array_equal(dataset[-1][0], images[4])
    with pytest.raises(IndexError, match="out of range"):
        dataset[5]


class FailOnSeven:
    def __call__(self, image, rng):
        if image[0, 0, 0] == 7:
            raise ValueError("cannot augment image seven")
        return image


@pytest.mark.parametrize("num_workers, worker_type", [(0, "thread"), (2, "thread"), (2, "process")])
def test_loader_reraises_a_transform_error(num_workers, worker_type):
    loader = DataLoader(numbered_dataset(10, FailOnSeven()), batch_size=2, num_workers=num_workers,
                        worker_type=worker_type)
    with pytest.raises(ValueError, match="cannot augment image seven") as caught:
        list(loader)
    assert "sample 7 in epoch 0" in str(caught.value.__notes__)
    assert loader.epoch == 0
    if worker_type == "process":  # the worker's own traceback travels with the error
        assert "in DataLoader worker process" in str(caught.value.__notes__)
        assert 'test_data.py", line' in caught.value.__notes__[-1]


class GrowingImages(Dataset):
    def __len__(self):
        return 2

    def load(self, index):
        return np.zeros((2 + index, 2), np.uint8), index


def test_loader_reports_samples_of_different_shapes():
    dataset = GrowingImages()
    with pytest.raises(ValueError, match="different shapes"):
        list(DataLoader(dataset, batch_size=2))


def test_abandoned_loader_stops_its_threads():
    before = threading.active_count()
    iterator = iter(DataLoader(numbered_dataset(40), batch_size=2, num_workers=2, prefetch=3))
    next(iterator)
    del iterator
    gc.collect()
    assert threading.active_count() == before


# ---------------------------------------------------------------- shipped Fashion-MNIST subset


def test_fashion_mnist_subset():
    train_images, train_labels, test_images, test_labels = load_fashion_mnist()
    assert train_images.shape == (20000, 1, 28, 28) and test_images.shape == (2000, 1, 28, 28)
    assert train_images.dtype == test_images.dtype == np.uint8
    assert train_labels.dtype == test_labels.dtype == np.int64
    assert np.bincount(train_labels).tolist() == [2000] * 10
    assert np.bincount(test_labels).tolist() == [200] * 10
    assert len(FASHION_MNIST_CLASSES) == 10
    pixels = train_images / 255.0
    assert pixels.mean() == pytest.approx(FASHION_MNIST_MEAN[0], abs=1e-4)
    assert pixels.std() == pytest.approx(FASHION_MNIST_STD[0], abs=1e-4)
    assert len(np.unique(train_images.reshape(20000, -1)[:500], axis=0)) == 500
