"""Lockstep training: the frameworks take the same steps from the same weights, compared step by step.

Same initial weights (the Keras ones, copied as the alignment says), the same batches from
the batch plan, dropout off, deterministic ops (align: determinism). Each worker records
the loss and the global gradient norm of every step (tf_models/lockstep.py,
torch_models/lockstep.py, and keras_torch's for Keras on the torch backend); here they are
compared: the relative difference per step, the first step where it exceeds the tolerance,
and the parameters' difference after the last step. With `--frameworks` naming more than
the default two, every pair (jobs.framework_pairs) is compared the same way, each judged
against the one-ulp rounding control, and each comparison gains `pairs`. The result is
written as lockstep.json, lockstep.md and drift.png.
"""

from __future__ import annotations

import json
import platform
import shutil
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from parity import align, jobs, provenance
from parity.catalog import OPTIMIZERS, Optimizer, get_spec
from parity.datasets import load_dataset
from parity.errors import ParityError
from parity.fileio import staging_dir, swap_in
from parity.plan import BatchPlan
from parity.report import COLOURS
from parity.weights import load_keras_layers

TAG = "lockstep"
VAL_SAMPLES = 2000  # validation samples on which both frameworks' metrics are computed after the last step
# Relative per-step tolerance. Two correct float32 implementations differ by summation order,
# ~1e-7 relative in the first loss; training can amplify that, and the issue's bar is 1e-4.
TOLERANCE = 1e-4
# Two rounding-sized perturbations amplified by the same training (the kernels' summation order, the control's
# one-ulp nudge) grow to drifts of one order of magnitude; which steps each happens to hit, and so the exact size
# (and whether it passes the tolerance within the run), depends on the CPU's kernels. Within this factor of the
# control's drift (or of the tolerance), a drift is rounding.
ROUNDING_BAND = 10.0
_TINY = 1e-30
STEP_ROWS = (0, 1, 2, 4, 9, 19, 49, 99, 199, 499, 999)  # the 0-based steps the Markdown tables show


def keras_final_weights_path(workdir: Path) -> Path:
    """Where a Keras worker (on TensorFlow or on torch) leaves its weights after the last lockstep step; the torch
    worker, which runs right after the weights source, compares its own with them."""
    return Path(workdir) / f"keras-{TAG}-final.npz"


def kept_final_weights_path(workdir: Path, framework: str) -> Path:
    """Where the harness keeps a Keras framework's final weights once its run is over (the next Keras framework
    writes keras_final_weights_path again)."""
    return Path(workdir) / f"{framework}-{TAG}-final-kept.npz"


def optimizer_to_job(optimizer: Optimizer) -> dict[str, Any]:
    return {"name": optimizer.name, "learning_rate": optimizer.learning_rate, "momentum": optimizer.momentum,
            "keras_default_lr": optimizer.keras_default_lr}


def optimizer_from_job(job: Mapping[str, Any]) -> Optimizer:
    return Optimizer(**job["optimizer"])


def batch_rows(plan: BatchPlan, steps: int) -> Iterator[np.ndarray]:
    """The index arrays of the first `steps` training batches of `plan`, epoch after epoch."""
    epoch = 0
    taken = 0
    while taken < steps:
        for rows in plan.epoch_batches(epoch):
            if taken == steps:
                return
            yield rows
            taken += 1
        epoch += 1


def choose_optimizer(model_id: str, name: str = "spec", learning_rate: float | None = None,
                     momentum: float | None = None) -> Optimizer:
    """The spec's optimizer, or `name` with Keras' default learning rate; explicit values override."""
    spec_optimizer = get_spec(model_id).optimizer
    if name == "spec":
        base = spec_optimizer
    elif name in OPTIMIZERS:
        same = spec_optimizer.name == name
        base = spec_optimizer if same else Optimizer(name, align.KERAS_DEFAULT_LR[name], keras_default_lr=True)
    else:
        raise ParityError(f"unknown optimizer {name!r}; choose spec or one of {', '.join(OPTIMIZERS)}")
    return Optimizer(
        base.name,
        base.learning_rate if learning_rate is None else learning_rate,
        base.momentum if momentum is None else momentum,
        base.keras_default_lr and learning_rate is None,
    )


