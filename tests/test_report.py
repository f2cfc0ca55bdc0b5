"""report.json / report.md / curves.png from a fabricated run result, and the atomic write."""

import copy
import json
import math

import jsonschema
import numpy as np
import pytest

from parity import report as report_mod
from parity.fileio import staging_dir
from parity.report import (
    build_report,
    plot_curves,
    render_markdown,
    validate_report,
    write_report,
)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
ENVIRONMENT = {
    "python": "3.11.7",
    "tensorflow": "2.21.0",
    "keras": "3.12.0",
    "torch": "2.14.0",
    "lightning": "2.6.0",
    "device": "cpu",
}


def _run(seed, accuracies, rate, stopped=False, framework=None):
    """One fabricated run: loss falling, accuracy as given, one value per epoch."""
    n = len(accuracies)
    run = {
        "seed": seed,
        "history": {
            "loss": [0.9 / (e + 1) for e in range(n)],
            "val_loss": [1.0 / (e + 1) + 0.01 * seed for e in range(n)],
            "accuracy": [a + 0.01 for a in accuracies],
            "val_accuracy": list(accuracies),
        },
        "step_loss": list(np.linspace(1.0, 0.2, 4 * n)),  # numpy floats, as workers may send
        "train_samples_per_s": rate,
        "wall_s": 12.5 + seed,
        "epochs_run": n,
        "stopped_early": stopped,
    }
    if framework:
        run["probe"] = {"x": [10.0], framework: [[18.98 + 0.001 * seed]]}
    return run


def _results(seeds=(0, 1, 2)):
    """A results dict shaped like the contract, K = len(seeds), one early-stopped run per side."""
    keras_final = [0.86, 0.87, 0.88]
    lightning_final = [0.87, 0.88, 0.89]
    keras_runs, lightning_runs = [], []
    for i, seed in enumerate(seeds):
        k_epochs = 3 if i == 1 else 5  # keras seed 1 stopped by the callback
        l_epochs = 4 if i == 0 else 5
        keras_runs.append(
            _run(seed, [keras_final[i] - 0.02 * (k_epochs - 1 - e) for e in range(k_epochs)],
                 2000.0 + 100 * i, stopped=k_epochs < 5, framework="keras")
        )
        lightning_runs.append(
            _run(seed, [lightning_final[i] - 0.02 * (l_epochs - 1 - e) for e in range(l_epochs)],
                 np.float64(1500.0 + 100 * i), stopped=l_epochs < 5, framework="lightning")
        )
    return {
        "model": "c1w2_fmnist_dnn",
        "mode": "aligned",
        "seeds": list(seeds),
        "dataset": {"id": "fashion-mnist", "source": "synthetic", "train_size": 600, "val_size": 100},
        "frameworks": {
            "keras": {"params": 101_770, "runs": keras_runs},
            "lightning": {"params": np.int64(101_770), "runs": lightning_runs},
        },
        "forward_max_abs_diff": np.float32(3.8e-6),
        "environment": dict(ENVIRONMENT),
        "spec": {
            "title": "Fashion-MNIST MLP",
            "reference": "train acc 0.8915, test acc 0.8744 after 5 epochs (v1 saved)",
            "reference_val_metric": 0.8744,
            "epochs": 5,
            "batch_size": 32,
            "optimizer": "adam(lr=0.001)",
            "loss": "sparse_categorical_crossentropy",
            "metric": "accuracy",
        },
    }


def test_built_report_validates_and_has_the_contract_keys():
    report = build_report(_results())
    validate_report(report)
    for key in ("model", "mode", "seeds", "dataset", "frameworks", "comparison", "environment",
                "spec", "created"):
        assert key in report
    comparison = report["comparison"]
    assert comparison["metric"] == "accuracy"
    assert comparison["forward_max_abs_diff"] == pytest.approx(3.8e-6)
    final = comparison["final_val"]
    assert final["keras"]["mean"] == pytest.approx(0.87)
    assert final["lightning"]["mean"] == pytest.approx(0.88)
    assert final["diff_ci95"] == pytest.approx([-0.012670, 0.032670], abs=1e-6)
    assert comparison["throughput_ratio"] == pytest.approx(1600.0 / 2100.0)
    # numpy scalars became plain Python numbers
    assert type(report["frameworks"]["lightning"]["params"]) is int
    assert type(report["frameworks"]["keras"]["runs"][0]["step_loss"][0]) is float
    json.dumps(report, allow_nan=False)


