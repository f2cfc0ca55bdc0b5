"""The measured catalog of framework differences: each one switched to native alone, its effect measured.

Training-level differences are measured in lockstep (parity.lockstep): one course model and
optimizer, every difference aligned, then the same run with one difference left native; the
effect is where and how far the losses part, and how far the parameters and the validation
metric end up. Layer-level differences that no lockstep group exercises (BatchNorm, GRU, LSTM,
strided 'same' padding, L2, LR schedules, early stopping, InceptionV3's pooling and frozen
BatchNorm, augmentation) are measured by parity.probes. The decomposition runs each lockstep
setup once more with every difference aligned in all three frameworks: Keras on torch against
Keras on TensorFlow (same API: what the runtime does) and against Lightning (same torch kernels:
what the API does), beside Lightning against Keras (`measure_decomposition`). `build_catalog`
runs everything; `render_markdown` turns the numbers plus the texts of parity.align.DIFFERENCES
into docs/differences.md, so the document is generated, never typed.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from parity import align, jobs, lockstep
from parity.catalog import get_spec
from parity.datasets import needs_files
from parity.fileio import write_text_atomic

STEPS = 100
# Differences that configure both processes (TensorFlow too), so their native run needs its own Keras run.
BOTH_PROCESSES = frozenset({"determinism"})
# Differences that no CPU run can show; the catalog is measured on CPU (its workers run with device cpu).
NOT_MEASURABLE_ON_CPU = {
    "tf32": ("TensorFloat-32 is a tensor-core mode of NVIDIA GPUs (Ampere and later); on a CPU both frameworks "
             "compute float32 matmuls and convolutions in float32 whatever the flag, so no effect can occur and "
             "none is reported. `parity bench --tf32 on|off` sets the flag in both frameworks and records the "
             "state each one reports"),
}


@dataclass(frozen=True)
class LockstepGroup:
    """One lockstep setup and the differences measured against its aligned run."""

    model: str
    optimizer: str
    keys: tuple[str, ...]


LOCKSTEP_GROUPS = (
    LockstepGroup("c1w2_fmnist_dnn", "spec", ("kernel_init", "adam_epsilon_value", "adam_epsilon_placement",
                                              "crossentropy_on_probabilities", "accuracy_average", "determinism")),
    LockstepGroup("c1w2_fmnist_dnn", "rmsprop", ("rmsprop_rho", "rmsprop_epsilon")),
    LockstepGroup("c1w3_fmnist_cnn", "spec", ("flatten_order",)),
    LockstepGroup("c3w2_sarcasm_embed_gap", "spec", ("embedding_init", "embedding_sparse_gradient")),
    LockstepGroup("c4w2_ts_dnn", "spec", ("sgd_momentum_form",)),
    LockstepGroup("c1w1_hello_linear", "spec", ("default_learning_rate",)),
)
# Measured from the aligned CNN run and its one-ulp torch-vs-torch control.
SUMMATION_ORDER_GROUP = LockstepGroup("c1w3_fmnist_cnn", "spec", ())
# The decomposition's pairs (parity.jobs.pair_key), each with the layers of differences that can part it.
DIRECT_PAIR, RUNTIME_PAIR, API_PAIR = "lightning/keras", "keras-torch/keras", "keras-torch/lightning"
DECOMPOSITION_PAIRS = (DIRECT_PAIR, RUNTIME_PAIR, API_PAIR)
_PAIR_EFFECTS = ("first_divergence_step", "first_grad_norm_divergence_step", "max_rel_loss_diff",
                 "max_rel_grad_norm_diff", "first_rel_loss_diff", "final_param_max_abs_diff", "loss_within_rounding",
                 "grad_norms_within_rounding")


def _data_source(model_id: str, data_root: Path | None) -> tuple[str | None, bool]:
    """(data_dir, synthetic): the real data where it needs no download, else the synthetic stand-in.

    Data sets that live in code are always real; file-based ones are real when DATA_ROOT/<id> exists.
    """
    dataset = get_spec(model_id).dataset
    if not needs_files(dataset):
        return None, False
    directory = Path(data_root) / dataset if data_root is not None else None
    if directory is not None and directory.is_dir():
        return str(directory), False
    return None, True


def not_measurable_on_cpu(key: str) -> dict[str, Any]:
    """The catalog entry of a difference that a CPU cannot show (NOT_MEASURABLE_ON_CPU): no measured effect."""
    return {"kind": "not_measurable", "device": "cpu", "summary": f"not measurable on CPU: {NOT_MEASURABLE_ON_CPU[key]}"}


def _lockstep_effects(comparison: Mapping[str, Any]) -> dict[str, Any]:
    keys = ("first_divergence_step", "max_rel_loss_diff", "first_rel_loss_diff", "final_param_max_abs_diff")
    return {**{key: comparison[key] for key in keys}, "val_metric": comparison["val_metric"]}


def _setup_text(result: Mapping[str, Any]) -> str:
    optimizer = result["optimizer"]
    momentum = f", momentum {optimizer['momentum']:g}" if optimizer["momentum"] else ""
    return (f"lockstep {result['model']}, {optimizer['name']} lr {optimizer['learning_rate']:g}{momentum}, "
            f"{result['steps']} steps, {result['dataset']['source']} {result['dataset']['id']}")


def _lockstep_summary(key: str, result: Mapping[str, Any], aligned: Mapping[str, Any],
                      native: Mapping[str, Any]) -> str:
    if key == "accuracy_average":
        metric = result["metric"]
        return (f"val {metric} after {result['steps']} steps: keras {native['val_metric']['keras']:.4f}; "
                f"torchmetrics macro {native['val_metric']['lightning']:.4f} (native) vs "
                f"micro {aligned['val_metric']['lightning']:.4f} (aligned)")

    def part(effects: Mapping[str, Any]) -> str:
        first = effects["first_divergence_step"]
        where = f"parts at step {first}" if first is not None else f"never parts beyond {lockstep.TOLERANCE:g}"
        return (f"{where}, max rel loss diff {effects['max_rel_loss_diff']:.1e}, "
                f"params {effects['final_param_max_abs_diff']:.1e} apart")

    keras_self = native.get("keras_self_max_rel_loss_diff")
    own = f"; Keras against itself with the switch off vs on: max rel loss diff {keras_self:.1e}" \
        if keras_self is not None else ""
    return f"native: {part(native)}; aligned: {part(aligned)}{own}"


def measure_lockstep_differences(data_root: Path | None = None, steps: int = STEPS, threads: int = 1,
                                 groups: tuple[LockstepGroup, ...] = LOCKSTEP_GROUPS,
                                 progress: Callable[[str], None] = print) -> dict[str, dict[str, Any]]:
    """Each group's differences switched to native one at a time, against the group's aligned run; the
    differences a CPU cannot show are entered as not measurable (`not_measurable_on_cpu`)."""
    measured: dict[str, dict[str, Any]] = {key: not_measurable_on_cpu(key) for key in NOT_MEASURABLE_ON_CPU}
    with jobs.worker_pool(threads=threads, quiet=True) as workers:  # each framework started once
        for group in (*groups, SUMMATION_ORDER_GROUP):
            if group is SUMMATION_ORDER_GROUP and "float32_summation_order" in measured:
                continue
            progress(f"lockstep {group.model} ({group.optimizer}): aligned, native {', '.join(group.keys) or '-'}")
            data_dir, synthetic = _data_source(group.model, data_root)
            torch_only = tuple(key for key in group.keys if key not in BOTH_PROCESSES)
            options = lockstep.LockstepOptions(
                steps=steps, optimizer=group.optimizer, threads=threads, data_dir=data_dir, synthetic=synthetic,
                alignments=(align.ALIGNED, *(align.Alignment(frozenset({key})) for key in torch_only)),
            )
            result = lockstep.measure(group.model, options, workers)
            aligned = _lockstep_effects(result["comparisons"][0])
            setup = _setup_text(result)
            native_runs = dict(zip(torch_only, result["comparisons"][1:]))
            keras_changes = {}
            for key in (key for key in group.keys if key in BOTH_PROCESSES):
                switched = align.Alignment(frozenset({key}))
                native_result = lockstep.measure(group.model, replace(
                    options, alignments=(switched,), keras_alignment=switched, rounding_control=False), workers)
                native_runs[key] = native_result["comparisons"][0]
                # The same switch changes TensorFlow's kernels too: Keras against itself, switch on vs off.
                keras_changes[key] = float(lockstep.relative_difference(result["keras"]["loss"],
                                                                        native_result["keras"]["loss"]).max())
            for key in group.keys:
                native = _lockstep_effects(native_runs[key])
                if key in keras_changes:
                    native["keras_self_max_rel_loss_diff"] = keras_changes[key]
                measured[key] = {"kind": "lockstep", "setup": setup, "aligned": aligned, "native": native,
                                 "summary": _lockstep_summary(key, result, aligned, native)}
            control = result["rounding_control"]
            if group.model == SUMMATION_ORDER_GROUP.model and control is not None:
                first = aligned["first_divergence_step"]
                measured["float32_summation_order"] = {
                    "kind": "lockstep", "setup": setup, "aligned": aligned, "control": {
                        key: control[key] for key in ("first_divergence_step", "max_rel_loss_diff")},
                    "summary": (f"every difference aligned: keras vs torch part at step {first} "
                                f"(max rel loss diff {aligned['max_rel_loss_diff']:.1e}); torch vs torch started one "
                                f"float32 ulp apart part at step {control['first_divergence_step']} "
                                f"(max {control['max_rel_loss_diff']:.1e})"),
                }
    return measured


def decomposition_setups(groups: tuple[LockstepGroup, ...] = LOCKSTEP_GROUPS) -> list[tuple[str, str]]:
    """The (model, optimizer) of every lockstep group, each once, in the groups' order."""
    return list(dict.fromkeys((group.model, group.optimizer) for group in groups))


