"""Lightning callbacks: the course's stop-at-threshold rule, the stop at a non-finite loss, early stopping with the
best weights reloaded, the checkpoints of `--checkpoint`, the recorders the report needs, and what a run shows and
logs (progress bar, per-epoch lines, TensorBoard scalars; parity.progress). Mirror: tf_models/callbacks.py."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint, RichProgressBar
from lightning.pytorch.callbacks.early_stopping import EarlyStoppingReason
from lightning.pytorch.loggers import TensorBoardLogger

from parity import align, progress
from parity.catalog import StopRule
from parity.worker_runtime import non_finite_line, non_finite_record


class StopAtThreshold(L.Callback):
    """The course's `myCallback`: stop training at epoch end once the rule is met."""

    def __init__(self, rule: StopRule) -> None:
        self.rule = rule
        self.stopped_epoch: int | None = None

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        logs = {key: float(value) for key, value in trainer.callback_metrics.items()}
        if self.rule.reached(logs):
            print(f"{self.rule.describe()}: reached {self.rule.values(logs)} at epoch {trainer.current_epoch + 1}, "
                  "stopping", flush=True)
            self.stopped_epoch = trainer.current_epoch
            trainer.should_stop = True


class StopAtNonFiniteLoss(L.Callback):
    """Stop at the step whose batch loss is NaN or infinite, and record where (`diverged`: parity.worker_runtime.
    non_finite_record; None while the loss is finite). `trainer.should_stop` set in on_train_batch_end ends the
    epoch loop after this batch (Lightning checks it before the next one, min_epochs unset); validation and the
    epoch-end hooks then run on the partial epoch, as in Keras. Lightning's own EarlyStopping(check_finite=True) only
    looks at epoch ends, and detect_anomaly raises inside the backward pass. Goes after `Recorder`."""

    def __init__(self) -> None:
        self.diverged: dict[str, Any] | None = None
        self._global_step = 0

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs, batch,
                           batch_idx: int) -> None:
        self._global_step += 1
        loss = float(outputs["loss"])
        if self.diverged is None and not math.isfinite(loss):
            self.diverged = non_finite_record(trainer.current_epoch, batch_idx, self._global_step, loss)
            print(non_finite_line(self.diverged), flush=True)
            trainer.should_stop = True


class Recorder(L.Callback):
    """Per-epoch history (train and validation), per-step loss and per-epoch wall time."""

    def __init__(self, metric: str) -> None:
        self.keys = progress.epoch_keys(metric)
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
            if key in trainer.callback_metrics:  # no val_ values without validation data (spec.validation "none")
                self.history[key].append(float(trainer.callback_metrics[key]))

    def latest(self) -> dict[str, float]:
        """The values of the epoch just recorded, in display order (no val_ values without validation data)."""
        return {key: values[-1] for key, values in self.history.items() if values}


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

    def __init__(self, recorder: Recorder, epochs: int) -> None:
        self.recorder = recorder
        self.epochs = epochs

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        epoch = trainer.current_epoch + 1
        if progress.shows_epoch(epoch, self.epochs, trainer.should_stop):
            values = self.recorder.latest()
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

    def __init__(self, recorder: Recorder, logger: TensorBoardLogger) -> None:
        self.recorder = recorder
        self.logger = logger
        self._steps_written = 0

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        new_losses = self.recorder.step_loss[self._steps_written:]
        for step, loss in enumerate(new_losses, start=self._steps_written + 1):
            self.logger.log_metrics({progress.STEP_LOSS_TAG: loss}, step=step)
        self._steps_written += len(new_losses)
        epoch_values = {progress.epoch_tag(key): value for key, value in self.recorder.latest().items()}
        self.logger.log_metrics(epoch_values, step=trainer.current_epoch + 1)
        self.logger.experiment.flush()

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.logger.finalize("success")


class KerasRuleEarlyStopping(EarlyStopping):
    """Lightning's EarlyStopping deciding as Keras' EarlyStopping does (align: early_stopping_non_finite): the first
    value is the best whatever it is, a later one improves only by align.keras_improvement (a NaN never does, and
    does not stop training by itself), and training stops once `patience` epochs in a row brought no improvement."""

    def __init__(self, monitor: str, patience: int, mode: str, min_delta: float = 0.0) -> None:
        super().__init__(monitor=monitor, patience=patience, mode=mode, min_delta=min_delta, check_finite=False)
        self.keras_min_delta = abs(min_delta)
        self.keras_best: float | None = None

    def _evaluate_stopping_criteria(self, current: torch.Tensor) -> tuple[bool, str | None]:
        value = float(current)
        if align.keras_improvement(value, self.keras_best, self.mode, self.keras_min_delta):
            self.keras_best, self.best_score, self.wait_count = value, current, 0
            return False, f"{self.monitor} improved to {value:.6g}"
        self.wait_count += 1
        if self.wait_count < self.patience:
            return False, None
        self.stopping_reason = EarlyStoppingReason.PATIENCE_EXHAUSTED
        return True, f"{self.monitor} did not improve in {self.wait_count} epochs (best {self.keras_best:.6g})"


