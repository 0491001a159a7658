"""The paper's two-GPU AlexNet (section 3.2) on two processes, checked against one process.

    mpiexec -n 2 python tutorials/distributed/paper_split.py [--batch 2] [--lrn own]

Both ranks build the same `paper` preset AlexNet (same seed) and keep half of every layer:
rank g takes rows g*n .. (g+1)*n - 1 of each weight (48 of conv1's 96 kernels, 128 of conv2's
256, ..., 2048 of fc6's and fc7's 4096 neurons, 500 of fc8's 1000 class scores). In the preset,
conv2, conv4 and conv5 have groups=2, and their group g is exactly rank g's half: it reads only
the maps of the same half of the layer before. Everywhere else the ranks exchange activations:

    conv1 -> conv2 -> all_gather -> conv3 -> conv4 -> conv5 -> all_gather -> fc6
          -> all_gather -> fc7 -> all_gather -> fc8 -> all_gather -> the 1000 scores

fc8 is split too, by classes, so that no rank holds a whole layer; its halves of the scores
are gathered at the end and every rank computes the loss.

LRN normalises over 5 neighbouring channels (section 3.3); the preset does it across all 96
(and 256) maps, so channels 46 and 47 look at 48 and 49, which the other rank holds. With
--lrn across (the default) each rank receives those 2 border channels from its neighbour
(halo_exchange) and the split equals the preset. With --lrn own each rank normalises over its
own maps only, as the paper's GPUs must have (they communicated only before conv3 and the
fully-connected layers), and the results differ from the preset's; the script prints by how much.

Dropout is off (eval mode; gradients still flow): each rank would draw its own masks. The
script exits 1 if, with --lrn across, the scores or any gradient differ from one process's
beyond float32 rounding.
"""

import argparse
import sys

import numpy as np

import alexnet
import tinynet
import tinynet.distributed as dist
import tinynet.functional as F
from tinynet import nn

# Largest difference allowed, relative to the largest value compared: float32 sums of
# thousands of terms in another order (the two halves of conv3's input gradient are added
# across ranks) agree to about 1e-6 of their size.
TOLERANCE = 1e-4


class GatherChannels(nn.Module):
    """Every rank's maps (or neurons) side by side, in rank order: where the GPUs talk."""

    def __init__(self, reader):
        super().__init__()
        self.reader = reader  # the layer that needs both halves

    def forward(self, x):
        self.values_sent = x[0].numel()  # per image: this rank's part goes to the other
        return dist.functional.all_gather(x, dim=1)

    def extra_repr(self):
        return f"for {self.reader}"


class LocalResponseNormAcrossRanks(nn.Module):
    """The preset's LRN on this rank's channels, with the neighbours' border channels in reach."""

    def __init__(self, lrn, reader):
        super().__init__()
        self.lrn, self.reader = lrn, reader
        self.reach = lrn.size // 2  # the window of channel c is c - 2 .. c + 2

    def forward(self, x):
        extended = dist.functional.halo_exchange(x, self.reach, dim=1)
        self.values_sent = 2 * self.reach * x[0, 0].numel()  # its first and last 2 channels go out
        start = self.reach if dist.rank() > 0 else 0  # rank 0 has no channels in front
        return self.lrn(extended)[:, start:start + x.shape[1]]

    def extra_repr(self):
        return f"for {self.reader}, exchanging {self.reach} border channels"


