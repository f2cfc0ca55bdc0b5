"""Keras worker: the process that runs the Keras side of every job (describe, forward, batches, train, ...).

This module supplies what is Keras' own: `configure`, `versions` and the handler table; the
job loop is parity.worker_runtime, started by parity.jobs (`python -m tf_models.worker`, fed
job files on stdin; `python -m tf_models.worker JOB.json` runs one by hand).
Mirror: torch_models/worker.py.

The describe, forward, batches and train handlers are Keras API only and serve the keras-torch
worker too (keras_torch.worker): what differs between the backends, the input pipeline and the
TensorBoard writer, comes in a `KerasBackend` (TensorFlow's: `tensorflow_backend`).
"""

from __future__ import annotations

import functools
import logging
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from parity.datasets.store import SampleSource, Sources
    from parity.plan import BatchPlan
    from tf_models.callbacks import ScalarWriter


@dataclass(frozen=True)
class KerasBackend:
    """What the shared Keras handlers take from the backend Keras runs on; the rest is Keras' own API.

    `train_batches(plan, source, epochs, augmentation=...)`: every training batch of `epochs` epochs as one stream,
    which `fit` consumes with steps_per_epoch=plan.steps_per_epoch; `eval_batches(plan, source)`: the validation
    batches in data order, one pass each time it is iterated; both yield (x, y) tensors with a `.numpy()`.
    `summary_writer(log_dir)`: the TensorBoard writer of one run.
    """

    framework: str
    train_batches: Callable[..., Iterable]
    eval_batches: Callable[[BatchPlan, SampleSource], Iterable]
    summary_writer: Callable[[Path], ScalarWriter]


@functools.cache
def tensorflow_backend() -> KerasBackend:
    """Keras on TensorFlow: tf.data pipelines (tf_models.data) and tf.summary."""
    from tf_models.callbacks import TensorFlowScalarWriter
    from tf_models.data import eval_dataset, train_dataset

    return KerasBackend("keras", train_dataset, eval_dataset, TensorFlowScalarWriter)


def configure(job: dict[str, Any]) -> str:
    """Threads, device, TF32 and op determinism for this job, from a clean Keras state; returns the device in words.

    The worker may have served other jobs before: every setting is made both ways.
    """
    import keras
    import tensorflow as tf
    from tensorflow.python.framework import config as tf_config

    from parity import align
    from parity.worker_runtime import cpu_words

    tf.config.threading.set_intra_op_parallelism_threads(job["threads"])  # fixed for the worker's life
    tf.config.threading.set_inter_op_parallelism_threads(1)
    gpus = tf.config.list_physical_devices("GPU")
    if job["device"] == "gpu" and not gpus:
        raise RuntimeError("--device gpu: TensorFlow sees no GPU")
    alignment = align.Alignment.from_job(job.get("native", ()))
    # TF32 is a GPU setting: on a GPU off when aligned, else TensorFlow's default (on), as on a CPU.
    tf.config.experimental.enable_tensor_float_32_execution(not gpus or align.tf32_allowed(alignment) is not False)
    if align.deterministic_ops(alignment):
        tf.config.experimental.enable_op_determinism()
    else:
        tf_config.disable_op_determinism()  # no public switch back
    keras.backend.clear_session()  # layer names and Keras' global state as in a fresh process
    tf.get_logger().addFilter(_not_a_predict_retracing_warning)  # added only if not there yet
    if gpus:
        return f"gpu ({tf.config.experimental.get_device_details(gpus[0]).get('device_name', 'GPU')})"
    return cpu_words(job["threads"])


def _describe(job: dict[str, Any]) -> dict[str, Any]:
    from parity.catalog import get_spec
    from tf_models import build
    from tf_models.base import REGISTRY

    buildable = [model_id for model_id in job["models"] if get_spec(model_id).architecture in REGISTRY]
    params = {model_id: build(model_id).count_params() for model_id in buildable}
    return {"architectures": list(REGISTRY), "params": params}


def _forward(backend: KerasBackend, job: dict[str, Any]) -> dict[str, Any]:
    """The Keras half of the forward check: each model with random weights (drawn and exported by the weights
    source, loaded from its export by the other Keras framework) and its outputs (inference, and training mode for
    BatchNorm/dropout models; tf_models.weights.save_forward_check)."""
    import keras

    from parity import jobs
    from tf_models import build
    from tf_models.weights import save_forward_check

    workdir = Path(job["workdir"])
    for model_id in job["models"]:
        keras.utils.set_random_seed(job["seed"])
        save_forward_check(build(model_id), np.load(jobs.probe_inputs_path(workdir, model_id)), workdir,
                           jobs.run_tag(model_id, job["seed"]), job["seed"], backend.framework,
                           job.get("weights_source", "keras"))
    return {}


