"""Export a Keras model's weights by layer name for parity.weights, and the Keras half of the forward check.

Name paths: a top-level layer is addressed by its name, a layer of a nested model by
`<model name>/<layer name>` (recursively). Arrays are keyed by the variable path relative to
the layer, as Keras 3 builds it: `kernel`, `lstm_cell/recurrent_kernel`,
`forward_lstm/lstm_cell/bias` (a Bidirectional's two directions stay apart).
"""

from __future__ import annotations

from collections.abc import Container, Iterator
from pathlib import Path
from typing import Any

import keras
import numpy as np

from parity.align import Alignment, copied_keras_kinds
from parity.weights import KerasLayer, WeightMappingError

# Config entries a converter reads (harmless where unused); values are plain JSON.
_CONFIG_KEYS = ("use_bias", "activation", "recurrent_activation", "reset_after", "go_backwards", "return_sequences",
                "center", "scale", "axis", "epsilon", "momentum", "data_format", "padding", "mask_zero")
# Layers that leave every feature where it is: a Dense behind a Flatten and these still sees the flattened order.
_SHAPE_PRESERVING = ("Dropout", "GaussianDropout", "AlphaDropout", "GaussianNoise", "Activation", "ReLU", "LeakyReLU",
                     "ELU", "Softmax", "ActivityRegularization", "Identity")
_DROPOUT = ("Dropout", "SpatialDropout1D", "SpatialDropout2D", "SpatialDropout3D", "GaussianDropout", "AlphaDropout")


def _walk(model: keras.Model, prefix: str = "", trainable: bool = True,
          enclosing: tuple[keras.Model, ...] = ()) -> Iterator[tuple[str, keras.layers.Layer, bool, tuple]]:
    """(name path, layer, effectively trainable, nested models around it) for every non-model layer."""
    for layer in model.layers:
        name = f"{prefix}{layer.name}"
        if isinstance(layer, keras.Model):
            yield from _walk(layer, f"{name}/", trainable and layer.trainable, (*enclosing, layer))
        else:
            yield name, layer, trainable and layer.trainable, enclosing


def _plain_config(config: dict[str, Any]) -> dict[str, Any]:
    return {key: config[key] for key in _CONFIG_KEYS
            if key in config and isinstance(config[key], (str, int, float, bool, list, type(None)))}


def _config(layer: keras.layers.Layer) -> dict[str, Any]:
    if isinstance(layer, keras.layers.Bidirectional):
        return {"merge_mode": layer.merge_mode, "layer": type(layer.forward_layer).__name__,
                "backward_layer": type(layer.backward_layer).__name__, "forward": layer.forward_layer.name,
                "backward": layer.backward_layer.name, "inner": _plain_config(layer.forward_layer.get_config())}
    return _plain_config(layer.get_config())


def _relative_variables(layer: keras.layers.Layer) -> dict[str, keras.Variable]:
    """The layer's variables keyed by their path below the layer's own path (both set when the layer is built).

    A Bidirectional's variables are keyed through its two layers (`forward_lstm/lstm_cell/kernel`): loaded from a
    .keras file, Keras 3 builds those layers outside the Bidirectional's path (`forward_lstm/...`, not
    `model/bilstm/forward_lstm/...`), and the keys must be those of the freshly built model.
    """
    if isinstance(layer, keras.layers.Bidirectional):
        return {f"{inner.name}/{key}": variable for inner in (layer.forward_layer, layer.backward_layer)
                for key, variable in _relative_variables(inner).items()}
    variables = {}
    for variable in layer.weights:
        if not variable.path.startswith(f"{layer.path}/"):
            raise ValueError(f"variable {variable.path} of layer {layer.path} was not created in the layer's build; "
                             "the export cannot name it relative to the layer")
        variables[variable.path[len(layer.path) + 1:]] = variable
    return variables


