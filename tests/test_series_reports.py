"""Series reports from the real `parity run`: forecasts, baselines, `--lr`, and c4w1's statistical forecasts."""

import json

import numpy as np
import pytest
from cli_helpers import run_cli

from parity import provenance
from parity.align import ALIGNED
from parity.catalog import get_spec
from parity.report import FORECAST_MAE_RTOL, build_report, validate_report, write_report
from parity.runner import RunOptions, run_baselines
from parity.summary import summarize

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# The course's C4W1 values (course_models.md 6.1), each to be met within 0.01 (issue 11's acceptance).
LAB_MAE = {"naive": 5.94, "moving_average": 7.14, "diff_plus_past": 5.90, "diff_plus_smoothed_past": 4.61}
ASSIGNMENT_MAE = {"naive": 2.60, "moving_average": 4.12, "diff_plus_past": 2.33, "diff_plus_smoothed_past": 2.20}
COURSE_TOLERANCE = 0.01
LEARNING_RATE = 2e-6  # twice the course's 1e-6 for c4w2_ts_linear
FLOAT32_RTOL = 1e-7  # Keras keeps the rate in a float32 variable: rounding within 2^-24 (6e-8) relative


def _report(directory, model_id):
    report = json.loads((directory / model_id / "report.json").read_text())
    validate_report(report)
    return report


def test_series_run_reports_forecasts_baselines_and_the_learning_rate_both_optimizers_used(tmp_path):
    result = run_cli("run", "c4w2_ts_linear", "--synthetic", "--epochs", "2", "--lr", str(LEARNING_RATE), "--quiet",
                     "--out", str(tmp_path))
    assert result.returncode == 0, result.stderr
    report = _report(tmp_path, "c4w2_ts_linear")
    spec = report["spec"]
    assert (spec["learning_rate"], spec["course_learning_rate"], spec["learning_rate_overridden"]) == (
        LEARNING_RATE, 1e-6, True)
    assert spec["optimizer"] == "sgd(lr=2e-06, momentum=0.9)"
    forecast = report["forecast"]
    truth = np.array(forecast["truth"])
    assert len(truth) == report["dataset"]["val_size"] and forecast["split_time"] == 400  # the stand-in's split
    for fw in ("keras", "lightning"):
        (run,) = report["frameworks"][fw]["runs"]
        # Read back from each framework's optimizer after training: the rate it actually used.
        assert run["optimizer_learning_rate"] == pytest.approx(LEARNING_RATE, rel=FLOAT32_RTOL)
        values = np.array(run["forecast"]["values"])
        assert values.shape == truth.shape and np.isfinite(values).all()
        # MAE from the forecast and the truth, recomputed here, against the framework's logged final val_mae.
        logged = run["history"]["val_mae"][-1]
        assert np.mean(np.abs(values - truth)) == pytest.approx(logged, rel=FORECAST_MAE_RTOL)
        assert run["forecast"]["mae"] == pytest.approx(logged, rel=FORECAST_MAE_RTOL) and run["forecast"]["agrees"]
        assert run["forecast"]["mse"] == pytest.approx(np.mean((values - truth) ** 2), rel=1e-12)
        assert forecast["frameworks"][fw]["mae"]["mean"] == run["forecast"]["mae"]
    baselines = {baseline["name"]: baseline for baseline in report["baselines"]}
    assert list(baselines) == ["naive", "moving_average", "diff_plus_past", "diff_plus_smoothed_past"]
    for baseline in baselines.values():
        assert np.isfinite([baseline["mae"], baseline["mse"]]).all() and len(baseline["forecast"]) == len(truth)
    # Over the same validation period: naive forecasts each step by the one before it.
    assert baselines["naive"]["forecast"][1:] == pytest.approx(truth[:-1], rel=0, abs=0)
    mae = {fw: report["forecast"]["frameworks"][fw]["mae"]["mean"] for fw in ("keras", "lightning")}
    assert (f"forecast MAE: keras {mae['keras']:.4f}, lightning {mae['lightning']:.4f} (mean over seeds); "
            f"baselines: naive {baselines['naive']['mae']:.4f}") in result.stdout
    text = (tmp_path / "c4w2_ts_linear" / "report.md").read_text()
    assert "| naive (baseline) |" in text and "| keras (network, mean over 1 seed) |" in text
    assert "- Learning rate: 2e-06 (set with --lr; the course's is 1e-06)" in text
    for picture in ("curves.png", "forecast.png"):
        assert (tmp_path / "c4w2_ts_linear" / picture).read_bytes()[:8] == PNG_SIGNATURE


