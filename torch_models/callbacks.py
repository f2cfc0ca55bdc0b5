"""Lightning callbacks: the course's stop-at-threshold rule, the recorders the report needs, and what a run shows
and logs (progress bar, per-epoch lines, TensorBoard scalars; parity.progress). Mirror: tf_models/callbacks.py."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import RichProgressBar
from lightning.pytorch.loggers import TensorBoardLogger

from parity import progress
from parity.catalog import StopRule


class StopAtThreshold(L.Callback):
    """The course's `myCallback`: stop training at epoch end once the rule is met."""

    def __init__(self, rule: StopRule) -> None:
        self.rule = rule
        self.stopped_epoch: int | None = None

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        value = trainer.callback_metrics.get(self.rule.monitor)
        if value is not None and self.rule.reached(float(value)):
            print(f"{self.rule.describe()}: reached {self.rule.monitor}={float(value):.4f} at epoch "
                  f"{trainer.current_epoch + 1}, stopping", flush=True)
            self.stopped_epoch = trainer.current_epoch
            trainer.should_stop = True


class Recorder(L.Callback):
    """Per-epoch history (train and validation), per-step loss and per-epoch wall time."""

    def __init__(self, metric: str) -> None:
        self.keys = ("loss", "val_loss", metric, f"val_{metric}")
        self.history: dict[str, list[float]] = {key: [] for key in self.keys}
        self.step_loss: list[float] = []
        self.epoch_seconds: list[float] = []
        self._epoch_start = 0.0

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._epoch_start = time.perf_counter()

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs, batch, batch_idx: int) -> None:
        self.step_loss.append(float(outputs["loss"]))

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.epoch_seconds.append(time.perf_counter() - self._epoch_start)
        for key in self.keys:
            self.history[key].append(float(trainer.callback_metrics[key]))


class EpochFromOneBar(RichProgressBar):
    """Lightning's usual progress bar (rich, since Keras brings rich along), with epochs counted from 1 as Keras
    counts them ("Epoch 1/5", where Lightning writes "Epoch 0/4") and without the logger's version number."""

    def _get_train_description(self, current_epoch: int) -> str:
        description = f"Epoch {current_epoch + 1}/{self.trainer.max_epochs}"
        return f"{description:{len(self.validation_description)}}"  # padded as Lightning pads it: no flicker

    def get_metrics(self, trainer: L.Trainer, pl_module: L.LightningModule) -> dict[str, Any]:
        metrics = super().get_metrics(trainer, pl_module)
        metrics.pop("v_num", None)
        return metrics


class EpochLines(L.Callback):
    """One line per epoch (parity.progress.epoch_line; fewer in long runs, progress.shows_epoch) of what `recorder`
    has just recorded, in Keras' format and numbering. Goes after `recorder` and the course's stop callback in the
    callback list (the epoch a run stops at is always shown)."""

    def __init__(self, recorder: Recorder, metric: str, epochs: int) -> None:
        self.recorder = recorder
        self.keys = progress.epoch_keys(metric)
        self.epochs = epochs

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        epoch = trainer.current_epoch + 1
        if progress.shows_epoch(epoch, self.epochs, trainer.should_stop):
            values = {key: self.recorder.history[key][-1] for key in self.keys}
            print(progress.epoch_line(epoch, self.epochs, self.recorder.epoch_seconds[-1], values), flush=True)


def tensorboard_logger(root: Path, run: str) -> TensorBoardLogger:
    """Lightning's TensorBoardLogger writing the TensorBoard run `run` directly under `root` (parity.progress).

    torch's SummaryWriter would import TensorFlow through tensorboard, and TensorFlow must never load in the torch
    worker (parity.jobs): tensorboard is switched to its TensorFlow stub first.
    """
    progress.tensorboard_without_tensorflow()
    return TensorBoardLogger(str(root), name="", version=run, default_hp_metric=False)


class TensorBoardScalars(L.Callback):
    """What `recorder` records, written through `logger` at each epoch's end (tags and steps: parity.progress).

    The logger is not the Trainer's: as the Trainer's logger it would also receive everything the module logs,
    under Lightning's names and its 0-based step axis, which the Keras run does not have. Goes after `recorder`,
    which has then timed the epoch, so the writing costs no measured training time.
    """

    def __init__(self, recorder: Recorder, metric: str, logger: TensorBoardLogger) -> None:
        self.recorder = recorder
        self.keys = progress.epoch_keys(metric)
        self.logger = logger
        self._steps_written = 0

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        new_losses = self.recorder.step_loss[self._steps_written:]
        for step, loss in enumerate(new_losses, start=self._steps_written + 1):
            self.logger.log_metrics({progress.STEP_LOSS_TAG: loss}, step=step)
        self._steps_written += len(new_losses)
        epoch_values = {progress.epoch_tag(key): self.recorder.history[key][-1] for key in self.keys}
        self.logger.log_metrics(epoch_values, step=trainer.current_epoch + 1)
        self.logger.experiment.flush()

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.logger.finalize("success")
