"""The learning-rate sweep, Keras side: fit under the course's LearningRateScheduler, record lr and loss per epoch.

Mirror: torch_models/lrsweep.py. The model is built and compiled as for the `train` job, its
initial weights are saved for the torch side under the job's `weights_tag`, and it fits the
shared batch plan. The rate is the course's `keras.callbacks.LearningRateScheduler` with the
spec's schedule; `SweepRecorder` reads the rate back from the optimizer every epoch and stops
at the first non-finite loss (as keras.callbacks.TerminateOnNaN would, but saying where).
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import keras


class SweepRecorder(keras.callbacks.Callback):
    """Per finished epoch: the rate the optimizer held and the epoch's mean training loss; stops at a non-finite loss.

    `stopped` is None, or where the loss turned non-finite: {epoch (0-based), step (1-based in the
    epoch), lr}; that epoch is not in the curve.
    """

    def __init__(self, framework: str = "keras", verbose: bool = True) -> None:
        super().__init__()
        self.framework = framework
        self.verbose = verbose
        self.lr: list[float] = []
        self.loss: list[float] = []
        self.stopped: dict[str, Any] | None = None
        self._epoch = 0

    def _rate(self) -> float:
        return float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))

    def _stop(self, step: int) -> None:
        self.stopped = {"epoch": self._epoch, "step": step, "lr": self._rate()}
        self.model.stop_training = True

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self._epoch = epoch

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        if self.stopped is None and not math.isfinite(float(logs["loss"])):  # the epoch's running mean so far
            self._stop(batch + 1)

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        loss = float(logs["loss"])
        if self.stopped is None and not math.isfinite(loss):
            self._stop(self.params["steps"])
        if self.stopped is not None:
            return
        self.lr.append(self._rate())
        self.loss.append(loss)
        if self.verbose:
            print(f"[{self.framework}] epoch {epoch + 1}/{self.params['epochs']} lr {self.lr[-1]:.3g} "
                  f"loss {loss:.6g}", flush=True)


def run_lrsweep(job: dict[str, Any]) -> dict[str, Any]:
    """The Keras half of `parity lrsweep`: the sweep's curve, where it stopped, the parameter count and wall time."""
    from parity import align, jobs
    from parity.augment import training_augmentation
    from parity.catalog import get_spec
    from parity.plan import train_plan
    from parity.weights import save_keras_layers
    from tf_models import build
    from tf_models.base import compile_model
    from tf_models.data import train_dataset
    from tf_models.weights import export_layers

    spec = get_spec(job["model"])
    data = jobs.load_data(Path(job["data"]))
    keras.utils.set_random_seed(job["seed"])
    model = build(spec.id)
    save_keras_layers(jobs.init_weights_path(Path(job["workdir"]), job["weights_tag"]), export_layers(model))
    compile_model(model, spec)
    plan = train_plan(spec, len(data.train), job["seed"])
    recorder = SweepRecorder(verbose=job.get("verbose", True))
    start = time.perf_counter()
    model.fit(
        train_dataset(plan, data.train, job["epochs"], augmentation=training_augmentation(
            spec, data.train, align.Alignment.from_job(job.get("native", ())), job["seed"])),
        epochs=job["epochs"],
        steps_per_epoch=plan.steps_per_epoch,
        callbacks=[keras.callbacks.LearningRateScheduler(spec.lr_sweep.schedule.rate), recorder],
        shuffle=False,  # the batch plan already shuffled
        verbose=0,
    )
    return {"params": model.count_params(), "lr": recorder.lr, "loss": recorder.loss, "stopped": recorder.stopped,
            "wall_s": time.perf_counter() - start}
