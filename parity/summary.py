"""`parity report`: one table over many runs and benches, with a backend recommendation per row.

Sources, found by file name under each directory (hidden directories, such as abandoned
staging directories, are skipped):
- report.json (`parity run`): final validation metric per seed, its Welch 95% interval of
  lightning - keras, and the throughput ratio of the training runs;
- bench.json (`parity bench --out`): samples/s windows (median, min, max) and peak memory;
- lockstep.json (lockstep parity): the first training step where the two losses diverge.
A file that is not valid JSON, or lacks the keys read here, is skipped with a warning.

One row per (model, mode, device): mode is aligned, native or 'aligned except ...' (the
differences left native), device the class `cpu` or `gpu`. A bench row names no training
mode unless its settings do; it goes to the rows of that mode, or, where its model has no
run of that mode, to the model's other rows on its device (the speed of the model).
Throughput comes from the bench's framework-trainer, end-to-end, eager row (at the course
batch size when there are several) when there is one, else from the run report. A lockstep
report goes to the rows of its model, alignment and device; with several, the one trained
with the course's optimizer. Of two sources for the same row and kind, the later (run
reports: newer `created`) supersedes the earlier, with a warning.

Recommendation, per row, the first rule that applies:
1. Accuracy: with >= 2 seeds per framework and a 95% interval of lightning - keras that
   excludes 0 (Welch p < 0.05), the more accurate framework (higher accuracy; lower mae
   for regression).
2. Speed: if the throughput difference is material, the faster framework. Bench: the slower
   framework's fastest window is below the faster one's slowest (the windows do not overlap).
   Run report (one median, no spread): the ratio lies outside [0.95, 1/0.95].
3. Either: no significant accuracy or speed difference.
With fewer than 2 seeds the accuracy comparison is not statistical: rule 1 is skipped and
the reason says so.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonschema

from parity import formatting
from parity.catalog import CATALOG
from parity.errors import ParityError
from parity.report import FRAMEWORKS, to_jsonable, validate_report

KINDS = {"report.json": "run", "bench.json": "bench", "lockstep.json": "lockstep"}
BENCH_ROW = {"trainer": "framework", "scope": "end_to_end", "variant": "eager"}
SPEED_BAND = 0.95  # a run-report ratio within [0.95, 1/0.95] counts as equal speed
LOWER_IS_BETTER = ("mae",)
TASK_OF_METRIC = {"accuracy": "classification", "mae": "regression"}
MESSAGE_CHARS = 160

_NUMBER = {"type": "number"}
_NUMBER_OR_NULL = {"type": ["number", "null"]}
_WINDOW = {"type": "object", "required": ["median", "min", "max"],
           "properties": {"median": _NUMBER, "min": _NUMBER, "max": _NUMBER}}
_BENCH_FRAMEWORK = {"type": "object", "required": ["samples_per_s"],
                    "properties": {"samples_per_s": _WINDOW, "peak_mem_mb": _NUMBER_OR_NULL,
                                   "host_rss_mb": _NUMBER_OR_NULL}}
# The keys of bench.json and lockstep.json that this summary reads (more may be present).
BENCH_SCHEMA = {
    "type": "array",
    "items": {
        "type": "object",
        "required": ["model", "device", "variant", "scope", "trainer", "batch_size", "frameworks"],
        "properties": {
            "model": {"type": "string"},
            "device": {"type": "string"},
            "variant": {"type": "string"},
            "scope": {"enum": ["compute", "end_to_end"]},
            "trainer": {"enum": ["framework", "plain"]},
            "batch_size": {"type": "integer"},
            "frameworks": {"type": "object", "required": list(FRAMEWORKS),
                           "properties": {fw: _BENCH_FRAMEWORK for fw in FRAMEWORKS}},
            "throughput_ratio": _NUMBER_OR_NULL,
            "settings": {"type": "object"},
        },
    },
}
LOCKSTEP_SCHEMA = {
    "type": "object",
    "required": ["model", "steps", "tolerance", "first_divergence_step", "max_rel_loss_diff"],
    "properties": {
        "model": {"type": "string"},
        "steps": {"type": "integer"},
        "tolerance": _NUMBER,
        "first_divergence_step": {"type": ["integer", "null"]},
        "max_rel_loss_diff": _NUMBER_OR_NULL,
    },
}

LEGEND = [
    ("- Keras, Lightning: final validation metric (accuracy; mae for regression, lower is better), "
     "mean ± sample std over n seeds."),
    ("- Diff: lightning - keras with its Welch 95% t-interval; p: Welch t-test p-value. Both need "
     ">= 2 seeds per framework; with 1 seed the accuracy comparison is not statistical."),
    ("- Speed L/K: median samples/s of lightning over keras. Source `bench`: `parity bench`, "
     "framework trainer, end-to-end, eager (at the batch size shown); `run`: median train "
     "samples/s over the run's seeds."),
    "- Peak mem: GPU peak memory from the bench, keras / lightning; host RSS when not on a GPU.",
    "- Lockstep: first training step where the per-step losses differ beyond the lockstep tolerance.",
    ("- Recommendation, the first rule that applies: (1) accuracy differs significantly (>= 2 seeds "
     "each, 95% interval excludes 0, i.e. Welch p < 0.05): the more accurate framework; "
     "(2) throughput differs materially (bench: the slower framework's max window below the faster "
     f"one's min; run report: ratio outside [{SPEED_BAND}, {1 / SPEED_BAND:.3f}]): the faster "
     "framework; (3) either."),
]


@dataclass
class _Row:
    """What the sources say about one (model, mode, device); mode None: a bench that names no mode."""

    model: str
    mode: str | None
    device: str
    run: Mapping[str, Any] | None = None
    bench: Mapping[str, Any] | None = None
    lockstep: Mapping[str, Any] | None = None
    sources: dict[str, Path] = field(default_factory=dict)


Warn = Callable[[str], None]


# ---------------------------------------------------------------------------- scanning


def find_files(paths: Sequence[Path]) -> list[Path]:
    """Every report.json, bench.json and lockstep.json under `paths`; a path that is a file is taken as is."""
    found: list[Path] = []
    for root in map(Path, paths):
        if root.is_file():
            found.append(root)
            continue
        if not root.is_dir():
            raise ParityError(f"{root}: no such directory; name directories holding `parity run` "
                              "or `parity bench --out` results")
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames[:] = sorted(name for name in dirnames if not name.startswith("."))
            found += [Path(dirpath) / name for name in sorted(filenames) if name in KINDS]
    return list(dict.fromkeys(found))


def _kind(path: Path, data: Any) -> str | None:
    """run, bench or lockstep: by file name, else (a file named on the command line) by content."""
    if path.name in KINDS:
        return KINDS[path.name]
    if isinstance(data, list):
        return "bench"
    if isinstance(data, dict) and "first_divergence_step" in data:
        return "lockstep"
    if isinstance(data, dict) and "comparison" in data:
        return "run"
    return None


def _validate(kind: str, data: Any) -> None:
    if kind == "run":
        validate_report(data)
    else:
        schema = BENCH_SCHEMA if kind == "bench" else LOCKSTEP_SCHEMA
        jsonschema.validate(data, schema, cls=jsonschema.Draft202012Validator)


def _short(text: str) -> str:
    """`text` on one line, cut to MESSAGE_CHARS."""
    line = " ".join(text.split())
    return line if len(line) <= MESSAGE_CHARS else line[: MESSAGE_CHARS - 3] + "..."


def load(path: Path, warn: Warn) -> tuple[str, Any] | None:
    """(kind, document) of one file; None, after a one-line warning, when it is unreadable or invalid."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        warn(f"{path}: unreadable ({_short(str(error))}); skipped")
        return None
    kind = _kind(path, data)
    if kind is None:
        warn(f"{path}: not a run report, bench result or lockstep report; skipped")
        return None
    try:
        _validate(kind, data)
    except jsonschema.ValidationError as error:
        where = "/".join(str(part) for part in error.absolute_path) or "top level"
        warn(f"{path}: not a valid {kind} file ({where}: {_short(error.message)}); skipped")
        return None
    return kind, data


