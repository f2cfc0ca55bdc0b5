"""`parity report`: one table over many runs and benches, with a backend recommendation per row.

Sources, found by file name under each directory (hidden directories, such as abandoned
staging directories, are skipped):
- report.json (`parity run`): final validation metric per seed;
- bench.json (`parity bench --out`): samples/s windows (median, min, max), the bootstrap 95%
  interval of the speed ratio where the bench records one, and peak memory;
- lockstep.json (lockstep parity): the first training step where the two losses diverge.
A file that is not valid JSON, or lacks the keys read here, is skipped with a warning.

Rows are keyed by (model, provenance key) (`parity.provenance.provenance_key`: data source and
hash, epochs, mode and alignment, device, threads, versions, forward check): records whose key
differs are never merged, so a synthetic 2-epoch run and a real run of one model are two rows.
A bench row or lockstep report goes to the run rows of its model whose settings key
(`provenance.SETTING_FIELDS`: the same without epochs and forward check) equals its own;
with none, a bench makes a row of its own and a lockstep report is not shown (warning). Of
two sources for the same row and kind, the later (run reports: newer `created`) supersedes
the earlier, with a warning. The table names each row's provenance and lists it beneath.

Accuracy, per row, from the run report's per-seed final values (docs/methodology.md):
paired t on the per-seed differences lightning - keras (primary), Welch (secondary), and
TOST equivalence at the margin (default 0.01 absolute for accuracy, 5% of the keras mean for
mae; `--margin`). Holm's step-down correction is applied across the table's tested rows, to
the paired two-sided p-values (one family) and to the TOST p-values (another family). The
verdict after Holm: `equivalent` (Holm-adjusted TOST p < 0.05), else `different`
(Holm-adjusted paired p < 0.05), else `inconclusive` with the seeds needed at level 0.05/m;
rows without a test say why: `too few seeds`, `degenerate` (no spread in the differences),
`undefined`, `not measured`.

Recommendation, per row, the first rule that applies:
1. `different`: the more accurate framework (higher accuracy; lower mae).
2. Speed material: the faster framework, "at equal accuracy" only when `equivalent`, else
   with the accuracy caveat (inconclusive and the seeds needed, degenerate, ...). Material:
   the bench's bootstrap 95% interval of lightning/keras lies entirely outside
   [0.95, 1/0.95]; for a bench without that interval, the slower framework's fastest window is
   below the faster one's slowest. A run report's ratio is shown but never material: the run
   trains the frameworks one after the other (load that drifts between them lands in the
   ratio) and has one median, no interval.
3. Either: equal accuracy (when `equivalent`) or the accuracy caveat, and no material speed
   difference (or no speed verdict: speed from a run report only, or not measured).

Three frameworks: a row whose run report or bench has other frameworks than the default two
(Keras on torch, `--frameworks`) gets a column per framework, and the statistics above for every
pair (a, b) of its frameworks (parity.jobs.framework_pairs: the difference b - a, the speed ratio
b / a; an MAE margin relative to a's mean) under `pairs`; every pair's tests join the Holm
families. Its recommendation (`recommend_among`) names the best framework: one that is
significantly less accurate than another is out (if one remains, it is the recommendation, for
its accuracy); of the rest, the ones that no other is materially faster than, "at equal
accuracy" when every pair among them is `equivalent`; when that leaves several, they are named
together ("keras or keras-torch"; "either" when it is all of them). A table with such a row
shows the per-framework columns and a table of pairs beneath; tables of the default two
frameworks only are unchanged.

Output: `render_markdown` (the table, by task, provenance, legend, sources); `write_summary`
writes it to a file X.md with, beside it, X-accuracy.png and X-speed.png (parity.summary_plots)
and X.html (the same Markdown as one self-contained page, parity.html_report).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import jsonschema

from parity import compare, formatting, html_report, provenance, summary_plots
from parity.catalog import CATALOG
from parity.errors import ParityError
from parity.fileio import write_bytes_atomic, write_text_atomic
from parity.jobs import ALL_FRAMEWORKS, FRAMEWORK_NAMES, framework_pairs, in_display_order, pair_key, pair_of
from parity.report import BASELINES_KIND, FRAMEWORKS, final_values_by_seed, to_jsonable, validate_report

KINDS = {"report.json": "run", "bench.json": "bench", "lockstep.json": "lockstep"}
BENCH_ROW = {"trainer": "framework", "scope": "end_to_end", "variant": "eager"}
BENCH_INPUTS = ("recommended", "single_threaded")  # the end-to-end input pipeline a row's speed comes from, preferred first
SPEED_BAND = 0.95  # a speed ratio within [0.95, 1/0.95] counts as equal speed
LOWER_IS_BETTER = ("mae",)
TASK_OF_METRIC = {"accuracy": "classification", "mae": "regression"}
METRIC_WORDS = {"accuracy": "accuracy", "mae": "MAE"}
MESSAGE_CHARS = 160
DEFAULT_PAIR = pair_key(FRAMEWORKS)  # "lightning/keras": the comparison of a row of the default two frameworks

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
            # Two frameworks or more (keras and lightning by default; keras-torch with `--frameworks`).
            "frameworks": {"type": "object", "properties": {fw: _BENCH_FRAMEWORK for fw in ALL_FRAMEWORKS},
                           "anyOf": [{"required": list(pair)} for pair in framework_pairs(ALL_FRAMEWORKS)]},
            "throughput_ratio": _NUMBER_OR_NULL,
            "throughput_ratio_ci95": {"type": ["array", "null"], "items": _NUMBER_OR_NULL,
                                      "minItems": 2, "maxItems": 2},
            "ratios": {"type": "object", "additionalProperties": {
                "type": "object", "required": ["ratio"],
                "properties": {"ratio": _NUMBER_OR_NULL,
                               "interval": {"type": ["array", "null"], "items": _NUMBER_OR_NULL,
                                            "minItems": 2, "maxItems": 2}}}},
            "settings": {"type": "object"},
            "provenance": {"type": "object"},
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
        "provenance": {"type": "object"},
    },
}


def legend(margins: Mapping[str, compare.Margin]) -> list[str]:
    """The legend beneath the table, with the equivalence margins in use."""
    margin_text = ", ".join(f"{metric} ±{margin.describe()}" for metric, margin in sorted(margins.items()))
    band = f"[{SPEED_BAND}, {1 / SPEED_BAND:.3f}]"
    return [
        ("- Keras, Lightning: final validation metric (accuracy; mae for regression, lower is better), "
         "mean ± sample std over n seeds."),
        ("- Paired L-K: mean of the per-seed differences lightning - keras (runs matched by seed: same batch "
         "order and, aligned, same initial weights) with the paired t 95% interval; r: correlation of the two "
         "frameworks' per-seed results. Welch L-K: the unpaired Welch 95% interval (secondary)."),
        (f"- Verdict (margin {margin_text}; `--margin`): TOST equivalence and the paired two-sided test at "
         "alpha 0.05, each with Holm's step-down correction across the table's tested rows (the paired p-values "
         "form one family, the TOST p-values another); Holm p: the adjusted paired / TOST p. `equivalent`: "
         "Holm TOST p < 0.05 (the difference lies within the margin); else `different`: Holm paired p < 0.05; "
         "else `inconclusive`, with the seeds that would settle it (80% power at the observed mean and sd of "
         "the differences, at level 0.05/m). No test (no significance verdict): `too few seeds` (< 2 pairs), "
         "`degenerate` (the differences have no spread), `undefined`, `not measured`."),
        ("- Speed L/K: median samples/s of lightning over keras, with the bench's bootstrap 95% interval where it "
         "has one. Source `bench`: `parity bench`, framework trainer, end-to-end, eager (at the batch size "
         "shown; with each framework's recommended input pipeline where the bench measured both); `run`: median "
         "train samples/s over the run's seeds."),
        "- Peak mem: GPU peak memory from the bench, keras / lightning; host RSS when not on a GPU.",
        "- Lockstep: first training step where the per-step losses differ beyond the lockstep tolerance.",
        ("- Recommendation, the first rule that applies: (1) `different`: the more accurate framework; "
         f"(2) speed differs materially (the bench's 95% interval of the ratio entirely outside {band}; a bench "
         "without that interval: the slower framework's max window below the faster one's min; a run report's "
         "ratio never: it trains the frameworks one after the other): the faster framework, \"at equal accuracy\" only when `equivalent`, else with "
         "the accuracy caveat; (3) either."),
        ("- Prov.: the provenance of the row (data source and hash, epochs, mode, device, threads, versions, "
         "forward check), listed under Provenance; records whose provenance differs are never merged."),
    ]


def frameworks_legend(margins: Mapping[str, compare.Margin], frameworks: Sequence[str]) -> list[str]:
    """The legend of a table with other frameworks than the default two (a column per framework, a table of pairs)."""
    margin_text = ", ".join(f"{metric} ±{margin.describe()}" for metric, margin in sorted(margins.items()))
    band = f"[{SPEED_BAND}, {1 / SPEED_BAND:.3f}]"
    names = ", ".join(FRAMEWORK_NAMES[fw] for fw in frameworks)
    return [
        (f"- {names}: final validation metric (accuracy; mae for regression, lower is better), mean ± sample std "
         "over n seeds; n/a: the framework is not in the row's run report."),
        ("- Pairs: every pair of a row's frameworks, B vs A (A first in the order keras, lightning, keras-torch). "
         "keras-torch vs keras: the same Keras API on TensorFlow and on torch (the runtime and its kernels); "
         "keras-torch vs lightning: the same torch kernels under the Keras and the Lightning API (defaults, "
         "training loop)."),
        ("- Paired B-A: mean of the per-seed differences b - a (runs matched by seed) with the paired t 95% "
         "interval; r: correlation of the two frameworks' per-seed results. Welch B-A: the unpaired Welch 95% "
         "interval (secondary). A relative margin (mae) is relative to A's mean."),
        (f"- Verdict (margin {margin_text}; `--margin`): TOST equivalence and the paired two-sided test at "
         "alpha 0.05, each with Holm's step-down correction across every tested pair of every row of the table "
         "(the paired p-values form one family, the TOST p-values another); Holm p: the adjusted paired / TOST p. "
         "`equivalent`: Holm TOST p < 0.05; else `different`: Holm paired p < 0.05; else `inconclusive`, with the "
         "seeds that would settle it (80% power, level 0.05/m). No test: `too few seeds`, `degenerate`, "
         "`undefined`, `not measured`."),
        ("- Speed B/A: median samples/s of b over a, from the bench (the median over paired windows, with its "
         "bootstrap 95% interval; framework trainer, end-to-end, eager, the recommended input pipeline where "
         "measured) or the run (median train samples/s over its seeds: no interval, no verdict)."),
        "- Peak mem: GPU peak memory from the bench per framework; host RSS when not on a GPU.",
        ("- Lockstep: first training step where the per-step losses differ beyond the lockstep tolerance (in the "
         "table of pairs, each pair's, where the lockstep report compared it)."),
        ("- Recommendation: a framework significantly less accurate than another (`different`) is out; if one "
         "remains, it is recommended for its accuracy. Of the rest, those no other is materially faster than "
         f"(the bench's 95% interval of the ratio entirely outside {band}; without one, the windows do not "
         "overlap; a run report's ratio never): \"at equal accuracy\" when every pair among them is `equivalent`, "
         "else with each pair's accuracy caveat. Several left: named together (\"either\": all of them)."),
        ("- Prov.: the provenance of the row (data source and hash, epochs, mode, device, threads, versions, "
         "forward check), listed under Provenance; records whose provenance differs are never merged."),
    ]


@dataclass
class _Row:
    """What the sources with one provenance say about one model; `settings` is the key a bench or lockstep must match."""

    model: str
    key: str
    settings: str
    mode: str | None
    device: str
    run: Mapping[str, Any] | None = None
    bench: Mapping[str, Any] | None = None
    lockstep: Mapping[str, Any] | None = None
    sources: dict[str, Path] = field(default_factory=dict)

    @property
    def frameworks(self) -> tuple[str, ...]:
        """The frameworks its run report and bench measured, in display order."""
        return in_display_order({fw for record in (self.run, self.bench) if record is not None
                                 for fw in record["frameworks"]})


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
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as error:  # too deeply nested
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
    if kind == "run" and data.get("kind") == BASELINES_KIND:
        return None  # statistical forecasts only (c4w1_stat_forecast): no framework to compare
    if kind == "run" and data.get("status") in ("failed", "partial"):
        warn(f"{path}: a {data['status']} run ({_short(data.get('status_note') or 'not finished')}); skipped: run "
             "it again to complete it")
        return None
    return kind, data


# ---------------------------------------------------------------------------- merging


def device_class(text: str) -> str:
    """`cpu` or `gpu` from a device description ('keras: gpu (H100); lightning: gpu (H100)' -> 'gpu')."""
    classes = []
    for part in text.lower().split(";"):
        part = part.split(":", 1)[1] if part.strip().startswith(ALL_FRAMEWORKS) else part
        classes.append("gpu" if "gpu" in part or "cuda" in part else "cpu" if "cpu" in part else part.strip())
    unique = sorted(set(classes))
    return unique[0] if len(unique) == 1 else "/".join(unique)


def mode_label(mode: str | None, native: Sequence[str] = ()) -> str | None:
    """'aligned', 'native', or 'aligned except a, b' for mode aligned-except (as align.Alignment.describe says it)."""
    if mode == "aligned-except":
        return f"aligned except {', '.join(sorted(native))}"
    return mode


def _record_mode(record: Mapping[str, Any]) -> str | None:
    """The mode label of a record, from its provenance (or what a legacy record says)."""
    record_provenance = provenance.record_provenance(record)
    return mode_label(record_provenance.get("mode"), record_provenance.get("native_differences") or ())


def _record_device(record: Mapping[str, Any]) -> str:
    """`cpu` or `gpu` from the devices in a record's provenance, else its `device` text."""
    devices = provenance.record_provenance(record).get("device") or {}
    text = "; ".join(f"{fw}: {devices[fw]}" for fw in ALL_FRAMEWORKS if devices.get(fw))
    return device_class(text or str(record.get("device", "unknown")))