class FileCheckpoint(ModelCheckpoint):
    """Lightning's ModelCheckpoint, told apart from another one on the same monitor by its file name (a Trainer
    refuses two stateful callbacks with one state key: the restore checkpoint and `--checkpoint best`)."""

    @property
    def state_key(self) -> str:
        return self._generate_state_key(monitor=self.monitor, mode=self.mode, filename=self.filename)


class KerasRuleCheckpoint(FileCheckpoint):
    """ModelCheckpoint(save_top_k=1) that saves when Keras would count an improvement (align.keras_improvement with
    `min_delta`): Keras' ModelCheckpoint(save_best_only=True) with min_delta 0, the epoch EarlyStopping's
    restore_best_weights keeps with the early-stopping min_delta (align: early_stopping_restore_min_delta)."""

    def __init__(self, *, min_delta: float = 0.0, **kwargs: Any) -> None:
        super().__init__(save_top_k=1, **kwargs)
        self.keras_min_delta = abs(min_delta)
        self.keras_best: float | None = None

    def check_monitor_top_k(self, trainer: L.Trainer, current: torch.Tensor | None = None) -> bool:
        if current is None:
            return False
        improved = align.keras_improvement(float(current), self.keras_best, self.mode, self.keras_min_delta)
        if improved:
            self.keras_best = float(current)
        return improved


def best_checkpoint(monitor: str, min_delta: float, alignment: align.Alignment, dirpath: Path,
                    filename: str, weights_only: bool = False) -> ModelCheckpoint:
    """The checkpoint `dirpath`/`filename`.ckpt of the best epoch of `monitor`, in the mode align.torch_monitor_mode
    gives: Keras' rule (KerasRuleCheckpoint, with `min_delta` where early_stopping_restore_min_delta is aligned)
    unless both early-stopping rule differences are native, then Lightning's ModelCheckpoint(save_top_k=1)."""
    settings = {"dirpath": str(dirpath), "filename": filename, "monitor": monitor, "enable_version_counter": False,
                "mode": align.torch_monitor_mode(alignment, monitor), "save_weights_only": weights_only}
    delta = min_delta if align.keras_rule_restore(alignment) else 0.0
    if delta or align.keras_rule_stopping(alignment):
        return KerasRuleCheckpoint(min_delta=delta, **settings)
    return FileCheckpoint(save_top_k=1, **settings)


def last_checkpoint(dirpath: Path, filename: str) -> ModelCheckpoint:
    """Lightning's default checkpointing: the latest epoch, one file replaced at every epoch's end."""
    return FileCheckpoint(dirpath=str(dirpath), filename=filename, monitor=None, save_top_k=1,
                          enable_version_counter=False)


@dataclass
class BestRestore:
    """Early stopping with the best weights reloaded afterwards: the stopper and the checkpoint it reloads."""

    stopper: EarlyStopping
    checkpoint: ModelCheckpoint

    @property
    def callbacks(self) -> list[L.Callback]:
        return [self.stopper, self.checkpoint]

    @property
    def stopped(self) -> bool:
        return self.stopper.stopping_reason != EarlyStoppingReason.NOT_STOPPED

    def restore(self, model: L.LightningModule) -> int:
        """Load the best checkpoint's weights into `model` with torch.load(weights_only=True) (tensors and plain
        containers only: nothing in the file is executed); returns the 0-based epoch it was saved at."""
        saved = torch.load(self.checkpoint.best_model_path, map_location="cpu", weights_only=True)
        model.load_state_dict(saved["state_dict"])
        return int(saved["epoch"])


def early_stopping(settings: dict[str, Any], alignment: align.Alignment, restore_dir: Path) -> BestRestore:
    """Lightning's EarlyStopping (Keras' rule where aligned: KerasRuleEarlyStopping) on `settings` (monitor,
    patience, min_delta) and the weights-only checkpoint in `restore_dir` whose best epoch is reloaded."""
    monitor, patience, min_delta = settings["monitor"], settings["patience"], settings["min_delta"]
    mode = align.torch_monitor_mode(alignment, monitor)
    if align.keras_rule_stopping(alignment):
        stopper: EarlyStopping = KerasRuleEarlyStopping(monitor, patience, mode, min_delta)
    else:
        stopper = EarlyStopping(monitor=monitor, patience=patience, mode=mode, min_delta=min_delta)
    return BestRestore(stopper, best_checkpoint(monitor, min_delta, alignment, restore_dir, "restore",
                                                weights_only=True))
