"""The throughput protocol of `parity bench`: cases, windows, statistics, rows and the Markdown table.

The timing loops run inside the workers (tf_models.bench, torch_models.bench, and the keras-torch
worker's); all use the `Clock` and the batch helpers below, so all measure the same windows over
the same batches.
Protocol, per case (model, variant, scope, input pipeline setting) and trainer (the
framework's own trainer, Keras `fit` / Lightning `Trainer`, or a plain loop over the same
training step): one warm-up window (tracing, XLA or torch.compile compilation, autotuning),
timed apart, then `windows` timed windows of `steps` steps each; the device is synchronised
at window boundaries only. The frameworks' workers (Keras and Lightning; `--frameworks` adds
keras-torch, the same Keras models on Keras' torch backend) run the measurement at once and take
turns window by window (parity.interleave): one framework runs a window while the others wait,
in an order drawn per window from a recorded seed (`draw_orders`: each framework runs first,
second, ... equally often), so load that drifts on a shared machine weighs on all alike and the
frameworks' windows at one position form pairs.
With `repeats` > 1 every measurement runs again in fresh worker processes, with
the trainers in the other order (framework trainer first, then plain loop first); the windows
are pooled. A row reports the
median, min and max over the windows per framework, and the speed ratio Lightning / Keras as
the median of the paired windows' ratios with a percentile-bootstrap 95% interval
(`ratio_interval`); with other frameworks than the default two, `ratios` holds that ratio and
interval for every pair (a, b) of jobs.framework_pairs, b / a.
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
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from parity import align, interleave, jobs, provenance
from parity.catalog import get_spec
from parity.errors import ParityError
from parity.datasets import store
from parity.datasets.store import SampleSource
from parity.fileio import write_text_atomic
from parity.plan import BatchPlan, collate

SCOPES = ("compute", "end_to_end")
TRAINERS = ("framework", "plain")
# The end-to-end scope's input pipelines, measured both ways (the compute scope has none: STAGED).
# single_threaded: tf.data map without parallel calls, no prefetch, tf.data's automatic map parallelisation
#   and injected prefetch off / DataLoader num_workers=0: each framework collates in its training thread.
# recommended: tf.data map(num_parallel_calls=AUTOTUNE) + prefetch(AUTOTUNE) / DataLoader with one worker
#   process per CPU the worker may use, persistent_workers=True, pin_memory=True on a GPU.
INPUTS = ("single_threaded", "recommended")
STAGED = "staged"
DEFAULT_STEPS = 100  # steps per timed window (the Keras 3 benchmarks time 100 steps)
DEFAULT_WINDOWS = 5
DEFAULT_REPEATS = 3  # each in fresh worker processes; the interval carries between-repeat variation
MIN_WINDOWS = 3
# The speed ratio's interval: percentile bootstrap over the paired windows (repeats, then pairs, with replacement).
CI_LEVEL = 0.95
BOOTSTRAP_RESAMPLES = 10_000
BOOTSTRAP_SEED = 0
RATIO_INTERVAL = {"statistic": "median over paired windows of lightning / keras samples/s",
                  "method": "percentile bootstrap", "resampling": "repeats, then pairs of windows within them, with replacement",
                  "resamples": BOOTSTRAP_RESAMPLES, "seed": BOOTSTRAP_SEED, "level": CI_LEVEL}
# The statistic of every pair's ratio in `ratios` (frameworks other than the default two).
PAIRS_STATISTIC = "median over paired windows of b / a samples/s, for each pair b/a in `ratios`"
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
    keras_torch_meaning: str = ""  # the same variant on Keras' torch backend (shown when keras-torch ran)


VARIANTS: dict[str, Variant] = {variant.name: variant for variant in (
    Variant("eager", False, "float32", "32-true",
            meaning="Keras: compiled graph without XLA (tf.function, run_eagerly=False, jit_compile=False; "
                    "Keras' own default on CPU, while on GPU its default 'auto' turns XLA on); "
                    "Lightning: torch eager mode",
            keras_torch_meaning="jit_compile=False: Keras' train step runs eagerly in torch"),
    Variant("compiled", True, "float32", "32-true",
            meaning="Keras: jit_compile=True (XLA, the whole train step); Lightning: torch.compile(model, "
                    "dynamic=False) (default mode; Lightning compiles forward and training_step, the optimizer "
                    "step stays eager)",
            keras_torch_meaning="jit_compile=True: Keras wraps its whole train step in torch.compile (default mode)"),
    Variant("mixed_float16", False, "mixed_float16", "16-mixed", needs_gpu=True,
            meaning="Keras mixed_float16 policy with loss scaling; Lightning precision '16-mixed' with GradScaler. "
                    "GPU only: on CPU Lightning silently switches to bf16 and TF emulates float16 kernels",
            keras_torch_meaning="the same mixed_float16 policy with loss scaling, on torch"),
    Variant("mixed_bfloat16", False, "mixed_bfloat16", "bf16-mixed",
            meaning="Keras mixed_bfloat16 policy; Lightning precision 'bf16-mixed' (autocast). "
                    "Runs on CPU, but is only fast where the CPU has bf16 instructions",
            keras_torch_meaning="the same mixed_bfloat16 policy, on torch"),
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
    repeats: int = DEFAULT_REPEATS
    tf32: bool = False
    malloc: str = "tuned"
    data_dir: str | None = None
    synthetic: bool = False
    vocab: str | None = None  # `--vocab`: a subword vocabulary file, or "course" (None: learnt from the data)
    inputs: tuple[str, ...] = INPUTS
    order_seed: int | None = None  # the seed of the turn order; None: drawn at the start, and recorded
    frameworks: tuple[str, ...] = jobs.FRAMEWORKS  # `--frameworks`, in display order (jobs.ALL_FRAMEWORKS)


def check_options(options: BenchOptions) -> None:
    """Refuse what cannot be measured, before any worker starts."""
    try:
        jobs.parse_frameworks(",".join(options.frameworks))
    except ValueError as error:
        raise ParityError(f"--frameworks: {error}") from None
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
    bad_inputs = [setting for setting in options.inputs if setting not in INPUTS]
    if bad_inputs or not options.inputs:
        raise ParityError(f"unknown input setting {bad_inputs[0] if bad_inputs else None!r}; "
                          f"known: {', '.join(INPUTS)}")
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
    """Wall-clock and CPU-time spans of the warm-up window and of every timed window, with the turns between them.

    A loop calls `start()` before its first step and `step()` after each step; when `step()`
    returns True the loop synchronises its device and calls `mark()`. A loop that only sees
    window boundaries (Keras fit, one epoch per window) calls `mark()` at each of them.
    `stop` (parity.interleave.turn) waits for this worker's turn: once before the warm-up and
    once after every window, between the end of one window's span and the start of the next,
    so the waiting is in no window. Each span also reads the process's CPU time (all its
    threads): on a shared machine the CPU seconds a window costs move far less with the other
    processes' load than its wall time.
    """

    def __init__(self, steps: int, windows: int, stop: Callable[[], None] = lambda: None) -> None:
        self.steps = steps
        self.windows = windows
        self.stop = stop
        self.done = 0
        self.spans: list[tuple[tuple[float, float], tuple[float, float]]] = []
        self._opened: tuple[float, float] | None = None

    @property
    def total_steps(self) -> int:
        """Warm-up window plus timed windows."""
        return self.steps * (self.windows + 1)

    @staticmethod
    def _now() -> tuple[float, float]:
        return time.perf_counter(), time.process_time()

    def start(self) -> None:
        """Wait for the first turn, then open the warm-up window."""
        self.done = 0
        self.spans = []
        self.stop()
        self._opened = self._now()

    def step(self) -> bool:
        """Count one step; True at a window boundary."""
        self.done += 1
        return self.done % self.steps == 0

    def mark(self) -> None:
        """Close the current window, wait for the next turn, and open the next window (if one is due)."""
        if self._opened is None:
            raise RuntimeError("Clock.mark() without an open window: call start() first, and mark once per window")
        self.spans.append((self._opened, self._now()))
        self._opened = None
        self.stop()
        if len(self.spans) <= self.windows:
            self._opened = self._now()

    def result(self) -> dict[str, Any]:
        """Warm-up seconds, and the wall and CPU seconds of each timed window."""
        if len(self.spans) != self.windows + 1:
            raise RuntimeError(f"expected {self.windows + 1} closed windows (warm-up and {self.windows} timed), "
                               f"got {len(self.spans)}")
        wall = [end[0] - begin[0] for begin, end in self.spans]
        cpu = [end[1] - begin[1] for begin, end in self.spans]
        return {"warmup_s": wall[0], "window_s": wall[1:], "window_cpu_s": cpu[1:]}


def trainer_order(repeat: int) -> tuple[str, ...]:
    """Framework trainer first in even repeats, plain loop first in odd ones: load that drifts cancels out."""
    return TRAINERS if repeat % 2 == 0 else TRAINERS[::-1]


def draw_orders(rng: np.random.Generator, segments: int,
                frameworks: Sequence[str] = jobs.FRAMEWORKS) -> list[tuple[str, ...]]:
    """The order in which the frameworks run each segment (the warm-up, then each window) of one measurement.

    Balanced, then shuffled: the rotations of a random order (a Latin square: each framework once in every
    position) repeat over the segments, so each framework runs first, second, ... in as many segments as the
    others (a random rotation in the segments left over); then the segments' orders are shuffled. With two
    frameworks each leads in half of the segments (a random one in the odd one out), drawn as before three existed.
    """
    base = [str(name) for name in rng.permutation(list(frameworks))]
    rotations = [tuple(base[k:] + base[:k]) for k in range(len(base))]
    cycled = [rotations[segment % len(rotations)] for segment in range(segments)]
    return [cycled[index] for index in rng.permutation(segments)]


def loader_workers() -> int:
    """DataLoader worker processes in the recommended input setting: one per CPU this process may use,
    the parallelism tf.data's AUTOTUNE may reach."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def run_measurement(job: Mapping[str, Any], framework: str, gpu: bool,
                    measure: Callable[[dict[str, Any], Callable[[], None]], dict[str, Any]]) -> dict[str, Any]:
    """A worker's part of one measurement (job "case", "trainer", "repeat"), taking turns with the other workers.

    `measure(data, stop)` times the job's trainer on its case, calling `stop` through its Clock;
    a progress line follows.
    """
    require_device(job["case"]["variant"], gpu)
    data = load_case_data(job["workdir"], job["case"]["model"])
    with interleave.turn(job.get("turns"), framework) as stop:
        measured = {**measure(data, stop), "repeat": job["repeat"], "process": os.getpid()}
    print(progress_line(framework, measured, job["steps"]), flush=True)
    return measured


