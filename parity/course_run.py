"""Whole-course runs: `parity run --all`, `--part N` or several model ids, one model after the other.

A course run is resumable: a model whose OUT/MODEL/report.json records the same request
(`request_settings`: model, epochs, seeds, mode and native differences, data source, learning
rate, series options, device, threads, the frameworks unless the default pair) is skipped as
done unless `force`; a model without a report (never run, or stopped before its report was
swapped in), with an unreadable one, or with one made under other settings runs again. Models the harness cannot run (not
implemented in both frameworks, or `runner.missing_support`) are listed as skipped with the
reason. One model's failure is printed in one line and collected; the others still run.
Ctrl-C stops the run once the current model is cleaned up (the runner writes a report
atomically, so nothing half-written stays); finished models keep their reports. At the end,
the `parity report` table over the models that ran or were done before goes to stdout and
OUT/summary.md, followed by what happened to each model.

The ETA printed before each model is the mean wall time of the models that finished in this
run times the models still to run (the current one included): models differ in size, so it
is a rough guide, and there is none before the first model finished.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import signal
import statistics
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from parity import jobs, runner, summary
from parity.catalog import CATALOG, get_spec
from parity.errors import ParityError
from parity.fileio import write_text_atomic
from parity.runner import RunOptions

SUMMARY_FILE = "summary.md"
PARTS = tuple(sorted({spec.part for spec in CATALOG.values()}))
INTERRUPTED_EXIT = 130  # the shell's code for a command stopped by SIGINT
FAILED_EXIT = 1

# What became of a model in a course run.
RAN, FAILED, DONE, CANNOT_RUN = "ran", "failed", "done before", "cannot run"

Log = Callable[[str], None]


def print_line(line: str) -> None:
    """Print `line` at once, also into a pipe or a log file, where stdout is buffered."""
    print(line, flush=True)


@dataclass(frozen=True)
class Outcome:
    """One model of a course run: its status (RAN, FAILED, DONE, CANNOT_RUN) and a one-line note (the report, the
    error, or why it was skipped), with its wall time when it ran in this run."""

    model: str
    status: str
    note: str
    wall_s: float | None = None


@dataclass
class CourseRun:
    """What a course run did: each model's outcome in run order, whether Ctrl-C stopped it, the summary file."""

    outcomes: list[Outcome] = field(default_factory=list)
    interrupted: bool = False
    summary_path: Path | None = None

    def with_status(self, status: str) -> list[Outcome]:
        return [outcome for outcome in self.outcomes if outcome.status == status]

    @property
    def exit_code(self) -> int:
        """130 when interrupted, 1 when a model failed, else 0 (skipped models are no failure)."""
        if self.interrupted:
            return INTERRUPTED_EXIT
        return FAILED_EXIT if self.with_status(FAILED) else 0


# ---------------------------------------------------------------------------- selection and settings


def select_models(model_ids: Sequence[str] = (), *, all_models: bool = False, part: int | None = None) -> list[str]:
    """The ids a run covers, in catalog order for `all_models` or `part`, else the ids given (repeats dropped).

    Unknown ids raise UnknownModelError (with the valid ids); giving none, or ids beside --all or --part,
    raises ParityError.
    """
    chosen = [flag for flag, given in (("--all", all_models), ("--part", part is not None), ("model ids", model_ids))
              if given]
    if len(chosen) != 1:
        what = "nothing" if not chosen else " and ".join(chosen)
        raise ParityError(f"`parity run` got {what}: name one or more model ids (see `parity list`), or --all, "
                          "or --part N, exactly one of these")
    if all_models:
        return list(CATALOG)
    if part is not None:
        if part not in PARTS:
            raise ParityError(f"there is no course part {part}; the parts are {', '.join(map(str, PARTS))}")
        return [spec.id for spec in CATALOG.values() if spec.part == part]
    return list(dict.fromkeys(get_spec(model_id).id for model_id in model_ids))


