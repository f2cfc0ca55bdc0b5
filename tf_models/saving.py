"""Save and load a Keras course model the safe way, and check that the loaded model predicts the same.

Mirror: torch_models/saving.py. The `.keras` file is loaded with `safe_mode=True`, which refuses
Lambda layers and unregistered classes, so loading a model never runs code from the file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np


def save_and_reload(model_id: str, seed: int, inputs: np.ndarray, directory: Path) -> dict[str, Any]:
    """Build and compile `model_id`, save it as .keras, reload it with safe_mode=True; compare predictions."""
    import keras

    from parity import compare
    from parity.catalog import get_spec
    from tf_models import build
    from tf_models.base import compile_model

    spec = get_spec(model_id)
    keras.utils.set_random_seed(seed)
    model = compile_model(build(model_id), spec)
    path = Path(directory) / f"{model_id}.keras"
    model.save(path)
    loaded = keras.models.load_model(path, safe_mode=True)
    before = np.asarray(model(inputs, training=False))
    after = np.asarray(loaded(inputs, training=False))
    return compare.roundtrip_row(model.count_params(), loaded.count_params(), before, after, path)


def run_roundtrip(job: dict[str, Any]) -> dict[str, Any]:
    """The `roundtrip` job: every model of `job["models"]` saved and reloaded (inputs: the probe files)."""
    from parity import jobs

    workdir = Path(job["workdir"])
    return {"models": {model_id: save_and_reload(model_id, job["seed"],
                                                 np.load(jobs.probe_inputs_path(workdir, model_id)), workdir)
                       for model_id in job["models"]}}