def _course_optimizer(model: str, lockstep: Mapping[str, Any]) -> bool:
    """Whether a lockstep report trained with the course's optimizer (or does not say)."""
    spec = CATALOG.get(model)
    name = (lockstep.get("optimizer") or {}).get("name")
    return name is None or spec is None or spec.optimizer is None or name == spec.optimizer.name


def _attach(row: _Row, kind: str, document: Mapping[str, Any], path: Path, warn: Warn) -> None:
    """Put one source's document on `row`; a later source of the same kind supersedes an earlier one."""
    if kind in row.sources and row.sources[kind] != path:
        warn(f"{row.sources[kind]}: superseded by {path} ({kind} of {row.model}, {row.mode or 'any mode'}, "
             f"{row.device}, provenance {row.key})")
    setattr(row, kind, document)
    row.sources[kind] = path


def _bench_choice(candidates: list[Mapping[str, Any]]) -> Mapping[str, Any]:
    """The bench row at the course batch size when there is one, with each framework's recommended input pipeline
    when the bench measured several; else the first."""
    spec = CATALOG.get(candidates[0]["model"])
    course = [row for row in candidates if spec is not None and row["batch_size"] == spec.batch_size] or candidates
    return min(course, key=lambda row: BENCH_INPUTS.index(row.get("input")) if row.get("input") in BENCH_INPUTS
               else len(BENCH_INPUTS))


