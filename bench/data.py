"""Images/s of the input pipeline: per worker, 1 against 2 workers, and projected to 16 cores.

The paper's training pipeline (section 4.1) on a generated ImageFolder of JPEGs: decode,
rescale to 256 and take a random 227x227 crop, flip, channels first, in the DataLoader's
workers; then PCA colour augmentation and Normalize per batch in the training loop. Four
measurements on the same CPU:

1. where one image's time goes, in one thread: decode, crop and resize, the rest;
2. the loader with no worker, and with 1 and 2 workers of each kind (threads, processes):
   uint8 batches as a GPU run receives them (its per-batch steps run on the GPU), and the
   same with the per-batch steps on this CPU, in the training thread;
3. how 2 workers scale against 1, and a projection to 16 cores against a GPU's rate;
4. (--training) the AlexNet training step alone and fed by the loader, on the CPU.

The images are photo-sized (500x375 by default, like the average ImageNet photo);
``--size 256`` stands for a dataset resized to 256x256 once beforehand, as the paper did.
``--pipeline three-step`` measures Resize(256), CenterCrop(256), RandomCrop(227) in place of
the one-resampling RescaledRandomCrop(256, 227).

    python bench/data.py                            # 512 images, batch 32
    python bench/data.py --size 256 --training
"""

import argparse
import tempfile
import time
from pathlib import Path

import machine
import numpy as np
from PIL import Image

from tinynet import Tensor
from tinynet import functional as F
from tinynet.data import DataLoader, ImageFolder, read_rgb, sample_rng, transforms

# The rate at which one GPU trains the paper preset (measured on the 16-core GPU machine):
# what the loader must keep up with there.
GPU_IMAGES_PER_SECOND = 3005
PROJECTED_CORES = 16


def make_image_folder(root, count, width, height, classes=4, seed=0):
    """JPEGs (quality 90) of smooth colour gradients plus noise: photo-like sizes that
    compress and decode like photos, unlike pure noise (which JPEG handles badly)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    for index in range(count):
        folder = Path(root) / f"class{index % classes}"
        folder.mkdir(parents=True, exist_ok=True)
        a, b, c = rng.uniform(0.2, 2.0, 3)
        base = np.stack([np.sin(a * x / 40), np.cos(b * y / 30), np.sin(c * (x + y) / 50)], axis=-1)
        pixels = 127 + 80 * base + rng.normal(0, 12, base.shape)
        Image.fromarray(pixels.clip(0, 255).astype(np.uint8)).save(folder / f"{index:05d}.jpg", quality=90)


def crop_transform(pipeline):
    if pipeline == "three-step":
        return [transforms.Resize(256), transforms.CenterCrop(256), transforms.RandomCrop(227)]
    return [transforms.RescaledRandomCrop(256, 227)]


def paper_transforms(pipeline="fused"):
    per_sample = transforms.Compose(
        crop_transform(pipeline) + [transforms.RandomHorizontalFlip(), transforms.ToCHW()])
    lighting = transforms.PCALighting()
    normalize = transforms.Normalize(transforms.IMAGENET_MEAN, transforms.IMAGENET_STD)
    return per_sample, lambda batch, rng: normalize(lighting(batch, rng))


def stage_times(paths, pipeline):
    """Milliseconds per image of each stage, in this thread (best of three passes)."""
    crop = transforms.Compose(crop_transform(pipeline))
    rest = transforms.Compose([transforms.RandomHorizontalFlip(), transforms.ToCHW()])
    min_side = getattr(crop, "min_input_side", None)
    best = np.full(4, np.inf)
    for _ in range(3):
        spent = np.zeros(4)
        batch = []
        for index, path in enumerate(paths):
            start = time.perf_counter()
            image = read_rgb(path, min_side) if min_side else read_rgb(path)
            decoded = time.perf_counter()
            rng = sample_rng(0, 0, index)
            cropped = crop(image, rng)
            resized = time.perf_counter()
            batch.append(np.asarray(rest(cropped, rng)))
            if len(batch) == 32:
                stacked = np.stack(batch)
                stacked.copy()  # the main process's copy out of shared memory
                batch = []
            spent += [decoded - start, resized - decoded, time.perf_counter() - resized, 0]
        spent[3] = spent[:3].sum()
        best = np.minimum(best, spent / len(paths) * 1e3)
    return best


def loader_rate(loader, per_batch=None, rng=None):
    """Images/s of one pass over the loader, with the per-batch transforms if given."""
    count, start = 0, time.perf_counter()
    for images, _ in loader:
        if per_batch is not None:
            per_batch(images, rng)
        count += len(images)
    return count / (time.perf_counter() - start)


class Trainer:
    """The whole-network benchmark's seed model and optimizer, fed any batch."""

    def __init__(self):
        from steps import tinynet_model

        self.model, self.optimizer = tinynet_model("seed", "cpu")

    def step(self, images, labels):
        self.optimizer.zero_grad()
        loss = F.cross_entropy(self.model(Tensor(images)), labels)
        loss.backward()
        self.optimizer.step()


