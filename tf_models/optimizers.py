"""The Keras optimizer of a spec, every value explicit (parity.align.keras_optimizer_config).

Mirror: torch_models/optimizers.py, which also holds Keras' update rules written in torch ops.
"""

from __future__ import annotations

import keras

from parity import align
from parity.catalog import Optimizer


def make_optimizer(optimizer: Optimizer) -> keras.optimizers.Optimizer:
    """The keras.optimizers instance for `optimizer`."""
    name, kwargs = align.keras_optimizer_config(optimizer)
    return getattr(keras.optimizers, name)(**kwargs)
