"""Data-parallel AlexNet training: measured across two processes here, and modelled for a cluster.

Measured here. The same global batch trained two ways on this machine's cores, each as fresh
processes running bench/distributed_worker.py: one rank with two BLAS threads
(``python worker.py``, OPENBLAS_NUM_THREADS=2), and two ranks with one thread each
(``mpiexec -n 2 python worker.py``, OPENBLAS_NUM_THREADS=1), every rank holding the whole model
wrapped in tinynet.distributed.DistributedDataParallel and training on half the batch. Per step:
the step time (forward, backward with the gradient averaging, momentum SGD), and inside it the
averaging: the wait for the slower rank, the all_reduce calls, and the packing into buckets and
back; images/s; and the speedup of two ranks over one. Medians over the steps after a warm-up.

On paper. Expected speedup on 1 to 64 machines joined by a 10 or 100 Gbit/s network, from
this model of one synchronous step on N machines, each with b images:

    step(N, b) = f + b * c  +  [N > 1] * (copy + 2 (N - 1) / N * G / bandwidth + 2 (N - 1) * buckets * latency)

- f + b * c: the compute of a step on this CPU, a line through the measured one-rank steps (f is
  what costs the same at any batch: the SGD update, the weight gradients' passes over weights);
- G: the gradient's bytes, 4 x the parameter count of the preset;
- a ring all-reduce (reduce-scatter, then all-gather) sends and receives 2 (N - 1) / N of the
  buffer per rank, in 2 (N - 1) hops per bucket, each hop paying the latency (50 us assumed);
- copy: packing the gradients into buckets and back, measured here with two ranks, scaled by G;
- no overlap of communication with computation: DDP here averages after backward has finished
  (PyTorch's DDP starts sending a bucket as soon as backward has filled it).

Weak scaling keeps 128 images per machine (the paper's batch on each machine, so the global batch
grows with N): speedup = N * step(1, 128) / step(N, 128). Strong scaling splits one global batch
of 128: speedup = step(1, 128) / step(N, 128 / N). The network is assumed to run at its line rate.
The compute is this CPU's; a GPU computes a step hundreds of times faster (the last lines print
the model at tinynet's measured H200 rate), and there communication dominates.

    python bench/distributed.py                      # seed preset, global batch 32 and 64: about 2 minutes
    python bench/distributed.py --preset paper --batch 32 --steps 5
"""

import argparse
import importlib.util
import json
import os
import shutil
import statistics
import subprocess
import sys
from pathlib import Path
from typing import NamedTuple

import machine

import alexnet
import tinynet
from tinynet.distributed import GradientBuckets

WORKER = Path(__file__).resolve().parent / "distributed_worker.py"
RANKS = 2  # this machine's two cores: one rank each
MACHINES = (1, 2, 4, 8, 16, 32, 64)
NETWORKS_GBIT = (10, 100)
BATCH_PER_MACHINE = 128  # the paper's batch (section 5)
LATENCY_S = 50e-6  # one hop of a small MPI message over TCP on a LAN: tens of microseconds
GPU_IMAGES_PER_S = 3013  # tinynet measured on an H200: seed preset, batch 128, training


class Cost(NamedTuple):
    """What one training step costs on one machine: seconds of compute, ``fixed + per_image *
    images``; the gradient's bytes and buckets; seconds spent copying them into buckets and back."""

    fixed: float
    per_image: float
    nbytes: int
    buckets: int
    copy: float = 0.0


def ring_all_reduce_seconds(nbytes, machines, bandwidth, buckets, latency=LATENCY_S):
    """A ring all-reduce of ``nbytes`` over ``machines`` at ``bandwidth`` bytes/s per link."""
    if machines == 1:
        return 0.0
    hops = 2 * (machines - 1)
    return hops / machines * nbytes / bandwidth + hops * buckets * latency


