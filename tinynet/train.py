"""The training and evaluation loops: one epoch of SGD, one pass of evaluation.

Both take a ``prepare(images, labels, step)`` callable that turns a uint8 batch
into float32 input on the model's device (normalising, colour augmentation), so
batches stay uint8, four times smaller, until the last moment.
"""

import math
import time

from tqdm import tqdm

from . import backend, functional
from .tensor import no_grad


class NonFiniteLossError(RuntimeError):
    """The loss became NaN or infinite: training cannot go on from here."""

    def __init__(self, step, value):
        super().__init__(f"the loss became {value} at step {step}")
        self.step = step


def topk_correct(logits, targets, k):
    """How many rows have their target among the k largest logits."""
    xp = backend.xp_of(logits)
    k = min(k, logits.shape[1])
    top = xp.argpartition(-logits, k - 1, axis=1)[:, :k]
    return int((top == targets[:, None]).any(axis=1).sum())


def train_epoch(model, loader, optimizer, prepare, first_step=0, on_step=None, progress=True, description="train"):
    """One pass over ``loader``: forward, loss, backward, update.

    ``first_step`` numbers the first batch (steps count across epochs, so NaN
    reports and checkpoints name a unique step); ``on_step(step)`` is called after
    each update. Returns the mean loss, accuracy, images per second and number of
    steps of the batches it ran (the rest of the epoch, when resuming part way).
    """
    model.train()
    totals = {"loss": 0.0, "correct": 0, "seen": 0}
    start, step = time.perf_counter(), first_step - 1
    remaining = len(loader) - getattr(loader, "start_batch", 0)  # less when resuming mid-epoch
    bar = tqdm(loader, desc=description, total=remaining, unit="batch", disable=not progress, leave=False,
               dynamic_ncols=True)
    for step, (images, labels) in enumerate(bar, start=first_step):
        x, y = prepare(images, labels, step)
        logits = model(x)
        loss = functional.cross_entropy(logits, y)
        value = loss.item()
        if not math.isfinite(value):
            raise NonFiniteLossError(step, value)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        _add(totals, value, topk_correct(logits.data, y, 1), len(labels))
        rate = totals["seen"] / (time.perf_counter() - start)
        bar.set_postfix(loss=f"{value:.3f}", acc=f"{totals['correct'] / totals['seen']:.3f}", img_s=f"{rate:.0f}")
        if on_step is not None:
            on_step(step)
    return _summary(totals, start) | {"steps": step + 1 - first_step}


def evaluate(model, loader, prepare, crops=1, progress=True):
    """Mean loss, top-1 and top-5 accuracy over ``loader`` in eval mode.

    With ``crops`` > 1 each image arrives as ``crops`` views (ten-crop testing,
    section 4.1 of the paper) and its prediction is the mean of their softmax.
    """
    model.eval()
    totals = {"loss": 0.0, "correct": 0, "correct5": 0, "seen": 0}
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
    return _summary(totals, start) | {"top5": totals["correct5"] / max(1, totals["seen"])}


def _add(totals, loss, correct, count, normalised=True):
    totals["loss"] += loss * count if normalised else loss
    totals["correct"] += correct
    totals["seen"] += count


def _summary(totals, start):
    seen = max(1, totals["seen"])
    return {
        "loss": totals["loss"] / seen,
        "top1": totals["correct"] / seen,
        "images_per_second": totals["seen"] / max(time.perf_counter() - start, 1e-9),
    }
