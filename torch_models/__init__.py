"""Lightning side: one builder per course architecture (imports torch; never imports TensorFlow)."""

from __future__ import annotations

from parity.catalog import get_spec
from torch_models import basics, series, text, vision  # noqa: F401  (modules register their builders)
from torch_models.base import REGISTRY, CourseModule


def build(model_id: str, mode: str = "aligned") -> CourseModule:
    """The LightningModule of `model_id`, built from its catalog spec."""
    spec = get_spec(model_id)
    return REGISTRY.builder_for(spec)(spec, mode)