def step_seconds(cost, images, machines, bandwidth):
    """One synchronous step with ``images`` per machine: compute, then average the gradients."""
    compute = cost.fixed + images * cost.per_image
    if machines == 1:
        return compute
    return compute + cost.copy + ring_all_reduce_seconds(cost.nbytes, machines, bandwidth, cost.buckets)


def compute_line(step_by_batch):
    """(fixed, per_image, how) for the compute of a step, from {batch: one-rank step seconds}:
    a straight line through them, because what costs the same at any batch matters when strong
    scaling leaves each machine a few images. From one batch, or when the line gives less than
    nothing at no images (no fixed part to see), the largest batch's rate alone."""
    largest = max(step_by_batch)
    per_image = step_by_batch[largest] / largest
    if len(step_by_batch) == 1:
        return 0.0, per_image, f"the one-rank step at batch {largest}"
    slope, fixed = statistics.linear_regression(list(step_by_batch), list(step_by_batch.values()))
    line = f"a line through the one-rank steps at batch {' and '.join(str(batch) for batch in step_by_batch)}"
    if fixed < 0:
        return 0.0, per_image, f"{line} gives {fixed * 1000:.1f} ms at no images: taken as none"
    return fixed, slope, line


def weak_speedup(cost, machines, bandwidth, images_per_machine=BATCH_PER_MACHINE):
    """Images/s on ``machines`` over images/s on one, each machine keeping its batch."""
    one = step_seconds(cost, images_per_machine, 1, bandwidth)
    return machines * one / step_seconds(cost, images_per_machine, machines, bandwidth)


def strong_speedup(cost, machines, bandwidth, global_batch=BATCH_PER_MACHINE):
    """How much faster one global batch's step is when ``machines`` share it."""
    return step_seconds(cost, global_batch, 1, bandwidth) / step_seconds(cost, global_batch / machines, machines,
                                                                          bandwidth)


def gbit(gigabits_per_second):
    return gigabits_per_second * 1e9 / 8


def mpi_missing():
    """Why two ranks cannot be started here, or None if they can."""
    if importlib.util.find_spec("mpi4py") is None:
        return "mpi4py is not installed"
    if mpiexec() is None:
        return "no mpiexec found beside this Python or on PATH"
    return None


def mpiexec():
    """The mpiexec installed beside this Python (pip install mpich puts it there), else PATH's."""
    beside = Path(sys.executable).parent / "mpiexec"
    return str(beside) if beside.exists() else shutil.which("mpiexec")


def run_workers(ranks, threads, preset, batch, args):
    """Every rank's report from fresh worker processes, the BLAS threads set before numpy loads."""
    environment = dict(os.environ, OPENBLAS_NUM_THREADS=str(threads), OMP_NUM_THREADS=str(threads))
    command = [sys.executable, str(WORKER), "--preset", preset, "--batch", str(batch),
               "--steps", str(args.steps), "--warmup", str(args.warmup)]
    if ranks > 1:
        command = [mpiexec(), "-n", str(ranks), *command]
    finished = subprocess.run(command, env=environment, capture_output=True, text=True)
    if finished.returncode:
        sys.exit(f"{' '.join(command)} failed with exit code {finished.returncode}:\n{finished.stderr}")
    return json.loads(finished.stdout.strip().splitlines()[-1])


def summarise(reports):
    """Medians over steps; within a step, the mean over ranks (they finish a step together),
    except the wait: the longest, which is how far the ranks were apart before averaging."""
    steps = list(zip(*(report["times"] for report in reports)))

    def per_step(key, combine=statistics.mean):
        return [combine([rank[key] for rank in step]) for step in steps]

    step, averaging, all_reduce = per_step("step"), per_step("averaging"), per_step("all_reduce")
    wait = per_step("wait", max)
    return {"step": machine.median(step), "fastest": min(step), "slowest": max(step),
            "compute": machine.median([s - a for s, a in zip(step, averaging)]),
            "wait": machine.median(wait), "all_reduce": machine.median(all_reduce),
            "copy": machine.median([a - w - r for a, w, r in zip(averaging, per_step("wait"), all_reduce)]),
            "replicas_equal": len({report["checksum"] for report in reports}) == 1,
            "peak_rss_mb": [report["peak_rss_mb"] for report in reports]}


