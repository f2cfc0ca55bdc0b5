"""A saved run's trained Keras next-word model generating text: the `generate` job.

Mirror: torch_models/generate.py; the parent side is parity.generate, whose `generate_words` runs the
course's loop (tokenize, pad 'pre', predict, pick) around this model's probabilities. The model is
loaded with tf_models.saving.load_trained (safe_mode=True); its weights go to job["keras_weights"]
for the torch side's same-weights generation.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from parity.generate import generate_words
from parity.weights import save_keras_layers
from tf_models.saving import load_trained
from tf_models.weights import export_layers


def run_generate(job: dict[str, Any]) -> dict[str, Any]:
    """{"generations": {"trained": the trained model's generation of job["request"]}}."""
    model = load_trained(Path(job["run_dir"]), job["seed"])
    save_keras_layers(Path(job["keras_weights"]), export_layers(model))
    # A direct call, not model.predict: one sentence per step, without predict's per-call set-up.
    return {"generations": {"trained": generate_words(lambda x: np.asarray(model(x, training=False)), job["request"])}}
