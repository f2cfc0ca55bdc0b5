"""The batch plan as a tf.data pipeline: the same batches, in the same order, as torch_models.data."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from parity.plan import BatchPlan


def _gather(x: np.ndarray, y: np.ndarray, indices: np.ndarray, lengths: np.ndarray) -> tf.data.Dataset:
    x_all = tf.constant(x)
    y_all = tf.constant(y)

    def take(batch_indices: tf.Tensor, length: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        rows = batch_indices[:length]
        return tf.gather(x_all, rows), tf.gather(y_all, rows)

    dataset = tf.data.Dataset.from_tensor_slices((indices, lengths))
    return dataset.map(take, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True).prefetch(tf.data.AUTOTUNE)


def train_dataset(plan: BatchPlan, x: np.ndarray, y: np.ndarray, epochs: int) -> tf.data.Dataset:
    """All training batches of `epochs` epochs as one stream; fit it with steps_per_epoch=plan.steps_per_epoch.

    Keras keeps one iterator across epochs when steps_per_epoch is given, so epoch e of
    `fit` consumes exactly plan.epoch_batches(e).
    """
    indices, lengths = plan.padded_batches(epochs)
    return _gather(x, y, indices, lengths)


def eval_dataset(plan: BatchPlan, x: np.ndarray, y: np.ndarray) -> tf.data.Dataset:
    """Validation batches in data order (one epoch; Keras re-iterates it every epoch)."""
    indices, lengths = plan.padded_batches(1)
    return _gather(x, y, indices, lengths)