def _flattened_shape(layer: keras.layers.Layer, enclosing: tuple[keras.Model, ...]) -> tuple[int, ...] | None:
    """The shape a Flatten flattened before `layer`'s input, through shape-preserving layers and model borders."""
    nodes = layer._inbound_nodes  # Keras keeps the call graph only here; a layer in a model built on an Input has one
    if not nodes:
        raise ValueError(f"cannot trace the input of Dense {layer.name}: build its model on keras.Input(...)")
    tensor, models = nodes[0].input_tensors[0], list(enclosing)
    while True:
        history = tensor._keras_history
        operation = history.operation
        if isinstance(operation, keras.layers.InputLayer):
            if not models:
                return None
            model = models.pop()  # leave the nested model: continue with what its caller passed in
            tensor = model._inbound_nodes[0].input_tensors[[id(t) for t in model.inputs].index(id(tensor))]
        elif isinstance(operation, keras.Model):
            models.append(operation)  # enter the nested model at the output that was used
            tensor = operation.outputs[history.tensor_index]
        elif type(operation).__name__ == "Flatten":
            return tuple(operation._inbound_nodes[history.node_index].input_tensors[0].shape[1:])
        elif type(operation).__name__ in _SHAPE_PRESERVING:
            tensor = operation._inbound_nodes[history.node_index].input_tensors[0]
        else:
            return None


def export_layers(model: keras.Model) -> list[KerasLayer]:
    """Every layer with variables, recursively through nested models, with its name path, class, config and arrays."""
    exported = []
    for name, layer, trainable, enclosing in _walk(model):
        if not layer.weights:
            continue
        kind = type(layer).__name__
        flatten_from = _flattened_shape(layer, enclosing) if kind == "Dense" else None
        arrays = {key: keras.ops.convert_to_numpy(variable) for key, variable in _relative_variables(layer).items()}
        exported.append(KerasLayer(name, kind, arrays, _config(layer), trainable, flatten_from))
    count = sum(len(layer.arrays) for layer in exported)
    if count != len(model.weights):
        raise ValueError(f"exported {count} of the model's {len(model.weights)} variables: a variable belongs to no "
                         "layer the export reaches")
    return exported


