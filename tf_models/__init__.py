"""Keras side: one builder per course architecture (imports TensorFlow; never imports torch)."""

from __future__ import annotations

import keras

from parity.catalog import get_spec
# The builder modules register their builders; `layers` registers its classes for load_model(safe_mode=True).
from tf_models import basics, layers, series, text, textgen, transfer, vision  # noqa: F401
from tf_models.base import REGISTRY


def build(model_id: str) -> keras.Model:
    """The uncompiled Keras model of `model_id`, built from its catalog spec."""
    spec = get_spec(model_id)
    return REGISTRY.builder_for(spec)(spec)