Key = tuple[str, str]


def _new_row(rows: dict[Key, _Row], record: Mapping[str, Any]) -> _Row:
    key = (record["model"], provenance.provenance_key(record))
    if key not in rows:
        rows[key] = _Row(record["model"], key[1], provenance.provenance_key(record, provenance.SETTING_FIELDS),
                         _record_mode(record), _record_device(record))
    return rows[key]


def _add_runs(rows: dict[Key, _Row], runs: list[tuple[Path, Any]], warn: Warn) -> None:
    """One row per (model, provenance key); of two reports with the same key the newer one counts."""
    for path, report in sorted(runs, key=lambda item: (item[1].get("created", ""), str(item[0]))):
        _attach(_new_row(rows, report), "run", report, path, warn)


def _add_bench(rows: dict[Key, _Row], path: Path, bench: Sequence[Mapping[str, Any]], warn: Warn) -> None:
    """The bench's framework-trainer end-to-end eager rows onto the run rows of the same settings (else a row of their own)."""
    groups: dict[tuple[str, str], list[Mapping[str, Any]]] = {}
    for entry in bench:
        if all(entry[key] == value for key, value in BENCH_ROW.items()):
            settings = provenance.provenance_key(entry, provenance.SETTING_FIELDS)
            groups.setdefault((entry["model"], settings), []).append(entry)
    for (model, settings), candidates in groups.items():
        chosen = _bench_choice(candidates)
        targets = [row for row in rows.values() if row.model == model and row.settings == settings and row.run]
        for row in targets or [_new_row(rows, chosen)]:
            _attach(row, "bench", chosen, path, warn)


def _add_lockstep(rows: dict[Key, _Row], path: Path, lockstep: Mapping[str, Any], warn: Warn) -> None:
    """A lockstep report onto the rows of its model and settings; the course optimizer's report wins."""
    settings = provenance.provenance_key(lockstep, provenance.SETTING_FIELDS)
    targets = [row for row in rows.values() if row.model == lockstep["model"] and row.settings == settings]
    if not targets:
        warn(f"{path}: no run report or bench of {lockstep['model']} ({_record_mode(lockstep)}) with the same "
             f"provenance (settings {settings}); not shown")
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
    return sorted(rows.values(), key=lambda row: (row.model, row.mode or "", row.device, row.key))


# ---------------------------------------------------------------------------- accuracy statistics


def accuracy_comparison(report: Mapping[str, Any], margin: compare.Margin,
                        pair: tuple[str, str] = FRAMEWORKS) -> dict[str, Any]:
    """Paired, Welch and TOST (uncorrected) of one run report, recomputed from its per-seed final values: the
    difference b - a of `pair` (a, b), lightning - keras by default; a relative margin is relative to a's mean."""
    metric = report["comparison"]["metric"]
    finals = {fw: final_values_by_seed(fw, report["frameworks"][fw]["runs"], metric) for fw in pair}
    return compare.final_val_comparison(finals[pair[0]], finals[pair[1]], metric, margin, names=pair)


def apply_holm(rows: Sequence[dict[str, Any]]) -> None:
    """Holm across the rows' tested comparisons (paired p one family, TOST p another); set each row's verdict.

    Rows without a test keep the reason (`too few seeds`, `degenerate`, ...) as their verdict; an
    `inconclusive` row gets the seeds needed at level ALPHA / m, the strictest Holm step.
    """
    tested = [row for row in rows if row["equivalence"] and row["equivalence"]["p"] is not None]
    adjusted_difference = compare.holm([row["paired"]["p"] for row in tested])
    adjusted_equivalence = compare.holm([row["equivalence"]["p"] for row in tested])
    for row in rows:
        row["holm"] = None
        row["verdict"] = row["equivalence"]["verdict"] if row["equivalence"] else "not measured"
        row["seeds_needed"] = None
    for row, p_difference, p_equivalence in zip(tested, adjusted_difference, adjusted_equivalence):
        row["holm"] = {"m": len(tested), "p_difference": p_difference, "p_equivalence": p_equivalence}
        row["verdict"] = compare.decide(p_difference, p_equivalence)
        if row["verdict"] == "inconclusive":
            row["seeds_needed"], _ = compare.seeds_needed(row["paired"]["mean"], row["paired"]["sd"],
                                                          row["equivalence"]["margin"], compare.ALPHA / len(tested))


# ---------------------------------------------------------------------------- recommending


def bench_ratio(bench: Mapping[str, Any], pair: tuple[str, str] = FRAMEWORKS) -> dict[str, Any]:
    """{"ratio", "interval"} of b / a for `pair` (a, b) in a bench row: its `ratios` entry, or (a bench of the
    default two frameworks) its throughput_ratio and interval; the ratio of the median samples/s where the bench
    records none, with no interval."""
    key = pair_key(pair)
    entry = dict((bench.get("ratios") or {}).get(key) or {})
    if not entry and key == DEFAULT_PAIR:
        entry = {"ratio": bench.get("throughput_ratio"), "interval": bench.get("throughput_ratio_ci95")}
    medians = [bench["frameworks"][fw]["samples_per_s"]["median"] for fw in pair]
    if entry.get("ratio") is None and medians[0] > 0:
        entry["ratio"] = medians[1] / medians[0]
    return {"ratio": entry.get("ratio"), "interval": entry.get("interval")}