@dataclass(frozen=True)
class LockstepOptions:
    """What `parity lockstep` was asked for."""

    steps: int = 100
    optimizer: str = "spec"
    learning_rate: float | None = None
    momentum: float | None = None
    alignments: tuple[align.Alignment, ...] = (align.ALIGNED,)
    # The Keras process's settings (determinism, TF32); None: those of the first alignment.
    keras_alignment: align.Alignment | None = None
    tolerance: float = TOLERANCE
    rounding_control: bool = True
    seed: int = 0
    data_dir: str | None = None
    synthetic: bool = False
    vocab: str | None = None  # `--vocab`: a subword vocabulary file, or "course" (None: learnt from the data)
    device: str = "cpu"
    threads: int = 1
    out_dir: Path = Path("runs")
    frameworks: tuple[str, ...] = jobs.FRAMEWORKS  # `--frameworks`, in display order


def relative_difference(a: Sequence[float], b: Sequence[float]) -> np.ndarray:
    """|a - b| / max(|a|, |b|) elementwise, in float64 (0 where both are 0)."""
    a64 = np.asarray(a, dtype=np.float64)
    b64 = np.asarray(b, dtype=np.float64)
    return np.abs(a64 - b64) / np.maximum(np.maximum(np.abs(a64), np.abs(b64)), _TINY)


def first_step_beyond(relative: np.ndarray, tolerance: float) -> int | None:
    """The 1-based step at which `relative` first exceeds `tolerance` (NaN counts as beyond); None if never."""
    beyond = ~(relative <= tolerance)
    return int(np.argmax(beyond)) + 1 if beyond.any() else None


def compare_pair(runs: Mapping[str, Mapping[str, Any]], pair: tuple[str, str], tolerance: float,
                 param_diff: float | None) -> dict[str, Any]:
    """Per-step relative differences of loss and gradient norm between the runs of `pair`'s two frameworks, their
    first divergence and maxima; `param_diff`: the parameters' max abs difference after the last step (None: not
    measured)."""
    a, b = runs[pair[0]], runs[pair[1]]
    loss = relative_difference(a["loss"], b["loss"])
    grad = relative_difference(a["grad_norm"], b["grad_norm"])
    return {
        "tolerance": tolerance,
        "first_divergence_step": first_step_beyond(loss, tolerance),
        "first_grad_norm_divergence_step": first_step_beyond(grad, tolerance),
        "max_rel_loss_diff": float(np.max(loss)),
        "max_rel_grad_norm_diff": float(np.max(grad)),
        "first_rel_loss_diff": float(loss[0]),
        "final_rel_loss_diff": float(loss[-1]),
        "final_param_max_abs_diff": param_diff,
        "val_metric": {pair[0]: a["val_metric"], pair[1]: b["val_metric"],
                       "abs_diff": abs(a["val_metric"] - b["val_metric"])},
        "rel_loss_diff": loss.tolist(),
        "rel_grad_norm_diff": grad.tolist(),
    }


def compare_runs(keras: Mapping[str, Any], lightning: Mapping[str, Any], tolerance: float) -> dict[str, Any]:
    """Keras against one torch run (compare_pair), with the torch run's alignment and settings."""
    return {
        "native": list(lightning["native"]),
        **compare_pair({"keras": keras, "lightning": lightning}, ("keras", "lightning"), tolerance,
                       lightning["final_param_max_abs_diff"]),
        "lightning": {key: lightning[key] for key in ("loss", "grad_norm", "optimizer", "optimizer_kwargs",
                                                        "deterministic", "dropout_layers", "tensor_device")},
    }


def keras_param_diff(a: Path, b: Path) -> float:
    """The max abs difference between two Keras final weights files (same model, any backend), layer by layer in
    model order (automatic layer names may differ between processes)."""
    first, second = load_keras_layers(a), load_keras_layers(b)
    shapes = [[(layer.kind, {key: array.shape for key, array in layer.arrays.items()}) for layer in layers]
              for layers in (first, second)]
    if shapes[0] != shapes[1]:
        raise ParityError(f"the Keras final weights {a.name} and {b.name} hold different layers or shapes; both "
                          "Keras workers must build the model from the same tf_models builder")
    return max((float(np.max(np.abs(x.arrays[key].astype(np.float64) - y.arrays[key])))
                for x, y in zip(first, second) for key in x.arrays if x.arrays[key].size), default=0.0)


