"""`parity bench`: the window protocol and its statistics, the rows and tables, the CLI and its errors."""

import json
import shutil

import numpy as np
import pytest
from cli_helpers import run_cli

from parity import bench
from parity.errors import ParityError
from parity.plan import BatchPlan

ROW_KEYS = {"model", "device", "variant", "batch_size", "scope", "trainer", "frameworks", "throughput_ratio",
            "trainer_vs_plain", "trainer_vs_plain_cpu", "settings", "environment"}
FRAMEWORK_KEYS = {"samples_per_s", "steps_per_s", "cpu_ms_per_step", "peak_mem_mb", "host_rss_mb", "warmup_s",
                  "windows"}
SETTINGS_KEYS = {"mode", "tf32", "determinism", "threads", "precision", "compile", "data", "load_average",
                 "malloc"}


def test_summary_is_median_min_max_of_the_windows():
    assert bench.summarize([3.0, 1.0, 2.0, 10.0]) == {"median": 2.5, "min": 1.0, "max": 10.0}
    assert bench.summarize([1200.0, 900.0, 1000.0]) == {"median": 1000.0, "min": 900.0, "max": 1200.0}
    with pytest.raises(ValueError):
        bench.summarize([])


def test_rates_divide_samples_and_steps_by_window_seconds():
    per_window = bench.rates([0.5, 0.25, 0.4], [64, 64, 60], steps=2)
    assert per_window["samples_per_s"] == pytest.approx([128.0, 256.0, 150.0])
    assert per_window["steps_per_s"] == pytest.approx([4.0, 8.0, 5.0])
    with pytest.raises(ValueError):
        bench.rates([0.5, 0.0, 0.4], [64, 64, 64], steps=2)


def test_clock_marks_the_warmup_and_every_window_boundary():
    clock = bench.Clock(steps=2, windows=3)
    clock.start()
    boundaries = [clock.step() for _ in range(clock.total_steps)]
    assert clock.total_steps == 8
    assert boundaries == [False, True] * 4
    assert len(clock.cpu_marks) == 1
    clock.marks = [10.0, 11.5, 12.0, 12.6, 13.0]
    clock.cpu_marks = [1.0, 2.0, 2.4, 2.9, 3.2]
    result = clock.result()
    assert result["warmup_s"] == pytest.approx(1.5)
    assert result["window_s"] == pytest.approx([0.5, 0.6, 0.4])
    assert result["window_cpu_s"] == pytest.approx([0.4, 0.5, 0.3])
    clock.marks = clock.marks[:-1]
    with pytest.raises(RuntimeError, match="expected 5 clock marks"):
        clock.result()


def test_end_to_end_windows_count_the_short_last_batch_of_an_epoch():
    plan = BatchPlan(100, 32, seed=0)  # batches 32, 32, 32, 4 per epoch
    assert bench.stream_lengths(plan, 8).tolist() == [32, 32, 32, 4, 32, 32, 32, 4]
    assert bench.stream_epochs(plan, 8) == 2 and bench.stream_epochs(plan, 9) == 3
    # warm-up = steps 0-1, then windows of 2 steps: (32 + 4), (32 + 32), (32 + 4)
    assert bench.window_samples("end_to_end", plan, steps=2, windows=3).tolist() == [36, 64, 36]
    assert bench.window_samples("compute", plan, steps=2, windows=3).tolist() == [64, 64, 64]


def test_staged_batches_are_the_plans_first_full_batches():
    plan = bench.bench_plan(100, 32)
    staged = bench.staged_indices(plan)
    assert staged.shape == (3, 32)
    np.testing.assert_array_equal(staged, np.stack(plan.epoch_batches(0)[:3]))
    with pytest.raises(ParityError, match="larger than the 100 training samples"):
        bench.bench_plan(100, 101)


def _measured(model, scope, trainer, window_s, warmup_s=2.0):
    return {"model": model, "variant": "eager", "scope": scope, "trainer": trainer, "batch_size": 10,
            "warmup_s": warmup_s, "window_s": window_s, "window_cpu_s": [seconds / 2 for seconds in window_s],
            "gpu_peak_mb": None, "host_rss_mb": 500.0, "host_rss_start_mb": 400.0,
            "load_average": [0.5, 0.6], "settings": {}, "repeat": 0}


def _answer(framework, seconds):
    """Window seconds per (scope, trainer) -> a worker's answer."""
    measurements = [_measured("c1w2_fmnist_dnn", scope, trainer, window_s)
                    for (scope, trainer), window_s in seconds.items()]
    versions = {"tensorflow": "2.21.0", "keras": "3.x"} if framework == "keras" else {"torch": "2.14.1",
                                                                                      "lightning": "2.6"}
    process = {"tf32": False, "determinism": False, "threads": {"intra_op": 1, "inter_op": 1},
               "cudnn_autotune": True, "cudnn_benchmark": True}
    return {"device": "cpu (x86_64, 1 threads)", "versions": versions, "settings": process,
            "measurements": measurements}


