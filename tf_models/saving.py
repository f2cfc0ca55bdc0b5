"""Save and load a Keras course model the safe way, and check that the loaded model predicts the same.

Mirror: torch_models/saving.py. The `.keras` file is loaded with `safe_mode=True`, which refuses
Lambda layers and unregistered classes, so loading a model never runs code from the file.
`save_trained` keeps a trained model of `parity run --save` (paths: parity.saved_models) and
checks its reload; `load_trained` loads it back for `parity predict`.

Keras 3 ignores `include_optimizer=False` for a `.keras` file (it applies to the legacy `.h5`
only; measured with Keras 3.15: both files of the same size), so the course's space-saving save
is made from an uncompiled copy of the model that holds the same weights and no optimizer.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from parity import saved_models
from parity.errors import ParityError

LOADER = "keras.saving.load_model(safe_mode=True)"


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


def save_trained(model, run_dir: Path, seed: int, inputs: np.ndarray, framework: str = "keras") -> dict[str, Any]:
    """Save `model` (trained, seed `seed`, by the Keras worker `framework`) into RUN_DIR/models, then `check_reload`
    it on `inputs`."""
    save_files(model, run_dir, seed, framework)
    return check_reload(model, run_dir, seed, inputs, framework)


def save_files(model, run_dir: Path, seed: int, framework: str = "keras") -> None:
    """`model` as RUN_DIR/models/{framework}-seed{seed}.keras (with its optimizer) and ...-no-optimizer.keras."""
    full = saved_models.keras_model_path(run_dir, seed, framework)
    full.parent.mkdir(parents=True, exist_ok=True)
    model.save(full)
    without_optimizer(model).save(saved_models.keras_light_path(run_dir, seed, framework))


def check_reload(model, run_dir: Path, seed: int, inputs: np.ndarray, framework: str = "keras") -> dict[str, Any]:
    """Both saved files of `seed` loaded with safe_mode=True, their predictions on `inputs` compared with `model`'s
    bit for bit (parity.saved_models.saved_record: files, sizes, reloads, `equal`)."""
    full = saved_models.keras_model_path(run_dir, seed, framework)
    light = saved_models.keras_light_path(run_dir, seed, framework)
    before = _predictions(model, inputs)
    reloads = [saved_models.reload_record(path, LOADER, before, _predictions(load_file(path), inputs))
               for path in (full, light)]
    return saved_models.saved_record([(full, "model, weights and optimizer state"),
                                      (light, "model and weights, no optimizer (not compiled)")], reloads)


def without_optimizer(model):
    """An uncompiled copy of `model` (same config, same weights): saved, it holds no optimizer state."""
    copy = type(model).from_config(model.get_config())
    copy.set_weights(model.get_weights())
    return copy


def load_trained(run_dir: Path, seed: int):
    """The Keras model of `seed` that `parity run --save` kept in `run_dir`, with its optimizer, loaded safely."""
    return load_file(saved_models.keras_model_path(run_dir, seed))


def load_file(path: Path):
    """A `.keras` file loaded with safe_mode=True; a one-line ParityError when it is missing or refused."""
    import keras

    if not Path(path).is_file():
        raise ParityError(f"{path} does not exist: run `parity run MODEL --save` to keep the trained models")
    try:
        return keras.saving.load_model(path, safe_mode=True)
    except ValueError as error:  # safe_mode's refusal (a Lambda layer, an unregistered class) is a ValueError
        raise ParityError(f"{path}: Keras refused to load it with safe_mode=True ({saved_models.first_line(error)}); "
                          "only load files you trust, and never with safe_mode=False") from None


def _predictions(model, inputs: np.ndarray) -> np.ndarray:
    """The model called on `inputs` (inference), as numpy on either backend (torch's outputs carry autograd)."""
    import keras

    return keras.ops.convert_to_numpy(model(inputs, training=False))
