"""Lockstep training, Keras side: the fit train step written out, recording loss and gradient norm per step.

Mirror: torch_models/lockstep.py. Both sides read the same batches straight from the batch
plan (no input pipeline: lockstep isolates the numerics), start from the same weights
(the torch side loads the ones saved here), and run with dropout off.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np


def _layers(layer) -> list:
    """`layer` and every layer nested in it."""
    return [layer] + [inner for child in getattr(layer, "layers", []) for inner in _layers(child)]


def _disable_dropout(model) -> int:
    """Set every Dropout layer's rate to 0; returns how many there were."""
    import keras

    dropouts = [layer for layer in _layers(model) if isinstance(layer, keras.layers.Dropout)]
    for layer in dropouts:
        layer.rate = 0.0
    return len(dropouts)


def run_lockstep(job: dict[str, Any]) -> dict[str, Any]:
    """Train `job["steps"]` steps from seed `job["seed"]`; save the initial and final weights for the torch side."""
    import keras
    import tensorflow as tf
    from tensorflow.python.framework.config import is_op_determinism_enabled  # no public getter in TF 2.21

    from parity import jobs, lockstep
    from parity.catalog import get_spec
    from parity.plan import collate, train_plan
    from parity.weights import save_keras_layers
    from tf_models import build
    from tf_models.optimizers import make_optimizer
    from tf_models.weights import export_layers

    spec = get_spec(job["model"])
    workdir = Path(job["workdir"])
    data = jobs.load_data(Path(job["data"]))
    keras.utils.set_random_seed(job["seed"])
    model = build(spec.id)
    dropouts = _disable_dropout(model)
    save_keras_layers(jobs.init_weights_path(workdir, lockstep.TAG), export_layers(model))
    # compile() gives the loss exactly as fit computes it (reduction, logit recovery, regularisation losses).
    model.compile(optimizer=make_optimizer(lockstep.optimizer_from_job(job)), loss=spec.loss, metrics=[spec.metric])

    @tf.function
    def train_step(x: tf.Tensor, y: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        with tf.GradientTape() as tape:
            y_pred = model(x, training=True)
            loss = model.compute_loss(x=x, y=y, y_pred=y_pred)
        grads = tape.gradient(loss, model.trainable_variables)
        model.optimizer.apply(grads, model.trainable_variables)
        # An embedding's gradient is IndexedSlices; its norm is that of the dense (duplicates summed) gradient.
        return loss, tf.linalg.global_norm([tf.convert_to_tensor(grad) for grad in grads])

    losses, grad_norms = [], []
    plan = train_plan(spec, len(data.train), job["seed"])
    for rows in lockstep.batch_rows(plan, job["steps"]):
        loss, grad_norm = train_step(*(tf.constant(array) for array in collate(data.train, rows)))
        losses.append(float(loss))
        grad_norms.append(float(grad_norm))
    save_keras_layers(lockstep.keras_final_weights_path(workdir), export_layers(model))
    x_val, y_val = collate(data.val, np.arange(len(data.val)))
    scores = model.evaluate(x_val, y_val, batch_size=spec.batch_size, verbose=0, return_dict=True)
    placed = tf.DeviceSpec.from_string(loss.device)  # where TensorFlow ran the step: "/job:localhost/.../device:GPU:0"
    return {"loss": losses, "grad_norm": grad_norms, "dropout_layers": dropouts,
            "val_metric": float(scores[spec.metric]),
            "deterministic": is_op_determinism_enabled(),  # the state in force, not the request
            "tensor_device": f"{placed.device_type.lower()}:{placed.device_index}"}