def test_rows_hold_ratios_of_medians_between_frameworks_and_trainers():
    options = bench.BenchOptions(scopes=("compute",), steps=2, windows=3)
    keras = _answer("keras", {("compute", "framework"): [0.1, 0.2, 0.4], ("compute", "plain"): [0.1, 0.1, 0.1]})
    lightning = _answer("lightning", {("compute", "framework"): [0.4, 0.4, 0.5],
                                      ("compute", "plain"): [0.2, 0.25, 0.2]})
    context = {"options": options, "started": "now", "command": "parity bench c1w2_fmnist_dnn", "env": {},
               "load_average": {"start": [1.0, 1.0, 1.0], "end": [1.5, 1.0, 1.0]},
               "data": {"c1w2_fmnist_dnn": {"source": "synthetic", "location": "generated", "train_size": 100,
                                            "staged_batches": 3}}}
    case = {"model": "c1w2_fmnist_dnn", "variant": "eager", "scope": "compute", "batch_size": 10}
    framework_row, plain_row = bench.build_rows([case], {"keras": keras, "lightning": lightning}, context)
    # 2 steps x 10 samples per window: keras fit 200, 100, 50 samples/s; lightning Trainer 50, 50, 40
    assert framework_row["frameworks"]["keras"]["samples_per_s"] == {"median": 100.0, "min": 50.0, "max": 200.0}
    assert framework_row["frameworks"]["keras"]["steps_per_s"] == {"median": 10.0, "min": 5.0, "max": 20.0}
    assert framework_row["frameworks"]["lightning"]["samples_per_s"]["median"] == pytest.approx(50.0)
    assert framework_row["throughput_ratio"] == pytest.approx(0.5)
    assert plain_row["throughput_ratio"] == pytest.approx(100.0 / 200.0)
    assert framework_row["trainer_vs_plain"] == pytest.approx({"keras": 0.5, "lightning": 0.5})
    # CPU half the wall time per window: keras fit 50 ms per step (median of 25, 50, 100), plain 25 ms
    assert framework_row["frameworks"]["keras"]["cpu_ms_per_step"] == pytest.approx(
        {"median": 50.0, "min": 25.0, "max": 100.0})
    assert framework_row["trainer_vs_plain_cpu"] == pytest.approx({"keras": 0.5, "lightning": 0.5})
    assert framework_row["frameworks"]["keras"]["peak_mem_mb"] == 500.0
    text = bench.render_markdown([framework_row, plain_row])
    assert "| c1w2_fmnist_dnn | cpu | compute | fit / Trainer | eager | 10 | 100 [50-200] | 50 [40-50] | 0.50 |" in text


def test_markdown_replaces_only_the_generated_block(tmp_path):
    doc = tmp_path / "benchmarks.md"
    doc.write_text(f"# Benchmarks\n\nProse before.\n\n{bench.MARKDOWN_BEGIN}\nold numbers\n{bench.MARKDOWN_END}\n\n"
                   "Prose after.\n")
    bench.write_markdown([], doc)
    text = doc.read_text()
    assert text.startswith("# Benchmarks\n\nProse before.\n\n") and text.endswith("Prose after.\n")
    assert "old numbers" not in text and "No measurements." in text
    assert [path.name for path in tmp_path.iterdir()] == ["benchmarks.md"]  # no temporary file left


@pytest.mark.parametrize("options, message", [
    (bench.BenchOptions(variants=("eager", "turbo")), "unknown variant 'turbo'"),
    (bench.BenchOptions(windows=2), "at least 3 timed windows"),
    (bench.BenchOptions(variants=("mixed_float16",), device="cpu"), "mixed_float16 needs a GPU"),
    (bench.BenchOptions(mode="loose"), "unknown mode 'loose'"),
])
def test_options_that_cannot_be_measured_are_refused(options, message):
    with pytest.raises(ParityError, match=message):
        bench.check_options(options)


def test_bench_leaves_tf32_and_determinism_to_itself_in_both_modes():
    for mode in ("aligned", "native"):
        alignment = bench.bench_alignment(mode)
        assert not alignment.is_aligned("tf32") and not alignment.is_aligned("determinism")
    assert bench.bench_alignment("aligned").is_aligned("adam_epsilon_placement")


