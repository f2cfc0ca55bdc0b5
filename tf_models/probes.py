"""Keras side of the layer probes (parity.probes): build from a seed, run on the shared inputs, save the results.

Layers keep Keras' own defaults (no arguments beyond the probe's settings), so the aligned
torch side, which takes its numbers from parity.align, checks those numbers too.
Mirror: torch_models/probes.py.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import keras
import numpy as np

from parity import align, probes
from parity.weights import KerasLayer, save_keras_layers
from tf_models.augment import apply_aligned
from tf_models.weights import export_layers

Result = tuple[dict[str, np.ndarray], list[KerasLayer]]


def _model(input_shape: tuple[int, ...], *layers: keras.layers.Layer) -> keras.Sequential:
    return keras.Sequential([keras.Input(input_shape), *layers])


def batchnorm(inputs: dict[str, np.ndarray], settings: dict[str, Any]) -> Result:
    """BatchNormalization() on NHWC batches: moving statistics after the training batches, then eval outputs."""
    layer = keras.layers.BatchNormalization()
    model = _model(inputs["eval_x"].shape[1:], layer)
    layer.gamma.assign(inputs["gamma"])
    layer.beta.assign(inputs["beta"])
    initial = export_layers(model)
    for x in inputs["train_x"]:
        train_outputs = model(x, training=True)
    return {"moving_mean": layer.moving_mean.numpy(), "moving_variance": layer.moving_variance.numpy(),
            "train_outputs": train_outputs.numpy(), "eval_outputs": model(inputs["eval_x"], training=False).numpy()}, initial


def _recurrent(layer: keras.layers.Layer, inputs: dict[str, np.ndarray]) -> Result:
    model = _model(inputs["x"].shape[1:], layer)
    return {"outputs": model(inputs["x"]).numpy()}, export_layers(model)


def gru(inputs: dict[str, np.ndarray], settings: dict[str, Any]) -> Result:
    """GRU(units) (reset_after=True by default): the last output."""
    return _recurrent(keras.layers.GRU(settings["units"]), inputs)


def lstm(inputs: dict[str, np.ndarray], settings: dict[str, Any]) -> Result:
    """LSTM(units): the last output."""
    return _recurrent(keras.layers.LSTM(settings["units"]), inputs)


def same_padding(inputs: dict[str, np.ndarray], settings: dict[str, Any]) -> Result:
    """Conv2D(filters, kernel, strides, padding='same')."""
    conv = keras.layers.Conv2D(settings["filters"], settings["kernel"], strides=settings["stride"], padding="same")
    model = _model(inputs["x"].shape[1:], conv)
    return {"outputs": model(inputs["x"]).numpy()}, export_layers(model)


def l2(inputs: dict[str, np.ndarray], settings: dict[str, Any]) -> Result:
    """Dense(units, kernel_regularizer=L2(l)) after `steps` plain SGD steps of fit (which adds model.losses)."""
    dense = keras.layers.Dense(settings["units"], kernel_regularizer=keras.regularizers.L2(settings["l2"]))
    model = _model(inputs["x"].shape[1:], dense)
    initial = export_layers(model)
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=settings["learning_rate"]), loss="mse")
    model.fit(inputs["x"], inputs["y"], batch_size=settings["batch"], epochs=1, shuffle=False, verbose=0)
    return {"kernel": dense.kernel.numpy(), "bias": dense.bias.numpy()}, initial


class _LearningRates(keras.callbacks.Callback):
    """The learning rate each optimizer step uses (the schedule at the step count before the update)."""

    def __init__(self) -> None:
        super().__init__()
        self.values: list[float] = []

    def on_train_batch_begin(self, batch: int, logs: dict | None = None) -> None:
        self.values.append(float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate)))


def lr_schedule(inputs: dict[str, np.ndarray], settings: dict[str, Any]) -> Result:
    """Dense-ReLU-Dense regression, SGD on ExponentialDecay (evaluated per step): lr per step, final weights."""
    model = _model(inputs["x"].shape[1:], keras.layers.Dense(settings["hidden"], activation="relu", name="hidden"),
                   keras.layers.Dense(1, name="output"))
    initial = export_layers(model)
    schedule = keras.optimizers.schedules.ExponentialDecay(settings["learning_rate"], settings["decay_steps"],
                                                           settings["decay_rate"])
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=schedule), loss="mse")
    rates = _LearningRates()
    model.fit(inputs["x"], inputs["y"], batch_size=settings["batch"], epochs=settings["epochs"], shuffle=False,
              callbacks=[rates], verbose=0)
    weights = np.concatenate([w.ravel() for w in model.get_weights()])  # kernel, bias per layer, Keras layout
    return {"lr": np.array(rates.values, np.float32), "weights": weights}, initial


def tensor_layout(inputs: dict[str, np.ndarray], settings: dict[str, Any]) -> Result:
    """Conv2D(filters, kernel) of the course CNN on NHWC images."""
    model = _model(inputs["x"].shape[1:], keras.layers.Conv2D(settings["filters"], settings["kernel"]))
    return {"outputs": model(inputs["x"]).numpy()}, export_layers(model)


def avgpool_same(inputs: dict[str, np.ndarray], settings: dict[str, Any]) -> Result:
    """AveragePooling2D(pool, strides=1, padding='same'), as InceptionV3's pool branches."""
    model = _model(inputs["x"].shape[1:], keras.layers.AveragePooling2D(settings["pool"], strides=1, padding="same"))
    return {"outputs": model(inputs["x"]).numpy()}, []