def _batches(backend: KerasBackend, job: dict[str, Any]) -> dict[str, Any]:
    """Dump every batch the backend's pipelines yield, for the identical-batches test; with "augment" ({"model",
    "native"}), the training batches augmented as that model's training under that alignment augments them."""
    from parity import jobs
    from parity.align import Alignment
    from parity.augment import training_augmentation
    from parity.catalog import get_spec
    from parity.plan import BatchPlan, eval_plan

    data = jobs.load_data(Path(job["data"]))
    plan = BatchPlan(len(data.train), job["batch_size"], job["seed"])
    augment = job.get("augment")
    augmentation = augment and training_augmentation(get_spec(augment["model"]), data.train,
                                                     Alignment.from_job(augment["native"]), job["seed"])
    train = [(x.numpy(), y.numpy())
             for x, y in backend.train_batches(plan, data.train, job["epochs"], augmentation=augmentation)]
    val = [] if data.val is None else [
        (x.numpy(), y.numpy()) for x, y in backend.eval_batches(eval_plan(len(data.val), job["batch_size"]), data.val)]
    return jobs.save_batches(job["out"], train, val)


def _train_one(backend: KerasBackend, job: dict[str, Any], seed: int, data: Sources) -> tuple[int, dict[str, Any]]:
    """Train one seed; returns the model's parameter count and the run's record."""
    import keras

    from parity import align, jobs, progress
    from parity.augment import training_augmentation
    from parity.catalog import get_spec
    from parity.plan import eval_plan, train_plan
    from tf_models import build
    from tf_models.base import compile_model
    from tf_models.callbacks import (EpochLines, Recorder, StopAtNonFiniteLoss, StopAtThreshold, TensorBoardScalars,
                                     early_stopping)
    from tf_models.weights import initial_kinds, share_initial_weights

    spec = get_spec(job["model"])
    workdir = Path(job["workdir"])
    framework = backend.framework
    alignment = align.Alignment.from_job(job.get("native", ()))
    keras.utils.set_random_seed(seed)
    model = build(spec.id)
    share_initial_weights(model, jobs.init_weights_path(workdir, jobs.run_tag(spec.id, seed)), framework,
                          job.get("weights_source", "keras"), initial_kinds(alignment))
    compile_model(model, spec, job.get("learning_rate"))
    plan = train_plan(spec, len(data.train), seed)
    recorder = Recorder(spec.metric)
    non_finite = StopAtNonFiniteLoss()
    callbacks: list = [recorder, non_finite,
                       keras.callbacks.CSVLogger(str(Path(job["log_dir"]) / f"{framework}-seed{seed}.csv"))]
    if job.get("tensorboard_dir"):
        run_dir = Path(job["tensorboard_dir"]) / progress.tensorboard_run(framework, seed)
        callbacks.append(TensorBoardScalars(recorder, backend.summary_writer(run_dir)))
    stopper = StopAtThreshold(spec.stop) if spec.stop else None
    if stopper:
        callbacks.append(stopper)
    best = early_stopping(job["early_stopping"]) if job.get("early_stopping") else None
    checkpoint = _checkpoint(job["checkpoint"], framework, seed) if job.get("checkpoint") else None
    callbacks += [callback for callback in (best, checkpoint) if callback]
    bars = sys.stdout.isatty()  # a terminal: Keras' own progress bar; a pipe or a log file: one line per epoch
    if not bars:
        callbacks.append(EpochLines(recorder, job["epochs"]))
    print(progress.run_header(framework, spec.id, seed, job["epochs"], plan.steps_per_epoch), flush=True)
    start = time.perf_counter()
    augmentation = training_augmentation(spec, data.train, alignment, seed)
    val_batches = None if data.val is None else backend.eval_batches(eval_plan(len(data.val), spec.batch_size), data.val)
    model.fit(
        backend.train_batches(plan, data.train, job["epochs"], augmentation=augmentation),
        epochs=job["epochs"],
        steps_per_epoch=plan.steps_per_epoch,
        validation_data=val_batches,
        callbacks=callbacks,
        shuffle=False,  # the batch plan already shuffled; Keras would ignore it for tf.data and warn
        verbose=1 if bars else 0,
    )
    wall = time.perf_counter() - start
    stop = _early_stopping_record(best, model, recorder, spec, val_batches) if best else None
    saved = None
    if job.get("save_to"):  # after training and any restore of the best weights: the model as the run ends
        from tf_models.saving import save_trained

        saved = save_trained(model, Path(job["save_to"]), seed, np.load(jobs.probe_inputs_path(workdir, spec.id)),
                             framework)
    return model.count_params(), {
        "seed": seed,
        "history": recorder.history,
        "step_loss": recorder.step_loss,
        "epoch_seconds": recorder.epoch_seconds,
        "wall_s": wall,
        "epochs_run": len(recorder.epoch_seconds),
        "stopped_early": bool(stopper and stopper.stopped_epoch is not None),
        "diverged": non_finite.diverged,
        "probe_predictions": _probe_predictions(model, spec),
        "optimizer_learning_rate": float(keras.ops.convert_to_numpy(model.optimizer.learning_rate)),
        "forecast": _forecast(model, val_batches) if job.get("forecast") else None,
        "early_stopping": stop,
        "checkpoint": _checkpoint_record(job["checkpoint"], framework, seed) if checkpoint else None,
        "saved": saved,
    }


