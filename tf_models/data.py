"""The batch plan as a tf.data pipeline: the same batches, in the same order, as torch_models.data.

Each element is one batch of the plan: its indices go through `parity.plan.collate` (numpy,
via tf.numpy_function), so the data stays memory-mapped on disk and is never copied into a
TensorFlow constant; only the batches in flight are in memory. Training batches of an augmented
spec are then augmented (tf_models.augment): with the parameters parity.augment draws for each
sample's (seed, epoch, index) when aligned, with the course's Keras random layers when native.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from parity.augment import COLUMNS, AugmentSettings, draw_parameters
from parity.datasets.store import SampleSource
from parity.plan import BatchPlan, batch_signature, collate
from tf_models.augment import apply_aligned, apply_native, native_augmenter


def _single_threaded() -> tf.data.Options:
    """tf.data options under which a sequential map collates one batch at a time, only when it is asked for:
    tf.data would otherwise parallelise a stateless map and add a prefetch after it by itself."""
    options = tf.data.Options()
    options.experimental_optimization.map_parallelization = False
    options.experimental_optimization.inject_prefetch = False
    options.autotune.enabled = False
    return options


def _map(dataset: tf.data.Dataset, function, parallel: bool) -> tf.data.Dataset:
    if not parallel:
        return dataset.map(function)
    return dataset.map(function, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)


def _collated(source: SampleSource, indices: np.ndarray, lengths: np.ndarray, parallel: bool) -> tf.data.Dataset:
    """The batches of the padded plan rows `indices` (first `lengths` entries each), collated, as (x, y)."""
    x_signature, y_signature = batch_signature(source)

    def load(batch_indices: np.ndarray, length: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return collate(source, batch_indices[:length])

    def take(batch_indices: tf.Tensor, length: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        x, y = tf.numpy_function(load, [batch_indices, length],
                                 [tf.as_dtype(x_signature.dtype), tf.as_dtype(y_signature.dtype)], stateful=False)
        x.set_shape(x_signature.shape)
        y.set_shape(y_signature.shape)
        return x, y

    return _map(tf.data.Dataset.from_tensor_slices((indices, lengths)), take, parallel)


def _finished(dataset: tf.data.Dataset, parallel: bool) -> tf.data.Dataset:
    """Prefetching when parallel, else one batch at a time, only when it is asked for (`_single_threaded`)."""
    return dataset.prefetch(tf.data.AUTOTUNE) if parallel else dataset.with_options(_single_threaded())


def _augmented(batches: tf.data.Dataset, source: SampleSource, plan: BatchPlan, indices: np.ndarray,
               lengths: np.ndarray, settings: AugmentSettings, parallel: bool) -> tf.data.Dataset:
    """`batches` (the plan's rows `indices`) augmented; row r of the padded plan is a batch of epoch
    r // steps_per_epoch, whose samples' parameters parity.augment draws."""
    if not settings.shared_stream:
        layers = native_augmenter(settings)
        return _map(batches, lambda x, y: (apply_native(x, layers), y), parallel)
    height, width = batch_signature(source)[0].shape[1:3]
    batch_epochs = np.arange(len(indices), dtype=np.int64) // plan.steps_per_epoch

    def draw(batch_indices: np.ndarray, length: np.ndarray, epoch: np.ndarray) -> np.ndarray:
        return draw_parameters(settings.spec, settings.seed, int(epoch), batch_indices[:length], height, width)

    def parameters(batch_indices: tf.Tensor, length: tf.Tensor, epoch: tf.Tensor) -> tf.Tensor:
        params = tf.numpy_function(draw, [batch_indices, length, epoch], tf.float32, stateful=False)
        params.set_shape((None, len(COLUMNS)))
        return params

    params = _map(tf.data.Dataset.from_tensor_slices((indices, lengths, batch_epochs)), parameters, parallel)
    return _map(tf.data.Dataset.zip((batches, params)),
                lambda batch, row: (apply_aligned(batch[0], row, settings), batch[1]), parallel)


def train_dataset(plan: BatchPlan, source: SampleSource, epochs: int, parallel: bool = True,
                  augmentation: AugmentSettings | None = None) -> tf.data.Dataset:
    """All training batches of `epochs` epochs as one stream; fit it with steps_per_epoch=plan.steps_per_epoch.

    Keras keeps one iterator across epochs when steps_per_epoch is given, so epoch e of
    `fit` consumes exactly plan.epoch_batches(e). `parallel=False` (the bench's single-threaded
    input): batches are collated one at a time while the consumer waits, none ahead.
    `augmentation` (parity.augment.training_augmentation): each batch augmented after collation.
    """
    indices, lengths = plan.padded_batches(epochs)
    batches = _collated(source, indices, lengths, parallel)
    if augmentation is not None:
        batches = _augmented(batches, source, plan, indices, lengths, augmentation, parallel)
    return _finished(batches, parallel)


def eval_dataset(plan: BatchPlan, source: SampleSource) -> tf.data.Dataset:
    """Validation batches in data order (one epoch; Keras re-iterates it every epoch)."""
    indices, lengths = plan.padded_batches(1)
    return _finished(_collated(source, indices, lengths, parallel=True), parallel=True)