def print_measured_row(name, ranks, threads, batch, summary, speedup):
    def ms(key):
        return f"{summary[key] * 1000:8.0f}" if ranks > 1 else f"{'-':>8}"

    spread = f"({summary['fastest'] * 1000:.0f}-{summary['slowest'] * 1000:.0f})"
    print(f"{name:10} {f'{ranks} x {threads}':15} {summary['step'] * 1000:7.0f} {spread:>11} "
          f"{summary['compute'] * 1000:8.0f} {ms('all_reduce')} {ms('wait')} {ms('copy')} "
          f"{batch / summary['step']:6.1f} {speedup:7.2f}", flush=True)


def measure(preset, batches, args):
    """The measured table. Returns {batch: one rank's step seconds} and the two-rank summary of
    the largest batch (None without MPI)."""
    print(f"measured: {preset} preset, momentum SGD, median of {args.steps} steps after {args.warmup} warm-up "
          f"(in brackets the fastest and slowest step)")
    print(f"{'run':10} {'ranks x threads':15} {'step ms':>7} {'(spread)':>11} {'compute':>8} {'all_red.':>8} "
          f"{'wait':>8} {'copy':>8} {'img/s':>6} {'speedup':>7}")
    one_rank_steps, two = {}, None
    for batch in batches:
        one = summarise(run_workers(1, RANKS, preset, batch, args))
        one_rank_steps[batch] = one["step"]
        print_measured_row(f"{preset} b{batch}", 1, RANKS, batch, one, 1.0)
        if args.mpi_missing:
            continue
        two = summarise(run_workers(RANKS, 1, preset, batch, args))
        print_measured_row(f"{preset} b{batch}", RANKS, 1, batch, two, one["step"] / two["step"])
        print(f"{'':10} two ranks: replicas equal after the run: {'yes' if two['replicas_equal'] else 'NO'}; "
              f"peak RSS {' + '.join(f'{mb:.0f}' for mb in two['peak_rss_mb'])} MB "
              f"(one rank: {one['peak_rss_mb'][0]:.0f} MB)")
    print("step = forward + backward (with the averaging) + SGD update; compute = step - averaging;")
    print("all_red. = the all_reduce calls of the gradient buckets; wait = the faster rank's wait for the slower;")
    print("copy = packing the gradients into buckets, dividing and unpacking; speedup = one rank's step / two ranks'")
    return one_rank_steps, two


def gradient_shape(preset):
    """(bytes, buckets) of a preset's gradients: 4 bytes per parameter, DDP's 25 MB buckets."""
    tinynet.manual_seed(0)
    parameters = list(alexnet.AlexNet(preset, num_classes=1000, in_channels=3).parameters())
    count = sum(parameter.numel() for parameter in parameters)
    return 4 * count, len(GradientBuckets(parameters).groups)


def print_model(costs, speedup, title):
    print(title)
    print(f"{'preset':7} {'grad MB':>7} {'network':>9} " + " ".join(f"{n:>5}" for n in MACHINES))
    for preset, cost in costs.items():
        for network in NETWORKS_GBIT:
            row = " ".join(f"{speedup(cost, n, gbit(network)):5.1f}" for n in MACHINES)
            print(f"{preset:7} {cost.nbytes / 1e6:7.0f} {f'{network} Gb/s':>9} {row}")


