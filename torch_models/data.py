"""The batch plan as a torch DataLoader: the same batches, in the same order, as tf_models.data.

The sampler yields each batch's indices from the plan; the dataset builds the whole batch with
`parity.plan.collate` (numpy, from the memory-mapped data), so no per-sample collate runs and
only the batches in flight are in memory.
"""

from __future__ import annotations

from typing import Iterator

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from parity.datasets.store import SampleSource
from parity.plan import BatchPlan, collate


class PlanBatchSampler(Sampler[np.ndarray]):
    """Yields the index array of each batch of the current epoch; Lightning calls set_epoch each epoch."""

    def __init__(self, plan: BatchPlan) -> None:
        self.plan = plan
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self) -> Iterator[np.ndarray]:
        return iter(self.plan.epoch_batches(self.epoch))

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


def plan_loader(plan: BatchPlan, source: SampleSource, num_workers: int = 0, pin_memory: bool = False) -> DataLoader:
    """A DataLoader that follows `plan`: batch_size=None, the sampler yields whole batches.

    `num_workers` > 0 (the bench's recommended input): that many worker processes, kept across epochs.
    """
    return DataLoader(CollatedBatches(source), sampler=PlanBatchSampler(plan), batch_size=None,
                      num_workers=num_workers, pin_memory=pin_memory, persistent_workers=num_workers > 0)
