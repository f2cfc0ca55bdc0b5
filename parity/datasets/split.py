"""`DataSplit`, the arrays both frameworks consume, and the one place that fixes their layout."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Mapping

import numpy as np

from parity.catalog import ModelSpec
from parity.errors import DataError

SOURCES = ("real", "synthetic")


@dataclass(frozen=True)
class DataSplit:
    """Training and validation arrays of one data set, exactly as both frameworks consume them.

    x: (N, *spec.input_shape), C-contiguous; y: int64 (N,) for multiclass, float32 (N, 1) for
    binary and regression. `location` is the file or directory read, or "inline"/"generated".
    """

    dataset_id: str
    source: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    location: str
    info: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.source not in SOURCES:
            raise ValueError(f"source {self.source!r} is not one of {SOURCES}")
        object.__setattr__(self, "info", MappingProxyType(dict(self.info)))


def make_split(
    spec: ModelSpec,
    source: str,
    train: tuple[np.ndarray, np.ndarray],
    val: tuple[np.ndarray, np.ndarray],
    location: str,
    info: Mapping[str, Any] | None = None,
) -> DataSplit:
    """A DataSplit with inputs shaped to `spec.input_shape` and labels typed for `spec.task`."""
    (x_train, y_train), (x_val, y_val) = train, val
    return DataSplit(
        dataset_id=spec.dataset,
        source=source,
        x_train=_inputs(spec, x_train),
        y_train=_labels(spec, y_train, len(x_train)),
        x_val=_inputs(spec, x_val),
        y_val=_labels(spec, y_val, len(x_val)),
        location=location,
        info=info or {},
    )


def _inputs(spec: ModelSpec, x: np.ndarray) -> np.ndarray:
    per_sample = math.prod(x.shape[1:])
    if per_sample != math.prod(spec.input_shape):
        raise DataError(
            f"{spec.id}: samples of {spec.dataset} have shape {x.shape[1:]}, "
            f"which does not fit the model's input shape {spec.input_shape}"
        )
    return np.ascontiguousarray(x.reshape((len(x), *spec.input_shape)))


def _labels(spec: ModelSpec, y: np.ndarray, count: int) -> np.ndarray:
    if len(y) != count:
        raise DataError(f"{spec.id}: {len(y)} labels for {count} samples of {spec.dataset}")
    if spec.task == "multiclass":
        return np.ascontiguousarray(y, dtype=np.int64).reshape(count)
    return np.ascontiguousarray(y, dtype=np.float32).reshape(count, 1)