def _random_values(name: str, shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    """Random values for a variable called `name` (the last part of its path), scaled to keep activations O(1).

    Kernels U(+-sqrt(3 / fan_in)) (variance 1/fan_in, fan_in = all axes but the last); biases,
    beta and moving means U(-0.5, 0.5); gamma and moving variances U(0.5, 1.5) (strictly
    positive); embeddings U(-1, 1). Nothing is 0 or 1, so a bias, gamma or statistic that
    a mapping drops or swaps changes the output.
    """
    if name in ("kernel", "recurrent_kernel", "depthwise_kernel", "pointwise_kernel"):
        limit = np.sqrt(3.0 / max(1, int(np.prod(shape[:-1]))))
        return rng.uniform(-limit, limit, shape)
    if name in ("bias", "beta", "moving_mean"):
        return rng.uniform(-0.5, 0.5, shape)
    if name in ("gamma", "moving_variance"):
        return rng.uniform(0.5, 1.5, shape)
    if name == "embeddings":
        return rng.uniform(-1.0, 1.0, shape)
    raise ValueError(f"no random draw defined for a Keras variable named {name!r}; add its scale to "
                     "tf_models.weights._random_values")


def randomize_variables(model: keras.Model, seed: int) -> None:
    """Draw every variable of `model` at random (`_random_values`), reproducibly from `seed`, in export order."""
    rng = np.random.default_rng(seed)
    for _, layer, _, _ in _walk(model):
        for variable in layer.weights:
            values = _random_values(variable.path.rsplit("/", 1)[-1], tuple(variable.shape), rng)
            variable.assign(values.astype(variable.dtype))


def _batchnorm_layers(model: keras.Model) -> dict[str, keras.layers.BatchNormalization]:
    return {name: layer for name, layer, _, _ in _walk(model) if isinstance(layer, keras.layers.BatchNormalization)}


def has_training_behaviour(model: keras.Model) -> bool:
    """Whether training mode differs from inference: a BatchNormalization layer, or a dropout layer with rate > 0."""
    return any(isinstance(layer, keras.layers.BatchNormalization)
               or (type(layer).__name__ in _DROPOUT and layer.rate > 0) for _, layer, _, _ in _walk(model))


def load_exported_layers(model: keras.Model, layers: list[KerasLayer], kinds: Container[str] | None = None) -> int:
    """Assign an export (`export_layers` of the same model, on any Keras backend) to `model`, by layer name path
    and variable path: the inverse of `export_layers`. `kinds` (Keras class names; None: all) limits the layers
    assigned; the others keep their own initial values. Refuses (WeightMappingError) a layer or variable on one
    side only, another class or another shape. Returns how many variables it assigned."""
    exported = {layer.name: layer for layer in layers}
    mine = {name: layer for name, layer, _, _ in _walk(model) if layer.weights}
    if set(exported) != set(mine):
        raise WeightMappingError(f"the export and {model.name} differ in their layers: only exported "
                                 f"{sorted(set(exported) - set(mine))}, only in the model {sorted(set(mine) - set(exported))}")
    assigned = 0
    for name, layer in mine.items():
        source = exported[name]
        if source.kind != type(layer).__name__:
            raise WeightMappingError(f"layer {name} is a {type(layer).__name__}, the export's a {source.kind}")
        if kinds is not None and source.kind not in kinds:
            continue
        variables = _relative_variables(layer)
        if set(variables) != set(source.arrays):
            raise WeightMappingError(f"layer {name}: exported variables {sorted(source.arrays)}, the model's "
                                     f"{sorted(variables)}")
        for key, variable in variables.items():
            array = source.arrays[key]
            if tuple(variable.shape) != array.shape:
                raise WeightMappingError(f"{name}/{key}: exported shape {array.shape}, the model's "
                                         f"{tuple(variable.shape)}")
            variable.assign(array.astype(variable.dtype))
            assigned += 1
    return assigned


def initial_kinds(alignment: Alignment) -> frozenset[str] | None:
    """The Keras layer classes a Keras framework that is not the weights source takes from the source's export
    (None: all): as the torch model does (align.copied_keras_kinds); the others keep the initial values Keras
    drew on this backend from the seed, as in native mode, where nothing is taken."""
    if alignment.is_aligned("kernel_init") and alignment.is_aligned("embedding_init"):
        return None
    return copied_keras_kinds(alignment)


def share_initial_weights(model: keras.Model, path: Path, framework: str, source: str,
                          kinds: Container[str] | None = None) -> None:
    """One starting point for every framework of a comparison (parity.jobs.weights_source): the weights source
    (`source == framework`) saves `model`'s weights to `path`, any other Keras framework loads them from there
    (`load_exported_layers`, limited to `kinds`)."""
    from parity.weights import load_keras_layers, save_keras_layers

    if source == framework:
        save_keras_layers(path, export_layers(model))
    else:
        load_exported_layers(model, load_keras_layers(path), kinds)


def save_forward_outputs(model: keras.Model, inputs: np.ndarray, workdir: Path, framework: str, tag: str) -> None:
    """`framework`'s outputs of the forward check of run `tag`: the inference outputs; for a model with BatchNorm or
    dropout also the training-mode outputs with every dropout rate set to 0 (BatchNorm normalises with the batch
    statistics) and the moving statistics that call updated (parity.compare.save_training_outputs)."""
    from parity import compare, jobs

    np.save(jobs.outputs_path(workdir, framework, tag), keras.ops.convert_to_numpy(model(inputs, training=False)))
    if not has_training_behaviour(model):
        return
    for _, layer, _, _ in _walk(model):
        if type(layer).__name__ in _DROPOUT:
            layer.rate = 0.0
    outputs = keras.ops.convert_to_numpy(model(inputs, training=True))
    statistics = {}
    for name, layer in _batchnorm_layers(model).items():
        statistics[f"{name}/moving_mean"] = keras.ops.convert_to_numpy(layer.moving_mean)
        statistics[f"{name}/moving_variance"] = keras.ops.convert_to_numpy(layer.moving_variance)
    compare.save_training_outputs(compare.training_outputs_path(workdir, framework, tag), outputs, statistics)


def save_forward_check(model: keras.Model, inputs: np.ndarray, workdir: Path, tag: str, seed: int,
                       framework: str = "keras", source: str = "keras") -> None:
    """`framework`'s half of the forward check of run `tag`. The weights source draws every variable at random
    (`randomize_variables(seed)`) and saves the export (the other frameworks load it); any other Keras framework
    loads that export. Then the outputs (`save_forward_outputs`)."""
    from parity import jobs

    if source == framework:
        randomize_variables(model, seed)
    share_initial_weights(model, jobs.init_weights_path(workdir, tag), framework, source)
    save_forward_outputs(model, inputs, workdir, framework, tag)