def test_tuned_malloc_adds_fixed_thresholds_to_the_workers_glibc_tunables(monkeypatch):
    monkeypatch.delenv("GLIBC_TUNABLES", raising=False)
    assert bench.worker_environment("glibc") == {}
    assert bench.worker_environment("tuned") == {"GLIBC_TUNABLES": bench.MALLOC_TUNABLES}
    monkeypatch.setenv("GLIBC_TUNABLES", "glibc.malloc.arena_max=2")
    assert bench.worker_environment("tuned")["GLIBC_TUNABLES"] == f"glibc.malloc.arena_max=2:{bench.MALLOC_TUNABLES}"


@pytest.mark.parametrize("args, message", [
    (["--variant", "turbo"], "unknown variant 'turbo'; known variants: eager, compiled"),
    (["--variant", "mixed_float16"], "variant mixed_float16 needs a GPU"),
    (["--windows", "2"], "a median needs at least 3 timed windows"),
    (["--batch-size", "5000"], "--batch-size 5000 is larger than the 1200 training samples"),
])
def test_bench_errors_are_one_line_with_exit_2(args, message):
    result = run_cli("bench", "c1w2_fmnist_dnn", "--synthetic", "--device", "cpu", "--threads", "1", *args)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("parity: error: ") and message in lines[0]


@pytest.mark.skipif(shutil.which("nvidia-smi") is not None, reason="this machine may have a GPU")
def test_bench_on_gpu_without_one_names_the_framework():
    result = run_cli("bench", "c1w2_fmnist_dnn", "--synthetic", "--device", "gpu", "--threads", "1", "--json")
    assert result.returncode == 2
    assert "--device gpu: TensorFlow sees no GPU" in result.stderr.strip().splitlines()[-1]
    assert result.stdout == ""


def test_bench_cli_smoke_measures_both_frameworks_on_cpu(tmp_path):
    result = run_cli("bench", "c1w2_fmnist_dnn", "c1w3_fmnist_cnn", "--device", "cpu", "--threads", "1",
                     "--synthetic", "--steps", "2", "--windows", "3", "--json", "--out", str(tmp_path))
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    assert rows == json.loads((tmp_path / "bench.json").read_text())
    assert bench.MARKDOWN_BEGIN in (tmp_path / "bench.md").read_text()
    assert [(row["model"], row["scope"], row["trainer"]) for row in rows] == [
        (model, scope, trainer) for model in ("c1w2_fmnist_dnn", "c1w3_fmnist_cnn")
        for scope in ("compute", "end_to_end") for trainer in ("framework", "plain")]
    for row in rows:
        assert ROW_KEYS <= row.keys() and SETTINGS_KEYS <= row["settings"].keys()
        assert (row["device"], row["variant"], row["batch_size"]) == ("cpu", "eager", 32)
        assert row["settings"]["threads"]["keras"]["intra_op"] == row["settings"]["threads"]["lightning"]["intra_op"] == 1
        assert row["settings"]["data"]["source"] == "synthetic"
        medians = {}
        for framework, entry in row["frameworks"].items():
            assert FRAMEWORK_KEYS <= entry.keys()
            assert len(entry["windows"]) == 3 and all(value > 0 for value in entry["windows"])
            assert 0 < entry["samples_per_s"]["min"] <= entry["samples_per_s"]["median"] <= entry["samples_per_s"]["max"]
            assert entry["steps_per_s"]["median"] > 0 and entry["warmup_s"] > 0 and entry["host_rss_mb"] > 0
            medians[framework] = entry["samples_per_s"]["median"]
        assert row["throughput_ratio"] == pytest.approx(medians["lightning"] / medians["keras"])


@pytest.mark.slow
def test_compiled_and_bfloat16_variants_run_both_models_in_one_worker():
    result = run_cli("bench", "c1w2_fmnist_dnn", "c1w3_fmnist_cnn", "--device", "cpu", "--threads", "1",
                     "--synthetic", "--steps", "2", "--windows", "3", "--scope", "compute",
                     "--variant", "compiled", "mixed_bfloat16", "--json")
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    assert {(row["model"], row["variant"]) for row in rows} == {
        (model, variant) for model in ("c1w2_fmnist_dnn", "c1w3_fmnist_cnn") for variant in ("compiled", "mixed_bfloat16")}
    for row in rows:
        keras, lightning = row["frameworks"]["keras"]["settings"], row["frameworks"]["lightning"]["settings"]
        if row["variant"] == "compiled":
            assert keras["jit_compile"] is True and lightning["torch_compile"] == "dynamic=False"
        else:
            assert keras["dtype_policy"] == "mixed_bfloat16" and lightning["precision"] == "bf16-mixed"
        assert row["frameworks"]["lightning"]["samples_per_s"]["median"] > 0
