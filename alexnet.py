"""AlexNet (Krizhevsky, Sutskever and Hinton, NIPS 2012) built from tinynet layers.

Read this file top to bottom next to the paper: section 3.5 and Figure 2 give the
architecture, 3.3 the response normalisation, 3.4 the overlapping pooling, 4.2 the
dropout and 5 the initialisation.

Presets:
    paper        227x227 input, 96-256-384-384-256 filters, conv2/4/5 split in two
                 groups as on the paper's two GPUs, LRN, dropout on the outputs of
                 fc6 and fc7, the paper's N(0, 0.01) init.
    seed         the same layers without the groups and without LRN.
    torchvision  64-192-384-256-256 filters, padding 2, 224 input, parameter names
                 equal to torchvision.models.alexnet so its weights load as they are,
                 and its initialisation (PyTorch's defaults; folder runs start from He
                 weights unless given --init pytorch).
    small        the same eight layers (5 conv, 3 FC, LRN, overlapping pooling,
                 dropout) scaled to 28x28 input (Fashion-MNIST, or 28x28 crops of
                 32x32 images as the paper took 227 crops of 256), for CPUs and the
                 default run.
"""

import argparse
import contextlib
import hashlib
import math
import signal
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

import tinynet
import tinynet.distributed as distributed
from tinynet import ShapeError, backend, nn, optim, viz
from tinynet.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from tinynet.data import BadImageError, imagenet_classes, imagenet_synsets, read_rgb, transforms
from tinynet.experiment import (
    EMBEDDED,
    CheckpointMismatchError,
    batch_preparer,
    eval_transform,
    image_data,
    model_state,
    read_training_meta,
    read_training_state,
    saved_norms,
)
from tinynet.onnx_export import OPSET as ONNX_OPSET
from tinynet.onnx_export import export_onnx
from tinynet.run_folder import RunFolder, RunFolderError
from tinynet.torch_weights import load_state_dict
from tinynet.train import NonFiniteError, evaluate
from tinynet.training_run import SaveError, fit
from tinynet.windows import output_size


@dataclass(frozen=True)
class ConvSpec:
    out_channels: int
    kernel: int
    stride: int = 1
    padding: int = 0
    groups: int = 1
    lrn: bool = False  # local response normalisation after the ReLU (section 3.3)
    pool: bool = False  # 3x3 stride 2 max pooling after it (section 3.4)
    bias: float = 0.0  # the paper's initial bias (section 5)


@dataclass(frozen=True)
class Preset:
    input_size: int
    convs: tuple
    hidden: int  # width of the two hidden fully-connected layers
    init: str  # the preset's own weights at the start: one of INITS
    dropout: float = 0.5
    # "outputs" of fc6 and fc7, as section 4.2 says; torchvision drops their "inputs",
    # and its parameter names (classifier.1, .4, .6) follow from that order.
    dropout_on: str = "outputs"
    hidden_bias: float = 0.0


PRESETS = {
    "paper": Preset(
        input_size=227,
        convs=(
            ConvSpec(96, 11, stride=4, lrn=True, pool=True),
            ConvSpec(256, 5, padding=2, groups=2, lrn=True, pool=True, bias=1.0),
            ConvSpec(384, 3, padding=1),
            ConvSpec(384, 3, padding=1, groups=2, bias=1.0),
            ConvSpec(256, 3, padding=1, groups=2, pool=True, bias=1.0),
        ),
        hidden=4096,
        init="paper",
        hidden_bias=1.0,
    ),
    "seed": Preset(
        input_size=227,
        convs=(
            ConvSpec(96, 11, stride=4, pool=True),
            ConvSpec(256, 5, padding=2, pool=True, bias=1.0),
            ConvSpec(384, 3, padding=1),
            ConvSpec(384, 3, padding=1, bias=1.0),
            ConvSpec(256, 3, padding=1, pool=True, bias=1.0),
        ),
        hidden=4096,
        init="paper",
        hidden_bias=1.0,
    ),
    "torchvision": Preset(
        input_size=224,
        convs=(
            ConvSpec(64, 11, stride=4, padding=2, pool=True),
            ConvSpec(192, 5, padding=2, pool=True),
            ConvSpec(384, 3, padding=1),
            ConvSpec(256, 3, padding=1),
            ConvSpec(256, 3, padding=1, pool=True),
        ),
        hidden=4096,
        init="pytorch",
        dropout_on="inputs",
    ),
    # 28x28 input ends as 2x2 maps after the three poolings; He initialisation trains
    # a net this small in a few epochs where N(0, 0.01) needs many more.
    "small": Preset(
        input_size=28,
        convs=(
            ConvSpec(32, 5, padding=2, lrn=True, pool=True),
            ConvSpec(64, 3, padding=1, groups=2, lrn=True, pool=True),
            ConvSpec(96, 3, padding=1),
            ConvSpec(96, 3, padding=1, groups=2),
            ConvSpec(64, 3, padding=1, groups=2, pool=True),
        ),
        hidden=256,
        init="kaiming",
        # With 256 rather than 4096 hidden units, dropping half of them regularises
        # far harder than in the paper and slows a five-minute run by two points.
        dropout=0.25,
        dropout_on="inputs",  # the placement its default run was tuned with
    ),
}