def _checkpoint_file(settings: dict[str, Any], framework: str, seed: int) -> Path:
    return Path(settings["dir"]) / f"{framework}-seed{seed}-{settings['kind']}.keras"


def _checkpoint(settings: dict[str, Any], framework: str, seed: int):
    """`--checkpoint best|last`: Keras' ModelCheckpoint writing the whole model to CHECKPOINT_DIR."""
    from tf_models.callbacks import best_checkpoint, last_checkpoint

    path = _checkpoint_file(settings, framework, seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    return best_checkpoint(settings["monitor"], path) if settings["kind"] == "best" else last_checkpoint(path)


def _checkpoint_record(settings: dict[str, Any], framework: str, seed: int) -> dict[str, Any]:
    path = _checkpoint_file(settings, framework, seed)
    return {"kind": settings["kind"], "monitor": settings["monitor"], "file": path.name, "bytes": path.stat().st_size}


def _early_stopping_record(stopper, model, recorder, spec, val_batches: Iterable | None) -> dict[str, Any]:
    """What EarlyStopping decided (epochs 1-based) and the restored model's validation loss and metric, evaluated
    once more on the validation batches (None without validation data)."""
    from tf_models.callbacks import monitor_mode

    restored = {}
    if val_batches is not None:
        logs = model.evaluate(val_batches, verbose=0, return_dict=True)
        restored = {key: float(value) for key, value in logs.items()}
    return {
        "monitor": stopper.monitor, "patience": stopper.patience, "min_delta": abs(stopper.min_delta),
        "mode": monitor_mode(stopper),
        "stopped_epoch": stopper.stopped_epoch + 1 if stopper.stopped_epoch > 0 else None,
        "best_epoch": stopper.best_epoch + 1,
        "best_value": recorder.history[stopper.monitor][stopper.best_epoch],
        "restored": stopper.best_weights is not None,
        "restored_val_loss": restored.get("loss"),
        f"restored_val_{spec.metric}": restored.get(spec.metric),
    }


def _probe_predictions(model, spec) -> list[float] | None:
    """The course's own probe (e.g. predict(10) for hello world), after training."""
    import keras

    probe = getattr(spec.data, "probe_x", ())
    if not probe:
        return None
    x = np.asarray(probe, dtype=np.float32).reshape(-1, *spec.input_shape)
    return keras.ops.convert_to_numpy(model(x, training=False)).ravel().tolist()


def _forecast(model, val_batches: Iterable) -> list[float]:
    """The trained model's output for every validation window, in order: the course's forecast of each step after
    the split. Batched as validation is, so each value is the one the logged val_mae was computed from."""
    return model.predict(val_batches, verbose=0).ravel().tolist()


def _not_a_predict_retracing_warning(record: logging.LogRecord) -> bool:
    """False for TensorFlow's warning that Keras' predict function retraced: every seed builds a fresh model whose
    predict (the forecast) traces for the full and the last, smaller, validation batch, so a run of several seeds
    always "retraces". Retracing warnings of the training step stay: there they would be a real cost."""
    message = record.getMessage()
    return not ("triggered tf.function retracing" in message and "make_predict_function" in message)


def _train(backend: KerasBackend, job: dict[str, Any]) -> dict[str, Any]:
    """Every seed of the job in turn, each written as it finishes (parity.worker_runtime.train_seeds)."""
    from parity import jobs
    from parity.worker_runtime import train_seeds

    data = jobs.load_data(Path(job["data"]))
    return train_seeds(job, lambda seed: _train_one(backend, job, seed, data))


def shared_handlers(backend: Callable[[], KerasBackend]) -> dict[str, Callable[[dict[str, Any]], dict[str, Any]]]:
    """The handlers every Keras worker runs the same way, on `backend()` (made when a job first needs it)."""
    return {
        "describe": _describe,
        "forward": lambda job: _forward(backend(), job),
        "batches": lambda job: _batches(backend(), job),
        "train": lambda job: _train(backend(), job),
    }


HANDLERS = {
    **shared_handlers(tensorflow_backend),
    "lockstep": "tf_models.lockstep:run_lockstep", "probe": "tf_models.probes:run_job",
    "bench": "tf_models.bench:run_bench", "roundtrip": "tf_models.saving:run_roundtrip",
    "lrsweep": "tf_models.lrsweep:run_lrsweep",
    "predict": "tf_models.inside:run_predict", "inside": "tf_models.inside:run_inside",
    "generate": "tf_models.generate:run_generate",
    "blocks": "tf_models.transfer:run_blocks",
}


def versions() -> dict[str, str]:
    import keras
    import tensorflow as tf

    return {"tensorflow": tf.__version__, "keras": keras.__version__}


def main(argv: list[str] | None = None) -> int:
    """Serve jobs (parity.worker_runtime.serve)."""
    from parity import worker_runtime

    return worker_runtime.serve(worker_runtime.Worker("keras", configure, versions, HANDLERS), argv)


if __name__ == "__main__":
    sys.exit(main())
