"""The catalog of course models: one framework-neutral spec per model.

A spec is data only (types in `parity.spec_types`). Both `tf_models` and `torch_models` read
every hyperparameter from it, so a number lives in exactly one place. Listing models is a
query on `CATALOG`, filled from `parity.specs` (one module per course part).
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Mapping

from parity.spec_types import (
    LABEL_MODES,
    LOSSES,
    OPTIMIZERS,
    TASKS,
    VALIDATION,
    ModelSpec,
    Optimizer,
    Reference,
    StopRule,
)
from parity.specs import part1, part2, part3, part4

__all__ = [
    "CATALOG", "LABEL_MODES", "LOSSES", "OPTIMIZERS", "TASKS", "VALIDATION", "ModelSpec", "Optimizer", "Reference",
    "StopRule", "UnknownModelError", "get_spec",
]


class UnknownModelError(ValueError):
    """A model id that the catalog does not hold."""


def _build_catalog() -> dict[str, ModelSpec]:
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
