"""`parity report`: real report.json / bench.json / lockstep.json files in, one table and a recommendation per row out.

Expected intervals are worked out by hand from the Welch formulas: with n seeds per framework
and equal sample variances s^2 the standard error is sqrt(2 s^2 / n) and the degrees of
freedom are exactly 2 (n - 1), so the t quantiles come from a table:
t(0.975, 8) = 2.306004, t(0.975, 6) = 2.446912.
"""

import json
import math

import pytest
from cli_helpers import run_cli

from parity.report import build_report, write_report
from parity.summary import material_speed_difference, recommend

CPU = "keras: cpu (x86_64, 1 threads); lightning: cpu (x86_64, 1 threads)"
ENVIRONMENT = {"python": "3.11.7", "tensorflow": "2.21.0", "keras": "3.12.0", "torch": "2.14.1",
               "lightning": "2.6.0", "device": CPU}
T_975_DF8 = 2.306004
T_975_DF6 = 2.446912


def _results(model, metric, keras_finals, lightning_finals, rates, mode="aligned"):
    """A results dict as `parity run` collects it: one run per final value, the metric rising (or mae falling) to it."""
    step = 0.05 if metric == "accuracy" else -0.05
    frameworks = {}
    for fw, finals, rate in (("keras", keras_finals, rates[0]), ("lightning", lightning_finals, rates[1])):
        runs = [{
            "seed": seed,
            "history": {"loss": [0.6, 0.4], "val_loss": [0.65, 0.45], metric: [final - step, final],
                        f"val_{metric}": [final - step, final]},
            "step_loss": [0.7, 0.6, 0.5, 0.4],
            "train_samples_per_s": rate,
            "wall_s": 3.0,
        } for seed, final in enumerate(finals)]
        frameworks[fw] = {"params": 1000, "runs": runs}
    return {
        "model": model, "mode": mode, "seeds": list(range(len(keras_finals))),
        "dataset": {"id": "synthetic", "source": "synthetic", "train_size": 600, "val_size": 100},
        "frameworks": frameworks, "forward_max_abs_diff": 2e-6, "environment": dict(ENVIRONMENT),
        "spec": {"title": model, "reference": "n/a", "reference_val_metric": None, "epochs": 2, "batch_size": 32,
                 "optimizer": "adam(lr=0.001)", "loss": "mse", "metric": metric},
    }


def _write_run(out_dir, *args, **kwargs):
    return write_report(build_report(_results(*args, **kwargs)), out_dir) / "report.json"


def _bench_row(model, device, keras, lightning, *, scope="end_to_end", trainer="framework", variant="eager",
               batch_size=32, peak=(None, None), rss=(812.0, 905.0)):
    """One bench.json row; `keras` and `lightning` are samples/s windows (median, min, max)."""
    def framework(window, peak_mb, rss_mb):
        samples = dict(zip(("median", "min", "max"), window))
        return {"samples_per_s": samples, "steps_per_s": {k: v / batch_size for k, v in samples.items()},
                "peak_mem_mb": peak_mb, "host_rss_mb": rss_mb}

    return {"model": model, "device": device, "variant": variant, "scope": scope, "trainer": trainer,
            "batch_size": batch_size,
            "frameworks": {"keras": framework(keras, peak[0], rss[0]),
                           "lightning": framework(lightning, peak[1], rss[1])},
            "throughput_ratio": lightning[0] / keras[0], "settings": {"windows": 5, "window_steps": 20},
            "environment": {"python": "3.11.7"}}


def _lockstep(model, first, optimizer, alignment="aligned"):
    return {"model": model, "optimizer": {"name": optimizer, "learning_rate": 0.001}, "steps": 100,
            "tolerance": 1e-4, "first_divergence_step": first, "max_rel_loss_diff": 3e-3,
            "alignment": alignment, "native": [], "environment": {"device": CPU}}


