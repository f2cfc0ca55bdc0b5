"""What every Lightning course model shares: the registry, loss, metric and optimizer from the spec.

Every course model maps the names of its Keras twin's weighted layers to its own modules
(`CourseModule.keras_layers`); the weight transfer goes by these names.
"""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from collections.abc import Iterable

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


def numbered(prefix: str, modules: Iterable[nn.Module]) -> dict[str, nn.Module]:
    """{prefix_1: first module, prefix_2: second, ...}: the Keras names of a stack of like layers."""
    return {f"{prefix}_{index}": module for index, module in enumerate(modules, start=1)}


class NllOfProbabilities(nn.Module):
    """A literal port of a softmax model's loss: NLLLoss of log(probabilities) (align: crossentropy_on_probabilities)."""

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return nn.functional.nll_loss(torch.log(torch.softmax(logits, dim=-1)), target)


class CategoricalNllOfProbabilities(nn.Module):
    """A literal port of a softmax model's loss on one-hot targets: -sum(target * log(probabilities)), batch mean."""

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return -(target * torch.log(torch.softmax(logits, dim=-1))).sum(dim=-1).mean()


class BceOfProbabilities(nn.Module):
    """A literal port of a sigmoid model's loss: BCELoss on the probabilities (log clamped at -100 by torch)."""

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return nn.functional.binary_cross_entropy(torch.sigmoid(logits), target)


def _loss(spec: ModelSpec, alignment: align.Alignment) -> nn.Module:
    # Keras' per-sample losses average over the last axis, then over the batch: for (N, 1) outputs and targets
    # that is the mean over all elements, torch's reduction="mean".
    if spec.loss == "mse":
        return nn.MSELoss()
    if spec.loss == "huber":
        return nn.HuberLoss(delta=align.KERAS_HUBER_DELTA)
    # Keras gets probabilities and recovers the logits; aligned torch takes the logits directly.
    # categorical_crossentropy: CrossEntropyLoss reads float targets of the logits' shape as class probabilities.
    if align.loss_on_logits(alignment):
        losses = {"sparse_categorical_crossentropy": nn.CrossEntropyLoss,
                  "categorical_crossentropy": nn.CrossEntropyLoss,
                  "binary_crossentropy": nn.BCEWithLogitsLoss}
    else:
        losses = {"sparse_categorical_crossentropy": NllOfProbabilities,
                  "categorical_crossentropy": CategoricalNllOfProbabilities,
                  "binary_crossentropy": BceOfProbabilities}
    if spec.loss not in losses:
        raise ValueError(f"{spec.id}: no torch loss for {spec.loss!r}; add it to torch_models.base._loss")
    return losses[spec.loss]()


def _metric(spec: ModelSpec, alignment: align.Alignment = align.ALIGNED) -> torchmetrics.Metric:
    if spec.task == "multiclass":
        return torchmetrics.classification.MulticlassAccuracy(spec.layers.classes,
                                                              average=align.accuracy_average(alignment))
    if spec.task == "binary":
        return torchmetrics.classification.BinaryAccuracy(threshold=0.5)
    return torchmetrics.MeanAbsoluteError()


class CourseModule(L.LightningModule, ABC):
    """Base of every course model: subclasses build layers in __init__, map inputs to logits in forward,
    and name their Keras twin's layers in keras_layers."""

    def __init__(self, model_id: str, alignment: align.Alignment) -> None:
        super().__init__()
        self.save_hyperparameters({"model_id": model_id, "native": alignment.to_job()})
        self.spec = get_spec(model_id)
        self.alignment = alignment
        self.loss_fn = _loss(self.spec, alignment)
        self.train_metric = _metric(self.spec, alignment)
        self.val_metric = _metric(self.spec, alignment)
        self.learning_rate: float | None = None  # `parity run --lr`: replaces the optimizer's rate; None: the spec's

    @abstractmethod
    def keras_layers(self) -> dict[str, nn.Module]:
        """Keras layer name (a path inside a nested model, e.g. "trunk/conv2d_3") -> the module taking its weights.

        One entry per weighted Keras layer: nn.Linear for Dense, nn.Conv2d / nn.Conv1d for Conv2D / Conv1D,
        nn.Embedding, nn.BatchNorm2d, nn.LSTM / nn.GRU / nn.RNN (bidirectional=True for a Keras
        Bidirectional). Together the entries hold every parameter and buffer of the model exactly once.
        """

    def predict_outputs(self, logits: torch.Tensor) -> torch.Tensor:
        """What the Keras model outputs: probabilities for classification, values for regression."""
        if self.spec.task == "multiclass":
            return torch.softmax(logits, dim=-1)
        if self.spec.task == "binary":
            return torch.sigmoid(logits)
        return logits

    def metric_inputs(self, logits: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(predictions, target) as the torchmetrics metric takes them: probabilities for binary; for one-hot
        targets the class ids, since Keras' categorical accuracy compares the argmaxes of both."""
        if self.spec.task == "binary":
            return self.predict_outputs(logits), target
        if self.spec.label_mode == "categorical":
            return logits, target.argmax(dim=-1)
        return logits, target

    def _shared_step(self, batch: tuple[torch.Tensor, torch.Tensor], prefix: str, metric: torchmetrics.Metric) -> torch.Tensor:
        x, y = batch
        logits = self(x)
        loss = self.loss_fn(logits, y)
        metric.update(*self.metric_inputs(logits, y))
        self.log(f"{prefix}loss", loss, on_step=False, on_epoch=True, prog_bar=True, batch_size=len(x))
        self.log(f"{prefix}{self.spec.metric}", metric, on_step=False, on_epoch=True, prog_bar=True, batch_size=len(x))
        return loss

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        return self._shared_step(batch, "", self.train_metric)

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        return self._shared_step(batch, "val_", self.val_metric)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        optimizer = self.spec.optimizer
        if self.learning_rate is not None:  # an explicit rate, so no longer the Keras default one
            optimizer = dataclasses.replace(optimizer, learning_rate=self.learning_rate, keras_default_lr=False)
        name, kwargs = align.torch_optimizer_config(optimizer, self.alignment)
        return make_optimizer(name, self.parameters(), kwargs)
