"""The keras-torch worker with a planted error for tests: its lockstep jobs train with twice the learning rate."""

from __future__ import annotations

import sys
from typing import Any


def planted_lockstep(job: dict[str, Any]) -> dict[str, Any]:
    from keras_torch.lockstep import run_lockstep

    optimizer = {**job["optimizer"], "learning_rate": 2 * job["optimizer"]["learning_rate"]}
    return run_lockstep({**job, "optimizer": optimizer})


def main() -> int:
    from keras_torch.runtime import start_keras_on_torch

    start_keras_on_torch()
    from keras_torch import worker
    from parity import worker_runtime

    handlers = {**worker.handlers(), "lockstep": planted_lockstep}
    return worker_runtime.serve(worker_runtime.Worker("keras-torch", worker.configure, worker.versions, handlers))


if __name__ == "__main__":
    sys.exit(main())
