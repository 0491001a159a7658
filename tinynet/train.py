"""The training and evaluation loops: one epoch of SGD, one pass of evaluation.

Both take a ``prepare(images, labels, step)`` callable that turns a uint8 batch
into float32 input on the model's device (normalising, colour augmentation), so
batches stay uint8, four times smaller, until the last moment.
"""

import math
import time

import numpy as np
from tqdm import tqdm

from . import backend, distributed, functional
from .reference.cross_entropy import check_target_values
from .tensor import no_grad


class NonFiniteError(RuntimeError):
    """Training produced a NaN or an infinity: it cannot go on from here."""

    def __init__(self, step, what):
        super().__init__(f"{what} at step {step}")
        self.step = step


class NonFiniteLossError(NonFiniteError):
    """The loss became NaN or infinite."""

    def __init__(self, step, value):
        super().__init__(step, f"the loss became {value}")


class NonFiniteWeightsError(NonFiniteError):
    """Some weights became NaN or infinite (the loss of the step that did it was still finite)."""

    def __init__(self, step, names):
        shown = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
        super().__init__(step, f"the weights of {shown} became NaN or infinite")


def check_finite_weights(model, step):
    """Raise NonFiniteWeightsError naming every parameter that holds a NaN or infinity."""
    bad = [name for name, param in model.named_parameters()
           if not bool(backend.xp_of(param.data).isfinite(param.data).all())]
    if bad:
        raise NonFiniteWeightsError(step, bad)


def topk_correct(logits, targets, k):
    """How many rows have their target among the k largest logits."""
    xp = backend.xp_of(logits)
    k = min(k, logits.shape[1])
    top = xp.argpartition(-logits, k - 1, axis=1)[:, :k]
    return int((top == targets[:, None]).any(axis=1).sum())


# Reading a number back from a GPU waits for all the work queued before it. Read every
# step, the loss would leave the GPU idle while Python prepares the next step; so there
# the loss and the correct predictions stay on the GPU and are read back together every
# GPU_READ_EVERY steps. On the CPU, where nothing is queued, they are read every step.
GPU_READ_EVERY = 20


def train_epoch(model, loader, optimizer, prepare, first_step=0, on_step=None, progress=True, description="train",
                totals=None):
    """One pass over ``loader``: forward, loss, backward, update.

    ``first_step`` numbers the first batch (steps count across epochs, so NaN
    reports and checkpoints name a unique step); ``on_step(step, loss)`` is called
    after each update, with the loss as a 0-d array on the model's device. ``totals``
    (see ``new_totals``) is updated in place as the losses are read back, and always
    before this function returns or raises: pass the saved totals of an interrupted
    epoch to make the summary cover the whole epoch. Returns the mean loss, accuracy
    and images per second of the epoch, and the number of steps this call ran.
    """
    model.train()
    totals = new_totals() if totals is None else totals
    step = first_step - 1
    remaining = len(loader) - getattr(loader, "start_batch", 0)  # less when resuming mid-epoch
    bar = tqdm(loader, desc=description, total=remaining, unit="batch", disable=not progress, leave=False,
               dynamic_ncols=True)
    unread = UnreadSteps(totals)
    try:
        for step, (images, labels) in enumerate(bar, start=first_step):
            x, y = prepare(images, labels, step)
            logits = model(x)
            check_target_values(logits.shape[1], labels)  # on the host, where the GPU need not wait
            loss = functional.cross_entropy(logits, y)
            unread.add(step, loss.data, correct_predictions(logits.data, y), len(labels))
            if unread.due():  # before the update: a NaN found here leaves the weights finite
                unread.read()
                bar.set_postfix(loss=f"{unread.last_loss:.3f}", acc=f"{totals['correct'] / totals['seen']:.3f}",
                                img_s=f"{totals['seen'] / totals['seconds']:.0f}")
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            if on_step is not None:
                on_step(step, loss.data)
    finally:  # also when a stop request or an error leaves the loop: the totals cover every step run
        unread.read()
    return _summary(totals) | {"steps": step + 1 - first_step}


