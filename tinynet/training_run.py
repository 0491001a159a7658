"""The epochs of a training run: train, evaluate, checkpoint, and stop cleanly.

``fit`` trains in an open RunFolder. It saves after each epoch, and on Ctrl-C (SIGINT)
or SIGTERM at a step boundary, so that ``resume=True`` continues bit for bit. It never
writes a checkpoint whose weights hold a NaN or an infinity, and it rebuilds metrics.csv
and curves.png from the checkpoint's history after each save, so that a kill at any
moment loses no row and repeats none.
"""

import contextlib
import signal
import sys
import threading
from types import SimpleNamespace

import numpy as np

from . import backend, distributed
from .checkpoint import CheckpointError
from .experiment import (
    check_same_model,
    read_training_state,
    restore_training_state,
    save_training_state,
    saved_norms,
)
from .layer_norms import DivergenceGuard, NormRecorder, layer_norms
from .optim import ReduceLROnPlateau
from .train import NonFiniteError, check_finite_weights, evaluate, new_totals, train_epoch

NONE_SAVED = "none: no checkpoint was written yet"


class SaveError(RuntimeError):
    """A checkpoint or the metrics could not be written (a full disk, say)."""


def fit(model, data, optimizer, scheduler, run, config, epochs, prepare_train, prepare_val,
        resume=False, progress=True, warmup=None, record_norms=0):
    """Train for ``epochs`` epochs in all, evaluating and checkpointing after each.

    ``run`` is an open RunFolder. Returns "done", or the name of the signal (SIGINT for
    Ctrl-C, SIGTERM) that stopped the run, once the state is saved: at a step boundary, with
    the unfinished epoch's running totals, so ``resume=True`` continues
    exactly. A NaN or infinity in the loss or the weights raises NonFiniteError naming
    the step and the last good checkpoint. ``warmup`` (optim.LinearLR) is stepped after
    every batch, ``scheduler`` after every epoch. ``record_norms`` > 0 records every
    layer's weight and gradient norms every that many steps (norms.csv, norms.png), and
    a DivergenceGuard warns once if the first steps blow up.

    Under mpiexec every rank calls fit, with ``model`` a DistributedDataParallel and the
    loaders sharded by rank. Rank 0 alone holds the run folder and writes; the others pass
    ``run=None``. Losses and metrics are summed over the ranks, and all of them stop at the
    same step.
    """
    recorder = NormRecorder(record_norms) if record_norms else None
    saver = _Saver(run, model, optimizer, scheduler, config, warmup, recorder)
    state = {"epoch": 0, "step": 0, "batch": 0, "totals": None}
    if resume:
        state = saver.restore()
        data.train.epoch, data.train.start_batch = state["epoch"], state["batch"]
    guard = DivergenceGuard(config["num_classes"])
    with _stop_at_step_boundary() as stop:
        for epoch in range(state["epoch"], epochs):
            position = dict(state, totals=state.get("totals") or new_totals())

            def after_step(step, loss, position=position):
                position.update(step=step + 1, batch=position["batch"] + 1)
                _watch(model, step, loss, optimizer.lr, guard, recorder)
                if warmup is not None:
                    warmup.step()
                if _stop_agreed(stop):
                    raise _StopRequested

            try:
                stats = train_epoch(model, data.train, optimizer, prepare_train, position["step"], after_step,
                                    progress, description=f"epoch {epoch + 1}/{epochs}", totals=position["totals"])
            except _StopRequested:  # raised between steps, so the state is consistent
                saver.refuse_nonfinite_weights(position["step"] - 1)
                saver.save(position)
                return stop.signal
            except NonFiniteError as error:
                raise saver.naming_last_good(error) from None
            saver.refuse_nonfinite_weights(position["step"] - 1)
            if _stop_agreed(stop):  # the epoch's training is done; resuming evaluates it
                saver.save(position)
                return stop.signal
            val = evaluate(model, data.val, prepare_val, progress=progress)
            row = _metrics_row(epoch + 1, stats, val, optimizer.lr)
            _step_scheduler(scheduler, val)  # after the row, whose lr is the rate at the end of this epoch
            if run is not None:
                _print_row(row)
            state = {"epoch": epoch + 1, "step": position["step"], "batch": 0, "totals": None}
            saver.save(state, row)
            if _stop_agreed(stop):  # it came during the evaluation: the epoch is saved whole
                return stop.signal
    return "done"


def _watch(model, step, loss, lr, guard, recorder):
    """Record the layers' norms when due, and warn once if the first steps blow up."""
    recording = recorder is not None and recorder.due(step)
    if not (recording or guard.watching(step)):
        return
    loss = float(loss)  # on a GPU, read back only at the steps that record or watch it
    norms = layer_norms(model)
    if recording:
        recorder.record(step, loss, lr, norms)
    warning = guard.check(step, loss, lr, norms)
    if warning is not None and distributed.rank() == 0:  # every rank has the same weights and loss
        print(f"\nwarning: {warning}", file=sys.stderr, flush=True)


