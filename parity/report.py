"""The report of one `parity run`: report.json (validated), report.md, curves.png, for series forecast.png, and
report.html (report.md with its plots embedded, one self-contained page: parity.html_report).

`build_report(results)` turns the collected run results into the report.json dict
(`build_baselines_report` for a model that trains no network, c4w1_stat_forecast);
`write_report(report, out_dir)` writes OUT/<model>/ atomically: every file is built in a
hidden temporary directory inside OUT, which replaces OUT/<model> only once all of it is
written. On any exception OUT/<model> stays as it was (the previous report, or nothing)
and the temporary directory is removed. A caller that keeps its own files next to the
report (logs/, worker outputs) writes them into a staging directory (parity.fileio) first:

    with staging_dir(out_dir, model) as tmp:
        (tmp / "logs").mkdir()
        ...                                        # run the workers, log into tmp/logs
        final = write_report(report, out_dir, staging=tmp)   # tmp becomes out_dir/model
"""

from __future__ import annotations

import datetime
import functools
import itertools
import json
import math
import shutil
from importlib import resources
from pathlib import Path
from typing import Any, Mapping, Sequence

import jsonschema
import numpy as np

from parity import align, compare, formatting, html_report, jobs
from parity.jobs import KERAS_FRAMEWORKS
from parity.provenance import describe_provenance, provenance_key
from parity.fileio import staging_dir, swap_in

FRAMEWORKS = jobs.FRAMEWORKS  # the default pair, whose report keeps the two-framework shape
METRICS = ("accuracy", "mae")
COLOURS = {"keras": "tab:red", "lightning": "tab:purple", "keras-torch": "tab:green"}
BASELINES_KIND = "baselines"  # report.json `kind` of a model that trains no network: its statistical forecasts only
# The harness's forecast MAE against the framework's logged final val_mae. Both average |forecast - truth| of the
# same float32 outputs on the same validation batches; the logged value is a float32 running sum (Keras Mean,
# torchmetrics MeanAbsoluteError), the harness's a float64 mean. A float32 sum of n terms is off by at most about
# n x 2^-24 relative: 3e-5 for the lab's 461 steps, 7e-5 for the 1,150 of daily-min-temperatures. A forecast off
# by one step, or of other weights, misses by percents.
FORECAST_MAE_RTOL = 1e-4
FORECAST_MAE_RULE = ("relative 1e-4: float32 running means over the same validation batches, off by at most about "
                     "n x 6e-8 for n forecast steps")


# ---------------------------------------------------------------------------- building


def to_jsonable(obj: Any) -> Any:
    """`obj` in plain JSON types: numpy scalars and arrays unwrapped, tuples as lists, NaN/inf as None."""
    if isinstance(obj, Mapping):
        return {str(key): to_jsonable(value) for key, value in obj.items()}
    if isinstance(obj, np.ndarray):
        return to_jsonable(obj.tolist())
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(value) for value in obj]
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def primary_pair(frameworks: Sequence[str]) -> tuple[str, str]:
    """The pair whose comparison fills the two-framework keys of `comparison` (final_val, throughput_ratio,
    forward_max_abs_diff): keras and lightning when both ran, else the first pair of parity.jobs.framework_pairs."""
    if all(fw in frameworks for fw in FRAMEWORKS):
        return FRAMEWORKS
    return jobs.framework_pairs(frameworks)[0]


def _all_or_both(frameworks: Sequence[str]) -> str:
    return "both" if len(frameworks) == 2 else "all"


def _last(values: Sequence[float | None] | None) -> float:
    """The last value of a per-epoch series; NaN when the series is empty or ends in None."""
    if not values or values[-1] is None:
        return math.nan
    return float(values[-1])


def final_value(run: Mapping[str, Any], key: str) -> float:
    """A run's final `key` (val_loss, val_<metric>): the restored model's, evaluated once more after training, when
    early stopping restored the best weights; else the last epoch's. NaN when neither exists."""
    stop = run.get("early_stopping")
    if stop and stop.get("restored") and stop.get(f"restored_{key}") is not None:
        return float(stop[f"restored_{key}"])
    return _last(run["history"].get(key))


def final_key(run: Mapping[str, Any], key: str) -> str:
    """`val_<key>` for a run that validated; `<key>` for one without validation data (spec.validation "none"), whose
    final values are the training ones, as the course reports them (the text generators' train accuracy)."""
    return f"val_{key}" if run["history"].get("val_loss") else key


def _validated(report: Mapping[str, Any]) -> bool:
    """Whether the report's runs validated (else its final values are the training ones, `final_key`)."""
    return any(run["history"].get("val_loss") for fw in jobs.in_display_order(report["frameworks"])
               for run in report["frameworks"][fw]["runs"])


def _final_value(framework: str, run: Mapping[str, Any], key: str) -> float:
    """final_value of `key`; a history without the series is an error."""
    if not run["history"].get(key):
        raise ValueError(f"{framework} run with seed {run.get('seed')}: history has no {key!r}")
    return final_value(run, key)


def final_values_by_seed(framework: str, runs: Sequence[Mapping[str, Any]], metric: str) -> dict[int, float]:
    """seed -> the final val_<metric> of each run (final_value: the restored model's after early stopping; the
    training <metric> without validation data, `final_key`), in run order, leaving out runs whose loss went
    non-finite (`diverged`: no final value to compare); two runs with one seed are an error."""
    finals: dict[int, float] = {}
    for run in runs:
        if run["seed"] in finals:
            raise ValueError(f"{framework}: two runs with seed {run['seed']}; runs are paired by seed, "
                             "so each seed may run once per framework")
        if not run.get("diverged"):
            finals[run["seed"]] = _final_value(framework, run, final_key(run, metric))
    return finals


def _where(record: Mapping[str, Any]) -> str:
    """'inf at epoch 1, step 4, global step 4': where a run's loss went non-finite."""
    return f"{record['loss']} at epoch {record['epoch']}, step {record['step']}, global step {record['global_step']}"


