"""The batch plan as the torch DataLoaders Keras fits on with its torch backend: the bytes tf_models.data yields.

The batches are torch_models.data's (each built whole by `parity.plan.collate`; augmented with
the parameters parity.augment draws for each sample's (seed, epoch, index), applied with
torchvision ops, as the Lightning side applies them). Keras' `fit` does not call a sampler's
`set_epoch`, and with steps_per_epoch it keeps one iterator across epochs, so the training loader
yields every epoch of the plan in one pass (`EpochsSampler`), as tf_models.data.train_dataset does.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
from torch.utils.data import DataLoader

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


def check_augmentation(augmentation: AugmentSettings | None) -> None:
    """Refuse native augmentation: the course's Keras random layers are built in tf_models.augment, which imports
    TensorFlow, and torchvision's random transforms would be Lightning's idiom, not Keras'."""
    if augmentation is not None and not augmentation.shared_stream:
        raise ValueError("keras-torch runs augmented models with the aligned augmentation stream only (the parameters "
                         "parity.augment draws, applied with torchvision ops as on the Lightning side); run them in "
                         "aligned mode, without --native augmentation_stream")


def train_dataset(plan: BatchPlan, source: SampleSource, epochs: int, augmentation: AugmentSettings | None = None,
                  num_workers: int = 0, pin_memory: bool = False) -> DataLoader:
    """All training batches of `epochs` epochs as one loader; fit it with steps_per_epoch=plan.steps_per_epoch.

    `augmentation` (parity.augment.training_augmentation, aligned only: `check_augmentation`): each batch augmented
    after collation. `num_workers` > 0: that many loader processes, kept for the loader's life.
    """
    check_augmentation(augmentation)
    dataset = CollatedBatches(source) if augmentation is None else AugmentedBatches(source, augmentation)
    return DataLoader(dataset, sampler=EpochsSampler(plan, epochs, with_epoch=augmentation is not None),
                      batch_size=None, num_workers=num_workers, pin_memory=pin_memory,
                      persistent_workers=num_workers > 0)


def eval_dataset(plan: BatchPlan, source: SampleSource) -> DataLoader:
    """Validation batches in data order (one epoch; Keras iterates the loader afresh at every evaluation)."""
    return plan_loader(plan, source)
