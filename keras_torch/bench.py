"""Keras-on-torch timing loops of `parity bench`: Keras `fit` and a plain loop over the torch backend's train step.

Mirror: tf_models/bench.py, whose model (`build_model`), `fit` windows and measurement record
(`timed`) are used as they are; the protocol is parity.bench. The plain loop calls Keras' own
train function (TorchTrainer.make_train_function: `train_step`, i.e. forward, loss, backward,
optimizer update and metric updates), the function `fit` calls per batch, so the two differ
only in what `fit` adds around it (epoch iterator, callbacks, logs turned into Python floats
after every step).

Variants: eager is jit_compile=False (Keras' "auto" on torch); compiled is jit_compile=True,
which on the torch backend wraps that train function in torch.compile with torch's defaults
(inductor, automatic dynamic shapes; keras/src/backend/torch/trainer.py), not XLA. Measured
(TORCH_LOGS=recompiles, c1w2_fmnist_dnn, torch 2.14): Dynamo breaks the graph at the step's
loss.backward() and resumes after it (the optimizer update is a graph of its own), recompiles once
at the second step (the gradients exist by then), and once more at an epoch's short last batch
(size guard), which in the end-to-end scope falls in a timed window.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable
from typing import Any

import keras
import numpy as np
import torch
from torch.utils.data import DataLoader

from keras_torch.data import train_dataset
from parity import bench
from tf_models.bench import GpuMemory, build_model, framework_windows, model_settings, timed
from torch_models.bench import CycledBatches, apply_settings, input_settings

STAGED_PIPELINE = "staged batches cycled (fit: a DataLoader over the device tensors; plain loop: the tensors)"
COMPILER = "torch.compile(train function) with torch's defaults (Keras TorchTrainer.make_train_function)"


def staged_batches(data: dict[str, np.ndarray]) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """The compute scope's batches as tensors on Keras' device (copies, as any batch is)."""
    return [(keras.ops.convert_to_tensor(x), keras.ops.convert_to_tensor(y))
            for x, y in zip(data["staged_x"], data["staged_y"])]


def _loader(case: dict[str, Any], data: dict[str, Any], job: dict[str, Any], gpu: bool, steps: int) -> DataLoader:
    """The end-to-end scope's DataLoader over `steps` batches of the plan, in the case's input setting
    (parity.bench.INPUTS)."""
    plan = bench.bench_plan(len(data["train"]), case["batch_size"])
    epochs = bench.stream_epochs(plan, steps)
    if case["input"] == "recommended":
        return train_dataset(plan, data["train"], epochs, num_workers=job["loader_workers"], pin_memory=gpu)
    return train_dataset(plan, data["train"], epochs)


def plain_windows(model: keras.Model, batches: Iterable, clock: bench.Clock) -> None:
    """Keras' train function (compiled as the model's jit_compile says), called once per batch."""
    stream = iter(batches)
    first = next(stream)
    # What fit does before its first step (no public call): build the compiled loss and metrics symbolically, so
    # that torch.compile traces the step alone, not their one-off building.
    model._symbolic_build(data_batch=first)
    model.make_train_function()
    step = model.train_function
    model.train()  # as fit does each epoch (torch's module mode)
    clock.start()
    for batch in itertools.islice(itertools.chain([first], stream), clock.total_steps):
        logs = step([batch])
        if clock.step():
            float(logs["loss"])  # materialise a value: the window's steps have run on the device
            clock.mark()


def measure(case: dict[str, Any], trainer: str, data: dict[str, np.ndarray], job: dict[str, Any],
            gpu: bool, stop: Callable[[], None]) -> dict[str, Any]:
    """Time one case with one trainer, taking turns through `stop`; peak memory and the load average around it."""
    variant = bench.VARIANTS[case["variant"]]
    clock = bench.Clock(job["steps"], job["windows"], stop)
    torch.compiler.reset()  # each measurement compiles afresh in its warm-up (clear_session leaves dynamo's cache)
    model = build_model(case["model"], variant)
    if case["scope"] == "compute":
        staged = staged_batches(data)
        loader = None
        batches = DataLoader(CycledBatches(staged, clock.total_steps), batch_size=None) if trainer == "framework" \
            else itertools.cycle(staged)
    else:
        batches = loader = _loader(case, data, job, gpu, clock.total_steps)
    windows = framework_windows if trainer == "framework" else plain_windows
    memory = GpuMemory(torch.cuda.reset_peak_memory_stats, lambda: torch.cuda.max_memory_allocated() / 2**20) \
        if gpu else None
    return {**timed(case, trainer, clock, lambda: windows(model, batches, clock), memory),
            "settings": {**model_settings(model), "compiler": COMPILER if model.jit_compile else "eager",
                         "input": input_settings(case["input"], loader, STAGED_PIPELINE)}}


def run_bench(job: dict[str, Any]) -> dict[str, Any]:
    """The `bench` job: one case with one trainer, taking turns with the other workers (parity.bench). torch's
    kernel settings are the Lightning worker's (torch_models.bench.apply_settings)."""
    settings = apply_settings(job["tf32"])
    gpu = torch.cuda.is_available()
    measured = bench.run_measurement(job, "keras-torch", gpu,
                                     lambda data, stop: measure(job["case"], job["trainer"], data, job, gpu, stop))
    return {"settings": settings, "measurement": measured}
