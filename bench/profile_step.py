"""Where one AlexNet training step spends its time, in tinynet and in PyTorch.

For tinynet: the time and the page faults of every Function's forward and
backward in the step, in the order the network runs them, and the SGD update.
Page faults count fresh memory touched for the first time; on VMs that hand
freed memory back to the host each one is expensive, and the system time shows it.
Then the floor under the convolutions: their GEMMs alone, at the real shapes,
with nothing else around them. For PyTorch: its own profiler's time per operator.

On a GPU each Function is timed with the GPU synchronised before and after it,
so its row is the GPU time of its kernels (and the step, run that way, is slower
than unprofiled); page faults are left out.

    python bench/profile_step.py                    # seed preset, batch 32
    python bench/profile_step.py --preset paper --batch 128
    python bench/profile_step.py --device gpu --batch 128 [--tf32]
"""

import argparse
import collections
import resource
import time

import machine
import numpy as np
from steps import Tinynet, Torch, batch_of

from tinynet import backend, windows
from tinynet.reference.conv import Conv2d
from tinynet.tensor import Function


def all_functions(cls=Function):
    for sub in cls.__subclasses__():
        yield sub
        yield from all_functions(sub)


class StepProfile:
    """Wraps every Function's forward and backward to time them and count page faults."""

    def __init__(self, device):
        self.device = device
        self.rows = {}  # "Conv2d 2" -> {"forward": seconds, "backward": seconds, "faults": count}
        self.counts = collections.Counter()
        self.convolutions = []  # (x shape, weight shape, stride, padding, groups, input grad?) of each Conv2d

    def install(self):
        for cls in set(all_functions()):
            for phase in ("forward", "backward"):
                if phase in vars(cls):
                    setattr(cls, phase, self._timed(getattr(cls, phase), phase))

    def _timed(self, method, phase):
        def timed(function, *arrays):
            if getattr(function, "profile_busy", False):  # a parent's method reached through super(),
                return method(function, *arrays)         # e.g. Mean's forward calling Sum's: counted once
            if phase == "forward":
                self._label(function)
                if isinstance(function, Conv2d):
                    self.convolutions.append((arrays[0].shape, arrays[1].shape, function.stride,
                                              function.padding, function.groups, function.needs_input_grad[0]))
            machine.synchronize(self.device)
            faults, start = minor_faults(), time.perf_counter()
            function.profile_busy = True
            try:
                result = method(function, *arrays)
                machine.synchronize(self.device)
            finally:
                function.profile_busy = False
            row = self.rows[function.profile_label]
            row[phase] += time.perf_counter() - start
            row["faults"] += minor_faults() - faults
            return result

        return timed

    def _label(self, function):
        name = type(function).__name__
        self.counts[name] += 1
        function.profile_label = f"{name} {self.counts[name]}"
        self.rows.setdefault(function.profile_label, {"forward": 0.0, "backward": 0.0, "faults": 0})

    def reset(self):
        self.rows.clear()
        self.counts.clear()
        self.convolutions.clear()


def time_calls(owner, name, device):
    """Replace owner.name by a timed version; returns the list its durations go to."""
    method, durations = getattr(owner, name), []

    def timed(*args, **kwargs):
        seconds, result = machine.timed(lambda: method(*args, **kwargs), device)
        durations.append(seconds)
        return result

    setattr(owner, name, timed)
    return durations


def minor_faults():
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def system_seconds():
    return resource.getrusage(resource.RUSAGE_SELF).ru_stime


def profile_tinynet(side, steps, device):
    profile = StepProfile(device)
    profile.install()
    sgd = time_calls(side.optimizer, "step", device)
    side.train_step()  # warm-up: scratch buffers and velocities allocated
    sgd.clear()
    totals, wall, system = collections.defaultdict(collections.Counter), 0.0, system_seconds()
    for _ in range(steps):
        profile.reset()
        seconds, _ = machine.timed(side.train_step, device)
        wall += seconds
        for label, row in profile.rows.items():
            totals[label].update(row)
    system, sgd = system_seconds() - system, sum(sgd)
    print(f"tinynet: {1000 * wall / steps:.0f} ms per step (mean of {steps}) and "
          f"{1000 * system / steps:.0f} ms of system time (all threads together)\n")
    print(f"{'Function':22} {'forward ms':>11} {'backward ms':>12} {'page faults':>12}")
    for label, row in totals.items():
        print(f"{label:22} {1000 * row['forward'] / steps:11.1f} {1000 * row['backward'] / steps:12.1f} "
              f"{row['faults'] // steps:12d}")
    accounted = sum(row["forward"] + row["backward"] for row in totals.values()) + sgd
    print(f"{'SGD update':22} {1000 * sgd / steps:24.1f}")
    print(f"{'engine and Python':22} {1000 * (wall - accounted) / steps:24.1f}\n")
    return profile.convolutions


