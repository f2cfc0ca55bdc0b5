"""The catalog of course models: one framework-neutral spec per model.

A spec is data only. Both `tf_models` and `torch_models` read every hyperparameter
from it, so a number lives in exactly one place. Listing models is a query on
`CATALOG`, filled from `parity.specs` (one module per course part).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Mapping

TASKS = ("multiclass", "binary", "regression", "none")
LOSSES = (
    "sparse_categorical_crossentropy",
    "categorical_crossentropy",
    "binary_crossentropy",
    "mse",
    "huber",
    "none",
)
OPTIMIZERS = ("sgd", "adam", "rmsprop")


class UnknownModelError(ValueError):
    """A model id that the catalog does not hold."""


@dataclass(frozen=True)
class Optimizer:
    """An optimizer as the course compiles it; every value explicit, none left to defaults."""

    name: str
    learning_rate: float
    momentum: float = 0.0
    # True where the course passed the optimizer as a string ('sgd'), i.e. relied on Keras' default lr.
    keras_default_lr: bool = False

    def __post_init__(self) -> None:
        if self.name not in OPTIMIZERS:
            raise ValueError(f"optimizer {self.name!r} is not one of {OPTIMIZERS}")


@dataclass(frozen=True)
class StopRule:
    """The course's stop-at-threshold callback, checked on the training logs at epoch end."""

    monitor: str
    threshold: float
    below: bool

    def reached(self, value: float) -> bool:
        """True when `value` of `monitor` has crossed the threshold."""
        return value < self.threshold if self.below else value >= self.threshold

    def describe(self) -> str:
        return f"stop when {self.monitor} {'<' if self.below else '>='} {self.threshold}"


@dataclass(frozen=True)
class Reference:
    """The course's own result for a model: a number where one was printed, and where it came from."""

    text: str
    val_metric: float | None = None


@dataclass(frozen=True)
class ModelSpec:
    """One course model: data, architecture hyperparameters, training recipe, reference."""

    id: str
    part: int
    week: int
    title: str
    dataset: str
    task: str
    architecture: str | None
    layers: Mapping[str, Any]
    input_shape: tuple[int, ...]
    optimizer: Optimizer | None
    loss: str
    epochs: int
    batch_size: int
    course_params: int | None
    reference: Reference
    data: Mapping[str, Any] = field(default_factory=dict)
    stop: StopRule | None = None

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise ValueError(f"{self.id}: task {self.task!r} is not one of {TASKS}")
        if self.loss not in LOSSES:
            raise ValueError(f"{self.id}: loss {self.loss!r} is not one of {LOSSES}")
        object.__setattr__(self, "layers", MappingProxyType(dict(self.layers)))
        object.__setattr__(self, "data", MappingProxyType(dict(self.data)))

    @property
    def metric(self) -> str | None:
        """The report's metric: `accuracy` for classification, `mae` for regression."""
        if self.task in ("multiclass", "binary"):
            return "accuracy"
        if self.task == "regression":
            return "mae"
        return None

    @property
    def trainable(self) -> bool:
        """Whether the course trains a network for this id (some labs only preprocess or forecast)."""
        return self.architecture is not None


def _build_catalog() -> dict[str, ModelSpec]:
    from parity.specs import part1, part2, part3, part4

    catalog: dict[str, ModelSpec] = {}
    for module in (part1, part2, part3, part4):
        for spec in module.SPECS:
            if spec.id in catalog:
                raise ValueError(f"duplicate model id {spec.id!r} in {module.__name__}")
            catalog[spec.id] = spec
    return catalog


CATALOG: Mapping[str, ModelSpec] = MappingProxyType(_build_catalog())


def get_spec(model_id: str) -> ModelSpec:
    """The spec of `model_id`; an unknown id raises with the list of valid ones."""
    try:
        return CATALOG[model_id]
    except KeyError:
        raise UnknownModelError(
            f"unknown model id {model_id!r}; valid ids: {', '.join(CATALOG)}"
        ) from None