def request_settings(model_id: str, options: RunOptions) -> dict[str, Any]:
    """What running `model_id` under `options` asks for, as plain JSON values: the report's `request` block.

    The epochs are resolved (the course's when none were given; None for a model that trains no network),
    the data directories made absolute ($PARITY_DATA_DIR included: the loaders read it). Output location
    and verbosity are left out: they do not change the results.
    """
    spec = get_spec(model_id)
    series = options.series
    data_root = os.environ.get("PARITY_DATA_DIR")
    return {
        "model": spec.id,
        "epochs": (options.epochs or spec.epochs) if spec.trainable else None,
        "seeds": options.seeds,
        "mode": options.alignment.mode,
        "native_differences": options.alignment.to_job(),
        "data": {"synthetic": options.synthetic,
                 "data_dir": None if options.data_dir is None else str(Path(options.data_dir).resolve()),
                 "data_root": str(Path(data_root).resolve()) if data_root else None},
        "learning_rate": options.learning_rate,
        **({"vocab": options.vocab if options.vocab == "course" else str(Path(options.vocab).resolve())}
           if options.vocab else {}),
        "series": None if series is None else dataclasses.asdict(series),
        "device": options.device,
        "threads": options.threads,
        # Only when asked for, so that reports written before these flags existed keep their request.
        **({"early_stopping": dataclasses.asdict(options.early_stopping)} if options.early_stopping else {}),
        **({"checkpoint": options.checkpoint} if options.checkpoint else {}),
        **({"save": True} if options.save else {}),
        **({"frameworks": list(options.frameworks)} if options.frameworks != jobs.FRAMEWORKS else {}),
    }


def options_for(model_id: str, options: RunOptions) -> RunOptions:
    """`options` with the request of `model_id`, which the runner records in its report."""
    return dataclasses.replace(options, request=request_settings(model_id, options))


def cannot_run_reason(model_id: str) -> str | None:
    """Why the harness cannot run `model_id` whatever the frameworks build (None when it can try)."""
    spec = get_spec(model_id)
    return None if runner.trains_no_network(spec) else runner.missing_support(spec)


def unimplemented(model_ids: Sequence[str], options: RunOptions) -> dict[str, str]:
    """Of `model_ids`, those a framework has no builder for, with the reason (starts each framework once)."""
    rows = {row["id"]: row for row in runner.describe_models(options.device, options.threads)}
    reasons = {}
    for model_id in model_ids:
        missing = [framework for framework, built in rows[model_id]["implemented"].items() if not built]
        if missing:
            reasons[model_id] = (f"{model_id} is not implemented yet in {' and '.join(missing)}; "
                                 "`parity list` shows what is implemented")
    return reasons


# ---------------------------------------------------------------------------- resuming


@dataclass(frozen=True)
class Previous:
    """What OUT holds for a model: whether it counts as done, and a one-line note ('' when there is no report)."""

    done: bool
    note: str


def previous_run(model_id: str, options: RunOptions) -> Previous:
    """Whether OUT/MODEL/report.json records the same request as running `model_id` under `options` would."""
    path = Path(options.out_dir) / model_id / "report.json"
    if not path.is_file():
        return Previous(False, "")
    try:
        report = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as error:
        return Previous(False, f"its report {path} is unreadable ({error}); running it again")
    recorded = report.get("request") if isinstance(report, dict) else None
    if isinstance(recorded, dict) and report.get("status") in runner.INCOMPLETE_STATUSES:
        return Previous(False, f"its report is incomplete ({report.get('status_note')}); running it again")
    if not isinstance(recorded, dict):
        return Previous(False, f"its report {path} records no request (written before course runs); running it again")
    wanted = json.loads(json.dumps(request_settings(model_id, options)))
    differences = _differences(recorded, wanted)
    if differences:
        return Previous(False, f"its report was made with other settings ({'; '.join(differences)}); running it again")
    return Previous(True, f"{path} has the same settings (created {report.get('created', '?')}); "
                          "--force runs it again")


def _differences(recorded: Mapping[str, Any], wanted: Mapping[str, Any], prefix: str = "") -> list[str]:
    """'epochs 5 -> 1', 'data.synthetic false -> true': each setting that differs, nested blocks by dotted name."""
    lines = []
    for key in sorted(set(recorded) | set(wanted)):
        old, new = recorded.get(key), wanted.get(key)
        if isinstance(old, Mapping) and isinstance(new, Mapping):
            lines += _differences(old, new, f"{prefix}{key}.")
        elif old != new:
            lines.append(f"{prefix}{key} {json.dumps(old)} -> {json.dumps(new)}")
    return lines


