"""The TensorBoard writer of the keras-torch worker: torch's SummaryWriter, with the tags and steps of the others.

The callbacks themselves are tf_models.callbacks (Keras API only); this is the one piece that is
the backend's own (tf_models.callbacks.ScalarWriter).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from parity import progress


class TorchScalarWriter:
    """torch.utils.tensorboard's SummaryWriter on one TensorBoard run directory (as Lightning's TensorBoardLogger
    writes), tensorboard switched to its TensorFlow stub first (parity.progress.tensorboard_without_tensorflow)."""

    def __init__(self, log_dir: Path) -> None:
        progress.tensorboard_without_tensorflow()
        from torch.utils.tensorboard import SummaryWriter

        self._writer = SummaryWriter(str(log_dir))

    def add_scalars(self, scalars: Sequence[tuple[str, float, int]]) -> None:
        for tag, value, step in scalars:
            self._writer.add_scalar(tag, value, global_step=step)
        self._writer.flush()

    def close(self) -> None:
        self._writer.close()