def material_speed_difference(bench: Mapping[str, Any] | None, pair: tuple[str, str] = FRAMEWORKS) -> bool:
    """Whether the bench shows a material speed difference between the frameworks of `pair` (the rule in this
    module's docstring).

    Without a bench there is no speed verdict: a run report's ratio comes from frameworks trained
    one after the other, with no interval.
    """
    if bench is None:
        return False
    lo, hi = bench_ratio(bench, pair)["interval"] or (None, None)
    if lo is not None and hi is not None:
        return hi < SPEED_BAND or lo > 1 / SPEED_BAND
    windows = [bench["frameworks"][fw]["samples_per_s"] for fw in pair]
    slow, fast = sorted(windows, key=lambda window: window["median"])
    return slow["max"] < fast["min"]


def _speed_text(ratio: float, ratio_ci95: Sequence[float | None] | None) -> str:
    """'1.7x' or '1.7x [1.62, 1.79]': how many times faster the faster framework is."""
    factor = formatting.significant(max(ratio, 1 / ratio), 3)
    lo, hi = ratio_ci95 or (None, None)
    if lo is None or hi is None or lo <= 0:
        return f"{factor}x"
    bounds = (lo, hi) if ratio >= 1 else (1 / hi, 1 / lo)
    return f"{factor}x [{formatting.significant(bounds[0], 3)}, {formatting.significant(bounds[1], 3)}]"


def _accuracy_caveat(metric: str | None, row: Mapping[str, Any]) -> str:
    """Why accuracy does not decide: inconclusive (and the seeds needed), or why no test was made."""
    name = metric or "accuracy"
    verdict = row["verdict"]
    if verdict == "not measured":
        return f"{name} not measured (no run report)"
    if verdict == "too few seeds":
        seeds = row["paired"]["n"]
        return f"{name} comparison not statistical ({seeds} seed{'s' if seeds != 1 else ''})"
    if verdict in ("degenerate", "undefined"):
        return f"{name} comparison {verdict} ({row['paired']['note']}): no significance verdict"
    needed = row["seeds_needed"]
    settle = (f"{needed} seeds would settle it" if needed is not None
              else f"more than {compare.MAX_SEEDS:,} seeds would be needed")
    return (f"{name} inconclusive ({formatting.metric(row['paired']['mean'], '+')} with "
            f"{row['paired']['n']} seeds; {settle})")


def _no_speed_verdict(throughput_ratio: float | None, source: str | None) -> str:
    if throughput_ratio is None:
        return "speed not measured"
    if source == "run":
        return "no speed verdict (run report only: the frameworks trained one after the other; use `parity bench`)"
    return "no material speed difference"


def recommend(metric: str | None, row: Mapping[str, Any], throughput_ratio: float | None, speed_material: bool,
              ratio_ci95: Sequence[float | None] | None = None, throughput_source: str | None = "bench") -> dict[str, str]:
    """{backend: keras|lightning|either, reason} by the rule in this module's docstring.

    `row` holds the accuracy statistics after Holm: `verdict`, `paired`, `equivalence`, `holm`,
    `seeds_needed` (as `summarize` makes them).
    """
    verdict = row["verdict"]
    paired = row["paired"]
    if verdict == "different":
        lo, hi = paired["ci95"]
        backend = "keras" if (paired["mean"] > 0) == (metric in LOWER_IS_BETTER) else "lightning"
        note = f"; {metric}: lower is better" if metric in LOWER_IS_BETTER else ""
        return {"backend": backend,
                "reason": f"{metric} differs: {formatting.metric(paired['mean'], '+')} "
                          f"[{formatting.metric(lo, '+')}, {formatting.metric(hi, '+')}] "
                          f"(paired, Holm p = {formatting.significant(row['holm']['p_difference'], 2)}{note})"}
    if verdict == "equivalent":
        margin = formatting.metric(row["equivalence"]["margin"])
        equal = (f"equal {METRIC_WORDS.get(metric, metric)} (within ±{margin}, "
                 f"Holm TOST p = {formatting.significant(row['holm']['p_equivalence'], 2)})")
        if speed_material and throughput_ratio:
            return {"backend": "lightning" if throughput_ratio > 1 else "keras",
                    "reason": f"faster at {equal}: {_speed_text(throughput_ratio, ratio_ci95)}"}
        return {"backend": "either", "reason": f"{equal}; {_no_speed_verdict(throughput_ratio, throughput_source)}"}
    caveat = _accuracy_caveat(metric, row)
    if speed_material and throughput_ratio:
        return {"backend": "lightning" if throughput_ratio > 1 else "keras",
                "reason": f"faster: {_speed_text(throughput_ratio, ratio_ci95)}; {caveat}"}
    return {"backend": "either", "reason": f"{caveat}; {_no_speed_verdict(throughput_ratio, throughput_source)}"}


def _more_accurate(metric: str | None, key: str, comparison: Mapping[str, Any]) -> str:
    """The more accurate framework of a pair whose difference b - a is significant."""
    a, b = pair_of(key)
    return b if (comparison["paired"]["mean"] > 0) != (metric in LOWER_IS_BETTER) else a


def _differs_text(metric: str | None, different: Mapping[str, Mapping[str, Any]]) -> str:
    """'accuracy differs: keras-torch - lightning +0.0300 [+0.0200, +0.0400] (paired, Holm p = 0.003)'."""
    texts = []
    for key, comparison in different.items():
        a, b = pair_of(key)
        paired = comparison["paired"]
        lo, hi = paired["ci95"]
        texts.append(f"{b} - {a} {formatting.metric(paired['mean'], '+')} [{formatting.metric(lo, '+')}, "
                     f"{formatting.metric(hi, '+')}] (paired, Holm p = "
                     f"{formatting.significant(comparison['holm']['p_difference'], 2)})")
    note = f"; {metric}: lower is better" if metric in LOWER_IS_BETTER else ""
    return f"{metric} differs: {'; '.join(texts)}{note}"


