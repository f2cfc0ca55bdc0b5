"""The job loop inside a framework worker process, written once for every framework.

A framework's worker module (tf_models/worker.py, torch_models/worker.py) supplies a `Worker`:
`configure(job)` (threads, device, determinism and TF32 for this job; returns the device in
words), `versions()` (its framework versions) and its handler table. `serve` does the rest: it
reads job files, configures the process, runs the handler, writes the result file (or the
error) and reports on the control pipe. The parent side is parity.jobs.

Protocol: the parent writes the path of a job file (JSON) on the worker's stdin, one per line,
and the worker answers each with one line `done PATH` or `failed PATH` on its control pipe
(`--control-fd N`) once the job's result file is written; EOF on stdin ends the worker. Its
stdout and stderr carry only what the frameworks print (progress bars, warnings, tracebacks),
which the parent relays and logs. By hand: `python -m tf_models.worker JOB.json...` runs those
jobs and exits (status 1 if any failed).

A served worker ignores SIGINT: a terminal's Ctrl-C reaches the whole process group, and the
parent, which gets it too, decides what to keep and stops its workers (parity.jobs). A `train`
job writes each seed's result when the seed ends (`train_seeds`), so a run stopped later keeps it.
"""

from __future__ import annotations

import argparse
import importlib
import math
import platform
import signal
import sys
import traceback
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from parity import catalog, jobs

Job = dict[str, Any]
Handler = Callable[[Job], dict[str, Any]]


@dataclass(frozen=True)
class Worker:
    """What a framework contributes to its worker process.

    A handler is a function, or "module:function" imported only when a job of its kind first
    runs (so a `describe` job never imports the bench code).
    """

    framework: str
    configure: Callable[[Job], str]
    versions: Callable[[], dict[str, str]]
    handlers: Mapping[str, Handler | str]

    def handler(self, kind: str) -> Handler:
        """The function that runs jobs of `kind`."""
        if kind not in self.handlers:
            raise ValueError(f"the {self.framework} worker has no {kind!r} job; it runs {', '.join(self.handlers)}")
        handler = self.handlers[kind]
        if isinstance(handler, str):
            module, name = handler.split(":")
            handler = getattr(importlib.import_module(module), name)
        return handler


def cpu_words(threads: int) -> str:
    """The CPU device in words, as both workers report it."""
    return f"cpu ({platform.processor() or platform.machine()}, {threads} threads)"


def error_line(error: BaseException) -> str:
    """The last line of the error's traceback: 'RuntimeError: --device gpu: TensorFlow sees no GPU'."""
    lines = [line.strip() for line in traceback.format_exception_only(type(error), error) if line.strip()]
    return lines[-1] if lines else type(error).__name__


def train_seeds(job: Job, train_one: Callable[[int], tuple[int, dict[str, Any]]]) -> dict[str, Any]:
    """A `train` job's seeds one after another (`train_one(seed)` -> (parameter count, run record)); each finished
    seed is written at once to its own file (parity.jobs.seed_result_path). The job's answer: {"params", "runs"}."""
    params, runs = 0, []
    for seed in job["seeds"]:
        params, run = train_one(seed)
        jobs.write_result(jobs.seed_result_path(Path(job["workdir"]), job["framework"], seed),
                          {"params": params, "run": run})
        runs.append(run)
    return {"params": params, "runs": runs}


def non_finite_record(epoch: int, step: int, global_step: int, loss: float) -> dict[str, Any]:
    """Where a run's training loss first went NaN or infinite: `epoch` and `step` (within the epoch) 0-based as the
    frameworks count them, written 1-based; `global_step` counted from 1; the value in words ('nan', 'inf', '-inf')."""
    value = "nan" if math.isnan(loss) else ("inf" if loss > 0 else "-inf")
    return {"epoch": epoch + 1, "step": step + 1, "global_step": global_step, "loss": value}


def non_finite_line(record: dict[str, Any]) -> str:
    """'loss became nan at epoch 2, step 3 (global step 7): training stopped'."""
    return (f"loss became {record['loss']} at epoch {record['epoch']}, step {record['step']} (global step "
            f"{record['global_step']}): training stopped")


def run_job(worker: Worker, job_path: Path) -> bool:
    """Run one job file and write its result file; an exception is printed (to the log) and written as the result."""
    job = jobs.read_job(job_path)
    try:
        device = worker.configure(job)
        with catalog.shaped_by_data(job.get("spec_overrides")):
            result = worker.handler(job["kind"])(job)
        answer = {**result, "framework": worker.framework, "device": device,
                  "versions": {**worker.versions(), "python": platform.python_version()}}
        succeeded = True
    except Exception as error:  # the parent raises it as a WorkerError; this process serves the next job
        traceback.print_exc()
        answer = {"framework": worker.framework,
                  "error": {"kind": job.get("kind"), "type": type(error).__name__, "line": error_line(error)}}
        succeeded = False
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
    jobs.write_result(job["result"], answer)
    return succeeded


def _job_paths(paths: Sequence[str], stdin: TextIO) -> Iterable[str]:
    if paths:
        yield from paths
        return
    for line in stdin:
        if line.strip():
            yield line.strip()


def serve(worker: Worker, argv: Sequence[str] | None = None) -> int:
    """A worker's main: run the job files named in argv, or those named on stdin until EOF."""
    parser = argparse.ArgumentParser(prog=f"{worker.framework} worker")
    parser.add_argument("--control-fd", type=int, help="pipe on which to answer 'done PATH' / 'failed PATH'")
    parser.add_argument("jobs", nargs="*", help="job files to run (default: paths read from stdin, one per line)")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    control = open(args.control_fd, "w", buffering=1, closefd=True) if args.control_fd is not None else None
    if control is not None:  # served: the parent handles Ctrl-C and stops this worker (module docstring)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    failures = 0
    for path in _job_paths(args.jobs, sys.stdin):
        succeeded = run_job(worker, Path(path))
        failures += not succeeded
        if control is not None:
            control.write(f"{jobs.DONE if succeeded else jobs.FAILED} {path}\n")
    return 1 if failures and args.jobs else 0
