"""Lockstep training, Keras side: the fit train step written out, recording loss and gradient norm per step.

Mirror: torch_models/lockstep.py. Both sides read the same batches straight from the batch
plan (no input pipeline: lockstep isolates the numerics), start from the same weights
(the torch side loads the ones saved here), and run with dropout off.

`run_keras_lockstep` is Keras API only and serves the keras-torch worker too (keras_torch.lockstep):
a backend brings its train step (forward, compiled loss, gradients, optimizer update) and reads
back where its tensors ran and whether its kernels were deterministic.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

# A backend's lockstep step, made for a compiled model: (x, y) numpy batch -> (loss, global gradient norm) tensors.
StepMaker = Callable[[Any], Callable[[np.ndarray, np.ndarray], tuple[Any, Any]]]


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


def run_keras_lockstep(job: dict[str, Any], framework: str, make_step: StepMaker,
                       tensor_device: Callable[[Any], str], deterministic: Callable[[], bool]) -> dict[str, Any]:
    """Train `job["steps"]` steps from seed `job["seed"]` with `make_step(model)`'s step. The weights source
    (job "weights_source", absent: keras) saves the initial weights for the others, any other Keras framework
    loads them; the final weights go to parity.lockstep.keras_final_weights_path. `tensor_device(loss)`: where the
    step's tensors were ("cpu:0"); `deterministic()`: the kernels' determinism in force, not the request."""
    import keras

    from parity import jobs, lockstep
    from parity.catalog import get_spec
    from parity.plan import collate, train_plan
    from parity.weights import save_keras_layers
    from tf_models import build
    from tf_models.optimizers import make_optimizer
    from parity.align import Alignment
    from tf_models.weights import export_layers, initial_kinds, share_initial_weights

    spec = get_spec(job["model"])
    workdir = Path(job["workdir"])
    data = jobs.load_data(Path(job["data"]))
    keras.utils.set_random_seed(job["seed"])
    model = build(spec.id)
    dropouts = _disable_dropout(model)
    share_initial_weights(model, jobs.init_weights_path(workdir, lockstep.TAG), framework,
                          job.get("weights_source", "keras"), initial_kinds(Alignment.from_job(job["native"])))
    # compile() gives the loss exactly as fit computes it (reduction, logit recovery, regularisation losses).
    model.compile(optimizer=make_optimizer(lockstep.optimizer_from_job(job)), loss=spec.loss, metrics=[spec.metric])
    train_step = make_step(model)

    losses, grad_norms = [], []
    plan = train_plan(spec, len(data.train), job["seed"])
    for rows in lockstep.batch_rows(plan, job["steps"]):
        loss, grad_norm = train_step(*collate(data.train, rows))
        losses.append(float(loss))
        grad_norms.append(float(grad_norm))
    save_keras_layers(lockstep.keras_final_weights_path(workdir), export_layers(model))
    x_val, y_val = collate(data.val, np.arange(len(data.val)))
    scores = model.evaluate(x_val, y_val, batch_size=spec.batch_size, verbose=0, return_dict=True)
    return {"loss": losses, "grad_norm": grad_norms, "dropout_layers": dropouts,
            "val_metric": float(scores[spec.metric]), "deterministic": deterministic(),
            "tensor_device": tensor_device(loss)}


def _tensorflow_step(model) -> Callable[[np.ndarray, np.ndarray], tuple[Any, Any]]:
    """Keras' fit train step on TensorFlow, written out in a tf.function."""
    import tensorflow as tf

    @tf.function
    def train_step(x: tf.Tensor, y: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        with tf.GradientTape() as tape:
            y_pred = model(x, training=True)
            loss = model.compute_loss(x=x, y=y, y_pred=y_pred)
        grads = tape.gradient(loss, model.trainable_variables)
        model.optimizer.apply(grads, model.trainable_variables)
        # An embedding's gradient is IndexedSlices; its norm is that of the dense (duplicates summed) gradient.
        return loss, tf.linalg.global_norm([tf.convert_to_tensor(grad) for grad in grads])

    return lambda x, y: train_step(tf.constant(x), tf.constant(y))


def _tensorflow_device(loss) -> str:
    """Where TensorFlow ran the step: "/job:localhost/.../device:GPU:0" -> "gpu:0"."""
    import tensorflow as tf

    placed = tf.DeviceSpec.from_string(loss.device)
    return f"{placed.device_type.lower()}:{placed.device_index}"


def _tensorflow_deterministic() -> bool:
    from tensorflow.python.framework.config import is_op_determinism_enabled  # no public getter in TF 2.21

    return is_op_determinism_enabled()


def run_lockstep(job: dict[str, Any]) -> dict[str, Any]:
    """The Keras worker's lockstep job (`run_keras_lockstep` on TensorFlow)."""
    return run_keras_lockstep(job, "keras", _tensorflow_step, _tensorflow_device, _tensorflow_deterministic)
