"""The three flows of the CLI: describe the catalog, check forward parity, run the trainings.

Data is prepared here once, in numpy; each framework runs in its own worker process
(parity.jobs) and everything comes back as files, then goes into the report. `check` and `run`
compare the frameworks given (`--frameworks`, default keras and lightning): every pair of them,
jobs going to the workers in parity.jobs.run_order (the weights source first). A series model's
report also holds each run's forecast of the validation period and the statistical baselines
over the same steps; a model that trains no network (c4w1_stat_forecast) gets the baselines alone.
"""

from __future__ import annotations

import functools
import json
import platform
import statistics
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from parity import align, compare, inception, jobs, model_facts, progress, provenance, saved_models
from parity.explain import tensorflow_runtime_forms
from parity.baselines import baseline_forecasts, baseline_settings
from parity.catalog import CATALOG, ModelSpec, get_spec
from parity.datasets import DataSplit, load_dataset, stand_in_overrides, supported_datasets
from parity.datasets.series import SeriesOptions, series_of, window_of
from parity.errors import ParityError, WorkerError
from parity.fileio import staging_dir
from parity.plan import collate
from parity.report import (build_baselines_report, build_report, final_key, final_value, forecast_record, primary_pair,
                           seeds_text, write_report)
from parity.spec_types import SeriesData, TextData

PROBE_SIZE = 256  # validation samples on which the initial Keras and torch outputs are compared
CHECK_SEED = 0
DEFAULT_PATIENCE = 3  # `--early-stopping METRIC` without a patience (Lightning's default; the course uses 2 to 5)
CHECKPOINT_KINDS = ("best", "last")
CHECKPOINT_DIR = "checkpoints"  # OUT/MODEL/checkpoints: `--checkpoint` files of both frameworks
# report.json `status` of a run that stopped before every seed finished (parity.report.run_status): a course run
# runs such a model again. A `diverged` run is complete: its report is the measurement.
INCOMPLETE_STATUSES = ("failed", "partial")


@dataclass(frozen=True)
class EarlyStopping:
    """`--early-stopping METRIC[:PATIENCE[:MIN_DELTA]]`: stop once `patience` epochs in a row did not improve
    `monitor` by more than `min_delta`, then restore the best epoch's weights (both frameworks)."""

    monitor: str
    patience: int = DEFAULT_PATIENCE
    min_delta: float = 0.0

    def to_job(self) -> dict[str, Any]:
        return {"monitor": self.monitor, "patience": self.patience, "min_delta": self.min_delta}


@dataclass(frozen=True)
class RunOptions:
    """What `parity run` was asked for (epochs None = the course's epochs)."""

    epochs: int | None = None
    seeds: int = 1
    alignment: align.Alignment = align.ALIGNED
    data_dir: str | None = None
    synthetic: bool = False
    device: str = "cpu"
    threads: int = 1
    out_dir: Path = Path("runs")
    verbose: int = 1  # 0 (`--quiet`): the console gets one summary line per framework, the logs every epoch
    learning_rate: float | None = None  # `--lr`: replaces the optimizer's rate in both frameworks (None: the spec's)
    series: SeriesOptions | None = None  # `--series`, `--series-column`, `--time-column` (None: the spec's series)
    vocab: str | None = None  # `--vocab`: a subword vocabulary file, or "course" (None: learnt from the data)
    weights: str | None = None  # `--weights`: the pretrained trunk's .h5 (None: the course's file, cached or downloaded)
    save: bool = False  # `--save`: keep each seed's trained models and their inputs record in OUT/MODEL/models
    early_stopping: EarlyStopping | None = None  # `--early-stopping`
    checkpoint: str | None = None  # `--checkpoint best|last`: files in OUT/MODEL/checkpoints
    # What the command asked for, copied into report.json as `request` (parity.course_run compares it to resume).
    request: dict[str, Any] | None = None
    # The command line that started the run (`parity`, its arguments), recorded in report.json as `command`.
    command: tuple[str, ...] = ()
    frameworks: tuple[str, ...] = jobs.FRAMEWORKS  # `--frameworks`, in display order (parity.jobs.parse_frameworks)


