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


def train_epoch(model, loader, optimizer, prepare, first_step=0, on_step=None, progress=True, description="train",
                totals=None):
    """One pass over ``loader``: forward, loss, backward, update.

    ``first_step`` numbers the first batch (steps count across epochs, so NaN
    reports and checkpoints name a unique step); ``on_step(step, loss)`` is called
    after each update. ``totals`` (see ``new_totals``) is updated in place after each
    step: pass the saved totals of an interrupted epoch to make the summary cover
    the whole epoch. Returns the mean loss, accuracy and images per second of the
    epoch, and the number of steps this call ran.
    """
    model.train()
    totals = new_totals() if totals is None else totals
    step = first_step - 1
    remaining = len(loader) - getattr(loader, "start_batch", 0)  # less when resuming mid-epoch
    bar = tqdm(loader, desc=description, total=remaining, unit="batch", disable=not progress, leave=False,
               dynamic_ncols=True)
    last = time.perf_counter()
    for step, (images, labels) in enumerate(bar, start=first_step):
        x, y = prepare(images, labels, step)
        logits = model(x)
        loss = functional.cross_entropy(logits, y)
        value, correct, count = summed_over_ranks(loss.item(), topk_correct(logits.data, y, 1), len(labels))
        if not math.isfinite(value):  # every rank sees the same value, so all of them stop here
            raise NonFiniteLossError(step, value)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        _add(totals, value, correct, count)
        now = time.perf_counter()
        totals["seconds"], last = totals["seconds"] + now - last, now
        bar.set_postfix(loss=f"{value:.3f}", acc=f"{totals['correct'] / totals['seen']:.3f}",
                        img_s=f"{totals['seen'] / totals['seconds']:.0f}")
        if on_step is not None:
            on_step(step, value)
    return _summary(totals) | {"steps": step + 1 - first_step}


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


def summed_over_ranks(loss, correct, count):
    """A training step's mean loss, correct predictions and images over the whole global
    batch, when each of several ranks holds a share of it (unchanged on one process)."""
    if distributed.world_size() == 1:
        return loss, correct, count
    summed = distributed.all_reduce(np.array([loss * count, correct, count], np.float64))
    return summed[0] / summed[2], int(summed[1]), int(summed[2])


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
