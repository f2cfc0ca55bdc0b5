"""Lightning timing loops of `parity bench`: the Lightning Trainer and a plain torch loop over the same module.

Mirror: tf_models/bench.py. The protocol (windows, warm-up, statistics, rows) is parity.bench.
The plain loop does what Lightning's automatic optimization does per step, without the
Trainer: training_step (with its torchmetrics update; its self.log calls return at once
without a Trainer), zero_grad, backward, optimizer step, under the same autocast and
GradScaler (autocast without its weight cache, as Lightning's MixedPrecision), with the same
torch.compile wrapping (Lightning's from_compiled).
"""

from __future__ import annotations

import contextlib
import itertools
import os
import warnings
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import lightning as L
import numpy as np
import torch
from lightning.pytorch.utilities.compile import from_compiled
from torch.utils.data import DataLoader

from parity import align, bench
from torch_models import build
from torch_models.base import CourseModule
from torch_models.data import plan_loader

AUTOCAST_DTYPES = {"16-mixed": torch.float16, "bf16-mixed": torch.bfloat16}


def apply_settings(tf32: bool) -> dict[str, Any]:
    """TF32 as asked (torch's matmul default is off, cuDNN's on); determinism off; cuDNN autotuning on, as in TF."""
    torch.backends.cuda.matmul.allow_tf32 = tf32
    torch.backends.cudnn.allow_tf32 = tf32
    torch.use_deterministic_algorithms(False)
    torch.backends.cudnn.deterministic = False
    torch.backends.cudnn.benchmark = True
    # Without a Trainer, training_step's self.log calls warn and return: expected in the plain loop.
    warnings.filterwarnings("ignore", message=".*`self.trainer` reference is not registered.*")
    warnings.filterwarnings("ignore", message=".*You defined a `validation_step` but have no `val_dataloader`.*")
    return {
        "tf32": {"cuda_matmul": torch.backends.cuda.matmul.allow_tf32, "cudnn": torch.backends.cudnn.allow_tf32},
        "determinism": torch.are_deterministic_algorithms_enabled(),
        "threads": {"intra_op": torch.get_num_threads(), "inter_op": torch.get_num_interop_threads()},
        "cudnn_benchmark": torch.backends.cudnn.benchmark,
    }


def on_gpu() -> bool:
    return torch.cuda.is_available()


def build_model(model_id: str, alignment: align.Alignment) -> CourseModule:
    """The course LightningModule from seed bench.SEED (precision and compilation are applied by the loops).

    Compiled code of earlier measurements is dropped first: each one compiles afresh in its warm-up,
    and torch.compile's recompile limit never turns a later measurement back to eager.
    """
    torch.compiler.reset()
    L.seed_everything(bench.SEED, verbose=False)
    return build(model_id, alignment)


def staged_batches(data: dict[str, np.ndarray], gpu: bool) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """The compute scope's batches as tensors on the device (copies: freshly allocated, aligned like any batch)."""
    device = torch.device("cuda" if gpu else "cpu")
    return [(torch.from_numpy(x).to(device, copy=True), torch.from_numpy(y).to(device, copy=True))
            for x, y in zip(data["staged_x"], data["staged_y"])]


class CycledBatches:
    """`length` batches cycled from a list; Lightning iterates it and reads the length as the epoch's size, a
    DataLoader(batch_size=None) indexes it (Keras `fit` on the torch backend, keras_torch.bench)."""

    def __init__(self, batches: list[tuple[torch.Tensor, torch.Tensor]], length: int) -> None:
        self.batches = batches
        self.length = length

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        return itertools.islice(itertools.cycle(self.batches), self.length)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.batches[index % len(self.batches)]

    def __len__(self) -> int:
        return self.length


def _plan_stream(loader: DataLoader) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """The loader's batches epoch after epoch, as Lightning walks it (set_epoch before each epoch)."""
    for epoch in itertools.count():
        loader.sampler.set_epoch(epoch)
        yield from loader


def _resolve_lazy_imports() -> None:
    """Resolve torchmetrics' lazy optional-package checks before torch.compile traces a metric update.

    Unresolved, the first check (e.g. `_XLA_AVAILABLE` in `_bincount`) runs importlib.metadata
    inside the trace, whose PackageNotFoundError dynamo reports as an internal error.
    """
    import torchmetrics.utilities.imports as optional
    from lightning_utilities.core.imports import RequirementCache

    for check in vars(optional).values():
        if isinstance(check, RequirementCache):
            bool(check)


def _compiled(module: CourseModule) -> torch.nn.Module:
    """torch.compile with static shapes: the batch size is fixed, and the models of one worker share
    CourseModule.training_step, whose second model would otherwise be recompiled with dynamic shapes."""
    return torch.compile(module, dynamic=False)


def _sync(gpu: bool) -> Callable[[], None]:
    return torch.cuda.synchronize if gpu else (lambda: None)


class _StepMarks(L.Callback):
    """Counts steps and marks the clock at window boundaries, after synchronising the device."""

    def __init__(self, clock: bench.Clock, sync: Callable[[], None]) -> None:
        self.clock = clock
        self.sync = sync

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        if self.clock.step():
            self.sync()
            self.clock.mark()


