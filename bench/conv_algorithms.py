"""What each fast convolution algorithm saves: the step with all of them and with each left out, in one process.

On the CPU the fast path computes stride-1 3x3 convolutions (conv3-5) by
Winograd's F(2x2, 3x3) (tinynet/fast/winograd.py) and stride-1 kernels of 5x5
and more (conv2) through the DFT (tinynet/fast/fourier.py); the others by
im2col. Here the same model and batch run a training step and an inference
pass with every algorithm, with Winograd's and then the DFT's convolutions
given to im2col instead, and with im2col alone, alternating after a warm-up so
that a slow spell of a shared host hits every variant; each figure is a median.

    python bench/conv_algorithms.py                   # seed preset, batch 32
    python bench/conv_algorithms.py --preset paper --rounds 5
"""

import argparse
import contextlib

import machine
from steps import Tinynet, batch_of

from tinynet.fast import fourier, winograd

VARIANTS = {"all": (), "no Winograd": (winograd,), "no DFT": (fourier,), "im2col only": (winograd, fourier)}


@contextlib.contextmanager
def left_out(algorithms):
    """The convolutions that ``algorithms`` would take go to im2col instead: none suits them."""
    kept = [algorithm.suits for algorithm in algorithms]
    for algorithm in algorithms:
        algorithm.suits = lambda *args: False
    try:
        yield
    finally:
        for algorithm, suits in zip(algorithms, kept):
            algorithm.suits = suits


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", choices=("seed", "paper"), default="seed")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=7, help="timed rounds (median taken)")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--threads", type=int, default=len(machine.os.sched_getaffinity(0)))
    args = parser.parse_args()
    machine.print_machine(threads_note=machine.set_threads(args.threads, torch_too=False))
    net = Tinynet(args.preset, *batch_of(args.batch), "cpu")
    times = {(variant, mode): [] for variant in VARIANTS for mode in ("train", "infer")}
    for round_ in range(args.warmup + args.rounds):
        for variant, algorithms in VARIANTS.items():
            with left_out(algorithms):
                for mode, run in (("train", net.train_step), ("infer", net.infer)):
                    seconds, _ = machine.timed(run)
                    if round_ >= args.warmup:
                        times[variant, mode].append(seconds)
    print(f"\n{args.preset} preset, batch {args.batch}, float32, cpu, fast path; median of {args.rounds} "
          f"alternating rounds after {args.warmup} warm-up; ms, and in brackets how much longer than with all")
    print(f"{'':8}" + "".join(f"{variant:>20}" for variant in VARIANTS))
    for mode in ("train", "infer"):
        medians = {variant: 1e3 * machine.median(times[variant, mode]) for variant in VARIANTS}
        cells = [f"{ms:.1f} ({ms / medians['all'] - 1:+.0%})" for ms in medians.values()]
        print(f"{mode:8}" + "".join(f"{cell:>20}" for cell in cells))


if __name__ == "__main__":
    main()
