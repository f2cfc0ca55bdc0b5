"""Transfer learning: the course's frozen InceptionV3 trunk, cut at a mixed block, with a dense head."""

from __future__ import annotations

import collections
import contextlib
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import keras
import numpy as np
from keras import layers

from parity.catalog import ModelSpec
from parity.inception import weights_file
from tf_models.base import REGISTRY, model_input, output_layer


@contextlib.contextmanager
def _fresh_session_names() -> Iterator[None]:
    """Within the block Keras names layers as in a fresh session (conv2d, conv2d_1, ...); after it the session's
    own counters are back, untouched.

    keras.applications.InceptionV3 leaves its layers to Keras' automatic names, numbered per session: a second
    model in one process would start at conv2d_94 (variables conv2d_94/kernel). Built inside this block every
    InceptionV3 gets the same layer names and variable paths, the ones torch maps (parity.inception). Keras
    keeps the counters in its global state ("object_name_uids", keras.src.utils.naming.uniquify); no public
    API scopes them (keras.backend.clear_session resets everything else too).
    """
    from keras.src.backend.common import global_state

    saved = global_state.get_global_attribute("object_name_uids")
    global_state.set_global_attribute("object_name_uids", collections.defaultdict(int))
    try:
        yield
    finally:
        global_state.set_global_attribute("object_name_uids", saved)


@REGISTRY.register
def inception_transfer(spec: ModelSpec) -> keras.Model:
    """InceptionV3(include_top=False) cut at `cut_layer`, frozen unless `trainable_base`, -> flatten -> hidden
    Dense(relu) -> dropout -> output: c2w3_inception_cats_dogs, c2w3_inception_horse_human.

    As the course: the full notop base is built with weights=None and loads the weights file (legacy .h5,
    by position) when `weights` names one (parity.inception.weights_file; random weights otherwise); the
    functional model keeps only the layers up to the cut (8,975,264 trunk parameters at mixed7).
    """
    h = spec.layers
    with _fresh_session_names():
        base = keras.applications.InceptionV3(include_top=False, weights=None, input_tensor=model_input(spec))
    path = weights_file(h)
    if path is not None:
        base.load_weights(str(path))
    for layer in base.layers:
        layer.trainable = h.trainable_base
    x = layers.Flatten(name="flatten")(base.get_layer(h.cut_layer).output)
    x = layers.Dense(h.hidden_units, activation="relu", name="hidden")(x)
    x = layers.Dropout(h.dropout, name="dropout")(x)
    return keras.Model(base.input, output_layer(spec)(x), name=spec.id)


def block_names(model: keras.Model) -> list[str]:
    """The mixed blocks the model keeps, in order (mixed0 ... the cut)."""
    return [layer.name for layer in model.layers if re.fullmatch(r"mixed\d+", layer.name)]


def block_outputs(model: keras.Model, inputs: np.ndarray) -> dict[str, np.ndarray]:
    """Inference values of every mixed block (NHWC), of the `hidden` layer and of the model (`outputs`)."""
    names = [*block_names(model), "hidden"]
    probe = keras.Model(model.input, [model.get_layer(name).output for name in names] + [model.output])
    values = probe(inputs, training=False)
    return {name: keras.ops.convert_to_numpy(value) for name, value in zip([*names, "outputs"], values)}


def run_blocks(job: dict[str, Any]) -> dict[str, Any]:
    """The Keras side of a `blocks` job (parity.inception.measure_blocks): random weights, their export, and the
    inference values of every mixed block, the hidden layer and the output."""
    from parity import jobs
    from parity.inception import blocks_path, blocks_tag
    from parity.weights import save_keras_layers
    from tf_models import build
    from tf_models.weights import export_layers, randomize_variables

    workdir = Path(job["workdir"])
    for model_id in job["models"]:
        keras.utils.set_random_seed(job["seed"])
        model = build(model_id)
        randomize_variables(model, job["seed"])
        save_keras_layers(jobs.init_weights_path(workdir, blocks_tag(model_id, job["seed"])), export_layers(model))
        values = block_outputs(model, np.load(jobs.probe_inputs_path(workdir, model_id)))
        np.savez(blocks_path(workdir, "keras", model_id, job["seed"]), **values)
    return {}
