"""Whole AlexNet training steps and inference, tinynet against PyTorch.

A training step is forward, softmax cross-entropy, backward and a momentum SGD
update (lr 0.01, momentum 0.9, weight decay 5e-4) on 227x227 float32 images.
Both frameworks get the same weights and inputs and the same thread count; their
steps alternate in one process, after a warm-up, and each rate is a median.
tinynet runs twice: through its fast layers (the default) and through its
reference layers (tinynet/reference/, the textbook code), which is reported but
has no target.

Peak memory is measured in fresh subprocesses, one per framework, so neither
counts the other's buffers. On the CPU: the peak resident set (VmHWM) of a few
training steps and, for tinynet, the peak of live NumPy arrays with the source
lines holding the most memory at the end of the forward pass (tracemalloc). On
a GPU: the most GPU memory in use by arrays at once (PyTorch's
max_memory_allocated; for tinynet, CuPy's memory pool counted by a hook), and
what each framework's pool held from the GPU at the end.

On a GPU, ``--tf32 both`` runs every row twice, with TF32 off and on in both
frameworks (PyTorch's default is on for its cuDNN convolutions and off for its
matrix products; tinynet's, off for both).

    python bench/alexnet.py                             # seed preset, batch 32: the quick run
    python bench/alexnet.py --preset seed paper --batch 32 128
    python bench/alexnet.py --device gpu --batch 128 --tf32 both   # CuPy against PyTorch on CUDA
"""

import argparse
import gc
import json
import subprocess
import sys
import tracemalloc

import machine
import numpy as np
from steps import Tinynet, Torch, batch_of, tinynet_model

import tinynet
from tinynet import Tensor, backend


def on_reference_path(method):
    """The same tinynet step through the textbook layers (tinynet/reference/)."""
    def run():
        with tinynet.reference_layers():
            return method()
    return run


def throughput(preset, batch, args):
    """Images/s of tinynet's fast path, PyTorch and (unless --no-reference) tinynet's
    reference path, training and inference, alternating: the median of each, and the
    spread of the fast path's ratio to PyTorch over the alternating rounds."""
    images, labels = batch_of(batch)
    ours = Tinynet(preset, images, labels, args.device)
    theirs = Torch(ours.model, images, labels, args.device)
    gap = np.abs(ours.infer() - theirs.infer()).max()
    rows = []
    for mode in ("train", "infer"):
        sides = {"fast": getattr(ours, f"{mode}_step" if mode == "train" else mode),
                 "torch": getattr(theirs, f"{mode}_step" if mode == "train" else mode)}
        if not args.no_reference:
            sides["reference"] = on_reference_path(sides["fast"])
        times = {name: [] for name in sides}
        for index in range(args.warmup + args.steps):
            for name, run in sides.items():
                seconds, _ = machine.timed(run, args.device)
                if index >= args.warmup:
                    times[name].append(seconds)
        rate = {name: batch / machine.median(ts) for name, ts in times.items()}
        ratios = [pt / tn for tn, pt in zip(times["fast"], times["torch"])]
        rows.append((f"{preset} b{batch} {mode}", rate, min(ratios), max(ratios)))
    return rows, gap


def cupy_peak_hook():
    """A CuPy memory hook that counts the bytes its pool hands out to arrays, and their most at once."""
    import cupy

    class PeakHook(cupy.cuda.MemoryHook):
        name = "peak"

        def __init__(self, used):
            self.used = self.peak = used

        def malloc_postprocess(self, **kwargs):
            self.used += kwargs["mem_size"]
            self.peak = max(self.peak, self.used)

        def free_postprocess(self, **kwargs):
            self.used -= kwargs["mem_size"]

    return PeakHook(cupy.get_default_memory_pool().used_bytes())  # the weights, already there


def gpu_child(args):
    """Run in a subprocess: a few training steps of one framework on the GPU, then print the
    most memory its arrays took at once, and what its pool held, as JSON."""
    images, labels = batch_of(args.batch[0])
    machine.set_tf32(args.tf32 == "on", torch_too=args.child == "torch")
    if args.child == "tinynet":
        import cupy

        side = Tinynet(args.preset[0], images, labels, args.device)
        hook = cupy_peak_hook()
        with hook:
            for _ in range(3):
                side.train_step()
            cupy.cuda.Device().synchronize()
        return {"peak_mb": hook.peak / 2**20, "pool_mb": cupy.get_default_memory_pool().total_bytes() / 2**20}
    import torch

    side = Torch(tinynet_model(args.preset[0], "cpu")[0], images, labels, args.device)
    for _ in range(3):
        side.train_step()
    torch.cuda.synchronize()
    return {"peak_mb": torch.cuda.max_memory_allocated() / 2**20, "pool_mb": torch.cuda.max_memory_reserved() / 2**20}


