"""The throughput protocol of `parity bench`: cases, windows, statistics, rows and the Markdown table.

The timing loops run inside the workers (tf_models.bench, torch_models.bench); both use the
`Clock` and the batch helpers below, so both measure the same windows over the same batches.
Protocol, per framework, case (model, variant, scope) and trainer (the framework's own
trainer, Keras `fit` / Lightning `Trainer`, or a plain loop over the same training step):
one warm-up window (tracing, XLA or torch.compile compilation, autotuning), timed apart,
then `windows` timed windows of `steps` steps each; the device is synchronised at window
boundaries only. With `repeats` > 1 each pair of measurements runs again in the other order
(framework trainer first, then plain loop first), so that load which drifts on a shared
machine weighs on both alike; the windows are pooled. A row reports the median, min and max
over the windows.
"""

from __future__ import annotations

import contextlib
import ctypes
import datetime
import gc
import json
import os
import platform
import shlex
import statistics
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from parity import align, jobs
from parity.catalog import get_spec
from parity.errors import ParityError
from parity.datasets import store
from parity.datasets.store import SampleSource
from parity.fileio import write_text_atomic
from parity.plan import BatchPlan, collate

SCOPES = ("compute", "end_to_end")
TRAINERS = ("framework", "plain")
DEFAULT_STEPS = 100  # steps per timed window (the Keras 3 benchmarks time 100 steps)
DEFAULT_WINDOWS = 5
MIN_WINDOWS = 3
STAGED_BATCHES = 32  # distinct batches the compute scope cycles through, already on the device
SEED = 0  # the batch plan's seed and the models' initial weights
# Set by the bench itself, equally in both frameworks, whatever the mode: the workers' set-up leaves them alone.
BENCH_SETTINGS = ("tf32", "determinism")
# glibc malloc with its default, dynamic thresholds hands large freed blocks (a CNN's activations) back
# to the kernel and faults them in again on the next step: thousands of page faults per step in the
# torch worker, and run-to-run swings of 30%. Fixed high thresholds keep them; set for both workers.
MALLOC_TUNABLES = "glibc.malloc.mmap_threshold=1073741824:glibc.malloc.trim_threshold=4294967296"
MALLOC_SETTINGS = ("tuned", "glibc")
MARKDOWN_BEGIN = "<!-- parity bench: begin (generated, do not edit) -->"
MARKDOWN_END = "<!-- parity bench: end -->"


@dataclass(frozen=True)
class Variant:
    """One way to run both frameworks, set identically on both sides."""

    name: str
    compiled: bool  # Keras jit_compile=True (XLA) / torch.compile
    keras_policy: str  # Keras dtype policy
    lightning_precision: str  # Lightning Trainer(precision=...)
    needs_gpu: bool = False
    meaning: str = ""


VARIANTS: dict[str, Variant] = {variant.name: variant for variant in (
    Variant("eager", False, "float32", "32-true",
            meaning="Keras: compiled graph without XLA (tf.function, run_eagerly=False, jit_compile=False; "
                    "Keras' own default on CPU, while on GPU its default 'auto' turns XLA on); "
                    "Lightning: torch eager mode"),
    Variant("compiled", True, "float32", "32-true",
            meaning="Keras: jit_compile=True (XLA, the whole train step); Lightning: torch.compile(model, "
                    "dynamic=False) (default mode; Lightning compiles forward and training_step, the optimizer "
                    "step stays eager)"),
    Variant("mixed_float16", False, "mixed_float16", "16-mixed", needs_gpu=True,
            meaning="Keras mixed_float16 policy with loss scaling; Lightning precision '16-mixed' with GradScaler. "
                    "GPU only: on CPU Lightning silently switches to bf16 and TF emulates float16 kernels"),
    Variant("mixed_bfloat16", False, "mixed_bfloat16", "bf16-mixed",
            meaning="Keras mixed_bfloat16 policy; Lightning precision 'bf16-mixed' (autocast). "
                    "Runs on CPU, but is only fast where the CPU has bf16 instructions"),
)}


@dataclass(frozen=True)
class BenchOptions:
    """What `parity bench` was asked for (batch_size None = the course's batch size)."""

    variants: tuple[str, ...] = ("eager",)
    mode: str = "native"
    scopes: tuple[str, ...] = SCOPES
    device: str = "auto"
    threads: int = 1
    batch_size: int | None = None
    steps: int = DEFAULT_STEPS
    windows: int = DEFAULT_WINDOWS
    repeats: int = 1
    tf32: bool = False
    malloc: str = "tuned"
    data_dir: str | None = None
    synthetic: bool = False


