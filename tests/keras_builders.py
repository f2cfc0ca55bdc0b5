"""Keras half of tests/test_builders.py, run in its own process (TensorFlow and torch never share one).

Usage: python tests/keras_builders.py OUT_DIR
Writes OUT_DIR/keras.json (per model: layer names, classes, parameter counts; Lambda check; the
compile and save/load checks; loss values) and OUT_DIR/arrays.npz (fixed inputs, random weights by
variable path, and the outputs of the recurrent and convolutional models for the torch side).
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

import numpy as np

from parity.catalog import CATALOG, get_spec, shaped_by_data
from parity.datasets import stand_in_overrides
from parity.spec_types import TextData

# Models whose weights and outputs the torch side reproduces: the new architectures, each with random
# values in every variable (biases too), so a mix-up of gates, directions or padding shows.
FORWARD_MODELS = ("c3w3_sarcasm_bilstm", "c3w3_imdb_bilstm2", "c4w4_daily_min_temp", "c2w4_rps_cnn")
FORWARD_BATCH = 4
SAVE_MODEL = "c4w4_daily_min_temp"
COMPILED_MODELS = ("c4w4_daily_min_temp", "c2w4_rps_cnn")  # huber + mae; categorical_crossentropy + accuracy


def _layers(model, prefix: str = "") -> list[dict]:
    """Every layer, nested models walked recursively; names are paths ("trunk/conv2d_3")."""
    import keras

    rows = []
    for layer in model.layers:
        path = f"{prefix}{layer.name}"
        rows.append({"name": path, "class": type(layer).__name__, "params": int(layer.count_params())})
        if isinstance(layer, keras.Model):
            rows += _layers(layer, prefix=f"{path}/")
    return rows


def _inputs(spec, rng: np.random.Generator) -> np.ndarray:
    """A batch of random inputs: token ids for text models (32 steps where the length is free), else N(0, 1)."""
    shape = (FORWARD_BATCH, *(32 if size is None else size for size in spec.input_shape))
    if isinstance(spec.data, TextData):
        return rng.integers(0, spec.layers.vocab_size, size=shape).astype(np.int32)
    return rng.normal(size=shape).astype(np.float32)


def _random_value(path: str, shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    """Random values that keep activations of order one: kernels N(0, 1/fan_in), embeddings and biases wider."""
    if path.endswith("embeddings"):
        scale = 0.5
    elif len(shape) == 1:
        scale = 0.2
    else:
        scale = float(np.prod(shape[:-1])) ** -0.5
    return rng.normal(scale=scale, size=shape).astype(np.float32)


def _forward(model_id: str, rng: np.random.Generator, arrays: dict[str, np.ndarray]) -> None:
    """Random values in every variable (key: the variable's path inside the model), inputs and outputs."""
    from tf_models import build

    model = build(model_id)
    for variable in model.weights:
        path = variable.path.split("/", 1)[1]
        variable.assign(_random_value(path, tuple(variable.shape), rng))
        arrays[f"{model_id}:weight:{path}"] = variable.numpy()
    x = _inputs(get_spec(model_id), rng)
    arrays[f"{model_id}:x"] = x
    arrays[f"{model_id}:y"] = np.asarray(model(x, training=False))


def _compile_and_evaluate(model_id: str, rng: np.random.Generator) -> dict[str, float]:
    """compile_model from the spec, then evaluate on a few generated samples: the logged keys and values."""
    from tf_models import build
    from tf_models.base import compile_model

    spec = get_spec(model_id)
    model = compile_model(build(model_id), spec)
    x = _inputs(spec, rng)
    if spec.label_mode == "categorical":
        y = np.eye(spec.classes, dtype=np.float32)[rng.integers(0, spec.classes, FORWARD_BATCH)]
    else:
        y = rng.normal(size=(FORWARD_BATCH, 1)).astype(np.float32)
    return {key: float(value) for key, value in model.evaluate(x, y, verbose=0, return_dict=True).items()}


def _save_and_load(rng: np.random.Generator) -> dict:
    """The Scale layer through model.save and load_model(safe_mode=True); a Lambda model must be refused."""
    import keras

    from tf_models import build

    model = build(SAVE_MODEL)
    x = _inputs(get_spec(SAVE_MODEL), rng)
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "model.keras"
        model.save(path)
        loaded = keras.models.load_model(path, safe_mode=True)
        lambda_model = keras.Sequential([keras.Input(shape=(1,)), keras.layers.Lambda(lambda t: t * 2.0)])
        lambda_path = Path(directory) / "lambda.keras"
        lambda_model.save(lambda_path)
        try:
            keras.models.load_model(lambda_path, safe_mode=True)
            lambda_refused = False
        except ValueError:
            lambda_refused = True
    scale = loaded.get_layer("scale")
    return {
        "max_abs_diff": float(np.max(np.abs(np.asarray(model(x)) - np.asarray(loaded(x))))),
        "loaded_scale_class": type(scale).__name__,
        "loaded_scale_factor": scale.factor,
        "loaded_names": [layer.name for layer in loaded.layers],
        "lambda_refused": lambda_refused,
    }


def _losses(arrays: dict[str, np.ndarray], rng: np.random.Generator) -> dict[str, float]:
    """Keras' losses as compile(loss=NAME) applies them (per-sample function, then the batch mean), and the classes."""
    import keras

    targets = rng.normal(size=(64, 1)).astype(np.float32)
    predictions = (targets + rng.normal(scale=2.0, size=(64, 1))).astype(np.float32)  # errors on both sides of delta
    logits = rng.normal(scale=2.0, size=(64, 5)).astype(np.float32)
    one_hot = np.eye(5, dtype=np.float32)[rng.integers(0, 5, 64)]
    probabilities = keras.ops.softmax(logits)
    arrays |= {"huber:y": targets, "huber:p": predictions, "cce:y": one_hot, "cce:logits": logits}
    return {
        "huber": float(np.mean(keras.losses.get("huber")(targets, predictions))),
        "huber_class": float(keras.losses.Huber()(targets, predictions)),
        "categorical_crossentropy": float(np.mean(keras.losses.get("categorical_crossentropy")(one_hot,
                                                                                                probabilities))),
        "categorical_crossentropy_class": float(keras.losses.CategoricalCrossentropy()(one_hot, probabilities)),
    }


def main(out_dir: str) -> None:
    import keras
    import tensorflow as tf

    from tf_models import build
    from tf_models.base import REGISTRY

    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    models = {}
    # The next-word models take their vocabulary size and input length from the data: their stand-in's.
    with shaped_by_data(stand_in_overrides(list(CATALOG))):
        built = {spec.id: (build(spec.id), build(spec.id)) for spec in map(get_spec, CATALOG)
                 if spec.trainable and spec.architecture in REGISTRY}
    for model_id, (model, again) in built.items():
        # The second build in the same process: Keras' automatic names would count on ("dense_1"), explicit ones not.
        models[model_id] = {
            "params": int(model.count_params()),
            "layers": _layers(model),
            "variables": [variable.path for variable in model.weights],
            "second_build": {"layers": _layers(again), "variables": [variable.path for variable in again.weights]},
        }
    arrays: dict[str, np.ndarray] = {}
    for model_id in FORWARD_MODELS:
        _forward(model_id, rng, arrays)
    report = {
        "models": models,
        "compiled": {model_id: _compile_and_evaluate(model_id, rng) for model_id in COMPILED_MODELS},
        "save_and_load": _save_and_load(rng),
        "losses": _losses(arrays, rng),
    }
    out = Path(out_dir)
    (out / "keras.json").write_text(json.dumps(report, indent=1))
    np.savez(out / "arrays.npz", **arrays)


if __name__ == "__main__":
    main(sys.argv[1])