def _tell(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def describe_models(device: str = "cpu", threads: int = 1, workers: jobs.WorkerPool | None = None,
                    notify: Callable[[str], None] = _tell) -> list[dict[str, Any]]:
    """Every course model with whether each framework implements it and its parameter count there.

    The frameworks' answers come from the model-facts cache (parity.model_facts) when it holds this code
    version's, without starting either framework; otherwise from a `describe` job in each worker, once, and
    `notify` (default: stderr) says so. `workers`: ask these (already started) workers instead of a new pool.
    """
    candidates = supported_ids()

    def ask_workers() -> model_facts.Answers:
        with jobs.worker_pool(device=device, threads=threads, quiet=True, reuse=workers) as pool, \
                jobs.work_directory("parity-describe-") as workdir:
            job = {"kind": "describe", "models": candidates, "spec_overrides": stand_in_overrides(candidates)}
            answers = {framework: pool.run(framework, job, workdir) for framework in jobs.FRAMEWORKS}
        return {framework: {"architectures": answer["architectures"], "params": answer["params"]}
                for framework, answer in answers.items()}

    answers = model_facts.framework_facts(candidates, ask_workers, notify)
    return [
        {
            "id": spec.id,
            "part": spec.part,
            "week": spec.week,
            "title": spec.title,
            "dataset": spec.dataset,
            "task": spec.task,
            "course_params": spec.course_params,
            "variant_of": spec.variant_of,
            "implemented": {fw: spec.id in answers[fw]["params"] for fw in jobs.FRAMEWORKS},
            "params": {fw: answers[fw]["params"].get(spec.id) for fw in jobs.FRAMEWORKS},
        }
        for spec in CATALOG.values()
    ]


def supported_ids() -> list[str]:
    """The ids whose recipe the harness can run, given builders in both frameworks (`missing_support` is None)."""
    return [spec.id for spec in CATALOG.values() if missing_support(spec) is None]


def implemented_ids(device: str = "cpu", threads: int = 1, workers: jobs.WorkerPool | None = None) -> list[str]:
    """The ids that both frameworks build and whose data has a loader."""
    return [row["id"] for row in describe_models(device, threads, workers) if all(row["implemented"].values())]


def missing_support(spec: ModelSpec) -> str | None:
    """Why the harness cannot run `spec`'s recipe yet (None when it can, given builders in both frameworks)."""
    if not spec.trainable:
        return f"{spec.id} trains no network in the course ({spec.reference.text}); nothing to compare"
    if spec.dataset not in supported_datasets():
        return f"{spec.id} is not implemented yet (no loader for its data set {spec.dataset!r})"
    return None


def _require_implemented(spec: ModelSpec) -> None:
    reason = missing_support(spec)
    if reason is not None:
        raise ParityError(f"{reason}; `parity list` shows what is implemented")


def forward_check(model_ids: list[str], seeds: list[int], workers: jobs.WorkerPool, workdir: Path,
                  reported: dict[str, dict[str, Any]] | None = None,
                  spec_overrides: dict[str, Any] | None = None,
                  frameworks: tuple[str, ...] = jobs.FRAMEWORKS) -> list[dict[str, Any]]:
    """Forward parity on random weights: every variable of the weights source's Keras model drawn at random
    (seeded), the others loading its export by name, outputs compared on the probe inputs already in `workdir`
    (inference, and training mode with dropout off for BatchNorm/dropout models), for every pair of `frameworks`.
    One row per model, seed, pair and mode, with its tolerance and verdict; rows of a pair with lightning carry
    the transfer's counts (every Keras variable read, every torch tensor assigned). Rows name their `pair`
    (parity.jobs.pair_key) unless `frameworks` is the default pair, whose rows keep their shape. `reported`, when
    given, receives each framework's `device` and `versions` as its worker answered. `spec_overrides`: the sizes
    the data fixed, per model id (`DataSplit.spec_overrides`)."""
    rows = []
    labelled = tuple(frameworks) != jobs.FRAMEWORKS
    for seed in seeds:
        job = {"kind": "forward", "models": model_ids, "seed": seed, "spec_overrides": spec_overrides or {},
               "weights_source": jobs.weights_source(frameworks)}
        answers = {framework: workers.run(framework, job, workdir) for framework in jobs.run_order(frameworks)}
        if reported is not None:
            reported.update({fw: {"device": answer["device"], "versions": answer["versions"]}
                             for fw, answer in answers.items()})
        transfers = answers["lightning"]["transfers"] if "lightning" in answers else {}
        for model_id in model_ids:
            for pair in jobs.framework_pairs(frameworks):
                label = {"pair": jobs.pair_key(pair)} if labelled else {}
                transfer = {"transfer": transfers[model_id]} if "lightning" in pair else {}
                rows += [{"model": row["model"], **label, **row, "seed": seed, **transfer}
                         for row in compare.forward_check_rows(workdir, model_id, seed, pair)]
    return rows


def forward_max_abs_diff(rows: list[dict[str, Any]], pair: tuple[str, str] = jobs.FRAMEWORKS) -> float:
    """The largest inference-mode max abs diff of `pair`'s rows of the forward check (a row without a `pair` is the
    default pair's)."""
    key = jobs.pair_key(pair)
    return max(row["max_abs_diff"] for row in rows if row["mode"] == "inference" and row.get("pair", key) == key)


def check_models(model_ids: list[str], device: str = "cpu", threads: int = 1,
                 workers: jobs.WorkerPool | None = None, vocab: str | None = None,
                 frameworks: tuple[str, ...] = jobs.FRAMEWORKS) -> list[dict[str, Any]]:
    """`parity check`: the forward check of each model on its synthetic stand-in's inputs (no download), between
    every pair of `frameworks` (`--frameworks`); `vocab` encodes a subword model's stand-in with that vocabulary
    (`--vocab`), which sizes its Embedding."""
    specs = [get_spec(model_id) for model_id in model_ids]
    for spec in specs:
        _require_implemented(spec)
    with jobs.worker_pool(device=device, threads=threads, quiet=True, reuse=workers) as workers, \
            jobs.work_directory("parity-check-") as workdir:
        overrides: dict[str, Any] = {}
        for spec in specs:
            # The synthetic stand-in has the real data's shapes, dtypes and value range, and needs no download.
            split = load_dataset(spec, synthetic=True, vocab=vocab)
            np.save(jobs.probe_inputs_path(workdir, spec.id), split.probe_inputs(PROBE_SIZE))
            overrides.update(split.spec_overrides(spec.id))
        return forward_check([spec.id for spec in specs], [CHECK_SEED], workers, workdir, spec_overrides=overrides,
                             frameworks=frameworks)


def require_forward_parity(spec: ModelSpec, rows: list[dict[str, Any]], workdir: Path) -> None:
    """Raise (before any training) unless every forward-check row of `spec` passed: a comparison of two
    models that do not compute the same function would be reported as a framework difference."""
    failed = [row for row in rows if not row["passed"]]
    if failed:
        worst = max(failed, key=lambda row: row["max_abs_diff"])
        pair = f"{worst['pair']}, " if "pair" in worst else ""
        raise ParityError(
            f"{spec.id}: the forward check failed ({len(failed)} of {len(rows)} checks; worst: seed {worst['seed']}, "
            f"{pair}{worst['mode']} mode, max abs diff {worst['max_abs_diff']:.3g} > tolerance {worst['tolerance']:.3g}), "
            "so the weights do not reach torch as Keras has them and a comparison would mean nothing; nothing was "
            f"trained or reported. Run `parity check {spec.id}`; files kept in {workdir}")


def _samples_per_s(run: dict[str, Any], train_size: int, batch_size: int) -> float:
    """Training samples per second of epoch time (training plus that epoch's validation), median after epoch 1.

    A run whose loss went non-finite ended in a partial epoch: the complete epochs before it, or without one, the
    samples of that partial epoch over its time."""
    seconds = run["epoch_seconds"]
    diverged = run.get("diverged")
    if diverged and diverged["step"] * batch_size < train_size:
        if len(seconds) == 1:
            return diverged["step"] * batch_size / seconds[0]
        seconds = seconds[:-1]
    seconds = seconds[1:] or seconds
    return train_size / statistics.median(seconds)


def _summary_line(framework: str, spec: ModelSpec, answer: dict[str, Any]) -> str:
    runs = answer["runs"]
    key = final_key(runs[0], spec.metric) if runs else f"val_{spec.metric}"
    finals = [final_value(run, key) for run in runs]
    epochs = "/".join(str(run["epochs_run"]) for run in runs)
    stopped = " (course callback stopped it)" if any(run["stopped_early"] for run in runs) else ""
    diverged = [f"seed {run['seed']} at epoch {run['diverged']['epoch']} step {run['diverged']['step']}"
                for run in runs if run.get("diverged")]
    if diverged:
        stopped += f" (loss non-finite: {', '.join(diverged)})"
    stops = [run["early_stopping"] for run in runs if run.get("early_stopping")]
    if stops:
        stopped += " (early stopping: " + "/".join(
            f"{'stopped at ' + str(stop['stopped_epoch']) if stop['stopped_epoch'] else 'ran out'}, best epoch "
            f"{stop['best_epoch']} restored" for stop in stops) + ")"
    return (f"{framework}: {spec.id}, {len(runs)} seed(s), epochs {epochs}{stopped}, "
            f"final {key} {statistics.fmean(finals):.4f}, "
            f"{statistics.fmean(run['train_samples_per_s'] for run in runs):,.0f} samples/s, "
            f"wall {sum(run['wall_s'] for run in runs):.1f} s")


def monitor_choices(spec: ModelSpec, has_validation: bool) -> tuple[str, ...]:
    """What `--early-stopping` and `--checkpoint best` can monitor for `spec`: the logged loss and metric."""
    train = ("loss", spec.metric)
    return (*train, *(f"val_{key}" for key in train)) if has_validation else train


def stopping_job(spec: ModelSpec, split: DataSplit, options: RunOptions, checkpoint_dir: Path) -> dict[str, Any]:
    """The train job's `early_stopping` and `checkpoint` settings; `--checkpoint best` monitors the early-stopping
    metric, else val_loss (loss without validation data). A metric the run does not log is an error."""
    choices = monitor_choices(spec, split.val is not None)
    stopping = options.early_stopping
    if stopping is not None and stopping.monitor not in choices:
        missing = "" if split.val is not None else " (this run has no validation data, so no val_ values)"
        raise ParityError(f"{spec.id}: --early-stopping cannot monitor {stopping.monitor!r}{missing}; use one of "
                          f"{', '.join(choices)}, e.g. --early-stopping {choices[-1]}:{DEFAULT_PATIENCE}")
    if options.checkpoint not in (None, *CHECKPOINT_KINDS):
        raise ParityError(f"--checkpoint must be one of {', '.join(CHECKPOINT_KINDS)}, got {options.checkpoint!r}")
    monitor = stopping.monitor if stopping else ("val_loss" if split.val is not None else "loss")
    return {"early_stopping": stopping.to_job() if stopping else None,
            "checkpoint": None if options.checkpoint is None else
            {"kind": options.checkpoint, "monitor": monitor, "dir": str(checkpoint_dir)}}


def _dataset_info(spec: ModelSpec, split: DataSplit) -> dict[str, Any]:
    """The data set's sizes and the loader's notes; the files read and generating parameters go to the provenance."""
    notes = {key: value for key, value in split.info.items() if key not in ("files", "generator")}
    return {"id": spec.dataset, "source": split.source, "train_size": len(split.train), "val_size": split.val_size,
            "location": split.location, **notes}


def _spec_info(spec: ModelSpec, epochs: int, learning_rate: float | None = None) -> dict[str, Any]:
    """The recipe as run: `learning_rate` (`--lr`) replaces the course's, which is kept beside it."""
    optimizer = spec.optimizer
    rate = optimizer.learning_rate if learning_rate is None else learning_rate
    return {
        "title": spec.title,
        "reference": spec.reference.text,
        "reference_val_metric": spec.reference.val_metric,
        "epochs": epochs,
        "course_epochs": spec.epochs,
        "batch_size": spec.batch_size,
        "optimizer": f"{optimizer.name}(lr={rate:g}, momentum={optimizer.momentum:g})",
        "learning_rate": rate,
        "course_learning_rate": optimizer.learning_rate,
        "learning_rate_overridden": learning_rate is not None,
        "loss": spec.loss,
        "metric": spec.metric,
        "stop": spec.stop.describe() if spec.stop else None,
        "probe_x": list(getattr(spec.data, "probe_x", ())),
    }


def forecasts_series(spec: ModelSpec) -> bool:
    """Whether `spec` forecasts a series (regression on windows of SeriesData): its runs forecast the validation
    period and its report sets them beside the statistical baselines."""
    return spec.task == "regression" and isinstance(spec.data, SeriesData)


def computes_baselines_only(spec: ModelSpec) -> bool:
    """Whether the course computes statistical forecasts only for `spec` (c4w1_stat_forecast): no network."""
    return not spec.trainable and isinstance(spec.data, SeriesData) and spec.data.baselines is not None


def computes_preprocessing_only(spec: ModelSpec) -> bool:
    """Whether the course only tokenizes and pads for `spec` (c3w1_text_preproc): no network, no training."""
    return not spec.trainable and isinstance(spec.data, TextData)


def trains_no_network(spec: ModelSpec) -> bool:
    """Whether `parity run` computes `spec`'s course steps without a framework: baselines or preprocessing."""
    return computes_baselines_only(spec) or computes_preprocessing_only(spec)


def run_preprocessing(spec: ModelSpec, options: RunOptions) -> Path:
    """`parity run c3w1_text_preproc`: the tokenization and padding walkthrough (parity.text_preproc), as
    `parity preproc` writes it: OUT/c3w1_text_preproc/preproc.{json,md}."""
    from parity import text_preproc

    unused = [flag for flag, value in (("--epochs", options.epochs), ("--lr", options.learning_rate),
                                       ("--synthetic", options.synthetic), ("--save", options.save)) if value]
    if unused:
        print(f"parity: note: {spec.id} trains no network, so {', '.join(unused)} do(es) not apply to it",
              file=sys.stderr, flush=True)
    result = text_preproc.walkthrough(options.data_dir)
    print(f"{spec.id}: the course's tokenization and padding steps, ours beside the course's expected values",
          flush=True)
    return text_preproc.write_walkthrough(result, options.out_dir)


def validation_truth(split: DataSplit) -> np.ndarray:
    """The validation targets in order: for a series model, the true value of each step after the split."""
    return collate(split.val, np.arange(len(split.val)))[1].ravel()


def series_results(spec: ModelSpec, split: DataSplit) -> dict[str, Any]:
    """The validation period (its first step and true values) and the statistical baselines over it."""
    series, split_time = series_of(split, window_of(spec))
    truth = validation_truth(split)
    if not np.array_equal(series[split_time:], truth):
        raise ParityError(f"{spec.id}: the series rebuilt from the windows does not end in the validation targets "
                          f"({len(series) - split_time} steps after step {split_time}, {len(truth)} targets); "
                          "parity.datasets.series.series_of and windows must agree")
    return {"forecast": {"split_time": split_time, "truth": truth},
            "baselines": _baselines(spec, split, series, split_time)}


def _baselines(spec: ModelSpec, split: DataSplit, series: np.ndarray, split_time: int) -> list[dict[str, Any]]:
    """Each baseline's name, MAE, MSE and forecast (or why it was left out), with the course's MAE and MSE where
    the catalog gives them, for the course's own series (not a synthetic stand-in)."""
    try:
        settings = baseline_settings(spec, split)
    except ValueError as error:
        raise ParityError(str(error)) from None
    rows = []
    for name, result in baseline_forecasts(series, split_time, settings).items():
        row = {"name": name, "mae": result.mae, "mse": result.mse, "forecast": result.forecast,
               "left_out": result.left_out}
        if split.source == "real" and (settings.expected_mae is not None or settings.expected_mse is not None):
            row.update(expected_mae=(settings.expected_mae or {}).get(name),
                       expected_mse=(settings.expected_mse or {}).get(name))
        rows.append(row)
    return rows


def _forecast_line(answers: dict[str, dict[str, Any]], baselines: list[dict[str, Any]]) -> str:
    """'forecast MAE: keras 5.1, lightning 5.1 (mean over seeds); baselines: naive 5.94, ...'."""
    networks = ", ".join(f"{fw} {statistics.fmean(run['forecast']['mae'] for run in answers[fw]['runs']):.4f}"
                         for fw in jobs.in_display_order(answers))
    scored = ", ".join(f"{row['name']} {row['mae']:.4f}" for row in baselines if row["mae"] is not None)
    return f"forecast MAE: {networks} (mean over seeds); baselines: {scored or 'none'}"


def run_model(model_id: str, options: RunOptions) -> Path:
    """Train `model_id` in both frameworks on identical batches; write OUT/MODEL/{report.json,report.md,curves.png}
    (and forecast.png for a series model). A model that trains no network gets its baselines' report instead.

    Report `status` (parity.report.run_status): a run whose loss went non-finite is `diverged` (returned, with a
    warning on stderr). A worker that fails in training, or Ctrl-C, still writes the report of the seeds finished
    so far (`failed`, `partial`), then raises RunFailed / RunInterrupted naming it; with no seed finished nothing
    is written and the worker's error (or KeyboardInterrupt) is raised as it was."""
    spec = get_spec(model_id)
    if computes_baselines_only(spec):
        return run_baselines(spec, options)
    if computes_preprocessing_only(spec):
        return run_preprocessing(spec, options)
    _require_implemented(spec)
    trunk_weights = inception.trunk_weights(spec, options.weights)  # before the data: a missing file costs nothing
    epochs = options.epochs or spec.epochs
    split = load_dataset(spec, options.data_dir, options.synthetic, series=options.series, vocab=options.vocab)
    forecasting = forecasts_series(spec)
    series = series_results(spec, split) if forecasting else {}  # before training: a data error costs no time
    data = provenance.data_provenance(split)  # hashed once per run, whatever the number of seeds
    out_dir = Path(options.out_dir)
    seeds = list(range(options.seeds))
    out_dir.mkdir(parents=True, exist_ok=True)
    with staging_dir(out_dir, spec.id) as staging, jobs.work_directory(f".work-{spec.id}-", out_dir) as workdir:
        (staging / "logs").mkdir()
        data_file = jobs.save_data(workdir, split)
        np.save(jobs.probe_inputs_path(workdir, spec.id), split.probe_inputs(PROBE_SIZE))
        reported: dict[str, dict[str, Any]] = {}  # each framework's device and versions
        with jobs.worker_pool(device=options.device, threads=options.threads, quiet=True) as workers:
            check = forward_check([spec.id], seeds, workers, workdir, reported, split.spec_overrides(spec.id),
                                  options.frameworks)
        require_forward_parity(spec, check, workdir)
        print(f"forward check: {len(check)} of {len(check)} passed (largest max abs diff "
              f"{max(row['max_abs_diff'] for row in check):.2g}, random weights)", flush=True)
        job = {"kind": "train", "model": spec.id, "native": options.alignment.to_job(), "seeds": seeds, "epochs": epochs,
               "data": str(data_file), "log_dir": str(staging / "logs"),
               "tensorboard_dir": str(staging / progress.TENSORBOARD_DIR),
               "learning_rate": options.learning_rate, "forecast": forecasting,
               "weights_source": jobs.weights_source(options.frameworks),
               "save_to": str(staging) if options.save else None,
               "spec_overrides": inception.weights_overrides(spec, split.spec_overrides(spec.id), trunk_weights),
               **stopping_job(spec, split, options, staging / CHECKPOINT_DIR)}
        if options.save:  # before training: a model whose inputs cannot be recorded costs no training time
            saved_models.write_inputs(staging, saved_models.inputs_record(spec, split))
        training = train_frameworks(job, workdir, options, functools.partial(_finish_answer, spec, split, series))
        answers = training.answers
        if not answers:  # stopped before any seed finished: nothing to report (a failure keeps its logs here)
            raise training.failure if training.failure else KeyboardInterrupt
        if forecasting and len(training.complete) == len(options.frameworks):
            print(_forecast_line(answers, series["baselines"]), flush=True)
        saved = _saved_block(answers, len(np.load(jobs.probe_inputs_path(workdir, spec.id), mmap_mode="r")),
                             options.frameworks)
        if saved:
            print(_saved_line(saved), flush=True)
        for log in workdir.glob("*.log"):
            raw = log.read_bytes().decode(errors="replace")  # bytes: read_text would turn carriage returns into lines
            text = progress.readable_log(raw, gpus_hidden=options.device == "cpu")
            (staging / "logs" / log.name).write_text(text)
        results = {
            "model": spec.id,
            "mode": options.alignment.mode,
            "native_differences": options.alignment.to_job(),
            "tensorflow_runtime_forms": tensorflow_runtime_forms(spec),
            "seeds": seeds,
            "dataset": _dataset_info(spec, split),
            "frameworks": training.framework_blocks(),
            "forward_check": check,
            "forward_max_abs_diff": forward_max_abs_diff(check, primary_pair(options.frameworks)),
            "environment": _environment(reported, options),
            "spec": _spec_info(spec, epochs, options.learning_rate),
            "provenance": provenance.build_provenance(data, options.alignment, reported, options.threads,
                                                      spec.epochs, epochs, check, options.learning_rate,
                                                      provenance.weights_provenance(trunk_weights)),
            **series,
            **({"saved": saved} if saved else {}),
            **({"interrupted": {"by": "Ctrl-C"}} if training.interrupted else {}),
        }
        report = with_request(build_report(results), options)
        final = write_report(report, out_dir, staging=staging, name=report_name(out_dir, spec.id, report["status"]))
    return _outcome(report, final, training)


def report_name(out_dir: Path, model_id: str, status: str) -> str:
    """Where a run's report goes in OUT: OUT/MODEL, except that a failed or partial run never replaces a complete
    report there (nothing already computed is lost): it goes to OUT/MODEL.<status> instead."""
    if status in INCOMPLETE_STATUSES and _finished_report(out_dir / model_id / "report.json"):
        return f"{model_id}.{status}"
    return model_id


def _finished_report(path: Path) -> bool:
    """Whether `path` is a report whose runs all finished (complete or diverged; a report written before the status
    existed counts as finished)."""
    try:
        status = json.loads(path.read_text(encoding="utf-8")).get("status")
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, AttributeError, RecursionError):
        return False
    return status not in INCOMPLETE_STATUSES