def check_options(options: BenchOptions) -> None:
    """Refuse what cannot be measured, before any worker starts."""
    unknown = [name for name in options.variants if name not in VARIANTS]
    if unknown:
        raise ParityError(f"unknown variant {unknown[0]!r}; known variants: {', '.join(VARIANTS)}")
    bad_scopes = [scope for scope in options.scopes if scope not in SCOPES]
    if bad_scopes:
        raise ParityError(f"unknown scope {bad_scopes[0]!r}; known scopes: {', '.join(SCOPES)}")
    if options.mode not in align.MODES:
        raise ParityError(f"unknown mode {options.mode!r}; known modes: {', '.join(align.MODES)}")
    if options.malloc not in MALLOC_SETTINGS:
        raise ParityError(f"unknown malloc setting {options.malloc!r}; known: {', '.join(MALLOC_SETTINGS)}")
    if options.windows < MIN_WINDOWS:
        raise ParityError(f"--windows {options.windows}: a median needs at least {MIN_WINDOWS} timed windows")
    if options.device == "cpu":
        for name in options.variants:
            if VARIANTS[name].needs_gpu:
                raise ParityError(f"variant {name} needs a GPU (on CPU Lightning turns 16-mixed into bf16-mixed "
                                  "and TensorFlow emulates float16); use mixed_bfloat16 on CPU, or --device gpu")


def worker_environment(malloc: str) -> dict[str, str]:
    """The allocator environment of both workers: glibc's defaults, or MALLOC_TUNABLES added to GLIBC_TUNABLES."""
    if malloc == "glibc":
        return {}
    return {"GLIBC_TUNABLES": ":".join(filter(None, (os.environ.get("GLIBC_TUNABLES"), MALLOC_TUNABLES)))}


def bench_alignment(mode: str) -> align.Alignment:
    """The torch model's alignment in `mode`, with TF32 and determinism left to the bench (BENCH_SETTINGS).

    Mode native (the default) gives each framework its own optimizer implementation, as users run it;
    aligned runs Keras' update rules written in torch ops (torch_models.optimizers).
    """
    return align.Alignment(align.Alignment.from_mode(mode).native | frozenset(BENCH_SETTINGS))


def require_device(variant: str, on_gpu: bool) -> None:
    """A worker's check, once its device is known (--device auto): a GPU-only variant on CPU is an error."""
    if VARIANTS[variant].needs_gpu and not on_gpu:
        raise RuntimeError(f"variant {variant} needs a GPU and this worker has none; "
                           "use mixed_bfloat16 on CPU, or --device gpu on a GPU machine")


# ---------------------------------------------------------------------------- windows


class Clock:
    """Wall-clock marks at window boundaries: start, end of the warm-up window, end of every timed window.

    A loop calls `start()` before its first step and `step()` after each step; when `step()`
    returns True the loop synchronises its device and calls `mark()`. A loop that only sees
    window boundaries (Keras fit, one epoch per window) calls `mark()` at each of them.
    Each mark also reads the process's CPU time (all its threads): on a shared machine the
    CPU seconds a window costs move far less with the other processes' load than its wall time.
    """

    def __init__(self, steps: int, windows: int) -> None:
        self.steps = steps
        self.windows = windows
        self.done = 0
        self.marks: list[float] = []
        self.cpu_marks: list[float] = []

    @property
    def total_steps(self) -> int:
        """Warm-up window plus timed windows."""
        return self.steps * (self.windows + 1)

    def start(self) -> None:
        self.done = 0
        self.marks, self.cpu_marks = [], []
        self.mark()

    def step(self) -> bool:
        """Count one step; True at a window boundary."""
        self.done += 1
        return self.done % self.steps == 0

    def mark(self) -> None:
        self.marks.append(time.perf_counter())
        self.cpu_marks.append(time.process_time())

    def result(self) -> dict[str, Any]:
        """Warm-up seconds, and the wall and CPU seconds of each timed window."""
        if len(self.marks) != self.windows + 2:
            raise RuntimeError(f"expected {self.windows + 2} clock marks (start, warm-up, {self.windows} windows), "
                               f"got {len(self.marks)}")
        return {"warmup_s": self.marks[1] - self.marks[0], "window_s": np.diff(self.marks[1:]).tolist(),
                "window_cpu_s": np.diff(self.cpu_marks[1:]).tolist()}