def measure(model_id: str, options: LockstepOptions, workers: jobs.WorkerPool | None = None) -> dict[str, Any]:
    """Run each Keras framework once and the torch worker once per alignment; return the comparisons (with
    `options.frameworks` other than the default two, those of compare_frameworks).

    `workers`: run in these (already started) workers, of the same device and threads, instead of new ones.
    """
    spec = get_spec(model_id)
    if not spec.trainable:
        raise ParityError(f"{spec.id} trains no network in the course; nothing to run in lockstep")
    optimizer = choose_optimizer(spec.id, options.optimizer, options.learning_rate, options.momentum)
    split = load_dataset(spec, options.data_dir, options.synthetic, vocab=options.vocab)
    data = provenance.data_provenance(split)
    metric_on = "validation" if split.val is not None else "training"
    if split.val is None:  # no validation data (the text generators): the metric after the last step is on train samples
        split = replace(split, val=split.train)
    needed = options.steps * spec.batch_size
    with jobs.worker_pool(device=options.device, threads=options.threads, quiet=True, reuse=workers) as workers, \
            jobs.work_directory(f"parity-lockstep-{spec.id}-") as workdir:
        data_file = jobs.save_data(workdir, split.head(needed, VAL_SAMPLES))
        job = {"kind": "lockstep", "model": spec.id, "seed": options.seed, "steps": options.steps,
               "batch_size": spec.batch_size, "optimizer": optimizer_to_job(optimizer), "data": str(data_file),
               "native": (options.keras_alignment or options.alignments[0]).to_job(),
               "alignments": [alignment.to_job() for alignment in options.alignments],
               "rounding_control": options.rounding_control, "spec_overrides": split.spec_overrides(spec.id),
               "weights_source": jobs.weights_source(options.frameworks)}
        answers, keras_params = _run_frameworks(workers, job, workdir, options.frameworks)
    if options.frameworks != jobs.FRAMEWORKS:
        return _several(spec, options, optimizer, split, data, metric_on, needed, job, answers, keras_params)
    keras, lightning = answers["keras"], answers["lightning"]
    return {
        **_record_header(spec, options, optimizer, split, metric_on, needed),
        "keras": _keras_record(keras),
        "metric": spec.metric,
        # Each alignment's record has its own provenance: the data as loaded (the steps take its first batches).
        "comparisons": [{**compare_runs(keras, run, options.tolerance),
                         "provenance": provenance.build_provenance(
                             data, align.Alignment.from_job(run["native"]), {"keras": keras, "lightning": lightning},
                             options.threads, spec.epochs)}
                        for run in lightning["runs"]],
        "rounding_control": _control(lightning, options.tolerance),
        "environment": {"python": platform.python_version(), **keras["versions"], **lightning["versions"],
                        "device": f"keras: {keras['device']}, tensors on {keras['tensor_device']}; "
                                  f"lightning: {lightning['device']}, tensors on {lightning['tensor_device']}",
                        "threads": options.threads},
    }


def _run_frameworks(workers: jobs.WorkerPool, job: dict[str, Any], workdir: Path,
                    frameworks: Sequence[str]) -> tuple[dict[str, dict[str, Any]], float | None]:
    """Each framework's answer to `job`, run in jobs.run_order (the weights source first, then the torch worker,
    which reads the source's final weights); with both Keras frameworks, also the max abs difference of their final
    weights (None otherwise)."""
    final = keras_final_weights_path(workdir)
    both = set(jobs.KERAS_FRAMEWORKS) <= set(frameworks)
    answers = {}
    for framework in jobs.run_order(frameworks):
        keeps = both and framework in jobs.KERAS_FRAMEWORKS
        if keeps:
            final.unlink(missing_ok=True)  # a file left there afterwards is this run's
        answers[framework] = workers.run(framework, job, workdir)
        if keeps and final.is_file():
            shutil.copyfile(final, kept_final_weights_path(workdir, framework))
    kept = [kept_final_weights_path(workdir, framework) for framework in jobs.KERAS_FRAMEWORKS]
    return answers, keras_param_diff(*kept) if both and all(path.is_file() for path in kept) else None


