"""One batch plan for both frameworks: the per-epoch index order, drawn once from a seed.

Each worker turns the same plan into its framework's pipeline (`tf_models.data`,
`torch_models.data`), so both see the same samples in the same batches, epoch by epoch.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class BatchPlan:
    """Shuffled training batches: epoch `e` uses permutation `rng([seed, e])` cut into batches.

    The last batch of an epoch is kept even when it is short, as Keras `fit` does on arrays.
    """

    num_samples: int
    batch_size: int
    seed: int
    shuffle: bool = True

    def __post_init__(self) -> None:
        if self.num_samples <= 0:
            raise ValueError(f"a batch plan needs samples, got num_samples={self.num_samples}")
        if self.batch_size <= 0:
            raise ValueError(f"batch_size must be positive, got {self.batch_size}")

    @property
    def steps_per_epoch(self) -> int:
        return -(-self.num_samples // self.batch_size)

    def epoch_order(self, epoch: int) -> np.ndarray:
        """The sample indices of `epoch` in training order (int64)."""
        if not self.shuffle:
            return np.arange(self.num_samples, dtype=np.int64)
        rng = np.random.default_rng([self.seed, epoch])
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


def eval_plan(num_samples: int, batch_size: int) -> BatchPlan:
    """Validation batches: the data in file order, the same in every epoch."""
    return BatchPlan(num_samples=num_samples, batch_size=batch_size, seed=0, shuffle=False)