# How a model's weights start (section 5 of the paper, and what learns instead):
#   paper    N(0, 0.01) weights; biases 1 in conv2, conv4, conv5, fc6, fc7, 0 elsewhere.
#   kaiming  He-normal weights (std sqrt(2 / fan_in)), zero biases, fc8 N(0, 0.01).
#   pytorch  torchvision's: PyTorch's default kaiming_uniform_(a=sqrt(5)) weights and
#            U(-1/sqrt(fan_in), 1/sqrt(fan_in)) biases.
INITS = ("paper", "kaiming", "pytorch")


def feature_size(preset, input_size):
    """Side of the last conv block's output for a square input, or 0 if it vanishes."""
    size = input_size
    for spec in preset.convs:
        size = output_size(size, spec.kernel, spec.stride, spec.padding)
        if spec.pool:
            size = output_size(size, kernel=3, stride=2)
        if size <= 0:
            return 0
    return size


def input_size_advice(preset_name, input_size):
    """Why an input size does not fit a preset, in words (the 224 vs 227 puzzle)."""
    preset = PRESETS[preset_name]
    expected, got = feature_size(preset, preset.input_size), feature_size(preset, input_size)
    text = (
        f"the {preset_name} preset expects {preset.input_size}x{preset.input_size} input: its conv layers "
        f"then end in {expected}x{expected} maps, which the first fully-connected layer is sized for; "
        f"{input_size}x{input_size} input ends in {got}x{got}."
    )
    if preset.convs[0].kernel == 11 and preset.convs[0].padding == 0 and input_size == 224:
        text += (
            " The paper says 224x224, but conv1 (11x11, stride 4, no padding) needs (227 - 11) / 4 + 1 = 55"
            " for the 55x55 maps of its Figure 2; from 224 it gives 54x54 and the net ends in 5x5, not 6x6."
            " Use --input-size 227 (random 227 crops of 256x256 images)."
        )
    return text


class AlexNet(nn.Module):
    """features (conv blocks) -> flatten -> classifier (three fully-connected layers)."""

    def __init__(self, preset="small", num_classes=1000, in_channels=3, init=None):
        super().__init__()
        if preset not in PRESETS:
            raise ValueError(f"unknown preset {preset!r}: expected one of {sorted(PRESETS)}")
        if init not in (None, *INITS):
            raise ValueError(f"unknown init {init!r}: expected one of {INITS}")
        self.preset_name, self.preset = preset, PRESETS[preset]
        self.num_classes, self.in_channels = num_classes, in_channels
        self.features = nn.Sequential(*conv_layers(self.preset, in_channels))
        side = feature_size(self.preset, self.preset.input_size)
        self.classifier = nn.Sequential(*classifier_layers(self.preset, self.preset.convs[-1].out_channels * side**2,
                                                           num_classes))
        initialise(self, init or self.preset.init)

    def extra_repr(self):
        return f"preset={self.preset_name!r}, num_classes={self.num_classes}, in_channels={self.in_channels}"

    def forward(self, x):
        features = self.features(x)
        if features.shape[1:] != self._expected_features():
            raise ShapeError(input_size_advice(self.preset_name, x.shape[-1]))
        return self.classifier(features.flatten(1))

    def _expected_features(self):
        side = feature_size(self.preset, self.preset.input_size)
        return (self.preset.convs[-1].out_channels, side, side)


def conv_layers(preset, in_channels):
    """Section 3.5: each conv is followed by a ReLU (3.1), some by LRN (3.3) and pooling (3.4)."""
    layers = []
    for spec in preset.convs:
        layers += [nn.Conv2d(in_channels, spec.out_channels, spec.kernel, spec.stride, spec.padding, spec.groups),
                   nn.ReLU()]
        if spec.lrn:
            layers.append(nn.LocalResponseNorm(size=5, alpha=1e-4, beta=0.75, k=2.0))
        if spec.pool:
            layers.append(nn.MaxPool2d(kernel_size=3, stride=2))
        in_channels = spec.out_channels
    return layers


def classifier_layers(preset, in_features, num_classes):
    """Two hidden layers with dropout (section 4.2), then the class scores. Dropout is
    inverted: kept units are scaled by 1/(1-p) in training, where the paper multiplied
    every output by 1-p (0.5) at test time; the expected activations are the same."""
    fc6, fc7, fc8 = (nn.Linear(in_features, preset.hidden), nn.Linear(preset.hidden, preset.hidden),
                     nn.Linear(preset.hidden, num_classes))
    if preset.dropout_on == "inputs":
        return [nn.Dropout(preset.dropout), fc6, nn.ReLU(), nn.Dropout(preset.dropout), fc7, nn.ReLU(), fc8]
    return [fc6, nn.ReLU(), nn.Dropout(preset.dropout), fc7, nn.ReLU(), nn.Dropout(preset.dropout), fc8]