def test_report_records_the_paired_welch_and_equivalence_blocks():
    results = _results()
    # lightning seed 1 ends at 0.879 instead of 0.88: differences +0.010, +0.009, +0.010 (paired by seed)
    results["frameworks"]["lightning"]["runs"][1]["history"]["val_accuracy"][-1] = 0.879
    final = build_report(results)["comparison"]["final_val"]
    paired = final["paired"]
    assert paired["seeds"] == [0, 1, 2] and paired["diffs"] == pytest.approx([0.010, 0.009, 0.010])
    # mean 0.009667, sd 5.7735e-4, se 3.3333e-4, half = t(0.975, 2) 4.302653 x se = 0.0014342
    assert paired["ci95"] == pytest.approx([0.0096667 - 0.0014342, 0.0096667 + 0.0014342], abs=1e-7)
    assert paired["n"] == 3 and paired["status"] == "tested" and paired["correlation"] > 0.99
    assert final["welch"]["ci95"] == final["diff_ci95"] and final["welch"]["p"] == final["welch_p"]
    equivalence = final["equivalence"]
    # 90% interval 0.009667 +- t(0.95, 2) 2.919986 x 3.3333e-4 = [0.008693, 0.010640]: not inside +-0.01
    assert equivalence["ci90"] == pytest.approx([0.008693, 0.010640], abs=1e-6)
    assert (equivalence["margin"], equivalence["margin_rule"]) == (0.01, "0.01 absolute")
    assert equivalence["verdict"] == "different" and equivalence["seeds_needed"] is None
    text = render_markdown(build_report(results))
    assert ("  - Paired by seed (primary): +0.0097, 95% CI [+0.0082, +0.0111] (paired t, n = 3 pairs), p = 0.00119; "
            "per-seed correlation of the frameworks r = 0.998") in text
    assert "  - Per-seed differences: seed 0 +0.0100, seed 1 +0.0090, seed 2 +0.0100" in text
    assert ("  - Equivalence (TOST, alpha 0.05, margin ±0.0100: 0.01 absolute): p lower 0.000144, p upper 0.211, "
            "90% CI [+0.0087, +0.0106]; **different**: +0.0097, paired p = 0.00119") in text
    broken = build_report(results)
    broken["comparison"]["final_val"]["equivalence"]["verdict"] = "significant"
    with pytest.raises(jsonschema.ValidationError):
        validate_report(broken)


def test_constant_differences_are_reported_as_degenerate_without_a_verdict():
    text = render_markdown(build_report(_results()))  # lightning = keras + 0.01 on every seed
    assert ("  - Paired by seed (primary): +0.0100; degenerate: all 3 differences equal +0.0100: "
            "no significance verdict") in text
    assert "**degenerate**: all 3 differences equal +0.0100: no significance verdict" in text
    assert "p lower" not in text


def test_two_runs_with_one_seed_are_refused():
    results = _results()
    results["frameworks"]["keras"]["runs"][1]["seed"] = 0
    with pytest.raises(ValueError, match="two runs with seed 0; runs are paired by seed"):
        build_report(results)


def test_final_val_uses_last_epoch_even_for_stopped_runs():
    report = build_report(_results())
    assert report["comparison"]["final_val"]["keras"]["values"] == pytest.approx([0.86, 0.87, 0.88])


@pytest.mark.parametrize(
    "path",
    [("environment",), ("comparison", "final_val", "diff_ci95"), ("dataset", "source"),
     ("frameworks", "lightning", "params")],
)
def test_report_missing_a_key_fails_validation(path):
    report = build_report(_results())
    parent = report
    for key in path[:-1]:
        parent = parent[key]
    del parent[path[-1]]
    with pytest.raises(jsonschema.ValidationError):
        validate_report(report)