def measure_decomposition(data_root: Path | None = None, steps: int = STEPS, threads: int = 1,
                          setups: list[tuple[str, str]] | None = None,
                          progress: Callable[[str], None] = print) -> list[dict[str, Any]]:
    """Each setup (default: decomposition_setups()) in lockstep in all three frameworks, every difference aligned:
    per setup, the direct, runtime and API pairs' effects (DECOMPOSITION_PAIRS) and the one-ulp torch-vs-torch
    control. The API pair's torch run leaves align.TENSORFLOW_RUNTIME_FORMS native (align.KERAS_TORCH_PEER): aligned,
    they make Lightning compute what TensorFlow does, which Keras on torch does not."""
    rows = []
    with jobs.worker_pool(threads=threads, quiet=True) as workers:  # each framework started once
        for model, optimizer in decomposition_setups() if setups is None else setups:
            progress(f"decomposition {model} ({optimizer}): keras, lightning, keras-torch, every difference aligned")
            data_dir, synthetic = _data_source(model, data_root)
            options = lockstep.LockstepOptions(steps=steps, optimizer=optimizer, threads=threads, data_dir=data_dir,
                                               synthetic=synthetic, frameworks=jobs.ALL_FRAMEWORKS,
                                               alignments=(align.ALIGNED, align.KERAS_TORCH_PEER))
            result = lockstep.measure(model, options, workers)
            aligned, peer = (comparison["pairs"] for comparison in result["comparisons"])
            pairs = {DIRECT_PAIR: aligned[DIRECT_PAIR], RUNTIME_PAIR: aligned[RUNTIME_PAIR], API_PAIR: peer[API_PAIR]}
            control = result["rounding_control"]
            rows.append({
                "model": model, "optimizer": result["optimizer"]["name"], "setup": _setup_text(result),
                "pairs": {key: {name: pairs[key][name] for name in _PAIR_EFFECTS} for key in DECOMPOSITION_PAIRS},
                "control": None if control is None else {
                    key: control[key] for key in ("first_divergence_step", "max_rel_loss_diff")},
            })
    return rows