def divergence_rows(frameworks: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Per seed where a run's loss went non-finite: each framework's record (None: it stayed finite; absent runs
    too) and `same_step`, whether all went non-finite at the same global step (None unless all ran the seed)."""
    names = jobs.in_display_order(frameworks)
    runs = {fw: {run["seed"]: run for run in frameworks[fw]["runs"]} for fw in names}
    seeds = sorted({seed for fw in names for seed, run in runs[fw].items() if run.get("diverged")})
    rows = []
    for seed in seeds:
        records = {fw: (runs[fw][seed].get("diverged") if seed in runs[fw] else None) for fw in names}
        both_ran = all(seed in runs[fw] for fw in names)
        steps = {(record or {}).get("global_step") for record in records.values()}
        rows.append({"seed": seed, **records, "same_step": (len(steps) == 1) if both_ran else None})
    return rows


def run_status(frameworks: Mapping[str, Any], seeds: Sequence[int], interrupted: bool) -> tuple[str, str]:
    """The report's `status` and its one-line `status_note`: 'partial' (Ctrl-C stopped it), 'failed' (a framework's
    worker failed), 'diverged' (every run ran, and the loss of one or more went non-finite) or 'complete'."""
    names = jobs.in_display_order(frameworks)
    finished = {fw: _run_seeds(frameworks[fw]) for fw in names}
    kept = "; ".join(f"{fw} {seeds_text(finished[fw])}" for fw in names)
    if interrupted:
        after = last_seed_in_both(frameworks, seeds)
        every = "both frameworks" if len(names) == 2 else "every framework"
        when = f"before any seed finished in {every}" if after is None else f"after seed {after}"
        return "partial", f"partial: stopped by Ctrl-C {when} (finished: {kept}; {len(seeds)} asked for)"
    failed = [fw for fw in names if frameworks[fw].get("status") == "failed"]
    if failed:
        failure = frameworks[failed[0]]["failure"]
        return "failed", (f"failed: the {failed[0]} worker failed while training seed {failure['seed']} "
                          f"({failure['cause']}; log: {failure['log']}); finished runs kept: {kept}")
    diverged = [f"{fw} seed {run['seed']} ({_where(run['diverged'])})" for fw in names
                for run in frameworks[fw]["runs"] if run.get("diverged")]
    if diverged:
        return "diverged", (f"diverged: the training loss went non-finite in {', '.join(diverged)}; the comparison "
                            "leaves these runs out")
    return "complete", "complete: every run finished"


def _run_seeds(framework: Mapping[str, Any]) -> list[int]:
    """The seeds of a framework block's runs, in run order."""
    return [run["seed"] for run in framework["runs"]]


def last_seed_in_both(frameworks: Mapping[str, Any], seeds: Sequence[int]) -> int | None:
    """The last of `seeds` (in order) that every framework finished, before the first that one did not; None when
    the first seed is not finished in every one."""
    finished = [set(_run_seeds(frameworks[fw])) for fw in jobs.in_display_order(frameworks)]
    last = None
    for seed in seeds:
        if not all(seed in done for done in finished):
            break
        last = seed
    return last


def seeds_text(seeds: Sequence[int]) -> str:
    """'seeds 0, 1, 2', 'seed 0', 'no seed'."""
    if not seeds:
        return "no seed"
    return f"seed{'s' if len(seeds) > 1 else ''} {', '.join(map(str, seeds))}"