def test_report_with_a_run_missing_val_loss_fails_validation():
    report = build_report(_results())
    del report["frameworks"]["keras"]["runs"][0]["history"]["val_loss"]
    with pytest.raises(jsonschema.ValidationError):
        validate_report(report)


def test_the_early_stopping_block_of_a_run_is_checked():
    report = build_report(_results())
    run = report["frameworks"]["keras"]["runs"][0]
    run["early_stopping"] = {"monitor": "val_loss", "patience": 2, "min_delta": 0.0, "mode": "min", "stopped_epoch": 7,
                             "best_epoch": 5, "restored": True}
    validate_report(report)
    run["early_stopping"]["mode"] = "auto"  # Keras' setting, never what the run resolved it to
    with pytest.raises(jsonschema.ValidationError):
        validate_report(report)


def test_bad_enum_fails_validation():
    report = build_report(_results())
    report["mode"] = "fast"
    with pytest.raises(jsonschema.ValidationError):
        validate_report(report)


def test_markdown_contains_the_key_numbers():
    text = render_markdown(build_report(_results()))
    assert text.startswith("# c1w2_fmnist_dnn: Fashion-MNIST MLP")
    assert "- Mode: aligned" in text
    assert "- Seeds: 0, 1, 2" in text
    assert "fashion-mnist (synthetic), 600 train / 100 validation" in text
    assert "| keras | 101,770 | 0.8700 ± 0.0100 |" in text
    assert "| lightning | 101,770 | 0.8800 ± 0.0100 |" in text
    assert "5, 3*, 5" in text and "4*, 5, 5" in text
    assert "stopped early by the course callback" in text
    assert "  - Welch (unpaired, secondary): +0.0100, 95% CI [-0.0127, +0.0327], n = 3 keras + 3 lightning" in text
    assert "Welch t-test p-value: 0.288" in text
    assert "lightning / keras (median train samples/s): 0.762" in text
    assert "| 2,100 |" in text and "| 1,600 |" in text
    assert "3.8e-06" in text
    assert "Reference val accuracy: 0.8744" in text
    assert "- seed 0: predict(10): keras 18.98, lightning 18.98" in text
    assert "- torch: 2.14.0" in text
    assert "![Training curves](curves.png)" in text


def test_markdown_single_seed_says_interval_unavailable():
    text = render_markdown(build_report(_results(seeds=(0,))))
    assert "95% CI n/a" in text
    assert "| keras | 101,770 | 0.8600 |" in text


@pytest.mark.parametrize("seeds", [(0,), (0, 1, 2)])
def test_curves_png_is_written(tmp_path, seeds):
    path = tmp_path / "curves.png"
    plot_curves(build_report(_results(seeds)), path)
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE
    assert len(data) > 20_000


def test_write_report_writes_all_files(tmp_path):
    final = write_report(build_report(_results()), tmp_path)
    assert final == tmp_path / "c1w2_fmnist_dnn"
    assert sorted(p.name for p in final.iterdir()) == ["curves.png", "report.html", "report.json", "report.md"]
    assert json.loads((final / "report.json").read_text())["model"] == "c1w2_fmnist_dnn"
    assert (final / "curves.png").read_bytes()[:8] == PNG_SIGNATURE
    assert [p.name for p in tmp_path.iterdir()] == ["c1w2_fmnist_dnn"]  # no staging left behind


def test_nan_in_history_is_written_as_null(tmp_path):
    results = _results()
    results["frameworks"]["keras"]["runs"][0]["history"]["loss"][1] = float("nan")
    results["frameworks"]["lightning"]["runs"][2]["step_loss"][0] = np.float32("inf")
    final = write_report(build_report(results), tmp_path)
    text = (final / "report.json").read_text()
    assert "NaN" not in text and "Infinity" not in text
    document = json.loads(text)
    assert document["frameworks"]["keras"]["runs"][0]["history"]["loss"][1] is None
    assert document["frameworks"]["lightning"]["runs"][2]["step_loss"][0] is None


