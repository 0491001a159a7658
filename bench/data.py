"""Images/s of the input pipeline, against the rate at which a training step consumes them.

The paper's training pipeline (section 4.1) on a generated ImageFolder of JPEGs:
decode, Resize(256) + CenterCrop(256), RandomCrop(227), RandomHorizontalFlip, ToCHW
in the DataLoader's workers, then PCA colour augmentation and Normalize per batch in
the training loop. Three measurements on the same CPU:

1. the pipeline alone, with no worker, with threads and with processes;
2. the training step alone (AlexNet seed preset, 227x227, momentum SGD) on a fixed batch;
3. training fed by the DataLoader, where both share the cores, as in a real run.

The images are ImageNet-sized (500x375 by default, like the average ImageNet photo);
``--size 256`` stands for a dataset resized to 256x256 once beforehand, as the paper did.

    python bench/data.py                            # 256 images, batch 32
    python bench/data.py --size 256 --workers 2
"""

import argparse
import tempfile
import time
from pathlib import Path

import machine
import numpy as np
from PIL import Image
from steps import tinynet_model

from tinynet import Tensor
from tinynet import functional as F
from tinynet.data import DataLoader, ImageFolder, transforms


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


def paper_transforms():
    per_sample = transforms.Compose([
        transforms.Resize(256), transforms.CenterCrop(256),
        transforms.RandomCrop(227), transforms.RandomHorizontalFlip(), transforms.ToCHW(),
    ])
    lighting = transforms.PCALighting()
    normalize = transforms.Normalize(transforms.IMAGENET_MEAN, transforms.IMAGENET_STD)
    return per_sample, lambda batch, rng: normalize(lighting(batch, rng))


def pipeline_rate(loader, per_batch, rng):
    """Images/s of one pass over the loader, with the per-batch transforms included."""
    count, start = 0, time.perf_counter()
    for images, _ in loader:
        per_batch(images, rng)
        count += len(images)
    return count / (time.perf_counter() - start)


class Trainer:
    """The whole-network benchmark's seed model and optimizer, fed any batch."""

    def __init__(self):
        self.model, self.optimizer = tinynet_model("seed", "cpu")

    def step(self, images, labels):
        self.optimizer.zero_grad()
        loss = F.cross_entropy(self.model(Tensor(images)), labels)
        loss.backward()
        self.optimizer.step()


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=256, help="images in the generated ImageFolder")
    parser.add_argument("--size", default="500x375", help="WIDTHxHEIGHT of the JPEGs, or one number for squares")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--workers", type=int, default=len(machine.os.sched_getaffinity(0)))
    parser.add_argument("--steps", type=int, default=4, help="training steps timed (after one warm-up)")
    parser.add_argument("--threads", type=int, default=len(machine.os.sched_getaffinity(0)))
    args = parser.parse_args()
    note = machine.set_threads(args.threads, torch_too=False)
    machine.print_machine("cpu", note)
    width, height = (int(s) for s in (args.size.split("x") if "x" in args.size else (args.size, args.size)))
    per_sample, per_batch = paper_transforms()
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as root:
        make_image_folder(root, args.images, width, height)
        dataset = ImageFolder(root, transform=per_sample)
        print(f"input pipeline: {args.images} JPEGs of {width}x{height}, batch {args.batch}; decode, resize 256, "
              "crop 227, flip in the workers; PCA colour + Normalize per batch in the main thread\n")
        print(f"{'what':52} {'images/s':>9}")
        configs = [("no worker (in the training thread)", 0, "thread"),
                   (f"{args.workers} thread workers", args.workers, "thread"),
                   (f"{args.workers} process workers", args.workers, "process")]
        for name, workers, kind in configs:
            loader = DataLoader(dataset, batch_size=args.batch, shuffle=True, drop_last=True,
                                num_workers=workers, worker_type=kind)
            pipeline_rate(loader, per_batch, rng)  # warm-up: file cache, pools, imports
            print(f"{'pipeline alone, ' + name:52} {pipeline_rate(loader, per_batch, rng):9.1f}", flush=True)

        trainer = Trainer()
        images, labels = next(iter(DataLoader(dataset, batch_size=args.batch, drop_last=True)))
        images = per_batch(images, rng)
        trainer.step(images, labels)
        seconds = [machine.timed(lambda: trainer.step(images, labels))[0] for _ in range(args.steps)]
        step_rate = args.batch / machine.median(seconds)
        print(f"{'training step alone (seed preset, fixed batch)':52} {step_rate:9.1f}", flush=True)

        loader = DataLoader(dataset, batch_size=args.batch, shuffle=True, drop_last=True,
                            num_workers=args.workers, worker_type="thread")
        count, start = 0, time.perf_counter()
        for batch_images, batch_labels in loader:
            trainer.step(per_batch(batch_images, rng), batch_labels)
            count += len(batch_images)
            if count >= args.batch * args.steps:
                break
        fed_rate = count / (time.perf_counter() - start)
        print(f"{'training fed by the loader (' + str(args.workers) + ' threads)':52} {fed_rate:9.1f}")
        print(f"\nloader-fed training runs at {fed_rate / step_rate:.2f} of the fixed-batch step rate")


if __name__ == "__main__":
    main()
