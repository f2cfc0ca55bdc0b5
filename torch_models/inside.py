"""A saved run's trained Lightning model, predicting and looked inside: the `predict` and `inside` jobs.

Mirror: tf_models/inside.py; the parent side is parity.predict and parity.inside. The model is
loaded with torch_models.saving.load_trained (weights_only=True). Feature maps come from forward
hooks on the convolutions the model names in `keras_layers()` and on its pooling modules:
- a Keras Conv2D(activation="relu") outputs after its activation, while nn.Conv2d outputs before the
  torch.relu that forward applies; the tensor the Keras layer outputs is the input of the pooling
  that follows, so a convolution's map is taken there, as the model computed it;
- one nn.MaxPool2d serves every block (torch_models.vision.CnnClassifier), and a hook on a shared
  module fires once per use: the maps are kept in call order, which is the Keras layer order;
- torch's NCHW maps are transposed to Keras' NHWC.
A job with "keras_weights" (the Keras worker's export of its trained model) also answers for a twin
of the model holding those weights: the same weights in both frameworks, so the difference that
remains is the forward computation's alone, apart from the drift that training left between the
frameworks' own trained models.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from parity.weights import load_keras_layers
from torch_models import build
from torch_models.base import CourseModule
from torch_models.saving import load_trained
from torch_models.weights import load_keras_layers_into

POOLING = (nn.MaxPool2d, nn.AvgPool2d)


def trained_models(job: dict[str, Any]) -> dict[str, CourseModule]:
    """{"trained": the run's trained model} and, when the job names job["keras_weights"], {"same_weights": a twin
    built under the same alignment that holds the Keras trained weights}; both in eval mode."""
    trained = load_trained(Path(job["run_dir"]), job["seed"]).eval()
    models = {"trained": trained}
    if job.get("keras_weights"):
        twin = build(trained.spec.id, trained.alignment).to(trained.device)
        load_keras_layers_into(twin, load_keras_layers(Path(job["keras_weights"])), trained.alignment)
        models["same_weights"] = twin.eval()
    return models


def outputs(model: CourseModule, inputs: np.ndarray) -> np.ndarray:
    """What the Keras model outputs (probabilities, or values) for a batch of inputs."""
    with torch.no_grad():
        return model.predict_outputs(model(torch.from_numpy(inputs).to(model.device))).cpu().numpy()


def run_predict(job: dict[str, Any]) -> dict[str, Any]:
    """The outputs of the trained model (and of its same-weights twin) for the batch in job["inputs"]."""
    inputs = np.load(job["inputs"])
    models = trained_models(job)
    result = {"outputs": outputs(models["trained"], inputs).tolist()}
    if "same_weights" in models:
        result["same_weights_outputs"] = outputs(models["same_weights"], inputs).tolist()
    return result


def to_nhwc(maps: torch.Tensor) -> np.ndarray:
    """A batch of NCHW feature maps as NHWC numpy, Keras' layout."""
    return maps.permute(0, 2, 3, 1).cpu().numpy()


def feature_maps(model: CourseModule, images: np.ndarray) -> list[tuple[str, str, np.ndarray]]:
    """(kind "conv" or "pool", name, NHWC map) of every convolution and pooling call, in call order.

    Convolutions carry their Keras layer name; pooling calls are numbered ("pool call 1", ...) since
    one module may serve several blocks.
    """
    convs = {module: name for name, module in model.keras_layers().items() if isinstance(module, nn.Conv2d)}
    pools = [module for module in model.modules() if isinstance(module, POOLING)]
    if not convs:
        raise ValueError(f"{model.spec.id} has no nn.Conv2d among its keras_layers(): no feature maps to show")
    calls: list[tuple[str, Any, torch.Tensor]] = []  # ("conv", name, pre-activation) or ("pool", input, output)
    handles = [conv.register_forward_hook(lambda module, args, out: calls.append(("conv", convs[module], out)))
               for conv in convs]
    handles += [pool.register_forward_hook(lambda module, args, out: calls.append(("pool", args[0], out)))
                for pool in pools]
    try:
        with torch.no_grad():
            model(torch.from_numpy(images).to(model.device))
    finally:
        for handle in handles:
            handle.remove()
    maps, pool_calls = [], 0
    for position, (kind, detail, output) in enumerate(calls):
        if kind == "conv":
            following = calls[position + 1] if position + 1 < len(calls) else None
            if following is None or following[0] != "pool":
                raise ValueError(f"{model.spec.id}: {detail} is not followed by a pooling module, so its activated "
                                 "output is not visible to a hook; feature maps need conv + pool blocks")
            maps.append(("conv", detail, to_nhwc(following[1])))
        else:
            pool_calls += 1
            maps.append(("pool", f"pool call {pool_calls}", to_nhwc(output)))
    return maps


def embedding_weights(model: CourseModule) -> tuple[str, np.ndarray]:
    """The Keras name and the (vocabulary, dim) weights of the model's first nn.Embedding."""
    for name, module in model.keras_layers().items():
        if isinstance(module, nn.Embedding):
            return name, module.weight.detach().cpu().numpy()
    raise ValueError(f"{model.spec.id} has no nn.Embedding among its keras_layers(): no embedding to export")


def run_inside(job: dict[str, Any]) -> dict[str, Any]:
    """job["look"] "feature_maps": the maps for the image batch job["inputs"] (map_I; same_weights_map_I from the
    twin); "embedding": the embedding weights. The arrays go to job["out"] (.npz); the result lists the layers in
    order."""
    models = trained_models(job)
    if job["look"] == "feature_maps":
        images = np.load(job["inputs"])
        maps = feature_maps(models["trained"], images)
        arrays = {f"map_{index}": array for index, (_, _, array) in enumerate(maps)}
        if "same_weights" in models:
            arrays.update({f"same_weights_map_{index}": array
                           for index, (_, _, array) in enumerate(feature_maps(models["same_weights"], images))})
        np.savez(job["out"], **arrays)
        return {"layers": [[kind, name] for kind, name, _ in maps]}
    name, weights = embedding_weights(models["trained"])
    np.savez(job["out"], embedding=weights)
    return {"layers": [["embedding", name]]}
