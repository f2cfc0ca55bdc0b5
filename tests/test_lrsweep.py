"""`parity lrsweep`: the suggested-rate rule on planted curves, the run flags, and real sweeps in both frameworks."""

import json
import math

import numpy as np
import pytest

from cli_helpers import run_cli
from parity import cli, jobs, lrsweep, runner
from parity.catalog import get_spec
from parity.datasets import load_dataset
from parity.datasets.series import SeriesOptions
from parity.datasets.split import make_split
from parity.errors import ParityError
from parity.plan import BatchPlan
from parity.spec_types import LrSchedule

SCHEDULE = LrSchedule(initial=1e-8, epochs_per_decade=20)
RATES = [SCHEDULE.rate(epoch) for epoch in range(100)]


def _valley(minimum_epoch: int, epochs: int = 100) -> np.ndarray:
    """A sweep-shaped curve: log10(loss) a parabola in the epoch with its minimum at `minimum_epoch`."""
    epoch = np.arange(epochs)
    return 10 ** (1 + ((epoch - minimum_epoch) / 30) ** 2)


# ---------------------------------------------------------------------------- the rule, no frameworks


def test_rule_backs_off_half_a_decade_from_the_smoothed_minimum():
    suggestion = lrsweep.suggest_rate(RATES, _valley(60))
    assert suggestion.minimum_epoch == 60 and not suggestion.still_falling
    assert suggestion.minimum_learning_rate == RATES[60]
    # Half a decade is 10 epochs of this schedule: the suggestion is the rate of epoch 50.
    assert suggestion.learning_rate == pytest.approx(RATES[50], rel=1e-12)


def test_one_epoch_dip_does_not_move_the_suggestion_but_would_without_smoothing():
    losses = _valley(60)
    losses[85] = 0.5 * losses.min()  # one lucky epoch in the unstable region
    assert lrsweep.suggest_rate(RATES, losses).minimum_epoch == 60
    # The planted failure: the raw argmin (no smoothing) lands on the dip.
    assert int(np.argmin(lrsweep.smoothed_log_loss(losses, window=1))) == 85


def test_a_curve_still_falling_at_the_end_is_flagged():
    losses = np.linspace(100.0, 10.0, 40)
    suggestion = lrsweep.suggest_rate(RATES[:40], losses)
    assert suggestion.still_falling and suggestion.minimum_epoch == 39


def test_rule_refuses_mismatched_or_empty_curves():
    with pytest.raises(ValueError, match="one loss per rate"):
        lrsweep.suggest_rate(RATES[:3], [1.0, 2.0])
    with pytest.raises(ValueError, match="one loss per rate"):
        lrsweep.suggest_rate([], [])


def test_loss_at_interpolates_in_log_rate():
    assert lrsweep.loss_at([1e-6, 1e-5], [10.0, 20.0], 10 ** -5.5) == pytest.approx(15.0)


def test_curve_comparison_sees_a_rate_one_float32_ulp_apart():
    keras = {"lr": [float(np.float32(rate)) for rate in RATES[:5]], "loss": [5.0, 4.0, 3.0, 2.0, 1.0]}
    lightning = {"lr": RATES[:5], "loss": [5.0, 4.0, 3.0, 2.0, 1.1]}
    comparison = lrsweep.compare_curves(keras, lightning)
    assert comparison["lr_equal_float32"] and comparison["epochs_compared"] == 5
    assert comparison["loss_max_rel_diff"] == pytest.approx(0.1 / 1.1) and comparison["loss_max_rel_diff_epoch"] == 4
    assert comparison["loss_max_rel_diff_to_minimum"] is None  # no suggestions given
    keras["suggested"] = {"minimum_epoch": 0}
    lightning["suggested"] = {"minimum_epoch": 1}
    # Epochs 0..3 decide: the later minimum (1) and the 2 epochs its 5-epoch smoothing window reaches beyond it.
    assert lrsweep.compare_curves(keras, lightning)["loss_max_rel_diff_to_minimum"] == 0.0
    lightning["suggested"] = {"minimum_epoch": 2}
    assert lrsweep.compare_curves(keras, lightning)["loss_max_rel_diff_to_minimum"] == pytest.approx(0.1 / 1.1)
    planted = np.float32(RATES[3])
    lightning["lr"][3] = float(np.nextafter(planted, np.float32(1)))
    assert not lrsweep.compare_curves(keras, lightning)["lr_equal_float32"]


# ---------------------------------------------------------------------------- refusal and flags


def test_model_without_a_sweep_is_refused_naming_the_models_with_one():
    with pytest.raises(ParityError, match=r"c1w2_fmnist_dnn has no learning-rate sweep.*c4w2_ts_dnn"):
        lrsweep.require_sweep(get_spec("c1w2_fmnist_dnn"))