def _accuracy_among(metric: str | None, pairs: Mapping[str, Mapping[str, Any]]) -> tuple[bool, str]:
    """(whether every pair is `equivalent`, the accuracy in words): 'equal accuracy (every pair within ±0.0100,
    Holm TOST p <= 0.012)', or each pair's caveat (said once when all pairs share it)."""
    words = METRIC_WORDS.get(metric or "", metric or "accuracy")
    if all(comparison["verdict"] == "equivalent" for comparison in pairs.values()):
        margin = formatting.metric(max(comparison["equivalence"]["margin"] for comparison in pairs.values()))
        p_value = formatting.significant(max(comparison["holm"]["p_equivalence"] for comparison in pairs.values()), 2)
        if len(pairs) == 1:
            a, b = pair_of(next(iter(pairs)))
            return True, f"equal {words} ({b} - {a} within ±{margin}, Holm TOST p = {p_value})"
        return True, f"equal {words} (every pair within ±{margin}, Holm TOST p <= {p_value})"
    caveats = {key: _accuracy_caveat(metric, comparison) for key, comparison in pairs.items()
               if comparison["verdict"] != "equivalent"}
    if len(set(caveats.values())) == 1 and len(caveats) == len(pairs) > 1:
        return False, next(iter(caveats.values()))
    return False, "; ".join(f"{' - '.join(pair_of(key)[::-1])}: {caveat}" for key, caveat in caveats.items())


def _no_speed_among(pairs: Mapping[str, Mapping[str, Any]]) -> str:
    """Why speed decides nothing among `pairs`: not measured, a run report only, or no material difference."""
    measured = [comparison for comparison in pairs.values() if comparison["throughput_ratio"] is not None]
    if not measured:
        return "speed not measured"
    if all(comparison["throughput_source"] == "run" for comparison in measured):
        return _no_speed_verdict(measured[0]["throughput_ratio"], "run")
    return "no material speed difference"


def _faster_slower(key: str, ratio: float) -> tuple[str, str]:
    """(faster, slower) of a pair "b/a" whose speed ratio b / a is `ratio`."""
    a, b = pair_of(key)
    return (b, a) if ratio > 1 else (a, b)


def _names(frameworks: Sequence[str]) -> str:
    return " or ".join(frameworks)


def recommend_among(metric: str | None, frameworks: Sequence[str],
                    pairs: Mapping[str, Mapping[str, Any]]) -> dict[str, str]:
    """{backend, reason} among several frameworks, by the rule in this module's docstring.

    `pairs`: each pair's statistics after Holm (`verdict`, `paired`, `equivalence`, `holm`,
    `seeds_needed`) and speed (`throughput_ratio`, `throughput_ratio_ci95`, `throughput_source`,
    `speed_material`), by pair key "b/a". `backend` is one framework, several joined by " or ",
    or "either" (all of them).
    """
    different = {key: comparison for key, comparison in pairs.items() if comparison["verdict"] == "different"}
    less_accurate = {fw for key, comparison in different.items() for fw in pair_of(key)
                     if fw != _more_accurate(metric, key, comparison)}
    candidates = [fw for fw in frameworks if fw not in less_accurate] or list(frameworks)
    if len(candidates) == 1:
        return {"backend": candidates[0], "reason": _differs_text(metric, different)}
    among = {key: comparison for key, comparison in pairs.items() if set(pair_of(key)) <= set(candidates)}
    equal, accuracy = _accuracy_among(metric, among)
    faster_pairs = {key: comparison for key, comparison in among.items()
                    if comparison["speed_material"] and comparison["throughput_ratio"]}
    ordered = {key: _faster_slower(key, comparison["throughput_ratio"]) for key, comparison in faster_pairs.items()}
    slower = {slow for _, slow in ordered.values()}
    fastest = [fw for fw in candidates if fw not in slower] or candidates
    excluded = (f"; less accurate: {', '.join(sorted(less_accurate))} ({_differs_text(metric, different)})"
                if different else "")
    if len(fastest) < len(candidates):
        facts = "; ".join(f"{ordered[key][0]} over {ordered[key][1]} "
                          f"{_speed_text(comparison['throughput_ratio'], comparison['throughput_ratio_ci95'])}"
                          for key, comparison in faster_pairs.items())
        reason = f"faster at {accuracy}: {facts}" if equal else f"faster: {facts}; {accuracy}"
        return {"backend": _names(fastest), "reason": reason + excluded}
    backend = "either" if len(candidates) == len(frameworks) else _names(candidates)
    return {"backend": backend, "reason": f"{accuracy}; {_no_speed_among(among)}{excluded}"}


def _accuracy(row: _Row, frameworks: Sequence[str] = FRAMEWORKS) -> dict[str, dict[str, Any]]:
    """Each framework's final metric (mean, std, n): the run report's summary, or from its runs for a framework
    the summary lacks; n 0 for a framework without runs."""
    if row.run is None:
        return {fw: {"mean": None, "std": None, "n": 0} for fw in frameworks}
    final = row.run["comparison"].get("final_val") or {}
    accuracy = {}
    for fw in frameworks:
        if fw in final:
            accuracy[fw] = {"mean": final[fw]["mean"], "std": final[fw]["std"],
                            "n": final[fw].get("n", len(row.run["frameworks"][fw]["runs"]))}
        elif fw in row.run["frameworks"]:
            values = final_values_by_seed(fw, row.run["frameworks"][fw]["runs"], row.run["comparison"]["metric"])
            accuracy[fw] = {**compare.summarize(list(values.values())), "n": len(values)}
        else:
            accuracy[fw] = {"mean": None, "std": None, "n": 0}
    return accuracy


def _run_ratio(report: Mapping[str, Any], pair: tuple[str, str]) -> float | None:
    """A run report's speed ratio b / a: its comparison's (lightning / keras; `pairs` for the others), else the
    median train samples/s of its runs."""
    comparison = report["comparison"]
    if pair == FRAMEWORKS:
        return comparison["throughput_ratio"]
    recorded = (comparison.get("pairs") or {}).get(pair_key(pair)) or {}
    if "throughput_ratio" in recorded:
        return recorded["throughput_ratio"]
    rates = [[run.get("train_samples_per_s") for run in report["frameworks"][fw]["runs"] if not run.get("diverged")]
             for fw in pair]
    return compare.throughput_ratio(*rates)


def _speed(row: _Row, pair: tuple[str, str] = FRAMEWORKS) -> dict[str, Any]:
    """The throughput ratio b / a of `pair`, its interval and source: the bench when attached and it measured both,
    else the run report."""
    if row.bench is not None and all(fw in row.bench["frameworks"] for fw in pair):
        ratio = bench_ratio(row.bench, pair)
        return {"throughput_ratio": ratio["ratio"], "throughput_ratio_ci95": ratio["interval"],
                "throughput_source": "bench"}
    ratio = _run_ratio(row.run, pair) if row.run and all(fw in row.run["frameworks"] for fw in pair) else None
    return {"throughput_ratio": ratio, "throughput_ratio_ci95": None,
            "throughput_source": "run" if ratio is not None else None}


COMPARISON_KEYS = ("diff_mean", "diff_ci95", "welch_p", "paired", "welch", "equivalence")
LOCKSTEP_KEYS = ("first_divergence_step", "steps", "tolerance", "max_rel_loss_diff")  # a row's lockstep summary


