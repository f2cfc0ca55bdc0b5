"""The course's learning-rate sweep (`parity lrsweep MODEL`), in both frameworks, from one start, on one batch plan.

The course trains a fresh model while a LearningRateScheduler raises the rate every epoch,
lr(epoch) = initial * 10 ** (epoch / epochs_per_decade) (epoch 0-based, set at the start of
the epoch), plots the loss against the rate on a semilog axis and picks a fixed rate for the
real training. Here the Keras worker saves its initial weights, the torch worker loads them
by name (as for `parity run`), both read the same data directory and batch plan, and each
records per epoch the rate its optimizer held and the mean training loss. A framework whose
loss turns non-finite (the sweep's high rates diverge) stops there; the record says where.

Output: OUT/MODEL/lrsweep.json and lrsweep.png, each written atomically beside whatever else
OUT/MODEL holds. `suggest_rate` is the documented rule that turns a curve into one rate.
"""

from __future__ import annotations

import io
import math
import platform
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import numpy as np

from parity import align, jobs, provenance
from parity.catalog import CATALOG, ModelSpec, get_spec
from parity.datasets import load_dataset
from parity.errors import ParityError
from parity.fileio import write_bytes_atomic, write_json_atomic
from parity.lockstep import relative_difference
from parity.report import COLOURS
from parity.runner import PROBE_SIZE, forward_check, missing_support, require_forward_parity

if TYPE_CHECKING:
    from parity.datasets.series import SeriesOptions
    from parity.spec_types import LrSweep

SMOOTHING_EPOCHS = 5  # centred moving average of log10(loss) over this many epochs (fewer at the ends)
BACKOFF_DECADES = 0.5  # the suggestion sits this many decades below the smoothed minimum (a factor of 10**0.5 = 3.16)
# The plot's y axis: 0 to this many times the lowest loss, so the valley and the turn stay readable; the descent
# from the initial loss and the explosion are clipped, as the course clips them with plt.axis (course_models.md 6.0).
Y_TOP_TIMES_MINIMUM = 6
RULE = (f"smooth log10(loss) with a centred moving average over {SMOOTHING_EPOCHS} epochs (fewer at the ends), "
        f"take the rate at its minimum (the earliest if tied) over the finite epochs, and divide it by "
        f"10**{BACKOFF_DECADES:g} (step back {BACKOFF_DECADES:g} decade): the minimum is the edge past which the "
        "loss turns up and training becomes unstable, so the rate used for training sits below it")


@dataclass(frozen=True)
class SweepOptions:
    """What `parity lrsweep` was asked for (epochs None = the course's sweep length)."""

    epochs: int | None = None
    seed: int = 0
    data_dir: str | None = None
    synthetic: bool = False
    series: SeriesOptions | None = None
    vocab: str | None = None  # `--vocab`: a subword vocabulary file, or "course" (None: learnt from the data)
    device: str = "cpu"
    threads: int = 1
    out_dir: Path = Path("runs")
    quiet: bool = False


@dataclass(frozen=True)
class Suggestion:
    """Where `suggest_rate` lands on one curve: the suggested rate and the smoothed minimum it backs off from."""

    learning_rate: float
    minimum_epoch: int
    minimum_learning_rate: float
    still_falling: bool  # the minimum is the sweep's last epoch: the range did not reach the loss's turn

    def to_json(self) -> dict[str, Any]:
        return {"learning_rate": self.learning_rate, "minimum_epoch": self.minimum_epoch,
                "minimum_learning_rate": self.minimum_learning_rate, "still_falling": self.still_falling}


def swept_models() -> list[str]:
    """The ids of the models whose course recipe has a learning-rate sweep."""
    return [spec.id for spec in CATALOG.values() if spec.lr_sweep is not None]


