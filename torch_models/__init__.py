"""Lightning side: one builder per course architecture (imports torch; never imports TensorFlow)."""

from __future__ import annotations

from parity import align
from parity.catalog import get_spec
from torch_models import basics, series, text, textgen, transfer, vision  # noqa: F401  (modules register their builders)
from torch_models.base import REGISTRY, CourseModule


def build(model_id: str, alignment: align.Alignment = align.ALIGNED) -> CourseModule:
    """The LightningModule of `model_id`, built from its catalog spec, with `alignment`'s torch settings."""
    spec = get_spec(model_id)
    return REGISTRY.builder_for(spec)(spec, alignment)