def _keras_record(answer: Mapping[str, Any]) -> dict[str, Any]:
    """What a lockstep record keeps of a Keras framework's answer: its steps, its settings and its val metric."""
    return {key: answer[key] for key in ("loss", "grad_norm", "deterministic", "dropout_layers", "val_metric",
                                         "tensor_device")}


def _environment(answers: Mapping[str, Mapping[str, Any]], frameworks: Sequence[str], threads: int) -> dict[str, Any]:
    versions = {name: value for framework in frameworks for name, value in answers[framework]["versions"].items()}
    devices = "; ".join(f"{framework}: {answers[framework]['device']}, tensors on {answers[framework]['tensor_device']}"
                        for framework in frameworks)
    return {"python": platform.python_version(), **versions, "device": devices, "threads": threads}


def compare_frameworks(answers: Mapping[str, Mapping[str, Any]], frameworks: Sequence[str],
                       keras_native: Sequence[str], tolerance: float, keras_params: float | None = None,
                       forms_met: Sequence[str] = ()) -> list[dict[str, Any]]:
    """Every pair of `frameworks` compared (compare_pair), once per alignment the torch worker ran (once without
    it): `answers` are the workers' lockstep answers, `keras_native` the differences the Keras processes left
    native, `keras_params` the two Keras frameworks' final weights' max abs difference, `forms_met` as for
    align.differences_in_force. Each comparison holds its direct pair's numbers at the top (the default report's
    keys: Keras against Lightning when both ran) with the alignment asked for in `native`, that pair's key in
    `pair`, and `pairs`: each pair by key with the differences in force between the two (`native`,
    align.differences_in_force), judged against the one-ulp control (`loss_within_rounding`,
    `grad_norms_within_rounding`)."""
    lightning = answers.get("lightning")
    control = _control(lightning, tolerance) if lightning else None
    alignments = [run["native"] for run in lightning["runs"]] if lightning else [list(keras_native)]
    source = jobs.weights_source(frameworks)
    direct = jobs.framework_pairs(frameworks)[0]
    comparisons = []
    for index, native in enumerate(alignments):
        runs = {framework: lightning["runs"][index] if framework == "lightning" else answers[framework]
                for framework in frameworks}
        pairs = {}
        for pair in jobs.framework_pairs(frameworks):
            if "lightning" not in pair:
                param_diff = keras_params
            else:  # the torch worker compared its parameters with the weights source's
                param_diff = runs["lightning"]["final_param_max_abs_diff"] if source in pair else None
            entry = {"native": align.differences_in_force(pair, native, keras_native, forms_met),
                     **compare_pair(runs, pair, tolerance, param_diff)}
            entry["loss_within_rounding"] = within_rounding(entry, control)
            entry["grad_norms_within_rounding"] = grad_norms_within_rounding(entry, control)
            pairs[jobs.pair_key(pair)] = entry
        if direct == ("keras", "lightning"):
            comparison = compare_runs(runs["keras"], runs["lightning"], tolerance)
        else:
            top = pairs[jobs.pair_key(direct)]
            comparison = {key: value for key, value in top.items() if not key.endswith("_within_rounding")}
            comparison["native"] = list(native)
            if lightning:
                comparison["lightning"] = compare_runs(runs[source], runs["lightning"], tolerance)["lightning"]
        comparisons.append({**comparison, "pair": jobs.pair_key(direct), "pairs": pairs})
    return comparisons


def _record_header(spec: Any, options: LockstepOptions, optimizer: Optimizer, split: Any, metric_on: str,
                   needed: int) -> dict[str, Any]:
    """The keys that open a lockstep record: the model, its optimizer and steps, and the data the steps used."""
    return {
        "model": spec.id,
        "optimizer": optimizer_to_job(optimizer),
        "steps": options.steps,
        "batch_size": spec.batch_size,
        "seed": options.seed,
        "dataset": {"id": spec.dataset, "source": split.source, "train_samples_used": min(needed, len(split.train)),
                    "val_samples": min(VAL_SAMPLES, split.val_size), "metric_on": metric_on},
    }