class RunFailed(WorkerError):
    """A framework's worker failed during training; the report, written before this is raised, keeps the finished
    runs and marks the framework failed."""


class RunInterrupted(KeyboardInterrupt):
    """Ctrl-C stopped training; the partial report of the finished seeds was written before this is raised. Its
    text names the report."""


@dataclass
class Training:
    """What the train jobs gave: each framework's answer ({"params", "runs"}: every seed, or the seeds it had
    finished when the run stopped; a framework with none finished is absent), the failure that stopped the run
    (a worker's) and whether Ctrl-C did. The `frameworks` (display order) train one after another, in
    parity.jobs.run_order."""

    answers: dict[str, dict[str, Any]]
    complete: set[str]
    seeds: list[int]
    failure: jobs.WorkerFailed | None = None
    interrupted: bool = False
    frameworks: tuple[str, ...] = jobs.FRAMEWORKS

    def framework_status(self, framework: str) -> str:
        """'complete', 'failed', 'interrupted' (Ctrl-C came while it trained) or 'not run' (the run stopped before)."""
        if framework in self.complete:
            return "complete"
        if self.failure is not None:
            return "failed" if self.failure.framework == framework else "not run"
        started = [fw for fw in jobs.run_order(self.frameworks) if fw not in self.complete]
        return "interrupted" if started and started[0] == framework else "not run"

    def framework_blocks(self) -> dict[str, dict[str, Any]]:
        """The report's `frameworks` block: params, runs and status of each, and the failure of a failed one."""
        block = {}
        for fw in self.frameworks:
            answer = self.answers.get(fw, {})
            block[fw] = {"params": answer.get("params"), "runs": answer.get("runs", []),
                         "status": self.framework_status(fw)}
            if block[fw]["status"] == "failed":
                block[fw]["failure"] = _failure_record(self.failure, self.seeds, block[fw]["runs"])
        return block