def trainer_order(repeat: int) -> tuple[str, ...]:
    """Framework trainer first in even repeats, plain loop first in odd ones: load that drifts cancels out."""
    return TRAINERS if repeat % 2 == 0 else TRAINERS[::-1]


def run_cases(job: Mapping[str, Any], framework: str, gpu: bool,
              measure: Callable[[Mapping[str, Any], str, dict[str, np.ndarray]], dict[str, Any]]) -> list[dict[str, Any]]:
    """A worker's part of the protocol: every case, every repeat, both trainers in `trainer_order`.

    `measure(case, trainer, data)` times one trainer on one case; a progress line follows each.
    """
    for case in job["cases"]:
        require_device(case["variant"], gpu)
    measurements = []
    data: dict[str, dict[str, np.ndarray]] = {}
    for case in job["cases"]:
        if case["model"] not in data:
            data[case["model"]] = load_case_data(job["workdir"], case["model"])
        for repeat in range(job["repeats"]):
            for trainer in trainer_order(repeat):
                measurements.append({**measure(case, trainer, data[case["model"]]), "repeat": repeat})
                print(progress_line(framework, measurements[-1], job["steps"]), flush=True)
    return measurements


def merge_repeats(measurements: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The repeats of one case and trainer as one measurement: windows pooled, warm-up of the first (cold) repeat."""
    ordered = sorted(measurements, key=lambda measured: measured["repeat"])
    gpu_peaks = [measured["gpu_peak_mb"] for measured in ordered if measured["gpu_peak_mb"] is not None]
    return {
        **ordered[0],
        "window_s": [seconds for measured in ordered for seconds in measured["window_s"]],
        "window_cpu_s": [seconds for measured in ordered for seconds in measured["window_cpu_s"]],
        "warmup_s": ordered[0]["warmup_s"],
        "gpu_peak_mb": max(gpu_peaks) if gpu_peaks else None,
        "host_rss_mb": max(measured["host_rss_mb"] for measured in ordered),
        "host_rss_start_mb": ordered[0]["host_rss_start_mb"],
        "load_average": [ordered[0]["load_average"][0], ordered[-1]["load_average"][-1]],
        "repeats": len(ordered),
    }


def bench_plan(num_samples: int, batch_size: int) -> BatchPlan:
    """The batch plan of the end-to-end scope; the staged batches of the compute scope come from it too."""
    if batch_size > num_samples:
        raise ParityError(f"--batch-size {batch_size} is larger than the {num_samples} training samples")
    return BatchPlan(num_samples, batch_size, SEED)


def stream_epochs(plan: BatchPlan, steps: int) -> int:
    """Plan epochs needed for `steps` consecutive batches."""
    return -(-steps // plan.steps_per_epoch)


def stream_lengths(plan: BatchPlan, steps: int) -> np.ndarray:
    """The sizes of the first `steps` batches of the plan, epoch after epoch (the last batch of an epoch may be short)."""
    epoch = np.full(plan.steps_per_epoch, plan.batch_size, dtype=np.int64)
    epoch[-1] = plan.num_samples - plan.batch_size * (plan.steps_per_epoch - 1)
    return np.resize(epoch, steps)


def staged_indices(plan: BatchPlan) -> np.ndarray:
    """The (count, batch_size) indices of the first full batches of epoch 0, at most STAGED_BATCHES of them."""
    full = [batch for batch in plan.epoch_batches(0) if len(batch) == plan.batch_size]
    return np.stack(full[:STAGED_BATCHES])


def window_samples(scope: str, plan: BatchPlan, steps: int, windows: int) -> np.ndarray:
    """Samples in each timed window: full staged batches (compute) or the plan's batch sizes (end to end)."""
    if scope == "compute":
        return np.full(windows, steps * plan.batch_size, dtype=np.int64)
    lengths = stream_lengths(plan, steps * (windows + 1))[steps:]
    return lengths.reshape(windows, steps).sum(axis=1)


def case_data_path(workdir: Path, model_id: str) -> Path:
    """A data directory (parity.datasets.store) with the training source, plus staged.npz."""
    return Path(workdir) / f"bench-{model_id}"


def save_case_data(workdir: Path, model_id: str, train: SampleSource, batch_size: int) -> Path:
    """The training source (end to end) and the staged batches (compute) that both workers read."""
    path = store.save_sources(case_data_path(workdir, model_id), train, None)
    batches = [collate(train, rows) for rows in staged_indices(bench_plan(len(train), batch_size))]
    np.savez(path / "staged.npz", staged_x=np.stack([x for x, _ in batches]), staged_y=np.stack([y for _, y in batches]))
    return path


def load_case_data(workdir: Path, model_id: str) -> dict[str, Any]:
    """{"train": the training source (memory-mapped), "staged_x", "staged_y": (batches, batch_size, ...)}."""
    path = case_data_path(workdir, model_id)
    with np.load(path / "staged.npz") as staged:
        return {"train": store.load_sources(path).train, **{key: staged[key] for key in staged.files}}


# ---------------------------------------------------------------------------- host memory


def _status_mb(field: str) -> float | None:
    """A memory field of /proc/self/status (VmRSS, VmHWM) in MiB; None off Linux."""
    try:
        lines = Path("/proc/self/status").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    return None


def reset_peak_rss() -> float | None:
    """Hand freed memory back to the kernel, reset the peak RSS, and return the RSS a measurement starts from.

    Without the trim a worker's peak would carry what earlier measurements freed and malloc kept
    (with MALLOC_TUNABLES it keeps all of it). Linux and glibc; elsewhere the peak is the process's.
    """
    gc.collect()
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")
    return _status_mb("VmRSS")


def peak_rss_mb() -> float:
    """Peak resident set size of this process in MiB: since the last reset on Linux, else since its start."""
    peak = _status_mb("VmHWM")
    if peak is not None:
        return peak
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024


# ---------------------------------------------------------------------------- statistics and rows


def summarize(values: Sequence[float]) -> dict[str, float]:
    """Median, min and max of per-window values."""
    if not len(values):
        raise ValueError("no windows to summarize")
    return {"median": float(statistics.median(values)), "min": float(min(values)), "max": float(max(values))}


def rates(window_s: Sequence[float], samples: Sequence[int], steps: int) -> dict[str, list[float]]:
    """Samples/s and steps/s of each window."""
    seconds = np.asarray(window_s, dtype=float)
    if seconds.shape != np.shape(samples) or (seconds <= 0).any():
        raise ValueError(f"window times {list(seconds)} do not match {len(samples)} windows or are not positive")
    return {"samples_per_s": (np.asarray(samples) / seconds).tolist(), "steps_per_s": (steps / seconds).tolist()}


def framework_entry(measured: Mapping[str, Any], samples: Sequence[int], steps: int) -> dict[str, Any]:
    """One framework's part of a row, from a worker's measurement of one case and trainer."""
    per_window = rates(measured["window_s"], samples, steps)
    gpu_peak = measured["gpu_peak_mb"]
    return {
        "samples_per_s": summarize(per_window["samples_per_s"]),
        "steps_per_s": summarize(per_window["steps_per_s"]),
        "peak_mem_mb": gpu_peak if gpu_peak is not None else measured["host_rss_mb"],
        "peak_mem_kind": "gpu max allocated" if gpu_peak is not None else "host peak RSS",
        "host_rss_mb": measured["host_rss_mb"],
        "host_rss_start_mb": measured["host_rss_start_mb"],
        "warmup_s": measured["warmup_s"],
        "cpu_ms_per_step": summarize([1000 * seconds / steps for seconds in measured["window_cpu_s"]]),
        "windows": per_window["samples_per_s"],
        "window_s": list(measured["window_s"]),
        "window_cpu_s": list(measured["window_cpu_s"]),
        "load_average": measured["load_average"],
        "settings": measured["settings"],
    }


def ratio(numerator: float, denominator: float) -> float:
    """numerator / denominator of two positive rates."""
    return numerator / denominator


def _device_kind(device: str) -> str:
    return device.split(" ", 1)[0]


def build_rows(cases: Sequence[Mapping[str, Any]], answers: Mapping[str, Mapping[str, Any]],
               context: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One row per case and trainer, as the `parity bench --json` contract, from both workers' answers.

    `context` holds what the parent knows: options, data per model, load averages, start time.
    """
    devices = {fw: _device_kind(answers[fw]["device"]) for fw in jobs.FRAMEWORKS}
    if len(set(devices.values())) != 1:
        raise ParityError(f"the frameworks ran on different devices ({devices}); pass --device cpu or --device gpu")
    options: BenchOptions = context["options"]
    measured: dict[str, dict[tuple, list]] = {fw: {} for fw in jobs.FRAMEWORKS}
    for fw in jobs.FRAMEWORKS:
        for m in answers[fw]["measurements"]:
            measured[fw].setdefault((m["model"], m["variant"], m["scope"], m["trainer"]), []).append(m)
    environment = {
        "python": platform.python_version(),
        "tensorflow": answers["keras"]["versions"]["tensorflow"],
        "keras": answers["keras"]["versions"]["keras"],
        "torch": answers["lightning"]["versions"]["torch"],
        "lightning": answers["lightning"]["versions"]["lightning"],
        "device_name": {fw: answers[fw]["device"] for fw in jobs.FRAMEWORKS},
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
    }
    rows = []
    for case in cases:
        data = context["data"][case["model"]]
        plan = bench_plan(data["train_size"], case["batch_size"])
        samples = np.tile(window_samples(case["scope"], plan, options.steps, options.windows), options.repeats)
        pair = {}
        for trainer in TRAINERS:
            key = (case["model"], case["variant"], case["scope"], trainer)
            frameworks = {fw: framework_entry(merge_repeats(measured[fw][key]), samples, options.steps)
                          for fw in jobs.FRAMEWORKS}
            pair[trainer] = frameworks
            rows.append({
                "model": case["model"],
                "device": devices["keras"],
                "variant": case["variant"],
                "batch_size": case["batch_size"],
                "scope": case["scope"],
                "trainer": trainer,
                "frameworks": frameworks,
                "throughput_ratio": ratio(frameworks["lightning"]["samples_per_s"]["median"],
                                          frameworks["keras"]["samples_per_s"]["median"]),
                "settings": _row_settings(case, options, data, context, answers),
                "environment": environment,
            })
        overhead = {fw: ratio(pair["framework"][fw]["samples_per_s"]["median"], pair["plain"][fw]["samples_per_s"]["median"])
                    for fw in jobs.FRAMEWORKS}
        overhead_cpu = {fw: ratio(pair["plain"][fw]["cpu_ms_per_step"]["median"],
                                  pair["framework"][fw]["cpu_ms_per_step"]["median"]) for fw in jobs.FRAMEWORKS}
        for row in rows[-len(TRAINERS):]:
            row["trainer_vs_plain"] = overhead
            row["trainer_vs_plain_cpu"] = overhead_cpu
    return rows


def _row_settings(case: Mapping[str, Any], options: BenchOptions, data: Mapping[str, Any],
                  context: Mapping[str, Any], answers: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    variant = VARIANTS[case["variant"]]
    process = {fw: answers[fw]["settings"] for fw in jobs.FRAMEWORKS}
    return {
        "mode": options.mode,
        "tf32": {"requested": options.tf32, **{fw: process[fw]["tf32"] for fw in jobs.FRAMEWORKS}},
        "determinism": {fw: process[fw]["determinism"] for fw in jobs.FRAMEWORKS},
        "threads": {"requested": options.threads, **{fw: process[fw]["threads"] for fw in jobs.FRAMEWORKS}},
        "precision": {"keras": variant.keras_policy, "lightning": variant.lightning_precision},
        "compile": {"keras": "jit_compile=True (XLA)" if variant.compiled else "jit_compile=False (tf.function graph)",
                    "lightning": "torch.compile(dynamic=False)" if variant.compiled else "eager"},
        "cudnn_autotune": {"keras": process["keras"]["cudnn_autotune"],
                           "lightning": process["lightning"]["cudnn_benchmark"]},
        "data": {"source": data["source"], "location": data["location"], "train_size": data["train_size"],
                 "staged_batches": data["staged_batches"] if case["scope"] == "compute" else None},
        "steps_per_window": options.steps,
        "windows": options.windows,
        "repeats": options.repeats,
        "warmup_steps": options.steps,
        "load_average": context["load_average"],
        "malloc": {"setting": options.malloc, "GLIBC_TUNABLES": context["env"].get("GLIBC_TUNABLES")},
        "started": context["started"],
        "command": context["command"],
    }


# ---------------------------------------------------------------------------- text


def _rate(value: float) -> str:
    return f"{value:,.0f}" if value >= 100 else f"{value:.3g}"


def _spread(summary: Mapping[str, float]) -> str:
    return f"{_rate(summary['median'])} [{_rate(summary['min'])}-{_rate(summary['max'])}]"


TRAINER_NAMES = {"framework": "fit / Trainer", "plain": "plain loops"}
TRAINER_LABELS = {"keras": {"framework": "fit", "plain": "plain tf.function loop"},
                  "lightning": {"framework": "Trainer", "plain": "plain torch loop"}}


def progress_line(framework: str, measured: Mapping[str, Any], steps: int) -> str:
    """A worker's line after each measurement (a bench can take minutes)."""
    per_window = summarize([steps / seconds for seconds in measured["window_s"]])
    return (f"[{framework}] {measured['model']} {measured['variant']} {measured['scope']} "
            f"{TRAINER_LABELS[framework][measured['trainer']]} (repeat {measured['repeat'] + 1}): "
            f"warm-up {measured['warmup_s']:.1f} s, {_spread(per_window)} steps/s")


def row_line(row: Mapping[str, Any]) -> str:
    """One human-readable line per row."""
    keras, lightning = (row["frameworks"][fw]["samples_per_s"] for fw in jobs.FRAMEWORKS)
    line = (f"{row['model']} {row['device']} {row['scope']} {TRAINER_NAMES[row['trainer']]} {row['variant']} "
            f"batch {row['batch_size']}: keras {_spread(keras)} samples/s, lightning {_spread(lightning)} samples/s, "
            f"lightning/keras {row['throughput_ratio']:.2f}")
    if row["trainer"] == "framework":
        wall, cpu = row["trainer_vs_plain"], row["trainer_vs_plain_cpu"]
        line += (f" (fit/plain {wall['keras']:.2f}, CPU {cpu['keras']:.2f}; "
                 f"Trainer/plain {wall['lightning']:.2f}, CPU {cpu['lightning']:.2f})")
    return line


def _setting_text(value: Any) -> str:
    """A recorded setting in words: booleans as on/off, mappings as `key value` pairs."""
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, Mapping):
        return ", ".join(f"{key.replace('_', ' ')} {_setting_text(item)}" for key, item in value.items())
    return str(value)


def _per_framework(setting: Mapping[str, Any]) -> str:
    return "; ".join(f"{fw.capitalize()}: {_setting_text(setting[fw])}" for fw in jobs.FRAMEWORKS)


def _rss_text(entry: Mapping[str, Any]) -> str:
    start = entry["host_rss_start_mb"]
    return f"{entry['host_rss_mb']:.0f}" + (f" (from {start:.0f})" if start is not None else "")


def _load_text(load: Sequence[float]) -> str:
    return " / ".join(f"{value:.2f}" for value in load)


def render_markdown(rows: Sequence[Mapping[str, Any]]) -> str:
    """The readable table of a bench: command, environment, settings, throughput, overhead, warm-up and memory."""
    if not rows:
        return f"{MARKDOWN_BEGIN}\nNo measurements.\n{MARKDOWN_END}\n"
    first = rows[0]
    settings, env = first["settings"], first["environment"]
    windows = settings["windows"] * settings["repeats"]
    lines = [
        MARKDOWN_BEGIN,
        f"Command: `{settings['command']}`",
        "",
        (f"Measured {settings['started']} on {env['device_name']['keras']} (Keras), "
         f"{env['device_name']['lightning']} (Lightning); {env['platform']}, {env['cpu_count']} CPUs."),
        "",
        (f"Versions: Python {env['python']}, TensorFlow {env['tensorflow']}, Keras {env['keras']}, "
         f"torch {env['torch']}, Lightning {env['lightning']}."),
        "",
        "| setting | value |",
        "|---|---|",
        f"| mode | {settings['mode']} (the torch optimizer implementation; see `parity bench --help`) |",
        f"| threads per framework | {settings['threads']['requested']} ({_per_framework(settings['threads'])}) |",
        f"| TF32 | requested {_setting_text(settings['tf32']['requested'])} ({_per_framework(settings['tf32'])}) |",
        f"| deterministic ops | {_per_framework(settings['determinism'])} |",
        f"| malloc | {settings['malloc']['setting']} (GLIBC_TUNABLES {settings['malloc']['GLIBC_TUNABLES'] or 'unset'}) |",
        (f"| data | {settings['data']['source']} ({settings['data']['location']}), "
         f"{settings['data']['train_size']:,} training samples |"),
        (f"| windows | warm-up {settings['warmup_steps']} steps (timed apart), then {settings['windows']} x "
         f"{settings['steps_per_window']} steps; {settings['repeats']} repeat(s), fit/Trainer and plain loop in "
         "alternating order |"),
        (f"| load average (1/5/15 min) | start {_load_text(settings['load_average']['start'])}; "
         f"end {_load_text(settings['load_average']['end'])} |"),
        "",
        f"### Throughput: samples/s, median [min-max] over {windows} windows",
        "",
        "| model | device | scope | trainer | variant | batch | Keras | Lightning | Lightning / Keras |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        keras, lightning = (row["frameworks"][fw]["samples_per_s"] for fw in jobs.FRAMEWORKS)
        lines.append(f"| {row['model']} | {row['device']} | {row['scope']} | {TRAINER_NAMES[row['trainer']]} | "
                     f"{row['variant']} | {row['batch_size']} | {_spread(keras)} | {_spread(lightning)} | "
                     f"{row['throughput_ratio']:.2f} |")
    lines += [
        "",
        "### Trainer overhead: framework trainer / plain loop",
        "",
        ("Wall: ratio of median samples/s. CPU: plain loop / trainer median CPU ms per step (all threads of "
         "the worker), which other processes' load moves far less than wall time."),
        "",
        ("| model | scope | variant | batch | Keras fit / tf.function loop (wall, CPU) | "
         "Lightning Trainer / torch loop (wall, CPU) | CPU ms per step: fit, plain; Trainer, plain |"),
        "|---|---|---|---|---|---|---|",
    ]
    plain_rows = {(row["model"], row["scope"], row["variant"], row["batch_size"]): row
                  for row in rows if row["trainer"] == "plain"}
    for row in rows:
        if row["trainer"] == "framework":
            wall, cpu = row["trainer_vs_plain"], row["trainer_vs_plain_cpu"]
            plain = plain_rows[(row["model"], row["scope"], row["variant"], row["batch_size"])]
            per_step = "; ".join(f"{row['frameworks'][fw]['cpu_ms_per_step']['median']:.2f}, "
                                 f"{plain['frameworks'][fw]['cpu_ms_per_step']['median']:.2f}" for fw in jobs.FRAMEWORKS)
            lines.append(f"| {row['model']} | {row['scope']} | {row['variant']} | {row['batch_size']} | "
                         f"{wall['keras']:.3f}, {cpu['keras']:.3f} | {wall['lightning']:.3f}, {cpu['lightning']:.3f} | "
                         f"{per_step} |")
    lines += [
        "",
        "### Warm-up and memory",
        "",
        ("| model | scope | trainer | variant | warm-up s (Keras / Lightning) | peak MB (Keras / Lightning) | "
         "host peak RSS MB, from RSS at start (Keras / Lightning) | load at start/end (Keras; Lightning) |"),
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        keras, lightning = (row["frameworks"][fw] for fw in jobs.FRAMEWORKS)
        lines.append(f"| {row['model']} | {row['scope']} | {TRAINER_NAMES[row['trainer']]} | {row['variant']} | "
                     f"{keras['warmup_s']:.2f} / {lightning['warmup_s']:.2f} | "
                     f"{keras['peak_mem_mb']:.0f} / {lightning['peak_mem_mb']:.0f} ({keras['peak_mem_kind']}) | "
                     f"{_rss_text(keras)} / {_rss_text(lightning)} | "
                     f"{_load_text(keras['load_average'])}; {_load_text(lightning['load_average'])} |")
    variants = sorted({row["variant"] for row in rows}, key=list(VARIANTS).index)
    lines += ["", "Variants measured:", ""]
    lines += [f"- `{name}`: {VARIANTS[name].meaning}." for name in variants]
    lines += [MARKDOWN_END, ""]
    return "\n".join(lines)


def write_outputs(rows: Sequence[Mapping[str, Any]], out_dir: Path) -> tuple[Path, Path]:
    """OUT/bench.json (the rows) and OUT/bench.md (the table), each written atomically."""
    out_dir = Path(out_dir)
    json_path, md_path = out_dir / "bench.json", out_dir / "bench.md"
    write_text_atomic(json_path, json.dumps(rows, indent=2, allow_nan=False) + "\n")
    write_text_atomic(md_path, f"# parity bench\n\n{render_markdown(rows)}")
    return json_path, md_path


def write_markdown(rows: Sequence[Mapping[str, Any]], path: Path) -> Path:
    """The table into `path`: between the generated-block markers where the file has them, else the whole file."""
    path = Path(path)
    block = render_markdown(rows)
    text = path.read_text() if path.exists() else ""
    if MARKDOWN_BEGIN in text and MARKDOWN_END in text:
        head, rest = text.split(MARKDOWN_BEGIN, 1)
        tail = rest.split(MARKDOWN_END, 1)[1].lstrip("\n")
        write_text_atomic(path, head + block + tail)
    else:
        write_text_atomic(path, f"# parity bench\n\n{block}")
    return path


def command_line(model_ids: Sequence[str], options: BenchOptions, markdown: Path | None = None,
                 out_dir: Path | None = None) -> str:
    """The `parity bench` command that reproduces these options, every setting explicit."""
    args = ["parity", "bench", *model_ids, "--mode", options.mode, "--device", options.device,
            "--threads", str(options.threads)]
    if options.batch_size:
        args += ["--batch-size", str(options.batch_size)]
    args += ["--steps", str(options.steps), "--windows", str(options.windows), "--repeats", str(options.repeats),
             "--variant", *options.variants,
             "--scope", "both" if tuple(options.scopes) == SCOPES else options.scopes[0],
             "--tf32", "on" if options.tf32 else "off", "--malloc", options.malloc]
    if options.synthetic:
        args.append("--synthetic")
    elif options.data_dir:
        args += ["--data-dir", str(options.data_dir)]
    if out_dir:
        args += ["--out", str(out_dir)]
    if markdown:
        args += ["--markdown", str(markdown)]
    return shlex.join(args)


# ---------------------------------------------------------------------------- the flow


@dataclass
class _Prepared:
    cases: list[dict[str, Any]] = field(default_factory=list)
    data: dict[str, dict[str, Any]] = field(default_factory=dict)


def _prepare(model_ids: Iterable[str], options: BenchOptions, workdir: Path) -> _Prepared:
    """Load each model's data once, write the files both workers read, and list the cases."""
    from parity.datasets import load_dataset

    prepared = _Prepared()
    for model_id in model_ids:
        spec = get_spec(model_id)
        if not spec.trainable:
            raise ParityError(f"{spec.id} trains no network in the course; nothing to benchmark")
        split = load_dataset(spec, options.data_dir, options.synthetic)
        batch_size = options.batch_size or spec.batch_size
        save_case_data(workdir, spec.id, split.train, batch_size)
        staged = len(staged_indices(bench_plan(len(split.train), batch_size)))
        prepared.data[spec.id] = {"source": split.source, "location": split.location,
                                  "train_size": len(split.train), "staged_batches": staged}
        prepared.cases += [{"model": spec.id, "variant": variant, "scope": scope, "batch_size": batch_size}
                           for variant in options.variants for scope in options.scopes]
    return prepared


def run_bench(model_ids: Sequence[str], options: BenchOptions, command: str,
              progress: Callable[[str], None] = print, quiet: bool = False) -> list[dict[str, Any]]:
    """Measure every model, variant and scope in both frameworks, one worker process per framework."""
    check_options(options)
    started = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    load_start = os.getloadavg()
    with jobs.work_directory("parity-bench-") as workdir:
        prepared = _prepare(model_ids, options, workdir)
        job = {"kind": "bench", "cases": prepared.cases, "steps": options.steps, "windows": options.windows,
               "repeats": options.repeats, "tf32": options.tf32, "native": bench_alignment(options.mode).to_job()}
        answers = {}
        env = worker_environment(options.malloc)
        for framework in jobs.FRAMEWORKS:
            progress(f"bench: {framework}: {len(prepared.cases)} case(s) x {len(TRAINERS)} trainers x "
                     f"{options.repeats} repeat(s), warm-up + {options.windows} x {options.steps} steps each")
            answers[framework] = jobs.run_worker(framework, job, workdir, device=options.device,
                                                 threads=options.threads, quiet=quiet, env=env)
    context = {"options": options, "data": prepared.data, "started": started, "command": command, "env": env,
               "load_average": {"start": list(load_start), "end": list(os.getloadavg())}}
    return build_rows(prepared.cases, answers, context)
