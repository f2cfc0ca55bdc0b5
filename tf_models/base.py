"""What every Keras course model shares: the registry, the input and output head, and compile from the spec.

Every layer of a course model carries an explicit name, unique within the model (`conv_1`,
`pool_1`, `flatten`, `hidden`, `output`, ...): the weight export addresses layers by these names
and each torch model maps the same names to its modules (torch_models.base.CourseModule.keras_layers).
"""

from __future__ import annotations

import dataclasses

import keras

from parity.catalog import ModelSpec
from parity.registry import BuilderRegistry
from tf_models.optimizers import make_optimizer

REGISTRY = BuilderRegistry("keras")


def model_input(spec: ModelSpec) -> keras.KerasTensor:
    """The model's input, named `input`, of the spec's shape (without the batch axis)."""
    return keras.Input(shape=spec.input_shape, name="input")


def output_layer(spec: ModelSpec) -> keras.layers.Layer:
    """The course's last layer, `output`: softmax for multiclass, one sigmoid unit for binary, linear for regression."""
    if spec.task == "multiclass":
        return keras.layers.Dense(spec.layers.classes, activation="softmax", name="output")
    if spec.task == "binary":
        return keras.layers.Dense(1, activation="sigmoid", name="output")
    return keras.layers.Dense(spec.classes, name="output")


@keras.saving.register_keras_serializable(package="parity")
class StepLoss(keras.metrics.Metric):
    """The loss of the latest batch (Keras logs only the epoch's running mean), for per-step curves.

    Keras also shows it in its progress line and CSV log, with a `val_step_loss` twin that
    means nothing; the recorder reads only the value after each training batch.
    """

    def __init__(self, loss: str, name: str = "step_loss") -> None:
        super().__init__(name=name)
        self._loss = loss
        self._loss_fn = keras.losses.get(loss)
        self.value = self.add_variable(shape=(), initializer="zeros", name="value")

    def update_state(self, y_true, y_pred, sample_weight=None) -> None:
        self.value.assign(keras.ops.mean(self._loss_fn(y_true, y_pred)))

    def result(self):
        return self.value

    def get_config(self) -> dict:
        return {"loss": self._loss, "name": self.name}


def compile_model(model: keras.Model, spec: ModelSpec, learning_rate: float | None = None) -> keras.Model:
    """Compile with the spec's optimizer (every value explicit), loss and metric.

    `learning_rate` (`parity run --lr`) replaces the optimizer's rate; None keeps the spec's.
    """
    optimizer = spec.optimizer
    if learning_rate is not None:  # an explicit rate, so no longer the Keras default one
        optimizer = dataclasses.replace(optimizer, learning_rate=learning_rate, keras_default_lr=False)
    model.compile(
        optimizer=make_optimizer(optimizer),
        loss=spec.loss,
        metrics=[spec.metric, StepLoss(spec.loss)],
    )
    return model
