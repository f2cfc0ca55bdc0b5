"""The three flows of the CLI: describe the catalog, check forward parity, run both trainings.

Data is prepared here once, in numpy; each framework runs in its own worker process
(parity.jobs) and everything comes back as files, then goes into the report.
"""

from __future__ import annotations

import platform
import shutil
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from parity import align, compare, jobs, provenance
from parity.catalog import CATALOG, ModelSpec, get_spec
from parity.datasets import DataSplit, load_dataset, supported_datasets
from parity.errors import ParityError
from parity.fileio import staging_dir
from parity.report import build_report, write_report

PROBE_SIZE = 256  # validation samples on which the initial Keras and torch outputs are compared
CHECK_SEED = 0


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
    verbose: int = 1


def describe_models(device: str = "cpu", threads: int = 1,
                    workers: jobs.WorkerPool | None = None) -> list[dict[str, Any]]:
    """Every course model with whether each framework implements it and its parameter count there.

    `workers`: run in these (already started) workers instead of starting a pool for this call.
    """
    candidates = [spec.id for spec in CATALOG.values() if missing_support(spec) is None]
    with jobs.worker_pool(device=device, threads=threads, quiet=True, reuse=workers) as workers, \
            jobs.work_directory("parity-describe-") as workdir:
        answers = {framework: workers.run(framework, {"kind": "describe", "models": candidates}, workdir)
                   for framework in jobs.FRAMEWORKS}
    return [
        {
            "id": spec.id,
            "part": spec.part,
            "week": spec.week,
            "title": spec.title,
            "dataset": spec.dataset,
            "task": spec.task,
            "course_params": spec.course_params,
            "implemented": {fw: spec.id in answers[fw]["params"] for fw in jobs.FRAMEWORKS},
            "params": {fw: answers[fw]["params"].get(spec.id) for fw in jobs.FRAMEWORKS},
        }
        for spec in CATALOG.values()
    ]


def implemented_ids(device: str = "cpu", threads: int = 1, workers: jobs.WorkerPool | None = None) -> list[str]:
    """The ids that both frameworks build and whose data has a loader."""
    return [row["id"] for row in describe_models(device, threads, workers) if all(row["implemented"].values())]


def missing_support(spec: ModelSpec) -> str | None:
    """Why the harness cannot run `spec`'s recipe yet (None when it can, given builders in both frameworks).

    A model whose course recipe needs a part not built yet (augmentation, a pretrained trunk's
    input scaling) is not offered without it: training it without would not be the course's model.
    """
    if not spec.trainable:
        return f"{spec.id} trains no network in the course ({spec.reference.text}); nothing to compare"
    if spec.dataset not in supported_datasets():
        return f"{spec.id} is not implemented yet (no loader for its data set {spec.dataset!r})"
    for part, needed in (("augmentation", "augmentation"), ("preprocess", "the pretrained trunk's input scaling")):
        if getattr(spec.data, part, None) is not None:
            return f"{spec.id} is not implemented yet: its recipe needs {needed}, which the harness does not have yet"
    return None


def _require_implemented(spec: ModelSpec) -> None:
    reason = missing_support(spec)
    if reason is not None:
        raise ParityError(f"{reason}; `parity list` shows what is implemented")


def forward_check(model_ids: list[str], seeds: list[int], workers: jobs.WorkerPool, workdir: Path) -> list[dict[str, Any]]:
    """Forward parity on random weights: every Keras variable drawn at random (seeded), copied into torch by
    name, outputs compared on the probe inputs already in `workdir` (inference, and training mode with dropout
    off for BatchNorm/dropout models). One row per model, seed and mode, with its tolerance, its verdict and the
    transfer's counts (every Keras variable read, every torch tensor assigned)."""
    rows = []
    for seed in seeds:
        job = {"kind": "forward", "models": model_ids, "seed": seed}
        transfers = [workers.run(framework, job, workdir) for framework in jobs.FRAMEWORKS][-1]["transfers"]
        rows += [{**row, "seed": seed, "transfer": transfers[model_id]} for model_id in model_ids
                 for row in compare.forward_check_rows(workdir, model_id, seed)]
    return rows


def check_models(model_ids: list[str], device: str = "cpu", threads: int = 1,
                 workers: jobs.WorkerPool | None = None) -> list[dict[str, Any]]:
    """`parity check`: the forward check of each model on its synthetic stand-in's inputs (no download)."""
    specs = [get_spec(model_id) for model_id in model_ids]
    for spec in specs:
        _require_implemented(spec)
    with jobs.worker_pool(device=device, threads=threads, quiet=True, reuse=workers) as workers, \
            jobs.work_directory("parity-check-") as workdir:
        for spec in specs:
            # The synthetic stand-in has the real data's shapes, dtypes and value range, and needs no download.
            np.save(jobs.probe_inputs_path(workdir, spec.id),
                    load_dataset(spec, synthetic=True).probe_inputs(PROBE_SIZE))
        return forward_check([spec.id for spec in specs], [CHECK_SEED], workers, workdir)


def require_forward_parity(spec: ModelSpec, rows: list[dict[str, Any]], workdir: Path) -> None:
    """Raise (before any training) unless every forward-check row of `spec` passed: a comparison of two
    models that do not compute the same function would be reported as a framework difference."""
    failed = [row for row in rows if not row["passed"]]
    if failed:
        worst = max(failed, key=lambda row: row["max_abs_diff"])
        raise ParityError(
            f"{spec.id}: the forward check failed ({len(failed)} of {len(rows)} checks; worst: seed {worst['seed']}, "
            f"{worst['mode']} mode, max abs diff {worst['max_abs_diff']:.3g} > tolerance {worst['tolerance']:.3g}), "
            "so the weights do not reach torch as Keras has them and a comparison would mean nothing; nothing was "
            f"trained or reported. Run `parity check {spec.id}`; files kept in {workdir}")