# ---------------------------------------------------------------------------- running


def duration(seconds: float) -> str:
    """'42 s', '12 min', '1.5 h'."""
    if seconds < 100:
        return f"{seconds:.0f} s"
    if seconds < 100 * 60:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def progress_line(index: int, total: int, model_id: str, ran_s: Sequence[float], failed: int) -> str:
    """'[3/9] c1w3_fmnist_cnn: starting (2 done, 0 failed, 6 left; ETA ~12 min)': no ETA before a model finished.

    `ran_s`: the wall times of the models that finished in this run; the ETA is their mean times the
    models still to run, this one included.
    """
    left = total - index
    eta = f"; ETA ~{duration(statistics.fmean(ran_s) * (left + 1))}" if ran_s else ""
    return f"[{index}/{total}] {model_id}: starting ({len(ran_s)} done, {failed} failed, {left} left{eta})"


def _one_line(error: BaseException) -> str:
    text = " ".join(str(error).split()) or "no message"
    if isinstance(error, ParityError):
        return text
    return f"{type(error).__name__}: {text} (unexpected; `parity run MODEL` of this model alone shows the traceback)"


@contextlib.contextmanager
def _noting_interrupts() -> Iterator[threading.Event]:
    """An event set by Ctrl-C (SIGINT), which still raises KeyboardInterrupt as usual: a terminal sends SIGINT to
    the workers as well, so a worker's error that reaches us first is then known to be the interruption."""
    interrupted = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield interrupted
        return

    def note(signum: int, frame: Any) -> None:
        interrupted.set()
        signal.default_int_handler(signum, frame)

    previous = signal.signal(signal.SIGINT, note)
    try:
        yield interrupted
    finally:
        signal.signal(signal.SIGINT, previous)


def _plan(model_ids: Sequence[str], options: RunOptions, force: bool, course: CourseRun,
          find_unimplemented: Callable[[Sequence[str], RunOptions], Mapping[str, str]], log: Log) -> list[str]:
    """The models to run; the others go to `course` as done before or cannot run, each said in one line."""
    candidates = []
    for model_id in model_ids:
        reason = cannot_run_reason(model_id)
        previous = Previous(False, "") if force or reason else previous_run(model_id, options)
        if reason:
            course.outcomes.append(Outcome(model_id, CANNOT_RUN, reason))
        elif previous.done:
            course.outcomes.append(Outcome(model_id, DONE, previous.note))
            log(f"skipped {model_id}: done, {previous.note}")
        else:
            if previous.note:
                log(f"{model_id}: {previous.note}")
            candidates.append(model_id)
    trained = [model_id for model_id in candidates if not runner.trains_no_network(get_spec(model_id))]
    gaps = find_unimplemented(trained, options) if trained else {}
    for model_id, reason in gaps.items():
        course.outcomes.append(Outcome(model_id, CANNOT_RUN, reason))
    for outcome in course.with_status(CANNOT_RUN):
        log(f"skipped {outcome.model}: {outcome.note}")
    return [model_id for model_id in candidates if model_id not in gaps]