def test_write_report_replaces_previous_and_keeps_staged_files(tmp_path):
    old = tmp_path / "c1w2_fmnist_dnn"
    old.mkdir()
    (old / "stale.txt").write_text("from an earlier run")
    with staging_dir(tmp_path, "c1w2_fmnist_dnn") as staging:
        (staging / "logs").mkdir()
        (staging / "logs" / "keras.log").write_text("epoch 1/5")
        final = write_report(build_report(_results()), tmp_path, staging=staging)
    assert (final / "logs" / "keras.log").read_text() == "epoch 1/5"
    assert not (final / "stale.txt").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["c1w2_fmnist_dnn"]


def test_a_new_report_keeps_the_learning_rate_sweep_of_the_same_model(tmp_path):
    old = tmp_path / "c1w2_fmnist_dnn"
    old.mkdir()
    (old / "lrsweep.json").write_text('{"model": "c1w2_fmnist_dnn"}')
    (old / "lrsweep.png").write_bytes(b"\x89PNG sweep")
    (old / "curves.png").write_bytes(b"old curves")
    final = write_report(build_report(_results()), tmp_path)
    assert (final / "lrsweep.json").read_text() == '{"model": "c1w2_fmnist_dnn"}'
    assert (final / "lrsweep.png").read_bytes() == b"\x89PNG sweep"
    assert (final / "curves.png").read_bytes() != b"old curves"