def half_of(layer, rank, world, in_features):
    """A new layer with rank's share of ``layer``'s kernels (or neurons): its weight rows."""
    rows = slice(rank * layer.weight.shape[0] // world, (rank + 1) * layer.weight.shape[0] // world)
    out = layer.weight.shape[0] // world
    if isinstance(layer, nn.Conv2d):
        half = nn.Conv2d(in_features, out, layer.kernel_size, layer.stride, layer.padding)
    else:
        half = nn.Linear(in_features, out)
    half.weight.data = layer.weight.data[rows].copy()
    half.bias.data = layer.bias.data[rows].copy()
    return half


def split_paper_alexnet(model, rank, world, lrn="across"):
    """This rank's half of the paper preset ``model``, as one Sequential with the exchanges."""
    layers, maps, convs = [], model.in_channels, 0  # maps: the channels the next conv reads
    for layer in model.features:
        if isinstance(layer, nn.Conv2d):
            convs += 1
            if layer.groups == 1 and convs > 1:  # conv3 reads the maps of both halves (conv1 the image)
                layers.append(GatherChannels(f"conv{convs}"))
                maps *= world
            layers.append(half_of(layer, rank, world, maps))
            maps = layer.out_channels // world
        elif isinstance(layer, nn.LocalResponseNorm) and lrn == "across":
            layers.append(LocalResponseNormAcrossRanks(layer, f"the LRN after conv{convs}"))
        else:  # ReLU, pooling and the paper's per-GPU LRN act on each rank's maps alone
            layers.append(layer)
    fc = 5
    for layer in model.classifier:
        if isinstance(layer, nn.Linear):  # every fully-connected layer reads both halves
            fc += 1
            layers += [GatherChannels(f"fc{fc}")] + ([nn.Flatten()] if fc == 6 else [])
            layers.append(half_of(layer, rank, world, layer.in_features))
        else:
            layers.append(layer)
    return nn.Sequential(*layers, GatherChannels("the loss"))  # fc8's halves of the class scores


def gradient_pairs(model, half):
    """(name, the single model's parameter, this rank's half of it), layer by layer."""
    learned = [m for m in (*model.features, *model.classifier) if isinstance(m, (nn.Conv2d, nn.Linear))]
    halves = [m for m in half if isinstance(m, (nn.Conv2d, nn.Linear))]
    names = ["conv1", "conv2", "conv3", "conv4", "conv5", "fc6", "fc7", "fc8"]
    for name, whole, part in zip(names, learned, halves):
        yield f"{name}.weight", whole.weight, part.weight
        yield f"{name}.bias", whole.bias, part.bias


def relative_difference(ours, reference):
    return float(np.abs(ours - reference).max() / np.abs(reference).max())


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--lrn", choices=("across", "own"), default="across")
    args = parser.parse_args()
    rank, world = dist.rank(), dist.world_size()
    if world != 2:
        dist.abort(2, f"the paper's split has two halves: run with mpiexec -n 2, not {world} process(es)")

    tinynet.manual_seed(0)  # the same weights on both ranks
    model = alexnet.AlexNet("paper", num_classes=1000, in_channels=3).eval()  # eval: dropout off
    half = split_paper_alexnet(model, rank, world, args.lrn).eval()
    rng = np.random.default_rng(0)  # the same batch on both ranks: conv1 reads the whole image on each
    images = tinynet.Tensor(rng.standard_normal((args.batch, 3, 227, 227)).astype(np.float32))
    labels = rng.integers(0, 1000, args.batch)

    scores = half(images)
    # Both ranks compute the same loss; they differentiate the sum of their losses, so each
    # takes half of it (see tinynet/distributed/functional.py).
    (F.cross_entropy(scores, labels) / world).backward()
    rows = [(name, part.grad) for name, _, part in gradient_pairs(model, half)]
    assembled = []
    for name, grad in rows:  # the halves of every gradient, put back together on every rank
        parts = []
        dist.all_gather(parts, np.ascontiguousarray(grad))
        assembled.append((name, np.concatenate(parts, axis=0)))
    if rank != 0:
        return 0

    reference = model(images)
    F.cross_entropy(reference, labels).backward()
    print(f"rank 0 of {world}: half of every layer, {sum(p.numel() for p in half.parameters()):,} of the "
          f"{sum(p.numel() for p in model.parameters()):,} parameters; LRN {args.lrn}")
    print("\nwhat each rank sends per image, forward (backward returns a gradient for each value):")
    sent = [layer for layer in half if hasattr(layer, "values_sent")]
    for layer in sent:
        print(f"  for {layer.reader:22}{layer.values_sent:>8,} values")
    values = sum(layer.values_sent for layer in sent)
    print(f"  in all {values:,} values, {values * scores.data.itemsize / 1e3:.0f} KB per image")
    differences = [("class scores", relative_difference(scores.numpy(), reference.numpy()))]
    differences += [(name, relative_difference(grad, whole.grad))
                    for (name, grad), (_, whole, _) in zip(assembled, gradient_pairs(model, half))]
    print("\nlargest difference from one process, relative to the largest value:")
    for name, difference in differences:
        print(f"  {name:14}{difference:.1e}")
    worst = max(difference for _, difference in differences)
    print(f"worst: {worst:.1e}")
    if args.lrn == "across" and not worst < TOLERANCE:
        print(f"FAILED: the split differs from one process by more than {TOLERANCE}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
