"""What every Lightning course model shares: the registry, loss, metric and optimizer from the spec."""

from __future__ import annotations

import lightning as L
import torch
import torchmetrics
from torch import nn

from parity import align
from parity.catalog import ModelSpec, get_spec
from parity.registry import BuilderRegistry

REGISTRY = BuilderRegistry("lightning")


def output_units(spec: ModelSpec) -> int:
    """Units of the last Linear: one per class for multiclass, one for binary and regression."""
    return spec.layers["classes"] if spec.task == "multiclass" else spec.layers.get("units", 1)


def _loss(spec: ModelSpec) -> nn.Module:
    # Keras gets probabilities and recovers the logits; torch takes the logits directly (align: crossentropy_on_probabilities).
    losses = {
        "sparse_categorical_crossentropy": nn.CrossEntropyLoss,
        "binary_crossentropy": nn.BCEWithLogitsLoss,
        "mse": nn.MSELoss,
    }
    return losses[spec.loss]()


def _metric(spec: ModelSpec) -> torchmetrics.Metric:
    if spec.task == "multiclass":
        # align.accuracy_average: Keras counts samples; torchmetrics' default is a per-class mean.
        return torchmetrics.classification.MulticlassAccuracy(
            spec.layers["classes"], average=align.TORCHMETRICS_ACCURACY_AVERAGE
        )
    if spec.task == "binary":
        return torchmetrics.classification.BinaryAccuracy(threshold=0.5)
    return torchmetrics.MeanAbsoluteError()


class CourseModule(L.LightningModule):
    """Base of every course model: subclasses build layers in __init__ and map inputs to logits in forward."""

    def __init__(self, model_id: str, mode: str) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.spec = get_spec(model_id)
        self.mode = align.check_mode(mode)
        self.loss_fn = _loss(self.spec)
        self.train_metric = _metric(self.spec)
        self.val_metric = _metric(self.spec)

    def predict_outputs(self, logits: torch.Tensor) -> torch.Tensor:
        """What the Keras model outputs: probabilities for classification, values for regression."""
        if self.spec.task == "multiclass":
            return torch.softmax(logits, dim=-1)
        if self.spec.task == "binary":
            return torch.sigmoid(logits)
        return logits

    def _shared_step(self, batch: tuple[torch.Tensor, torch.Tensor], prefix: str, metric: torchmetrics.Metric) -> torch.Tensor:
        x, y = batch
        logits = self(x)
        loss = self.loss_fn(logits, y)
        metric.update(self.predict_outputs(logits) if self.spec.task == "binary" else logits, y)
        self.log(f"{prefix}loss", loss, on_step=False, on_epoch=True, prog_bar=True, batch_size=len(x))
        self.log(f"{prefix}{self.spec.metric}", metric, on_step=False, on_epoch=True, prog_bar=True, batch_size=len(x))
        return loss

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        return self._shared_step(batch, "", self.train_metric)

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        return self._shared_step(batch, "val_", self.val_metric)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        name, kwargs = align.torch_optimizer_config(self.spec.optimizer, self.mode)
        return getattr(torch.optim, name)(self.parameters(), **kwargs)
