"""Keras timing loops of `parity bench`: Keras `fit` and a plain tf.function loop over the same train step.

Mirror: torch_models/bench.py. The protocol (windows, warm-up, statistics, rows) is parity.bench.
The plain loop calls the model's own `train_step` (forward, loss, gradients, optimizer update,
metric updates) in a tf.function built as `fit` builds its own, so the two do the same work
per step and differ only in what `fit` adds around it (iterator, callbacks, logs).

The model, the `fit` windows and the measurement record are Keras API only and serve the
keras-torch worker too (keras_torch.bench); TensorFlow is imported by the TensorFlow parts alone.
"""

from __future__ import annotations

import functools
import itertools
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import keras
import numpy as np

from parity import bench
from parity.catalog import get_spec
from tf_models import build
from tf_models.base import compile_model

if TYPE_CHECKING:
    import tensorflow as tf


def apply_settings(tf32: bool) -> dict[str, Any]:
    """TF32 as asked (TensorFlow's own default is on, for GPU); op determinism stays off. Returns what is in force."""
    import tensorflow as tf
    from tensorflow.python.framework import config as tf_config

    tf.config.experimental.enable_tensor_float_32_execution(tf32)
    return {
        "tf32": tf.config.experimental.tensor_float_32_execution_enabled(),
        "determinism": tf_config.is_op_determinism_enabled(),  # no public getter in TensorFlow 2.21
        "threads": {"intra_op": tf.config.threading.get_intra_op_parallelism_threads(),
                    "inter_op": tf.config.threading.get_inter_op_parallelism_threads()},
        "cudnn_autotune": os.environ.get("TF_CUDNN_USE_AUTOTUNE", "1") != "0",
    }


def on_gpu() -> bool:
    import tensorflow as tf

    return bool(tf.config.list_logical_devices("GPU"))


def build_model(model_id: str, variant: bench.Variant) -> keras.Model:
    """The compiled course model under the variant's dtype policy and XLA setting, from seed bench.SEED.

    Keras' global state of earlier measurements is dropped first, as the torch side drops its compiled code.
    """
    keras.backend.clear_session()
    keras.utils.set_random_seed(bench.SEED)
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(variant.keras_policy)
    try:
        model = build(model_id)
    finally:
        keras.config.set_dtype_policy(previous)
    compile_model(model, get_spec(model_id))  # under mixed_float16 this wraps the optimizer in a LossScaleOptimizer
    model.jit_compile = variant.compiled  # explicit: Keras' "auto" would turn XLA on wherever a GPU is visible
    return model


def staged_batches(data: dict[str, np.ndarray], gpu: bool) -> list[tuple[tf.Tensor, tf.Tensor]]:
    """The compute scope's batches as tensors on the device."""
    import tensorflow as tf

    with tf.device("/GPU:0" if gpu else "/CPU:0"):
        return [(tf.identity(x), tf.identity(y)) for x, y in zip(data["staged_x"], data["staged_y"])]


def _staged_dataset(data: dict[str, np.ndarray]) -> tf.data.Dataset:
    """The staged batches, cycled, as the tf.data input `fit` needs (fit takes no list of device tensors)."""
    import tensorflow as tf

    dataset = tf.data.Dataset.from_tensor_slices((data["staged_x"], data["staged_y"]))
    return dataset.repeat().prefetch(tf.data.AUTOTUNE)


@functools.cache
def _pipeline(workdir: str, model_id: str, batch_size: int, steps: int, parallel: bool) -> tf.data.Dataset:
    """The end-to-end scope's tf.data pipeline, built once per model and input setting and iterated afresh by
    each measurement.

    TensorFlow keeps the constants a tf.data function captures (here the whole training set) for the
    life of the process, so a pipeline per measurement would pile up one copy of the data each time.
    """
    from tf_models.data import train_dataset

    data = bench.load_case_data(workdir, model_id)
    plan = bench.bench_plan(len(data["train"]), batch_size)
    return train_dataset(plan, data["train"], bench.stream_epochs(plan, steps), parallel=parallel)


def input_settings(setting: str, batches: tf.data.Dataset | None) -> dict[str, Any]:
    """What the input pipeline runs with, the tf.data options read from the dataset itself."""
    if setting == bench.STAGED:
        return {"pipeline": "staged batches cycled (fit: tf.data from_tensor_slices + prefetch; "
                            "plain loop: tensors on the device)"}
    options = batches.options()
    switches = {"map_parallelization": options.experimental_optimization.map_parallelization,
                "inject_prefetch": options.experimental_optimization.inject_prefetch,
                "autotune": options.autotune.enabled}
    return {"map": "num_parallel_calls=AUTOTUNE" if setting == "recommended" else "sequential",
            "prefetch": "AUTOTUNE" if setting == "recommended" else "none",
            # None: tf.data's default, which is on for all three
            **{name: "default (on)" if value is None else value for name, value in switches.items()}}


