"""keras-torch worker: the tf_models builders, unchanged, on Keras 3's torch backend, in a process of their own.

Started by parity.jobs (`python -m keras_torch.worker`) with KERAS_BACKEND=torch; `main` imports
torch._dynamo, hides TensorFlow and imports Keras before anything else (keras_torch.runtime). It
answers describe, forward, batches, train, lockstep and bench jobs with the Keras worker's result
dicts: describe, forward, batches and train are the Keras worker's own handlers
(tf_models.worker.shared_handlers) on `torch_backend` (the torch DataLoaders of keras_torch.data,
torch's TensorBoard writer); lockstep and bench are keras_torch.lockstep and keras_torch.bench.
torch's own settings per job (threads, TF32, deterministic algorithms) are the Lightning worker's
(torch_models.worker.configure). Other kinds are refused by parity.worker_runtime ("the
keras-torch worker has no 'probe' job; it runs describe, forward, ...").

Initial weights. A job's `weights_source` (parity.jobs.weights_source; absent: "keras") names the
Keras framework whose model the others start from. When it is keras-torch, this worker draws,
randomises and exports exactly as the Keras worker does (the same files, jobs.init_weights_path);
otherwise it builds the model from the seed and loads the source's export by layer and variable
name (tf_models.weights.load_exported_layers), so all frameworks start from one point. In native
mode nothing is loaded: the model keeps the values Keras' own initialisers drew on the torch
backend from the run's seed (Keras' distributions, torch's random stream), as Lightning keeps its
own; where single differences are switched, the layers align.copied_keras_kinds copies are loaded
and the others keep their own draws (tf_models.weights.initial_kinds).
"""

from __future__ import annotations

import functools
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # importing tf_models imports Keras, which must wait for `main` (keras_torch.runtime)
    from tf_models.worker import KerasBackend


def configure(job: dict[str, Any]) -> str:
    """The Lightning worker's torch set-up for this job (threads, device, TF32 and deterministic algorithms as the
    job's alignment says; torch_models.worker.configure), from a clean Keras state; returns the device in words."""
    import keras

    from torch_models.worker import configure as configure_torch

    device = configure_torch(job)
    keras.backend.clear_session()  # layer names and Keras' global state as in a fresh process
    return device


@functools.cache
def torch_backend() -> KerasBackend:
    """Keras on torch: torch DataLoaders over the batch plan (keras_torch.data) and torch's SummaryWriter."""
    from keras_torch.callbacks import TorchScalarWriter
    from keras_torch.data import eval_dataset, train_dataset
    from tf_models.worker import KerasBackend

    return KerasBackend("keras-torch", train_dataset, eval_dataset, TorchScalarWriter)


def versions() -> dict[str, str]:
    """Keras', torch's and the Keras backend's versions, for the run's environment record."""
    import keras
    import torch

    return {"keras": keras.__version__, "torch": torch.__version__, "keras_backend": keras.backend.backend()}


def handlers() -> dict[str, Any]:
    """The job kinds this worker runs (parity.worker_runtime refuses the others)."""
    from tf_models.worker import shared_handlers

    return {**shared_handlers(torch_backend), "lockstep": "keras_torch.lockstep:run_lockstep",
            "bench": "keras_torch.bench:run_bench"}


def main(argv: list[str] | None = None) -> int:
    """Start Keras on torch with TensorFlow hidden (keras_torch.runtime), then serve jobs
    (parity.worker_runtime.serve)."""
    from keras_torch.runtime import start_keras_on_torch

    start_keras_on_torch()
    from parity import worker_runtime

    return worker_runtime.serve(worker_runtime.Worker("keras-torch", configure, versions, handlers()), argv)


if __name__ == "__main__":
    sys.exit(main())
