"""The pictures of `parity report`: forest plot of the accuracy (MAE) differences, chart of the speed ratios.

The rows come from real report.json / bench.json files with the planted per-seed values of
tests/test_summary.py (its hand-worked intervals: paired half-width t(0.975, n - 1) sd(d) / sqrt(n)).
Plotted positions are asserted to 1e-9: they are the rows' own numbers, at most multiplied by
100 / keras mean (MAE in percent), so only float64 rounding separates them.
"""

import math

import numpy as np
import pytest
from cli_helpers import run_cli
from PIL import Image
from test_summary import (FMNIST_CNN, FMNIST_DNN, HOUSE, MNIST_DNN, SARCASM_LSTM, T_975_DF3, T_975_DF4, _bench_row, _write_json,
                          _write_run)

from parity import summary, summary_plots

BAND = (summary.SPEED_BAND, 1 / summary.SPEED_BAND)


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    """Run reports of six rows (different, equivalent, inconclusive, 1 seed, degenerate, mae), a cpu bench and a
    gpu-only bench."""
    root = tmp_path_factory.mktemp("plots")
    runs = root / "runs"
    _write_run(runs, "c1w2_fmnist_dnn", "accuracy", *FMNIST_DNN, (2000.0, 1900.0))  # different: +0.02
    _write_run(runs, "c1w3_fmnist_cnn", "accuracy", *FMNIST_CNN, (2000.0, 1500.0))  # equivalent; bench 1.7x
    _write_run(runs, "c1w2_mnist_dnn_callback", "accuracy", *MNIST_DNN, (2000.0, 2000.0))  # inconclusive
    _write_run(runs, "c3w2_sarcasm_embed_gap", "accuracy", [0.80], [0.81], (2000.0, 1000.0))  # 1 seed
    _write_run(runs, "c3w3_sarcasm_bilstm", "accuracy", *SARCASM_LSTM, (2000.0, 1000.0))  # degenerate +0.03
    _write_run(runs, "c1w1_house_price", "mae", *HOUSE, (3000.0, 1000.0))  # mae -0.1 of a keras mean 0.515
    _write_json(root / "bench" / "cpu" / "bench.json", [
        _bench_row("c1w3_fmnist_cnn", "cpu", (1000, 950, 1040), (1700, 1650, 1760), ci95=(1.62, 1.79))])
    _write_json(root / "bench" / "gpu" / "bench.json", [
        _bench_row("c1w2_fmnist_dnn", "gpu (NVIDIA H100 80GB HBM3)", (1000, 900, 1100), (1050, 950, 1150),
                   mode="native")])
    return root


@pytest.fixture(scope="module")
def rows(tree):
    warnings = []
    result = summary.summarize([tree], warn=warnings.append)
    assert warnings == []
    return result


@pytest.fixture(scope="module")
def labels(rows):
    return summary.provenance_labels(rows)


def _by_model(points):
    return {point.label.split(" ")[0]: point for point in points}


def test_forest_points_are_the_paired_differences_with_their_intervals_margins_and_verdicts(rows, labels):
    points = summary_plots.forest_points(rows, "accuracy", labels)
    assert [point.label for point in points] == [
        "c1w2_fmnist_dnn (aligned, cpu, P1)", "c1w2_mnist_dnn_callback (aligned, cpu, P1)",
        "c1w3_fmnist_cnn (aligned, cpu, P1)",
        "c3w2_sarcasm_embed_gap (aligned, cpu, P1)", "c3w3_sarcasm_bilstm (aligned, cpu, P1)"]
    by_model = _by_model(points)
    half = T_975_DF4 * 0.001 / math.sqrt(5)  # FMNIST_DNN: sd of the differences 0.001 over 5 pairs
    dnn = by_model["c1w2_fmnist_dnn"]
    assert dnn.mean == pytest.approx(0.02, abs=1e-9)
    assert dnn.interval == pytest.approx((0.02 - half, 0.02 + half), abs=1e-7)
    assert (dnn.margin, dnn.verdict, dnn.text) == (0.01, "different", "different")
    assert by_model["c1w3_fmnist_cnn"].text == "equivalent"
    inconclusive = next(row for row in rows if row["model"] == "c1w2_mnist_dnn_callback")
    assert inconclusive["seeds_needed"] > 3
    assert by_model["c1w2_mnist_dnn_callback"].text == f"inconclusive: {inconclusive['seeds_needed']} seeds needed"
    one_seed, degenerate = by_model["c3w2_sarcasm_embed_gap"], by_model["c3w3_sarcasm_bilstm"]
    assert (one_seed.mean, one_seed.interval, one_seed.text) == (pytest.approx(0.01), None, "too few seeds, no CI")
    assert (degenerate.mean, degenerate.interval, degenerate.text) == (pytest.approx(0.03), None, "degenerate, no CI")


