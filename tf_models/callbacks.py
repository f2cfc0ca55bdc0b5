"""Keras callbacks: the course's stop-at-threshold rule, the stop at a non-finite loss, early stopping with the
best weights restored, the checkpoints of `--checkpoint`, the recorders the report needs, and what a run shows and
logs (per-epoch lines, TensorBoard scalars; parity.progress). Mirror: torch_models/callbacks.py.

Backend-neutral: the keras-torch worker runs these callbacks on Keras' torch backend too. Only the TensorBoard
event writer is the backend's own (`TensorFlowScalarWriter` here, keras_torch.callbacks.TorchScalarWriter there).
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import keras

from parity import progress
from parity.catalog import StopRule
from parity.worker_runtime import non_finite_line, non_finite_record


class StopAtThreshold(keras.callbacks.Callback):
    """The course's `myCallback`: stop training at epoch end once the rule is met."""

    def __init__(self, rule: StopRule) -> None:
        super().__init__()
        self.rule = rule
        self.stopped_epoch: int | None = None

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        logs = logs or {}
        if self.rule.reached(logs):
            bar_open = "\n" if sys.stdout.isatty() else ""  # on a terminal Keras' bar ends its line after this
            print(f"{bar_open}{self.rule.describe()}: reached {self.rule.values(logs)} at epoch {epoch + 1}, stopping",
                  flush=True)
            self.stopped_epoch = epoch
            self.model.stop_training = True


class StopAtNonFiniteLoss(keras.callbacks.Callback):
    """Stop at the step whose batch loss is NaN or infinite, and record where (`diverged`: parity.worker_runtime.
    non_finite_record; None while the loss is finite). keras.callbacks.TerminateOnNaN stops at the same step (it
    checks the epoch's running mean, which turns non-finite with the batch's) but does not say where. Keras ends the
    epoch there (its validation and epoch-end callbacks run on the partial epoch) and stops. Goes after `Recorder`,
    so the step's loss is recorded."""

    def __init__(self) -> None:
        super().__init__()
        self.diverged: dict[str, Any] | None = None
        self._epoch = 0
        self._global_step = 0

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self._epoch = epoch

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        self._global_step += 1
        loss = float(logs["step_loss"])
        if self.diverged is None and not math.isfinite(loss):
            self.diverged = non_finite_record(self._epoch, batch, self._global_step, loss)
            bar_open = "\n" if sys.stdout.isatty() else ""  # on a terminal Keras' bar ends its line after this
            print(f"{bar_open}{non_finite_line(self.diverged)}", flush=True)
            self.model.stop_training = True


class Recorder(keras.callbacks.Callback):
    """Per-epoch history (train and validation), per-step loss and per-epoch wall time."""

    def __init__(self, metric: str) -> None:
        super().__init__()
        self.keys = progress.epoch_keys(metric)
        self.history: dict[str, list[float]] = {key: [] for key in self.keys}
        self.step_loss: list[float] = []
        self.epoch_seconds: list[float] = []
        self._epoch_start = 0.0

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self._epoch_start = time.perf_counter()

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        self.step_loss.append(float(logs["step_loss"]))

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self.epoch_seconds.append(time.perf_counter() - self._epoch_start)
        for key in self.keys:
            if key in logs:  # no val_ values without validation data (spec.validation "none")
                self.history[key].append(float(logs[key]))

    def latest(self) -> dict[str, float]:
        """The values of the epoch just recorded, in display order (no val_ values without validation data)."""
        return {key: values[-1] for key, values in self.history.items() if values}


class EpochLines(keras.callbacks.Callback):
    """One line per epoch (parity.progress.epoch_line; fewer in long runs, progress.shows_epoch) of what `recorder`
    has just recorded: the display in a pipe or a log file, where Keras' own bar would print escape codes. Goes after
    `recorder` and the course's stop callback in the callback list (the epoch a run stops at is always shown)."""

    def __init__(self, recorder: Recorder, epochs: int) -> None:
        super().__init__()
        self.recorder = recorder
        self.epochs = epochs

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if progress.shows_epoch(epoch + 1, self.epochs, self.model.stop_training):
            values = self.recorder.latest()
            print(progress.epoch_line(epoch + 1, self.epochs, self.recorder.epoch_seconds[-1], values), flush=True)


