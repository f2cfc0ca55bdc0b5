"""The batch plan as a torch DataLoader: the same batches, in the same order, as tf_models.data."""

from __future__ import annotations

from typing import Iterator

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from parity.plan import BatchPlan


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


class ArrayBatches(Dataset):
    """Indexing with an index array returns the whole batch: one gather, no per-sample collate."""

    def __init__(self, x: np.ndarray, y: np.ndarray) -> None:
        self.x = torch.from_numpy(x)
        self.y = torch.from_numpy(y)

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, indices: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        rows = torch.from_numpy(indices)
        return self.x[rows], self.y[rows]


def plan_loader(plan: BatchPlan, x: np.ndarray, y: np.ndarray) -> DataLoader:
    """A DataLoader that follows `plan`: batch_size=None, the sampler yields whole batches."""
    return DataLoader(ArrayBatches(x, y), sampler=PlanBatchSampler(plan), batch_size=None)
