"""`parity report`: real report.json / bench.json / lockstep.json files in, one table and a recommendation per row out.

Planted per-seed values with hand-worked statistics. Paired t: the mean of the per-seed
differences d_i = lightning_i - keras_i, half-width t(0.975, n - 1) * sd(d) / sqrt(n). Welch
(equal sample variances s^2 and n seeds per framework): standard error sqrt(2 s^2 / n) on
exactly 2 (n - 1) degrees of freedom. Quantiles from a table: t(0.975, 8) = 2.306004,
t(0.975, 4) = 2.776445, t(0.975, 3) = 3.182446. Intervals are asserted to 1e-7 (float64
rounding of sums of a few values is below 1e-15; 1e-7 is the 7th digit the table gives).
"""

import json
import math

import pytest
from cli_helpers import run_cli
from scipy import stats

from parity import provenance
from parity.align import Alignment
from parity.report import build_report, write_report
from parity.summary import material_speed_difference, recommend, recommend_among, summarize, write_summary

THREE = ("keras", "lightning", "keras-torch")
CPU = "keras: cpu (x86_64, 1 threads); lightning: cpu (x86_64, 1 threads)"
ENVIRONMENT = {"python": "3.11.7", "tensorflow": "2.21.0", "keras": "3.12.0", "torch": "2.14.1",
               "lightning": "2.6.0", "device": CPU}
VERSIONS = {key: ENVIRONMENT[key] for key in provenance.VERSION_KEYS}
NO_SPEED_VERDICT = "no speed verdict (run report only: the frameworks trained one after the other; use `parity bench`)"
T_975_DF8 = 2.306004
T_975_DF4 = 2.776445
T_975_DF3 = 3.182446


KERAS_TORCH_VERSIONS = {"keras": ENVIRONMENT["keras"], "torch": ENVIRONMENT["torch"], "keras_backend": "torch"}


def _provenance(kind="run", source="synthetic", mode="aligned", device="cpu (x86_64)", epochs=2,
                frameworks=("keras", "lightning")):
    """The provenance `parity run` (kind run), `parity bench` or `parity lockstep` records for one setting."""
    real = source == "real"
    data = {"id": "stand-in", "source": source, "location": "/data" if real else "generated",
            "sha256": ("a" if real else "b") * 64, "hashed": "files" if real else "parameters"}
    if real:
        data["files"] = [{"path": "/data/train.gz", "bytes": 1000, "sha256": "a" * 64}]
    workers = {fw: {"device": device, "versions": KERAS_TORCH_VERSIONS if fw == "keras-torch" else VERSIONS}
               for fw in frameworks}
    run = kind == "run"
    return provenance.build_provenance(data, Alignment.from_mode(mode), workers, threads=1, course_epochs=5,
                                       run_epochs=epochs if run else None,
                                       forward_check=[{"passed": True, "max_abs_diff": 1e-6}] if run else None)


def _results(model, metric, keras_finals, lightning_finals, rates, mode="aligned", source="synthetic", epochs=2,
             keras_torch=None):
    """A results dict as `parity run` collects it: one run per final value, the metric rising (or mae falling) to it.
    `keras_torch`: (final values, samples/s) of a third framework, Keras on torch."""
    step = 0.05 if metric == "accuracy" else -0.05
    frameworks = {}
    compared = [("keras", keras_finals, rates[0]), ("lightning", lightning_finals, rates[1])]
    for fw, finals, rate in compared + ([("keras-torch", *keras_torch)] if keras_torch else []):
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
        "dataset": {"id": "synthetic", "source": source, "train_size": 600, "val_size": 100},
        "frameworks": frameworks, "forward_max_abs_diff": 2e-6, "environment": dict(ENVIRONMENT),
        "spec": {"title": model, "reference": "n/a", "reference_val_metric": None, "epochs": epochs, "batch_size": 32,
                 "optimizer": "adam(lr=0.001)", "loss": "mse", "metric": metric},
        "provenance": _provenance(source=source, mode=mode, epochs=epochs, frameworks=tuple(frameworks)),
    }


def _report(*args, **kwargs):
    results = _results(*args, **kwargs)
    return {**build_report(results), "provenance": results["provenance"]}


def _write_run(out_dir, *args, **kwargs):
    return write_report(_report(*args, **kwargs), out_dir) / "report.json"


def _bench_row(model, device, keras, lightning, *, scope="end_to_end", trainer="framework", variant="eager",
               batch_size=32, peak=(None, None), rss=(812.0, 905.0), ci95=None, mode="aligned", keras_torch=None,
               ratios=None):
    """One bench.json row; `keras` and `lightning` are samples/s windows (median, min, max); `ci95` the ratio's interval;
    `keras_torch` a third framework's windows, with `ratios` {pair key: interval} of every pair (parity bench's
    `ratios`, each ratio the medians' here)."""
    def framework(window, peak_mb, rss_mb):
        samples = dict(zip(("median", "min", "max"), window))
        return {"samples_per_s": samples, "steps_per_s": {k: v / batch_size for k, v in samples.items()},
                "peak_mem_mb": peak_mb, "host_rss_mb": rss_mb}

    row = {"model": model, "device": device, "variant": variant, "scope": scope, "trainer": trainer,
           "batch_size": batch_size,
           "frameworks": {"keras": framework(keras, peak[0], rss[0]),
                          "lightning": framework(lightning, peak[1], rss[1])},
           "throughput_ratio": lightning[0] / keras[0], "settings": {"windows": 5, "window_steps": 20, "mode": mode},
           "environment": {"python": "3.11.7"},
           "provenance": _provenance("bench", mode=mode, device=f"{device} (x86_64)" if device == "cpu" else device)}
    if ci95 is not None:
        row["throughput_ratio_ci95"] = list(ci95)
    if keras_torch is not None:
        row["frameworks"]["keras-torch"] = framework(keras_torch, None, 950.0)
        row["provenance"] = _provenance("bench", mode=mode, device=f"{device} (x86_64)", frameworks=THREE)
        medians = {fw: entry["samples_per_s"]["median"] for fw, entry in row["frameworks"].items()}
        row["ratios"] = {key: {"ratio": medians[key.split("/")[0]] / medians[key.split("/")[1]],
                               "interval": list(interval)} for key, interval in ratios.items()}
        row["throughput_ratio_ci95"] = row["ratios"]["lightning/keras"]["interval"]
    return row


