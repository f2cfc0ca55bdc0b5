"""Lightning callbacks: the course's stop-at-threshold rule and the recorders the report needs."""

from __future__ import annotations

import time

import lightning as L

from parity.catalog import StopRule


class StopAtThreshold(L.Callback):
    """The course's `myCallback`: stop training at epoch end once the rule is met."""

    def __init__(self, rule: StopRule) -> None:
        self.rule = rule
        self.stopped_epoch: int | None = None

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        value = trainer.callback_metrics.get(self.rule.monitor)
        if value is not None and self.rule.reached(float(value)):
            print(f"\n{self.rule.describe()}: reached {self.rule.monitor}={float(value):.4f}, stopping")
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