def _left_out(frameworks: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The runs the comparison statistics leave out, and why."""
    return [{"framework": fw, "seed": run["seed"], "reason": f"diverged: loss {_where(run['diverged'])}"}
            for fw in jobs.in_display_order(frameworks) for run in frameworks[fw]["runs"] if run.get("diverged")]


def forecast_errors(forecast: Sequence[float] | np.ndarray, truth: Sequence[float] | np.ndarray) -> tuple[float, float]:
    """(MAE, MSE) of `forecast` against `truth`, step by step over the same steps, in float64."""
    forecast, truth = np.asarray(forecast, dtype=np.float64), np.asarray(truth, dtype=np.float64)
    if forecast.shape != truth.shape:
        raise ValueError(f"a forecast of {forecast.shape} steps against a truth of {truth.shape}: "
                         "one forecast per validation step is needed")
    errors = forecast - truth
    return float(np.mean(np.abs(errors))), float(np.mean(errors * errors))


def forecast_record(values: Sequence[float], truth: Sequence[float] | np.ndarray,
                    logged_val_mae: float | None) -> dict[str, Any]:
    """One run's forecast, its MAE and MSE recomputed from the truth, and whether that MAE agrees with the
    framework's logged final val_mae within FORECAST_MAE_RTOL (None when the logged value is missing)."""
    mae, mse = forecast_errors(values, truth)
    known = logged_val_mae is not None and math.isfinite(logged_val_mae) and math.isfinite(mae)
    rel_diff = abs(mae - logged_val_mae) / max(abs(logged_val_mae), 1e-12) if known else None
    return {"values": list(values), "mae": mae, "mse": mse, "logged_val_mae": logged_val_mae,
            "rel_diff": rel_diff, "agrees": None if rel_diff is None else rel_diff <= FORECAST_MAE_RTOL}


def _forecast_section(forecast: Mapping[str, Any], frameworks: Mapping[str, Any]) -> dict[str, Any]:
    """The validation period, the truth, and each framework's forecast MAE/MSE over its seeds (mean, std), diverged
    runs left out."""
    summaries = {}
    for fw in jobs.in_display_order(frameworks):
        records = [run["forecast"] for run in frameworks[fw]["runs"]
                   if run.get("forecast") and not run.get("diverged")]
        summaries[fw] = {key: {**compare.summarize([record[key] for record in records]), "n": len(records)}
                         for key in ("mae", "mse")}
        summaries[fw]["agrees"] = all(record["agrees"] is not False for record in records)
    return {**forecast, "tolerance": {"relative": FORECAST_MAE_RTOL, "rule": FORECAST_MAE_RULE},
            "frameworks": summaries}


def build_report(results: Mapping[str, Any]) -> dict:
    """The report.json dict (contract keys, comparison, `spec`, `created`) of one run's results.

    The frameworks are those of `results["frameworks"]`. Keras and lightning alone give the two-framework report
    of the contract. Any other set adds `comparison.frameworks_compared`, `comparison.pairs` (one block per pair,
    keyed by parity.jobs.pair_key: forward_max_abs_diff, final_val of b - a, throughput_ratio b / a, and the
    `differences` in force between the two: align.differences_in_force of the run's native differences and
    `results["tensorflow_runtime_forms"]`, the runtime forms Keras on torch never aligns) and
    `comparison.primary_pair`, the pair whose block the top-level forward_max_abs_diff, final_val and
    throughput_ratio repeat (`primary_pair`: lightning/keras when both ran)."""
    metric = results["spec"]["metric"]
    if metric not in METRICS:
        raise ValueError(f"metric {metric!r} is not one of {METRICS}")
    names = jobs.in_display_order(results["frameworks"])
    frameworks = {fw: results["frameworks"][fw] for fw in names}
    finals = {fw: final_values_by_seed(fw, frameworks[fw]["runs"], metric) for fw in names}
    rates = {fw: [run["train_samples_per_s"] for run in frameworks[fw]["runs"] if not run.get("diverged")]
             for fw in names}
    native = list(results.get("native_differences", []))
    pairs = {jobs.pair_key(pair): {
        **_pair_comparison(pair, finals, rates, metric, results.get("forward_check", [])),
        "differences": align.differences_in_force(pair, native, native, results.get("tensorflow_runtime_forms", ()))}
        for pair in jobs.framework_pairs(names)}
    primary = pairs[jobs.pair_key(primary_pair(names))]
    status, note = run_status(frameworks, results["seeds"], "interrupted" in results)
    report = {
        "model": results["model"],
        "status": status,
        "status_note": note,
        "mode": results["mode"],
        "native_differences": native,
        "seeds": list(results["seeds"]),
        "dataset": results["dataset"],
        "frameworks": frameworks,
        "comparison": {
            "forward_max_abs_diff": results.get("forward_max_abs_diff"),
            "forward_check": list(results.get("forward_check", [])),
            "metric": metric,
            "final_val": primary["final_val"],
            "throughput_ratio": primary["throughput_ratio"],
            "left_out": _left_out(frameworks),
            "divergence": divergence_rows(frameworks),
        },
        "environment": results["environment"],
        "spec": results["spec"],
        "created": _now(),
        **({"provenance": results["provenance"]} if "provenance" in results else {}),
    }
    if names != FRAMEWORKS:
        report["comparison"].update(frameworks_compared=list(names), primary_pair=jobs.pair_key(primary_pair(names)),
                                    pairs=pairs)
    if "interrupted" in results:
        report["interrupted"] = {**results["interrupted"],
                                 "after_seed": last_seed_in_both(frameworks, results["seeds"]),
                                 "finished_seeds": {fw: _run_seeds(frameworks[fw]) for fw in names}}
    if "forecast" in results:
        report["forecast"] = _forecast_section(results["forecast"], frameworks)
    if "baselines" in results:
        report["baselines"] = list(results["baselines"])
    if "saved" in results:
        report["saved"] = dict(results["saved"])
    return to_jsonable(report)


def _pair_comparison(pair: tuple[str, str], finals: Mapping[str, Mapping[int, float]],
                     rates: Mapping[str, Sequence[float]], metric: str,
                     forward_check: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """One pair's block of `comparison.pairs`: the largest inference max abs diff of its forward-check rows (None
    when no row names the pair), the final values compared (b - a, each framework's values kept) and the throughput
    ratio b / a (median train samples/s)."""
    a, b = pair
    final_val = compare.final_val_comparison(finals[a], finals[b], metric, names=pair)
    for fw in pair:
        final_val[fw]["values"] = list(finals[fw].values())
    diffs = [row["max_abs_diff"] for row in forward_check
             if row.get("pair") == jobs.pair_key(pair) and row["mode"] == "inference"]
    return {"forward_max_abs_diff": max(diffs, default=None), "final_val": final_val,
            "throughput_ratio": compare.throughput_ratio(rates[a], rates[b])}


def build_baselines_report(results: Mapping[str, Any]) -> dict:
    """The report.json dict of a model that trains no network (c4w1_stat_forecast): the data set, the validation
    period and its truth, each statistical forecast with its MAE and MSE (and the course's, where known)."""
    report = {
        "model": results["model"],
        "kind": BASELINES_KIND,
        "dataset": results["dataset"],
        "forecast": dict(results["forecast"]),
        "baselines": list(results["baselines"]),
        "environment": results["environment"],
        "spec": results["spec"],
        "created": _now(),
    }
    return to_jsonable(report)


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


@functools.cache
def _schema() -> dict:
    """The committed JSON Schema of report.json."""
    text = (resources.files("parity") / "schemas" / "report.schema.json").read_text(encoding="utf-8")
    return json.loads(text)


@functools.cache
def _validator() -> jsonschema.Draft202012Validator:
    """The report schema's validator, the schema itself checked once (jsonschema.validate re-checks it every call)."""
    jsonschema.Draft202012Validator.check_schema(_schema())
    return jsonschema.Draft202012Validator(_schema())


def validate_report(report: Mapping[str, Any]) -> None:
    """Raise jsonschema.ValidationError unless `report` (plain JSON types) matches the schema."""
    error = jsonschema.exceptions.best_match(_validator().iter_errors(report))
    if error is not None:
        raise error


# ---------------------------------------------------------------------------- markdown


def _median(values: Sequence[float | None]) -> float | None:
    """The median of the finite values; None when there are none."""
    finite = [v for v in values if v is not None and math.isfinite(v)]
    return float(np.median(finite)) if finite else None


def _array_text(values: Any) -> str:
    """A short rendering of a probe input or prediction: a scalar, or the first few values."""
    flat = np.asarray(values, dtype=np.float64).ravel()
    if flat.size == 1:
        return formatting.significant(float(flat[0]))
    shown = ", ".join(formatting.significant(float(v)) for v in flat[:6])
    return f"[{shown}{', ...' if flat.size > 6 else ''}]"


def _results_table(report: Mapping[str, Any]) -> list[str]:
    """The per-framework results table, with a footnote for runs stopped by the course callback."""
    metric = report["comparison"]["metric"]
    validated = _validated(report)
    final = "Final val" if validated else "Final train"
    lines = [
        f"| Framework | Params | {final} {metric} | {final} loss | Epochs run "
        "| Train samples/s (median) | Wall s (median) |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    any_stopped = any_early = any_diverged = False
    names = jobs.in_display_order(report["frameworks"])
    for fw in names:
        runs = report["frameworks"][fw]["runs"]
        epochs = []
        for run in runs:
            stopped = bool(run.get("stopped_early"))
            any_stopped |= stopped
            early = bool((run.get("early_stopping") or {}).get("stopped_epoch"))
            any_early |= early
            diverged = bool(run.get("diverged"))
            any_diverged |= diverged
            count = run.get("epochs_run", len(run["history"]["loss"]))
            epochs.append(f"{count}{'*' if stopped else ''}{'†' if early else ''}{'‡' if diverged else ''}")
        val_loss = compare.summarize([final_value(run, final_key(run, "loss")) for run in runs
                                      if not run.get("diverged")])
        params = report["frameworks"][fw]["params"]
        lines.append(
            f"| {fw} | {'n/a' if params is None else format(params, ',')} "
            f"| {formatting.mean_std(_final_summary(report, fw))} | {formatting.mean_std(val_loss)} "
            f"| {', '.join(epochs) or 'n/a'} "
            f"| {formatting.rate(_median([run['train_samples_per_s'] for run in runs]))} "
            f"| {formatting.rate(_median([run['wall_s'] for run in runs]))} |"
        )
    if not validated:
        lines += ["", "No validation data (as in the course): the final values are the training ones."]
    if any_stopped:
        lines += ["", "\\* stopped early by the course callback."]
    if any_early:
        lines += ["", "† stopped by early stopping (see Early stopping)."]
    if any_diverged:
        lines += ["", "‡ stopped at the step where the loss went non-finite (see Divergence); left out of the final "
                      "values and the comparison."]
    for fw in names:
        status = report["frameworks"][fw].get("status", "complete")
        if status != "complete":
            failure = report["frameworks"][fw].get("failure")
            why = (f": {failure['cause']} while training seed {failure['seed']}, log `{failure['log']}`"
                   if failure else "")
            finished = seeds_text(_run_seeds(report["frameworks"][fw]))
            lines += ["", f"{fw}: **{status}**{why}; its finished runs: {finished}."]
    return lines


def _final_summary(report: Mapping[str, Any], framework: str) -> Mapping[str, Any]:
    """A framework's final values summarised (mean, std, n), from the comparison that holds it."""
    comparison = report["comparison"]
    if framework in comparison["final_val"]:
        return comparison["final_val"][framework]
    return next(block["final_val"][framework] for block in comparison["pairs"].values()
                if framework in block["final_val"])


def _divergence_lines(report: Mapping[str, Any]) -> list[str]:
    """Per seed whose loss went non-finite: where, in each framework, and whether at the same step."""
    lines = []
    names = jobs.in_display_order(report["frameworks"])
    every = _all_or_both(names)
    for row in report["comparison"].get("divergence", []):
        where = "; ".join(f"{fw} {_where(row[fw]) if row[fw] else 'stayed finite'}" for fw in names)
        same = {True: f"the same step in {every}", False: "not the same step",
                None: f"not run in {every}"}[row["same_step"]]
        lines.append(f"- seed {row['seed']}: {where}: {same}")
    if lines:
        lines += ["", "Each such run stopped at that step; its history up to it is kept (the curves show it, the "
                      "non-finite values as gaps) and the comparison statistics leave it out."]
    return lines


def _early_stopping_lines(report: Mapping[str, Any]) -> list[str]:
    """Per run: where early stopping stopped, the best epoch restored and its value, the restored model's values."""
    metric = report["comparison"]["metric"]
    lines = []
    for fw in jobs.in_display_order(report["frameworks"]):
        for run in report["frameworks"][fw]["runs"]:
            stop = run.get("early_stopping")
            if not stop:
                continue
            stopped = f"stopped at epoch {stop['stopped_epoch']}" if stop["stopped_epoch"] else "did not stop"
            restored = (f"best epoch {stop['best_epoch']} ({stop['monitor']} {formatting.metric(stop['best_value'])}) "
                        + ("restored" if stop["restored"] else "not restored"))
            values = (f"; restored model: val_loss {formatting.metric(stop.get('restored_val_loss'))}, "
                      f"val_{metric} {formatting.metric(stop.get(f'restored_val_{metric}'))}"
                      if stop.get("restored_val_loss") is not None else "")
            lines.append(f"- {fw} seed {run['seed']}: monitor {stop['monitor']} ({stop['mode']}, patience "
                         f"{stop['patience']}, min_delta {stop['min_delta']:g}): {stopped}, {restored}{values}")
    if not lines:
        return []
    return lines + ["", "The final values above (results table, comparison statistics) are the restored model's, "
                        "evaluated once more on the validation set after training; the curves show every epoch run."]


def _interval_text(interval: Sequence[float | None], level: str = "95%") -> str:
    lo, hi = interval
    return f"{level} CI n/a" if lo is None or hi is None else \
        f"{level} CI [{formatting.metric(lo, '+')}, {formatting.metric(hi, '+')}]"


def _paired_lines(final: Mapping[str, Any]) -> list[str]:
    """The paired comparison (primary) and the per-seed differences."""
    paired = final["paired"]
    diff = formatting.metric(paired["mean"], "+")
    if paired["status"] != "tested":
        return [f"  - Paired by seed (primary): {diff}; {paired['status']}: {paired['note']}: no significance verdict"]
    correlation = ("n/a (needs 3 pairs, both varying)" if paired["correlation"] is None
                   else formatting.significant(paired["correlation"], 3))
    per_seed = ", ".join(f"seed {seed} {formatting.metric(d, '+')}" for seed, d in zip(paired["seeds"], paired["diffs"]))
    return [f"  - Paired by seed (primary): {diff}, {_interval_text(paired['ci95'])} (paired t, n = {paired['n']} pairs), "
            f"p = {formatting.significant(paired['p'], 3)}; per-seed correlation of the frameworks r = {correlation}",
            f"  - Per-seed differences: {per_seed}"]


def _comparison_lines(report: Mapping[str, Any]) -> list[str]:
    """Forward parity; final val metric: paired (primary), Welch (secondary), TOST equivalence; throughput ratio.
    With frameworks other than keras and lightning alone: a table of every pair, then these lines per pair."""
    comparison = report["comparison"]
    if "pairs" not in comparison:
        lines = _pair_lines(report, comparison, FRAMEWORKS, comparison.get("forward_check", []))
    else:
        lines = _pairs_table(report)
        for key, block in comparison["pairs"].items():
            a, b = jobs.pair_of(key)
            checks = [row for row in comparison.get("forward_check", []) if row.get("pair") == key]
            lines += ["", f"### {b} vs {a}", "", *_pair_lines(report, block, (a, b), checks)]
    if comparison.get("left_out"):
        lines.append("- Left out of these statistics: " + "; ".join(f"{row['framework']} seed {row['seed']} "
                                                                    f"({row['reason']})" for row in comparison["left_out"]))
    return lines


def _pair_lines(report: Mapping[str, Any], block: Mapping[str, Any], pair: tuple[str, str],
                checks: Sequence[Mapping[str, Any]]) -> list[str]:
    """One pair's comparison lines (b - a, ratio b / a) from its block: forward_max_abs_diff, final_val and
    throughput_ratio."""
    a, b = pair
    final = block["final_val"]
    welch = final["welch"]
    welch_interval = _interval_text(final["diff_ci95"])
    if welch["status"] != "tested":
        welch_interval += f" ({welch['note']})"
    counts = f"n = {final[a].get('n')} {a} + {final[b].get('n')} {b}"
    forward = formatting.significant(block["forward_max_abs_diff"], 3)
    check = (f"; {sum(row['passed'] for row in checks)} of {len(checks)} checks passed "
             f"({', '.join(sorted({row['mode'] for row in checks}))} mode), each within its tolerance (largest "
             f"{formatting.significant(max(row['tolerance'] for row in checks), 2)})" if checks else "")
    equivalence = final["equivalence"]
    which = "Final val" if _validated(report) else "Final train"
    tost = (f"p lower {formatting.significant(equivalence['p_lower'], 3)}, "
            f"p upper {formatting.significant(equivalence['p_upper'], 3)}, {_interval_text(equivalence['ci90'], '90%')}; "
            if equivalence["p"] is not None else "")
    return [
        f"- Forward check, random weights in every variable, same input: max abs diff {forward}{check}",
        f"- {which} {report['comparison']['metric']}, {b} - {a}:",
        *_paired_lines(final),
        f"  - Welch (unpaired, secondary): {formatting.metric(final.get('diff_mean'), '+')}, {welch_interval}, {counts}; "
        f"Welch t-test p-value: {formatting.significant(final.get('welch_p'), 3)}",
        f"  - Equivalence (TOST, alpha {equivalence['alpha']}, margin ±{formatting.metric(equivalence['margin'])}: "
        f"{equivalence['margin_rule']}): {tost}**{equivalence['verdict']}**: {equivalence['detail']}",
        f"- Throughput ratio {b} / {a} (median train samples/s): "
        f"{formatting.significant(block['throughput_ratio'], 3)}",
        *_in_force_lines(block),
    ]


def _in_force_lines(block: Mapping[str, Any]) -> list[str]:
    """The differences in force between a pair's two frameworks (a pairs block's `differences`; none in the default
    two-framework comparison, whose native differences the report states once)."""
    if "differences" not in block:
        return []
    keys = block["differences"]
    if not keys:
        return ["- Differences in force between the two: none, every difference is aligned between them"]
    named = ", ".join(f"{key} ({align.layer_of(key)})" for key in keys)
    return [f"- Differences in force between the two: {named} (docs/differences.md)"]


def _pairs_table(report: Mapping[str, Any]) -> list[str]:
    """Every pair in one table: forward check, the final metric's paired difference b - a with its interval, the
    equivalence verdict and the throughput ratio b / a."""
    comparison = report["comparison"]
    which = "final val" if _validated(report) else "final train"
    lines = [f"Frameworks compared: {', '.join(comparison['frameworks_compared'])}; each pair b/a below is compared "
             "as b - a, its throughput as b / a.", "",
             f"| Pair b/a | Forward max abs diff | {which} {comparison['metric']} b - a (paired) | 95% CI "
             "| Equivalence | Throughput ratio b / a |",
             "|---|---:|---:|---|---|---:|"]
    for key, block in comparison["pairs"].items():
        paired = block["final_val"]["paired"]
        lines.append(f"| {key} | {formatting.significant(block['forward_max_abs_diff'], 3)} "
                     f"| {formatting.metric(paired['mean'], '+')} | {_interval_text(paired['ci95'])[len('95% CI '):]} "
                     f"| {block['final_val']['equivalence']['verdict']} "
                     f"| {formatting.significant(block['throughput_ratio'], 3)} |")
    return lines


def _probe_lines(report: Mapping[str, Any]) -> list[str]:
    """'predict(x): keras y, lightning y' per seed and probe input, for runs that carry a probe."""
    probes: dict[Any, dict[str, Mapping[str, Any]]] = {}
    names = jobs.in_display_order(report["frameworks"])
    for fw in names:
        for run in report["frameworks"][fw]["runs"]:
            if run.get("probe"):
                probes.setdefault(run["seed"], {})[fw] = run["probe"]
    lines = []
    for seed, by_fw in probes.items():
        inputs = next(iter(by_fw.values()))["x"]
        outputs = {fw: by_fw.get(fw, {}).get(fw) for fw in names}
        for i, x in enumerate(inputs):
            predictions = ", ".join(
                f"{fw} {'n/a' if outputs[fw] is None else _array_text(outputs[fw][i])}"
                for fw in names
            )
            lines.append(f"- seed {seed}: predict({_array_text(x)}): {predictions}")
    return lines


def _saved_lines(saved: Mapping[str, Any]) -> list[str]:
    """The files `--save` kept with their sizes, and each reload's verdict on the probe inputs."""
    lines = [f"Kept in `{saved['directory']}/` (inputs record: `{saved['inputs']}`); each file loaded back safely and "
             f"its predictions on {saved['probe_samples']} probe inputs compared with the trained model's, "
             "bit for bit.", "", "| framework | seed | file | bytes | holds |", "|---|---|---|---:|---|"]
    for fw, rows in saved["frameworks"].items():
        lines += [f"| {fw} | {row['seed']} | {entry['file']} | {entry['bytes']:,} | {entry['holds']} |"
                  for row in rows for entry in row["files"]]
    lines.append("")
    for fw, row in ((fw, row) for fw in KERAS_FRAMEWORKS for row in saved["frameworks"].get(fw, [])):
        full, light = (entry["bytes"] for entry in row["files"])
        lines.append(f"- {fw} seed {row['seed']}: saved without the optimizer (the course's way to save space) "
                     f"{light:,} bytes, {light / full:.0%} of the {full:,} with it")
    for fw, rows in saved["frameworks"].items():
        for row in rows:
            for reload in row["reloads"]:
                if reload["loaded"]:
                    verdict = ("predictions bit for bit equal" if reload["predictions_equal"] else
                               f"predictions DIFFER (max abs diff {formatting.significant(reload['max_abs_diff'], 2)})")
                else:
                    verdict = f"not loaded: {reload['error']}"
                lines.append(f"- {fw} seed {row['seed']}, {reload['file']} via `{reload['loader']}`: {verdict}")
    lines.append(f"- Round trip: {'passed' if saved['equal'] else 'FAILED'}")
    return lines


def _provenance_lines(report: Mapping[str, Any]) -> list[str]:
    """What was measured and how (parity.provenance), and the key under which `parity report` groups the run."""
    if "provenance" not in report:
        return ["- Not recorded (written before provenance existed): `parity report` keys it as legacy"]
    provenance = report["provenance"]
    data, epochs, check = provenance["data"], provenance["epochs"], provenance["forward_check"]
    what = "the files read" if data["hashed"] == "files" else "the generating parameters"
    lines = [f"- {describe_provenance(report)}",
             f"- Key `{provenance_key(report)}`: `parity report` merges or compares only runs with the same key",
             f"- Data: {data['source']} {data['id']} from {data['location']}, sha256 `{data['sha256']}` of {what}"]
    lines += [f"  - `{file['path']}`: {file['bytes']:,} bytes, sha256 `{file['sha256']}`" for file in data.get("files", [])]
    if data["hashed"] == "files" and "files" not in data:
        lines.append(f"  - {data['file_count']:,} files, {data['bytes']:,} bytes")
    weights = provenance.get("weights") or {}
    if weights.get("source") == "file":
        lines.append(f"- Pretrained weights: `{weights['path']}`, {weights['bytes']:,} bytes, sha256 `{weights['sha256']}`, "
                     f"md5 `{weights['md5']}`")
    native = ", ".join(provenance["native_differences"]) or "none"
    largest = formatting.significant(check["max_abs_diff"], 2)
    lines += [f"- Epochs: {epochs['run']} (course {epochs['course']})",
              f"- Mode: {provenance['mode']} (differences left native: {native})",
              "- Device: " + "; ".join(f"{fw} {provenance['device'][fw]}"
                                       for fw in jobs.in_display_order(provenance["device"]))
              + f"; {provenance['threads']} thread(s) per framework",
              "- Versions: " + ", ".join(f"{name} {version}" for name, version in provenance["versions"].items()),
              f"- Forward check: {check['status']} ({check['checks']} check{'' if check['checks'] == 1 else 's'}, "
              f"largest max abs diff {largest})"]
    return lines


def _baseline_rows(report: Mapping[str, Any], columns: int) -> list[str]:
    """One table row per baseline: its MAE and MSE, then (with 5 columns) the course's expected values."""
    rows = []
    for baseline in report.get("baselines", []):
        if baseline.get("left_out"):
            cells = [f"{baseline['name']} (baseline)", f"left out: {baseline['left_out']}", *[""] * (columns - 2)]
        else:
            cells = [f"{baseline['name']} (baseline)", formatting.metric(baseline["mae"]),
                     formatting.metric(baseline["mse"])]
            if columns == 5:
                cells += [formatting.metric(baseline.get("expected_mae")),
                          formatting.metric(baseline.get("expected_mse"))]
        rows.append(f"| {' | '.join(cells)} |")
    return rows


def _period_line(report: Mapping[str, Any]) -> str:
    forecast = report["forecast"]
    start, steps = forecast["split_time"], len(forecast["truth"])
    return (f"Validation period: steps {start} to {start + steps - 1} of the series ({steps} steps), each forecast "
            "from the window of steps before it.")


def _agreement_line(report: Mapping[str, Any]) -> str:
    """Whether every run's harness forecast MAE agrees with the framework's logged final val_mae."""
    runs = [(fw, run) for fw in jobs.in_display_order(report["frameworks"]) for run in report["frameworks"][fw]["runs"]
            if run.get("forecast")]
    checked = [(fw, run) for fw, run in runs if run["forecast"]["agrees"] is not None]
    rule = report["forecast"]["tolerance"]["rule"]
    if not checked:
        return f"- Forecast MAE against the logged final val_mae: not checked (no finite logged value); tolerance {rule}"
    failed = [f"{fw} seed {run['seed']} (harness {formatting.metric(run['forecast']['mae'])}, logged "
              f"{formatting.metric(run['forecast']['logged_val_mae'])})" for fw, run in checked
              if not run["forecast"]["agrees"]]
    largest = formatting.significant(max(run["forecast"]["rel_diff"] for _, run in checked), 2)
    if failed:
        return (f"- Forecast MAE recomputed by the harness **disagrees** with the logged final val_mae in "
                f"{', '.join(failed)}; tolerance {rule}")
    return (f"- Forecast MAE recomputed by the harness from each forecast agrees with the framework's logged final "
            f"val_mae in all {len(checked)} runs (largest relative difference {largest}; tolerance {rule})")


def _forecast_lines(report: Mapping[str, Any]) -> list[str]:
    """The networks' forecast MAE/MSE per framework (mean over seeds) beside the baselines they must beat."""
    forecast = report["forecast"]
    lines = [_period_line(report), "", "| Forecast | MAE | MSE |", "|---|---:|---:|"]
    for fw in jobs.in_display_order(report["frameworks"]):
        errors = forecast["frameworks"][fw]
        seeds = errors["mae"].get("n", 0)
        lines.append(f"| {fw} (network, mean over {seeds} seed{'' if seeds == 1 else 's'}) "
                     f"| {formatting.mean_std(errors['mae'])} | {formatting.mean_std(errors['mse'])} |")
    lines += _baseline_rows(report, 3)
    best = best_baseline(report)
    shown = f" and the best baseline ({best['name']})" if best else ""
    lines += ["", _agreement_line(report),
              f"- forecast.png: the truth, each framework's forecast of seed {report['seeds'][0]}{shown}",
              "", "![Forecast vs truth](forecast.png)"]
    return lines


def render_baselines_markdown(report: Mapping[str, Any]) -> str:
    """report.md of a model that trains no network: the statistical forecasts' MAE/MSE beside the course's."""
    spec = report.get("spec", {})
    dataset = report["dataset"]
    lines = [f"# {report['model']}" + (f": {spec['title']}" if spec.get("title") else ""), "",
             "- No network: the course computes statistical forecasts only, so no framework is run",
             f"- Series: {dataset.get('series', dataset['id'])} ({dataset['id']}, {dataset['source']}), "
             f"{dataset['train_size'] + dataset['val_size']:,} steps, split at step {report['forecast']['split_time']}"]
    if report.get("created"):
        lines.append(f"- Created: {report['created']}")
    lines += ["", "## Forecasts", "", _period_line(report), "",
              "| Forecast | MAE | MSE | Course MAE | Course MSE |", "|---|---:|---:|---:|---:|",
              *_baseline_rows(report, 5)]
    lines += ["", "## Course reference", "", f"- {spec.get('reference') or 'n/a'}"]
    lines += ["", "## Environment", "", *(f"- {key}: {value}" for key, value in report["environment"].items())]
    lines += ["", "## Forecast vs truth", "", "![Forecast vs truth](forecast.png)", ""]
    return "\n".join(lines)


def render_markdown(report: Mapping[str, Any]) -> str:
    """report.md: setup, results per framework, comparison, forecast, course reference, probes, environment."""
    if report.get("kind") == BASELINES_KIND:
        return render_baselines_markdown(report)
    spec = report.get("spec", {})
    dataset = report["dataset"]
    metric = report["comparison"]["metric"]
    lines = [f"# {report['model']}" + (f": {spec['title']}" if spec.get("title") else ""), ""]
    native = report.get("native_differences") or []
    lines.append(f"- Mode: {report['mode']}" + (f" (native: {', '.join(native)})" if report["mode"] != "native" and native else ""))
    if report.get("status", "complete") != "complete":
        lines.append(f"- Status: **{report['status_note']}**")
    lines.append(f"- Seeds: {', '.join(str(seed) for seed in report['seeds'])}")
    lines.append(
        f"- Dataset: {dataset['id']} ({dataset['source']}), {dataset['train_size']:,} train / "
        f"{dataset['val_size']:,} validation samples"
    )
    if dataset.get("split_note"):  # the data was smaller than the course's: its proportion was used
        lines.append(f"- Split: {dataset['split_note']}")
    if spec:
        lines.append(
            f"- Recipe: {spec.get('epochs')} epochs, batch size {spec.get('batch_size')}, "
            f"optimizer {spec.get('optimizer')}, loss {spec.get('loss')}"
        )
    if spec.get("learning_rate_overridden"):
        lines.append(f"- Learning rate: {spec['learning_rate']:g} (set with --lr; the course's is "
                     f"{spec['course_learning_rate']:g})")
    if report.get("created"):
        lines.append(f"- Created: {report['created']}")
    lines += ["", "## Results", "", *_results_table(report)]
    lines += ["", "## Comparison", "", *_comparison_lines(report)]
    if report.get("forecast"):
        lines += ["", "## Forecast", "", *_forecast_lines(report)]
    lines += ["", "## Course reference", "", f"- {spec.get('reference') or 'n/a'}"]
    if spec.get("reference_val_metric") is not None:
        lines.append(f"- Reference val {metric}: {formatting.metric(spec['reference_val_metric'])}")
    probe = _probe_lines(report)
    if probe:
        lines += ["", "## Probe predictions", "", *probe]
    divergence = _divergence_lines(report)
    if divergence:
        lines += ["", "## Divergence", "", *divergence]
    stopping = _early_stopping_lines(report)
    if stopping:
        lines += ["", "## Early stopping", "", *stopping]
    if report.get("saved"):
        lines += ["", "## Saved models", "", *_saved_lines(report["saved"])]
    lines += ["", "## Provenance", "", *_provenance_lines(report)]
    lines += ["", "## Environment", ""]
    lines += [
        f"- {key}: {'n/a' if value is None else value}" for key, value in report["environment"].items()
    ]
    lines += ["", "## Curves", "", "![Training curves](curves.png)", ""]
    return "\n".join(lines)


# ---------------------------------------------------------------------------- curves


def _band(series: Sequence[Sequence[float | None]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-epoch mean, min and max over the runs that reached each epoch (NaN where none did)."""
    length = max(len(values) for values in series)
    table = np.full((len(series), length), np.nan)
    for row, values in zip(table, series):
        row[: len(values)] = np.asarray(values, dtype=np.float64)
    finite = np.isfinite(table)
    count = finite.sum(axis=0)
    mean = np.where(finite, table, 0.0).sum(axis=0) / np.maximum(count, 1)
    low = np.where(finite, table, np.inf).min(axis=0)
    high = np.where(finite, table, -np.inf).max(axis=0)
    empty = count == 0
    mean[empty] = low[empty] = high[empty] = np.nan
    return mean, low, high


def _spans_decades(ax: Any) -> bool:
    """Whether the plotted values are all positive and span over two decades (log scale reads better)."""
    values = np.concatenate([np.asarray(line.get_ydata(), dtype=np.float64) for line in ax.lines])
    values = values[np.isfinite(values)]
    return values.size > 0 and values.min() > 0 and values.max() / values.min() > 100


def plot_curves(report: Mapping[str, Any], path: Path) -> None:
    """curves.png: loss and metric per epoch, a colour per framework, solid train, dashed val."""
    # Imported here so that importing parity.report stays cheap; Figure + FigureCanvasAgg
    # draw without pyplot, so no global backend state is touched.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    metric = report["comparison"]["metric"]
    n_seeds = len(report["seeds"])
    fig = Figure(figsize=(11, 4.2), layout="constrained")
    FigureCanvasAgg(fig)
    for ax, key in zip(fig.subplots(1, 2), ("loss", metric)):
        for fw in jobs.in_display_order(report["frameworks"]):
            runs = report["frameworks"][fw]["runs"]
            for series_key, style, label in ((key, "-", "train"), (f"val_{key}", "--", "val")):
                series = [run["history"][series_key] for run in runs if run["history"].get(series_key)]
                if not series:
                    continue
                mean, low, high = _band(series)
                epochs = np.arange(1, mean.size + 1)
                marker = "o" if mean.size <= 30 else None
                ax.plot(epochs, mean, style, color=COLOURS[fw], marker=marker, markersize=3,
                        label=f"{fw} {label}")
                if len(series) > 1:
                    ax.fill_between(epochs, low, high, color=COLOURS[fw], alpha=0.15, linewidth=0)
        if key == "mae":
            _baseline_lines(ax, report.get("baselines", []))
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        if key == "loss" and ax.lines and _spans_decades(ax):
            ax.set_yscale("log")
        ax.set_xlabel("epoch")
        ax.set_ylabel(key)
        ax.set_title(key)
        ax.grid(alpha=0.3)
        if ax.lines:
            ax.legend()
    spread = (
        f"mean over the {n_seeds} seeds that reached each epoch, shaded band = min-max"
        if n_seeds > 1
        else "1 seed"
    )
    fig.suptitle(f"{report['model']} ({report['mode']}): {spread}")
    fig.savefig(path, format="png", dpi=100)


BASELINE_STYLES = (":", "--", "-.", (0, (5, 1, 1, 1, 1, 1)))  # grey reference lines, one dash pattern per baseline
# keras wide and under the others, keras-torch between: identical forecasts all show
FORECAST_WIDTHS = {"keras": 2.5, "keras-torch": 1.7, "lightning": 1.0}
BASELINE_COLOURS = ("tab:green", "tab:orange", "tab:blue", "tab:olive")


def _baseline_lines(ax: Any, baselines: Sequence[Mapping[str, Any]]) -> None:
    """Horizontal reference lines at each baseline's MAE: what a network's val_mae must get below."""
    for baseline, style in zip(baselines, itertools.cycle(BASELINE_STYLES)):
        if baseline["mae"] is not None:
            ax.axhline(baseline["mae"], color="0.4", linestyle=style, linewidth=1.2,
                       label=f"{baseline['name']} {formatting.metric(baseline['mae'])}")


def best_baseline(report: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The baseline with the lowest MAE (None without baselines)."""
    scored = [baseline for baseline in report.get("baselines", []) if baseline["mae"] is not None]
    return min(scored, key=lambda baseline: baseline["mae"]) if scored else None


def plot_forecast(report: Mapping[str, Any], path: Path) -> None:
    """forecast.png: the truth over the validation period against the forecasts. A model report shows each
    framework's forecast of its first seed and the best baseline; a baselines report shows every baseline."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    forecast = report["forecast"]
    steps = forecast["split_time"] + np.arange(len(forecast["truth"]))
    fig = Figure(figsize=(11, 4.2), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    ax.plot(steps, forecast["truth"], color="black", linewidth=1, label="truth")
    if report.get("kind") == BASELINES_KIND:
        shown = [baseline for baseline in report["baselines"] if baseline["forecast"] is not None]
        title = "each statistical forecast"
    else:
        seed = report["seeds"][0]
        for fw in jobs.in_display_order(report["frameworks"]):
            run = next((run for run in report["frameworks"][fw]["runs"] if run["seed"] == seed), None)
            if run and run.get("forecast"):
                ax.plot(steps, run["forecast"]["values"], color=COLOURS[fw], linewidth=FORECAST_WIDTHS[fw],
                        alpha=0.6 if fw == "keras" else 1.0,
                        label=f"{fw} (MAE {formatting.metric(run['forecast']['mae'])})")
        best = best_baseline(report)
        shown = [best] if best else []
        title = f"networks: seed {seed}" + ("; best baseline" if best else "")
    taken = {COLOURS[fw] for fw in jobs.in_display_order(report.get("frameworks", {}))}
    for baseline, colour in zip(shown, itertools.cycle([c for c in BASELINE_COLOURS if c not in taken])):
        ax.plot(steps, baseline["forecast"], color=colour, linewidth=1, linestyle="--",
                label=f"{baseline['name']} (MAE {formatting.metric(baseline['mae'])})")
    ax.set_xlabel("time step")
    ax.set_ylabel("value")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.suptitle(f"{report['model']}: forecast vs truth over the validation period ({title})")
    fig.savefig(path, format="png", dpi=100)


# ---------------------------------------------------------------------------- writing


# What other commands write into OUT/MODEL (`parity lrsweep`): a new run report replaces the directory
# but carries these over.
KEPT_FROM_OTHER_COMMANDS = ("lrsweep.json", "lrsweep.png")


def write_report(report: Mapping[str, Any], out_dir: Path, staging: Path | None = None,
                 name: str | None = None) -> Path:
    """Validate and write report.json, report.md, curves.png (trained networks), forecast.png (series) and
    report.html (report.md as one self-contained page, plots embedded) to out_dir/<name> atomically.

    `name` defaults to the model id. `staging`, if given, is a directory from `staging_dir(out_dir, model)`
    whose other files (logs...) move along with the report; otherwise a fresh one is used.
    """
    out_dir = Path(out_dir)
    model = report["model"]
    if staging is None:
        with staging_dir(out_dir, model) as tmp:
            return write_report(report, out_dir, staging=tmp, name=name)
    staging = Path(staging)
    if staging.parent.resolve() != out_dir.resolve():
        raise ValueError(f"staging directory {staging} is not inside {out_dir}")
    document = to_jsonable(report)
    validate_report(document)
    (staging / "report.json").write_text(
        json.dumps(document, indent=2, allow_nan=False) + "\n", encoding="utf-8"
    )
    markdown = render_markdown(document)
    (staging / "report.md").write_text(markdown, encoding="utf-8")
    plots = []
    if document.get("kind") != BASELINES_KIND:
        plot_curves(document, staging / "curves.png")
        plots.append("curves.png")
    if document.get("forecast"):
        plot_forecast(document, staging / "forecast.png")
        plots.append("forecast.png")
    images = {name: (staging / name).read_bytes() for name in plots}
    (staging / "report.html").write_text(html_report.render_html(markdown, images), encoding="utf-8")
    final = out_dir / (name or model)
    for kept in KEPT_FROM_OTHER_COMMANDS:
        if (final / kept).is_file() and not (staging / kept).exists():
            shutil.copy2(final / kept, staging / kept)
    swap_in(staging, final)
    return final