class ScalarWriter(Protocol):
    """The event-file writer of one TensorBoard run."""

    def add_scalars(self, scalars: Sequence[tuple[str, float, int]]) -> None:
        """Write (tag, value, step) triples and flush them to disk."""

    def close(self) -> None:
        """Close the event file."""


class TensorFlowScalarWriter:
    """The summary writer keras.callbacks.TensorBoard writes through on TensorFlow (tf.summary)."""

    def __init__(self, log_dir: Path) -> None:
        import tensorflow as tf

        self._summary = tf.summary
        self._writer = tf.summary.create_file_writer(str(log_dir))

    def add_scalars(self, scalars: Sequence[tuple[str, float, int]]) -> None:
        with self._writer.as_default():
            for tag, value, step in scalars:
                self._summary.scalar(tag, value, step=step)
        self._writer.flush()

    def close(self) -> None:
        self._writer.close()


class TensorBoardScalars(keras.callbacks.Callback):
    """What `recorder` records, written to one TensorBoard run through `writer` at each epoch's end (tags and steps:
    parity.progress).

    Not keras.callbacks.TensorBoard itself: it names its tags (epoch_loss, batch_loss), splits a run into train/ and
    validation/ runs, counts epochs from 0 and logs, per batch, Keras' running mean of the epoch's loss instead of
    the batch's loss, none of which Lightning's TensorBoardLogger reproduces. So the same scalars go through a
    summary writer of the backend (`ScalarWriter`), with the tags and steps the Lightning run has. Written after
    `recorder` has timed the epoch (it goes before this callback), so the writing costs no measured training time.
    """

    def __init__(self, recorder: Recorder, writer: ScalarWriter) -> None:
        super().__init__()
        self.recorder = recorder
        self.writer = writer
        self._steps_written = 0

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        new_losses = self.recorder.step_loss[self._steps_written:]
        scalars = [(progress.STEP_LOSS_TAG, loss, step)
                   for step, loss in enumerate(new_losses, start=self._steps_written + 1)]
        self._steps_written += len(new_losses)
        scalars += [(progress.epoch_tag(key), value, epoch + 1) for key, value in self.recorder.latest().items()]
        self.writer.add_scalars(scalars)

    def on_train_end(self, logs: dict | None = None) -> None:
        self.writer.close()


def early_stopping(settings: dict[str, Any]) -> keras.callbacks.EarlyStopping:
    """keras.callbacks.EarlyStopping on `settings` (monitor, patience, min_delta) with restore_best_weights=True, in
    Keras' own mode 'auto' (the direction of the monitored metric; align.early_stopping_mode)."""
    return keras.callbacks.EarlyStopping(monitor=settings["monitor"], patience=settings["patience"],
                                         min_delta=settings["min_delta"], restore_best_weights=True)


def monitor_mode(callback: keras.callbacks.Callback) -> str:
    """The direction Keras resolved for a monitoring callback that has seen an epoch: 'min' or 'max'."""
    return "max" if callback.monitor_op is keras.ops.greater else "min"


def best_checkpoint(monitor: str, path: Path) -> keras.callbacks.ModelCheckpoint:
    """ModelCheckpoint(save_best_only=True): the whole model (.keras) at each epoch that improves `monitor`."""
    return keras.callbacks.ModelCheckpoint(str(path), monitor=monitor, save_best_only=True)


def last_checkpoint(path: Path) -> keras.callbacks.ModelCheckpoint:
    """ModelCheckpoint at every epoch's end, one file replaced each time: the latest epoch."""
    return keras.callbacks.ModelCheckpoint(str(path))