def _failure_record(failure: jobs.WorkerFailed, seeds: list[int], runs: list[dict[str, Any]]) -> dict[str, Any]:
    """A failed framework's entry: the seed it was training (the first of `seeds` it had not finished), what ended
    it and its log (in OUT/MODEL/logs)."""
    finished = {run["seed"] for run in runs}
    return {"seed": next(seed for seed in seeds if seed not in finished), "cause": failure.cause,
            "signal": failure.signal,
            "exit_code": failure.returncode if failure.returncode is not None and failure.returncode >= 0 else None,
            "error": failure.error, "log": f"logs/{failure.log.name}"}


def train_frameworks(job: dict[str, Any], workdir: Path, options: RunOptions,
                     finish: Callable[[str, dict[str, Any]], None]) -> Training:
    """Run the train job in the worker of each of `options.frameworks` in turn (parity.jobs.run_order: the weights
    source first, as the others load its initial weights); `finish(framework, answer)` takes each answer as it
    arrives. A worker that fails, or Ctrl-C, stops the run (the worker is stopped); the seeds each framework had
    finished by then are kept (parity.jobs.finished_seeds) and finished too."""
    answers: dict[str, dict[str, Any]] = {}
    failure, interrupted = None, False
    order = jobs.run_order(options.frameworks)
    try:
        for framework in order:
            # Quiet: the workers' per-epoch lines go to their logs only; the console gets the summary lines.
            answer = jobs.run_worker(framework, job, workdir, device=options.device, threads=options.threads,
                                     quiet=options.verbose == 0)
            finish(framework, answer)
            answers[framework] = answer
    except jobs.WorkerFailed as error:
        failure = error
    except KeyboardInterrupt:
        interrupted = True
    complete = set(answers)
    for framework in order:
        finished = None if framework in answers else jobs.finished_seeds(workdir, framework, job["seeds"])
        if finished is not None:
            finish(framework, finished)
            answers[framework] = finished
    return Training(answers, complete, list(job["seeds"]), failure, interrupted, tuple(options.frameworks))