def build_catalog(data_root: Path | None = None, steps: int = STEPS, threads: int = 1,
                  progress: Callable[[str], None] = print,
                  frameworks: tuple[str, ...] = jobs.ALL_FRAMEWORKS) -> dict[str, Any]:
    """Every difference of parity.align measured: {"differences": {key: measurement}, "settings": {...}}, and
    with all three `frameworks` the runtime/API "decomposition" (measure_decomposition).

    Lockstep runs use DATA_ROOT/<dataset id> where it exists (a tree like ../shared/data), else
    the synthetic stand-ins; each row names the data it used.
    """
    from parity import probes

    measured = measure_lockstep_differences(data_root, steps, threads, progress=progress)
    progress(f"layer probes: {', '.join(probes.PROBE_DIFFERENCES)}")
    measured.update(probes.measure_all(threads=threads))
    missing = [d.key for d in align.DIFFERENCES if d.key not in measured]
    if missing:
        raise RuntimeError(f"no measurement for: {', '.join(missing)}")
    catalog = {"differences": {d.key: measured[d.key] for d in align.DIFFERENCES},
               "settings": {"steps": steps, "tolerance": lockstep.TOLERANCE, "threads": threads,
                            "data": "real course data where present under the data root, else synthetic stand-ins "
                                    "(each row names its data)"}}
    if set(jobs.ALL_FRAMEWORKS) <= set(frameworks):
        catalog["decomposition"] = measure_decomposition(data_root, steps, threads, progress=progress)
    return catalog


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def _pair_cell(effects: Mapping[str, Any], tolerance: float) -> str:
    first = effects["first_divergence_step"]
    where = f"parts at step {first}" if first is not None else f"never parts beyond {tolerance:g}"
    rounding = "within rounding" if effects["loss_within_rounding"] else "beyond rounding"
    return f"{where}, max rel loss diff {effects['max_rel_loss_diff']:.1e} ({rounding})"