def merge_repeats(measurements: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The repeats of one case and trainer as one measurement: windows pooled in repeat order, warm-up of the
    first (cold) repeat."""
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
        "leaders": [measured["leaders"] for measured in ordered],
        **({"orders": [measured["orders"] for measured in ordered]} if "orders" in ordered[0] else {}),
        "processes": [measured["process"] for measured in ordered],
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
        # CPU seconds of the worker per wall second of its windows: about `--threads` on an idle machine for a
        # compute-bound step; well below it, the worker waited for a CPU (other processes' load).
        "cpu_share": float(np.median(np.divide(measured["window_cpu_s"], measured["window_s"]))),
        "windows": per_window["samples_per_s"],
        "window_s": list(measured["window_s"]),
        "window_cpu_s": list(measured["window_cpu_s"]),
        "load_average": measured["load_average"],
        "processes": measured["processes"],
        "settings": measured["settings"],
    }


def ratio(numerator: float, denominator: float) -> float:
    """numerator / denominator of two positive rates."""
    return numerator / denominator


def _paired(keras: Sequence[float], lightning: Sequence[float]) -> np.ndarray:
    """lightning / keras of each pair of windows (same position in the turns)."""
    keras_rates, lightning_rates = np.asarray(keras, dtype=float), np.asarray(lightning, dtype=float)
    if keras_rates.shape != lightning_rates.shape or keras_rates.ndim != 1 or len(keras_rates) < 2:
        raise ValueError(f"paired windows needed: {len(keras_rates)} keras and {len(lightning_rates)} lightning rates")
    return lightning_rates / keras_rates


def paired_ratio(keras: Sequence[float], lightning: Sequence[float]) -> float:
    """The speed ratio: the median over pairs of windows of lightning samples/s / keras samples/s."""
    return float(np.median(_paired(keras, lightning)))


def ratio_interval(keras: Sequence[float], lightning: Sequence[float], repeats: int = 1,
                   resamples: int = BOOTSTRAP_RESAMPLES, seed: int = BOOTSTRAP_SEED,
                   level: float = CI_LEVEL) -> list[float]:
    """Percentile-bootstrap interval of `paired_ratio`, `resamples` times.

    The pairs are pooled in repeat order, `repeats` equal blocks. With one repeat the pairs are
    resampled with replacement. With several, the bootstrap is two-stage: repeats are drawn with
    replacement, then pairs within each drawn repeat, so the interval also carries the variation
    between repeats (a run's state that persists over its windows: page cache, worker processes,
    the machine's load), which resampling pairs alone cannot see. Resampling whole pairs keeps
    what the turns share (the load of the moment) inside each ratio. Simulated coverage of the
    95% interval with one repeat (lognormal window noise, load shared by a pair, independent or
    drifting from pair to pair): 93 to 96% with 5 to 20 pairs (tests/test_bench.py checks 10 pairs).
    """
    ratios = _paired(keras, lightning)
    if repeats < 1 or len(ratios) % repeats:
        raise ValueError(f"{len(ratios)} pairs do not split into {repeats} equal repeats")
    rng = np.random.default_rng(seed)
    if repeats == 1:
        samples = ratios[rng.integers(0, len(ratios), size=(resamples, len(ratios)))]
    else:
        blocks = ratios.reshape(repeats, -1)
        chosen = rng.integers(0, repeats, size=(resamples, repeats, 1))
        within = rng.integers(0, blocks.shape[1], size=(resamples, repeats, blocks.shape[1]))
        samples = blocks[chosen, within].reshape(resamples, -1)
    tail = 100 * (1 - level) / 2
    low, high = np.percentile(np.median(samples, axis=1), [tail, 100 - tail])
    return [float(low), float(high)]


def _device_kind(device: str) -> str:
    return device.split(" ", 1)[0]


def pair_ratios(windows: Mapping[str, Sequence[float]], repeats: int) -> dict[str, dict[str, Any]]:
    """{pair key "b/a": {"ratio": paired_ratio of b over a, "interval": its ratio_interval}} for every pair of the
    frameworks in `windows` (their samples/s per window, paired by position), jobs.framework_pairs order."""
    return {jobs.pair_key((a, b)): {"ratio": paired_ratio(windows[a], windows[b]),
                                    "interval": ratio_interval(windows[a], windows[b], repeats)}
            for a, b in jobs.framework_pairs(list(windows))}


def row_ratios(row: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """A row's speed ratios by pair key: its `ratios`, or for a row of the default two frameworks (which has none)
    {"lightning/keras": its throughput_ratio and interval}."""
    if "ratios" in row:
        return dict(row["ratios"])
    return {jobs.pair_key(jobs.FRAMEWORKS): {"ratio": row["throughput_ratio"],
                                             "interval": row["throughput_ratio_ci95"]}}


def row_frameworks(row: Mapping[str, Any]) -> tuple[str, ...]:
    """The frameworks a row measured, in display order."""
    return jobs.in_display_order(row["frameworks"])


def _environment(answers: Mapping[str, Mapping[str, Any]], frameworks: Sequence[str]) -> dict[str, Any]:
    """Python, the frameworks' versions (each from the first framework, in display order, that reports it), the
    workers' devices and the host; with frameworks other than the default two, each worker's versions too."""
    def version(name: str) -> str | None:
        return next((answers[fw]["versions"][name] for fw in frameworks if name in answers[fw]["versions"]), None)

    environment = {
        "python": platform.python_version(),
        **{name: version(name) for name in ("tensorflow", "keras", "torch", "lightning")},
        "device_name": {fw: answers[fw]["device"] for fw in frameworks},
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
    }
    if tuple(frameworks) != jobs.FRAMEWORKS:
        environment["versions"] = {fw: answers[fw]["versions"] for fw in frameworks}
    return environment


def build_rows(cases: Sequence[Mapping[str, Any]], answers: Mapping[str, Mapping[str, Any]],
               context: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One row per case and trainer, as the `parity bench --json` contract, from the workers' answers.

    `context` holds what the parent knows: options, data per model, load averages, start time.
    Every row has `throughput_ratio` (lightning / keras; None unless both ran) and its interval;
    with frameworks other than the default two, `ratios` ({pair key b/a: {ratio, interval}}, `pair_ratios`).
    """
    options: BenchOptions = context["options"]
    frameworks = tuple(options.frameworks)
    devices = {fw: _device_kind(answers[fw]["device"]) for fw in frameworks}
    if len(set(devices.values())) != 1:
        raise ParityError(f"the frameworks ran on different devices ({devices}); pass --device cpu or --device gpu")
    measured: dict[str, dict[tuple, list]] = {fw: {} for fw in frameworks}
    for fw in frameworks:
        for m in answers[fw]["measurements"]:
            measured[fw].setdefault((m["model"], m["variant"], m["scope"], m["input"], m["trainer"]), []).append(m)
    environment = _environment(answers, frameworks)
    default = frameworks == jobs.FRAMEWORKS
    rows = []
    for case in cases:
        data = context["data"][case["model"]]
        plan = bench_plan(data["train_size"], case["batch_size"])
        samples = np.tile(window_samples(case["scope"], plan, options.steps, options.windows), options.repeats)
        pair = {}
        for trainer in TRAINERS:
            key = (case["model"], case["variant"], case["scope"], case["input"], trainer)
            merged = {fw: merge_repeats(measured[fw][key]) for fw in frameworks}
            entries = {fw: framework_entry(merged[fw], samples, options.steps) for fw in frameworks}
            pair[trainer] = entries
            windows = {fw: entries[fw]["windows"] for fw in frameworks}
            ratios = pair_ratios(windows, options.repeats)
            both = ratios.get(jobs.pair_key(jobs.FRAMEWORKS), {"ratio": None, "interval": None})
            settings = _row_settings(case, options, data, context, answers)
            settings["interleaving"] = {"unit": "window", "seed": context["order_seed"],
                                        "first": merged[frameworks[0]]["leaders"]}
            if not default:
                settings["interleaving"]["orders"] = merged[frameworks[0]]["orders"]
            settings["input_pipeline"] = {fw: entries[fw]["settings"]["input"] for fw in frameworks}
            settings["ratio_interval"] = {**RATIO_INTERVAL, **({} if default else {"statistic": PAIRS_STATISTIC}),
                                          "pairs": len(windows[frameworks[0]]),
                                          "stages": "repeats, then pairs within" if options.repeats > 1 else "pairs"}
            rows.append({
                "model": case["model"],
                "device": devices[frameworks[0]],
                "variant": case["variant"],
                "batch_size": case["batch_size"],
                "scope": case["scope"],
                "input": case["input"],
                "trainer": trainer,
                "frameworks": entries,
                "throughput_ratio": both["ratio"],
                "throughput_ratio_ci95": both["interval"],
                **({} if default else {"ratios": ratios}),
                "settings": settings,
                "environment": environment,
                "provenance": _provenance(case, options, data, answers),
            })
        overhead = {fw: ratio(pair["framework"][fw]["samples_per_s"]["median"], pair["plain"][fw]["samples_per_s"]["median"])
                    for fw in frameworks}
        overhead_cpu = {fw: ratio(pair["plain"][fw]["cpu_ms_per_step"]["median"],
                                  pair["framework"][fw]["cpu_ms_per_step"]["median"]) for fw in frameworks}
        for row in rows[-len(TRAINERS):]:
            row["trainer_vs_plain"] = overhead
            row["trainer_vs_plain_cpu"] = overhead_cpu
    return rows


def _provenance(case: Mapping[str, Any], options: BenchOptions, data: Mapping[str, Any],
                answers: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """The row's provenance. Its mode is `--mode` (the torch optimizer implementation timed); TF32 and
    determinism, which the bench sets itself in both modes, are in `settings`. No epochs, no forward check."""
    return provenance.build_provenance(data["provenance"], align.Alignment.from_mode(options.mode), answers,
                                       options.threads, get_spec(case["model"]).epochs)


# How each framework runs a variant: its precision setting and its compilation.
def _precision(variant: Variant, framework: str) -> str:
    return variant.lightning_precision if framework == "lightning" else variant.keras_policy


def _compile(variant: Variant, framework: str) -> str:
    if framework == "lightning":
        return "torch.compile(dynamic=False)" if variant.compiled else "eager"
    if framework == "keras-torch":
        return ("jit_compile=True (torch.compile, Keras' torch backend)" if variant.compiled
                else "jit_compile=False (torch eager)")
    return "jit_compile=True (XLA)" if variant.compiled else "jit_compile=False (tf.function graph)"


def _cudnn_autotune(process: Mapping[str, Any], framework: str) -> Any:
    """TensorFlow's cuDNN autotuning (keras), torch's cudnn.benchmark (the torch-based workers)."""
    keys = ("cudnn_autotune", "cudnn_benchmark") if framework == "keras" else ("cudnn_benchmark", "cudnn_autotune")
    return next((process[key] for key in keys if key in process), None)


def _row_settings(case: Mapping[str, Any], options: BenchOptions, data: Mapping[str, Any],
                  context: Mapping[str, Any], answers: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    variant = VARIANTS[case["variant"]]
    frameworks = tuple(options.frameworks)
    process = {fw: answers[fw]["settings"] for fw in frameworks}
    return {
        "mode": options.mode,
        # Set and read back on every device; TF32 only changes arithmetic on NVIDIA GPUs (Ampere and later).
        "tf32": {"requested": options.tf32, **{fw: process[fw]["tf32"] for fw in frameworks},
                 "applicable": _device_kind(answers[frameworks[0]]["device"]) == "gpu"},
        "determinism": {fw: process[fw]["determinism"] for fw in frameworks},
        "threads": {"requested": options.threads, **{fw: process[fw]["threads"] for fw in frameworks}},
        "precision": {fw: _precision(variant, fw) for fw in frameworks},
        "compile": {fw: _compile(variant, fw) for fw in frameworks},
        "cudnn_autotune": {fw: _cudnn_autotune(process[fw], fw) for fw in frameworks},
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
                  "lightning": {"framework": "Trainer", "plain": "plain torch loop"},
                  "keras-torch": {"framework": "fit", "plain": "plain loop of the torch-backend train_step"}}
# The overhead table's column per framework, and the short name of its trainer in lines and headers.
OVERHEAD_COLUMNS = {"keras": "Keras fit / tf.function loop", "lightning": "Lightning Trainer / torch loop",
                    "keras-torch": "Keras-torch fit / torch-backend train_step loop"}
TRAINER_SHORT = {"keras": "fit", "lightning": "Trainer", "keras-torch": "keras-torch fit"}


def progress_line(framework: str, measured: Mapping[str, Any], steps: int) -> str:
    """A worker's line after each measurement (a bench can take minutes)."""
    per_window = summarize([steps / seconds for seconds in measured["window_s"]])
    return (f"[{framework}] {measured['model']} {measured['variant']} {_scope_text(measured)} "
            f"{TRAINER_LABELS[framework][measured['trainer']]} (repeat {measured['repeat'] + 1}): "
            f"warm-up {measured['warmup_s']:.1f} s, {_spread(per_window)} steps/s")


def _scope_text(entry: Mapping[str, Any]) -> str:
    """The scope, with the input setting of an end-to-end measurement: `end_to_end/recommended`."""
    return entry["scope"] if entry["input"] == STAGED else f"{entry['scope']}/{entry['input']}"


def _interval_text(entry: Mapping[str, Any]) -> str:
    """'0.812 [0.790, 0.830]': a ratio of `row_ratios` with its interval."""
    low, high = entry["interval"]
    return f"{entry['ratio']:.3f} [{low:.3f}, {high:.3f}]"


def _names_text(frameworks: Sequence[str]) -> str:
    """'Keras and Lightning', 'Keras, Lightning and Keras-torch'."""
    names = [jobs.FRAMEWORK_NAMES[fw] for fw in frameworks]
    return f"{', '.join(names[:-1])} and {names[-1]}"


def _pair_label(key: str) -> str:
    """'Lightning / Keras' for the pair key 'lightning/keras'."""
    return " / ".join(jobs.FRAMEWORK_NAMES[fw] for fw in key.split("/"))


def row_line(row: Mapping[str, Any]) -> str:
    """One human-readable line per row."""
    frameworks = row_frameworks(row)
    rates = ", ".join(f"{fw} {_spread(row['frameworks'][fw]['samples_per_s'])} samples/s" for fw in frameworks)
    ratios = ", ".join(f"{key} {_interval_text(entry)}" for key, entry in row_ratios(row).items())
    line = (f"{row['model']} {row['device']} {_scope_text(row)} {TRAINER_NAMES[row['trainer']]} {row['variant']} "
            f"batch {row['batch_size']}: {rates}, {ratios} (95% CI)")
    if row["trainer"] == "framework":
        wall, cpu = row["trainer_vs_plain"], row["trainer_vs_plain_cpu"]
        line += " (" + "; ".join(f"{TRAINER_SHORT[fw]}/plain {wall[fw]:.2f}, CPU {cpu[fw]:.2f}"
                                 for fw in frameworks) + ")"
    return line


def _setting_text(value: Any) -> str:
    """A recorded setting in words: booleans as on/off, mappings as `key value` pairs."""
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, Mapping):
        return ", ".join(f"{key.replace('_', ' ')} {_setting_text(item)}" for key, item in value.items())
    return str(value)


def _per_framework(setting: Mapping[str, Any]) -> str:
    """'Keras: ...; Lightning: ...' for the frameworks the setting names."""
    return "; ".join(f"{jobs.FRAMEWORK_NAMES[fw]}: {_setting_text(setting[fw])}" for fw in jobs.ALL_FRAMEWORKS
                     if fw in setting)


def _rss_text(entry: Mapping[str, Any]) -> str:
    start = entry["host_rss_start_mb"]
    return f"{entry['host_rss_mb']:.0f}" + (f" (from {start:.0f})" if start is not None else "")


def _load_text(load: Sequence[float]) -> str:
    return " / ".join(f"{value:.2f}" for value in load)


def _input_rows(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """One settings-table line per input setting measured: what each framework's pipeline ran with."""
    pipelines = {row["input"]: row["settings"]["input_pipeline"] for row in rows}
    return [f"| input: {setting} | {_per_framework(pipeline)} |" for setting, pipeline in pipelines.items()]


def _versions_text(env: Mapping[str, Any], frameworks: Sequence[str]) -> str:
    """'Python 3.11.7, TensorFlow 2.21.0, Keras 3.12.0, torch 2.9.1, Lightning 2.6.0', and the Keras-torch worker's
    Keras and torch where it ran."""
    names = (("tensorflow", "TensorFlow"), ("keras", "Keras"), ("torch", "torch"), ("lightning", "Lightning"))
    text = ", ".join([f"Python {env['python']}", *(f"{label} {env[key]}" for key, label in names if env[key])])
    if "keras-torch" in frameworks:
        own = env["versions"]["keras-torch"]
        text += f"; Keras-torch: Keras {own.get('keras')} on torch {own.get('torch')}"
    return text


def _interleaving_text(settings: Mapping[str, Any], frameworks: Sequence[str]) -> str:
    seed = settings["interleaving"]["seed"]
    if len(frameworks) == 2:
        return (f"{_names_text(frameworks)} take turns window by window (warm-up included), one running while "
                f"the other waits; who goes first is drawn per window, balanced (seed {seed}; "
                "each row's order in bench.json)")
    return (f"{_names_text(frameworks)} take turns window by window (warm-up included), one running while the "
            "others wait; the order is drawn per window, balanced (each framework runs first, second and third "
            f"equally often; seed {seed}; each row's orders in bench.json)")


def _ratio_legend(frameworks: Sequence[str]) -> str:
    if tuple(frameworks) == jobs.FRAMEWORKS:
        return "Lightning / Keras: the median over the paired windows of the two frameworks' samples/s ratio, "
    return ("B / A, one column per pair: the median over the paired windows of the two frameworks' samples/s "
            "ratio, ")


def render_markdown(rows: Sequence[Mapping[str, Any]]) -> str:
    """The readable table of a bench: command, environment, settings, throughput, overhead, warm-up and memory;
    a column per framework, and per pair of frameworks for the speed ratios."""
    if not rows:
        return f"{MARKDOWN_BEGIN}\nNo measurements.\n{MARKDOWN_END}\n"
    first = rows[0]
    settings, env = first["settings"], first["environment"]
    frameworks = row_frameworks(first)
    pairs = list(row_ratios(first))
    names = " / ".join(jobs.FRAMEWORK_NAMES[fw] for fw in frameworks)
    windows = settings["windows"] * settings["repeats"]
    devices = ", ".join(f"{env['device_name'][fw]} ({jobs.FRAMEWORK_NAMES[fw]})" for fw in frameworks)
    lines = [
        MARKDOWN_BEGIN,
        f"Command: `{settings['command']}`",
        "",
        f"Measured {settings['started']} on {devices}; {env['platform']}, {env['cpu_count']} CPUs.",
        "",
        f"Versions: {_versions_text(env, frameworks)}.",
        "",
        "| setting | value |",
        "|---|---|",
        f"| mode | {settings['mode']} (the torch optimizer implementation; see `parity bench --help`) |",
        f"| threads per framework | {settings['threads']['requested']} ({_per_framework(settings['threads'])}) |",
        (f"| TF32 | requested {_setting_text(settings['tf32']['requested'])} ({_per_framework(settings['tf32'])})"
         f"{'' if settings['tf32']['applicable'] else '; no effect on CPU (a GPU tensor-core mode)'} |"),
        f"| deterministic ops | {_per_framework(settings['determinism'])} |",
        f"| malloc | {settings['malloc']['setting']} (GLIBC_TUNABLES {settings['malloc']['GLIBC_TUNABLES'] or 'unset'}) |",
        (f"| data | {settings['data']['source']} ({settings['data']['location']}), "
         f"{settings['data']['train_size']:,} training samples |"),
        (f"| windows | warm-up {settings['warmup_steps']} steps (timed apart), then {settings['windows']} x "
         f"{settings['steps_per_window']} steps; {settings['repeats']} repeat(s), fit/Trainer and plain loop in "
         "alternating order |"),
        f"| interleaving | {_interleaving_text(settings, frameworks)} |",
        *_input_rows(rows),
        (f"| ratio interval | {settings['ratio_interval']['level']:.0%} {settings['ratio_interval']['method']} of the "
         f"{settings['ratio_interval']['statistic']}, {settings['ratio_interval']['resampling']}, "
         f"{settings['ratio_interval']['resamples']:,} resamples, seed {settings['ratio_interval']['seed']} |"),
        (f"| load average (1/5/15 min) | start {_load_text(settings['load_average']['start'])}; "
         f"end {_load_text(settings['load_average']['end'])} |"),
        "",
        f"### Throughput: samples/s, median [min-max] over {windows} windows",
        "",
        (f"{_ratio_legend(frameworks)}"
         "[95% bootstrap interval]. Scope `end_to_end/<input setting>`: see the input rows above. CPU share: "
         "the worker's CPU seconds per wall second in its windows (median), about the threads per framework "
         "on an idle machine; lower, the worker waited for a CPU, and the interval holds for this run's load only."),
        "",
        ("| model | device | scope | trainer | variant | batch | "
         + "".join(f"{jobs.FRAMEWORK_NAMES[fw]} | " for fw in frameworks)
         + "".join(f"{_pair_label(key)} [95% CI] | " for key in pairs)
         + f"CPU share ({names}) |"),
        "|---|---|---|---|---|---|" + "---|" * (len(frameworks) + len(pairs) + 1),
    ]
    for row in rows:
        rates = "".join(f"{_spread(row['frameworks'][fw]['samples_per_s'])} | " for fw in frameworks)
        ratios = "".join(f"{_interval_text(entry)} | " for entry in row_ratios(row).values())
        shares = " / ".join(f"{row['frameworks'][fw]['cpu_share']:.2f}" for fw in frameworks)
        lines.append(f"| {row['model']} | {row['device']} | {_scope_text(row)} | {TRAINER_NAMES[row['trainer']]} | "
                     f"{row['variant']} | {row['batch_size']} | {rates}{ratios}{shares} |")
    lines += [
        "",
        "### Trainer overhead: framework trainer / plain loop",
        "",
        ("Wall: ratio of median samples/s. CPU: plain loop / trainer median CPU ms per step (all threads of "
         "the worker), which other processes' load moves far less than wall time."),
        "",
        ("| model | scope | variant | batch | "
         + "".join(f"{OVERHEAD_COLUMNS[fw]} (wall, CPU) | " for fw in frameworks)
         + "CPU ms per step: " + "; ".join(f"{TRAINER_SHORT[fw]}, plain" for fw in frameworks) + " |"),
        "|---|---|---|---|" + "---|" * (len(frameworks) + 1),
    ]
    plain_rows = {(row["model"], row["scope"], row["input"], row["variant"], row["batch_size"]): row
                  for row in rows if row["trainer"] == "plain"}
    for row in rows:
        if row["trainer"] == "framework":
            wall, cpu = row["trainer_vs_plain"], row["trainer_vs_plain_cpu"]
            plain = plain_rows[(row["model"], row["scope"], row["input"], row["variant"], row["batch_size"])]
            overhead = "".join(f"{wall[fw]:.3f}, {cpu[fw]:.3f} | " for fw in frameworks)
            per_step = "; ".join(f"{row['frameworks'][fw]['cpu_ms_per_step']['median']:.2f}, "
                                 f"{plain['frameworks'][fw]['cpu_ms_per_step']['median']:.2f}" for fw in frameworks)
            lines.append(f"| {row['model']} | {_scope_text(row)} | {row['variant']} | {row['batch_size']} | "
                         f"{overhead}{per_step} |")
    load_names = "; ".join(jobs.FRAMEWORK_NAMES[fw] for fw in frameworks)
    lines += [
        "",
        "### Warm-up and memory",
        "",
        (f"| model | scope | trainer | variant | warm-up s ({names}) | peak MB ({names}) | "
         f"host peak RSS MB, from RSS at start ({names}) | load at start/end ({load_names}) |"),
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        entries = [row["frameworks"][fw] for fw in frameworks]
        warmup = " / ".join(f"{entry['warmup_s']:.2f}" for entry in entries)
        peak = " / ".join(f"{entry['peak_mem_mb']:.0f}" for entry in entries)
        rss = " / ".join(_rss_text(entry) for entry in entries)
        load = "; ".join(_load_text(entry["load_average"]) for entry in entries)
        lines.append(f"| {row['model']} | {_scope_text(row)} | {TRAINER_NAMES[row['trainer']]} | {row['variant']} | "
                     f"{warmup} | {peak} ({entries[0]['peak_mem_kind']}) | {rss} | {load} |")
    variants = sorted({row["variant"] for row in rows}, key=list(VARIANTS).index)
    lines += ["", "Variants measured:", ""]
    lines += [f"- `{name}`: {VARIANTS[name].meaning}"
              + (f"; Keras-torch: {VARIANTS[name].keras_torch_meaning}" if "keras-torch" in frameworks else "") + "."
              for name in variants]
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
             "--input", *options.inputs, "--tf32", "on" if options.tf32 else "off", "--malloc", options.malloc]
    if options.order_seed is not None:
        args += ["--order-seed", str(options.order_seed)]
    if tuple(options.frameworks) != jobs.FRAMEWORKS:
        args += ["--frameworks", ",".join(options.frameworks)]
    if options.synthetic:
        args.append("--synthetic")
    elif options.data_dir:
        args += ["--data-dir", str(options.data_dir)]
    if options.vocab:
        args += ["--vocab", str(options.vocab)]
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
    spec_overrides: dict[str, Any] = field(default_factory=dict)  # the sizes each model's data fixed


def _prepare(model_ids: Iterable[str], options: BenchOptions, workdir: Path) -> _Prepared:
    """Load each model's data once, write the files both workers read, and list the cases."""
    from parity.datasets import load_dataset

    prepared = _Prepared()
    for model_id in model_ids:
        spec = get_spec(model_id)
        if not spec.trainable:
            raise ParityError(f"{spec.id} trains no network in the course; nothing to benchmark")
        split = load_dataset(spec, options.data_dir, options.synthetic, vocab=options.vocab)
        batch_size = options.batch_size or spec.batch_size
        save_case_data(workdir, spec.id, split.train, batch_size)
        prepared.spec_overrides.update(split.spec_overrides(spec.id))
        staged = len(staged_indices(bench_plan(len(split.train), batch_size)))
        prepared.data[spec.id] = {"source": split.source, "location": split.location,
                                  "train_size": len(split.train), "staged_batches": staged,
                                  "provenance": provenance.data_provenance(split)}
        prepared.cases += [{"model": spec.id, "variant": variant, "scope": scope, "input": setting,
                            "batch_size": batch_size}
                           for variant in options.variants for scope in options.scopes
                           for setting in ((STAGED,) if scope == "compute" else options.inputs)]
    return prepared


def with_order_seed(options: BenchOptions) -> BenchOptions:
    """The options with a turn-order seed: theirs, else one drawn now (recorded, so the order can be replayed)."""
    if options.order_seed is not None:
        return options
    return replace(options, order_seed=int(np.random.SeedSequence().generate_state(1)[0]))


def _measure_pairs(prepared: _Prepared, options: BenchOptions, workdir: Path, turns: interleave.Turns,
                   env: dict[str, str], quiet: bool, progress: Callable[[str], None]) -> dict[str, dict[str, Any]]:
    """Every repeat, case and trainer as one measurement: every framework's worker at once, taking turns.

    Each repeat runs in fresh worker processes: what a process keeps over its measurements
    (heap layout, thread placement, DataLoader workers, caches) then varies between repeats as it
    varies between runs, and the two-stage interval sees it. Returns each framework's answer: its
    device, versions and settings, and all its measurements (each with the framework that went first in each
    segment, "leaders", and with frameworks other than the default two each segment's whole order, "orders").
    """
    frameworks = tuple(options.frameworks)
    rng = np.random.default_rng(options.order_seed)
    answers: dict[str, dict[str, Any]] = {}
    base = {"kind": "bench", "steps": options.steps, "windows": options.windows, "tf32": options.tf32,
            "native": bench_alignment(options.mode).to_job(), "loader_workers": loader_workers(),
            "spec_overrides": prepared.spec_overrides}
    for repeat in range(options.repeats):
        with jobs.worker_pool(device=options.device, threads=options.threads, quiet=quiet, env=env) as workers:
            for number, case in enumerate(prepared.cases, start=1):
                progress(f"bench: repeat {repeat + 1}/{options.repeats} (fresh workers), case {number}/"
                         f"{len(prepared.cases)}: {case['model']} {case['variant']} {_scope_text(case)}: "
                         f"{len(TRAINERS)} trainers, warm-up + {options.windows} x {options.steps} steps each, "
                         f"{_names_text(frameworks)} taking turns")
                for trainer in trainer_order(repeat):
                    orders = draw_orders(rng, options.windows + 1, frameworks)
                    turn_order = {"leaders": [order[0] for order in orders]}
                    if frameworks != jobs.FRAMEWORKS:
                        turn_order["orders"] = [list(order) for order in orders]
                    job = {**base, "case": case, "trainer": trainer, "repeat": repeat}
                    measured = turns.run_together(lambda fw, fw_job: workers.run(fw, fw_job, workdir), frameworks,
                                                  job, orders)
                    for fw, answer in measured.items():
                        if fw not in answers:
                            answers[fw] = {key: answer[key] for key in ("device", "versions", "settings")}
                            answers[fw]["measurements"] = []
                        answers[fw]["measurements"].append({**answer["measurement"], **turn_order})
    return answers


def run_bench(model_ids: Sequence[str], options: BenchOptions, command: str,
              progress: Callable[[str], None] = print, quiet: bool = False) -> list[dict[str, Any]]:
    """Measure every model, variant, scope and input setting in each framework of `options.frameworks`: one worker
    per framework, taking turns."""
    check_options(options)
    options = with_order_seed(options)
    started = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    load_start = os.getloadavg()
    env = worker_environment(options.malloc)
    # Turns opens before the pools: its threads start the workers, which must outlive none of them.
    with jobs.work_directory("parity-bench-") as workdir, interleave.Turns(workdir) as turns:
        prepared = _prepare(model_ids, options, workdir)
        answers = _measure_pairs(prepared, options, workdir, turns, env, quiet, progress)
    context = {"options": options, "data": prepared.data, "started": started, "command": command, "env": env,
               "order_seed": options.order_seed,
               "load_average": {"start": list(load_start), "end": list(os.getloadavg())}}
    return build_rows(prepared.cases, answers, context)