@pytest.mark.parametrize(("series", "expected", "split_time"), [
    (None, LAB_MAE, 1000),
    ("assignment", ASSIGNMENT_MAE, 1100),
])
def test_stat_forecast_run_gives_the_courses_baseline_numbers(tmp_path, series, expected, split_time):
    result = run_cli("run", "c4w1_stat_forecast", "--out", str(tmp_path), *(("--series", series) if series else ()))
    assert result.returncode == 0, result.stderr
    assert "forward check" not in result.stdout and "keras" not in result.stdout  # no worker was started
    report = _report(tmp_path, "c4w1_stat_forecast")
    assert report["kind"] == "baselines" and report["forecast"]["split_time"] == split_time
    assert report["dataset"]["series"] == (series or "lab")
    baselines = {baseline["name"]: baseline for baseline in report["baselines"]}
    assert {name: baseline["mae"] for name, baseline in baselines.items()} == pytest.approx(expected,
                                                                                          abs=COURSE_TOLERANCE)
    text = (tmp_path / "c4w1_stat_forecast" / "report.md").read_text()
    for name, baseline in baselines.items():  # as the user reads them: the printed lines and the report.md table
        assert f"  {name}: MAE {baseline['mae']:.4f} (course {baseline['expected_mae']:g})" in result.stdout
        assert f"| {name} (baseline) | {baseline['mae']:.4f} |" in text
    assert sorted(path.name for path in (tmp_path / "c4w1_stat_forecast").iterdir()) == [
        "forecast.png", "report.html", "report.json", "report.md"]


def _model_report(tmp_path):
    """A small c4w2_ts_linear run report (fabricated, two seeds) written where `parity report` finds it."""
    runs = [{"seed": seed, "history": {"loss": [30.0, 20.0], "val_loss": [40.0, 35.0], "mae": [6.0, 5.5],
                                       "val_mae": [6.5, value]},
             "step_loss": [31.0, 29.0], "train_samples_per_s": 1000.0, "wall_s": 1.0}
            for seed, value in enumerate((5.0, 5.2))]
    versions = {"python": "3.11.7", "tensorflow": "2.21.0", "keras": "3.12.0", "torch": "2.14.1", "lightning": "2.6.0"}
    workers = {fw: {"device": "cpu (x86_64, 1 threads)", "versions": versions} for fw in ("keras", "lightning")}
    data = {"id": "synthetic-series", "source": "synthetic", "location": "generated", "sha256": "b" * 64,
            "hashed": "parameters"}
    results = {
        "model": "c4w2_ts_linear", "mode": "aligned", "seeds": [0, 1],
        "dataset": {"id": "synthetic-series", "source": "synthetic", "train_size": 380, "val_size": 100},
        "frameworks": {fw: {"params": 21, "runs": runs} for fw in ("keras", "lightning")},
        "forward_max_abs_diff": 1e-6,
        "environment": {**versions, "device": "cpu"},
        "spec": {"metric": "mae"},
        "provenance": provenance.build_provenance(data, ALIGNED, workers, 1, 100, 2,
                                                  [{"passed": True, "max_abs_diff": 1e-6}]),
    }
    write_report(build_report(results), tmp_path)


def test_parity_report_over_a_baselines_report_and_a_model_report(tmp_path):
    run_baselines(get_spec("c4w1_stat_forecast"), RunOptions(out_dir=tmp_path))
    _model_report(tmp_path)
    warnings = []
    rows = summarize([tmp_path], warn=warnings.append)
    assert [row["model"] for row in rows] == ["c4w2_ts_linear"]
    assert rows[0]["accuracy"]["keras"]["mean"] == pytest.approx(5.1)