def _write_json(path, document):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document))
    return path


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    """Run reports, benches and lockstep reports for five models, as the commands lay them out."""
    root = tmp_path_factory.mktemp("summary")
    runs, benches = root / "runs", root / "bench"
    # 5 seeds each, sample std 0.0015811 (s^2 = 2.5e-6): lightning 0.02 more accurate.
    _write_run(runs / "aligned", "c1w2_fmnist_dnn", "accuracy", [0.878, 0.879, 0.880, 0.881, 0.882],
               [0.898, 0.899, 0.900, 0.901, 0.902], (2000.0, 1900.0))
    # one seed each: lightning at half keras' speed
    _write_run(runs / "native", "c1w2_fmnist_dnn", "accuracy", [0.88], [0.90], (2000.0, 1000.0), mode="native")
    # equal accuracy within noise; the bench says lightning is 1.7x faster
    _write_run(runs / "aligned", "c1w3_fmnist_cnn", "accuracy", [0.90, 0.91, 0.92], [0.906, 0.916, 0.911],
               (2000.0, 1500.0))
    # equal accuracy, equal speed (ratio 0.99, within [0.95, 1/0.95]), no bench
    _write_run(runs / "aligned", "c3w2_sarcasm_embed_gap", "accuracy", [0.80, 0.82, 0.81], [0.805, 0.815, 0.81],
               (2000.0, 1980.0))
    # regression: lightning's mae 0.1 lower (better), though the bench has keras 3x faster
    _write_run(runs / "aligned", "c1w1_house_price", "mae", [0.50, 0.51, 0.52, 0.53], [0.40, 0.41, 0.42, 0.43],
               (3000.0, 1000.0))
    # regression: lightning's mae 0.1 higher (worse)
    _write_run(runs / "aligned", "c4w2_ts_dnn", "mae", [0.40, 0.41, 0.42, 0.43], [0.50, 0.51, 0.52, 0.53],
               (2000.0, 2000.0))
    _write_json(benches / "cpu" / "bench.json", [
        _bench_row("c1w3_fmnist_cnn", "cpu", (1000, 950, 1040), (1700, 1650, 1760)),
        _bench_row("c1w3_fmnist_cnn", "cpu", (1000, 950, 1040), (3000, 2900, 3100), scope="compute"),
        _bench_row("c1w3_fmnist_cnn", "cpu", (1000, 950, 1040), (900, 850, 950), trainer="plain"),
        _bench_row("c1w3_fmnist_cnn", "cpu", (1000, 950, 1040), (1200, 1150, 1250), variant="compiled"),
        _bench_row("c1w3_fmnist_cnn", "cpu", (4000, 3900, 4100), (4000, 3900, 4100), batch_size=128),
        _bench_row("c1w1_house_price", "cpu", (3000, 2900, 3100), (1000, 950, 1050)),
    ])
    # on the GPU only a bench: windows overlap
    _write_json(benches / "gpu" / "bench.json", [
        _bench_row("c1w2_fmnist_dnn", "gpu (NVIDIA H100 80GB HBM3)", (1000, 900, 1100), (1050, 950, 1150),
                   peak=(512.0, 640.0)),
    ])
    lockstep = runs / "lockstep"
    _write_json(lockstep / "c1w2_fmnist_dnn-adam-aligned" / "lockstep.json", _lockstep("c1w2_fmnist_dnn", 37, "adam"))
    _write_json(lockstep / "c1w2_fmnist_dnn-sgd-aligned" / "lockstep.json", _lockstep("c1w2_fmnist_dnn", 5, "sgd"))
    _write_json(lockstep / "c1w3_fmnist_cnn-adam-aligned" / "lockstep.json",
                _lockstep("c1w3_fmnist_cnn", None, "adam"))
    # the course trains c1w1_house_price with sgd: its report replaces the adam one found first
    _write_json(lockstep / "c1w1_house_price-adam-aligned" / "lockstep.json", _lockstep("c1w1_house_price", 3, "adam"))
    _write_json(lockstep / "c1w1_house_price-sgd-aligned" / "lockstep.json", _lockstep("c1w1_house_price", 12, "sgd"))
    # not a source: an unknown JSON file, and a half-written report in a hidden staging directory
    _write_json(runs / "notes.json", {"note": "not a report"})
    (runs / "aligned" / ".c1w2_fmnist_dnn.staging-x").mkdir()
    (runs / "aligned" / ".c1w2_fmnist_dnn.staging-x" / "report.json").write_text("{half")
    return root