def framework_windows(module: CourseModule, batches: Iterable, clock: bench.Clock, variant: bench.Variant,
                      gpu: bool) -> None:
    """Lightning's Trainer, with everything off that does per-step work the plain loop does not need.

    Off: progress bar, logger, checkpointing, model summary, sanity validation, validation.
    Kept: the module's own self.log calls and metric updates (the work the module asks for).
    """
    trainer = L.Trainer(
        accelerator="gpu" if gpu else "cpu",
        devices=1,
        precision=variant.lightning_precision,
        max_steps=clock.total_steps,
        max_epochs=-1,
        benchmark=True,
        deterministic=False,
        logger=False,
        enable_progress_bar=False,
        enable_checkpointing=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        limit_val_batches=0,
        callbacks=[_StepMarks(clock, _sync(gpu))],
    )
    clock.start()
    trainer.fit(_compiled(module) if variant.compiled else module, train_dataloaders=batches)


def plain_windows(module: CourseModule, batches: Iterable, clock: bench.Clock, variant: bench.Variant,
                  gpu: bool) -> None:
    """The same module, optimizer, precision and compilation in a plain loop."""
    device = torch.device("cuda" if gpu else "cpu")
    module.to(device).train()
    optimizer = module.configure_optimizers()
    if variant.compiled:
        module = from_compiled(_compiled(module))
    dtype = AUTOCAST_DTYPES.get(variant.lightning_precision)
    scaler = torch.amp.GradScaler(device.type) if variant.lightning_precision == "16-mixed" else None
    sync = _sync(gpu)
    clock.start()
    for index, (x, y) in enumerate(itertools.islice(batches, clock.total_steps)):
        batch = (x.to(device, non_blocking=True), y.to(device, non_blocking=True))
        with torch.autocast(device.type, dtype=dtype, cache_enabled=False) if dtype else contextlib.nullcontext():
            loss = module.training_step(batch, index)
        optimizer.zero_grad()
        if scaler:
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
        else:
            loss.backward()
            optimizer.step()
        if clock.step():
            sync()
            clock.mark()


def input_settings(setting: str, loader: DataLoader | None,
                   staged: str = "staged batches cycled (tensors on the device)") -> dict[str, Any]:
    """What the input pipeline runs with, read from the DataLoader itself (`staged`: the compute scope's input)."""
    if setting == bench.STAGED:
        return {"pipeline": staged}
    return {"num_workers": loader.num_workers, "pin_memory": loader.pin_memory,
            "persistent_workers": loader.persistent_workers}


def _loader(case: dict[str, Any], data: dict[str, Any], job: dict[str, Any], gpu: bool) -> DataLoader:
    """The end-to-end scope's DataLoader in the case's input setting (parity.bench.INPUTS)."""
    plan = bench.bench_plan(len(data["train"]), case["batch_size"])
    if case["input"] == "recommended":
        return plan_loader(plan, data["train"], num_workers=job["loader_workers"], pin_memory=gpu)
    return plan_loader(plan, data["train"])


def measure(case: dict[str, Any], trainer: str, data: dict[str, np.ndarray], job: dict[str, Any],
            gpu: bool, stop: Callable[[], None]) -> dict[str, Any]:
    """Time one case with one trainer, taking turns through `stop`; peak memory and the load average around it."""
    variant = bench.VARIANTS[case["variant"]]
    clock = bench.Clock(job["steps"], job["windows"], stop)
    module = build_model(case["model"], align.Alignment.from_job(job["native"]))
    if case["scope"] == "compute":
        staged = staged_batches(data, gpu)
        batches = CycledBatches(staged, clock.total_steps) if trainer == "framework" else itertools.cycle(staged)
        loader = None
    else:
        loader = _loader(case, data, job, gpu)
        batches = loader if trainer == "framework" else _plan_stream(loader)
    rss_start = bench.reset_peak_rss()
    if gpu:
        torch.cuda.reset_peak_memory_stats()
    load_start = os.getloadavg()[0]
    (framework_windows if trainer == "framework" else plain_windows)(module, batches, clock, variant, gpu)
    return {
        **case,
        "trainer": trainer,
        **clock.result(),
        "gpu_peak_mb": torch.cuda.max_memory_allocated() / 2**20 if gpu else None,
        "host_rss_mb": bench.peak_rss_mb(),
        "host_rss_start_mb": rss_start,
        "load_average": [load_start, os.getloadavg()[0]],
        "settings": {"torch_compile": "dynamic=False" if variant.compiled else None, "precision": variant.lightning_precision,
                     "grad_scaler": variant.lightning_precision == "16-mixed",
                     "input": input_settings(case["input"], loader)},
    }


def run_bench(job: dict[str, Any]) -> dict[str, Any]:
    """The `bench` job: one case with one trainer, taking turns with the Keras worker (parity.bench)."""
    settings = apply_settings(job["tf32"])
    _resolve_lazy_imports()
    gpu = on_gpu()
    measured = bench.run_measurement(job, "lightning", gpu,
                                     lambda data, stop: measure(job["case"], job["trainer"], data, job, gpu, stop))
    return {"settings": settings, "measurement": measured}
