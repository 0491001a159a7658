"""Forward and backward time of each AlexNet layer, tinynet against PyTorch.

Every layer runs at its real shape in the network (227x227 input), on the same
float32 inputs and weights in both frameworks, with the same thread count, in one
process. The two sides alternate (tinynet, PyTorch, tinynet, ...) after a warm-up,
so a slow spell of a noisy host hits both, and each time is a median over runs.

    python bench/layers.py                     # seed layers, batch 32, CPU
    python bench/layers.py --preset paper      # conv2, conv4, conv5 in two groups
    python bench/layers.py --device gpu        # CuPy against PyTorch on CUDA
"""

import argparse

import machine
import numpy as np
import torch

import tinynet
from tinynet import Tensor, backend, nn
from tinynet import functional as F


def layer_specs(preset):
    """(name, input shape without the batch, tinynet module, torch module, does the input need a gradient)."""
    g = 2 if preset == "paper" else 1

    def conv(cin, cout, k, stride=1, padding=0, groups=1):
        return nn.Conv2d(cin, cout, k, stride, padding, groups), torch.nn.Conv2d(cin, cout, k, stride, padding,
                                                                                 groups=groups)

    def pool():
        return nn.MaxPool2d(3, 2), torch.nn.MaxPool2d(3, 2)

    def lrn():  # torch divides alpha by n: alpha_over_n=True gives the same formula
        return (nn.LocalResponseNorm(5, 1e-4, 0.75, 2.0, alpha_over_n=True),
                torch.nn.LocalResponseNorm(5, 1e-4, 0.75, 2.0))

    def linear(cin, cout):
        return nn.Linear(cin, cout), torch.nn.Linear(cin, cout)

    return [
        ("conv1 11x11/4", (3, 227, 227), *conv(3, 96, 11, 4), False),  # the images need no gradient
        ("relu1", (96, 55, 55), nn.ReLU(), torch.nn.ReLU(), True),
        ("lrn1", (96, 55, 55), *lrn(), True),
        ("pool1 3x3/2", (96, 55, 55), *pool(), True),
        (f"conv2 5x5 g{g}", (96, 27, 27), *conv(96, 256, 5, 1, 2, g), True),
        ("lrn2", (256, 27, 27), *lrn(), True),
        ("pool2 3x3/2", (256, 27, 27), *pool(), True),
        ("conv3 3x3", (256, 13, 13), *conv(256, 384, 3, 1, 1), True),
        (f"conv4 3x3 g{g}", (384, 13, 13), *conv(384, 384, 3, 1, 1, g), True),
        (f"conv5 3x3 g{g}", (384, 13, 13), *conv(384, 256, 3, 1, 1, g), True),
        ("pool5 3x3/2", (256, 13, 13), *pool(), True),
        ("fc6", (9216,), *linear(9216, 4096), True),
        ("fc7", (4096,), *linear(4096, 4096), True),
        ("fc8", (4096,), *linear(4096, 1000), True),
        ("softmax+xent", (1000,), None, None, True),
    ]


def copy_weights(tn_module, torch_module):
    """The same starting weights on both sides (on the host; build() moves them)."""
    for name, parameter in tn_module.named_parameters():
        parameter.data = getattr(torch_module, name).detach().cpu().numpy().copy()


class Side:
    """One framework's forward and backward of one layer, each timed on its own."""

    def __init__(self, run, inputs, grad, needs_grad, params, make_leaf, device):
        self.run, self.inputs, self.grad, self.needs_grad = run, inputs, grad, needs_grad
        self.params, self.make_leaf, self.device = params, make_leaf, device

    def step(self):
        for p in self.params:
            p.grad = None
        x = self.make_leaf(self.inputs, self.needs_grad)
        forward_time, out = machine.timed(lambda: self.run(x), self.device)
        backward_time, _ = machine.timed(lambda: out.backward(self.grad), self.device)
        return forward_time, backward_time, out