def require_sweep(spec: ModelSpec) -> LrSweep:
    """The spec's sweep; a ParityError naming the models that have one when it has none."""
    if spec.lr_sweep is None:
        raise ParityError(f"{spec.id} has no learning-rate sweep in the course; models with one: "
                          f"{', '.join(swept_models()) or 'none yet'}")
    reason = missing_support(spec)
    if reason is not None:
        raise ParityError(f"{reason}; `parity list` shows what is implemented")
    if spec.optimizer.name != "sgd":
        raise ParityError(f"{spec.id}: the course sweeps with SGD, but the spec's optimizer is "
                          f"{spec.optimizer.name}; give the spec an SGD optimizer")
    return spec.lr_sweep


def weights_tag(model_id: str, seed: int) -> str:
    """The tag of the sweep's initial weights, which the Keras worker saves and the torch worker loads."""
    return f"{jobs.run_tag(model_id, seed)}-lrsweep"


def smoothed_log_loss(losses: Sequence[float], window: int = SMOOTHING_EPOCHS) -> np.ndarray:
    """Centred moving average of log10(loss) over `window` epochs; near the ends over the epochs there are."""
    log_loss = np.log10(np.maximum(np.asarray(losses, dtype=np.float64), np.finfo(np.float64).tiny))
    half = window // 2
    return np.array([log_loss[max(0, i - half): i + half + 1].mean() for i in range(len(log_loss))])


def suggest_rate(learning_rates: Sequence[float], losses: Sequence[float]) -> Suggestion:
    """The suggested rate of one sweep curve (RULE); the curve holds only finite epochs, lr rising."""
    if len(losses) == 0 or len(losses) != len(learning_rates):
        raise ValueError(f"a sweep curve needs one loss per rate, got {len(learning_rates)} rates and "
                         f"{len(losses)} losses")
    minimum = int(np.argmin(smoothed_log_loss(losses)))
    at_minimum = float(learning_rates[minimum])
    return Suggestion(at_minimum / 10 ** BACKOFF_DECADES, minimum, at_minimum, minimum == len(losses) - 1)


def loss_at(learning_rates: Sequence[float], losses: Sequence[float], rate: float) -> float:
    """The curve's loss at `rate`, interpolated linearly in log10(lr) (the nearest end outside the curve)."""
    return float(np.interp(math.log10(rate), np.log10(learning_rates), losses))


def compare_curves(keras: Mapping[str, Any], lightning: Mapping[str, Any]) -> dict[str, Any]:
    """Rates and losses of the epochs both frameworks completed with finite losses.

    With both frameworks' suggestions (framework records), also the largest loss difference over the epochs
    that decide them: up to the later smoothed minimum and the epochs its smoothing window reaches.
    """
    epochs = min(len(keras["loss"]), len(lightning["loss"]))
    rates = [np.asarray(run["lr"][:epochs], dtype=np.float32) for run in (keras, lightning)]
    loss = relative_difference(keras["loss"][:epochs], lightning["loss"][:epochs])
    minima = [run["suggested"]["minimum_epoch"] for run in (keras, lightning) if run.get("suggested")]
    deciding = max(minima) + SMOOTHING_EPOCHS // 2 + 1 if len(minima) == 2 else 0
    return {
        "epochs_compared": epochs,
        "lr_equal_float32": bool(np.array_equal(*rates)),
        "lr_max_rel_diff": float(relative_difference(*rates).max()) if epochs else None,
        "loss_max_rel_diff": float(loss.max()) if epochs else None,
        "loss_max_rel_diff_epoch": int(loss.argmax()) if epochs else None,
        "loss_max_rel_diff_to_minimum": float(loss[:deciding].max()) if epochs and deciding else None,
        "loss_rel_diff": loss.tolist(),
    }