def initialise(model, init):
    """Set every conv and linear layer's starting weights by the scheme ``init`` (see INITS)."""
    convs = [m for m in model.features if isinstance(m, nn.Conv2d)]
    linears = [m for m in model.classifier if isinstance(m, nn.Linear)]
    if init == "paper":
        # Section 5: biases of 1 "accelerate the early stages of learning by providing
        # the ReLUs with positive inputs".
        biases = [spec.bias for spec in model.preset.convs] + [model.preset.hidden_bias] * 2 + [0.0]
        for layer, bias in zip(convs + linears, biases):
            nn.init.normal_(layer.weight, 0.0, 0.01)
            nn.init.constant_(layer.bias, bias)
        return
    if init == "pytorch":
        for layer in convs + linears:
            nn.init.kaiming_uniform_(layer.weight, a=math.sqrt(5))
            bound = 1 / math.sqrt(math.prod(layer.weight.shape[1:]))
            nn.init.uniform_(layer.bias, -bound, bound)
        return
    # kaiming: the layers already start He-normal with zero biases. N(0, 0.01) class
    # scores make every class start equally likely (loss ln(classes)) instead of
    # confidently wrong, which costs the first epoch.
    nn.init.normal_(linears[-1].weight, 0.0, 0.01)


# -- the command line ------------------------------------------------------------------
#
#   python alexnet.py                       train the small preset on the embedded data
#   python alexnet.py train --data DIR --preset paper --device gpu
#   python alexnet.py eval|predict|filters|features --checkpoint runs/NAME/checkpoint.npz
#   python alexnet.py summary --preset paper --input-size 227
#   python alexnet.py import-torchvision alexnet-owt-7be5be79.pth --out imagenet.npz
#   python alexnet.py export-onnx --checkpoint runs/NAME/checkpoint.npz --out alexnet.onnx

# The default run: the small preset on the embedded Fashion-MNIST subset, sized to
# finish in under five minutes on two CPU cores. Flags override each value.
DEFAULT_RUN = dict(preset="small", epochs=6, batch_size=64, lr=0.02, schedule="step", lr_step=4, pca=False,
                   init=None, warmup=0)
# Section 5 of the paper, literally: batch 128, momentum 0.9, weight decay 5e-4, N(0, 0.01)
# weights, biases of 1, lr 0.01 divided by 10 when the validation error stops improving;
# section 4.1: PCA colour augmentation. On a 10-class folder it diverges in its first steps
# and ends at chance (README, "Training on an image folder"), so it is one flag away
# (--recipe paper) rather than the default.
PAPER_RECIPE = dict(preset="paper", epochs=90, batch_size=128, lr=0.01, schedule="plateau", lr_step=30, pca=True,
                    init="paper", warmup=0)
# The default for folders: the paper's recipe with two changes, measured to learn from the
# first epoch: He initialisation (He et al. 2015) and a linear warm-up of the learning rate
# over the first steps (Goyal et al. 2017).
FOLDER_RECIPE = PAPER_RECIPE | dict(init="kaiming", warmup=100)
# "default" is the default run's, which --recipe does not offer: it is the embedded data's.
RECIPES = {"default": DEFAULT_RUN, "folder": FOLDER_RECIPE, "paper": PAPER_RECIPE}
COMMON = dict(momentum=0.9, weight_decay=5e-4, update="paper", patience=2, seed=0, skip_bad=False, record_norms=0)

# A resumed run keeps the settings it started with, which its checkpoint records. Those
# that decide its model or its batches cannot change without breaking the exact resume,
# so a flag that asks for another value is refused; the optimizer's and the schedule's
# come back with their saved state, so such flags are ignored, and said to be. The data
# may move (--data names its new place), but its training images must stay the same:
# their fingerprint is compared once the folder is read.
FIXED_ON_RESUME = ("recipe", "preset", "input_size", "batch_size", "limit", "seed", "pca", "init")
RESTORED_ON_RESUME = ("lr", "momentum", "weight_decay", "update", "schedule", "patience", "lr_step", "warmup",
                      "record_norms")
SETTINGS = ("data", "skip_bad") + FIXED_ON_RESUME + RESTORED_ON_RESUME + ("epochs",)


class UsageError(Exception):
    """Bad input from the command line: reported in one line with exit status 2."""


@contextlib.contextmanager
def reported_as_usage_errors():
    """Errors that bad arguments cause (missing folders, bad images, no GPU) become UsageError."""
    try:
        yield
    except (OSError, BadImageError, ValueError, RuntimeError, ImportError) as error:
        raise UsageError(str(error)) from error


def train_command(args):
    if distributed.rank() > 0:  # under mpiexec: rank 0 holds the run folder, the others train beside it
        return train_in(None, args)
    run_dir = Path(args.run_dir or f"runs/{Path(str(args.data or EMBEDDED)).name}-"
                                   f"{args.preset or RECIPES[args.recipe or recipe_name(args.data)]['preset']}")
    if args.resume and not (run_dir / "checkpoint.npz").is_file():
        raise UsageError(f"no checkpoint at {run_dir / 'checkpoint.npz'} to resume: check --run-dir, or start the "
                         "run without --resume")
    try:
        with RunFolder(run_dir) as run:
            return train_in(run, args)
    except RunFolderError as error:  # not writable, in use by another run, or too full
        raise UsageError(str(error)) from error