def _several(spec: Any, options: LockstepOptions, optimizer: Optimizer, split: Any, data: Mapping[str, Any],
             metric_on: str, needed: int, job: Mapping[str, Any], answers: Mapping[str, dict[str, Any]],
             keras_params: float | None) -> dict[str, Any]:
    """measure()'s result for `--frameworks` other than the default two (compare_frameworks)."""
    from parity.explain import tensorflow_runtime_forms

    frameworks = options.frameworks
    forms_met = tensorflow_runtime_forms(replace(spec, optimizer=optimizer))
    comparisons = compare_frameworks(answers, frameworks, job["native"], options.tolerance, keras_params, forms_met)
    for comparison in comparisons:
        comparison["provenance"] = provenance.build_provenance(
            data, align.Alignment.from_job(comparison["native"]), answers, options.threads, spec.epochs)
    lightning = answers.get("lightning")
    return {
        **_record_header(spec, options, optimizer, split, metric_on, needed),
        "frameworks": list(frameworks),
        **{framework: _keras_record(answers[framework]) for framework in frameworks if framework != "lightning"},
        "metric": spec.metric,
        "comparisons": comparisons,
        "rounding_control": _control(lightning, options.tolerance) if lightning else None,
        "environment": _environment(answers, frameworks, options.threads),
    }


def _control(lightning: Mapping[str, Any], tolerance: float) -> dict[str, Any] | None:
    """torch against torch started one ulp apart: where rounding-sized differences alone part the losses."""
    control = lightning.get("rounding_control")
    aligned = next((run for run in lightning["runs"] if not run["native"]), None)
    if control is None or aligned is None:
        return None
    relative = relative_difference(aligned["loss"], control["loss"])
    grad = relative_difference(aligned["grad_norm"], control["grad_norm"])
    return {"first_divergence_step": first_step_beyond(relative, tolerance), "max_rel_loss_diff": float(np.max(relative)),
            "rel_loss_diff": relative.tolist(), "max_rel_grad_norm_diff": float(np.max(grad)),
            "rel_grad_norm_diff": grad.tolist()}


def within_rounding(comparison: Mapping[str, Any], control: Mapping[str, Any] | None) -> bool:
    """Whether the keras-vs-torch drift is at most ROUNDING_BAND times the one-ulp control's (or the tolerance)."""
    if control is None:
        return False
    bound = ROUNDING_BAND * max(control["max_rel_loss_diff"], comparison["tolerance"])
    return comparison["max_rel_loss_diff"] <= bound


def grad_norms_within_rounding(comparison: Mapping[str, Any], control: Mapping[str, Any] | None) -> bool:
    """Whether the gradient norms agree as far as rounding lets them: within the tolerance at the first step (both
    frameworks at the same weights), and later at most ROUNDING_BAND times the one-ulp control's own gradient-norm
    drift. After one step the weights differ by rounding, and where a max-pool window holds two near-equal
    values or a ReLU input sits near 0, an ulp re-routes a whole position's gradient: the norm jumps while the losses
    still agree (align: float32_summation_order); torch against itself one ulp apart shows the same jump."""
    grads = comparison["rel_grad_norm_diff"]
    if not grads or grads[0] > comparison["tolerance"]:
        return False
    if comparison["max_rel_grad_norm_diff"] <= comparison["tolerance"]:
        return True
    if control is None or "max_rel_grad_norm_diff" not in control:
        return False
    return comparison["max_rel_grad_norm_diff"] <= ROUNDING_BAND * control["max_rel_grad_norm_diff"]