def test_failed_write_leaves_nothing_behind(tmp_path, monkeypatch):
    def broken_plot(report, path):
        path.write_bytes(b"half a png")
        raise RuntimeError("plot failed")

    monkeypatch.setattr(report_mod, "plot_curves", broken_plot)
    with pytest.raises(RuntimeError, match="plot failed"):
        write_report(build_report(_results()), tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_failed_write_keeps_previous_report_intact(tmp_path, monkeypatch):
    first = write_report(build_report(_results()), tmp_path)
    before = {p.name: p.read_bytes() for p in first.iterdir()}

    def broken_plot(report, path):
        raise RuntimeError("plot failed")

    monkeypatch.setattr(report_mod, "plot_curves", broken_plot)
    with pytest.raises(RuntimeError):
        with staging_dir(tmp_path, "c1w2_fmnist_dnn") as staging:
            (staging / "logs").mkdir()
            write_report(build_report(_results(seeds=(7,))), tmp_path, staging=staging)
    assert {p.name: p.read_bytes() for p in first.iterdir()} == before
    assert [p.name for p in tmp_path.iterdir()] == ["c1w2_fmnist_dnn"]


def test_invalid_report_is_not_written(tmp_path):
    report = build_report(_results())
    del report["environment"]["device"]
    with pytest.raises(jsonschema.ValidationError):
        write_report(report, tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_build_report_does_not_mutate_results():
    results = _results()
    snapshot = copy.deepcopy(results)
    report = build_report(results)
    report["frameworks"]["keras"]["runs"][0]["history"]["loss"][0] = math.pi
    assert results["frameworks"]["keras"]["runs"][0]["history"]["loss"][0] == (
        snapshot["frameworks"]["keras"]["runs"][0]["history"]["loss"][0]
    )


def test_regression_report_uses_mae(tmp_path):
    results = _results(seeds=(0, 1))
    results["spec"].update(metric="mae", reference="predict(10) very close to 19",
                           reference_val_metric=None)
    for fw in ("keras", "lightning"):
        for run in results["frameworks"][fw]["runs"]:
            history = run["history"]
            history["mae"] = history.pop("accuracy")
            history["val_mae"] = history.pop("val_accuracy")
    report = build_report(results)
    assert report["comparison"]["metric"] == "mae"
    final = write_report(report, tmp_path)
    text = (final / "report.md").read_text()
    assert "Final val mae" in text and "Reference val" not in text


def test_staging_dir_must_belong_to_out_dir(tmp_path):
    with staging_dir(tmp_path / "a", "c1w2_fmnist_dnn") as staging:
        with pytest.raises(ValueError, match="not inside"):
            write_report(build_report(_results()), tmp_path / "b", staging=staging)


def test_model_id_must_be_a_plain_directory_name(tmp_path):
    with pytest.raises(ValueError, match="directory name"):
        with staging_dir(tmp_path, "../escape"):
            pass


# ---------------------------------------------------------------------------- series: forecasts and baselines

TRUTH = [10.0, 12.0, 11.0, 13.0]
BASELINES = [
    {"name": "naive", "mae": 1.75, "mse": 3.25, "forecast": [9.0, 10.0, 12.0, 11.0]},
    {"name": "moving_average", "mae": 1.25, "mse": 2.0, "forecast": [10.0, 10.5, 12.5, 11.5]},
]


def _series_results(logged_offset=0.0):
    """A two-seed series run: each framework's forecast of the 4 validation steps, its logged val_mae matching."""
    results = _results(seeds=(0, 1))
    results["model"] = "c4w2_ts_linear"
    results["spec"].update(metric="mae", reference_val_metric=None)
    forecasts = {"keras": ([10.5, 12.5, 11.5, 13.5], [11.0, 13.0, 12.0, 14.0]),  # MAE 0.5 and 1.0
                 "lightning": ([10.5, 12.5, 11.5, 12.5], [9.0, 11.0, 10.0, 12.0])}  # MAE 0.5 and 1.0
    for fw in ("keras", "lightning"):
        for run, values in zip(results["frameworks"][fw]["runs"], forecasts[fw]):
            history = run["history"]
            history["mae"] = history.pop("accuracy")
            history["val_mae"] = history.pop("val_accuracy")
            mae = np.mean(np.abs(np.subtract(values, TRUTH)))
            history["val_mae"][-1] = float(np.float32(mae)) + logged_offset
            run["forecast"] = report_mod.forecast_record(values, np.array(TRUTH, np.float32), history["val_mae"][-1])
    results["forecast"] = {"split_time": 96, "truth": np.array(TRUTH, np.float32)}
    results["baselines"] = copy.deepcopy(BASELINES)
    return results


def test_forecast_record_recomputes_the_errors_and_checks_the_logged_val_mae():
    record = report_mod.forecast_record([1.0, 2.0, 3.0], np.ones(3, np.float32), 1.00005)
    assert (record["mae"], record["mse"]) == (pytest.approx(1.0), pytest.approx(5 / 3))
    assert record["rel_diff"] == pytest.approx(5e-5, rel=1e-3) and record["agrees"] is True
    # A logged value 2e-4 away is beyond FORECAST_MAE_RTOL (1e-4): a check that can fail.
    assert report_mod.forecast_record([1.0, 2.0, 3.0], np.ones(3), 1.0002)["agrees"] is False
    assert report_mod.forecast_record([1.0, 2.0, 3.0], np.ones(3), None)["agrees"] is None
    with pytest.raises(ValueError, match="one forecast per validation step"):
        report_mod.forecast_record([1.0, 2.0], np.ones(3), 1.0)


def test_series_report_has_each_frameworks_forecast_errors_beside_the_baselines():
    report = build_report(_series_results())
    validate_report(report)
    forecast = report["forecast"]
    assert forecast["split_time"] == 96 and forecast["truth"] == TRUTH
    assert forecast["tolerance"]["relative"] == report_mod.FORECAST_MAE_RTOL
    for fw in ("keras", "lightning"):
        assert forecast["frameworks"][fw]["mae"] == {"mean": pytest.approx(0.75), "std": pytest.approx(0.353553, rel=1e-5),
                                                     "n": 2}
        assert forecast["frameworks"][fw]["agrees"] is True
    assert forecast["frameworks"]["keras"]["mse"]["mean"] == pytest.approx((0.25 + 1.0) / 2)
    assert [baseline["name"] for baseline in report["baselines"]] == ["naive", "moving_average"]
    text = render_markdown(report)
    assert "## Forecast" in text and "Validation period: steps 96 to 99 of the series (4 steps)" in text
    assert "| keras (network, mean over 2 seeds) | 0.7500 ± 0.3536 | 0.6250 ± 0.5303 |" in text
    assert "| naive (baseline) | 1.7500 | 3.2500 |" in text
    assert "| moving_average (baseline) | 1.2500 | 2.0000 |" in text
    assert "agrees with the framework's logged final val_mae in all 4 runs" in text
    assert "- forecast.png: the truth, each framework's forecast of seed 0 and the best baseline (moving_average)" in text
    assert "![Forecast vs truth](forecast.png)" in text


def test_a_forecast_that_disagrees_with_the_logged_val_mae_is_flagged():
    report = build_report(_series_results(logged_offset=0.01))  # 1% off: far beyond the float32 tolerance
    assert report["forecast"]["frameworks"]["keras"]["agrees"] is False
    assert "**disagrees** with the logged final val_mae in keras seed 0" in render_markdown(report)


def test_series_report_writes_forecast_png_and_baseline_lines_in_the_val_mae_panel(tmp_path, monkeypatch):
    from matplotlib.figure import Figure

    final = write_report(build_report(_series_results()), tmp_path)
    assert sorted(p.name for p in final.iterdir()) == ["curves.png", "forecast.png", "report.html", "report.json",
                                                        "report.md"]
    assert (final / "forecast.png").read_bytes()[:8] == PNG_SIGNATURE
    figures = []
    monkeypatch.setattr(Figure, "savefig", lambda figure, *args, **kwargs: figures.append(figure))
    plot_curves(build_report(_series_results()), tmp_path / "curves.png")
    loss_panel, mae_panel = figures[0].axes
    flat = [line for line in mae_panel.lines if len(set(line.get_ydata())) == 1 and len(line.get_ydata()) == 2]
    assert sorted(line.get_ydata()[0] for line in flat) == [1.25, 1.75]
    assert all(len(set(line.get_ydata())) > 1 for line in loss_panel.lines)  # the loss panel has none
    report_mod.plot_forecast(build_report(_series_results()), tmp_path / "forecast.png")
    forecast_axes = figures[1].axes[0]
    labels = [line.get_label() for line in forecast_axes.lines]
    # truth, both frameworks' seed-0 forecasts, and the best baseline (moving_average, MAE 1.25)
    assert labels == ["truth", "keras (MAE 0.5000)", "lightning (MAE 0.5000)", "moving_average (MAE 1.2500)"]
    assert list(forecast_axes.lines[0].get_xdata()) == [96, 97, 98, 99]


def test_overridden_learning_rate_is_shown_beside_the_courses():
    results = _results()
    results["spec"].update(optimizer="sgd(lr=1e-05, momentum=0.9)", learning_rate=1e-5, course_learning_rate=1e-6,
                           learning_rate_overridden=True)
    assert "- Learning rate: 1e-05 (set with --lr; the course's is 1e-06)" in render_markdown(build_report(results))
    assert "- Learning rate" not in render_markdown(build_report(_results()))


def _baselines_results():
    return {
        "model": "c4w1_stat_forecast",
        "dataset": {"id": "synthetic-series", "source": "real", "train_size": 96, "val_size": 4, "series": "lab"},
        "forecast": {"split_time": 96, "truth": np.array(TRUTH, np.float32)},
        "baselines": [{**baseline, "expected_mae": 1.7, "expected_mse": None} for baseline in BASELINES],
        "environment": {"python": "3.11.7", "numpy": "2.1.0"},
        "spec": {"title": "Statistical forecasts", "reference": "naive 5.938"},
    }


def test_baselines_report_validates_without_frameworks_and_writes_no_curves(tmp_path):
    report = report_mod.build_baselines_report(_baselines_results())
    validate_report(report)
    assert report["kind"] == "baselines" and "frameworks" not in report and "comparison" not in report
    text = render_markdown(report)
    assert "| Forecast | MAE | MSE | Course MAE | Course MSE |" in text
    assert "| naive (baseline) | 1.7500 | 3.2500 | 1.7000 | n/a |" in text
    assert "No network" in text and "Series: lab (synthetic-series, real), 100 steps, split at step 96" in text
    final = write_report(report, tmp_path)
    assert sorted(p.name for p in final.iterdir()) == ["forecast.png", "report.html", "report.json", "report.md"]
    missing = copy.deepcopy(report)
    del missing["baselines"]
    with pytest.raises(jsonschema.ValidationError):
        validate_report(missing)
    # A model report must still carry its frameworks: the baselines' shape does not loosen the contract.
    model_report = build_report(_results())
    del model_report["frameworks"]
    with pytest.raises(jsonschema.ValidationError):
        validate_report(model_report)