def measure_loaders(dataset, args, per_batch, rng):
    """{(kind, workers): (loader images/s, with per-batch on the CPU)}."""
    rates = {}
    configs = [("none", 0)] + [(kind, workers) for kind in ("thread", "process") for workers in (1, 2)]
    for kind, workers in configs:
        with DataLoader(dataset, batch_size=args.batch, shuffle=True, drop_last=True,
                        num_workers=workers, worker_type="thread" if kind == "none" else kind) as loader:
            loader_rate(loader)  # warm-up: file cache, worker start-up, imports, shared memory
            alone = max(loader_rate(loader) for _ in range(args.repeats))
            with_cpu = max(loader_rate(loader, per_batch, rng) for _ in range(args.repeats))
        rates[kind, workers] = alone, with_cpu
        plural = "s" * (workers > 1)
        name = "no worker (in the training thread)" if kind == "none" else f"{workers} {kind} worker{plural}"
        per_worker = f"{alone / workers:10.1f}" if workers else f"{'':10}"
        print(f"{name:36} {alone:9.1f} {per_worker} {with_cpu:14.1f}", flush=True)
    return rates


def report_scaling(rates):
    print(f"\n{'2 workers against 1':36} {'loader':>9} {'+ per-batch':>14}")
    for kind, name in (("thread", "threads"), ("process", "processes")):
        one, two = rates[kind, 1], rates[kind, 2]
        print(f"{name:36} {two[0] / one[0]:8.2f}x {two[1] / one[1]:13.2f}x")
    one, two = rates["process", 1][0], rates["process", 2][0]
    efficiency = two / (2 * one)
    projected = one * PROJECTED_CORES * efficiency
    print(f"\nprojection to {PROJECTED_CORES} cores: 1 process worker's {one:.1f} img/s x {PROJECTED_CORES} workers x "
          f"the {efficiency:.2f} efficiency measured from 1 to 2 workers = {projected:.0f} img/s,\n"
          f"against the GPU's {GPU_IMAGES_PER_SECOND} img/s (paper preset): {projected / GPU_IMAGES_PER_SECOND:.2f} "
          "of it. A linear extrapolation: it assumes cores as fast as these,\nthe same efficiency at 16 workers, "
          "and the per-batch steps on the GPU (uint8 batches cross to it).")


def report_training(dataset, args, per_batch, rng):
    trainer = Trainer()
    images, labels = next(iter(DataLoader(dataset, batch_size=args.batch, drop_last=True)))
    images = per_batch(images, rng)
    trainer.step(images, labels)
    seconds = [machine.timed(lambda: trainer.step(images, labels))[0] for _ in range(args.steps)]
    step_rate = args.batch / machine.median(seconds)
    print(f"\n{'training step alone (seed preset, fixed batch)':52} {step_rate:9.1f}", flush=True)
    with DataLoader(dataset, batch_size=args.batch, shuffle=True, drop_last=True,
                    num_workers=2, worker_type="process") as loader:
        count, start = 0, time.perf_counter()
        for batch_images, batch_labels in loader:
            trainer.step(per_batch(batch_images, rng), batch_labels)
            count += len(batch_images)
            if count >= args.batch * args.steps:
                break
    fed_rate = count / (time.perf_counter() - start)
    print(f"{'training fed by the loader (2 process workers)':52} {fed_rate:9.1f}")
    print(f"\nloader-fed training runs at {fed_rate / step_rate:.2f} of the fixed-batch step rate")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=512, help="images in the generated ImageFolder")
    parser.add_argument("--size", default="500x375", help="WIDTHxHEIGHT of the JPEGs, or one number for squares")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--pipeline", choices=("fused", "three-step"), default="fused",
                        help="RescaledRandomCrop(256, 227), or Resize + CenterCrop + RandomCrop")
    parser.add_argument("--repeats", type=int, default=2, help="timed passes per loader (the best is shown)")
    parser.add_argument("--training", action="store_true", help="also time the AlexNet training step")
    parser.add_argument("--steps", type=int, default=4, help="training steps timed (after one warm-up)")
    parser.add_argument("--threads", type=int, default=len(machine.os.sched_getaffinity(0)))
    args = parser.parse_args()
    note = machine.set_threads(args.threads, torch_too=False)
    machine.print_machine("cpu", note)
    width, height = (int(s) for s in (args.size.split("x") if "x" in args.size else (args.size, args.size)))
    per_sample, per_batch = paper_transforms(args.pipeline)
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as root:
        make_image_folder(root, args.images, width, height)
        dataset = ImageFolder(root, transform=per_sample)
        print(f"input pipeline: {args.images} JPEGs of {width}x{height}, batch {args.batch}, {args.pipeline} crop; "
              "decode, crop 227 of the image rescaled to 256, flip, CHW in the workers\n")
        ms = stage_times([path for path, _ in dataset.samples[:128]], args.pipeline)
        print("one image, in one thread (ms): " + ", ".join(
            f"{name} {value:.3f}" for name, value in zip(
                ("decode", "crop and resize", "flip, CHW, stack, copy out", "total"), ms)))
        print(f"  = {1e3 / ms[3]:.1f} img/s per core at most\n")
        print(f"{'images/s':36} {'loader':>9} {'per worker':>10} {'+ per-batch':>14}")
        rates = measure_loaders(dataset, args, per_batch, rng)
        print("(+ per-batch: PCA colour and Normalize of each batch on this CPU, in the training thread)")
        report_scaling(rates)
        if args.training:
            report_training(dataset, args, per_batch, rng)


if __name__ == "__main__":
    main()