def render_decomposition(rows: list[Mapping[str, Any]], tolerance: float) -> list[str]:
    """The decomposition section's lines: a row per setup, a column per pair."""
    lines = [
        "## Runtime or API: the decomposition", "",
        "Keras 3 runs the same model code on TensorFlow (`keras`) and on torch (`keras-torch`), so each lockstep",
        "setup above runs once more in all three frameworks with every difference aligned",
        "(`parity lockstep MODEL --frameworks keras,lightning,keras-torch`). keras-torch/keras shares the API and",
        "differs in the runtime (the `runtime` differences above); keras-torch/lightning shares the torch kernels",
        "and differs in the API (the `api` differences); lightning/keras, the direct pair, meets both. In the API",
        "pair Lightning leaves " + ", ".join(f"`{key}`" for key in align.TENSORFLOW_RUNTIME_FORMS)
        + " native: aligned,",
        "they make torch compute what Keras' TensorFlow backend computes, which Keras on torch does not",
        "(`--native` them in `parity lockstep` to compare the same way).",
        f"'Within rounding': the largest relative loss difference is at most {lockstep.ROUNDING_BAND:g} times that "
        "of torch against itself",
        "started one float32 ulp apart (last column), or of the tolerance (`parity.lockstep.within_rounding`).", "",
        f"| setup | {DIRECT_PAIR} (direct) | {RUNTIME_PAIR} (runtime) | {API_PAIR} (API) | "
        "torch vs torch one ulp apart |",
        "|---|---|---|---|---|",
    ]
    for row in rows:
        control = row["control"]
        if control is None:
            control_cell = "not run"
        else:
            first = control["first_divergence_step"]
            where = f"parts at step {first}" if first is not None else f"never parts beyond {tolerance:g}"
            control_cell = f"{where}, max {control['max_rel_loss_diff']:.1e}"
        cells = " | ".join(_pair_cell(row["pairs"][key], tolerance) for key in DECOMPOSITION_PAIRS)
        lines.append(f"| {_cell(row['setup'])} | {cells} | {control_cell} |")
    return lines


def render_markdown(catalog: Mapping[str, Any]) -> str:
    """docs/differences.md from the measured catalog and the texts of parity.align.DIFFERENCES."""
    settings = catalog["settings"]
    lines = [
        "# Keras vs PyTorch Lightning: the measured differences", "",
        "Generated by `parity differences --write docs/differences.md` from `parity/align.py` and fresh",
        "measurements; do not edit by hand. Each row switches one difference to native while every other",
        "one stays aligned (`parity run|lockstep --native KEY`), and measures what changes.",
        f"Lockstep: {settings['steps']} steps, same initial weights and batches, dropout off, deterministic ops;",
        f"'parts at step k' = first step whose relative loss difference exceeds {settings['tolerance']:g}.",
        f"Data: {settings['data']}. CPU, float32, {settings['threads']} thread(s) per framework.",
        "Layer: `api` (a default or rule of the framework's API or training loop: it separates Keras on torch",
        "from Lightning) or `runtime` (kernels, numerics, the backend's own implementation: it separates Keras on",
        "TensorFlow from Keras on torch); the reason for each is listed below the table.", "",
        "| difference | layer | Keras default | torch default | aligned setting | measured effect | source |",
        "|---|---|---|---|---|---|---|",
    ]
    for entry in align.DIFFERENCES:
        measurement = catalog["differences"][entry.key]
        switch = "" if entry.switchable else " (not switchable)"
        effect = f"{measurement['setup']}: {measurement['summary']}" if measurement.get("setup") else \
            measurement["summary"]
        lines.append(f"| `{entry.key}`{switch} | {entry.layer} | {_cell(entry.keras)} | {_cell(entry.torch)} | "
                     f"{_cell(entry.aligned)} | {_cell(effect)} | {_cell(entry.source)} |")
    lines += ["", "## Layers", ""]
    lines += [f"- `{entry.key}` ({entry.layer}): {entry.layer_reason}" for entry in align.DIFFERENCES]
    if catalog.get("decomposition"):
        lines += ["", *render_decomposition(catalog["decomposition"], settings["tolerance"])]
    lines.append("")
    return "\n".join(lines)


def write_catalog(catalog: Mapping[str, Any], markdown_path: Path) -> tuple[Path, Path]:
    """Write the Markdown and, beside it, the numbers as JSON (same stem); both atomically."""
    markdown_path = Path(markdown_path)
    json_path = markdown_path.with_suffix(".json")
    write_text_atomic(json_path, json.dumps(catalog, indent=2, allow_nan=False) + "\n")
    write_text_atomic(markdown_path, render_markdown(catalog))
    return markdown_path, json_path