def _finish_answer(spec: ModelSpec, split: DataSplit, series: dict[str, Any], framework: str,
                   answer: dict[str, Any]) -> None:
    """Add the harness's numbers to each run of a framework's answer (samples/s, probe, forecast record) and print
    the framework's summary line."""
    for run in answer["runs"]:
        run["train_samples_per_s"] = _samples_per_s(run, len(split.train), spec.batch_size)
        predictions = run.pop("probe_predictions")
        if predictions is not None:
            run["probe"] = {"x": list(spec.data.probe_x), framework: predictions}
        forecast = run.pop("forecast")
        if forecast is not None:
            run["forecast"] = forecast_record(forecast, series["forecast"]["truth"], final_value(run, "val_mae"))
    print(_summary_line(framework, spec, answer), flush=True)


def _outcome(report: dict[str, Any], final: Path, training: Training) -> Path:
    """Return the report directory; first warn of diverged runs (exit 0), or raise RunFailed / RunInterrupted
    (non-zero exit) naming the report that keeps the finished runs."""
    where = final / "report.md"
    kept = (f" (the complete report in {final.parent / report['model']} is kept as it was)"
            if final.name != report["model"] else "")
    if training.failure is not None:
        failure = training.failure
        record = report["frameworks"][failure.framework]["failure"]
        finished = "; ".join(f"{fw}: {seeds_text([run['seed'] for run in report['frameworks'][fw]['runs']])}"
                             for fw in training.frameworks)
        raise RunFailed(f"the {failure.framework} worker failed while training {report['model']} seed "
                        f"{record['seed']} ({failure.cause}; log: {final / record['log']}); the report keeps the "
                        f"finished runs ({finished}) and marks {failure.framework} failed: {where}{kept}; run the "
                        "command again to retry")
    if training.interrupted:
        raise RunInterrupted(f"{report['status_note']}; report of the finished runs: {where}{kept}")
    if report["status"] == "diverged":
        rate = report["spec"]["learning_rate"]
        print(f"parity: warning: {report['status_note']}; a smaller --lr may train (this run's rate {rate:g}, "
              f"the course's {report['spec']['course_learning_rate']:g})", file=sys.stderr, flush=True)
    return final