# ---------------------------------------------------------------------------- merging


def device_class(text: str) -> str:
    """`cpu` or `gpu` from a device description ('keras: gpu (H100); lightning: gpu (H100)' -> 'gpu')."""
    classes = []
    for part in text.lower().split(";"):
        part = part.split(":", 1)[1] if part.strip().startswith(FRAMEWORKS) else part
        classes.append("gpu" if "gpu" in part or "cuda" in part else "cpu" if "cpu" in part else part.strip())
    unique = sorted(set(classes))
    return unique[0] if len(unique) == 1 else "/".join(unique)


def mode_label(mode: str | None, native: Sequence[str] = ()) -> str | None:
    """'aligned', 'native', or 'aligned except a, b' for mode aligned-except (as align.Alignment.describe says it)."""
    if mode == "aligned-except":
        return f"aligned except {', '.join(sorted(native))}"
    return mode


def _lockstep_mode(lockstep: Mapping[str, Any]) -> str | None:
    """The mode label of a lockstep report: its `alignment`, without the trailing ' (native)'."""
    alignment = lockstep.get("alignment", "aligned")
    return alignment.removesuffix(" (native)") if isinstance(alignment, str) else None


def _course_optimizer(model: str, lockstep: Mapping[str, Any]) -> bool:
    """Whether a lockstep report trained with the course's optimizer (or does not say)."""
    spec = CATALOG.get(model)
    name = (lockstep.get("optimizer") or {}).get("name")
    return name is None or spec is None or spec.optimizer is None or name == spec.optimizer.name