def explain(comparison: Mapping[str, Any], steps: int, optimizer: Mapping[str, Any],
            control: Mapping[str, Any] | None = None) -> str:
    """One sentence on the result: agreement, or the first divergence and the differences left native."""
    tolerance = comparison["tolerance"]
    first = comparison["first_divergence_step"]
    native = comparison["native"]
    if first is None:
        return (f"The losses agree within {tolerance:g} relative at every one of the {steps} steps "
                f"(largest {comparison['max_rel_loss_diff']:.1e}).")
    if native:
        cause = f"Differences left native: {', '.join(native)} (docs/differences.md)."
    elif control is None:
        cause = "Every difference is aligned; no rounding control ran to tell float32 rounding from another cause."
    elif within_rounding(comparison, control):
        control_first = control["first_divergence_step"]
        where = f"parts at step {control_first}" if control_first is not None else "stays within the tolerance"
        cause = ("Every difference is aligned; what remains is float32 rounding (float32_summation_order: the "
                 "frameworks' kernels sum in different orders), amplified by training: torch against itself, started "
                 f"one ulp apart, {where} (largest {control['max_rel_loss_diff']:.1e}).")
    else:
        cause = (f"Every difference is aligned, yet the drift is more than {ROUNDING_BAND:g} times that of torch "
                 f"against itself started one ulp apart (largest {control['max_rel_loss_diff']:.1e}): a difference not "
                 "in the catalog remains.")
    return (f"The losses part beyond {tolerance:g} relative at step {first} of {steps} "
            f"({optimizer['name']}, lr {optimizer['learning_rate']:g}); largest {comparison['max_rel_loss_diff']:.1e}. "
            + cause)


def _slug(native: Sequence[str]) -> str:
    if not native:
        return "aligned"
    if set(native) == set(align.SWITCHABLE):
        return "native"
    return "native-" + "+".join(sorted(native))


