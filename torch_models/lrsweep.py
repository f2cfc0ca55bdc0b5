"""The learning-rate sweep, Lightning side: train under the course's schedule, record lr and loss per epoch.

Mirror: tf_models/lrsweep.py. The model starts from the Keras initial weights saved under the
job's `weights_tag` (torch_models.weights.initial_model, as for the `train` job), with the
spec's optimizer in aligned mode, and reads the shared batch plan. `LearningRateScheduler`
does what Keras' callback of that name does: at the start of every epoch it sets the
optimizer's rate to schedule.rate(epoch), the same function the Keras side calls.
"""

from __future__ import annotations

import math
import time
import warnings
from pathlib import Path
from typing import Any

import lightning as L

from parity.spec_types import LrSchedule


class LearningRateScheduler(L.Callback):
    """Keras' LearningRateScheduler in Lightning: every param group's lr = schedule.rate(epoch) at each epoch start."""

    def __init__(self, schedule: LrSchedule) -> None:
        self.schedule = schedule

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        rate = self.schedule.rate(trainer.current_epoch)
        for optimizer in trainer.optimizers:
            for group in optimizer.param_groups:
                group["lr"] = rate


class SweepRecorder(L.Callback):
    """Per finished epoch: the rate the optimizer held and the epoch's mean training loss; stops at a non-finite loss.

    `stopped` is None, or where the loss turned non-finite: {epoch (0-based), step (1-based in the
    epoch), lr}; that epoch is not in the curve.
    """

    def __init__(self, framework: str = "lightning", verbose: bool = True) -> None:
        self.framework = framework
        self.verbose = verbose
        self.lr: list[float] = []
        self.loss: list[float] = []
        self.stopped: dict[str, Any] | None = None

    @staticmethod
    def _rate(trainer: L.Trainer) -> float:
        return float(trainer.optimizers[0].param_groups[0]["lr"])

    def _stop(self, trainer: L.Trainer, step: int) -> None:
        self.stopped = {"epoch": trainer.current_epoch, "step": step, "lr": self._rate(trainer)}
        trainer.should_stop = True

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs, batch, batch_idx: int) -> None:
        if self.stopped is None and not math.isfinite(float(outputs["loss"])):
            self._stop(trainer, batch_idx + 1)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.stopped is not None:
            return
        loss = float(trainer.callback_metrics["loss"])  # the epoch's batch-size-weighted mean, as Keras logs it
        if not math.isfinite(loss):
            self._stop(trainer, trainer.num_training_batches)
            return
        self.lr.append(self._rate(trainer))
        self.loss.append(loss)
        if self.verbose:
            print(f"[{self.framework}] epoch {trainer.current_epoch + 1}/{trainer.max_epochs} lr {self.lr[-1]:.3g} "
                  f"loss {loss:.6g}", flush=True)


def run_lrsweep(job: dict[str, Any]) -> dict[str, Any]:
    """The Lightning half of `parity lrsweep`: the sweep's curve, where it stopped, the parameter count and wall time."""
    import torch

    from parity import align, jobs
    from parity.augment import training_augmentation
    from parity.catalog import get_spec
    from parity.plan import train_plan
    from torch_models.data import plan_loader
    from torch_models.weights import initial_model

    spec = get_spec(job["model"])
    alignment = align.Alignment.from_job(job["native"])
    data = jobs.load_data(Path(job["data"]))
    L.seed_everything(job["seed"], workers=True, verbose=False)
    model = initial_model(spec.id, alignment, Path(job["workdir"]), job["seed"], tag=job["weights_tag"])
    model.train()
    plan = train_plan(spec, len(data.train), job["seed"])
    recorder = SweepRecorder(verbose=job.get("verbose", True))
    # The course's sweep has no validation data; Lightning would warn that validation_step goes unused.
    warnings.filterwarnings("ignore", message=".*`validation_step` but have no `val_dataloader`.*")
    trainer = L.Trainer(
        max_epochs=job["epochs"],
        accelerator="gpu" if torch.cuda.is_available() else "cpu",
        devices=1,
        logger=False,
        callbacks=[LearningRateScheduler(spec.lr_sweep.schedule), recorder],
        enable_checkpointing=False,
        enable_model_summary=False,
        enable_progress_bar=False,
        num_sanity_val_steps=0,
    )
    start = time.perf_counter()
    augmentation = training_augmentation(spec, data.train, alignment, job["seed"])
    trainer.fit(model, train_dataloaders=plan_loader(plan, data.train, augmentation=augmentation))
    return {"params": sum(p.numel() for p in model.parameters()), "lr": recorder.lr, "loss": recorder.loss,
            "stopped": recorder.stopped, "wall_s": time.perf_counter() - start}