class UnreadSteps:
    """The steps whose loss and correct predictions are still on the device, read back
    together into ``totals``, summed over the ranks under mpiexec."""

    def __init__(self, totals):
        self.totals, self.steps, self.losses, self.corrects, self.counts = totals, [], [], [], []
        self.last_loss, self.clock = math.nan, time.perf_counter()

    def add(self, step, loss, correct, count):
        self.steps.append(step)
        self.losses.append(loss)
        self.corrects.append(correct)
        self.counts.append(count)

    def due(self):
        on_cpu = backend.device_of(self.losses[-1]) == "cpu"
        return on_cpu or len(self.steps) >= GPU_READ_EVERY

    def read(self):
        """Add the unread steps to the totals; raise NonFiniteLossError at the first step whose
        loss is NaN or infinite (every rank reads the same sums, so all of them stop there)."""
        if not self.steps:
            return
        xp = backend.xp_of(self.losses[0])
        on_device = xp.concatenate([xp.stack(self.losses).astype(xp.float64), xp.stack(self.corrects)])
        losses, corrects = np.split(backend.to_numpy(on_device), 2)  # one read, one wait
        counts = np.array(self.counts, np.float64)
        summed = summed_over_ranks(np.concatenate([losses * counts, corrects, counts]))
        loss_sums, corrects, counts = np.split(summed, 3)
        losses = loss_sums / counts
        steps, self.steps, self.losses, self.corrects, self.counts = self.steps, [], [], [], []
        for step, loss, correct, count in zip(steps, losses, corrects, counts):
            if not math.isfinite(loss):
                raise NonFiniteLossError(step, loss)
            _add(self.totals, loss, int(correct), int(count))
        now = time.perf_counter()
        self.totals["seconds"], self.clock, self.last_loss = self.totals["seconds"] + now - self.clock, now, losses[-1]


def correct_predictions(logits, targets):
    """How many rows have their largest logit at their target, as a 0-d array on their device."""
    return (logits.argmax(axis=1) == targets).sum()


def new_totals():
    """What an epoch adds up as it goes: summed loss, correct predictions, images, seconds."""
    return {"loss": 0.0, "correct": 0, "seen": 0, "seconds": 0.0}


def evaluate(model, loader, prepare, crops=1, progress=True):
    """Mean loss, top-1 and top-5 accuracy over ``loader`` in eval mode.

    With ``crops`` > 1 each image arrives as ``crops`` views (ten-crop testing,
    section 4.1 of the paper) and its prediction is the mean of their softmax.
    """
    model.eval()
    totals = new_totals() | {"correct5": 0}
    start = time.perf_counter()
    with no_grad():
        for step, (images, labels) in enumerate(tqdm(loader, desc="eval", disable=not progress, leave=False)):
            x, y = prepare(images.reshape(-1, *images.shape[-3:]), labels, step)
            probs = functional.softmax(model(x), dim=1).data
            probs = probs.reshape(len(labels), crops, -1).mean(axis=1)
            xp = backend.xp_of(probs)
            loss = float(-xp.log(probs[xp.arange(len(labels)), y] + 1e-12).sum())
            _add(totals, loss, topk_correct(probs, y, 1), len(labels), normalised=False)
            totals["correct5"] += topk_correct(probs, y, 5)
    totals["seconds"] = time.perf_counter() - start
    if distributed.world_size() > 1:  # each rank evaluated its share of the images
        summed = distributed.all_reduce(np.array([totals[key] for key in EVALUATION_SUMS], np.float64))
        totals.update(zip(EVALUATION_SUMS, summed.tolist()))
    return _summary(totals) | {"top5": totals["correct5"] / max(1, totals["seen"])}


EVALUATION_SUMS = ("loss", "correct", "correct5", "seen")


def summed_over_ranks(values):
    """The element-wise sum of a float64 array over every rank (each holds a share of the
    global batch); the array itself on one process."""
    if distributed.world_size() == 1:
        return values
    return distributed.all_reduce(np.asarray(values, np.float64))


def _add(totals, loss, correct, count, normalised=True):
    totals["loss"] += loss * count if normalised else loss
    totals["correct"] += correct
    totals["seen"] += count


def _summary(totals):
    seen = max(1, totals["seen"])
    return {
        "loss": totals["loss"] / seen,
        "top1": totals["correct"] / seen,
        "images_per_second": totals["seen"] / max(totals["seconds"], 1e-9),
    }