def _saved_block(answers: dict[str, dict[str, Any]], probe_samples: int,
                 frameworks: tuple[str, ...] = jobs.FRAMEWORKS) -> dict[str, Any] | None:
    """The report's `saved` block, taken out of each run's record (None when the run saved nothing): per framework
    and seed the files kept in OUT/MODEL/models with their sizes, each reload and whether it predicts the
    `probe_samples` probe inputs bit for bit as the trained model did."""
    kept: dict[str, list[dict[str, Any]]] = {fw: [] for fw in frameworks}
    for fw in frameworks:
        for run in answers.get(fw, {}).get("runs", []):
            saved = run.pop("saved", None)
            if saved:
                kept[fw].append({"seed": run["seed"], **saved})
    if not any(kept.values()):
        return None
    return {"directory": saved_models.MODELS_DIR, "inputs": f"{saved_models.MODELS_DIR}/{saved_models.INPUTS_FILE}",
            "probe_samples": probe_samples, "frameworks": kept,
            "equal": all(row["equal"] for rows in kept.values() for row in rows)}


def _saved_line(saved: dict[str, Any]) -> str:
    """'saved models/: keras-seed0.keras 1,244,516 B, ...; reloaded bit for bit: yes'."""
    files = ", ".join(f"{entry['file']} {entry['bytes']:,} B" for rows in saved["frameworks"].values()
                      for row in rows for entry in row["files"])
    verdict = "yes" if saved["equal"] else "NO (see report.md, Saved models)"
    return f"saved {saved['directory']}/: {files}; reloaded predictions bit for bit: {verdict}"


