"""What Winograd's F(2x2, 3x3) saves: the fast path's step with it and without it, in one process.

The fast path computes stride-1 3x3 convolutions (conv3-5) by Winograd's
algorithm on the CPU (tinynet/fast/winograd.py). Here the same model and batch
run a training step and an inference pass with it and with im2col in its place,
alternating after a warm-up, so that a slow spell of a shared host hits both;
each figure is a median.

    python bench/winograd.py                   # seed preset, batch 32
    python bench/winograd.py --preset paper --rounds 5
"""

import argparse
import contextlib

import machine
from steps import Tinynet, batch_of

from tinynet.fast import winograd


@contextlib.contextmanager
def im2col_only():
    """Every convolution by im2col, as before Winograd: no convolution suits it."""
    suits = winograd.suits
    winograd.suits = lambda *args: False
    try:
        yield
    finally:
        winograd.suits = suits


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
    times = {(way, mode): [] for way in ("Winograd", "im2col") for mode in ("train", "infer")}
    for round_ in range(args.warmup + args.rounds):
        for way in ("Winograd", "im2col"):
            with im2col_only() if way == "im2col" else contextlib.nullcontext():
                for mode, run in (("train", net.train_step), ("infer", net.infer)):
                    seconds, _ = machine.timed(run)
                    if round_ >= args.warmup:
                        times[way, mode].append(seconds)
    print(f"\n{args.preset} preset, batch {args.batch}, float32, cpu, fast path; median of {args.rounds} "
          f"alternating rounds after {args.warmup} warm-up")
    print(f"{'':8}{'Winograd ms':>13}{'im2col ms':>11}{'saved':>8}")
    for mode in ("train", "infer"):
        with_it, without = (1e3 * machine.median(times[way, mode]) for way in ("Winograd", "im2col"))
        print(f"{mode:8}{with_it:13.1f}{without:11.1f}{1 - with_it / without:8.1%}")


if __name__ == "__main__":
    main()
