"""Lockstep training, Keras on torch: tf_models.lockstep's run with the torch backend's train step written out.

The step is what keras.src.backend.torch.trainer.TorchTrainer.train_step does, without fit
around it: the model called with training=True, the compiled loss (`compute_loss`), the gradients
by torch autograd over the trainable variables' tensors, and the optimizer's update under no_grad.
Dropout is off (tf_models.lockstep). An embedding's gradient is dense here (torch autograd sums
the rows of repeated tokens before Adam or RMSprop square them), where TensorFlow's is
IndexedSlices (align: embedding_sparse_gradient): a runtime difference between the Keras columns.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np


def _torch_step(model) -> Callable[[np.ndarray, np.ndarray], tuple[Any, Any]]:
    import keras
    import torch

    variables = model.trainable_variables

    def train_step(x: np.ndarray, y: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        x, y = keras.ops.convert_to_tensor(x), keras.ops.convert_to_tensor(y)  # on Keras' device
        y_pred = model(x, training=True)
        loss = model.compute_loss(x=x, y=y, y_pred=y_pred)
        grads = torch.autograd.grad(loss, [variable.value for variable in variables])
        with torch.no_grad():
            model.optimizer.apply(list(grads), variables)
        return loss.detach(), torch.sqrt(sum(torch.sum(torch.square(grad)) for grad in grads))

    return train_step


def _torch_device(loss) -> str:
    """"cpu:0", "cuda:0": where the step's tensors were."""
    return f"{loss.device.type}:{loss.device.index or 0}"


def _torch_deterministic() -> bool:
    import torch

    return torch.are_deterministic_algorithms_enabled()


def run_lockstep(job: dict[str, Any]) -> dict[str, Any]:
    """The keras-torch worker's lockstep job (tf_models.lockstep.run_keras_lockstep on torch)."""
    from tf_models.lockstep import run_keras_lockstep

    return run_keras_lockstep(job, "keras-torch", _torch_step, _torch_device, _torch_deterministic)