def render_markdown(result: Mapping[str, Any], comparison: Mapping[str, Any]) -> str:
    """lockstep.md for one alignment."""
    if "pairs" in comparison:
        return _render_pairs_markdown(result, comparison)
    optimizer = result["optimizer"]
    alignment = align.Alignment.from_job(comparison["native"])
    steps = result["steps"]
    lines = [
        f"# Lockstep: {result['model']}", "",
        f"- Alignment: {alignment.describe()}",
        f"- Optimizer: {optimizer['name']} lr {optimizer['learning_rate']:g} momentum {optimizer['momentum']:g} "
        f"(torch: {comparison['lightning']['optimizer']} {comparison['lightning']['optimizer_kwargs']})",
        f"- Steps: {steps}, batch size {result['batch_size']}, seed {result['seed']}, "
        f"data {result['dataset']['id']} ({result['dataset']['source']})",
        f"- Device: {result['environment']['device']}",
        f"- Provenance: {provenance.describe_provenance(comparison)}",
        f"- Dropout layers switched off: {result['keras']['dropout_layers']}; deterministic ops: "
        f"keras {result['keras']['deterministic']}, torch {comparison['lightning']['deterministic']}",
        "", "## Result", "", explain(comparison, steps, optimizer, result.get("rounding_control")), "",
        f"- First step beyond {comparison['tolerance']:g} relative: loss {comparison['first_divergence_step']}, "
        f"gradient norm {comparison['first_grad_norm_divergence_step']}",
        f"- Largest relative difference: loss {comparison['max_rel_loss_diff']:.2e}, "
        f"gradient norm {comparison['max_rel_grad_norm_diff']:.2e}",
        f"- Parameters after step {steps}: max abs difference {comparison['final_param_max_abs_diff']:.2e}",
        f"- {result['dataset'].get('metric_on', 'validation').capitalize()} {result['metric']} after step {steps} "
        f"({min(VAL_SAMPLES, result['dataset']['val_samples'])} "
        f"samples): keras {comparison['val_metric']['keras']:.4f}, lightning {comparison['val_metric']['lightning']:.4f}",
        "", "| step | keras loss | lightning loss | rel. diff | keras grad norm | lightning grad norm | rel. diff |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for i in (r for r in STEP_ROWS if r < steps):
        lines.append(
            f"| {i + 1} | {result['keras']['loss'][i]:.7g} | {comparison['lightning']['loss'][i]:.7g} | "
            f"{comparison['rel_loss_diff'][i]:.1e} | {result['keras']['grad_norm'][i]:.7g} | "
            f"{comparison['lightning']['grad_norm'][i]:.7g} | {comparison['rel_grad_norm_diff'][i]:.1e} |")
    lines += ["", "![Drift](drift.png)", ""]
    return "\n".join(lines)


def series(result: Mapping[str, Any], comparison: Mapping[str, Any], framework: str, key: str) -> Any:
    """A framework's `key` ("loss", "grad_norm", "deterministic"...): a Keras framework's from the result, the torch
    run's (which depends on the alignment) from the comparison."""
    record = comparison["lightning"] if framework == "lightning" else result[framework]
    return record[key]


def _pair_row(key: str, entry: Mapping[str, Any]) -> str:
    def step(value: int | None) -> str:
        return "never" if value is None else str(value)

    params = entry["final_param_max_abs_diff"]
    return (f"| {key} | {' + '.join(align.PAIR_LAYERS[key])} | {step(entry['first_divergence_step'])} | "
            f"{step(entry['first_grad_norm_divergence_step'])} | {entry['max_rel_loss_diff']:.2e} | "
            f"{entry['max_rel_grad_norm_diff']:.2e} | {'yes' if entry['loss_within_rounding'] else 'no'} | "
            f"{'yes' if entry['grad_norms_within_rounding'] else 'no'} | "
            f"{'not measured' if params is None else f'{params:.2e}'} | {entry['val_metric']['abs_diff']:.4f} |")


def _render_pairs_markdown(result: Mapping[str, Any], comparison: Mapping[str, Any]) -> str:
    """lockstep.md for one alignment of a run with `--frameworks`: every pair, and a column per framework."""
    frameworks = result["frameworks"]
    optimizer = result["optimizer"]
    steps = result["steps"]
    control = result.get("rounding_control")
    torch_side = (f" (torch: {comparison['lightning']['optimizer']} {comparison['lightning']['optimizer_kwargs']})"
                  if "lightning" in frameworks else "")
    deterministic = ", ".join(f"{framework} {series(result, comparison, framework, 'deterministic')}"
                              for framework in frameworks)
    dropouts = result[jobs.weights_source(frameworks)]["dropout_layers"]
    metric = {name: value for entry in comparison["pairs"].values() for name, value in entry["val_metric"].items()
              if name != "abs_diff"}
    lines = [
        f"# Lockstep: {result['model']}", "",
        f"- Frameworks: {', '.join(frameworks)} (initial weights from {jobs.weights_source(frameworks)})",
        f"- Alignment: {align.Alignment.from_job(comparison['native']).describe()}",
        f"- Optimizer: {optimizer['name']} lr {optimizer['learning_rate']:g} momentum {optimizer['momentum']:g}"
        + torch_side,
        f"- Steps: {steps}, batch size {result['batch_size']}, seed {result['seed']}, "
        f"data {result['dataset']['id']} ({result['dataset']['source']})",
        f"- Device: {result['environment']['device']}",
        f"- Provenance: {provenance.describe_provenance(comparison)}",
        f"- Dropout layers switched off: {dropouts}; deterministic ops: {deterministic}",
        f"- {result['dataset'].get('metric_on', 'validation').capitalize()} {result['metric']} after step {steps} "
        f"({min(VAL_SAMPLES, result['dataset']['val_samples'])} samples): "
        + ", ".join(f"{framework} {metric[framework]:.4f}" for framework in frameworks),
        "", "## Result", "",
        f"Each pair: the first step whose relative difference exceeds {comparison['tolerance']:g} ('never': none of "
        f"the {steps}), the largest, and whether the drift stays within {ROUNDING_BAND:g} times that of torch against "
        "itself started one ulp apart (loss: `within_rounding`; gradient norm: strict at the first step, then "
        "against the control: `grad_norms_within_rounding`; 'no' for both without a control run). "
        "keras-torch/keras isolates the runtime (same Keras API, TensorFlow vs torch kernels), keras-torch/lightning "
        "the API (same torch kernels, Keras vs Lightning defaults and loop).", "",
        "| pair | separates | loss parts at step | grad norm parts at step | max rel. loss diff | "
        "max rel. grad norm diff | loss within rounding | grad norms within rounding | params max abs diff | "
        f"{result['metric']} abs diff |",
        "|---|---|---:|---:|---:|---:|---|---|---:|---:|",
        *(_pair_row(key, entry) for key, entry in comparison["pairs"].items()), "",
        *(f"- {key}: {explain(entry, steps, optimizer, control)}" for key, entry in comparison["pairs"].items()),
    ]
    keys = list(comparison["pairs"])
    for title, value, relative in (("Loss", "loss", "rel_loss_diff"), ("Gradient norm", "grad_norm",
                                                                       "rel_grad_norm_diff")):
        lines += ["", f"## {title} per step", "",
                  f"| step | {' | '.join(frameworks)} | {' | '.join(f'rel. diff {key}' for key in keys)} |",
                  "|" + "---:|" * (1 + len(frameworks) + len(keys))]
        for i in (row for row in STEP_ROWS if row < steps):
            values = " | ".join(f"{series(result, comparison, framework, value)[i]:.7g}" for framework in frameworks)
            diffs = " | ".join(f"{comparison['pairs'][key][relative][i]:.1e}" for key in keys)
            lines.append(f"| {i + 1} | {values} | {diffs} |")
    lines += ["", "![Drift](drift.png)", ""]
    return "\n".join(lines)


def plot_drift(result: Mapping[str, Any], comparison: Mapping[str, Any], path: Path) -> None:
    """drift.png: the relative difference per step (log scale) and both loss curves."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    steps = np.arange(1, result["steps"] + 1)
    fig = Figure(figsize=(11, 4.2), layout="constrained")
    FigureCanvasAgg(fig)
    drift, curves = fig.subplots(1, 2)
    floor = 1e-10  # exact agreement (0) is drawn at the floor of the log axis
    if "pairs" in comparison:  # one colour per pair
        for number, (pair, entry) in enumerate(comparison["pairs"].items()):
            for key, label, style in (("rel_loss_diff", "loss", "-"), ("rel_grad_norm_diff", "gradient norm", "--")):
                drift.plot(steps, np.maximum(entry[key], floor), style, color=f"C{number}", label=f"{pair} {label}")
    else:
        for key, label, style in (("rel_loss_diff", "loss", "-"), ("rel_grad_norm_diff", "gradient norm", "--")):
            drift.plot(steps, np.maximum(comparison[key], floor), style, label=label)
    if result.get("rounding_control"):
        drift.plot(steps, np.maximum(result["rounding_control"]["rel_loss_diff"], floor), ":", color="grey",
                   label="loss, torch vs torch one ulp apart")
    drift.axhline(comparison["tolerance"], color="black", linewidth=0.8, label=f"tolerance {comparison['tolerance']:g}")
    drift.set_yscale("log")
    drift.set_xlabel("step")
    drift.set_ylabel("relative difference |a - b| / max" if "pairs" in comparison
                     else "relative difference |keras - lightning| / max")
    drift.set_title("drift")
    drift.grid(alpha=0.3)
    drift.legend()
    for framework, style in zip(result.get("frameworks", jobs.FRAMEWORKS), ("-", "--", ":")):
        curves.plot(steps, series(result, comparison, framework, "loss"), style,
                    color=COLOURS[framework], label=framework)
    curves.set_xlabel("step")
    curves.set_ylabel("training loss of the batch")
    curves.set_title("loss")
    curves.grid(alpha=0.3)
    curves.legend()
    alignment = align.Alignment.from_job(comparison["native"]).describe()
    fig.suptitle(f"{result['model']} lockstep, {result['optimizer']['name']}, {alignment}")
    fig.savefig(path, format="png", dpi=100)


def write(result: Mapping[str, Any], out_dir: Path) -> list[Path]:
    """One directory per alignment under OUT/lockstep/, each written atomically; returns them."""
    root = Path(out_dir) / "lockstep"
    written = []
    for comparison in result["comparisons"]:
        name = f"{result['model']}-{result['optimizer']['name']}-{_slug(comparison['native'])}"
        if "frameworks" in result:  # a --frameworks run does not replace the default pair's report
            name += "-" + "+".join(result["frameworks"])
        document = {key: value for key, value in result.items() if key != "comparisons"}
        document.update(comparison)
        document["alignment"] = align.Alignment.from_job(comparison["native"]).describe()
        document["explanation"] = explain(comparison, result["steps"], result["optimizer"], result["rounding_control"])
        with staging_dir(root, name) as staging:
            (staging / "lockstep.json").write_text(json.dumps(document, indent=2, allow_nan=False) + "\n")
            (staging / "lockstep.md").write_text(render_markdown(result, comparison))
            plot_drift(result, comparison, staging / "drift.png")
            swap_in(staging, root / name)
        written.append(root / name)
    return written
