"""Keras worker: runs one job (describe, forward, batches, train) in its own process.

Usage: python -m tf_models.worker JOB.json (written by parity.jobs.run_worker).
Mirror: torch_models/worker.py.
"""

from __future__ import annotations

import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np


def _configure(job: dict[str, Any]) -> str:
    """Threads, device and TF32 for this process; returns the device in words."""
    import tensorflow as tf

    from parity import align

    tf.config.threading.set_intra_op_parallelism_threads(job["threads"])
    tf.config.threading.set_inter_op_parallelism_threads(1)
    gpus = tf.config.list_physical_devices("GPU")
    if job["device"] == "gpu" and not gpus:
        raise RuntimeError("--device gpu: TensorFlow sees no GPU")
    alignment = align.Alignment.from_job(job.get("native", ()))
    if gpus and align.tf32_allowed(alignment) is False:
        tf.config.experimental.enable_tensor_float_32_execution(False)
    if align.deterministic_ops(alignment):
        tf.config.experimental.enable_op_determinism()
    if gpus:
        return f"gpu ({tf.config.experimental.get_device_details(gpus[0]).get('device_name', 'GPU')})"
    return f"cpu ({platform.processor() or platform.machine()}, {job['threads']} threads)"


def _describe(job: dict[str, Any]) -> dict[str, Any]:
    from parity.catalog import get_spec
    from tf_models import build
    from tf_models.base import REGISTRY

    buildable = [model_id for model_id in job["models"] if get_spec(model_id).architecture in REGISTRY]
    params = {model_id: build(model_id).count_params() for model_id in buildable}
    return {"architectures": list(REGISTRY), "params": params}


def _forward(job: dict[str, Any]) -> dict[str, Any]:
    """Build each model from a seed, save its weights and its outputs on the given inputs."""
    import keras

    from parity import jobs
    from parity.weights import save_keras_layers
    from tf_models import build
    from tf_models.weights import export_layers

    workdir = Path(job["workdir"])
    for model_id in job["models"]:
        tag = jobs.run_tag(model_id, job["seed"])
        keras.utils.set_random_seed(job["seed"])
        model = build(model_id)
        save_keras_layers(jobs.init_weights_path(workdir, tag), export_layers(model))
        x = np.load(jobs.probe_inputs_path(workdir, model_id))
        np.save(jobs.outputs_path(workdir, "keras", tag), model(x, training=False).numpy())
    return {}


def _batches(job: dict[str, Any]) -> dict[str, Any]:
    """Dump every batch the tf.data pipelines yield, for the identical-batches test."""
    from parity import jobs
    from parity.plan import BatchPlan, eval_plan
    from tf_models.data import eval_dataset, train_dataset

    data = jobs.load_data(Path(job["data"]))
    plan = BatchPlan(len(data["x_train"]), job["batch_size"], job["seed"])
    train = [(x.numpy(), y.numpy()) for x, y in train_dataset(plan, data["x_train"], data["y_train"], job["epochs"])]
    val = [(x.numpy(), y.numpy()) for x, y in eval_dataset(eval_plan(len(data["x_val"]), job["batch_size"]),
                                                          data["x_val"], data["y_val"])]
    return jobs.save_batches(job["out"], train, val)


def _train_one(job: dict[str, Any], seed: int, data: dict[str, np.ndarray]) -> tuple[int, dict[str, Any]]:
    """Train one seed; returns the model's parameter count and the run's record."""
    import keras

    from parity import jobs
    from parity.catalog import get_spec
    from parity.plan import BatchPlan, eval_plan
    from parity.weights import save_keras_layers
    from tf_models import build
    from tf_models.base import compile_model
    from tf_models.callbacks import Recorder, StopAtThreshold
    from tf_models.data import eval_dataset, train_dataset
    from tf_models.weights import export_layers

    spec = get_spec(job["model"])
    workdir = Path(job["workdir"])
    tag = jobs.run_tag(spec.id, seed)
    keras.utils.set_random_seed(seed)
    model = build(spec.id)
    save_keras_layers(jobs.init_weights_path(workdir, tag), export_layers(model))
    probe_x = np.load(jobs.probe_inputs_path(workdir, spec.id))
    np.save(jobs.outputs_path(workdir, "keras", tag), model(probe_x, training=False).numpy())

    compile_model(model, spec)
    plan = BatchPlan(len(data["x_train"]), spec.batch_size, seed)
    recorder = Recorder(spec.metric)
    callbacks: list = [recorder, keras.callbacks.CSVLogger(str(Path(job["log_dir"]) / f"keras-seed{seed}.csv"))]
    stopper = StopAtThreshold(spec.stop) if spec.stop else None
    if stopper:
        callbacks.append(stopper)
    print(f"[keras] {spec.id} seed {seed}: {job['epochs']} epochs x {plan.steps_per_epoch} steps", flush=True)
    start = time.perf_counter()
    model.fit(
        train_dataset(plan, data["x_train"], data["y_train"], job["epochs"]),
        epochs=job["epochs"],
        steps_per_epoch=plan.steps_per_epoch,
        validation_data=eval_dataset(eval_plan(len(data["x_val"]), spec.batch_size), data["x_val"], data["y_val"]),
        callbacks=callbacks,
        shuffle=False,  # the batch plan already shuffled; Keras would ignore it for tf.data and warn
        verbose=job.get("verbose", 1),
    )
    wall = time.perf_counter() - start
    return model.count_params(), {
        "seed": seed,
        "history": recorder.history,
        "step_loss": recorder.step_loss,
        "epoch_seconds": recorder.epoch_seconds,
        "wall_s": wall,
        "epochs_run": len(recorder.epoch_seconds),
        "stopped_early": bool(stopper and stopper.stopped_epoch is not None),
        "probe_predictions": _probe_predictions(model, spec),
    }


def _probe_predictions(model, spec) -> list[float] | None:
    """The course's own probe (e.g. predict(10) for hello world), after training."""
    probe = getattr(spec.data, "probe_x", ())
    if not probe:
        return None
    x = np.asarray(probe, dtype=np.float32).reshape(-1, *spec.input_shape)
    return model(x, training=False).numpy().ravel().tolist()


def _train(job: dict[str, Any]) -> dict[str, Any]:
    from parity import jobs

    data = jobs.load_data(Path(job["data"]))
    params, runs = zip(*(_train_one(job, seed, data) for seed in job["seeds"]))
    return {"params": params[0], "runs": list(runs)}


HANDLERS = {
    "describe": _describe, "forward": _forward, "batches": _batches, "train": _train,
    "lockstep": "tf_models.lockstep:run_lockstep", "probe": "tf_models.probes:run_job", "bench": "tf_models.bench:run_bench",
}


def _versions() -> dict[str, str]:
    import keras
    import tensorflow as tf

    return {"tensorflow": tf.__version__, "keras": keras.__version__, "python": platform.python_version()}


def main(argv: list[str] | None = None) -> int:
    """Run the job file named on the command line and write its result file."""
    from parity import jobs

    return jobs.serve(argv or sys.argv[1:], "keras", _configure, HANDLERS, _versions)


if __name__ == "__main__":
    sys.exit(main())