def test_lr_and_series_flags_reach_run_options(monkeypatch, tmp_path):
    seen = []
    monkeypatch.setattr(runner, "run_model", lambda model_id, options: seen.append(options) or tmp_path)
    common = ["run", "c4w2_ts_dnn", "--out", str(tmp_path), "--threads", "1"]
    assert cli.main([*common, "--lr", "2e-6", "--series", "assignment", "--series-column", "Temp",
                     "--time-column", "0"]) == 0
    assert cli.main(common) == 0
    flagged, plain = seen
    assert flagged.learning_rate == 2e-6
    assert flagged.series == SeriesOptions(variant="assignment", value_column="Temp", time_column=0)
    assert plain.learning_rate is None and plain.series is None


# ---------------------------------------------------------------------------- real sweeps in both frameworks


def test_synthetic_sweep_in_both_frameworks(tmp_path):
    result = run_cli("lrsweep", "c4w2_ts_dnn", "--epochs", "5", "--synthetic", "--quiet", "--out", str(tmp_path),
                     "--threads", "1", "--device", "cpu", timeout=600)
    assert result.returncode == 0, result.stderr
    record = json.loads((tmp_path / "c4w2_ts_dnn" / "lrsweep.json").read_text())
    assert (tmp_path / "c4w2_ts_dnn" / "lrsweep.png").read_bytes().startswith(b"\x89PNG")
    expected = [SCHEDULE.rate(epoch) for epoch in range(5)]
    for framework in ("keras", "lightning"):
        run = record["frameworks"][framework]
        assert run["epochs_run"] == 5 and run["stopped"] is None
        assert all(math.isfinite(loss) and loss > 0 for loss in run["loss"])
        # The rate each optimizer held is the schedule's, to float32 (the Keras variable is float32).
        assert np.array_equal(np.float32(run["lr"]), np.float32(expected))
    keras, lightning = record["frameworks"]["keras"], record["frameworks"]["lightning"]
    assert np.array_equal(np.float32(keras["lr"]), np.float32(lightning["lr"]))
    assert record["comparison"]["lr_equal_float32"]
    # Same start, same batches, same float32 update rule: 5 epochs of 12 steps agree to rounding (measured 2.6e-7).
    assert record["comparison"]["loss_max_rel_diff"] < 1e-5
    assert record["course_lr"] == 4e-6 and record["provenance"]["data"]["source"] == "synthetic"
    assert record["provenance"]["forward_check"]["status"] == "passed"
    assert "suggested lr" in result.stdout and "course's chosen rate: 4e-06" in result.stdout


@pytest.mark.slow
def test_a_non_finite_loss_stops_both_frameworks_at_the_same_step(tmp_path):
    """One NaN target planted in the training data: both workers stop at the batch that holds it, without crashing.

    The target, not an input: TensorFlow's relu maps a NaN input to 0, so a NaN input need not reach the loss.
    """
    spec = get_spec("c4w2_ts_dnn")
    split = load_dataset(spec, synthetic=True)
    x, y = np.array(split.train.x), np.array(split.train.y)
    row, seed = 100, 0
    y[row] = np.nan
    planted = make_split(spec, "synthetic", (x, y), (split.val.x, split.val.y), "generated", split.info)
    step = next(i for i, batch in enumerate(BatchPlan(len(x), spec.batch_size, seed).epoch_batches(0))
                if row in batch) + 1
    job = {"kind": "lrsweep", "model": spec.id, "seed": seed, "epochs": 3, "data": str(jobs.save_data(tmp_path, planted)),
           "weights_tag": lrsweep.weights_tag(spec.id, seed), "native": [], "verbose": False}
    with jobs.worker_pool(threads=1, quiet=True) as workers:
        answers = {framework: workers.run(framework, job, tmp_path) for framework in jobs.FRAMEWORKS}
    for answer in answers.values():
        assert answer["loss"] == [] and answer["lr"] == []
        assert answer["stopped"]["epoch"] == 0 and answer["stopped"]["step"] == step
        assert np.float32(answer["stopped"]["lr"]) == np.float32(SCHEDULE.initial)
    # The record, summary and plot take a framework that never finished an epoch.
    frameworks = {framework: lrsweep.framework_record(answer) for framework, answer in answers.items()}
    assert frameworks["keras"]["suggested"] is None
    record = {"model": spec.id, "loss": spec.loss, "course_lr": 4e-6, "epochs": 3, "dataset": {"source": "synthetic"},
              "schedule": {"initial": 1e-8, "epochs_per_decade": 20, "last": SCHEDULE.rate(2)}, "optimizer": {"name": "sgd", "momentum": 0.9},
              "frameworks": frameworks, "comparison": lrsweep.compare_curves(*frameworks.values())}
    assert lrsweep.plot_sweep(record).startswith(b"\x89PNG")
    assert f"loss non-finite in epoch 1 (1-based) at step {step}" in "\n".join(lrsweep.summary_lines(record))
