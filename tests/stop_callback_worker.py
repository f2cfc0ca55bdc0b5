"""One framework's course stop callback (StopAtThreshold) fed planted epoch-end logs, in its own process.

Usage: python tests/stop_callback_worker.py keras|lightning CASES_JSON, CASES_JSON = {model id: [logs, ...]}.
Prints one JSON line: per model id, whether its callback asked the framework to stop after each logs dict.
"""

from __future__ import annotations

import json
import sys
from types import SimpleNamespace

import numpy as np

from parity.catalog import get_spec


def keras_stops(rule, history: list[dict[str, float]]) -> list[bool]:
    from tf_models.callbacks import StopAtThreshold

    stops = []
    for epoch, logs in enumerate(history):
        callback = StopAtThreshold(rule)
        callback.set_model(SimpleNamespace(stop_training=False))
        callback.on_epoch_end(epoch, {key: float(np.float32(value)) for key, value in logs.items()})  # Keras' logs
        stops.append(callback.model.stop_training)
    return stops


def lightning_stops(rule, history: list[dict[str, float]]) -> list[bool]:
    import torch

    from torch_models.callbacks import StopAtThreshold

    stops = []
    for epoch, logs in enumerate(history):
        trainer = SimpleNamespace(callback_metrics={key: torch.tensor(value) for key, value in logs.items()},
                                  current_epoch=epoch, should_stop=False)
        StopAtThreshold(rule).on_train_epoch_end(trainer, None)
        stops.append(trainer.should_stop)
    return stops


if __name__ == "__main__":
    framework, cases = sys.argv[1], json.loads(sys.argv[2])
    run = keras_stops if framework == "keras" else lightning_stops
    print(json.dumps({model_id: run(get_spec(model_id).stop, history) for model_id, history in cases.items()}))