def test_mae_is_plotted_in_percent_of_the_keras_mean_so_data_sets_share_an_axis(rows, labels):
    (house,) = summary_plots.forest_points(rows, "mae", labels)
    keras_mean = 0.515  # HOUSE keras values 0.50 .. 0.53
    half = T_975_DF3 * np.std([-0.100, -0.098, -0.102, -0.100], ddof=1) / 2  # 4 pairs
    assert house.mean == pytest.approx(-0.1 / keras_mean * 100, abs=1e-9)  # -19.42%
    assert house.interval == pytest.approx(((-0.1 - half) * 100 / keras_mean, (-0.1 + half) * 100 / keras_mean),
                                           abs=1e-7)
    assert house.margin == pytest.approx(5.0, abs=1e-9)  # the default margin, 5% of the keras mean
    assert house.text == "different"


def test_speed_points_carry_the_bench_interval_and_mark_run_ratios_as_no_verdict(rows, labels):
    points = _by_model(summary_plots.speed_points(rows, labels))
    bench = points["c1w3_fmnist_cnn"]
    assert (bench.ratio, bench.interval, bench.source, bench.text) == (1.7, (1.62, 1.79), "bench",
                                                                      "bench: lightning faster")
    run = points["c3w3_sarcasm_bilstm"]
    assert (run.ratio, run.interval, run.source, run.text) == (0.5, None, "run", "run: no speed verdict")
    gpu = next(point for point in summary_plots.speed_points(rows, labels) if "gpu" in point.label)
    assert gpu.ratio == pytest.approx(1.05)
    assert gpu.text == "bench: no material difference (no CI: windows decide)"


def _interval_segments(ax):
    """The x extents (lo, hi, lo, hi, ...) of the error bars drawn on `ax`, by lo."""
    extents = sorted(tuple(sorted(segment[:, 0])) for collection in ax.collections
                     if hasattr(collection, "get_segments") for segment in collection.get_segments())
    return [x for extent in extents for x in extent]


def _flat(intervals):
    return [x for interval in sorted(intervals) for x in interval]


def test_forest_figure_draws_each_interval_margin_and_verdict_label(rows, labels):
    panels = {metric: summary_plots.forest_points(rows, metric, labels)
              for metric in ("accuracy", "mae")}
    fig = summary_plots.accuracy_figure(panels)
    accuracy_ax, mae_ax = fig.axes[0], fig.axes[1]  # the two panels; their right-hand twins follow
    fig.canvas.draw()
    intervals = [point.interval for point in panels["accuracy"] if point.interval]
    assert _interval_segments(accuracy_ax) == pytest.approx(_flat(intervals), abs=1e-12)
    assert _interval_segments(mae_ax) == pytest.approx(_flat([panels["mae"][0].interval]), abs=1e-12)
    bands = [patch.get_paths()[0].vertices[:, 0] for patch in accuracy_ax.collections if "Poly" in type(patch).__name__]
    assert [(band.min(), band.max()) for band in bands] == [(-0.01, 0.01)] * 5
    right_labels = [[tick.get_text() for tick in twin.get_yticklabels()] for twin in fig.axes[2:]]
    assert right_labels == [[point.text for point in panels[metric]] for metric in ("accuracy", "mae")]
    assert accuracy_ax.get_xlim()[0] < -0.01 and accuracy_ax.get_xlim()[1] > 0.03  # margins and points in view


def test_speed_figure_is_log_scaled_with_the_no_difference_band(rows, labels):
    points = summary_plots.speed_points(rows, labels)
    fig = summary_plots.speed_figure(points, BAND)
    ax = fig.axes[0]
    fig.canvas.draw()
    assert ax.get_xscale() == "log"
    (band,) = ax.patches
    assert (band.get_x(), band.get_x() + band.get_width()) == pytest.approx(BAND, abs=1e-12)
    assert _interval_segments(ax) == pytest.approx([1.62, 1.79], abs=1e-12)
    low, high = ax.get_xlim()
    assert low < min(point.ratio for point in points) and high > 1.79
    assert [tick.get_text() for tick in fig.axes[1].get_yticklabels()] == [point.text for point in points]


