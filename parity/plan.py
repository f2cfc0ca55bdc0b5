"""One batch plan for both frameworks: the per-epoch index order, drawn once from a seed.

Each worker turns the same plan into its framework's pipeline (`tf_models.data`,
`torch_models.data`), so both see the same samples in the same batches, epoch by epoch.
`collate` builds each batch from the plan's indices, in numpy, for both; `sample_rng` is the
per-sample random stream keyed by (seed, epoch, index) that augmentation draws from.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from parity.datasets.store import Padding, Ragged, SampleSource
from parity.spec_types import ModelSpec, SeriesData


@dataclass(frozen=True)
class BatchPlan:
    """Shuffled training batches: epoch `e` draws its order from `rng([seed, e])` and cuts it into batches.

    The order is a uniform permutation, or, with a `shuffle_buffer` smaller than the data, the order
    tf.data's `shuffle(shuffle_buffer)` gives (`buffer_shuffle_order`): a sample can only move up
    to about a buffer's length ahead. The last batch of an epoch is kept even when it is short, as
    Keras `fit` does on arrays.
    """

    num_samples: int
    batch_size: int
    seed: int
    shuffle: bool = True
    shuffle_buffer: int | None = None

    def __post_init__(self) -> None:
        if self.num_samples <= 0:
            raise ValueError(f"a batch plan needs samples, got num_samples={self.num_samples}")
        if self.batch_size <= 0:
            raise ValueError(f"batch_size must be positive, got {self.batch_size}")
        if self.shuffle_buffer is not None and self.shuffle_buffer <= 0:
            raise ValueError(f"shuffle_buffer must be positive or None, got {self.shuffle_buffer}")

    @property
    def steps_per_epoch(self) -> int:
        return -(-self.num_samples // self.batch_size)

    def epoch_order(self, epoch: int) -> np.ndarray:
        """The sample indices of `epoch` in training order (int64)."""
        if not self.shuffle:
            return np.arange(self.num_samples, dtype=np.int64)
        rng = np.random.default_rng([self.seed, epoch])
        if self.shuffle_buffer is not None and self.shuffle_buffer < self.num_samples:
            return buffer_shuffle_order(self.num_samples, self.shuffle_buffer, rng)
        return rng.permutation(self.num_samples).astype(np.int64)

    def epoch_batches(self, epoch: int) -> list[np.ndarray]:
        """The index arrays of the batches of `epoch`, in order."""
        order = self.epoch_order(epoch)
        return [order[i : i + self.batch_size] for i in range(0, self.num_samples, self.batch_size)]

    def padded_batches(self, epochs: int) -> tuple[np.ndarray, np.ndarray]:
        """All batches of `epochs` epochs as a (steps, batch_size) index matrix padded with -1, plus lengths.

        A rectangular form that a tf.data pipeline can slice without Python in the loop.
        """
        steps = self.steps_per_epoch
        indices = np.full((epochs * steps, self.batch_size), -1, dtype=np.int64)
        lengths = np.zeros(epochs * steps, dtype=np.int64)
        for epoch in range(epochs):
            for step, batch in enumerate(self.epoch_batches(epoch)):
                indices[epoch * steps + step, : len(batch)] = batch
                lengths[epoch * steps + step] = len(batch)
        return indices, lengths


def buffer_shuffle_order(num_samples: int, buffer_size: int, rng: np.random.Generator) -> np.ndarray:
    """The order in which tf.data's `shuffle(buffer_size)` yields samples 0..num_samples-1 (int64).

    The buffer is filled with the first `buffer_size` samples in order; each draw takes a
    uniformly random slot and refills it with the next sample of the stream (once the stream is
    spent, the slot takes the buffer's last sample and the buffer shrinks). tf.data keeps its
    buffer in another layout, but draws uniformly from the same set at every step, so both give
    the same distribution of orders; the draws here come from `rng`, not from TensorFlow's seed.
    """
    buffer = list(range(min(buffer_size, num_samples)))
    upcoming = len(buffer)
    order = np.empty(num_samples, dtype=np.int64)
    for step, uniform in enumerate(rng.random(num_samples)):
        slot = int(uniform * len(buffer))
        order[step] = buffer[slot]
        if upcoming < num_samples:
            buffer[slot] = upcoming
            upcoming += 1
        else:
            buffer[slot] = buffer[-1]
            buffer.pop()
    return order


def train_plan(spec: ModelSpec, num_samples: int, seed: int) -> BatchPlan:
    """The training batch plan of `spec`: its batch size, and for a windowed series its shuffle buffer.

    Only series specs shuffle with their buffer: the course shuffles the windows themselves with
    `shuffle(shuffle_buffer)` before batching. Elsewhere `shuffle_buffer` means other things (the
    v2 image pipelines shuffle whole batches, with a buffer larger than their count), so those keep
    the uniform permutation.
    """
    buffer = spec.data.shuffle_buffer if isinstance(spec.data, SeriesData) else None
    return BatchPlan(num_samples, spec.batch_size, seed, shuffle_buffer=buffer)


def eval_plan(num_samples: int, batch_size: int) -> BatchPlan:
    """Validation batches: the data in file order, the same in every epoch."""
    return BatchPlan(num_samples=num_samples, batch_size=batch_size, seed=0, shuffle=False)


# ---------------------------------------------------------------- batches from a plan's indices


@dataclass(frozen=True)
class BatchSignature:
    """Shape (None = varies: the batch axis, or the padded length) and dtype of one collated array."""

    shape: tuple[int | None, ...]
    dtype: np.dtype


def collate(source: SampleSource, indices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The batch of `source` at `indices`, in that order: (x, y), new C-contiguous numpy arrays.

    The one place a batch is built, for both frameworks: dense inputs are gathered (integer
    pixels scaled to float32 by `source.scale`), ragged token ids are padded to a rectangle of
    int32 as `source.padding` says; labels are gathered unchanged.
    """
    indices = np.asarray(indices, dtype=np.int64).reshape(-1)
    if len(indices) and (indices.min() < 0 or indices.max() >= len(source)):
        raise IndexError(f"batch indices must lie in [0, {len(source)}), got {indices.min()}..{indices.max()}")
    y = np.ascontiguousarray(source.y[indices])
    if isinstance(source.x, Ragged):
        return pad_batch(source.x, indices, source.padding or Padding()), y
    x = np.asarray(source.x[indices])
    return (source.scale.apply(x) if source.scale else np.ascontiguousarray(x)), y


def pad_batch(tokens: Ragged, indices: np.ndarray, padding: Padding) -> np.ndarray:
    """Sequences `indices` of `tokens` as an int32 (batch, length) array, zero-padded (Keras `pad_sequences`)."""
    starts, ends = tokens.offsets[indices], tokens.offsets[indices + 1]
    longest = int((ends - starts).max(initial=0))
    length = longest if padding.length is None else padding.length
    out = np.zeros((len(indices), length), dtype=np.int32)
    for row, (start, end) in enumerate(zip(starts, ends)):
        kept = min(int(end - start), length)
        if not kept:
            continue
        piece = tokens.values[end - kept : end] if padding.truncating == "pre" else tokens.values[start : start + kept]
        if padding.padding == "post":
            out[row, :kept] = piece
        else:
            out[row, length - kept :] = piece
    return out


def batch_signature(source: SampleSource) -> tuple[BatchSignature, BatchSignature]:
    """What `collate(source, ...)` returns, as (x, y) signatures: e.g. a tf.data output_signature."""
    y = BatchSignature((None, *source.y.shape[1:]), source.y.dtype)
    if isinstance(source.x, Ragged):
        return BatchSignature((None, (source.padding or Padding()).length), np.dtype(np.int32)), y
    dtype = np.dtype(np.float32) if source.scale else source.x.dtype
    return BatchSignature((None, *source.x.shape[1:]), dtype), y


# ---------------------------------------------------------------- per-sample random stream

# Leads every per-sample seed, so that no (seed, epoch, index) stream coincides with the plan's
# epoch permutations, seeded [seed, epoch] (numpy's SeedSequence treats [a, b] and [a, b, 0] alike).
SAMPLE_STREAM = 0x53414D50


def sample_rng(seed: int, epoch: int, index: int) -> np.random.Generator:
    """The random stream of sample `index` in `epoch` of a run seeded `seed` (all non-negative ints).

    `np.random.default_rng([SAMPLE_STREAM, seed, epoch, index])` (PCG64 from a SeedSequence): it
    depends on those three numbers only, never on which batch the sample is in, its position
    there or what was drawn before, so both frameworks (and any batch order) draw the same values.
    Augmentation parameters are drawn from it.
    """
    return np.random.default_rng([SAMPLE_STREAM, seed, epoch, index])


def sample_uniforms(seed: int, epoch: int, indices: np.ndarray, count: int) -> np.ndarray:
    """(len(indices), count) float64 uniforms in [0, 1): row i is sample_rng(seed, epoch, indices[i]).random(count)."""
    rows = [sample_rng(seed, epoch, int(index)).random(count) for index in np.asarray(indices).reshape(-1)]
    return np.stack(rows) if rows else np.zeros((0, count))