def build(spec, batch, device, seed):
    name, shape, tn_module, torch_module, needs_grad = spec
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((batch,) + shape, dtype=np.float32)
    torch_device = "cuda" if device == "gpu" else "cpu"
    if tn_module is None:  # the loss: targets instead of a module, a scalar output
        targets = rng.integers(0, shape[0], batch)
        tn_targets = backend.to_device(targets, device)
        torch_targets = torch.from_numpy(targets).to(torch_device)
        tn_run, torch_run = (lambda t: F.cross_entropy(t, tn_targets)), (
            lambda t: torch.nn.functional.cross_entropy(t, torch_targets))
        tn_params, torch_params, grad = [], [], np.float32(1.0)
    else:
        copy_weights(tn_module, torch_module)
        tn_module.to(device)
        torch_module.to(torch_device)
        tn_run, torch_run = tn_module, torch_module
        tn_params, torch_params = tn_module.parameters(), list(torch_module.parameters())
        with torch.no_grad():
            out_shape = torch_module(torch.from_numpy(x[:1]).to(torch_device)).shape[1:]
        grad = rng.standard_normal((batch,) + tuple(out_shape), dtype=np.float32)
    tn_side = Side(tn_run, backend.to_device(x, device), backend.to_device(np.asarray(grad), device), needs_grad,
                   tn_params, lambda a, g: Tensor(a, requires_grad=g), device)
    torch_side = Side(torch_run, torch.from_numpy(x).to(torch_device), torch.as_tensor(grad).to(torch_device),
                      needs_grad, torch_params, lambda a, g: a.detach().requires_grad_(g), device)
    return name, tn_side, torch_side


def measure(tn_side, torch_side, warmup, runs):
    times = {"tn": [], "torch": []}
    for index in range(warmup + runs):
        for label, side in (("tn", tn_side), ("torch", torch_side)):
            forward_time, backward_time, out = side.step()
            if label == "tn" and out.dtype != np.float32:
                raise TypeError(f"tinynet output is {out.dtype}, not float32")
            if index >= warmup:
                times[label].append((forward_time, backward_time))
    return {label: tuple(machine.median([t[i] for t in ts]) for i in range(2)) + (machine.median([sum(t) for t in ts]),)
            for label, ts in times.items()}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", choices=["seed", "paper"], default="seed", help="paper: grouped conv2/4/5")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--runs", type=int, default=5, help="timed runs per layer (median taken)")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--threads", type=int, default=len(machine.os.sched_getaffinity(0)))
    parser.add_argument("--device", choices=["cpu", "gpu"], default="cpu")
    parser.add_argument("--only", default="", help="comma-separated layer name prefixes, e.g. conv2,pool")
    parser.add_argument("--tf32", action="store_true", help="TF32 in both frameworks on a GPU (default: off in both)")
    args = parser.parse_args()
    if args.device == "gpu":
        backend.check_device("gpu")
        machine.set_tf32(args.tf32)
    note = machine.set_threads(args.threads)
    machine.print_machine(args.device, note)
    tinynet.manual_seed(0)
    torch.manual_seed(0)
    print(f"AlexNet layers ({args.preset} preset), batch {args.batch}, float32{' (TF32)' * args.tf32}, {args.device}; "
          f"median of {args.runs} alternating runs after {args.warmup} warm-up")
    print("speed ratio = PyTorch time / tinynet time: >= 1 means tinynet is as fast as PyTorch\n")
    header = f"{'layer':15} {'tn fwd':>8} {'tn bwd':>8} {'pt fwd':>8} {'pt bwd':>8}   {'fwd':>5} {'bwd':>5} {'f+b':>5}"
    print(header + "\n" + f"{'':15} {'ms':>8} {'ms':>8} {'ms':>8} {'ms':>8}   {'speed ratio':>17}")
    totals = {"tn": [0, 0, 0], "torch": [0, 0, 0]}
    for index, spec in enumerate(layer_specs(args.preset)):
        if args.only and not any(spec[0].startswith(p) for p in args.only.split(",")):
            continue
        name, tn_side, torch_side = build(spec, args.batch, args.device, seed=index)
        result = measure(tn_side, torch_side, args.warmup, args.runs)
        for label in totals:
            totals[label] = [a + b for a, b in zip(totals[label], result[label])]
        print_row(name, result["tn"], result["torch"])
    print("-" * len(header))
    print_row("sum of layers", totals["tn"], totals["torch"])


def print_row(name, tn, pt):
    ratios = " ".join(f"{p / t:5.2f}" for t, p in zip(tn, pt))
    times = " ".join(f"{seconds * 1e3:8.2f}" for seconds in (tn[0], tn[1], pt[0], pt[1]))
    print(f"{name:15} {times}   {ratios}", flush=True)


if __name__ == "__main__":
    main()