def on_paper(one_rank_steps, two, measured_preset, gradient_bytes):
    fixed, per_image, how = compute_line(one_rank_steps)
    copy_per_byte = two["copy"] / gradient_bytes if two else 0.0
    costs = {preset: Cost(fixed, per_image, nbytes, buckets, copy_per_byte * nbytes)
             for preset, (nbytes, buckets) in ((preset, gradient_shape(preset)) for preset in ("seed", "paper"))}
    print(f"\non paper: N machines like this one, each computing a step of b images in {fixed * 1000:.0f} ms + b x "
          f"{per_image * 1000:.1f} ms,")
    print(f"this CPU's rate for the {measured_preset} preset, used for both presets ({how});")
    print(f"a ring all-reduce at the network's line rate, {LATENCY_S * 1e6:.0f} us per hop and bucket "
          f"(seed {costs['seed'].buckets} buckets, paper {costs['paper'].buckets});")
    print(f"copying into buckets and back: {two['copy'] * 1000:.0f} ms per {gradient_bytes / 1e6:.0f} MB, measured "
          "above;" if two else "copying into buckets and back: not measured without MPI, left out;")
    print("no overlap of communication with backward. Speedup over one machine:\n")
    print_model(costs, weak_speedup, f"weak scaling: {BATCH_PER_MACHINE} images per machine "
                f"(global batch {BATCH_PER_MACHINE} x N)")
    print()
    print_model(costs, strong_speedup, f"strong scaling: one global batch of {BATCH_PER_MACHINE}, "
                f"{BATCH_PER_MACHINE} / N images per machine")
    cpu_rate = BATCH_PER_MACHINE / step_seconds(costs["seed"], BATCH_PER_MACHINE, 1, gbit(10))
    gpu = Cost(0.0, 1 / GPU_IMAGES_PER_S, costs["seed"].nbytes, costs["seed"].buckets)
    print(f"\nOn a GPU ({GPU_IMAGES_PER_S:,} img/s: tinynet on an H200, seed preset, batch 128, training; "
          f"{GPU_IMAGES_PER_S / cpu_rate:.0f}x this CPU)")
    print(f"a {BATCH_PER_MACHINE}-image step computes in {BATCH_PER_MACHINE / GPU_IMAGES_PER_S * 1000:.0f} ms and "
          f"communication dominates: seed, weak scaling, 8 machines give")
    print(f"{weak_speedup(gpu, 8, gbit(10)):.1f}x on 10 Gbit/s and {weak_speedup(gpu, 8, gbit(100)):.1f}x on 100 "
          "(copies on the GPU taken as free).")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", choices=["seed", "paper"], default="seed")
    parser.add_argument("--batch", nargs="+", type=int, default=[32, 64], help="global batches (even)")
    parser.add_argument("--steps", type=int, default=8, help="timed steps per run (median taken)")
    parser.add_argument("--warmup", type=int, default=2)
    args = parser.parse_args()
    if any(batch % RANKS for batch in args.batch):
        parser.error(f"--batch {args.batch}: every global batch must split evenly over {RANKS} ranks")
    args.mpi_missing = mpi_missing()
    mpi = (f"mpi4py {importlib.import_module('mpi4py').__version__}, {mpiexec()}" if not args.mpi_missing
           else f"none: {args.mpi_missing}")
    machine.print_machine(threads_note=f"workers: 1 rank x OPENBLAS_NUM_THREADS={RANKS}, {RANKS} ranks x 1 "
                                       "(set in each worker's environment before numpy loads)")
    print(f"mpi:       {mpi}\n")
    one_rank_steps, two = measure(args.preset, sorted(set(args.batch)), args)
    gradient_bytes = gradient_shape(args.preset)[0]
    if two:
        share = 2 * (RANKS - 1) / RANKS * gradient_bytes
        print(f"\nthe all_reduce moved {share / 1e6:.0f} MB per rank per step through shared memory: "
              f"{share / two['all_reduce'] / 1e9:.1f} GB/s per rank")
    on_paper(one_rank_steps, two, args.preset, gradient_bytes)
    print(f"\nload after the run: {' '.join(f'{x:.1f}' for x in os.getloadavg())} (1, 5, 15 min)")
    if args.mpi_missing:
        print(f"\nthe two-rank runs need MPI, and {args.mpi_missing}: pip install mpi4py mpich "
              "(or pip install -e '.[mpi]')", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