class _EpochMarks(keras.callbacks.Callback):
    """Marks the clock at every epoch end (one epoch is one window); Keras has materialised the epoch's logs by then.

    Epoch hooks only: a batch hook would switch Keras 3 to synchronous callback dispatch.
    """

    def __init__(self, clock: bench.Clock) -> None:
        super().__init__()
        self.clock = clock

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self.clock.mark()


def framework_windows(model: keras.Model, batches: Iterable, clock: bench.Clock) -> None:
    """Keras `fit` (on a tf.data dataset, or on Keras' torch backend a DataLoader): one epoch of `clock.steps` steps
    per window, the first epoch the warm-up."""
    clock.start()
    model.fit(batches, epochs=clock.windows + 1, steps_per_epoch=clock.steps, callbacks=[_EpochMarks(clock)],
              verbose=0, shuffle=False)


def plain_windows(model: keras.Model, batches: Iterable[tuple[tf.Tensor, tf.Tensor]], clock: bench.Clock) -> None:
    """The model's train_step in a tf.function (jit_compile as the model's), called once per batch."""
    import tensorflow as tf

    step = tf.function(tf.autograph.experimental.do_not_convert(model.train_step), reduce_retracing=True,
                       jit_compile=model.jit_compile)
    clock.start()
    for batch in itertools.islice(batches, clock.total_steps):
        logs = step(batch)
        if clock.step():
            float(logs["loss"])  # materialise a value: the window's steps have run
            clock.mark()


@dataclass(frozen=True)
class GpuMemory:
    """A backend's peak GPU memory counter: `reset()` it, read `peak_mb()` after the windows."""

    reset: Callable[[], None]
    peak_mb: Callable[[], float]


def timed(case: dict[str, Any], trainer: str, clock: bench.Clock, windows: Callable[[], None],
          gpu_memory: GpuMemory | None) -> dict[str, Any]:
    """Run `windows()` (the trainer's warm-up and timed windows on `clock`); the measurement with peak memory and
    the load average around it."""
    rss_start = bench.reset_peak_rss()
    if gpu_memory:
        gpu_memory.reset()
    load_start = os.getloadavg()[0]
    windows()
    return {
        **case,
        "trainer": trainer,
        **clock.result(),
        "gpu_peak_mb": gpu_memory.peak_mb() if gpu_memory else None,
        "host_rss_mb": bench.peak_rss_mb(),
        "host_rss_start_mb": rss_start,
        "load_average": [load_start, os.getloadavg()[0]],
    }


def model_settings(model: keras.Model) -> dict[str, Any]:
    """How Keras runs the model's train step: compilation, eager mode, dtype policy, loss scaling."""
    return {"jit_compile": bool(model.jit_compile), "run_eagerly": bool(model.run_eagerly),
            "dtype_policy": model.dtype_policy.name,
            "loss_scaling": isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)}


def measure(case: dict[str, Any], trainer: str, data: dict[str, np.ndarray], job: dict[str, Any],
            gpu: bool, stop: Callable[[], None]) -> dict[str, Any]:
    """Time one case with one trainer, taking turns through `stop`; peak memory and the load average around it."""
    import tensorflow as tf

    variant = bench.VARIANTS[case["variant"]]
    clock = bench.Clock(job["steps"], job["windows"], stop)
    model = build_model(case["model"], variant)
    if case["scope"] == "compute":
        batches = _staged_dataset(data) if trainer == "framework" else itertools.cycle(staged_batches(data, gpu))
        pipeline = None
    else:
        batches = pipeline = _pipeline(job["workdir"], case["model"], case["batch_size"], clock.total_steps,
                                       case["input"] == "recommended")
    windows = framework_windows if trainer == "framework" else plain_windows
    memory = GpuMemory(lambda: tf.config.experimental.reset_memory_stats("GPU:0"),
                       lambda: tf.config.experimental.get_memory_info("GPU:0")["peak"] / 2**20) if gpu else None
    return {**timed(case, trainer, clock, lambda: windows(model, batches, clock), memory),
            "settings": {**model_settings(model), "input": input_settings(case["input"], pipeline)}}


def run_bench(job: dict[str, Any]) -> dict[str, Any]:
    """The `bench` job: one case with one trainer, taking turns with the Lightning worker (parity.bench)."""
    settings = apply_settings(job["tf32"])
    gpu = on_gpu()
    measured = bench.run_measurement(job, "keras", gpu,
                                     lambda data, stop: measure(job["case"], job["trainer"], data, job, gpu, stop))
    return {"settings": settings, "measurement": measured}