@pytest.fixture(scope="module")
def rows(tree):
    result = run_cli("report", str(tree / "runs"), str(tree / "bench"), "--json", timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""  # the hidden staging report and notes.json are not sources
    return {(row["model"], row["mode"], row["device"]): row for row in json.loads(result.stdout)}


@pytest.fixture(scope="module")
def markdown(tree):
    result = run_cli("report", str(tree / "runs"), str(tree / "bench"), timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_one_row_per_model_mode_and_device(rows):
    assert list(rows) == [  # sorted by model, mode (none first), device
        ("c1w1_house_price", "aligned", "cpu"),
        ("c1w2_fmnist_dnn", None, "gpu"),
        ("c1w2_fmnist_dnn", "aligned", "cpu"),
        ("c1w2_fmnist_dnn", "native", "cpu"),
        ("c1w3_fmnist_cnn", "aligned", "cpu"),
        ("c3w2_sarcasm_embed_gap", "aligned", "cpu"),
        ("c4w2_ts_dnn", "aligned", "cpu"),
    ]


def test_significant_accuracy_difference_recommends_the_more_accurate(rows):
    row = rows["c1w2_fmnist_dnn", "aligned", "cpu"]
    assert (row["task"], row["metric"]) == ("multiclass", "accuracy")
    std = math.sqrt(2.5e-6)
    assert row["accuracy"]["keras"] == pytest.approx({"mean": 0.880, "std": std, "n": 5})
    assert row["accuracy"]["lightning"] == pytest.approx({"mean": 0.900, "std": std, "n": 5})
    half = T_975_DF8 * math.sqrt(2 * 2.5e-6 / 5)  # = 0.002306
    assert row["diff_ci95"] == pytest.approx([0.02 - half, 0.02 + half], abs=1e-7)
    assert row["welch_p"] < 1e-6  # t = 0.02 / 0.001 = 20 on 8 degrees of freedom
    assert row["recommendation"] == {"backend": "lightning",
                                     "reason": "accuracy differs significantly: +0.0200 [+0.0177, +0.0223]"}
    assert (row["throughput_ratio"], row["throughput_source"]) == (pytest.approx(0.95), "run")


def test_speed_difference_at_equal_accuracy_uses_the_framework_end_to_end_eager_bench_row(rows):
    row = rows["c1w3_fmnist_cnn", "aligned", "cpu"]
    lo, hi = row["diff_ci95"]
    assert lo < 0 < hi and row["diff_mean"] == pytest.approx(0.001)
    # not the compute (3.0), plain-trainer (0.9), compiled (1.2) or batch-128 (1.0) rows, not the run's 0.75
    assert (row["throughput_ratio"], row["throughput_source"], row["bench_batch_size"]) == (1.7, "bench", 32)
    assert row["recommendation"] == {"backend": "lightning", "reason": "faster at equal accuracy: 1.7x"}
    assert row["peak_mem_mb"] == {"keras": None, "lightning": None}
    assert row["host_rss_mb"] == {"keras": 812.0, "lightning": 905.0}


def test_no_difference_recommends_either(rows):
    row = rows["c3w2_sarcasm_embed_gap", "aligned", "cpu"]
    assert row["task"] == "binary"
    assert row["welch_p"] == pytest.approx(1.0)  # equal means, 0.81 each
    assert (row["throughput_ratio"], row["throughput_source"]) == (pytest.approx(0.99), "run")
    assert row["recommendation"] == {"backend": "either", "reason": "no significant accuracy or speed difference"}


def test_regression_lower_mae_wins_even_against_a_faster_framework(rows):
    better = rows["c1w1_house_price", "aligned", "cpu"]
    worse = rows["c4w2_ts_dnn", "aligned", "cpu"]
    half = T_975_DF6 * math.sqrt(2 * (0.01**2 * 5 / 3) / 4)  # s^2 of 0, .01, .02, .03 is 1.667e-4
    assert better["metric"] == worse["metric"] == "mae"
    assert better["task"] == "regression"
    assert better["diff_ci95"] == pytest.approx([-0.1 - half, -0.1 + half], abs=1e-7)
    assert worse["diff_ci95"] == pytest.approx([0.1 - half, 0.1 + half], abs=1e-7)
    assert better["throughput_ratio"] == pytest.approx(1 / 3)  # bench: keras 3x faster, accuracy comes first
    assert better["recommendation"] == {
        "backend": "lightning", "reason": "mae differs significantly: -0.1000 [-0.1223, -0.0777] (mae: lower is better)"}
    assert worse["recommendation"] == {
        "backend": "keras", "reason": "mae differs significantly: +0.1000 [+0.0777, +0.1223] (mae: lower is better)"}


def test_single_seed_is_not_a_statistical_comparison(rows):
    row = rows["c1w2_fmnist_dnn", "native", "cpu"]
    assert row["accuracy"]["keras"] == {"mean": 0.88, "std": None, "n": 1}
    assert row["diff_mean"] == pytest.approx(0.02)
    assert row["diff_ci95"] == [None, None] and row["welch_p"] is None
    assert row["throughput_ratio"] == pytest.approx(0.5)
    assert row["recommendation"] == {"backend": "keras",
                                     "reason": "faster: 2x; accuracy comparison not statistical (1 seed)"}


def test_bench_without_a_run_has_memory_and_no_accuracy(rows):
    row = rows["c1w2_fmnist_dnn", None, "gpu"]
    assert row["accuracy"]["lightning"] == {"mean": None, "std": None, "n": 0}
    assert row["throughput_ratio"] == pytest.approx(1.05)
    assert row["peak_mem_mb"] == {"keras": 512.0, "lightning": 640.0}
    assert row["recommendation"] == {
        "backend": "either", "reason": "accuracy not measured (no run report); no material speed difference"}


def test_lockstep_first_divergence_prefers_the_course_optimizer(rows):
    assert rows["c1w2_fmnist_dnn", "aligned", "cpu"]["lockstep"] == {
        "first_divergence_step": 37, "steps": 100, "tolerance": 1e-4, "max_rel_loss_diff": 3e-3}
    assert rows["c1w3_fmnist_cnn", "aligned", "cpu"]["lockstep"]["first_divergence_step"] is None
    assert rows["c1w1_house_price", "aligned", "cpu"]["lockstep"]["first_divergence_step"] == 12
    assert rows["c1w2_fmnist_dnn", "native", "cpu"]["lockstep"] is None
    assert any(source.endswith("c1w2_fmnist_dnn-adam-aligned/lockstep.json")
               for source in rows["c1w2_fmnist_dnn", "aligned", "cpu"]["sources"])


def test_markdown_table_legend_and_sources(markdown, tree):
    assert markdown.startswith("# Parity summary\n")
    assert ("| c1w2_fmnist_dnn | aligned | cpu | multiclass | accuracy | 0.8800 ± 0.0016 (n=5) "
            "| 0.9000 ± 0.0016 (n=5) | +0.0200 [+0.0177, +0.0223] |") in markdown
    assert "| 0.95 | run | n/a | step 37 of 100 | **lightning**: accuracy differs significantly" in markdown
    assert "| 1.7 | bench (batch 32) | 812 / 905 (host RSS) | none in 100 steps | **lightning**: faster at equal" \
        in markdown
    assert "| 0.8800 (n=1) | 0.9000 (n=1) | +0.0200 (no CI: 1 seed) | n/a | 0.5 | run |" in markdown
    assert "| c1w2_fmnist_dnn | - | gpu | multiclass | accuracy | n/a | n/a | n/a | n/a | 1.05 | bench (batch 32) " \
           "| 512 / 640 |" in markdown
    assert "- regression: lightning (c1w1_house_price aligned cpu); keras (c4w2_ts_dnn aligned cpu)" in markdown
    assert "ratio outside [0.95, 1.053]" in markdown and "95% interval excludes 0" in markdown
    sources = markdown.split("## Sources\n")[1]
    assert f"- {tree / 'runs' / 'aligned' / 'c1w2_fmnist_dnn' / 'report.json'}" in sources
    assert f"- {tree / 'bench' / 'cpu' / 'bench.json'}" in sources
    assert "c1w1_house_price-sgd-aligned" in sources
    for unused in ("c1w2_fmnist_dnn-sgd", "c1w1_house_price-adam", "staging", "notes.json"):
        assert unused not in sources


def test_out_writes_the_file_and_json_matches(tree, tmp_path, rows):
    out = tmp_path / "summary" / "summary.json"
    result = run_cli("report", str(tree / "runs"), str(tree / "bench"), "--json", "--out", str(out), timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"summary: {out}\n"
    assert len(json.loads(out.read_text())) == len(rows)
    assert [p.name for p in out.parent.iterdir()] == ["summary.json"]  # no temporary file left


def test_corrupt_and_invalid_files_warn_and_the_rest_is_reported(tmp_path):
    good = _write_run(tmp_path / "runs", "c1w3_fmnist_cnn", "accuracy", [0.9, 0.91], [0.9, 0.91], (1000.0, 1000.0))
    corrupt = _write_json(tmp_path / "runs" / "broken" / "report.json", {})
    corrupt.write_text('{"model": "c1w2_fmnist_dnn", "mode": ')
    invalid = _write_json(tmp_path / "runs" / "old" / "report.json", {"model": "c1w2_fmnist_dnn"})
    bad_bench = _write_json(tmp_path / "bench" / "bench.json", [{"model": "c1w3_fmnist_cnn", "device": "cpu"}])
    result = run_cli("report", str(tmp_path), "--json", timeout=60)
    assert result.returncode == 0, result.stderr
    warnings = result.stderr.splitlines()
    assert len(warnings) == 3
    assert any(line.startswith(f"parity: warning: {corrupt}: unreadable (Expecting value") for line in warnings)
    assert f"parity: warning: {invalid}: not a valid run file (top level: 'mode' is a required property); skipped" \
        in warnings
    assert any(line.startswith(f"parity: warning: {bad_bench}: not a valid bench file (0: ") for line in warnings)
    (row,) = json.loads(result.stdout)
    assert row["sources"] == [str(good)]
    assert row["recommendation"]["backend"] == "either"


def test_nothing_usable_is_a_one_line_error(tmp_path):
    _write_json(tmp_path / "notes.json", {"note": "not a report"})
    result = run_cli("report", str(tmp_path), timeout=60)
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        (f"parity: error: no usable run report (report.json) or bench result (bench.json) under {tmp_path}; "
         "write them with `parity run --out DIR` or `parity bench --out DIR`")]
    assert result.stdout == ""


def test_only_a_corrupt_file_warns_then_fails(tmp_path):
    (tmp_path / "report.json").write_text("not json")
    result = run_cli("report", str(tmp_path), timeout=60)
    assert result.returncode == 2
    lines = result.stderr.splitlines()
    assert len(lines) == 2 and lines[0].startswith(f"parity: warning: {tmp_path / 'report.json'}: unreadable")
    assert lines[1].startswith("parity: error: no usable run report")


def test_missing_directory_is_an_error(tmp_path):
    result = run_cli("report", str(tmp_path / "nope"), timeout=60)
    assert result.returncode == 2
    assert result.stderr.startswith(f"parity: error: {tmp_path / 'nope'}: no such directory")
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("keras, lightning, material", [
    ((1000, 950, 1040), (1700, 1650, 1760), True),    # windows apart
    ((1000, 950, 1040), (1060, 1030, 1090), False),   # 1.06x but the windows overlap
    ((1000, 990, 1010), (1030, 1020, 1040), True),    # 1.03x, tight windows apart
])
def test_bench_speed_difference_is_material_when_windows_do_not_overlap(keras, lightning, material):
    bench = _bench_row("c1w3_fmnist_cnn", "cpu", keras, lightning)
    assert material_speed_difference(bench, bench["throughput_ratio"]) is material


@pytest.mark.parametrize("ratio, material", [(0.95, False), (1 / 0.95, False), (0.949, True), (1.06, True),
                                             (None, False)])
def test_run_speed_difference_is_material_outside_five_percent(ratio, material):
    assert material_speed_difference(None, ratio) is material


def test_identical_seeds_with_a_constant_difference_count_as_significant():
    final_val = {"keras": {"mean": 0.5, "std": 0.0, "n": 3}, "lightning": {"mean": 0.4, "std": 0.0, "n": 3},
                 "diff_mean": -0.1, "diff_ci95": [-0.1, -0.1], "welch_p": None}
    assert recommend("mae", final_val, 1.0, False)["backend"] == "lightning"
    assert recommend("accuracy", final_val, 1.0, False)["backend"] == "keras"


def test_newer_run_report_supersedes_an_older_one_with_a_warning(tmp_path):
    paths = {}
    for name, created, keras in (("a", "2025-06-01T10:00:00+00:00", [0.80, 0.81]),
                                 ("b", "2025-01-01T10:00:00+00:00", [0.70, 0.71])):
        report = build_report(_results("c1w3_fmnist_cnn", "accuracy", keras, [0.80, 0.81], (1000.0, 1000.0)))
        report["created"] = created
        paths[name] = write_report(report, tmp_path / name) / "report.json"
    result = run_cli("report", str(tmp_path), "--json", timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stderr.splitlines() == [
        f"parity: warning: {paths['b']}: superseded by {paths['a']} (run of c1w3_fmnist_cnn, aligned, cpu)"]
    (row,) = json.loads(result.stdout)
    assert row["accuracy"]["keras"]["mean"] == pytest.approx(0.805)


def test_lockstep_without_a_matching_run_warns(tmp_path):
    _write_run(tmp_path, "c1w2_fmnist_dnn", "accuracy", [0.88], [0.88], (1000.0, 1000.0))
    partial = _write_json(tmp_path / "lockstep" / "x" / "lockstep.json",
                          _lockstep("c1w2_fmnist_dnn", 2, "adam", alignment="aligned except adam_epsilon_value (native)"))
    result = run_cli("report", str(tmp_path), "--json", timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stderr.splitlines() == [
        (f"parity: warning: {partial}: no run report or bench of c1w2_fmnist_dnn "
         "(aligned except adam_epsilon_value) on its device; not shown")]
    assert json.loads(result.stdout)[0]["lockstep"] is None


@pytest.mark.parametrize("final_val, ratio, material, expected", [
    (None, None, False, ("either", "accuracy not measured (no run report); speed not measured")),
    (None, 0.5, True, ("keras", "faster: 2x; accuracy not measured (no run report)")),
    ("equal", None, False, ("either", "no significant accuracy difference; speed not measured")),
    ("equal", 1.02, False, ("either", "no significant accuracy or speed difference")),
    ("equal", 0.8, True, ("keras", "faster at equal accuracy: 1.25x")),
])
def test_recommendation_reasons(final_val, ratio, material, expected):
    if final_val == "equal":
        final_val = {"keras": {"mean": 0.9, "std": 0.01, "n": 3}, "lightning": {"mean": 0.9, "std": 0.01, "n": 3},
                     "diff_mean": 0.0, "diff_ci95": [-0.02, 0.02], "welch_p": 1.0}
    recommendation = recommend("accuracy", final_val, ratio, material)
    assert (recommendation["backend"], recommendation["reason"]) == expected


def test_native_bench_gives_the_speed_of_an_aligned_run_when_no_native_run_exists(tmp_path):
    _write_run(tmp_path / "runs", "c1w3_fmnist_cnn", "accuracy", [0.90, 0.91], [0.90, 0.91], (1000.0, 1000.0))
    bench = _bench_row("c1w3_fmnist_cnn", CPU, (2000.0, 1950.0, 2050.0), (1700.0, 1650.0, 1750.0))
    bench["settings"]["mode"] = "native"  # the torch optimizer implementation the bench timed
    _write_json(tmp_path / "bench" / "bench.json", [bench])
    result = run_cli("report", str(tmp_path), "--json", timeout=60)
    assert result.returncode == 0, result.stderr
    (row,) = json.loads(result.stdout)
    assert (row["mode"], row["throughput_source"]) == ("aligned", "bench")
    assert row["throughput_ratio"] == pytest.approx(0.85)
    assert row["recommendation"]["backend"] == "keras"  # 1,650-1,750 vs 1,950-2,050: windows do not overlap