def run_course(model_ids: Sequence[str], options: RunOptions, *, force: bool = False,
               run: Callable[[str, RunOptions], Path] = runner.run_model,
               find_unimplemented: Callable[[Sequence[str], RunOptions], Mapping[str, str]] = unimplemented,
               log: Log = print_line) -> CourseRun:
    """Run each of `model_ids` (see the module docstring); write OUT/summary.md and return what happened.

    `run` trains one model and returns its report directory (runner.run_model); `find_unimplemented`
    names the models a framework cannot build (`unimplemented`); `log` prints a line.
    """
    course = CourseRun()
    started = time.monotonic()
    to_run = _plan(model_ids, options, force, course, find_unimplemented, log)
    log(f"course run: {len(model_ids)} model(s): {len(to_run)} to run, {len(course.with_status(DONE))} done before, "
        f"{len(course.with_status(CANNOT_RUN))} cannot run; reports in {options.out_dir}")
    ran_s: list[float] = []
    with _noting_interrupts() as interrupted:
        for index, model_id in enumerate(to_run, start=1):
            model_started = time.monotonic()
            try:
                log(progress_line(index, len(to_run), model_id, ran_s, len(course.with_status(FAILED))))
                report_dir = run(model_id, options_for(model_id, options))
            except KeyboardInterrupt:
                course.interrupted = True
            except Exception as error:  # one model's failure, whatever it is, must not stop the others
                course.interrupted = interrupted.is_set()
                if not course.interrupted:
                    wall_s = time.monotonic() - model_started
                    course.outcomes.append(Outcome(model_id, FAILED, _one_line(error), wall_s))
                    log(f"{model_id}: FAILED after {duration(wall_s)}: {_one_line(error)}")
                    continue
            else:
                ran_s.append(time.monotonic() - model_started)
                course.outcomes.append(Outcome(model_id, RAN, str(report_dir / "report.md"), ran_s[-1]))
                log(f"{model_id}: finished in {duration(ran_s[-1])}; report: {report_dir / 'report.md'}")
                continue
            log(_interrupted_line(model_id, options, course))
            break
    order = {model_id: index for index, model_id in enumerate(model_ids)}
    course.outcomes.sort(key=lambda outcome: order[outcome.model])
    for line in closing_lines(course, time.monotonic() - started):
        log(line)
    course.summary_path = write_summary(course, Path(options.out_dir), log)
    return course


def _interrupted_line(model_id: str, options: RunOptions, course: CourseRun) -> str:
    """What Ctrl-C left of the model it stopped. Its report is swapped in whole or not at all; when Ctrl-C came
    after that (while the runner cleaned up), the model counts as done."""
    previous = previous_run(model_id, options)
    if previous.done:
        course.outcomes.append(Outcome(model_id, DONE, previous.note))
        left = "its report was complete before the interruption"
    elif previous.note.startswith("its report is incomplete"):  # parity.runner.RunInterrupted: finished seeds kept
        left = f"{previous.note.removesuffix('; running it again')}, kept as a partial report"
    else:
        left = f"no report of it was written (its logs may stay in a hidden .work-{model_id}-* folder)"
    return (f"interrupted during {model_id}: {left}; finished models are kept: run the same command again "
            "to resume")


def closing_lines(course: CourseRun, wall_s: float) -> list[str]:
    """The counts, then each failed model with its error."""
    state = "stopped by Ctrl-C" if course.interrupted else "finished"
    counts = ", ".join(f"{len(course.with_status(status))} {status}" for status in (RAN, FAILED, DONE, CANNOT_RUN))
    lines = [f"course run {state} after {duration(wall_s)}: {counts}"]
    failed = course.with_status(FAILED)
    if failed:
        lines += ["failed:", *(f"  {outcome.model}: {outcome.note}" for outcome in failed)]
    return lines


# ---------------------------------------------------------------------------- summary


def write_summary(course: CourseRun, out_dir: Path, log: Log = print_line) -> Path:
    """OUT/summary.md: the `parity report` table over the models that ran or were done before (printed as well),
    then each model's outcome in this run."""
    reports = [out_dir / outcome.model for outcome in course.outcomes if outcome.status in (RAN, DONE)]
    table = ""
    if reports:
        try:
            rows = summary.summarize(reports, warn=lambda message: print(f"parity: warning: {message}",
                                                                          file=sys.stderr, flush=True))
            table = summary.render_markdown(rows)
        except ParityError as error:
            log(f"no summary table: {error}")
    if table:
        log(table.rstrip("\n"))
    text = "\n".join([table.rstrip("\n") or "# Parity summary", "", "## Course run", "", *outcome_lines(course), ""])
    path = out_dir / SUMMARY_FILE
    write_text_atomic(path, text)
    log(f"summary: {path}")
    return path


def outcome_lines(course: CourseRun) -> list[str]:
    """One Markdown list item per model: what became of it in this run."""
    lines = []
    for outcome in course.outcomes:
        took = f" in {duration(outcome.wall_s)}" if outcome.wall_s is not None else ""
        lines.append(f"- {outcome.model}: {outcome.status}{took}: {outcome.note}")
    if course.interrupted:
        lines.append("- stopped by Ctrl-C before the remaining models")
    return lines
