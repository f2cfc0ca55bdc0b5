"""A saved run's trained Keras model, predicting and looked inside: the `predict` and `inside` jobs.

Mirror: torch_models/inside.py; the parent side is parity.predict and parity.inside. The model is
loaded with tf_models.saving.load_trained (safe_mode=True). Feature maps are the course's
intermediate-representation model, keras.Model(model.inputs, [layer.output for each Conv2D and
MaxPooling2D layer]): a Conv2D layer's output is after its activation. A job with "keras_weights"
also saves the trained model's weights there, for the torch side's same-weights comparison.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import keras
import numpy as np

from parity.weights import save_keras_layers
from tf_models.saving import load_trained
from tf_models.weights import export_layers


def _trained(job: dict[str, Any]) -> keras.Model:
    """The run's trained model; its weights saved to job["keras_weights"] when the job names that file."""
    model = load_trained(Path(job["run_dir"]), job["seed"])
    if job.get("keras_weights"):
        save_keras_layers(Path(job["keras_weights"]), export_layers(model))
    return model


def run_predict(job: dict[str, Any]) -> dict[str, Any]:
    """The trained model's outputs (probabilities, or values) for the batch in job["inputs"]."""
    model = _trained(job)
    return {"outputs": np.asarray(model.predict(np.load(job["inputs"]), verbose=0)).tolist()}


def feature_maps(model: keras.Model, images: np.ndarray) -> list[tuple[str, str, np.ndarray]]:
    """(kind "conv" or "pool", layer name, NHWC output) of every Conv2D and MaxPooling2D layer, in model order."""
    kinds = {keras.layers.Conv2D: "conv", keras.layers.MaxPooling2D: "pool"}
    kept = [(kind, layer) for layer in model.layers for cls, kind in kinds.items() if isinstance(layer, cls)]
    if not kept:
        raise ValueError(f"{model.name} has no Conv2D or MaxPooling2D layer: no feature maps to show")
    extractor = keras.Model(model.inputs, [layer.output for _, layer in kept])
    outputs = extractor.predict(images, verbose=0)
    return [(kind, layer.name, np.asarray(output)) for (kind, layer), output in zip(kept, outputs)]


def embedding_weights(model: keras.Model) -> tuple[str, np.ndarray]:
    """The name and the (vocabulary, dim) weights of the model's first Embedding layer."""
    for layer in model.layers:
        if isinstance(layer, keras.layers.Embedding):
            return layer.name, np.asarray(layer.get_weights()[0])
    raise ValueError(f"{model.name} has no Embedding layer: no embedding to export")


def run_inside(job: dict[str, Any]) -> dict[str, Any]:
    """job["look"] "feature_maps": the maps for the image batch job["inputs"]; "embedding": the embedding
    weights. The arrays go to job["out"] (.npz); the result lists the layers in order."""
    model = _trained(job)
    if job["look"] == "feature_maps":
        maps = feature_maps(model, np.load(job["inputs"]))
        np.savez(job["out"], **{f"map_{index}": array for index, (_, _, array) in enumerate(maps)})
        return {"layers": [[kind, name] for kind, name, _ in maps]}
    name, weights = embedding_weights(model)
    np.savez(job["out"], embedding=weights)
    return {"layers": [["embedding", name]]}
