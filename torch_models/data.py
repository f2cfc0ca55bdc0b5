"""The batch plan as a torch DataLoader: the same batches, in the same order, as tf_models.data.

The sampler yields each batch's indices from the plan; the dataset builds the whole batch with
`parity.plan.collate` (numpy, from the memory-mapped data), so no per-sample collate runs and
only the batches in flight are in memory. Training batches of an augmented spec are then augmented
(torch_models.augment): the sampler yields the epoch with the indices, so the parameters
parity.augment draws for each sample's (seed, epoch, index) are those the Keras side draws.
"""

from __future__ import annotations

from typing import Iterator

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from parity.augment import AugmentSettings, draw_parameters
from parity.datasets.store import SampleSource
from parity.plan import BatchPlan, collate
from torch_models.augment import apply_aligned, apply_native, native_augmenter


class PlanBatchSampler(Sampler[np.ndarray]):
    """Yields the index array of each batch of the current epoch (with `with_epoch`, (epoch, indices) pairs);
    Lightning calls set_epoch each epoch."""

    def __init__(self, plan: BatchPlan, with_epoch: bool = False) -> None:
        self.plan = plan
        self.epoch = 0
        self.with_epoch = with_epoch

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self) -> Iterator[np.ndarray] | Iterator[tuple[int, np.ndarray]]:
        batches = self.plan.epoch_batches(self.epoch)
        return iter([(self.epoch, batch) for batch in batches] if self.with_epoch else batches)

    def __len__(self) -> int:
        return self.plan.steps_per_epoch


class CollatedBatches(Dataset):
    """Indexing with a batch's index array returns that whole batch, collated by `parity.plan.collate`."""

    def __init__(self, source: SampleSource) -> None:
        self.source = source

    def __len__(self) -> int:
        return len(self.source)

    def __getitem__(self, indices: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        x, y = collate(self.source, indices)
        return torch.from_numpy(x), torch.from_numpy(y)


class AugmentedBatches(Dataset):
    """Indexing with (epoch, batch indices) returns that batch collated, then augmented as `settings` say."""

    def __init__(self, source: SampleSource, settings: AugmentSettings) -> None:
        self.source = source
        self.settings = settings
        self.native = None if settings.shared_stream else native_augmenter(settings)

    def __len__(self) -> int:
        return len(self.source)

    def __getitem__(self, key: tuple[int, np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
        epoch, indices = key
        x, y = collate(self.source, indices)
        images = torch.from_numpy(x)
        if self.native is not None:
            return apply_native(images, self.native), torch.from_numpy(y)
        params = draw_parameters(self.settings.spec, self.settings.seed, epoch, indices, x.shape[1], x.shape[2])
        return apply_aligned(images, params, self.settings), torch.from_numpy(y)


def plan_loader(plan: BatchPlan, source: SampleSource, num_workers: int = 0, pin_memory: bool = False,
                augmentation: AugmentSettings | None = None) -> DataLoader:
    """A DataLoader that follows `plan`: batch_size=None, the sampler yields whole batches.

    `num_workers` > 0 (the bench's recommended input): that many worker processes, kept across epochs.
    `augmentation` (parity.augment.training_augmentation): each batch augmented after collation.
    """
    dataset = CollatedBatches(source) if augmentation is None else AugmentedBatches(source, augmentation)
    return DataLoader(dataset, sampler=PlanBatchSampler(plan, with_epoch=augmentation is not None), batch_size=None,
                      num_workers=num_workers, pin_memory=pin_memory, persistent_workers=num_workers > 0)