def train_in(run, args):
    """The train command, holding the run folder ``run``; None on the ranks after rank 0 of an
    mpiexec run, which print and write nothing."""
    if run is not None and run.removed_temporaries:
        print(f"removed {len(run.removed_temporaries)} unfinished writes left in {run.path} by an interrupted run",
              file=sys.stderr)
    if not settled_on_every_rank(run, args):
        return 0
    rank, world_size = distributed.rank(), distributed.world_size()
    if args.batch_size % world_size:
        raise UsageError(f"--batch-size {args.batch_size} does not divide among {world_size} processes: the global "
                         f"batch is shared out equally; give a multiple of {world_size}")
    preset = PRESETS[args.preset]
    args.input_size = args.input_size or preset.input_size
    if feature_size(preset, args.input_size) != feature_size(preset, preset.input_size):
        raise UsageError(input_size_advice(args.preset, args.input_size))
    with reported_as_usage_errors():
        backend.check_device(args.device)
        data = image_data(args.data, args.input_size, args.batch_size, args.seed, args.workers,
                          skip_bad=args.skip_bad, limit=args.limit, progress=not args.quiet and run is not None,
                          statistics=args.statistics, shard=(rank, world_size))
    if args.resume and data.fingerprint != args.fingerprint:
        this_run = f"the run in {run.path}" if run is not None else "this run"  # ranks > 0 hold no folder
        raise UsageError(f"the training images in {args.data} are not those {this_run} started with "
                         "(files added, removed or renamed): resuming would change its batches; start a new run "
                         "with another --run-dir")
    if data.skipped and run is not None:
        count = f"{len(data.skipped)} unreadable image{'s' * (len(data.skipped) > 1)}"
        print(f"--skip-bad: left out {count}, such as {data.skipped[0]}", file=sys.stderr)
    if len(data.train) == 0:
        raise UsageError(f"{len(data.train.dataset)} training images make no full batch of {args.batch_size}")
    config = dict(num_classes=len(data.classes), in_channels=data.in_channels, classes=data.classes,
                  mean=list(data.mean), std=list(data.std), pca_basis=data.pca, fingerprint=data.fingerprint,
                  world_size=world_size) | {key: getattr(args, key) for key in SETTINGS}
    tinynet.manual_seed(args.seed)
    model = AlexNet(args.preset, len(data.classes), data.in_channels, args.init).to(args.device)
    if world_size > 1:
        model = distributed.DistributedDataParallel(model)  # rank 0's weights everywhere; gradients averaged
        tinynet.manual_seed(rank_seed(args.seed, rank))  # each rank its own dropout masks, seeded by (seed, rank)
    optimizer = optim.SGD(model.parameters(), lr=args.lr, momentum=args.momentum, weight_decay=args.weight_decay,
                          update=args.update)
    scheduler = {"plateau": lambda: optim.ReduceLROnPlateau(optimizer, patience=args.patience),
                 "step": lambda: optim.StepLR(optimizer, args.lr_step), "none": lambda: None}[args.schedule]()
    # Warm-up from lr / warmup at the first step to lr at step `warmup`, one step at a time.
    warmup = optim.LinearLR(optimizer, 1 / args.warmup, total_iters=args.warmup) if args.warmup else None
    if run is not None:
        run.check_free_space(checkpoint_bytes(model))
        processes = f" in {world_size} processes" if world_size > 1 else ""
        print(f"training the {args.preset} AlexNet ({sum(p.numel() for p in model.parameters()):,} parameters) on "
              f"{args.data}: {len(data.train.dataset):,} training and {data.val_size:,} validation images, "
              f"{len(data.classes)} classes, {args.epochs} epochs on {args.device}{processes}; writing to {run.path}/",
              flush=True)
    prepare_train = batch_preparer(data.mean, data.std, args.device, data.pca if args.pca else None, args.seed, rank)
    prepare_val = batch_preparer(data.mean, data.std, args.device)
    try:
        status = fit(model, data, optimizer, scheduler, run, config, args.epochs, prepare_train, prepare_val,
                     resume=args.resume, progress=not args.quiet and run is not None, warmup=warmup,
                     record_norms=args.record_norms)
    except (CheckpointError, CheckpointMismatchError) as error:
        raise UsageError(str(error)) from error
    except (NonFiniteError, SaveError) as error:
        if run is not None:  # every rank stops at the same NaN (the loss is summed over them); rank 0 says so
            print(f"training stopped: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # a second Ctrl-C
        if run is not None:
            kept = f"{run.checkpoint} is as the last save left it" if run.checkpoint.exists() else "nothing was saved"
            print(f"\ninterrupted at once: {kept}", file=sys.stderr)
        return 130
    args.stopped_together = True  # fit ended every rank at the same step (done, or an agreed stop)
    if run is None:
        return 0 if status == "done" else 128 + getattr(signal, status)
    if status != "done":
        print(f"\nstopped by {status}: the state is saved in {run.checkpoint}; add --resume to continue",
              file=sys.stderr)
        return 128 + getattr(signal, status)
    written = "metrics.csv, curves.png, norms.csv and norms.png" if args.record_norms else "metrics.csv and curves.png"
    print(f"done: checkpoint, {written} in {run.path}/")
    return 0


def rank_seed(seed, rank):
    """The seed of rank ``rank``'s generator (dropout) in a run of ``seed``."""
    return int(np.random.SeedSequence([seed, rank]).generate_state(1)[0])


def settled_on_every_rank(run, args):
    """settle_settings on rank 0, which alone reads the run folder; under mpiexec the other
    ranks (``run`` None) take the flags it settled."""
    if distributed.world_size() == 1:
        return settle_settings(run, args)
    mine = [settle_settings(run, args), {k: v for k, v in vars(args).items() if k != "run"}] if run else [None, None]
    go_on, settled = distributed.broadcast_object_list(mine)
    vars(args).update(settled)
    return go_on


def settle_settings(run, args):
    """Fill in the flags left out, from the run's checkpoint on --resume, then from the
    recipe. Returns False if a resumed run has already trained the epochs asked for."""
    if args.resume:
        with reported_as_usage_errors():
            meta = read_training_meta(run.checkpoint)
        asked = args.epochs
        keep_saved_settings(args, meta, run.checkpoint)
        finished = meta["progress"]["epoch"]
        if args.epochs <= finished:
            with reported_as_usage_errors():  # a kill after the last save may have left them behind
                # The weights are read only where the recorded norms, kept beside them, are needed.
                norms = saved_norms(*read_training_state(run.checkpoint)) if "norm_columns" in meta else []
                run.write_results(meta["history"], norms)
            wanted = f"--epochs {asked} asks for no more" if asked else f"it was to train {args.epochs}"
            print(f"the run in {run.path} has finished {finished} epochs, and {wanted}; its metrics.csv and "
                  f"curves.png are up to date. Give --epochs above {finished} to train on.")
            return False
    elif run.holds_results():
        raise UsageError(f"{run.path} already holds a run: add --resume to continue it, or choose another --run-dir")
    args.data = normalised_data(args.data or EMBEDDED)
    args.recipe = args.recipe or recipe_name(args.data)
    for key, value in (COMMON | RECIPES[args.recipe]).items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    return True


def recipe_name(data):
    """The recipe a run takes unless --recipe names one: the default run's on the
    embedded data, the folder recipe on a folder."""
    return "default" if data in (None, EMBEDDED) else "folder"


def normalised_data(data):
    """The embedded set's name, or a folder's absolute path (so a run resumes from anywhere)."""
    return EMBEDDED if data == EMBEDDED else str(Path(data).resolve())


def keep_saved_settings(args, meta, checkpoint):
    """Take the run's settings from its checkpoint, refusing flags that would change its
    batches or model and naming those that its saved state overrides."""
    saved = meta["config"]
    missing = [key for key in SETTINGS + ("fingerprint",) if key not in saved]
    if missing:
        raise UsageError(f"{checkpoint} does not record the settings of an alexnet.py run ({', '.join(missing)}), "
                         "so it cannot be resumed exactly: start a new run")
    trained_on = saved.get("world_size", 1)  # each rank's share of the batches and its random draws
    if trained_on != distributed.world_size():
        how = f"mpiexec -n {trained_on} python alexnet.py train ..." if trained_on > 1 else "one process (no mpiexec)"
        raise UsageError(f"the run in {checkpoint.parent} trained in {trained_on} process(es), this is "
                         f"{distributed.world_size()}: a resumed run continues exactly only as it started; use {how}")
    ignored = []
    for key in FIXED_ON_RESUME + RESTORED_ON_RESUME:
        given, kept = getattr(args, key), saved[key]
        if given is not None and given != kept:
            flag = f"--{key.replace('_', '-')}"
            if key in FIXED_ON_RESUME:
                raise UsageError(f"{flag} {given} would change the run in {checkpoint.parent}, which has {kept}: a "
                                 f"resumed run keeps its settings; drop {flag}, or start a new run with another "
                                 "--run-dir")
            ignored.append(f"{flag} {given} (the run's is {kept})")
        setattr(args, key, kept)
    if ignored:
        print(f"resuming: ignoring {', '.join(ignored)}: the optimizer and the schedule continue from their saved "
              "state", file=sys.stderr)
    args.data = args.data or saved["data"]
    args.epochs = args.epochs or saved["epochs"]
    args.skip_bad = saved["skip_bad"] if args.skip_bad is None else args.skip_bad
    args.fingerprint = saved["fingerprint"]
    if saved.get("pca_basis"):  # a folder's statistics, kept as the run started with them
        args.statistics = transforms.RGBStatistics(saved["mean"], saved["std"], *saved["pca_basis"])


def checkpoint_bytes(model):
    """About the size of a checkpoint: float32 weights and as many momentum values, and a margin."""
    return int(sum(p.numel() for p in model.parameters()) * 4 * 2 * 1.05) + (1 << 20)


# What eval, predict, filters and features read from a checkpoint's config.
MODEL_KEYS = ("preset", "num_classes", "in_channels", "input_size", "classes", "mean", "std", "data")


def load_model(args):
    """The model and config of a checkpoint (of a run, or imported), on the requested device."""
    with reported_as_usage_errors():
        backend.check_device(args.device)
        arrays, meta = load_checkpoint(args.checkpoint)
        config = meta.get("config")
        missing = [key for key in MODEL_KEYS if key not in (config or {})]
        if missing:
            raise ValueError(f"{args.checkpoint} is not a checkpoint of alexnet.py: its config has no "
                             f"{', '.join(missing)}")
        model = AlexNet(config["preset"], config["num_classes"], config["in_channels"])
        try:
            model.load_state_dict(with_current_names(model, model_state(arrays)))
        except RuntimeError as error:  # names the missing or misshapen arrays
            raise CheckpointError(f"{args.checkpoint}: {error}") from error
    return model.to(args.device).eval(), config


# Checkpoints of the paper and seed presets written before they dropped the outputs of fc6
# and fc7 (section 4.2) name those layers as torchvision does: the same weights, one place on.
OLD_FC_NAMES = {"classifier.1": "classifier.0", "classifier.4": "classifier.3"}


def with_current_names(model, state):
    """A checkpoint's weights under the names ``model`` has, also from an older layout."""
    if model.preset.dropout_on != "outputs" or "classifier.1.weight" not in state:
        return state
    renamed = {}
    for name, value in state.items():
        layer, _, kind = name.rpartition(".")
        renamed[f"{OLD_FC_NAMES.get(layer, layer)}.{kind}"] = value
    return renamed


def eval_command(args):
    model, config = load_model(args)
    crops = 10 if args.ten_crop else 1
    source = args.data or config["data"]
    if source is None:
        raise UsageError(f"{args.checkpoint} was not trained on a folder of its own: give --data FOLDER with a val/ "
                         "folder of its classes")
    skip_bad = config.get("skip_bad", False) if args.skip_bad is None else args.skip_bad
    with reported_as_usage_errors():
        data = image_data(source, config["input_size"], args.batch_size, val_crops=crops, skip_bad=skip_bad,
                          val_only=True, classes=config.get("class_folders", config["classes"]),
                          progress=not args.quiet)
    result = evaluate(model, data.val, batch_preparer(config["mean"], config["std"], args.device), crops=crops,
                      progress=not args.quiet)
    view = "ten-crop" if crops == 10 else "centre crop"
    print(f"{len(data.val.dataset)} images ({view}): top-1 {result['top1']:.2%}, top-5 {result['top5']:.2%}, "
          f"loss {result['loss']:.4f}")
    return 0


def load_images(paths, config):
    """Images as validation saw them: grey 28x28 for the embedded set, the centre
    crop of the rescaled image for image folders."""
    size = config["input_size"]
    if config["in_channels"] == 1:
        pipeline = transforms.Compose([lambda image, rng: image.convert("L").resize((size, size)), transforms.ToCHW()])
    else:
        pipeline = eval_transform(size)
    with reported_as_usage_errors():
        images = [pipeline(read_rgb(path), None) for path in paths]
    batch = transforms.Normalize(config["mean"], config["std"])(np_stack(images))
    return tinynet.Tensor(batch)


def np_stack(images):
    return backend.get_xp("cpu").stack([image.reshape(image.shape[-3:]) for image in images])


def predict_command(args):
    model, config = load_model(args)
    x = load_images(args.images, config).to(args.device)
    with tinynet.no_grad():
        probs = tinynet.functional.softmax(model(x), dim=1).numpy()
    for path, row in zip(args.images, probs):
        best = row.argsort()[::-1][: args.top]
        print(f"{path}: " + ", ".join(f"{config['classes'][i]} {row[i]:.1%}" for i in best))
    return 0


def filters_command(args):
    model, _ = load_model(args)
    with reported_as_usage_errors():
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        viz.plot_filters(model.features[0].weight.numpy(), path=args.out)
    print(f"conv1's {model.features[0].out_channels} filters drawn in {args.out} (compare Figure 3 of the paper)")
    return 0


def features_command(args):
    model, config = load_model(args)
    x = load_images([args.image], config).to(args.device)
    wanted = set(args.layers.split(","))
    out_dir = Path(args.out_dir)
    with reported_as_usage_errors():
        out_dir.mkdir(parents=True, exist_ok=True)
    with tinynet.no_grad(), reported_as_usage_errors():
        for index, layer in enumerate(model.features):
            x = layer(x)
            name = f"features.{index}"
            if name in wanted or type(layer).__name__.lower() in wanted:
                path = out_dir / f"{name}-{type(layer).__name__}.png"
                viz.plot_feature_maps(x.numpy()[0], path=path, title=f"{name} ({layer.describe()})")
                print(f"{name}: {x.shape[1]} maps of {x.shape[2]}x{x.shape[3]} in {path}")
    return 0


def import_torchvision_command(args):
    """torchvision's AlexNet weights (alexnet-owt-7be5be79.pth) as a checkpoint of the
    torchvision preset, with the ImageNet class names and the preprocessing they expect:
    shorter side resized to 256, the central 224x224, ImageNet's mean and std."""
    model = AlexNet("torchvision", num_classes=1000, in_channels=3)
    with reported_as_usage_errors():
        state = load_state_dict(args.weights)
        # Refuses missing, unexpected and misshapen names, each by name; with every name and
        # shape as the preset's, the file holds its 61,100,840 parameters, as printed below.
        model.load_state_dict(state)
    count = sum(array.size for array in state.values())
    # Eval matches a folder's class subfolders to class_folders: ImageNet names them by WordNet id.
    config = dict(preset="torchvision", num_classes=1000, in_channels=3, input_size=224, classes=imagenet_classes(),
                  class_folders=imagenet_synsets(), mean=list(transforms.IMAGENET_MEAN),
                  std=list(transforms.IMAGENET_STD), data=None)
    source = dict(file=Path(args.weights).name, sha256=file_sha256(args.weights))
    with reported_as_usage_errors():
        save_checkpoint(args.out, {f"model.{name}": array for name, array in model.state_dict().items()},
                        {"config": config, "source": source})
    print(f"{args.weights}: {count:,} parameters of torchvision's AlexNet written "
          f"to {args.out} (sha256 {source['sha256'][:8]}); eval, predict, filters and features take it")
    return 0


def file_sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def export_onnx_command(args):
    model, config = load_model(args)
    side = config["input_size"]
    with reported_as_usage_errors():
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        export_onnx([*model.features, nn.Flatten(), *model.classifier], (config["in_channels"], side, side), args.out)
    print(f"{args.out}: the {config['preset']} AlexNet as ONNX (opset {ONNX_OPSET}), input 'images' of shape "
          f"(batch, {config['in_channels']}, {side}, {side}), output 'logits'; it opens in Netron")
    return 0


def summary_command(args):
    """A table of every layer: output shape, parameters, multiply-adds."""
    preset = PRESETS[args.preset]
    size = args.input_size or preset.input_size
    in_channels = args.in_channels or (1 if args.preset == "small" else 3)
    model = AlexNet(args.preset, args.num_classes, in_channels)
    x = tinynet.Tensor(backend.get_xp("cpu").zeros((1, in_channels, size, size), dtype="float32"))
    print(f"{'layer':<16}{'type':<20}{'output':>18}{'parameters':>14}{'mult-adds':>16}")
    totals = [0, 0]
    with tinynet.no_grad():
        for prefix, block in (("features", model.features), ("classifier", model.classifier)):
            if prefix == "classifier":
                if x.shape[1:] != model._expected_features():
                    print(f"\n{input_size_advice(args.preset, size)}")
                    return 2
                x = x.flatten(1)
            for index, layer in enumerate(block):
                x = layer(x)
                params, madds = layer_cost(layer, x)
                totals = [totals[0] + params, totals[1] + madds]
                print(f"{prefix}.{index:<{15 - len(prefix)}}{type(layer).__name__:<20}{str(tuple(x.shape[1:])):>18}"
                      f"{params:>14,}{madds:>16,}")
    print(f"{'total':<54}{totals[0]:>14,}{totals[1]:>16,}")
    return 0


def layer_cost(layer, output):
    """(parameters, multiply-adds per image) of one layer."""
    params = sum(p.numel() for p in layer.parameters())
    if isinstance(layer, nn.Conv2d):
        per_output = layer.in_channels // layer.groups * layer.kernel_size[0] * layer.kernel_size[1]
        return params, output.numel() * per_output
    if isinstance(layer, nn.Linear):
        return params, layer.in_features * layer.out_features
    return params, 0


def bounded(kind, low, strict):
    """An argparse type: a finite number of ``kind`` at least ``low`` (above it if ``strict``)."""
    wanted = f"{'a whole number' if kind is int else 'a number'} {'above' if strict else 'at least'} {low}"

    def parse(text):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {wanted}, got {text!r}") from None
        if not math.isfinite(value) or value < low or (strict and value == low):
            raise argparse.ArgumentTypeError(f"expected {wanted}, got {text}")
        return value

    return parse


positive_int, natural, positive, non_negative = (bounded(int, 0, True), bounded(int, 0, False),
                                                 bounded(float, 0, True), bounded(float, 0, False))


class OneLineParser(argparse.ArgumentParser):
    """Reports a bad argument in one line, with exit status 2; the usage is a -h away."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} -h)\n")


def parse_args(argv):
    parser = OneLineParser(prog="alexnet.py", description="AlexNet from tinynet layers: train, evaluate, "
                                     "predict, look inside. With no command, trains on the embedded Fashion-MNIST.")
    commands = parser.add_subparsers(dest="command")
    train = commands.add_parser("train", help="train a preset on the embedded data or an image folder")
    train.add_argument("--data", help="folder with train/ and val/ class folders, "
                       f"or {EMBEDDED} (default: the embedded subset)")
    train.add_argument("--recipe", choices=("folder", "paper"), help="folder (default on a folder): the paper's recipe "
                       "with He initialisation and a warm-up, which learns; paper: the paper's literal recipe")
    train.add_argument("--preset", choices=sorted(PRESETS), help="default: small on the embedded data, else paper")
    train.add_argument("--init", choices=INITS, help="starting weights: paper N(0, 0.01) and biases of 1, kaiming "
                       "(He normal), pytorch (torchvision's); default: the recipe's, else the preset's")
    train.add_argument("--input-size", type=positive_int, help="crop size; default: the preset's (227 paper/seed, 224 "
                       "torchvision, 28 small)")
    train.add_argument("--epochs", type=positive_int, help="epochs in all (a resumed run trains up to this)")
    train.add_argument("--batch-size", type=positive_int)
    train.add_argument("--lr", type=positive, help="learning rate (paper: 0.01)")
    train.add_argument("--momentum", type=non_negative, help="default 0.9")
    train.add_argument("--weight-decay", type=non_negative, help="default 5e-4")
    train.add_argument("--update", choices=optim.UPDATE_RULES,
                       help="momentum update: the paper's v <- 0.9v - 0.0005 lr w - lr g (default), or PyTorch's")
    train.add_argument("--schedule", choices=("plateau", "step", "none"),
                       help="plateau: lr/10 when validation error stalls (paper); step: lr/10 every --lr-step epochs")
    train.add_argument("--patience", type=natural, help="epochs without improvement before lr/10 (default 2)")
    train.add_argument("--lr-step", type=positive_int)
    train.add_argument("--warmup", type=natural, help="steps of linear learning-rate warm-up (0: none; folder "
                       "recipe: 100)")
    train.add_argument("--pca", action=argparse.BooleanOptionalAction, help="PCA colour augmentation (RGB only)")
    train.add_argument("--record-norms", type=natural, metavar="STEPS", help="every STEPS steps, record each layer's "
                       "weight and gradient norms in norms.csv and norms.png (default 0: off)")
    train.add_argument("--workers", type=natural, default=2,
                       help="background processes decoding training images, and as many threads for "
                       "validation (0: in the training process)")
    train.add_argument("--skip-bad", action=argparse.BooleanOptionalAction,
                       help="leave out images that cannot be decoded, and count them (a resumed run keeps its choice)")
    train.add_argument("--limit", type=positive_int, help="train on this many images only, spread over the set")
    train.add_argument("--seed", type=natural, help="default 0")
    train.add_argument("--run-dir", help="where checkpoint.npz, metrics.csv and curves.png go")
    train.add_argument("--resume", action="store_true", help="continue the run in --run-dir exactly")
    train.add_argument("--device", choices=backend.DEVICES, default="cpu")
    train.add_argument("--quiet", action="store_true", help="no progress bars")
    train.set_defaults(run=train_command, statistics=None)

    def with_checkpoint(name, help_text, run):
        sub = commands.add_parser(name, help=help_text)
        sub.add_argument("--checkpoint", required=True, help="a run's checkpoint.npz")
        sub.add_argument("--device", choices=backend.DEVICES, default="cpu")
        sub.set_defaults(run=run)
        return sub

    evaluate_parser = with_checkpoint("eval", "top-1/top-5 on the validation images", eval_command)
    evaluate_parser.add_argument("--data", help="image folder (default: the data the run trained on)")
    evaluate_parser.add_argument("--ten-crop", action="store_true", help="average ten crops (section 4.1)")
    evaluate_parser.add_argument("--batch-size", type=positive_int, default=100)
    evaluate_parser.add_argument("--skip-bad", action=argparse.BooleanOptionalAction,
                                 help="leave out images that cannot be decoded (default: as the run did)")
    evaluate_parser.add_argument("--quiet", action="store_true")
    predict = with_checkpoint("predict", "top classes of images", predict_command)
    predict.add_argument("images", nargs="+", metavar="IMAGE")
    predict.add_argument("--top", type=positive_int, default=5)
    filters = with_checkpoint("filters", "conv1's kernels as a PNG grid (the paper's Figure 3)", filters_command)
    filters.add_argument("--out", default="filters.png")
    features = with_checkpoint("features", "feature maps of chosen layers as PNG", features_command)
    features.add_argument("image", metavar="IMAGE")
    features.add_argument("--layers", default="relu", help="comma-separated names (features.0) or types (relu)")
    features.add_argument("--out-dir", default="features")
    importer = commands.add_parser("import-torchvision", help="torchvision's trained AlexNet weights (.pth) as a "
                                   "checkpoint of the torchvision preset")
    importer.add_argument("weights", metavar="FILE.pth", help="e.g. alexnet-owt-7be5be79.pth")
    importer.add_argument("--out", required=True, help="the checkpoint.npz to write")
    importer.set_defaults(run=import_torchvision_command)
    onnx_parser = with_checkpoint("export-onnx", "write a checkpoint's model as an ONNX file", export_onnx_command)
    onnx_parser.add_argument("--out", required=True, help="the .onnx file to write")
    summary = commands.add_parser("summary", help="layer-by-layer shapes, parameters and multiply-adds")
    summary.add_argument("--preset", choices=sorted(PRESETS), default="paper")
    summary.add_argument("--input-size", type=positive_int)
    summary.add_argument("--num-classes", type=positive_int, default=1000)
    summary.add_argument("--in-channels", type=positive_int)
    summary.set_defaults(run=summary_command)
    if not argv or (argv[0].startswith("-") and argv[0] not in ("-h", "--help")):
        argv = ["train", *argv]  # plain `python alexnet.py [flags]`: the default run
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    status = run_command(args)
    if not (status == 0 or getattr(args, "stopped_together", False)) and distributed.launched_size() > 1:
        # Any other end of one rank (an error, a Ctrl-C outside the training loop's agreed
        # stop, a second Ctrl-C) would leave the others waiting in their next collective.
        distributed.abort(status)
    return status


def run_command(args):
    try:
        return args.run(args)
    except UsageError as error:
        where = f" (rank {distributed.rank()} of {distributed.world_size()})" if distributed.launched_size() > 1 else ""
        print(f"alexnet.py{where}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