def gemm_floor(convolutions, device, repeats=3):
    """The convolutions' GEMMs alone, at their real shapes and over the whole batch, into
    preallocated outputs: what im2col + GEMM cannot go below (chunking the batch does not
    make them faster)."""
    print(f"convolution GEMMs alone, median of {repeats} (GFLOP/s in brackets)")
    total = 0.0
    for index, (x_shape, w_shape, stride, padding, groups, input_grad) in enumerate(convolutions, start=1):
        out_channels, in_per_group, kh, kw = w_shape
        oh, ow = (windows.output_size(size, k, s, p) for size, k, s, p in zip(x_shape[2:], (kh, kw), stride, padding))
        m, k, n = out_channels // groups, in_per_group * kh * kw, x_shape[0] * oh * ow
        seconds = {name: groups * s for name, s in gemm_seconds(m, k, n, input_grad, device, repeats).items()}
        total += sum(seconds.values())
        flops = 2 * m * k * n * groups
        print(f"  conv{index}: " + ", ".join(f"{name} {1000 * s:.2f} ms ({flops / s / 1e9:.0f})"
                                             for name, s in seconds.items()))
    print(f"  all convolution GEMMs: {1000 * total:.1f} ms per step\n")


def gemm_seconds(m, k, n, input_grad, device, repeats):
    """Median seconds of one group's products, as Conv2d computes them (into reused buffers)."""
    rng, xp = np.random.default_rng(0), backend.get_xp(device)
    weight, columns, grad = (xp.asarray(rng.standard_normal(shape, dtype=np.float32))
                             for shape in ((m, k), (k, n), (m, n)))
    out, grad_columns = xp.empty((m, n), np.float32), xp.empty((k, n), np.float32)
    products = {"forward": lambda: xp.matmul(weight, columns, out=out),
                "weight grad": lambda: (columns @ grad.T).T}  # a small (k, m) result
    if input_grad:
        products["input grad"] = lambda: xp.matmul(weight.T, grad, out=grad_columns)
    return {name: machine.median([machine.timed(product, device)[0] for _ in range(repeats + 1)][1:])
            for name, product in products.items()}


def profile_torch(side, steps, device):
    """PyTorch's profiler: each operator's own time on the CPU, or on the GPU's (device time)."""
    from torch.profiler import ProfilerActivity, profile

    activities = [ProfilerActivity.CPU] + [ProfilerActivity.CUDA] * (device == "gpu")
    own_time = "self_device_time_total" if device == "gpu" else "self_cpu_time_total"
    side.train_step()
    machine.synchronize(device)
    system, start = system_seconds(), time.perf_counter()
    with profile(activities=activities) as prof:
        for _ in range(steps):
            side.train_step()
        machine.synchronize(device)
    wall, system = time.perf_counter() - start, system_seconds() - system
    print(f"PyTorch: {1000 * wall / steps:.1f} ms per step under its profiler (mean of {steps}) and "
          f"{1000 * system / steps:.0f} ms of system time\n")
    events = sorted(prof.key_averages(), key=lambda e: getattr(e, own_time), reverse=True)
    print(f"{'operator':40} {'self ms per step':>17}")
    for event in events[:12]:
        print(f"{event.key[:40]:40} {getattr(event, own_time) / 1000 / steps:17.2f}")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", choices=["seed", "paper"], default="seed")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--threads", type=int, default=len(machine.os.sched_getaffinity(0)))
    parser.add_argument("--device", choices=["cpu", "gpu"], default="cpu")
    parser.add_argument("--tf32", action="store_true", help="TF32 in both frameworks on a GPU")
    args = parser.parse_args()
    note = machine.set_threads(args.threads)
    if args.device == "gpu":
        backend.check_device("gpu")
        machine.set_tf32(args.tf32)
    machine.print_machine(args.device, note)
    print(f"AlexNet {args.preset} preset, 227x227, batch {args.batch}, float32{' (TF32)' * args.tf32}, "
          f"{args.device}: one training step (forward, softmax cross-entropy, backward, momentum SGD)\n")
    images, labels = batch_of(args.batch)
    ours = Tinynet(args.preset, images, labels, args.device)
    theirs = Torch(ours.model, images, labels, args.device)
    convolutions = profile_tinynet(ours, args.steps, args.device)
    gemm_floor(convolutions, args.device)
    profile_torch(theirs, args.steps, args.device)


if __name__ == "__main__":
    main()
