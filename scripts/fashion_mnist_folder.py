"""Build an ImageNet-layout folder of 256x256 colour JPEGs from Fashion-MNIST, offline.

    python scripts/fashion_mnist_folder.py data/fashion-folder
    python alexnet.py train --data data/fashion-folder

It uses all 70,000 images of Debian's dataset-fashion-mnist package when that is
installed (`apt install dataset-fashion-mnist`), else the 22,000 shipped with tinynet;
tinynet.data.fashion_folder says how the images are drawn.
"""

import argparse
import sys
from pathlib import Path

from tinynet.data.fashion_folder import DEBIAN_IDX, write_fashion_mnist_folder


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="folder to create, with train/ and val/ inside")
    parser.add_argument("--train-per-class", type=int, default=1000,
                        help="training images per class (default 1000, 10,000 in all)")
    parser.add_argument("--val-per-class", type=int, default=200,
                        help="validation images per class (default 200, 2,000 in all)")
    parser.add_argument("--image-size", type=int, default=256, help="side of the square JPEGs (default 256)")
    parser.add_argument("--idx-folder", type=Path, default=DEBIAN_IDX,
                        help=f"folder with Fashion-MNIST's IDX .gz files (default {DEBIAN_IDX}, if present)")
    args = parser.parse_args(argv)
    try:
        train, val, source = write_fashion_mnist_folder(args.out, args.train_per_class, args.val_per_class,
                                                        args.image_size, args.idx_folder)
    except (ValueError, OSError) as error:
        parser.error(str(error))
    print(f"{args.out}: {train:,} training and {val:,} validation images of {args.image_size}x{args.image_size}, "
          f"10 classes, from {source}")


if __name__ == "__main__":
    sys.exit(main())