def _samples_per_s(run: dict[str, Any], train_size: int) -> float:
    """Training samples per second of epoch time (training plus that epoch's validation), median after epoch 1."""
    seconds = run["epoch_seconds"][1:] or run["epoch_seconds"]
    return train_size / statistics.median(seconds)


def _summary_line(framework: str, spec: ModelSpec, answer: dict[str, Any]) -> str:
    runs = answer["runs"]
    finals = [run["history"][f"val_{spec.metric}"][-1] for run in runs]
    epochs = "/".join(str(run["epochs_run"]) for run in runs)
    stopped = " (course callback stopped it)" if any(run["stopped_early"] for run in runs) else ""
    return (f"{framework}: {spec.id}, {len(runs)} seed(s), epochs {epochs}{stopped}, "
            f"final val_{spec.metric} {statistics.fmean(finals):.4f}, "
            f"{statistics.fmean(run['train_samples_per_s'] for run in runs):,.0f} samples/s, "
            f"wall {sum(run['wall_s'] for run in runs):.1f} s")


def _dataset_info(spec: ModelSpec, split: DataSplit) -> dict[str, Any]:
    """The data set's sizes and the loader's notes; the files read and generating parameters go to the provenance."""
    notes = {key: value for key, value in split.info.items() if key not in ("files", "generator")}
    return {"id": spec.dataset, "source": split.source, "train_size": len(split.train), "val_size": split.val_size,
            "location": split.location, **notes}


def _spec_info(spec: ModelSpec, epochs: int) -> dict[str, Any]:
    optimizer = spec.optimizer
    return {
        "title": spec.title,
        "reference": spec.reference.text,
        "reference_val_metric": spec.reference.val_metric,
        "epochs": epochs,
        "course_epochs": spec.epochs,
        "batch_size": spec.batch_size,
        "optimizer": f"{optimizer.name}(lr={optimizer.learning_rate:g}, momentum={optimizer.momentum:g})",
        "loss": spec.loss,
        "metric": spec.metric,
        "stop": spec.stop.describe() if spec.stop else None,
        "probe_x": list(getattr(spec.data, "probe_x", ())),
    }


def run_model(model_id: str, options: RunOptions) -> Path:
    """Train `model_id` in both frameworks on identical batches; write OUT/MODEL/{report.json,report.md,curves.png}."""
    spec = get_spec(model_id)
    _require_implemented(spec)
    epochs = options.epochs or spec.epochs
    split = load_dataset(spec, options.data_dir, options.synthetic)
    data = provenance.data_provenance(split)  # hashed once per run, whatever the number of seeds
    out_dir = Path(options.out_dir)
    seeds = list(range(options.seeds))
    out_dir.mkdir(parents=True, exist_ok=True)
    with staging_dir(out_dir, spec.id) as staging, jobs.work_directory(f".work-{spec.id}-", out_dir) as workdir:
        (staging / "logs").mkdir()
        data_file = jobs.save_data(workdir, split)
        np.save(jobs.probe_inputs_path(workdir, spec.id), split.probe_inputs(PROBE_SIZE))
        with jobs.worker_pool(device=options.device, threads=options.threads, quiet=True) as workers:
            check = forward_check([spec.id], seeds, workers, workdir)
        require_forward_parity(spec, check, workdir)
        print(f"forward check: {len(check)} of {len(check)} passed (largest max abs diff "
              f"{max(row['max_abs_diff'] for row in check):.2g}, random weights)", flush=True)
        job = {"kind": "train", "model": spec.id, "native": options.alignment.to_job(), "seeds": seeds, "epochs": epochs,
               "data": str(data_file), "log_dir": str(staging / "logs"), "verbose": options.verbose}
        answers = {}
        for framework in jobs.FRAMEWORKS:
            answers[framework] = jobs.run_worker(framework, job, workdir, device=options.device,
                                                 threads=options.threads)
            for run in answers[framework]["runs"]:
                run["train_samples_per_s"] = _samples_per_s(run, len(split.train))
                predictions = run.pop("probe_predictions")
                if predictions is not None:
                    run["probe"] = {"x": list(spec.data.probe_x), framework: predictions}
            print(_summary_line(framework, spec, answers[framework]), flush=True)
        for log in workdir.glob("*.log"):
            shutil.copy(log, staging / "logs" / log.name)
        results = {
            "model": spec.id,
            "mode": options.alignment.mode,
            "native_differences": options.alignment.to_job(),
            "seeds": seeds,
            "dataset": _dataset_info(spec, split),
            "frameworks": {fw: {"params": answers[fw]["params"], "runs": answers[fw]["runs"]} for fw in jobs.FRAMEWORKS},
            "forward_check": check,
            "forward_max_abs_diff": max(row["max_abs_diff"] for row in check if row["mode"] == "inference"),
            "environment": _environment(answers, options),
            "spec": _spec_info(spec, epochs),
            "provenance": provenance.build_provenance(data, options.alignment, answers, options.threads,
                                                      spec.epochs, epochs, check),
        }
        return write_report(build_report(results), out_dir, staging=staging)


def _environment(answers: dict[str, dict[str, Any]], options: RunOptions) -> dict[str, Any]:
    keras_versions = answers["keras"]["versions"]
    torch_versions = answers["lightning"]["versions"]
    return {
        "python": platform.python_version(),
        "tensorflow": keras_versions["tensorflow"],
        "keras": keras_versions["keras"],
        "torch": torch_versions["torch"],
        "lightning": torch_versions["lightning"],
        "device": f"keras: {answers['keras']['device']}; lightning: {answers['lightning']['device']}",
        "threads": options.threads,
        "platform": platform.platform(),
    }
