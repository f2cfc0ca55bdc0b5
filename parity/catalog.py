"""The catalog of course models: one framework-neutral spec per model.

A spec is data only (types in `parity.spec_types`). Both `tf_models` and `torch_models` read
every hyperparameter from it, so a number lives in exactly one place. Listing models is a
query on `CATALOG`, filled from `parity.specs` (one module per course part).
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator
from types import MappingProxyType
from typing import Any, Mapping

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
    "StopRule", "UnknownModelError", "get_spec", "require_data_sizes", "resolve_spec", "shaped_by_data",
]

# Sizes that only the data fixes (a fitted vocabulary, the longest text-generation line), per model id, while a
# worker runs a job whose data stated them (`shaped_by_data`); empty in the harness process.
_DATA_OVERRIDES: dict[str, Mapping[str, Any]] = {}
OVERRIDE_KEYS = ("layers", "input_shape")


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
        spec = CATALOG[model_id]
    except KeyError:
        raise UnknownModelError(
            f"unknown model id {model_id!r}; valid ids: {', '.join(CATALOG)}"
        ) from None
    return resolve_spec(spec, _DATA_OVERRIDES.get(model_id))


def resolve_spec(spec: ModelSpec, overrides: Mapping[str, Any] | None) -> ModelSpec:
    """`spec` with the sizes its data fixed: `overrides` is a loader's `DataSplit.info["spec_overrides"]`,
    {"layers": {field: value}, "input_shape": [...]}, e.g. a fitted vocabulary's size; None or {}: `spec` as is."""
    if not overrides:
        return spec
    unknown = sorted(set(overrides) - set(OVERRIDE_KEYS))
    if unknown:
        raise ValueError(f"{spec.id}: spec overrides {unknown} are not among {OVERRIDE_KEYS}")
    changes: dict[str, Any] = {}
    if overrides.get("layers"):
        if spec.layers is None:
            raise ValueError(f"{spec.id} trains no network: layer overrides {dict(overrides['layers'])} do not apply")
        changes["layers"] = dataclasses.replace(spec.layers, **overrides["layers"])
    if "input_shape" in overrides:
        changes["input_shape"] = tuple(overrides["input_shape"])
    return dataclasses.replace(spec, **changes)


def require_data_sizes(spec: ModelSpec) -> None:
    """Raise unless `spec`'s vocabulary size and input length are known (resolved where the data leaves them)."""
    if getattr(spec.layers, "vocab_size", 0) is None or None in spec.input_shape:
        raise ValueError(f"{spec.id}: the vocabulary size and input length come from the data; build it within "
                         "parity.catalog.shaped_by_data(split.spec_overrides(model_id)) (a worker job's "
                         "\"spec_overrides\")")


@contextlib.contextmanager
def shaped_by_data(overrides: Mapping[str, Mapping[str, Any]] | None) -> Iterator[None]:
    """Within the block, `get_spec(model_id)` returns the spec resolved with `overrides[model_id]`.

    A worker enters it around each job (the job's "spec_overrides", which the harness took from the data
    split), so every builder, whatever path it is reached by, builds the model the data needs.
    """
    previous = dict(_DATA_OVERRIDES)
    _DATA_OVERRIDES.update({model_id: value for model_id, value in (overrides or {}).items() if value})
    try:
        yield
    finally:
        _DATA_OVERRIDES.clear()
        _DATA_OVERRIDES.update(previous)