def _pair_summary(row: _Row, pair: tuple[str, str], margin: compare.Margin | None) -> dict[str, Any]:
    """One pair's statistics (before Holm) and speed: the accuracy of the run report when it has both frameworks."""
    measured = row.run is not None and margin is not None and all(fw in row.run["frameworks"] for fw in pair)
    comparison = accuracy_comparison(row.run, margin, pair) if measured else {}
    bench = row.bench if row.bench is not None and all(fw in row.bench["frameworks"] for fw in pair) else None
    return {"diff_mean": comparison.get("diff_mean"), "diff_ci95": comparison.get("diff_ci95", [None, None]),
            **{key: comparison.get(key) for key in COMPARISON_KEYS[2:]},
            **_speed(row, pair), "speed_material": material_speed_difference(bench, pair)}


def _row_identity(row: _Row, metric: str | None) -> dict[str, Any]:
    """The keys that open every summary row: what was measured, where, and from which records."""
    spec = CATALOG.get(row.model)
    return {
        "model": row.model,
        "mode": row.mode,
        "device": row.device,
        "provenance_key": row.key,
        "provenance": provenance.describe_provenance(row.run or row.bench),
        "task": spec.task if spec else TASK_OF_METRIC.get(metric),
        "metric": metric,
    }


def _bench_footprint(row: _Row, frameworks: tuple[str, ...]) -> dict[str, Any]:
    """The bench's batch size and input, and each framework's peak device and host memory (None without a bench)."""
    bench_fw = row.bench["frameworks"] if row.bench else {}
    return {
        "bench_batch_size": row.bench["batch_size"] if row.bench else None,
        "bench_input": row.bench.get("input") if row.bench else None,
        "peak_mem_mb": {fw: bench_fw.get(fw, {}).get("peak_mem_mb") for fw in frameworks},
        "host_rss_mb": {fw: bench_fw.get(fw, {}).get("host_rss_mb") for fw in frameworks},
    }


def _summary_row(row: _Row, margins: Mapping[str, compare.Margin]) -> dict[str, Any]:
    """The machine-readable summary of one row, before Holm and the recommendation."""
    spec = CATALOG.get(row.model)
    metric = row.run["comparison"]["metric"] if row.run else (spec.metric if spec else None)
    frameworks = row.frameworks
    if frameworks != FRAMEWORKS:
        return _frameworks_summary_row(row, metric, frameworks, margins)
    comparison = accuracy_comparison(row.run, margins[metric]) if row.run else {}
    lockstep = row.lockstep
    return {
        **_row_identity(row, metric),
        "accuracy": _accuracy(row),
        "diff_mean": comparison.get("diff_mean"),
        "diff_ci95": comparison.get("diff_ci95", [None, None]),
        "welch_p": comparison.get("welch_p"),
        "paired": comparison.get("paired"),
        "welch": comparison.get("welch"),
        "equivalence": comparison.get("equivalence"),
        **_speed(row),
        **_bench_footprint(row, FRAMEWORKS),
        "lockstep": None if lockstep is None else {key: lockstep[key] for key in LOCKSTEP_KEYS},
        "speed_material": material_speed_difference(row.bench),
        "sources": [str(path) for path in row.sources.values()],
        "source_provenance": {kind: provenance.describe_provenance(getattr(row, kind)) for kind in row.sources},
    }


def _frameworks_summary_row(row: _Row, metric: str | None, frameworks: tuple[str, ...],
                            margins: Mapping[str, compare.Margin]) -> dict[str, Any]:
    """The summary of a row with other frameworks than the default two: a row of today's keys (the
    lightning / keras comparison, when it has both) with `frameworks` and `pairs` (every pair's `_pair_summary`)."""
    pairs = {pair_key(pair): _pair_summary(row, pair, margins.get(metric)) for pair in framework_pairs(frameworks)}
    default = pairs.get(DEFAULT_PAIR) or _pair_summary(row, FRAMEWORKS, None)  # no keras or no lightning: all None
    return {
        **_row_identity(row, metric),
        "accuracy": _accuracy(row, frameworks),
        **{key: default[key] for key in (*COMPARISON_KEYS, "throughput_ratio", "throughput_ratio_ci95",
                                         "throughput_source")},
        **_bench_footprint(row, frameworks),
        "lockstep": None if row.lockstep is None else {
            **{key: row.lockstep[key] for key in LOCKSTEP_KEYS},
            "pairs": {key: entry.get("first_divergence_step")
                      for key, entry in (row.lockstep.get("pairs") or {}).items()},
        },
        "speed_material": default["speed_material"],
        "sources": [str(path) for path in row.sources.values()],
        "source_provenance": {kind: provenance.describe_provenance(getattr(row, kind)) for kind in row.sources},
        "frameworks": list(frameworks),
        "pairs": pairs,
    }