def child(args):
    """Run in a subprocess: a few training steps of one framework, then print its peak memory as JSON."""
    if args.device == "gpu":
        print(json.dumps(gpu_child(args)))
        return
    images, labels = batch_of(args.batch[0])
    report = {}
    if args.child == "tinynet":
        tracemalloc.start()  # NumPy reports its array memory to tracemalloc
        side = Tinynet(args.preset[0], images, labels, args.device)
        report["model_rss_mb"] = machine.rss_mb()
        for _ in range(3):
            side.train_step()
        side.optimizer.zero_grad()
        logits = side.model(Tensor(side.images))  # the graph alive at its largest: end of the forward pass
        snapshot = tracemalloc.take_snapshot()
        top = snapshot.statistics("lineno")[:5]
        report["largest"] = [f"{s.size / 2**20:.0f} MB {s.traceback[0].filename.split('/')[-1]}:"
                             f"{s.traceback[0].lineno}" for s in top]
        report["live_after_forward_mb"] = sum(s.size for s in snapshot.statistics("filename")) / 2**20
        report["peak_arrays_mb"] = tracemalloc.get_traced_memory()[1] / 2**20
        del logits
    else:
        side = Torch(tinynet_model(args.preset[0], "cpu")[0], images, labels, args.device)
        gc.collect()  # the tinynet model that gave the weights is gone: count from here
        report["model_rss_mb"] = machine.rss_mb()
        if not machine.reset_peak_rss():
            report["note"] = "peak includes the tinynet weights copied in (VmHWM could not be reset)"
        for _ in range(3):
            side.train_step()
    report["peak_rss_mb"] = machine.peak_rss_mb()
    print(json.dumps(report))


def tf32_settings(args):
    if args.device == "cpu":
        return ["off"]
    return ["off", "on"] if args.tf32 == "both" else [args.tf32]


def memory(preset, batch, args, tf32="off"):
    reports = {}
    for framework in ("tinynet", "torch"):
        command = [sys.executable, __file__, "--child", framework, "--preset", preset, "--batch", str(batch),
                   "--threads", str(args.threads), "--device", args.device, "--tf32", tf32]
        out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
        reports[framework] = json.loads(out.strip().splitlines()[-1])
    return reports


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", nargs="+", choices=["seed", "paper"], default=["seed"])
    parser.add_argument("--batch", nargs="+", type=int, default=[32])
    parser.add_argument("--steps", type=int, default=5, help="timed steps per mode (median taken)")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--threads", type=int, default=len(machine.os.sched_getaffinity(0)))
    parser.add_argument("--device", choices=["cpu", "gpu"], default="cpu")
    parser.add_argument("--no-memory", action="store_true", help="skip the peak-memory subprocesses")
    parser.add_argument("--no-reference", action="store_true", help="skip tinynet's reference path")
    parser.add_argument("--tf32", choices=["off", "on", "both"], default="off",
                        help="TF32 for both frameworks on a GPU (both: every row twice)")
    parser.add_argument("--child", choices=["tinynet", "torch"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.device == "gpu":
        backend.check_device("gpu")
    note = machine.set_threads(args.threads, torch_too=args.child != "tinynet")
    if args.child:
        return child(args)
    machine.print_machine(args.device, note)
    print(f"AlexNet 227x227, float32, {args.device}; median of {args.steps} alternating steps after "
          f"{args.warmup} warm-up; train = forward + backward + momentum SGD")
    print("speed ratio = tinynet images/s / PyTorch images/s: >= 1 means tinynet is as fast as PyTorch;")
    print("fast = tinynet's default layers, reference = its textbook layers (tinynet/reference/)\n")
    print(f"{'run':18} {'fast img/s':>10} {'PyTorch':>8} {'ratio':>6} {'(spread)':>12} "
          f"{'reference':>10} {'ratio':>6}")
    reports, gpu_reports = [], []
    for tf32 in tf32_settings(args):
        machine.set_tf32(tf32 == "on")
        for preset in args.preset:
            for batch in args.batch:
                rows, gap = throughput(preset, batch, args)
                for name, rate, low, high in rows:
                    name += " tf32" * (tf32 == "on")
                    reference = rate.get("reference", float("nan"))
                    print(f"{name:18} {rate['fast']:10.1f} {rate['torch']:8.1f} {rate['fast'] / rate['torch']:6.2f} "
                          f"({low:.2f}-{high:.2f}) {reference:10.1f} {reference / rate['torch']:6.2f}", flush=True)
                print(f"{'':18} (eval logits agree to {gap:.1e})")
                if not args.no_memory:
                    name = f"{preset} b{batch} train" + " tf32" * (tf32 == "on")
                    (reports if args.device == "cpu" else gpu_reports).append((name, memory(preset, batch, args, tf32)))
    if gpu_reports:
        print(f"\n{'GPU memory (MB)':22} {'tinynet peak':>12} {'PyTorch peak':>12} {'ratio':>6} "
              f"{'tinynet pool':>13} {'PyTorch pool':>13}")
        for name, report in gpu_reports:
            ours, theirs = report["tinynet"], report["torch"]
            ratio = ours["peak_mb"] / theirs["peak_mb"]
            print(f"{name:22} {ours['peak_mb']:12.0f} {theirs['peak_mb']:12.0f} {ratio:6.2f} "
                  f"{ours['pool_mb']:13.0f} {theirs['pool_mb']:13.0f}")
        print("(peak: arrays in use at once; pool: what the framework's memory pool held from the GPU)")
    if reports:
        print(f"\n{'peak memory (MB)':22} {'tinynet RSS':>12} {'PyTorch RSS':>12} {'ratio':>6} {'tinynet arrays':>15}")
        for name, report in reports:
            ours, theirs = report["tinynet"], report["torch"]
            print(f"{name:22} {ours['peak_rss_mb']:12.0f} {theirs['peak_rss_mb']:12.0f} "
                  f"{ours['peak_rss_mb'] / theirs['peak_rss_mb']:6.2f} {ours['peak_arrays_mb']:15.0f}")
            print(f"{'':22} after building the model: tinynet {ours['model_rss_mb']:.0f}, "
                  f"PyTorch {theirs['model_rss_mb']:.0f}")
            print(f"{'':22} tinynet arrays live after forward: {ours['live_after_forward_mb']:.0f} MB; "
                  f"largest by line: {', '.join(ours['largest'])}")


if __name__ == "__main__":
    main()