def framework_record(answer: Mapping[str, Any]) -> dict[str, Any]:
    """One framework's part of the record: its worker's curve and stop, the epochs run and the suggested rate."""
    record = {key: answer[key] for key in ("params", "lr", "loss", "stopped", "wall_s")}
    record["epochs_run"] = len(answer["loss"])
    if answer["loss"]:
        suggestion = suggest_rate(answer["lr"], answer["loss"])
        record["suggested"] = {**suggestion.to_json(),
                               "loss_there": loss_at(answer["lr"], answer["loss"], suggestion.learning_rate)}
    else:
        record["suggested"] = None
    return record


def measure(model_id: str, options: SweepOptions) -> dict[str, Any]:
    """Run the sweep of `model_id` in both frameworks; return the lrsweep.json record."""
    spec = get_spec(model_id)
    sweep = require_sweep(spec)
    epochs = options.epochs or sweep.epochs
    split = load_dataset(spec, options.data_dir, options.synthetic, series=options.series, vocab=options.vocab)
    data = provenance.data_provenance(split)
    out_dir = Path(options.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    with jobs.worker_pool(device=options.device, threads=options.threads, quiet=options.quiet) as workers, \
            jobs.work_directory(f".work-lrsweep-{spec.id}-", out_dir) as workdir:
        data_file = jobs.save_data(workdir, split)
        np.save(jobs.probe_inputs_path(workdir, spec.id), split.probe_inputs(PROBE_SIZE))
        check = forward_check([spec.id], [options.seed], workers, workdir, spec_overrides=split.spec_overrides(spec.id))
        require_forward_parity(spec, check, workdir)
        job = {"kind": "lrsweep", "model": spec.id, "seed": options.seed, "epochs": epochs, "data": str(data_file),
               "weights_tag": weights_tag(spec.id, options.seed), "native": align.ALIGNED.to_job(),
               "spec_overrides": split.spec_overrides(spec.id)}
        answers = {framework: workers.run(framework, job, workdir) for framework in jobs.FRAMEWORKS}
    frameworks = {framework: framework_record(answers[framework]) for framework in jobs.FRAMEWORKS}
    schedule = sweep.schedule
    return {
        "model": spec.id,
        "title": spec.title,
        "schedule": {"initial": schedule.initial, "epochs_per_decade": schedule.epochs_per_decade,
                     "last": schedule.rate(epochs - 1),
                     "formula": "lr(epoch) = initial * 10 ** (epoch / epochs_per_decade), epoch 0-based, set at "
                                "the start of each epoch (Keras LearningRateScheduler)"},
        "epochs": epochs,
        "course_epochs": sweep.epochs,
        "optimizer": {"name": spec.optimizer.name, "momentum": spec.optimizer.momentum},
        "loss": spec.loss,
        "batch_size": spec.batch_size,
        "seed": options.seed,
        "mode": align.ALIGNED.mode,
        "dataset": {"id": spec.dataset, "source": split.source, "train_size": len(split.train),
                    "location": split.location},
        "course_lr": spec.optimizer.learning_rate,
        "rule": {"text": RULE, "smoothing_epochs": SMOOTHING_EPOCHS, "backoff_decades": BACKOFF_DECADES},
        "frameworks": frameworks,
        "comparison": compare_curves(frameworks["keras"], frameworks["lightning"]),
        "forward_check": check,
        "environment": {"python": platform.python_version(), **answers["keras"]["versions"],
                        **answers["lightning"]["versions"], "threads": options.threads,
                        "device": f"keras: {answers['keras']['device']}; lightning: {answers['lightning']['device']}"},
        "provenance": provenance.build_provenance(data, align.ALIGNED, answers, options.threads, sweep.epochs,
                                                  epochs, check),
    }


def _stop_words(stopped: Mapping[str, Any] | None) -> str:
    if stopped is None:
        return "finite loss at every epoch"
    return (f"loss non-finite in epoch {stopped['epoch'] + 1} (1-based) at step {stopped['step']}, lr "
            f"{stopped['lr']:.3g}: stopped there")


def summary_lines(record: Mapping[str, Any]) -> list[str]:
    """The printed summary: per framework the epochs, the suggested rate and the loss there; the course's rate."""
    schedule = record["schedule"]
    lines = [f"{record['model']}: learning-rate sweep over {record['epochs']} epochs, lr {schedule['initial']:.3g} -> "
             f"{schedule['last']:.3g} (x10 every {schedule['epochs_per_decade']:g} epochs), {record['optimizer']['name']} "
             f"momentum {record['optimizer']['momentum']:g}, {record['loss']} loss, {record['dataset']['source']} data"]
    for framework, run in record["frameworks"].items():
        suggested = run["suggested"]
        where = ("no finite epoch, no suggestion" if suggested is None else
                 f"suggested lr {suggested['learning_rate']:.3g} (loss there {suggested['loss_there']:.4g}; smoothed "
                 f"minimum at lr {suggested['minimum_learning_rate']:.3g}"
                 + (", still falling at the end of the sweep" if suggested["still_falling"] else "") + ")")
        lines.append(f"{framework}: {run['epochs_run']} epochs, {_stop_words(run['stopped'])}; {where}")
    comparison = record["comparison"]
    if comparison["epochs_compared"]:
        to_minimum = comparison["loss_max_rel_diff_to_minimum"]
        lines.append(f"both: lr per epoch equal at float32: {'yes' if comparison['lr_equal_float32'] else 'NO'}; "
                     f"loss curves max relative difference {comparison['loss_max_rel_diff']:.2e} over the "
                     f"{comparison['epochs_compared']} epochs both completed"
                     + ("" if to_minimum is None else f", {to_minimum:.2e} up to the smoothed minima"))
    lines.append(f"course's chosen rate: {record['course_lr']:g}")
    return lines


def plot_sweep(record: Mapping[str, Any]) -> bytes:
    """lrsweep.png: loss against lr (semilog x) for both frameworks, the suggested rates and the course's rate.

    The y axis runs from 0 to Y_TOP_TIMES_MINIMUM times the lowest loss (or the highest, if lower); the x axis
    covers the whole schedule, so a sweep that stopped early shows where.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8, 4.8), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    losses = []
    for framework, style in (("keras", "-"), ("lightning", "--")):
        run = record["frameworks"][framework]
        if run["stopped"] is not None:
            ax.axvline(run["stopped"]["lr"], linestyle="-.", linewidth=0.8, color=COLOURS[framework],
                       label=f"{framework}: non-finite loss at {run['stopped']['lr']:.2g}")
        if not run["loss"]:
            continue
        losses += run["loss"]
        ax.plot(run["lr"], run["loss"], style, color=COLOURS[framework], label=f"{framework} loss")
        suggested = run["suggested"]["learning_rate"]
        ax.axvline(suggested, linestyle=":", color=COLOURS[framework], label=f"{framework} suggested {suggested:.2g}")
    ax.axvline(record["course_lr"], color="black", linewidth=1, label=f"course's rate {record['course_lr']:g}")
    schedule = record["schedule"]
    ax.set_xscale("log")
    ax.set_xlim(schedule["initial"], max(schedule["last"], schedule["initial"] * 1.01))
    if losses:
        ax.set_ylim(0, min(max(losses), Y_TOP_TIMES_MINIMUM * min(losses)) * 1.05)
    ax.set_xlabel("learning rate")
    ax.set_ylabel(f"mean training loss of the epoch ({record['loss']})")
    ax.set_title(f"{record['model']}: learning-rate sweep")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize="small")
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    return buffer.getvalue()


def write(record: Mapping[str, Any], out_dir: Path) -> Path:
    """Write OUT/MODEL/lrsweep.png and lrsweep.json (each atomically, the JSON last); returns OUT/MODEL."""
    directory = Path(out_dir) / record["model"]
    write_bytes_atomic(directory / "lrsweep.png", plot_sweep(record))
    write_json_atomic(directory / "lrsweep.json", record)
    return directory
