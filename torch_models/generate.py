"""A saved run's trained Lightning next-word model generating text: the `generate` job.

Mirror: tf_models/generate.py; the parent side is parity.generate, whose `generate_words` runs the
course's loop (tokenize, pad 'pre', predict, pick) around this model's probabilities. Two models
generate: the run's trained one and a twin holding the Keras trained weights (job["keras_weights"],
written by the Keras worker), as `parity predict` compares them (torch_models.inside.trained_models).
"""

from __future__ import annotations

from typing import Any

from parity.generate import generate_words
from torch_models.inside import outputs, trained_models


def run_generate(job: dict[str, Any]) -> dict[str, Any]:
    """{"generations": {"trained": ..., "same_weights": ...}}: each model's generation of job["request"]."""
    return {"generations": {name: generate_words(lambda x, model=model: outputs(model, x), job["request"])
                            for name, model in trained_models(job).items()}}
