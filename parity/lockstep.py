"""Lockstep training: both frameworks take the same steps from the same weights, compared step by step.

Same initial weights (the Keras ones, copied as the alignment says), the same batches from
the batch plan, dropout off, deterministic ops (align: determinism). Each worker records
the loss and the global gradient norm of every step (tf_models/lockstep.py,
torch_models/lockstep.py); here they are compared: the relative difference per step, the
first step where it exceeds the tolerance, and the parameters' difference after the last
step. The result is written as lockstep.json, lockstep.md and drift.png.
"""

from __future__ import annotations

import json
import platform
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


def keras_final_weights_path(workdir: Path) -> Path:
    """Where the Keras worker leaves its weights after the last lockstep step."""
    return Path(workdir) / f"keras-{TAG}-final.npz"


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


def relative_difference(a: Sequence[float], b: Sequence[float]) -> np.ndarray:
    """|a - b| / max(|a|, |b|) elementwise, in float64 (0 where both are 0)."""
    a64 = np.asarray(a, dtype=np.float64)
    b64 = np.asarray(b, dtype=np.float64)
    return np.abs(a64 - b64) / np.maximum(np.maximum(np.abs(a64), np.abs(b64)), _TINY)


def first_step_beyond(relative: np.ndarray, tolerance: float) -> int | None:
    """The 1-based step at which `relative` first exceeds `tolerance` (NaN counts as beyond); None if never."""
    beyond = ~(relative <= tolerance)
    return int(np.argmax(beyond)) + 1 if beyond.any() else None


def compare_runs(keras: Mapping[str, Any], lightning: Mapping[str, Any], tolerance: float) -> dict[str, Any]:
    """Per-step relative differences of loss and gradient norm, their first divergence and maxima."""
    loss = relative_difference(keras["loss"], lightning["loss"])
    grad = relative_difference(keras["grad_norm"], lightning["grad_norm"])
    return {
        "native": list(lightning["native"]),
        "tolerance": tolerance,
        "first_divergence_step": first_step_beyond(loss, tolerance),
        "first_grad_norm_divergence_step": first_step_beyond(grad, tolerance),
        "max_rel_loss_diff": float(np.max(loss)),
        "max_rel_grad_norm_diff": float(np.max(grad)),
        "first_rel_loss_diff": float(loss[0]),
        "final_rel_loss_diff": float(loss[-1]),
        "final_param_max_abs_diff": lightning["final_param_max_abs_diff"],
        "val_metric": {"keras": keras["val_metric"], "lightning": lightning["val_metric"],
                       "abs_diff": abs(keras["val_metric"] - lightning["val_metric"])},
        "rel_loss_diff": loss.tolist(),
        "rel_grad_norm_diff": grad.tolist(),
        "lightning": {key: lightning[key] for key in ("loss", "grad_norm", "optimizer", "optimizer_kwargs",
                                                        "deterministic", "dropout_layers", "tensor_device")},
    }


def measure(model_id: str, options: LockstepOptions, workers: jobs.WorkerPool | None = None) -> dict[str, Any]:
    """Run the Keras worker once and the torch worker once per alignment; return the comparisons.

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
               "rounding_control": options.rounding_control, "spec_overrides": split.spec_overrides(spec.id)}
        keras = workers.run("keras", job, workdir)
        lightning = workers.run("lightning", job, workdir)
    return {
        "model": spec.id,
        "optimizer": optimizer_to_job(optimizer),
        "steps": options.steps,
        "batch_size": spec.batch_size,
        "seed": options.seed,
        "dataset": {"id": spec.dataset, "source": split.source, "train_samples_used": min(needed, len(split.train)),
                    "val_samples": min(VAL_SAMPLES, split.val_size), "metric_on": metric_on},
        "keras": {key: keras[key] for key in ("loss", "grad_norm", "deterministic", "dropout_layers", "val_metric",
                                              "tensor_device")},
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
    optimizer = result["optimizer"]
    alignment = align.Alignment.from_job(comparison["native"])
    steps = result["steps"]
    rows = [0, 1, 2, 4, 9, 19, 49, 99, 199, 499, 999]
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
    for i in (r for r in rows if r < steps):
        lines.append(
            f"| {i + 1} | {result['keras']['loss'][i]:.7g} | {comparison['lightning']['loss'][i]:.7g} | "
            f"{comparison['rel_loss_diff'][i]:.1e} | {result['keras']['grad_norm'][i]:.7g} | "
            f"{comparison['lightning']['grad_norm'][i]:.7g} | {comparison['rel_grad_norm_diff'][i]:.1e} |")
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
    for key, label, style in (("rel_loss_diff", "loss", "-"), ("rel_grad_norm_diff", "gradient norm", "--")):
        drift.plot(steps, np.maximum(comparison[key], floor), style, label=label)
    if result.get("rounding_control"):
        drift.plot(steps, np.maximum(result["rounding_control"]["rel_loss_diff"], floor), ":", color="grey",
                   label="loss, torch vs torch one ulp apart")
    drift.axhline(comparison["tolerance"], color="black", linewidth=0.8, label=f"tolerance {comparison['tolerance']:g}")
    drift.set_yscale("log")
    drift.set_xlabel("step")
    drift.set_ylabel("relative difference |keras - lightning| / max")
    drift.set_title("drift")
    drift.grid(alpha=0.3)
    drift.legend()
    curves.plot(steps, result["keras"]["loss"], color=COLOURS["keras"], label="keras")
    curves.plot(steps, comparison["lightning"]["loss"], "--", color=COLOURS["lightning"], label="lightning")
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
