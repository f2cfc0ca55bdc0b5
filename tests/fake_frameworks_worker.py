"""A framework-free worker that plays keras, lightning or keras-torch (the job's `framework`) in the forward check
and in training, for tests of the check and run flows over any set of frameworks (tests/test_three_frameworks.py).

It keeps the protocol that matters to those flows: the weights source (the job's `weights_source`) writes the
initial weights file, every other framework refuses to run without it (so a job sent out of parity.jobs.run_order
fails), the outputs go to parity.jobs.outputs_path and the training-mode file, and `train` writes each seed as it
ends. Each framework's outputs are the same float32 function of the inputs and weights, scaled by 1 + a few
float32 ulps of its own (as different kernels sum in different orders). Planted faults come from the environment:
FAKE_PLANT="framework=offset" adds `offset` to that framework's outputs; FAKE_DIE="framework=seed" ends that
framework's worker when it starts that seed.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import numpy as np

from parity import jobs, worker_runtime
from parity.catalog import get_spec

ROUNDING = {"keras": 0.0, "lightning": 2.4e-7, "keras-torch": -1.2e-7}  # relative, a few float32 ulps
VERSIONS = {"keras": {"tensorflow": "2.fake", "keras": "3.fake"}, "lightning": {"torch": "2.fake", "lightning": "2.fake"},
            "keras-torch": {"keras": "3.fake", "torch": "2.fake", "keras_backend": "torch"}}
FINAL_MAE = {"keras": 0.50, "lightning": 0.52, "keras-torch": 0.51}  # final val_mae of seed 0; seed s adds 0.01 s
RATE = {"keras": 1000.0, "lightning": 1500.0, "keras-torch": 1200.0}  # train samples/s (epoch seconds follow)
_played: dict[str, str] = {}


def configure(job: dict[str, Any]) -> str:
    if "weights_source" not in job and job["kind"] in ("forward", "train"):
        raise ValueError(f"the {job['kind']} job carries no weights_source")
    _played["framework"] = job["framework"]
    return worker_runtime.cpu_words(job["threads"])


def versions() -> dict[str, str]:
    return dict(VERSIONS[_played["framework"]])


def _planted(name: str, framework: str) -> str | None:
    target, _, value = os.environ.get(name, "").partition("=")
    return value if target == framework else None


def _initial_weights(job: dict[str, Any], tag: str, size: int) -> np.ndarray:
    """The source draws and writes the weights; the others read them (and fail if the source has not run)."""
    path = jobs.init_weights_path(Path(job["workdir"]), tag)
    if job["framework"] == job["weights_source"]:
        np.savez(path, w=np.random.default_rng(len(tag)).standard_normal(size).astype(np.float32))
    elif not path.exists():
        raise FileNotFoundError(f"{job['framework']}: no initial weights from {job['weights_source']} at {path}")
    with np.load(path) as weights:
        return weights["w"]


def _outputs(job: dict[str, Any], x: np.ndarray, w: np.ndarray) -> np.ndarray:
    flat = x.reshape(len(x), -1).astype(np.float32)
    outputs = np.tanh(flat @ w[: flat.shape[1], None] + 3.0).astype(np.float32)
    outputs = (outputs * np.float32(1.0 + ROUNDING[job["framework"]])).astype(np.float32)
    return outputs + np.float32(float(_planted("FAKE_PLANT", job["framework"]) or 0.0))


def forward(job: dict[str, Any]) -> dict[str, Any]:
    workdir = Path(job["workdir"])
    for model_id in job["models"]:
        tag = jobs.run_tag(model_id, job["seed"])
        x = np.load(jobs.probe_inputs_path(workdir, model_id))
        w = _initial_weights(job, tag, int(np.prod(x.shape[1:])))
        outputs = _outputs(job, x, w)
        np.save(jobs.outputs_path(workdir, job["framework"], tag), outputs)
        # parity.compare.save_training_outputs' file, written here without importing scipy (a faster start)
        np.savez(workdir / f"{job['framework']}-training-outputs-{tag}.npz", outputs=outputs * 0.5,
                 **{"statistics/bn/moving_mean": outputs[:4, 0] * 0.1})
    if job["framework"] == "lightning":
        return {"transfers": {model_id: {"keras_variables": 2, "torch_tensors": 2} for model_id in job["models"]}}
    return {}


def _train_one(job: dict[str, Any], seed: int) -> tuple[int, dict[str, Any]]:
    framework = job["framework"]
    if _planted("FAKE_DIE", framework) == str(seed):
        print(f"dying at seed {seed}", flush=True)
        os._exit(3)
    _initial_weights(job, jobs.run_tag(job["model"], seed), 4)
    metric = get_spec(job["model"]).metric
    epochs = job["epochs"]
    final = FINAL_MAE[framework] + 0.01 * seed + (0.003 if framework == "lightning" and seed == 1 else 0.0)
    values = [final + 0.1 * (epochs - 1 - epoch) for epoch in range(epochs)]
    history = {"loss": values, "val_loss": values, metric: values, f"val_{metric}": values}
    return 2, {"seed": seed, "history": history, "step_loss": values, "epoch_seconds": [6 / RATE[framework]] * epochs,
               "wall_s": 0.01, "epochs_run": epochs, "stopped_early": False, "diverged": None,
               "probe_predictions": None, "forecast": None, "early_stopping": None, "checkpoint": None, "saved": None}


def train(job: dict[str, Any]) -> dict[str, Any]:
    return worker_runtime.train_seeds(job, lambda seed: _train_one(job, seed))


HANDLERS = {"forward": forward, "train": train}

if __name__ == "__main__":
    sys.exit(worker_runtime.serve(worker_runtime.Worker("fake", configure, versions, HANDLERS)))