def _attach(row: _Row, kind: str, document: Mapping[str, Any], path: Path, warn: Warn) -> None:
    """Put one source's document on `row`; a later source of the same kind supersedes an earlier one."""
    if kind in row.sources and row.sources[kind] != path:
        mode = row.mode or "any mode"
        warn(f"{row.sources[kind]}: superseded by {path} ({kind} of {row.model}, {mode}, {row.device})")
    setattr(row, kind, document)
    row.sources[kind] = path


def _bench_choice(candidates: list[Mapping[str, Any]]) -> Mapping[str, Any]:
    """The bench row at the course batch size when there is one, else the first."""
    spec = CATALOG.get(candidates[0]["model"])
    course = [row for row in candidates if spec is not None and row["batch_size"] == spec.batch_size]
    return (course or candidates)[0]


Key = tuple[str, str | None, str]


def _add_runs(rows: dict[Key, _Row], runs: list[tuple[Path, Any]], warn: Warn) -> None:
    """One row per (model, mode, device); of two reports with the same key the newer one counts."""
    for path, report in sorted(runs, key=lambda item: (item[1].get("created", ""), str(item[0]))):
        mode = mode_label(report["mode"], report.get("native_differences", ()))
        key = (report["model"], mode, device_class(report["environment"]["device"]))
        _attach(rows.setdefault(key, _Row(*key)), "run", report, path, warn)


def _add_bench(rows: dict[Key, _Row], path: Path, bench: Sequence[Mapping[str, Any]], warn: Warn) -> None:
    """The bench's framework-trainer end-to-end eager rows onto every matching row (a new row where none matches)."""
    groups: dict[Key, list[Mapping[str, Any]]] = {}
    for entry in bench:
        if all(entry[key] == value for key, value in BENCH_ROW.items()):
            mode = (entry.get("settings") or {}).get("mode")
            groups.setdefault((entry["model"], mode, device_class(entry["device"])), []).append(entry)
    for (model, mode, device), candidates in groups.items():
        same_mode = [row for (m, md, dv), row in rows.items()
                     if m == model and dv == device and (mode is None or md in (mode, None))]
        # A bench's mode names the torch optimizer implementation it timed; without a run of that
        # mode it still tells the model's speed, so it goes to the model's other rows.
        any_mode = [row for (m, _, dv), row in rows.items() if m == model and dv == device and row.bench is None]
        for row in same_mode or any_mode or [rows.setdefault((model, mode, device), _Row(model, mode, device))]:
            _attach(row, "bench", _bench_choice(candidates), path, warn)


def _add_lockstep(rows: dict[Key, _Row], path: Path, lockstep: Mapping[str, Any], warn: Warn) -> None:
    """A lockstep report onto the rows of its model, mode and device; the course optimizer's report wins."""
    mode = _lockstep_mode(lockstep)
    device = (lockstep.get("environment") or {}).get("device")
    targets = [row for (m, md, dv), row in rows.items()
               if m == lockstep["model"] and md in (mode, None) and (device is None or device_class(device) == dv)]
    if not targets:
        warn(f"{path}: no run report or bench of {lockstep['model']} ({mode}) on its device; not shown")
    preferred = _course_optimizer(lockstep["model"], lockstep)
    for row in targets:
        if row.lockstep is not None and _course_optimizer(row.model, row.lockstep) != preferred:
            if not preferred:
                continue
            del row.sources["lockstep"]  # another optimizer's report gives way without a warning
        _attach(row, "lockstep", lockstep, path, warn)


def merge(documents: Sequence[tuple[Path, str, Any]], warn: Warn) -> list[_Row]:
    """The rows of all run reports and bench results, with bench and lockstep results attached, sorted."""
    rows: dict[Key, _Row] = {}
    _add_runs(rows, [(path, doc) for path, kind, doc in documents if kind == "run"], warn)
    for path, kind, document in documents:
        if kind == "bench":
            _add_bench(rows, path, document, warn)
    for path, kind, document in documents:
        if kind == "lockstep":
            _add_lockstep(rows, path, document, warn)
    return [rows[key] for key in sorted(rows, key=lambda k: (k[0], k[1] or "", k[2]))]