def run_baselines(spec: ModelSpec, options: RunOptions) -> Path:
    """`parity run` of a model that trains no network: its statistical forecasts of the series (the course's, or
    `options.series`), their MAE/MSE beside the course's expected values; no worker is started."""
    unused = [flag for flag, value in (("--epochs", options.epochs), ("--lr", options.learning_rate)) if value]
    if unused:
        verb = "does" if len(unused) == 1 else "do"
        print(f"parity: note: {spec.id} trains no network, so {' and '.join(unused)} {verb} not apply to it",
              file=sys.stderr, flush=True)
    split = load_dataset(spec, options.data_dir, options.synthetic, series=options.series, vocab=options.vocab)
    series, split_time = series_of(split, window_of(spec))
    name = split.info.get("series")
    baselines = _baselines(spec, split, series, split_time)
    results = {
        "model": spec.id,
        # Sizes in steps of the series (before and after the split): no windows are trained on.
        "dataset": {"id": spec.dataset, "source": split.source, "train_size": split_time,
                    "val_size": len(series) - split_time, "location": split.location, "series": name,
                    "steps": len(series), "split_time": split_time,
                    "sha256": provenance.data_provenance(split)["sha256"]},
        "forecast": {"split_time": split_time, "truth": series[split_time:]},
        "baselines": baselines,
        "environment": {"python": platform.python_version(), "numpy": np.__version__, "platform": platform.platform()},
        "spec": {"title": spec.title, "reference": spec.reference.text, "series": name},
    }
    print(f"{spec.id}: {name} series, {len(series)} steps, forecasts of the {len(series) - split_time} steps from "
          f"step {split_time}:", flush=True)
    for row in baselines:
        expected = row.get("expected_mae")
        course = "" if expected is None else f" (course {expected:g})"
        errors = f"left out: {row['left_out']}" if row["left_out"] else f"MAE {row['mae']:.4f}{course}, MSE {row['mse']:.4f}"
        print(f"  {row['name']}: {errors}", flush=True)
    out_dir = Path(options.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    return write_report(with_request(build_baselines_report(results), options), out_dir)


def with_request(report: dict[str, Any], options: RunOptions) -> dict[str, Any]:
    """`report` with `options.request` as its `request` block (unchanged when the command recorded none) and
    the command line and working directory that started it as `command` (when known)."""
    if options.command:
        report = {**report, "command": {"argv": list(options.command), "cwd": str(Path.cwd())}}
    return report if options.request is None else {**report, "request": dict(options.request)}


def _environment(reported: dict[str, dict[str, Any]], options: RunOptions) -> dict[str, Any]:
    """Versions and devices as each framework's worker reported them (`reported`: forward_check's). keras and
    tensorflow are the Keras-on-TensorFlow worker's, torch and lightning the Lightning worker's; a framework left out
    leaves its versions to keras-torch (keras, torch) or None. With keras-torch, `keras-torch` names its keras,
    torch and Keras backend."""
    versions = {fw: reported[fw]["versions"] for fw in ("keras-torch", "keras", "lightning") if fw in reported}
    merged = {name: version for answer in versions.values() for name, version in answer.items()}
    environment = {
        "python": platform.python_version(),
        "tensorflow": merged.get("tensorflow"),
        "keras": merged.get("keras"),
        "torch": merged.get("torch"),
        "lightning": merged.get("lightning"),
        "device": "; ".join(f"{fw}: {reported[fw]['device']}" for fw in options.frameworks),
        "threads": options.threads,
        "platform": platform.platform(),
    }
    if "keras-torch" in versions:
        own = versions["keras-torch"]
        environment["keras-torch"] = (f"keras {own.get('keras')}, torch {own.get('torch')}, "
                                      f"Keras backend {own.get('keras_backend')}")
    return environment
