"""The two tiny data sets that Part 1 writes inline in the notebook; validation = the training points."""

from __future__ import annotations

import numpy as np

from parity.catalog import ModelSpec
from parity.datasets.split import DataSplit, make_split


def hello_world(spec: ModelSpec) -> DataSplit:
    """xs = -1..4, ys = 2x - 1 (C1W1 'hello world')."""
    xs = np.array([-1.0, 0.0, 1.0, 2.0, 3.0, 4.0], dtype=np.float32)
    return _split(spec, xs, 2 * xs - 1)


def house_prices(spec: ModelSpec) -> DataSplit:
    """1..6 bedrooms, price = 0.5 + 0.5 * bedrooms in 100k (C1W1 exercise)."""
    bedrooms = np.arange(1, 7, dtype=np.float32)
    return _split(spec, bedrooms, 0.5 + 0.5 * bedrooms)


def _split(spec: ModelSpec, xs: np.ndarray, ys: np.ndarray) -> DataSplit:
    points = (xs, ys)
    generator = {"function": f"{__name__}.{spec.dataset}", "x": xs.tolist(), "y": ys.tolist()}
    return make_split(spec, "real", points, points, "inline", {"generator": generator})
