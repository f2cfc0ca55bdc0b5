"""The batch plan as the torch DataLoaders Keras fits on with its torch backend: the bytes tf_models.data yields.

The batches are torch_models.data's (each built whole by `parity.plan.collate`; aligned
augmentation: the parameters parity.augment draws for each sample's (seed, epoch, index), applied
with torchvision ops, as the Lightning side applies them). Native augmentation is Keras' own: the
course's random layers (tf_models.augment.native_augmenter) run on the torch backend, drawing from
Keras' seed generators on torch's random stream, where the Keras worker's draw on TensorFlow's. Keras' `fit` does not call a sampler's
`set_epoch`, and with steps_per_epoch it keeps one iterator across epochs, so the training loader
yields every epoch of the plan in one pass (`EpochsSampler`), as tf_models.data.train_dataset does.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from parity.augment import AugmentSettings
from parity.datasets.store import SampleSource
from parity.plan import BatchPlan
from torch_models.data import AugmentedBatches, CollatedBatches, PlanBatchSampler, plan_loader


class EpochsSampler(PlanBatchSampler):
    """The index arrays of every batch of `epochs` epochs of `plan`, epoch after epoch (with `with_epoch`,
    (epoch, indices) pairs, as augmentation needs)."""

    def __init__(self, plan: BatchPlan, epochs: int, with_epoch: bool = False) -> None:
        super().__init__(plan, with_epoch)
        self.epochs = epochs

    def __iter__(self) -> Iterator[np.ndarray] | Iterator[tuple[int, np.ndarray]]:
        for epoch in range(self.epochs):
            self.set_epoch(epoch)
            yield from super().__iter__()

    def __len__(self) -> int:
        return self.plan.steps_per_epoch * self.epochs


class KerasAugmentedBatches(CollatedBatches):
    """Indexing with (epoch, batch indices) returns that batch collated, then augmented by the course's Keras random
    layers with their own draws (native augmentation; the epoch plays no part, as in the Keras worker's map)."""

    def __init__(self, source: SampleSource, settings: AugmentSettings) -> None:
        from tf_models.augment import native_augmenter

        super().__init__(source)
        self.layers = native_augmenter(settings)

    def __getitem__(self, key: tuple[int, np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
        from tf_models.augment import apply_native

        images, labels = super().__getitem__(key[1])
        return apply_native(images, self.layers).detach(), labels


def _training_batches(source: SampleSource, augmentation: AugmentSettings | None) -> Dataset:
    """The dataset the training loader indexes: plain, aligned-augmented (torchvision ops) or Keras-augmented."""
    if augmentation is None:
        return CollatedBatches(source)
    return AugmentedBatches(source, augmentation) if augmentation.shared_stream else KerasAugmentedBatches(
        source, augmentation)


def train_dataset(plan: BatchPlan, source: SampleSource, epochs: int, augmentation: AugmentSettings | None = None,
                  num_workers: int = 0, pin_memory: bool = False) -> DataLoader:
    """All training batches of `epochs` epochs as one loader; fit it with steps_per_epoch=plan.steps_per_epoch.

    `augmentation` (parity.augment.training_augmentation): each batch augmented after collation. `num_workers` > 0:
    that many loader processes, kept for the loader's life.
    """
    sampler = EpochsSampler(plan, epochs, with_epoch=augmentation is not None)
    return DataLoader(_training_batches(source, augmentation), sampler=sampler, batch_size=None,
                      num_workers=num_workers, pin_memory=pin_memory, persistent_workers=num_workers > 0)


def eval_dataset(plan: BatchPlan, source: SampleSource) -> DataLoader:
    """Validation batches in data order (one epoch; Keras iterates the loader afresh at every evaluation)."""
    return plan_loader(plan, source)
