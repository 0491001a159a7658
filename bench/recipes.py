"""Which training recipes learn on an image folder: the table in README's "Training on an image folder".

    python scripts/fashion_mnist_folder.py data/fashion-folder
    python bench/recipes.py data/fashion-folder

Each recipe trains a preset (--preset, default paper) for one epoch of --steps batches (the first
steps x batch-size training images, spread over the classes) with `alexnet.py train`,
recording the loss at every step, then scores the validation images. It prints, per
recipe: the first loss, the largest loss on the way, the mean loss over the last ten
steps, the validation top-1 after the epoch, and the wall time. Results depend on the
BLAS and the thread count; the shape of each curve does not.
"""

import argparse
import csv
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ALEXNET = Path(__file__).resolve().parent.parent / "alexnet.py"

# name: (what it is, the flags that make it)
RECIPES = {
    "paper": ("the paper's literal recipe: N(0, 0.01), biases 1, lr 0.01", ["--recipe", "paper"]),
    "paper+warmup": ("the paper's init, lr warmed up to 0.01", ["--recipe", "paper", "--warmup", "100"]),
    "kaiming": ("He init, lr 0.01 from the first step", ["--init", "kaiming", "--warmup", "0"]),
    "kaiming lr 0.002": ("He init, lr 0.002", ["--init", "kaiming", "--warmup", "0", "--lr", "0.002"]),
    "folder (default)": ("He init, lr warmed up to 0.01 over 100 steps", ["--recipe", "folder"]),
}


def run_recipe(folder, preset, flags, steps, batch_size, run_dir):
    """Train one recipe for an epoch of ``steps`` batches; returns its losses, top-1 and seconds."""
    command = [sys.executable, str(ALEXNET), "train", "--data", str(folder), "--preset", preset, "--epochs", "1",
               "--batch-size", str(batch_size), "--limit", str(steps * batch_size), "--record-norms", "1",
               "--run-dir", str(run_dir), "--quiet", *flags]
    start = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    seconds = time.perf_counter() - start
    with open(run_dir / "norms.csv") as file:
        losses = [float(row["loss"]) for row in csv.DictReader(file)]
    with open(run_dir / "metrics.csv") as file:
        top1 = float(next(csv.DictReader(file))["val_acc"])
    return losses, top1, seconds


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path, help="an image folder with train/ and val/")
    parser.add_argument("--preset", default="paper", help="paper (default), seed or torchvision")
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--only", choices=sorted(RECIPES), action="append", help="run only these recipes")
    args = parser.parse_args()
    print(f"{args.preset} preset, batch {args.batch_size}, {args.steps} steps = one epoch of "
          f"{args.steps * args.batch_size:,} images of {args.folder}")
    print("| recipe | what | first loss | largest loss | loss, last 10 steps | val top-1 | seconds |")
    print("|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as scratch:
        for name in args.only or RECIPES:
            what, flags = RECIPES[name]
            losses, top1, seconds = run_recipe(args.folder, args.preset, flags, args.steps, args.batch_size,
                                               Path(scratch) / name.replace(" ", "-"))
            last = sum(losses[-10:]) / len(losses[-10:])
            print(f"| {name} | {what} | {losses[0]:.2f} | {max(losses):.2f} | {last:.2f} | {top1:.1%} | "
                  f"{seconds:.0f} |", flush=True)


if __name__ == "__main__":
    main()