def test_report_out_writes_markdown_html_and_both_plots_beside_it(tree, tmp_path):
    out = tmp_path / "my summary.md"
    result = run_cli("report", str(tree), "--out", str(out), timeout=120)
    assert result.returncode == 0, result.stderr
    accuracy, speed = tmp_path / "my summary-accuracy.png", tmp_path / "my summary-speed.png"
    assert result.stdout == (f"summary: {out}\nhtml: {tmp_path / 'my summary.html'}\n"
                             f"plots: {accuracy}, {speed}\n")
    markdown = out.read_text()
    plots = markdown.split("## Plots\n")[1].split("## By task")[0]
    assert "](my%20summary-accuracy.png)" in plots and "](my%20summary-speed.png)" in plots
    with Image.open(accuracy) as image:
        assert image.width == 1100  # 11 inches at 100 dpi
        assert np.asarray(image.convert("L")).std() > 10  # not a blank picture
    assert sorted(path.name for path in tmp_path.iterdir()) == [
        "my summary-accuracy.png", "my summary-speed.png", "my summary.html", "my summary.md"]


def test_without_runs_there_is_no_forest_plot_and_an_old_one_is_removed(tree, tmp_path):
    stale = tmp_path / "summary-accuracy.png"
    stale.write_bytes(b"old")
    written = summary.write_summary(summary.summarize([tree / "bench"], warn=print), None, tmp_path / "summary.md")
    assert [path.name for path in written] == ["summary.md", "summary.html", "summary-speed.png"]
    assert not stale.exists()
    assert "summary-accuracy.png" not in (tmp_path / "summary.md").read_text()


def test_stdout_and_json_write_no_plots_and_an_html_out_is_refused(tree, tmp_path):
    result = run_cli("report", str(tree), timeout=120)
    assert result.returncode == 0 and "## Plots" not in result.stdout
    refused = run_cli("report", str(tree), "--out", str(tmp_path / "summary.html"), timeout=120)
    assert refused.returncode == 2
    assert "name the Markdown file (e.g. summary.md)" in refused.stderr
    assert list(tmp_path.iterdir()) == []


def test_three_frameworks_give_a_point_per_pair_scaled_by_the_pairs_first_framework(tmp_path):
    # MAE of three frameworks: keras 0.515 mean, lightning 0.415, keras-torch = lightning + 0.01 (planted).
    keras_torch = [value + 0.01 for value in HOUSE[1]]
    _write_run(tmp_path, "c1w1_house_price", "mae", *HOUSE, (3000.0, 1000.0), keras_torch=(keras_torch, 2000.0))
    rows = summary.summarize([tmp_path], warn=pytest.fail)
    labels = summary.provenance_labels(rows)
    points = summary_plots.forest_points(rows, "mae", labels)
    assert [point.label for point in points] == [
        "c1w1_house_price (aligned, cpu, P1): lightning - keras",
        "c1w1_house_price (aligned, cpu, P1): keras-torch - keras",
        "c1w1_house_price (aligned, cpu, P1): keras-torch - lightning"]
    means = {fw: float(np.mean(values)) for fw, values in zip(("keras", "lightning", "keras-torch"),
                                                               (HOUSE[0], HOUSE[1], keras_torch))}
    # each pair's difference in percent of its first framework's mean (the reference of its relative margin)
    assert points[0].mean == pytest.approx(100 * (means["lightning"] - means["keras"]) / means["keras"], abs=1e-9)
    assert points[1].mean == pytest.approx(100 * (means["keras-torch"] - means["keras"]) / means["keras"], abs=1e-9)
    assert points[2].mean == pytest.approx(100 * 0.01 / means["lightning"], abs=1e-9)
    assert points[2].margin == pytest.approx(5.0)  # 5% of lightning's mean, in percent of it
    speed = summary_plots.speed_points(rows, labels)
    assert [(point.label.split(": ")[1], point.ratio) for point in speed] == [
        ("lightning / keras", pytest.approx(1 / 3)), ("keras-torch / keras", pytest.approx(2 / 3)),
        ("keras-torch / lightning", pytest.approx(2.0))]
    assert summary_plots.accuracy_png(rows, labels).startswith(b"\x89PNG")
