"""Small Keras models for tests/test_forward_mutations.py: the Keras half of the forward check, in a TF-only process.

Usage: python tests/keras_forward_models.py WORKDIR. For each model it writes the probe inputs,
then runs tf_models.weights.save_forward_check (what the `forward` job runs) under the tag
parity.jobs.run_tag(name, SEED): random weights, their export, inference outputs, and
training-mode outputs and moving statistics for BatchNorm/dropout models. The torch twins of
these models are in the test file.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf
from keras import layers

from parity import jobs
from tf_models.weights import save_forward_check

SEED = 0
SAMPLES = 64


def lstm() -> keras.Model:
    return keras.Sequential([keras.Input((7, 3)), layers.LSTM(5, name="lstm"),
                             layers.Dense(3, activation="softmax", name="output")])


def gru() -> keras.Model:
    return keras.Sequential([keras.Input((7, 3)), layers.GRU(5, name="gru"),
                             layers.Dense(1, activation="sigmoid", name="output")])


def batchnorm_cnn() -> keras.Model:
    return keras.Sequential([keras.Input((6, 6, 2)), layers.Conv2D(4, 3, name="conv"),
                             layers.BatchNormalization(name="batchnorm"), layers.ReLU(name="relu"),
                             layers.Flatten(name="flatten"), layers.Dense(3, activation="softmax", name="output")])


def flatten_dropout_cnn() -> keras.Model:
    """c2w4_rps_cnn's head: Flatten -> Dropout -> Dense."""
    return keras.Sequential([keras.Input((6, 6, 2)), layers.Conv2D(4, 3, activation="relu", name="conv"),
                             layers.Flatten(name="flatten"), layers.Dropout(0.5, name="dropout"),
                             layers.Dense(8, activation="relu", name="hidden"),
                             layers.Dense(3, activation="softmax", name="output")])


def nested_frozen() -> keras.Model:
    """A frozen nested trunk (BatchNormalization(scale=False), as in InceptionV3) ending in Flatten; Dropout; Dense."""
    trunk = keras.Sequential([keras.Input((6, 6, 2)), layers.Conv2D(3, 3, name="conv"),
                              layers.BatchNormalization(scale=False, name="batchnorm"), layers.ReLU(name="relu"),
                              layers.Flatten(name="flatten")], name="trunk")
    trunk.trainable = False
    inputs = keras.Input((6, 6, 2))
    features = layers.Dropout(0.2, name="dropout")(trunk(inputs))
    return keras.Model(inputs, layers.Dense(2, activation="softmax", name="output")(features))


def text() -> keras.Model:
    return keras.Sequential([keras.Input((9,), dtype="int32"), layers.Embedding(20, 4, name="embedding"),
                             layers.Bidirectional(layers.LSTM(3, return_sequences=True), name="bilstm"),
                             layers.Bidirectional(layers.GRU(2), name="bigru"),
                             layers.Dense(1, activation="sigmoid", name="output")])


def series() -> keras.Model:
    return keras.Sequential([keras.Input((10, 1)),
                             layers.Conv1D(4, 3, padding="causal", activation="relu", name="conv1d"),
                             layers.SimpleRNN(3, return_sequences=True, name="rnn"), layers.LSTM(3, name="lstm"),
                             layers.Dense(1, name="output")])


def _inputs(name: str, rng: np.random.Generator) -> np.ndarray:
    if name == "text":
        return rng.integers(0, 20, size=(SAMPLES, 9)).astype(np.int32)
    if name in ("lstm", "gru"):
        return rng.normal(size=(SAMPLES, 7, 3)).astype(np.float32)
    if name == "series":
        return rng.normal(size=(SAMPLES, 10, 1)).astype(np.float32)
    return rng.uniform(0, 1, size=(SAMPLES, 6, 6, 2)).astype(np.float32)


MODELS: dict[str, Callable[[], keras.Model]] = {
    "lstm": lstm, "gru": gru, "batchnorm_cnn": batchnorm_cnn, "flatten_dropout_cnn": flatten_dropout_cnn,
    "nested_frozen": nested_frozen, "text": text, "series": series,
}


def main(workdir: Path) -> None:
    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    rng = np.random.default_rng(SEED)
    for name, builder in MODELS.items():
        inputs = _inputs(name, rng)
        np.save(jobs.probe_inputs_path(workdir, name), inputs)
        keras.utils.set_random_seed(SEED)
        save_forward_check(builder(), inputs, workdir, jobs.run_tag(name, SEED), SEED)


if __name__ == "__main__":
    main(Path(sys.argv[1]))