# ---------------------------------------------------------------------------- recommending


def material_speed_difference(bench: Mapping[str, Any] | None, ratio: float | None) -> bool:
    """Whether the throughput difference is material: bench windows that do not overlap, else ratio off [0.95, 1/0.95]."""
    if bench is not None:
        windows = [bench["frameworks"][fw]["samples_per_s"] for fw in FRAMEWORKS]
        slow, fast = sorted(windows, key=lambda window: window["median"])
        return slow["max"] < fast["min"]
    return ratio is not None and not SPEED_BAND <= ratio <= 1 / SPEED_BAND


def recommend(metric: str | None, final_val: Mapping[str, Any] | None, throughput_ratio: float | None,
              speed_material: bool) -> dict[str, str]:
    """{backend: keras|lightning|either, reason} by the rule in this module's docstring."""
    seeds = min(final_val[fw].get("n", 0) for fw in FRAMEWORKS) if final_val else 0
    lo, hi = final_val["diff_ci95"] if final_val else (None, None)
    if seeds >= 2 and lo is not None and hi is not None and (lo > 0 or hi < 0):
        lightning_higher = lo > 0
        backend = "keras" if lightning_higher == (metric in LOWER_IS_BETTER) else "lightning"
        note = f" ({metric}: lower is better)" if metric in LOWER_IS_BETTER else ""
        return {"backend": backend,
                "reason": f"{metric} differs significantly: {formatting.metric(final_val['diff_mean'], '+')} "
                          f"[{formatting.metric(lo, '+')}, {formatting.metric(hi, '+')}]{note}"}
    if final_val is None:
        caveat = "accuracy not measured (no run report)"
    elif seeds < 2:
        caveat = f"accuracy comparison not statistical ({seeds} seed{'s' if seeds != 1 else ''})"
    else:
        caveat = None
    if speed_material and throughput_ratio:
        factor = formatting.significant(max(throughput_ratio, 1 / throughput_ratio), 3)
        backend = "lightning" if throughput_ratio > 1 else "keras"
        reason = f"faster at equal accuracy: {factor}x" if caveat is None else f"faster: {factor}x; {caveat}"
        return {"backend": backend, "reason": reason}
    if caveat is None and throughput_ratio is not None:
        return {"backend": "either", "reason": "no significant accuracy or speed difference"}
    speed = "speed not measured" if throughput_ratio is None else "no material speed difference"
    return {"backend": "either", "reason": f"{caveat or 'no significant accuracy difference'}; {speed}"}


def _accuracy(row: _Row) -> dict[str, dict[str, Any]]:
    if row.run is None:
        return {fw: {"mean": None, "std": None, "n": 0} for fw in FRAMEWORKS}
    final = row.run["comparison"]["final_val"]
    return {fw: {"mean": final[fw]["mean"], "std": final[fw]["std"],
                 "n": final[fw].get("n", len(row.run["frameworks"][fw]["runs"]))} for fw in FRAMEWORKS}


def _summary_row(row: _Row) -> dict[str, Any]:
    """The machine-readable summary of one row."""
    spec = CATALOG.get(row.model)
    metric = row.run["comparison"]["metric"] if row.run else (spec.metric if spec else None)
    accuracy = _accuracy(row)
    final = row.run["comparison"]["final_val"] if row.run else {}
    if row.bench is not None:
        medians = [row.bench["frameworks"][fw]["samples_per_s"]["median"] for fw in FRAMEWORKS]
        ratio = row.bench.get("throughput_ratio")
        if ratio is None and medians[0] > 0:
            ratio = medians[1] / medians[0]
        source = "bench"
    else:
        ratio = row.run["comparison"]["throughput_ratio"] if row.run else None
        source = "run" if ratio is not None else None
    bench_fw = row.bench["frameworks"] if row.bench else {}
    final_val = {**final, **accuracy} if row.run else None
    lockstep = row.lockstep
    return to_jsonable({
        "model": row.model,
        "mode": row.mode,
        "device": row.device,
        "task": spec.task if spec else TASK_OF_METRIC.get(metric),
        "metric": metric,
        "accuracy": accuracy,
        "diff_mean": final.get("diff_mean"),
        "diff_ci95": final.get("diff_ci95", [None, None]),
        "welch_p": final.get("welch_p"),
        "throughput_ratio": ratio,
        "throughput_source": source,
        "bench_batch_size": row.bench["batch_size"] if row.bench else None,
        "peak_mem_mb": {fw: bench_fw.get(fw, {}).get("peak_mem_mb") for fw in FRAMEWORKS},
        "host_rss_mb": {fw: bench_fw.get(fw, {}).get("host_rss_mb") for fw in FRAMEWORKS},
        "lockstep": None if lockstep is None else {
            key: lockstep[key] for key in ("first_divergence_step", "steps", "tolerance", "max_rel_loss_diff")
        },
        "recommendation": recommend(metric, final_val, ratio, material_speed_difference(row.bench, ratio)),
        "sources": [str(path) for path in row.sources.values()],
    })


