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

from parity import align, compare, jobs
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
    candidates = [spec.id for spec in CATALOG.values() if spec.trainable and spec.dataset in supported_datasets()]
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


def _require_implemented(spec: ModelSpec) -> None:
    if not spec.trainable:
        raise ParityError(f"{spec.id} trains no network in the course ({spec.reference.text}); nothing to compare")
    if spec.dataset not in supported_datasets():
        raise ParityError(f"{spec.id} is not implemented yet (no loader for its data set {spec.dataset!r}); "
                          "`parity list` shows what is")


def check_models(model_ids: list[str], device: str = "cpu", threads: int = 1,
                 workers: jobs.WorkerPool | None = None) -> list[dict[str, Any]]:
    """Forward parity: the same Keras initial weights in both frameworks, the same inputs, outputs compared."""
    specs = [get_spec(model_id) for model_id in model_ids]
    for spec in specs:
        _require_implemented(spec)
    with jobs.worker_pool(device=device, threads=threads, quiet=True, reuse=workers) as workers, \
            jobs.work_directory("parity-check-") as workdir:
        for spec in specs:
            # The synthetic stand-in has the real data's shapes, dtypes and value range, and needs no download.
            np.save(jobs.probe_inputs_path(workdir, spec.id),
                    load_dataset(spec, synthetic=True).probe_inputs(PROBE_SIZE))
        job = {"kind": "forward", "models": [spec.id for spec in specs], "seed": CHECK_SEED}
        for framework in jobs.FRAMEWORKS:
            workers.run(framework, job, workdir)
        results = []
        for spec in specs:
            tag = jobs.run_tag(spec.id, CHECK_SEED)
            keras_out = np.load(jobs.outputs_path(workdir, "keras", tag))
            lightning_out = np.load(jobs.outputs_path(workdir, "lightning", tag))
            diff = compare.max_abs_diff(keras_out, lightning_out)
            tolerance = compare.forward_tolerance(keras_out)
            results.append({"model": spec.id, "max_abs_diff": diff, "tolerance": tolerance, "passed": diff <= tolerance,
                            "output_shape": list(keras_out.shape)})
    return results


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
    return {"id": spec.dataset, "source": split.source, "train_size": len(split.train), "val_size": split.val_size,
            "location": split.location, **dict(split.info)}


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
    out_dir = Path(options.out_dir)
    seeds = list(range(options.seeds))
    out_dir.mkdir(parents=True, exist_ok=True)
    with staging_dir(out_dir, spec.id) as staging, jobs.work_directory(f".work-{spec.id}-", out_dir) as workdir:
        (staging / "logs").mkdir()
        data_file = jobs.save_data(workdir, split)
        np.save(jobs.probe_inputs_path(workdir, spec.id), split.probe_inputs(PROBE_SIZE))
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
        forward = max(
            compare.max_abs_diff(np.load(jobs.outputs_path(workdir, "keras", jobs.run_tag(spec.id, seed))),
                                 np.load(jobs.outputs_path(workdir, "lightning", jobs.run_tag(spec.id, seed))))
            for seed in seeds
        )
        for log in workdir.glob("*.log"):
            shutil.copy(log, staging / "logs" / log.name)
        results = {
            "model": spec.id,
            "mode": options.alignment.mode,
            "native_differences": options.alignment.to_job(),
            "seeds": seeds,
            "dataset": _dataset_info(spec, split),
            "frameworks": {fw: {"params": answers[fw]["params"], "runs": answers[fw]["runs"]} for fw in jobs.FRAMEWORKS},
            "forward_max_abs_diff": forward,
            "environment": _environment(answers, options),
            "spec": _spec_info(spec, epochs),
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