def _lockstep(model, first, optimizer, mode="aligned"):
    return {"model": model, "optimizer": {"name": optimizer, "learning_rate": 0.001}, "steps": 100,
            "tolerance": 1e-4, "first_divergence_step": first, "max_rel_loss_diff": 3e-3,
            "alignment": mode, "native": [], "environment": {"device": CPU}, "provenance": _provenance("lockstep", mode=mode)}


def _write_json(path, document):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document))
    return path


# Planted per-seed values: the differences lightning - keras each row's test is about.
FMNIST_DNN = ([0.878, 0.879, 0.880, 0.881, 0.882], [0.899, 0.898, 0.901, 0.900, 0.902])  # d = .021 .019 .021 .019 .020
FMNIST_CNN = ([0.90, 0.91, 0.92, 0.905, 0.915], [0.901, 0.909, 0.922, 0.905, 0.913])  # d = +-.001, .002, 0, -.002
SARCASM_GAP = ([0.80, 0.82, 0.81, 0.815, 0.805], [0.801, 0.819, 0.8105, 0.8145, 0.805])  # d = +-.001, +-.0005, 0
SARCASM_LSTM = ([0.80, 0.81, 0.82], [0.83, 0.84, 0.85])  # d = +0.03 three times: no spread
MNIST_DNN = ([0.97, 0.975, 0.98], [0.975, 0.972, 0.99])  # d = .005, -.003, .010: middling, 3 seeds
HOUSE = ([0.50, 0.51, 0.52, 0.53], [0.40, 0.412, 0.418, 0.43])  # mae d = -.100, -.098, -.102, -.100
TS_DNN = ([0.40, 0.41, 0.42, 0.43], [0.50, 0.512, 0.518, 0.53])  # mae d = +.100, +.102, +.098, +.100
TESTED_ROWS = 6  # the rows with a paired test: all but the 1-seed, the degenerate and the bench-only ones


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    """Run reports, benches and lockstep reports for eight models, as the commands lay them out."""
    root = tmp_path_factory.mktemp("summary")
    runs, benches = root / "runs", root / "bench"
    aligned = runs / "aligned"
    _write_run(aligned, "c1w2_fmnist_dnn", "accuracy", *FMNIST_DNN, (2000.0, 1900.0))  # lightning 0.02 better
    # one seed each: lightning at half keras' speed
    _write_run(runs / "native", "c1w2_fmnist_dnn", "accuracy", [0.88], [0.90], (2000.0, 1000.0), mode="native")
    _write_run(aligned, "c1w3_fmnist_cnn", "accuracy", *FMNIST_CNN, (2000.0, 1500.0))  # equal; the bench: 1.7x
    _write_run(aligned, "c3w2_sarcasm_embed_gap", "accuracy", *SARCASM_GAP, (2000.0, 1980.0))  # equal, equal speed
    _write_run(aligned, "c3w3_sarcasm_bilstm", "accuracy", *SARCASM_LSTM, (2000.0, 1000.0))  # degenerate, keras 2x
    _write_run(aligned, "c1w2_mnist_dnn_callback", "accuracy", *MNIST_DNN, (2000.0, 2000.0))  # inconclusive
    _write_run(aligned, "c1w1_house_price", "mae", *HOUSE, (3000.0, 1000.0))  # lightning's mae lower; keras 3x
    _write_run(aligned, "c4w2_ts_dnn", "mae", *TS_DNN, (2000.0, 2000.0))  # lightning's mae higher
    _write_json(benches / "cpu" / "bench.json", [
        _bench_row("c1w3_fmnist_cnn", "cpu", (1000, 950, 1040), (1700, 1650, 1760), ci95=(1.62, 1.79)),
        _bench_row("c1w3_fmnist_cnn", "cpu", (1000, 950, 1040), (3000, 2900, 3100), scope="compute"),
        _bench_row("c1w3_fmnist_cnn", "cpu", (1000, 950, 1040), (900, 850, 950), trainer="plain"),
        _bench_row("c1w3_fmnist_cnn", "cpu", (1000, 950, 1040), (1200, 1150, 1250), variant="compiled"),
        _bench_row("c1w3_fmnist_cnn", "cpu", (4000, 3900, 4100), (4000, 3900, 4100), batch_size=128),
        # the native torch optimizer's speed: a row of its own, never the aligned run's speed
        _bench_row("c1w3_fmnist_cnn", "cpu", (1000, 950, 1040), (500, 480, 520), mode="native"),
        # a bench file from before the bootstrap interval: the windows decide
        _bench_row("c1w1_house_price", "cpu", (3000, 2900, 3100), (1000, 950, 1050)),
    ])
    # on the GPU only a bench: windows overlap
    _write_json(benches / "gpu" / "bench.json", [
        _bench_row("c1w2_fmnist_dnn", "gpu (NVIDIA H100 80GB HBM3)", (1000, 900, 1100), (1050, 950, 1150),
                   peak=(512.0, 640.0), mode="native"),
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
    (aligned / ".c1w2_fmnist_dnn.staging-x").mkdir()
    (aligned / ".c1w2_fmnist_dnn.staging-x" / "report.json").write_text("{half")
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


def _paired_half(diffs, t):
    sd = stats.tstd(diffs)  # sample sd (ddof=1)
    return t * sd / math.sqrt(len(diffs))


def test_one_row_per_model_and_provenance(rows):
    assert list(rows) == [  # sorted by model, mode, device
        ("c1w1_house_price", "aligned", "cpu"),
        ("c1w2_fmnist_dnn", "aligned", "cpu"),
        ("c1w2_fmnist_dnn", "native", "cpu"),
        ("c1w2_fmnist_dnn", "native", "gpu"),
        ("c1w2_mnist_dnn_callback", "aligned", "cpu"),
        ("c1w3_fmnist_cnn", "aligned", "cpu"),
        ("c1w3_fmnist_cnn", "native", "cpu"),
        ("c3w2_sarcasm_embed_gap", "aligned", "cpu"),
        ("c3w3_sarcasm_bilstm", "aligned", "cpu"),
        ("c4w2_ts_dnn", "aligned", "cpu"),
    ]
    row = rows["c1w2_fmnist_dnn", "aligned", "cpu"]
    assert row["provenance"].startswith("synthetic stand-in (parameters sha256 bbbbbbbb…), 2 epochs (course 5), aligned")
    # the key leaves the model out: aligned runs on cpu, the native 1-seed run, the native cpu bench, the gpu bench
    assert len({row["provenance_key"] for row in rows.values()}) == 4


def test_different_accuracy_recommends_the_more_accurate_with_the_paired_interval(rows):
    row = rows["c1w2_fmnist_dnn", "aligned", "cpu"]
    assert (row["task"], row["metric"]) == ("multiclass", "accuracy")
    std = math.sqrt(2.5e-6)
    assert row["accuracy"]["keras"] == pytest.approx({"mean": 0.880, "std": std, "n": 5})
    assert row["accuracy"]["lightning"] == pytest.approx({"mean": 0.900, "std": std, "n": 5})
    welch_half = T_975_DF8 * math.sqrt(2 * 2.5e-6 / 5)  # = 0.002306
    assert row["diff_ci95"] == row["welch"]["ci95"] == pytest.approx([0.02 - welch_half, 0.02 + welch_half], abs=1e-7)
    # paired: sd of the differences 0.001 (deviations +-0.001 four times, 0 once), half = 2.776445 * 0.001 / sqrt 5
    paired_half = T_975_DF4 * 0.001 / math.sqrt(5)
    assert paired_half == pytest.approx(0.0012416, abs=1e-7)
    assert row["paired"]["ci95"] == pytest.approx([0.02 - paired_half, 0.02 + paired_half], abs=1e-7)
    assert row["paired"]["correlation"] == pytest.approx(0.8, abs=1e-9)  # sum(dk dl) = 8, sum dk^2 = sum dl^2 = 10
    p = row["paired"]["p"]  # t = 0.02 / (0.001 / sqrt 5) = 44.72 on 4 df
    assert p == pytest.approx(2 * stats.t.sf(0.02 / (0.001 / math.sqrt(5)), 4), rel=1e-6) and p < 2e-6
    assert row["equivalence"]["verdict"] == "different" and row["verdict"] == "different"
    assert row["holm"]["m"] == TESTED_ROWS and row["holm"]["p_difference"] <= TESTED_ROWS * p
    assert row["recommendation"]["backend"] == "lightning"
    assert row["recommendation"]["reason"].startswith("accuracy differs: +0.0200 [+0.0188, +0.0212] (paired, Holm p = ")
    assert (row["throughput_ratio"], row["throughput_source"]) == (pytest.approx(0.95), "run")


def test_faster_at_equal_accuracy_needs_equivalence_and_uses_the_bench_interval(rows):
    row = rows["c1w3_fmnist_cnn", "aligned", "cpu"]
    # d = .001, -.001, .002, 0, -.002: mean 0, sd sqrt(1e-5 / 4) = 0.0015811; TOST t = 0.01 / (sd / sqrt 5) = 14.14
    assert row["paired"]["mean"] == pytest.approx(0.0, abs=1e-12)
    p_tost = stats.t.sf(0.01 / (math.sqrt(2.5e-6) / math.sqrt(5)), 4)
    assert row["equivalence"]["p"] == pytest.approx(p_tost, rel=1e-6) and p_tost < 1e-4
    assert row["verdict"] == "equivalent"
    # not the compute (3.0), plain-trainer (0.9), compiled (1.2), batch-128 (1.0) or native (0.5) rows, not the run's 0.75
    assert (row["throughput_ratio"], row["throughput_source"], row["bench_batch_size"]) == (1.7, "bench", 32)
    assert row["throughput_ratio_ci95"] == [1.62, 1.79]
    assert row["recommendation"]["backend"] == "lightning"
    assert row["recommendation"]["reason"].startswith("faster at equal accuracy (within ±0.0100, Holm TOST p = ")
    assert row["recommendation"]["reason"].endswith("): 1.7x [1.62, 1.79]")
    assert row["peak_mem_mb"] == {"keras": None, "lightning": None}
    assert row["host_rss_mb"] == {"keras": 812.0, "lightning": 905.0}


def test_a_native_bench_is_a_row_of_its_own_not_the_speed_of_the_aligned_run(rows):
    row = rows["c1w3_fmnist_cnn", "native", "cpu"]
    assert row["accuracy"]["keras"]["n"] == 0 and row["verdict"] == "not measured"
    assert row["throughput_ratio"] == pytest.approx(0.5)
    assert row["recommendation"] == {
        "backend": "keras", "reason": "faster: 2x; accuracy not measured (no run report)"}


def test_equivalent_accuracy_and_equal_speed_recommends_either(rows):
    row = rows["c3w2_sarcasm_embed_gap", "aligned", "cpu"]
    assert row["task"] == "binary" and row["verdict"] == "equivalent"
    assert (row["throughput_ratio"], row["throughput_source"]) == (pytest.approx(0.99), "run")
    assert row["recommendation"]["backend"] == "either"
    assert row["recommendation"]["reason"].startswith("equal accuracy (within ±0.0100, Holm TOST p = ")
    assert row["recommendation"]["reason"].endswith(f"); {NO_SPEED_VERDICT}")


def test_zero_spread_runs_give_no_significance_verdict(rows):
    row = rows["c3w3_sarcasm_bilstm", "aligned", "cpu"]
    # every seed +0.03: the paired interval would collapse to [0.03, 0.03]; no test, no verdict, no Holm entry
    assert row["paired"]["status"] == "degenerate" and row["paired"]["ci95"] == [None, None]
    assert row["paired"]["p"] is None and row["holm"] is None
    assert row["verdict"] == "degenerate" and row["equivalence"]["p"] is None
    # The run reports say keras is 2x faster, but a run report gives no speed verdict (see the speed rule).
    assert row["recommendation"] == {
        "backend": "either",
        "reason": "accuracy comparison degenerate (all 3 differences equal +0.0300): no significance verdict; "
                  f"{NO_SPEED_VERDICT}"}


def test_inconclusive_says_so_with_the_seeds_needed(rows):
    row = rows["c1w2_mnist_dnn_callback", "aligned", "cpu"]
    assert row["paired"]["mean"] == pytest.approx(0.004)
    assert row["verdict"] == "inconclusive"
    needed = row["seeds_needed"]
    assert needed is not None and needed > 3
    assert row["recommendation"] == {
        "backend": "either",
        "reason": f"accuracy inconclusive (+0.0040 with 3 seeds; {needed} seeds would settle it); {NO_SPEED_VERDICT}"}


def test_regression_lower_mae_wins_even_against_a_faster_framework(rows):
    better = rows["c1w1_house_price", "aligned", "cpu"]
    worse = rows["c4w2_ts_dnn", "aligned", "cpu"]
    half = _paired_half([-0.100, -0.098, -0.102, -0.100], T_975_DF3)  # sd 0.0016330: half 0.0025985
    assert half == pytest.approx(0.0025985, abs=1e-7)
    assert better["metric"] == worse["metric"] == "mae"
    assert better["task"] == "regression"
    assert better["paired"]["ci95"] == pytest.approx([-0.1 - half, -0.1 + half], abs=1e-7)
    assert worse["paired"]["ci95"] == pytest.approx([0.1 - half, 0.1 + half], abs=1e-7)
    assert better["equivalence"]["margin"] == pytest.approx(0.05 * 0.515)  # 5% of the keras mean mae
    assert better["throughput_ratio"] == pytest.approx(1 / 3)  # bench: keras 3x faster, accuracy comes first
    assert (better["recommendation"]["backend"], worse["recommendation"]["backend"]) == ("lightning", "keras")
    assert better["recommendation"]["reason"].startswith("mae differs: -0.1000 [-0.1026, -0.0974] (paired, Holm p = ")
    assert better["recommendation"]["reason"].endswith("; mae: lower is better)")


def test_single_seed_is_not_a_statistical_comparison(rows):
    row = rows["c1w2_fmnist_dnn", "native", "cpu"]
    assert row["accuracy"]["keras"] == {"mean": 0.88, "std": None, "n": 1}
    assert row["diff_mean"] == pytest.approx(0.02)
    assert row["diff_ci95"] == [None, None] and row["welch_p"] is None
    assert row["verdict"] == "too few seeds"
    assert row["throughput_ratio"] == pytest.approx(0.5)
    assert row["recommendation"] == {"backend": "either",
                                     "reason": f"accuracy comparison not statistical (1 seed); {NO_SPEED_VERDICT}"}


def test_bench_without_a_run_has_memory_and_no_accuracy(rows):
    row = rows["c1w2_fmnist_dnn", "native", "gpu"]
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


def test_markdown_table_provenance_legend_and_sources(markdown, tree):
    assert markdown.startswith("# Parity summary\n")
    assert ("| c1w2_fmnist_dnn | aligned | cpu | P1 | multiclass | accuracy | 0.8800 ± 0.0016 (n=5) "
            "| 0.9000 ± 0.0016 (n=5) | +0.0200 [+0.0188, +0.0212] | 0.8 | +0.0200 [+0.0177, +0.0223] "
            "| different (±0.0100) |") in markdown
    assert "| 0.95 | run | n/a | step 37 of 100 | **lightning**: accuracy differs: +0.0200" in markdown
    assert "| 1.7 [1.62, 1.79] | bench (batch 32) | 812 / 905 (host RSS) | none in 100 steps | **lightning**: faster at " \
           "equal accuracy" in markdown
    assert ("| 0.8800 (n=1) | 0.9000 (n=1) | +0.0200 (no CI: 1 seed) | n/a | +0.0200 (no CI) | too few seeds | n/a "
            "| 0.5 | run |") in markdown
    assert "| +0.0300 (degenerate) | n/a | +0.0300 [" in markdown and "| degenerate | n/a |" in markdown
    assert "| c1w2_fmnist_dnn | native | gpu | P3 | multiclass | accuracy | n/a | n/a | n/a | n/a | n/a | n/a | n/a " \
           "| 1.05 | bench (batch 32) | 512 / 640 |" in markdown
    assert "- regression: lightning (c1w1_house_price aligned cpu); keras (c4w2_ts_dnn aligned cpu)" in markdown
    provenance_section = markdown.split("## Provenance\n")[1].split("## Legend")[0]
    assert "- P1 (`" in provenance_section and "synthetic stand-in" in provenance_section
    assert "gpu (NVIDIA H100 80GB HBM3)" in provenance_section
    legend = markdown.split("## Legend\n")[1]
    assert "margin accuracy ±0.01 absolute, mae ±5% of the keras mean" in legend
    assert "Holm's step-down correction across the table's tested rows" in legend
    assert "entirely outside [0.95, 1.053]" in legend
    sources = markdown.split("## Sources\n")[1]
    assert f"- `{tree / 'runs' / 'aligned' / 'c1w2_fmnist_dnn' / 'report.json'}`" in sources
    assert f"- `{tree / 'bench' / 'cpu' / 'bench.json'}`" in sources
    assert "c1w1_house_price-sgd-aligned" in sources
    for unused in ("c1w2_fmnist_dnn-sgd", "c1w1_house_price-adam", "staging", "notes.json"):
        assert unused not in sources


def test_margin_option_changes_the_verdict(tree):
    # c1w3_fmnist_cnn: the 90% interval of the differences is +-0.0015 wide (t(0.95, 4) * 0.000707): inside
    # +-0.01, outside +-0.001
    result = run_cli("report", str(tree / "runs"), "--json", "--margin", "accuracy=0.001", timeout=60)
    assert result.returncode == 0, result.stderr
    row = next(row for row in json.loads(result.stdout) if row["model"] == "c1w3_fmnist_cnn")
    assert row["equivalence"]["margin"] == 0.001 and row["equivalence"]["margin_rule"] == "0.001 absolute"
    assert row["verdict"] == "inconclusive"
    result = run_cli("report", str(tree / "runs"), "--margin", "mae=10%", timeout=60)
    assert result.returncode == 0, result.stderr
    assert "margin accuracy ±0.01 absolute, mae ±10% of the keras mean" in result.stdout
    bad = run_cli("report", str(tree / "runs"), "--margin", "loss=0.1", timeout=60)
    assert bad.returncode == 2 and "unknown metric 'loss'; use one of accuracy, mae" in bad.stderr


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
def test_bench_without_an_interval_is_material_when_windows_do_not_overlap(keras, lightning, material):
    bench = _bench_row("c1w3_fmnist_cnn", "cpu", keras, lightning)
    assert material_speed_difference(bench) is material


@pytest.mark.parametrize("ci95, material", [
    ((1.06, 1.10), True),     # entirely above 1/0.95 = 1.0526
    ((0.90, 0.94), True),     # entirely below 0.95
    ((1.02, 1.10), False),    # reaches into [0.95, 1.0526]
    ((0.93, 0.96), False),
    ((1.0526, 1.2), False),   # touches the band's edge
])
def test_bench_interval_decides_when_present_even_against_the_windows(ci95, material):
    # windows apart (1.03x, tight): the old rule would call it material; the interval overrides it
    bench = _bench_row("c1w3_fmnist_cnn", "cpu", (1000, 990, 1010), (1030, 1020, 1040), ci95=ci95)
    assert material_speed_difference(bench) is material


def test_a_run_report_alone_gives_no_speed_verdict_however_large_its_ratio(tmp_path):
    # The run trains Keras, then Lightning: a 1.6x ratio from it may be load that changed between the two.
    assert material_speed_difference(None) is False
    _write_run(tmp_path / "run", "c1w3_fmnist_cnn", "accuracy", [0.80, 0.81, 0.79], [0.80, 0.81, 0.79],
               (1000.0, 1600.0))
    (row,) = summarize([tmp_path], warn=lambda message: None)
    assert row["throughput_source"] == "run" and row["throughput_ratio"] == pytest.approx(1.6)
    assert row["speed_material"] is False and row["recommendation"]["backend"] == "either"
    assert row["recommendation"]["reason"].endswith(NO_SPEED_VERDICT)


def test_newer_run_report_supersedes_an_older_one_with_the_same_provenance(tmp_path):
    paths = {}
    for name, created, keras in (("a", "2025-06-01T10:00:00+00:00", [0.80, 0.81]),
                                 ("b", "2025-01-01T10:00:00+00:00", [0.70, 0.71])):
        report = _report("c1w3_fmnist_cnn", "accuracy", keras, [0.80, 0.81], (1000.0, 1000.0))
        report["created"] = created
        paths[name] = write_report(report, tmp_path / name) / "report.json"
    result = run_cli("report", str(tmp_path), "--json", timeout=60)
    assert result.returncode == 0, result.stderr
    (row,) = json.loads(result.stdout)
    assert result.stderr.splitlines() == [
        f"parity: warning: {paths['b']}: superseded by {paths['a']} (run of c1w3_fmnist_cnn, aligned, cpu, "
        f"provenance {row['provenance_key']})"]
    assert row["accuracy"]["keras"]["mean"] == pytest.approx(0.805)


def test_the_bench_row_with_the_recommended_input_pipeline_gives_the_speed(tmp_path):
    _write_run(tmp_path / "runs", "c1w3_fmnist_cnn", "accuracy", *FMNIST_CNN, (1000.0, 1000.0))
    single = _bench_row("c1w3_fmnist_cnn", "cpu", (1000, 950, 1040), (1500, 1450, 1560), ci95=(1.4, 1.6))
    recommended = _bench_row("c1w3_fmnist_cnn", "cpu", (2000, 1950, 2040), (2200, 2150, 2260), ci95=(1.06, 1.14))
    single["input"], recommended["input"] = "single_threaded", "recommended"
    _write_json(tmp_path / "bench" / "bench.json", [single, recommended])
    (row,) = summarize([tmp_path], warn=pytest.fail)
    assert (row["throughput_ratio"], row["bench_input"], row["throughput_ratio_ci95"]) == (1.1, "recommended", [1.06, 1.14])
    assert row["recommendation"]["reason"].endswith("): 1.1x [1.06, 1.14]")


def test_a_newer_synthetic_run_never_replaces_a_real_run(tmp_path):
    real = _report("c1w3_fmnist_cnn", "accuracy", *FMNIST_CNN, (1000.0, 1000.0), source="real", epochs=5)
    synthetic = _report("c1w3_fmnist_cnn", "accuracy", [0.5, 0.6], [0.9, 0.95], (1000.0, 1000.0))
    real["created"], synthetic["created"] = "2025-01-01T10:00:00+00:00", "2025-06-01T10:00:00+00:00"
    write_report(real, tmp_path / "real")
    write_report(synthetic, tmp_path / "synthetic")
    rows = summarize([tmp_path], warn=pytest.fail)
    assert sorted(row["provenance"].split(" ")[0] for row in rows) == ["real", "synthetic"]
    by_source = {row["provenance"].split(" ")[0]: row for row in rows}
    assert by_source["real"]["verdict"] == "equivalent" and by_source["real"]["accuracy"]["keras"]["n"] == 5
    assert by_source["synthetic"]["accuracy"]["keras"]["n"] == 2


def test_lockstep_without_a_matching_run_warns(tmp_path):
    _write_run(tmp_path, "c1w2_fmnist_dnn", "accuracy", [0.88], [0.88], (1000.0, 1000.0))
    other = _lockstep("c1w2_fmnist_dnn", 2, "adam", mode="native")
    partial = _write_json(tmp_path / "lockstep" / "x" / "lockstep.json", other)
    result = run_cli("report", str(tmp_path), "--json", timeout=60)
    assert result.returncode == 0, result.stderr
    settings = provenance.provenance_key(other, provenance.SETTING_FIELDS)
    assert result.stderr.splitlines() == [
        (f"parity: warning: {partial}: no run report or bench of c1w2_fmnist_dnn (native) with the same provenance "
         f"(settings {settings}); not shown")]
    assert json.loads(result.stdout)[0]["lockstep"] is None


def _row(verdict, mean=0.0, ci95=(-0.02, 0.02), margin=0.01, seeds_needed=None, n=3, note=None):
    """A summary row's accuracy statistics after Holm, as `recommend` reads them."""
    tested = verdict in ("equivalent", "different", "inconclusive")
    return {"verdict": verdict, "seeds_needed": seeds_needed,
            "paired": {"mean": mean, "ci95": list(ci95), "n": n, "note": note},
            "equivalence": {"margin": margin},
            "holm": {"m": 4, "p_difference": 0.003, "p_equivalence": 0.012} if tested else None}


@pytest.mark.parametrize("row, ratio, material, ci95, expected", [
    (_row("not measured"), None, False, None, ("either", "accuracy not measured (no run report); speed not measured")),
    (_row("not measured"), 0.5, True, None, ("keras", "faster: 2x; accuracy not measured (no run report)")),
    (_row("equivalent"), None, False, None,
     ("either", "equal accuracy (within ±0.0100, Holm TOST p = 0.012); speed not measured")),
    (_row("equivalent"), 1.02, False, None,
     ("either", "equal accuracy (within ±0.0100, Holm TOST p = 0.012); no material speed difference")),
    (_row("equivalent"), 0.8, True, (0.75, 0.85),
     ("keras", "faster at equal accuracy (within ±0.0100, Holm TOST p = 0.012): 1.25x [1.18, 1.33]")),
    (_row("inconclusive", mean=0.004, seeds_needed=23), 0.8, True, None,
     ("keras", "faster: 1.25x; accuracy inconclusive (+0.0040 with 3 seeds; 23 seeds would settle it)")),
    (_row("inconclusive", mean=0.009, seeds_needed=None), 1.0, False, None,
     ("either", "accuracy inconclusive (+0.0090 with 3 seeds; more than 10,000 seeds would be needed); "
                "no material speed difference")),
    (_row("different", mean=-0.03, ci95=(-0.04, -0.02)), 2.0, True, None,
     ("keras", "accuracy differs: -0.0300 [-0.0400, -0.0200] (paired, Holm p = 0.003)")),
])
def test_recommendation_reasons(row, ratio, material, ci95, expected):
    recommendation = recommend("accuracy", row, ratio, material, ci95)
    assert (recommendation["backend"], recommendation["reason"]) == expected


def test_a_constant_difference_is_never_significant():
    # the old rule counted an interval collapsed to [d, d] as significant; now it is `degenerate`, no verdict
    row = _row("degenerate", mean=-0.1, ci95=(None, None), note="all 3 differences equal -0.1000")
    for metric in ("mae", "accuracy"):
        recommendation = recommend(metric, row, 1.0, False)
        assert recommendation["backend"] == "either"
        assert recommendation["reason"] == (f"{metric} comparison degenerate (all 3 differences equal -0.1000): "
                                            "no significance verdict; no material speed difference")


def test_a_failed_or_partial_run_report_is_skipped_with_a_warning(tmp_path):
    _write_run(tmp_path / "done", "c1w3_fmnist_cnn", "accuracy", [0.80, 0.81, 0.79], [0.80, 0.82, 0.79], (1000.0, 900.0))
    partial = _write_run(tmp_path / "stopped", "c1w2_fmnist_dnn", "accuracy", [0.80, 0.81], [0.80, 0.82], (1.0, 1.0))
    report = json.loads(partial.read_text())
    report.update(status="partial", status_note="partial: stopped by Ctrl-C after seed 1")
    partial.write_text(json.dumps(report))
    warnings = []
    rows = summarize([tmp_path], warn=warnings.append)
    assert [row["model"] for row in rows] == ["c1w3_fmnist_cnn"]
    assert warnings == [f"{partial}: a partial run (partial: stopped by Ctrl-C after seed 1); skipped: run it again to "
                        "complete it"]


# Three frameworks, planted. c1w2_fmnist_dnn: keras-torch equals keras, lightning 0.03 less accurate (yet the fastest),
# keras-torch 0.6x keras' speed. c1w3_fmnist_cnn: all three equal, keras-torch the fastest. c1w2_mnist_dnn_callback
# (run only): keras-torch 0.02 more accurate than both.
DNN3 = {"keras": [0.878, 0.879, 0.880, 0.881, 0.882], "lightning": [0.848, 0.850, 0.849, 0.851, 0.852],
        "keras-torch": [0.8785, 0.8788, 0.8803, 0.8808, 0.8822]}
CNN3 = {"keras": [0.90, 0.91, 0.92, 0.905, 0.915], "lightning": [0.901, 0.909, 0.922, 0.905, 0.913],
        "keras-torch": [0.9005, 0.9095, 0.9205, 0.9045, 0.9155]}
CALLBACK3 = {"keras": [0.97, 0.975, 0.98, 0.972, 0.978], "lightning": [0.971, 0.974, 0.981, 0.972, 0.977],
             "keras-torch": [0.990, 0.996, 0.999, 0.992, 1.000]}


def _write_three(out_dir, model, finals):
    return _write_run(out_dir, model, "accuracy", finals["keras"], finals["lightning"], (2000.0, 2000.0),
                      keras_torch=(finals["keras-torch"], 2000.0))


@pytest.fixture(scope="module")
def three(tmp_path_factory):
    """Run reports of three frameworks for three models, a bench of two of them, and a two-framework run."""
    root = tmp_path_factory.mktemp("three")
    for model, finals in (("c1w2_fmnist_dnn", DNN3), ("c1w3_fmnist_cnn", CNN3), ("c1w2_mnist_dnn_callback", CALLBACK3)):
        _write_three(root / "runs", model, finals)
    _write_run(root / "two", "c1w3_sarcasm_bilstm", "accuracy", *SARCASM_GAP, (2000.0, 1980.0))
    _write_json(root / "bench" / "bench.json", [
        _bench_row("c1w2_fmnist_dnn", "cpu", (1000, 950, 1040), (1700, 1650, 1760), keras_torch=(600, 580, 620),
                   ratios={"lightning/keras": (1.62, 1.79), "keras-torch/keras": (0.57, 0.63),
                           "keras-torch/lightning": (0.33, 0.37)}),
        _bench_row("c1w3_fmnist_cnn", "cpu", (1000, 950, 1040), (1700, 1650, 1760), keras_torch=(2000, 1900, 2100),
                   ratios={"lightning/keras": (1.62, 1.79), "keras-torch/keras": (1.9, 2.1),
                           "keras-torch/lightning": (1.1, 1.25)}),
    ])
    lockstep = {**_lockstep("c1w3_fmnist_cnn", 12, "adam"), "provenance": _provenance("lockstep", frameworks=THREE),
                "pairs": {"lightning/keras": {"first_divergence_step": 12},
                          "keras-torch/keras": {"first_divergence_step": 5},
                          "keras-torch/lightning": {"first_divergence_step": None}}}
    _write_json(root / "lockstep" / "c1w3_fmnist_cnn-adam-aligned" / "lockstep.json", lockstep)
    warnings = []
    rows = summarize([root], warn=warnings.append)
    assert warnings == []
    return {row["model"]: row for row in rows}


def test_three_frameworks_have_every_pairs_statistics_against_a_hand_computation(three):
    row = three["c1w2_fmnist_dnn"]
    assert row["frameworks"] == list(THREE)
    assert list(row["pairs"]) == ["lightning/keras", "keras-torch/keras", "keras-torch/lightning"]
    assert row["accuracy"]["keras-torch"]["mean"] == pytest.approx(sum(DNN3["keras-torch"]) / 5, abs=1e-12)
    assert row["accuracy"]["keras-torch"]["n"] == 5
    for key, pair in row["pairs"].items():
        b, a = key.split("/")
        diffs = [y - x for x, y in zip(DNN3[a], DNN3[b])]
        mean, half = sum(diffs) / 5, _paired_half(diffs, T_975_DF4)
        assert pair["paired"]["mean"] == pytest.approx(mean, abs=1e-12)
        assert pair["paired"]["ci95"] == pytest.approx([mean - half, mean + half], abs=1e-7)
    # The top-level keys stay the lightning / keras comparison.
    assert row["paired"] == row["pairs"]["lightning/keras"]["paired"]
    assert row["verdict"] == row["pairs"]["lightning/keras"]["verdict"] == "different"
    assert row["throughput_ratio"] == pytest.approx(1.7)
    assert row["pairs"]["keras-torch/keras"]["throughput_ratio"] == pytest.approx(0.6)
    assert row["pairs"]["keras-torch/keras"]["throughput_ratio_ci95"] == [0.57, 0.63]
    assert row["pairs"]["keras-torch/keras"]["speed_material"] is True
    # Holm over every tested pair of every row: 3 models x 3 pairs, and the two-framework run's one pair.
    assert {pair["holm"]["m"] for row in three.values() for pair in row.get("pairs", {}).values()} == {10}
    assert three["c1w3_sarcasm_bilstm"]["holm"]["m"] == 10


def test_three_frameworks_recommend_the_best_and_never_the_slower_or_less_accurate(three):
    dnn = three["c1w2_fmnist_dnn"]["recommendation"]
    # lightning is the fastest but significantly less accurate; keras-torch is as accurate as keras but slower.
    assert dnn["backend"] == "keras"
    assert dnn["reason"].startswith("faster at equal accuracy (keras-torch - keras within ±0.0100, Holm TOST p = ")
    assert "keras over keras-torch 1.67x [1.59, 1.75]; less accurate: lightning (accuracy differs: lightning - keras " \
        "-0.0300 [" in dnn["reason"]
    cnn = three["c1w3_fmnist_cnn"]["recommendation"]
    assert cnn["backend"] == "keras-torch"
    assert cnn["reason"].startswith("faster at equal accuracy (every pair within ±0.0100, Holm TOST p <= ")
    assert cnn["reason"].endswith("lightning over keras 1.7x [1.62, 1.79]; keras-torch over keras 2x [1.9, 2.1]; "
                                  "keras-torch over lightning 1.18x [1.1, 1.25]")
    callback = three["c1w2_mnist_dnn_callback"]["recommendation"]
    assert callback["backend"] == "keras-torch"  # significantly more accurate than both: accuracy decides
    assert callback["reason"].startswith("accuracy differs: keras-torch - keras +0.0204 [")
    # The two-framework row keeps today's keys and its recommendation
    two = three["c1w3_sarcasm_bilstm"]
    assert "pairs" not in two and "frameworks" not in two and two["recommendation"]["backend"] == "either"


def test_three_framework_recommendation_rules():
    def pair(verdict, mean=0.0, ratio=None, material=False, ci95=None):
        return {**_row(verdict, mean=mean, ci95=(mean - 0.005, mean + 0.005)), "throughput_ratio": ratio,
                "throughput_ratio_ci95": ci95, "throughput_source": "bench" if ratio else None,
                "speed_material": material}

    equal_speed = {"lightning/keras": pair("equivalent", ratio=1.0),
                   "keras-torch/keras": pair("equivalent", ratio=1.01),
                   "keras-torch/lightning": pair("equivalent", ratio=1.01)}
    assert recommend_among("accuracy", THREE, equal_speed)["backend"] == "either"
    # keras-torch materially slower than both: the other two are named together
    slower = {**equal_speed, "keras-torch/keras": pair("equivalent", ratio=0.5, material=True, ci95=(0.45, 0.55)),
              "keras-torch/lightning": pair("equivalent", ratio=0.5, material=True, ci95=(0.45, 0.55))}
    result = recommend_among("accuracy", THREE, slower)
    assert result["backend"] == "keras or lightning"
    assert result["reason"] == ("faster at equal accuracy (every pair within ±0.0100, Holm TOST p <= 0.012): "
                                "keras over keras-torch 2x [1.82, 2.22]; lightning over keras-torch 2x [1.82, 2.22]")
    # mae, lower is better: keras-torch's higher mae puts it out although it is the fastest
    mae = {"lightning/keras": pair("inconclusive", mean=0.001),
           "keras-torch/keras": pair("different", mean=0.1, ratio=3.0, material=True),
           "keras-torch/lightning": pair("different", mean=0.1, ratio=3.0, material=True)}
    result = recommend_among("mae", THREE, mae)
    assert result["backend"] == "keras or lightning"
    assert "less accurate: keras-torch (mae differs:" in result["reason"]


def test_three_framework_markdown_has_a_column_per_framework_and_a_table_of_pairs(three, tmp_path):
    rows = list(three.values())
    markdown, page, *plots = write_summary(rows, None, tmp_path / "summary.md")
    text = markdown.read_text()
    assert ("| Model | Mode | Device | Prov. | Task | Metric | Keras | Lightning | Keras-torch "
            "| Peak mem MB K / L / KT | Lockstep | Recommendation |") in text
    assert "## Pairs" in text and "| c1w2_fmnist_dnn | aligned | cpu | P1 | keras-torch/keras | " in text
    cnn_pairs = [line for line in text.splitlines() if line.startswith("| c1w3_fmnist_cnn | aligned | cpu | P1 | ")
                 and "/" in line.split(" | ")[4]]
    assert [line.rsplit(" | ", 1)[1] for line in cnn_pairs] == ["step 12 of 100 |", "step 5 of 100 |",
                                                                "none in 100 steps |"]
    # the two-framework row: n/a for keras-torch, and its one pair in the table of pairs
    assert "| c1w3_sarcasm_bilstm | aligned | cpu | P2 | lightning/keras | " in text
    assert [path.name for path in plots] == ["summary-accuracy.png", "summary-speed.png"]
    assert "Accuracy (MAE) difference b - a per row and pair" in text
    assert page.read_text().count("<img") == 2