def summarize(paths: Sequence[Path], warn: Warn) -> list[dict[str, Any]]:
    """The summary rows of every run report, bench result and lockstep report under `paths`."""
    documents = []
    for path in find_files(paths):
        loaded = load(path, warn)
        if loaded is not None:
            documents.append((path, *loaded))
    if not any(kind in ("run", "bench") for _, kind, _ in documents):
        raise ParityError(f"no usable run report (report.json) or bench result (bench.json) under "
                          f"{', '.join(map(str, paths))}; write them with `parity run --out DIR` "
                          "or `parity bench --out DIR`")
    return [_summary_row(row) for row in merge(documents, warn)]


# ---------------------------------------------------------------------------- rendering


def _accuracy_cell(summary: Mapping[str, Any]) -> str:
    return "n/a" if not summary["n"] else f"{formatting.mean_std(summary)} (n={summary['n']})"


def _diff_cell(row: Mapping[str, Any]) -> str:
    lo, hi = row["diff_ci95"]
    diff = formatting.metric(row["diff_mean"], "+")
    if row["diff_mean"] is None or lo is None or hi is None:
        return diff if row["diff_mean"] is None else f"{diff} (no CI: 1 seed)"
    return f"{diff} [{formatting.metric(lo, '+')}, {formatting.metric(hi, '+')}]"


def _memory_cell(row: Mapping[str, Any]) -> str:
    for key, label in (("peak_mem_mb", ""), ("host_rss_mb", " (host RSS)")):
        values = row[key]
        if any(value is not None for value in values.values()):
            return " / ".join(formatting.rate(values[fw]) for fw in FRAMEWORKS) + label
    return "n/a"


def _lockstep_cell(lockstep: Mapping[str, Any] | None) -> str:
    if lockstep is None:
        return "-"
    if lockstep["first_divergence_step"] is None:
        return f"none in {lockstep['steps']} steps"
    return f"step {lockstep['first_divergence_step']} of {lockstep['steps']}"


def _source_cell(row: Mapping[str, Any]) -> str:
    if row["throughput_source"] == "bench":
        return f"bench (batch {row['bench_batch_size']})"
    return row["throughput_source"] or "n/a"


def _by_task(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """One line per task: each recommended backend and the rows that led to it."""
    tasks: dict[str, dict[str, list[str]]] = {}
    for row in rows:
        label = " ".join(part for part in (row["model"], row["mode"], row["device"]) if part)
        tasks.setdefault(row["task"] or "unknown", {}).setdefault(row["recommendation"]["backend"], []).append(label)
    return [f"- {task}: " + "; ".join(f"{backend} ({', '.join(labels)})" for backend, labels in backends.items())
            for task, backends in sorted(tasks.items())]


def render_markdown(rows: Sequence[Mapping[str, Any]]) -> str:
    """The summary in Markdown: the table, recommendations by task, legend and source files."""
    lines = [
        "# Parity summary", "",
        ("| Model | Mode | Device | Task | Metric | Keras | Lightning | Diff L-K [95% CI] | p "
         "| Speed L/K | Speed source | Peak mem MB K / L | Lockstep | Recommendation |"),
        "|---|---|---|---|---|---:|---:|---:|---:|---:|---|---:|---|---|",
    ]
    for row in rows:
        recommendation = row["recommendation"]
        cells = [row["model"], row["mode"] or "-", row["device"], row["task"] or "n/a", row["metric"] or "n/a",
                 _accuracy_cell(row["accuracy"]["keras"]), _accuracy_cell(row["accuracy"]["lightning"]),
                 _diff_cell(row), formatting.significant(row["welch_p"], 3), formatting.significant(row["throughput_ratio"], 3), _source_cell(row),
                 _memory_cell(row), _lockstep_cell(row["lockstep"]),
                 f"**{recommendation['backend']}**: {recommendation['reason']}"]
        lines.append("| " + " | ".join(cells) + " |")
    sources = sorted({source for row in rows for source in row["sources"]})
    lines += ["", "## By task", "", *_by_task(rows)]
    lines += ["", "## Legend", "", *LEGEND]
    lines += ["", "## Sources", "", *(f"- {source}" for source in sources), ""]
    return "\n".join(lines)

