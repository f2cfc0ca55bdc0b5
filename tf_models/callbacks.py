"""Keras callbacks: the course's stop-at-threshold rule and the recorders the report needs."""

from __future__ import annotations

import time

import keras

from parity.catalog import StopRule


class StopAtThreshold(keras.callbacks.Callback):
    """The course's `myCallback`: stop training at epoch end once the rule is met."""

    def __init__(self, rule: StopRule) -> None:
        super().__init__()
        self.rule = rule
        self.stopped_epoch: int | None = None

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        value = (logs or {}).get(self.rule.monitor)
        if value is not None and self.rule.reached(float(value)):
            print(f"\n{self.rule.describe()}: reached {self.rule.monitor}={float(value):.4f}, stopping")
            self.stopped_epoch = epoch
            self.model.stop_training = True


class Recorder(keras.callbacks.Callback):
    """Per-epoch history (train and validation), per-step loss and per-epoch wall time."""

    def __init__(self, metric: str) -> None:
        super().__init__()
        self.keys = ("loss", "val_loss", metric, f"val_{metric}")
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
            self.history[key].append(float(logs[key]))
