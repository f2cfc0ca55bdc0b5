"""What every Lightning course model shares: the registry, loss, metric and optimizer from the spec."""

from __future__ import annotations

import lightning as L
import torch
import torchmetrics
from torch import nn

from parity import align
from parity.catalog import ModelSpec, get_spec
from parity.registry import BuilderRegistry
from torch_models.optimizers import make_optimizer

REGISTRY = BuilderRegistry("lightning")


def output_units(spec: ModelSpec) -> int:
    """Units of the last Linear: one per class for multiclass, one for binary and regression."""
    return spec.classes


class NllOfProbabilities(nn.Module):
    """A literal port of a softmax model's loss: NLLLoss of log(probabilities) (align: crossentropy_on_probabilities)."""

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return nn.functional.nll_loss(torch.log(torch.softmax(logits, dim=-1)), target)


class BceOfProbabilities(nn.Module):
    """A literal port of a sigmoid model's loss: BCELoss on the probabilities (log clamped at -100 by torch)."""

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return nn.functional.binary_cross_entropy(torch.sigmoid(logits), target)


def _loss(spec: ModelSpec, alignment: align.Alignment) -> nn.Module:
    # Keras gets probabilities and recovers the logits; aligned torch takes the logits directly.
    if align.loss_on_logits(alignment):
        losses = {"sparse_categorical_crossentropy": nn.CrossEntropyLoss, "binary_crossentropy": nn.BCEWithLogitsLoss}
    else:
        losses = {"sparse_categorical_crossentropy": NllOfProbabilities, "binary_crossentropy": BceOfProbabilities}
    return {**losses, "mse": nn.MSELoss}[spec.loss]()


def _metric(spec: ModelSpec, alignment: align.Alignment = align.ALIGNED) -> torchmetrics.Metric:
    if spec.task == "multiclass":
        return torchmetrics.classification.MulticlassAccuracy(spec.layers.classes,
                                                              average=align.accuracy_average(alignment))
    if spec.task == "binary":
        return torchmetrics.classification.BinaryAccuracy(threshold=0.5)
    return torchmetrics.MeanAbsoluteError()


class CourseModule(L.LightningModule):
    """Base of every course model: subclasses build layers in __init__ and map inputs to logits in forward."""

    def __init__(self, model_id: str, alignment: align.Alignment) -> None:
        super().__init__()
        self.save_hyperparameters({"model_id": model_id, "native": alignment.to_job()})
        self.spec = get_spec(model_id)
        self.alignment = alignment
        self.loss_fn = _loss(self.spec, alignment)
        self.train_metric = _metric(self.spec, alignment)
        self.val_metric = _metric(self.spec, alignment)

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
        name, kwargs = align.torch_optimizer_config(self.spec.optimizer, self.alignment)
        return make_optimizer(name, self.parameters(), kwargs)