def row_pairs(row: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    """A summary row's comparisons by pair key: its `pairs`, or (a row of the default two frameworks) the row itself
    as "lightning/keras"."""
    return dict(row["pairs"]) if "pairs" in row else {DEFAULT_PAIR: row}


def row_frameworks(row: Mapping[str, Any]) -> tuple[str, ...]:
    """A summary row's frameworks: its `frameworks`, or the default two."""
    return tuple(row.get("frameworks") or FRAMEWORKS)


def summarize(paths: Sequence[Path], warn: Warn,
              margins: Mapping[str, compare.Margin] | None = None) -> list[dict[str, Any]]:
    """The summary rows of every run report, bench result and lockstep report under `paths`.

    `margins`: equivalence margin per metric, over compare.DEFAULT_MARGINS.
    """
    margins = {**compare.DEFAULT_MARGINS, **(margins or {})}
    documents = []
    for path in find_files(paths):
        loaded = load(path, warn)
        if loaded is not None:
            documents.append((path, *loaded))
    if not any(kind in ("run", "bench") for _, kind, _ in documents):
        raise ParityError(f"no usable run report (report.json) or bench result (bench.json) under "
                          f"{', '.join(map(str, paths))}; write them with `parity run --out DIR` "
                          "or `parity bench --out DIR`")
    rows = [_summary_row(row, margins) for row in merge(documents, warn)]
    apply_holm([comparison for row in rows for comparison in row_pairs(row).values()])
    for row in rows:
        if "pairs" in row:
            default = row["pairs"].get(DEFAULT_PAIR) or {"holm": None, "verdict": "not measured", "seeds_needed": None}
            row.update({key: default[key] for key in ("holm", "verdict", "seeds_needed")})
            row["recommendation"] = recommend_among(row["metric"], row["frameworks"], row["pairs"])
        else:
            row["recommendation"] = recommend(row["metric"], row, row["throughput_ratio"], row["speed_material"],
                                              row["throughput_ratio_ci95"], row["throughput_source"])
    return [to_jsonable(row) for row in rows]


# ---------------------------------------------------------------------------- rendering


def _accuracy_cell(summary: Mapping[str, Any]) -> str:
    return "n/a" if not summary["n"] else f"{formatting.mean_std(summary)} (n={summary['n']})"


def _interval_cell(mean: float | None, interval: Sequence[float | None] | None, note: str | None = None) -> str:
    lo, hi = interval or (None, None)
    if mean is None:
        return "n/a"
    if lo is None or hi is None:
        return f"{formatting.metric(mean, '+')} ({note or 'no CI'})"
    return f"{formatting.metric(mean, '+')} [{formatting.metric(lo, '+')}, {formatting.metric(hi, '+')}]"


def _paired_cell(row: Mapping[str, Any]) -> str:
    paired = row["paired"]
    if paired is None:
        return "n/a"
    note = "no CI: 1 seed" if paired["status"] == "too few seeds" and paired["n"] == 1 else paired["status"]
    return _interval_cell(paired["mean"], paired["ci95"], note)


def _welch_cell(row: Mapping[str, Any]) -> str:
    welch = row["welch"]
    if welch is None:
        return "n/a"
    if welch["status"] == "degenerate":
        return f"{formatting.metric(welch['mean'], '+')} (degenerate)"
    return _interval_cell(welch["mean"], welch["ci95"], "no CI")


def _verdict_cell(row: Mapping[str, Any]) -> str:
    if row["equivalence"] is None:
        return "n/a"
    margin = f"±{formatting.metric(row['equivalence']['margin'])}"
    if row["verdict"] == "inconclusive":
        needed = row["seeds_needed"]
        return f"inconclusive ({margin}; {needed if needed is not None else f'> {compare.MAX_SEEDS:,}'} seeds needed)"
    if row["verdict"] in ("equivalent", "different"):
        return f"{row['verdict']} ({margin})"
    return row["verdict"]


def _holm_cell(row: Mapping[str, Any]) -> str:
    holm = row["holm"]
    if holm is None:
        return "n/a"
    return f"{formatting.significant(holm['p_difference'], 2)} / {formatting.significant(holm['p_equivalence'], 2)}"


def _speed_cell(row: Mapping[str, Any]) -> str:
    ratio = formatting.significant(row["throughput_ratio"], 3)
    lo, hi = row["throughput_ratio_ci95"] or (None, None)
    if lo is None or hi is None:
        return ratio
    return f"{ratio} [{formatting.significant(lo, 3)}, {formatting.significant(hi, 3)}]"


def _memory_cell(row: Mapping[str, Any], frameworks: Sequence[str] = FRAMEWORKS) -> str:
    for key, label in (("peak_mem_mb", ""), ("host_rss_mb", " (host RSS)")):
        values = row[key]
        if any(value is not None for value in values.values()):
            return " / ".join(formatting.rate(values.get(fw)) for fw in frameworks) + label
    return "n/a"


def _lockstep_cell(lockstep: Mapping[str, Any] | None) -> str:
    if lockstep is None:
        return "-"
    if lockstep["first_divergence_step"] is None:
        return f"none in {lockstep['steps']} steps"
    return f"step {lockstep['first_divergence_step']} of {lockstep['steps']}"


def _pair_lockstep(row: Mapping[str, Any], key: str) -> dict[str, Any] | None:
    """A pair's first divergence step from the row's lockstep report: its `pairs` entry, or the report's own (a
    report of the default two frameworks) for lightning/keras."""
    lockstep = row["lockstep"]
    if lockstep is None:
        return None
    if lockstep.get("pairs"):
        if key not in lockstep["pairs"]:
            return None
        return {"first_divergence_step": lockstep["pairs"][key], "steps": lockstep["steps"]}
    return lockstep if key == DEFAULT_PAIR else None


def _source_cell(row: Mapping[str, Any]) -> str:
    if row["throughput_source"] == "bench":
        pipeline = f", {row['bench_input'].replace('_', '-')} input" if row["bench_input"] else ""
        return f"bench (batch {row['bench_batch_size']}{pipeline})"
    return row["throughput_source"] or "n/a"


def _by_task(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """One line per task: each recommended backend and the rows that led to it."""
    tasks: dict[str, dict[str, list[str]]] = {}
    for row in rows:
        label = " ".join(part for part in (row["model"], row["mode"], row["device"]) if part)
        tasks.setdefault(row["task"] or "unknown", {}).setdefault(row["recommendation"]["backend"], []).append(label)
    return [f"- {task}: " + "; ".join(f"{backend} ({', '.join(labels)})" for backend, labels in backends.items())
            for task, backends in sorted(tasks.items())]


def provenance_labels(rows: Sequence[Mapping[str, Any]]) -> dict[str, str]:
    """P1, P2, ... for the rows' provenance keys, in row order."""
    labels: dict[str, str] = {}
    for row in rows:
        labels.setdefault(row["provenance_key"], f"P{len(labels) + 1}")
    return labels


def _provenance_lines(rows: Sequence[Mapping[str, Any]], labels: Mapping[str, str]) -> list[str]:
    """One line per provenance: its key and what each source kind of its rows records."""
    described: dict[str, dict[str, str]] = {}
    for row in rows:
        described.setdefault(row["provenance_key"], {}).update(row["source_provenance"])
    lines = []
    for key, label in labels.items():
        kinds = described[key]
        texts = list(dict.fromkeys(kinds.values()))
        text = texts[0] if len(texts) == 1 else "; ".join(f"{kind}: {value}" for kind, value in kinds.items())
        lines.append(f"- {label} (`{key}`): {text}")
    return lines


def markdown_code(text: str) -> str:
    """`text` as a Markdown code span (shown literally: no emphasis, no markup), fenced by more backticks than it holds."""
    fence = "`" * (max((len(run) for run in re.findall("`+", text)), default=0) + 1)
    return f"{fence} {text} {fence}" if text.startswith("`") or text.endswith("`") else f"{fence}{text}{fence}"


def table_frameworks(rows: Sequence[Mapping[str, Any]]) -> tuple[str, ...]:
    """Every framework of the table's rows, in display order."""
    return in_display_order({fw for row in rows for fw in row_frameworks(row)})


FRAMEWORK_INITIALS = {"keras": "K", "lightning": "L", "keras-torch": "KT"}


def _frameworks_tables(rows: Sequence[Mapping[str, Any]], labels: Mapping[str, str],
                       frameworks: Sequence[str]) -> list[str]:
    """A column per framework, then a table of every row's pairs (a table with other frameworks than the default two)."""
    initials = " / ".join(FRAMEWORK_INITIALS[fw] for fw in frameworks)
    lines = [
        ("| Model | Mode | Device | Prov. | Task | Metric | "
         + "".join(f"{FRAMEWORK_NAMES[fw]} | " for fw in frameworks)
         + f"Peak mem MB {initials} | Lockstep | Recommendation |"),
        "|---|---|---|---|---|---|" + "---:|" * len(frameworks) + "---:|---|---|",
    ]
    missing = {"mean": None, "std": None, "n": 0}
    for row in rows:
        recommendation = row["recommendation"]
        cells = [row["model"], row["mode"] or "-", row["device"], labels[row["provenance_key"]], row["task"] or "n/a",
                 row["metric"] or "n/a", *(_accuracy_cell(row["accuracy"].get(fw, missing)) for fw in frameworks),
                 _memory_cell(row, frameworks), _lockstep_cell(row["lockstep"]),
                 f"**{recommendation['backend']}**: {recommendation['reason']}"]
        lines.append("| " + " | ".join(cells) + " |")
    lines += [
        "", "## Pairs", "",
        ("| Model | Mode | Device | Prov. | Pair B/A | Paired B-A [95% CI] | r | Welch B-A [95% CI] "
         "| Verdict (margin) | Holm p paired / TOST | Speed B/A [95% CI] | Speed source | Lockstep |"),
        "|---|---|---|---|---|---:|---:|---:|---|---:|---:|---|---|",
    ]
    for row in rows:
        for key, pair in row_pairs(row).items():
            comparison = {**row, **pair}
            correlation = comparison["paired"]["correlation"] if comparison["paired"] else None
            cells = [row["model"], row["mode"] or "-", row["device"], labels[row["provenance_key"]], key,
                     _paired_cell(comparison), formatting.significant(correlation, 2), _welch_cell(comparison),
                     _verdict_cell(comparison), _holm_cell(comparison), _speed_cell(comparison),
                     _source_cell(comparison), _lockstep_cell(_pair_lockstep(row, key))]
            lines.append("| " + " | ".join(cells) + " |")
    return lines


def render_markdown(rows: Sequence[Mapping[str, Any]], margins: Mapping[str, compare.Margin] | None = None,
                    plots: Sequence[tuple[str, str]] = ()) -> str:
    """The summary in Markdown: the table (with other frameworks than the default two, a column per framework and a
    table of pairs), its plots (caption, file name beside the Markdown), recommendations by task, provenance,
    legend and source files."""
    labels = provenance_labels(rows)
    frameworks = table_frameworks(rows)
    margins = {**compare.DEFAULT_MARGINS, **(margins or {})}
    if frameworks != FRAMEWORKS:
        lines = ["# Parity summary", "", *_frameworks_tables(rows, labels, frameworks)]
    else:
        lines = _default_table(rows, labels)
    sources = sorted({source for row in rows for source in row["sources"]})
    if plots:
        lines += ["", "## Plots"]
        for caption, name in plots:
            lines += ["", f"![{caption}]({quote(name)})"]
    lines += ["", "## By task", "", *_by_task(rows)]
    lines += ["", "## Provenance", "", *_provenance_lines(rows, labels)]
    lines += ["", "## Legend", "",
              *(legend(margins) if frameworks == FRAMEWORKS else frameworks_legend(margins, frameworks))]
    lines += ["", "## Sources", "", *(f"- {markdown_code(source)}" for source in sources), ""]
    return "\n".join(lines)


def _default_table(rows: Sequence[Mapping[str, Any]], labels: Mapping[str, str]) -> list[str]:
    """The table of a summary of the default two frameworks: one line per row, the comparison in its columns."""
    lines = [
        "# Parity summary", "",
        ("| Model | Mode | Device | Prov. | Task | Metric | Keras | Lightning | Paired L-K [95% CI] | r "
         "| Welch L-K [95% CI] | Verdict (margin) | Holm p paired / TOST | Speed L/K [95% CI] | Speed source "
         "| Peak mem MB K / L | Lockstep | Recommendation |"),
        "|---|---|---|---|---|---|---:|---:|---:|---:|---:|---|---:|---:|---|---:|---|---|",
    ]
    for row in rows:
        recommendation = row["recommendation"]
        correlation = row["paired"]["correlation"] if row["paired"] else None
        cells = [row["model"], row["mode"] or "-", row["device"], labels[row["provenance_key"]], row["task"] or "n/a",
                 row["metric"] or "n/a", _accuracy_cell(row["accuracy"]["keras"]),
                 _accuracy_cell(row["accuracy"]["lightning"]), _paired_cell(row),
                 formatting.significant(correlation, 2), _welch_cell(row), _verdict_cell(row), _holm_cell(row),
                 _speed_cell(row), _source_cell(row), _memory_cell(row), _lockstep_cell(row["lockstep"]),
                 f"**{recommendation['backend']}**: {recommendation['reason']}"]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


PLOTS = (("accuracy", "Accuracy (MAE) difference lightning - keras per row, paired 95% interval, margin and verdict"),
         ("speed", "Speed ratio lightning / keras per row, bootstrap 95% interval where benched"))
PAIR_PLOTS = (("accuracy", "Accuracy (MAE) difference b - a per row and pair, paired 95% interval, margin and verdict"),
              ("speed", "Speed ratio b / a per row and pair, bootstrap 95% interval where benched"))


def plot_path(out: Path, name: str) -> Path:
    """Where a plot of the summary `out` goes: beside it, named after it (summary.md -> summary-accuracy.png)."""
    return out.with_name(f"{out.stem}-{name}.png")


def write_summary(rows: Sequence[Mapping[str, Any]], margins: Mapping[str, compare.Margin] | None,
                  out: Path) -> list[Path]:
    """Write the Markdown summary to `out`, its plots beside it (see `plot_path`) and `out` as .html; return the paths.

    Each file is written atomically; a plot with nothing to draw is not written, and an older
    one of that name is removed, so the directory holds what the Markdown shows.
    """
    out = Path(out)
    if out.suffix.lower() in (".html", ".htm", ".png"):
        raise ParityError(f"--out {out}: name the Markdown file (e.g. summary.md); the HTML page and the plots are "
                          "written beside it")
    labels = provenance_labels(rows)
    pictures = {"accuracy": summary_plots.accuracy_png(rows, labels),
                "speed": summary_plots.speed_png(rows, labels, (SPEED_BAND, 1 / SPEED_BAND))}
    written, shown, images = [], [], {}
    for name, caption in PLOTS if table_frameworks(rows) == FRAMEWORKS else PAIR_PLOTS:
        path = plot_path(out, name)
        if pictures[name] is None:
            path.unlink(missing_ok=True)
            continue
        write_bytes_atomic(path, pictures[name])
        written.append(path)
        shown.append((caption, path.name))
        images[path.name] = pictures[name]
    markdown = render_markdown(rows, margins, shown)
    html_path = out.with_suffix(".html")
    # The page before the Markdown: a write that fails (a full disk) leaves the previous Markdown, never a new one
    # beside an old page.
    write_text_atomic(html_path, html_report.render_html(markdown, images))
    write_text_atomic(out, markdown)
    return [out, html_path, *written]