class _Saver:
    """Writes a run's checkpoints and results, and remembers which one is the last good."""

    def __init__(self, run, model, optimizer, scheduler, config, warmup, recorder):
        self.run, self.model, self.optimizer, self.scheduler, self.config = run, model, optimizer, scheduler, config
        self.warmup, self.recorder = warmup, recorder
        self.history, self.last_good = [], None

    def restore(self):
        """Load the run's checkpoint (rank 0 reads it and sends it to the others); returns its progress."""
        if self.run is not None:
            arrays, meta = read_training_state(self.run.checkpoint)
            check_same_model(self.run.checkpoint, meta["config"], self.config)
        [arrays, meta] = distributed.broadcast_object_list([arrays, meta] if self.run is not None else [None, None])
        try:
            progress = restore_training_state(arrays, meta, self.model, self.optimizer, self.scheduler, self.warmup)
            if "rank_rngs" in meta:  # each rank's own dropout draws, as they were at the save
                backend.set_rng_state(meta["rank_rngs"][distributed.rank()])
            self.last_good = _describe(self.checkpoint, progress)
        except (KeyError, TypeError, ValueError, RuntimeError) as error:
            raise CheckpointError(f"{self.checkpoint} does not fit this run ({type(error).__name__}: "
                                  f"{error})") from error
        self.history = meta["history"]
        if self.recorder is not None:
            self.recorder.rows = saved_norms(arrays, meta)
        self._write_results()  # a kill between the checkpoint's rename and the metrics' loses no row
        return progress

    @property
    def checkpoint(self):
        return self.run.checkpoint if self.run is not None else "rank 0's checkpoint"

    def refuse_nonfinite_weights(self, step):
        try:
            check_finite_weights(self.model, step)
        except NonFiniteError as error:
            raise self.naming_last_good(error) from None

    def naming_last_good(self, error):
        error.args = (f"{error}; the last good checkpoint is {self.last_good or NONE_SAVED}",)
        return error

    def save(self, progress, row=None):
        """Checkpoint ``progress`` (weights known finite) with ``row`` added to the history."""
        history = self.history + ([row] if row is not None else [])
        rank_rngs = distributed.all_gather_object([], backend.get_rng_state())  # [own state] on one process
        if self.run is not None:
            try:
                save_training_state(self.run.checkpoint, self.model, self.optimizer, self.scheduler, progress,
                                    self.config, history, self.warmup, self.norm_rows,
                                    rank_rngs if len(rank_rngs) > 1 else None)
            except OSError as error:  # a full disk, say: the previous checkpoint is still whole
                raise SaveError(f"could not write {self.run.checkpoint}: {error.strerror or error}; the last good "
                                f"checkpoint is {self.last_good or NONE_SAVED}") from error
        self.history, self.last_good = history, _describe(self.checkpoint, progress)
        self._write_results()

    @property
    def norm_rows(self):
        return self.recorder.rows if self.recorder is not None else []

    def _write_results(self):
        if self.run is None:
            return
        try:
            self.run.write_results(self.history, self.norm_rows)
        except OSError as error:
            raise SaveError(f"could not write the metrics in {self.run.path}: {error.strerror or error}; the last "
                            f"good checkpoint is {self.last_good}, and resuming rewrites them") from error


def _describe(checkpoint, progress):
    """Where a checkpoint stands, in words: "runs/x/checkpoint.npz (after 40 steps: epoch 2 done)"."""
    steps = progress["step"]
    if progress["batch"] == 0:
        return f"{checkpoint} (after {steps} steps: epoch {progress['epoch']} done)"
    return f"{checkpoint} (after {steps} steps, {progress['batch']} into epoch {progress['epoch'] + 1})"


class _StopRequested(Exception):
    """Raised after a step when Ctrl-C or SIGTERM asked the run to stop."""


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


@contextlib.contextmanager
def _stop_at_step_boundary():
    """The first Ctrl-C (SIGINT) or SIGTERM asks the loop to stop at the next safe point,
    so the saved state is never half-updated; ``stop.signal`` then names it. A second
    signal acts at once, as it would without this block (Ctrl-C raises KeyboardInterrupt),
    saving nothing: every checkpoint on disk is whole, so nothing is lost but the steps
    since the last one."""
    stop = SimpleNamespace(signal=None)
    if threading.current_thread() is not threading.main_thread():
        yield stop  # signal handlers can only be set from the main thread
        return
    previous = {number: signal.getsignal(number) for number in STOP_SIGNALS}

    def request_stop(number, frame):
        stop.signal = signal.Signals(number).name
        for each, handler in previous.items():
            signal.signal(each, handler)

    for number in STOP_SIGNALS:
        signal.signal(number, request_stop)
    try:
        yield stop
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


def _stop_agreed(stop):
    """Whether to stop at this step. Under mpiexec a signal may reach the ranks a step apart:
    they agree on the largest signal number any of them got, so all stop at the same step."""
    if distributed.world_size() > 1:
        number = signal.Signals[stop.signal].value if stop.signal else 0
        agreed = int(distributed.all_reduce(np.array([number]), op=distributed.ReduceOp.MAX)[0])
        stop.signal = signal.Signals(agreed).name if agreed else None
    return stop.signal is not None


def _step_scheduler(scheduler, val):
    if isinstance(scheduler, ReduceLROnPlateau):
        scheduler.step(1 - val["top1"])  # the paper watched the validation error rate
    elif scheduler is not None:
        scheduler.step()


def _metrics_row(epoch, stats, val, lr):
    return dict(epoch=epoch, train_loss=stats["loss"], train_acc=stats["top1"], val_loss=val["loss"],
                val_acc=val["top1"], val_top5=val["top5"], lr=lr, images_per_second=stats["images_per_second"])


def _print_row(row):
    print(f"epoch {row['epoch']}: train loss {row['train_loss']:.4f} acc {row['train_acc']:.2%} | val loss "
          f"{row['val_loss']:.4f} top-1 {row['val_acc']:.2%} top-5 {row['val_top5']:.2%} | "
          f"{row['images_per_second']:.0f} img/s, lr {row['lr']:g}", flush=True)