def frozen_batchnorm(inputs: dict[str, np.ndarray], settings: dict[str, Any]) -> Result:
    """BatchNormalization(scale=False) (InceptionV3's) with trainable=False, called with training=True: outputs of the
    last batch and the moving statistics after all of them."""
    layer = keras.layers.BatchNormalization(scale=False)
    model = _model(inputs["train_x"].shape[2:], layer)
    for name in ("beta", "moving_mean", "moving_variance"):
        getattr(layer, name).assign(inputs[name])
    layer.trainable = False
    initial = export_layers(model)
    for x in inputs["train_x"]:
        train_outputs = model(x, training=True)
    return {"train_outputs": train_outputs.numpy(), "moving_mean": layer.moving_mean.numpy(),
            "moving_variance": layer.moving_variance.numpy()}, initial


def loss_target_shape(inputs: dict[str, np.ndarray], settings: dict[str, Any]) -> Result:
    """Dense(1) predictions (N, 1) and Keras' MSE against the (N,) targets (Keras matches the ranks)."""
    model = _model(inputs["x"].shape[1:], keras.layers.Dense(1))
    loss = keras.losses.MeanSquaredError()(inputs["y"], model(inputs["x"]))
    return {"loss": np.asarray(loss, np.float32)}, export_layers(model)


class _PlantedValues(keras.callbacks.Callback):
    """Puts the planted value of each epoch into the epoch's logs (Keras hands the same dict to the callbacks after
    this one) and keeps each epoch's weights, to tell which epoch a restore brought back."""

    def __init__(self, monitor: str, history: np.ndarray) -> None:
        super().__init__()
        self.monitor, self.history = monitor, history
        self.weights: list[list[np.ndarray]] = []

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        logs[self.monitor] = float(self.history[epoch])
        self.weights.append(self.model.get_weights())


def _matching_epoch(weights: list[np.ndarray], epochs: list[list[np.ndarray]]) -> int:
    """The 1-based epoch whose end-of-epoch weights equal `weights` exactly (0: none)."""
    for epoch, saved in enumerate(epochs, start=1):
        if all(np.array_equal(a, b) for a, b in zip(weights, saved)):
            return epoch
    return 0


def early_stopping(inputs: dict[str, np.ndarray], settings: dict[str, Any]) -> Result:
    """Per scenario, a tiny regression fit one epoch per planted value with the run's EarlyStopping
    (tf_models.callbacks.early_stopping: restore_best_weights, mode 'auto'): epochs run and the epoch restored."""
    from tf_models.callbacks import early_stopping as keras_early_stopping

    arrays = {}
    for name, scenario in settings["scenarios"].items():
        model = _model(inputs["x"].shape[1:], keras.layers.Dense(1))
        model.compile(optimizer=keras.optimizers.SGD(learning_rate=settings["learning_rate"]), loss="mse",
                      metrics=["accuracy"])  # mode 'auto' of val_accuracy reads the compiled metric's direction
        history = inputs[f"history_{name}"]
        planted = _PlantedValues(scenario["monitor"], history)
        model.fit(inputs["x"], inputs["y"], batch_size=settings["batch"], epochs=len(history), shuffle=False,
                  callbacks=[planted, keras_early_stopping(scenario)], verbose=0)
        arrays[f"epochs_run_{name}"] = np.array(len(planted.weights))
        arrays[f"restored_epoch_{name}"] = np.array(_matching_epoch(model.get_weights(), planted.weights))
    return arrays, []


def augmentation(inputs: dict[str, np.ndarray], settings: dict[str, Any]) -> Result:
    """Each course model's aligned augmentation (tf_models.augment.apply_aligned, Keras' image ops) of the
    generated batch, with the parameters parity.probes drew from the shared per-sample stream."""
    arrays = {}
    for model in settings["models"]:
        x, case = probes.augmentation_case(model, inputs, settings, align.ALIGNED)
        arrays[model] = apply_aligned(x, inputs[f"params_{model}"], case).numpy()
    return arrays, []


PROBES: dict[str, Callable[[dict[str, np.ndarray], dict[str, Any]], Result]] = {
    "batchnorm": batchnorm, "gru": gru, "lstm": lstm, "same_padding": same_padding, "l2": l2,
    "lr_schedule": lr_schedule, "tensor_layout": tensor_layout, "loss_target_shape": loss_target_shape,
    "early_stopping": early_stopping, "avgpool_same": avgpool_same, "frozen_batchnorm": frozen_batchnorm,
    "augmentation": augmentation,
}


def run_job(job: dict[str, Any]) -> dict[str, Any]:
    """The Keras side of a `probe` job (alignment-independent): results and initial weights of each probe."""
    workdir = Path(job["workdir"])
    for name, entry in job["probes"].items():
        keras.utils.set_random_seed(entry["settings"]["seed"])  # before any layer is made: each draws its seed then
        arrays, initial = PROBES[name](probes.load_arrays(probes.probe_path(workdir, name, "inputs")), entry["settings"])
        np.savez(probes.probe_path(workdir, name, "keras"), **arrays)
        save_keras_layers(probes.probe_path(workdir, name, "keras-init"), initial)
    return {}
