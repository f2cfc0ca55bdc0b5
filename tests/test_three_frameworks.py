"""`parity check` and `parity run` over any set of frameworks (`--frameworks`, issue 15): every pair compared, jobs
in parity.jobs.run_order, the report's pairs, tables and schema.

The flows run against tests/fake_frameworks_worker.py, which plays keras, lightning and keras-torch without a
framework (seconds, not minutes); the report is built from fabricated histories whose statistics are recomputed
here with scipy. The real three-worker check (`parity check ... --frameworks keras,lightning,keras-torch`) is the
slow test at the end, run once keras_torch/worker.py exists.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import jsonschema
import numpy as np
import pytest
from scipy import stats

from cli_helpers import REPO, run_cli
from parity import cli, jobs, provenance, runner
from parity.align import ALIGNED
from parity.catalog import get_spec
from parity.provenance import describe_provenance, provenance_key
from parity.report import build_report, render_markdown, validate_report, write_report
from parity.weights import load_keras_layers, save_keras_layers

TESTS = Path(__file__).resolve().parent
MODEL = "c1w1_hello_linear"  # inline data: 6 probe inputs, no download
ALL = jobs.ALL_FRAMEWORKS
PAIRS = ["lightning/keras", "keras-torch/keras", "keras-torch/lightning"]


@pytest.fixture
def fake_frameworks(monkeypatch):
    """Every framework's worker is tests/fake_frameworks_worker.py (the job's `framework` says which it plays)."""
    for framework in ALL:
        monkeypatch.setitem(jobs.WORKER_MODULES, framework, "fake_frameworks_worker")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(TESTS), str(REPO)]))
    monkeypatch.delenv("FAKE_PLANT", raising=False)
    monkeypatch.delenv("FAKE_DIE", raising=False)
    return monkeypatch


# ---------------------------------------------------------------------------- parity check


def test_check_compares_every_pair_in_both_modes_with_the_weights_source_first(fake_frameworks):
    rows = runner.check_models([MODEL], frameworks=ALL)
    # A worker that is not the weights source fails without the source's export: every job went in run order.
    assert [(row["pair"], row["mode"]) for row in rows] == [(pair, mode) for pair in PAIRS
                                                           for mode in ("inference", "training")]
    assert all(row["passed"] and row["model"] == MODEL and row["seed"] == runner.CHECK_SEED for row in rows)
    # Outputs near tanh(3) ~ 0.995: the pairs differ by their rounding factors only, 1.2e-7 to 3.6e-7 relative.
    inference = {row["pair"]: row["max_abs_diff"] for row in rows if row["mode"] == "inference"}
    assert inference["keras-torch/lightning"] > inference["lightning/keras"] > inference["keras-torch/keras"] > 0
    assert max(inference.values()) < 4e-7 and all(row["tolerance"] == 1e-5 for row in rows)
    # The transfer's counts describe the Lightning model's load: only pairs with lightning carry them.
    assert [("transfer" in row) for row in rows] == [True, True, False, False, True, True]


def test_keras_torch_is_the_weights_source_without_keras(fake_frameworks):
    assert jobs.run_order(("lightning", "keras-torch")) == ("keras-torch", "lightning")
    rows = runner.check_models([MODEL], frameworks=("lightning", "keras-torch"))
    assert [row["pair"] for row in rows] == ["keras-torch/lightning"] * 2 and all(row["passed"] for row in rows)


def test_a_planted_error_in_one_framework_fails_exactly_its_pairs(fake_frameworks, capsys):
    fake_frameworks.setenv("FAKE_PLANT", "keras-torch=1e-4")  # 10x the tolerance at these outputs (~1)
    code = cli.main(["check", MODEL, "--frameworks", "keras,lightning,keras-torch", "--threads", "1",
                     "--device", "cpu"])
    lines = capsys.readouterr().out.splitlines()
    assert code == 1
    verdicts = {(line.split()[2], line.split()[3]): line.split()[0] for line in lines}
    assert verdicts == {(pair, mode): "ok" if pair == "lightning/keras" else "FAIL"
                        for pair in PAIRS for mode in ("inference", "training")}
    assert lines[0].startswith(f"ok   {MODEL:30} lightning/keras       inference max abs diff ")


# ---------------------------------------------------------------------------- parity run


def _options(tmp_path: Path, frameworks=ALL, seeds: int = 2) -> runner.RunOptions:
    return runner.RunOptions(epochs=2, seeds=seeds, out_dir=tmp_path, verbose=0, frameworks=frameworks)


def test_run_trains_every_framework_and_reports_every_pair(fake_frameworks, tmp_path):
    final = runner.run_model(MODEL, _options(tmp_path))
    report = json.loads((final / "report.json").read_text())
    validate_report(report)
    assert list(report["frameworks"]) == list(ALL)
    assert all(block["status"] == "complete" and len(block["runs"]) == 2 for block in report["frameworks"].values())
    comparison = report["comparison"]
    assert comparison["frameworks_compared"] == list(ALL) and comparison["primary_pair"] == "lightning/keras"
    assert list(comparison["pairs"]) == PAIRS
    # Throughput ratios b / a of the fake's rates (1000, 1500, 1200 samples/s).
    ratios = {key: block["throughput_ratio"] for key, block in comparison["pairs"].items()}
    assert ratios == pytest.approx({"lightning/keras": 1.5, "keras-torch/keras": 1.2, "keras-torch/lightning": 0.8})
    assert comparison["throughput_ratio"] == pytest.approx(1.5)
    # Final val_mae: keras 0.50 + 0.01 s, keras-torch 0.51 + 0.01 s, lightning 0.52 + 0.01 s (+ 0.003 at seed 1).
    pair = comparison["pairs"]["keras-torch/keras"]["final_val"]
    assert pair["keras"]["values"] == pytest.approx([0.50, 0.51]) and pair["paired"]["diffs"] == pytest.approx([0.01] * 2)
    assert comparison["final_val"] == comparison["pairs"]["lightning/keras"]["final_val"]
    forward = comparison["pairs"]["keras-torch/keras"]["forward_max_abs_diff"]
    assert 0 < forward < 4e-7 and report["provenance"]["device"].keys() == set(ALL)
    assert report["environment"]["keras-torch"] == "keras 3.fake, torch 2.fake, Keras backend torch"
    assert report["environment"]["device"].count("; ") == 2
    markdown = (final / "report.md").read_text()
    assert "| keras-torch | 2 |" in markdown and "### keras-torch vs lightning" in markdown
    # SGD on a mean squared error, aligned: no difference in force between any two (c1w1 meets no TensorFlow form).
    assert all(block["differences"] == [] for block in comparison["pairs"].values())


def test_a_framework_that_fails_keeps_its_finished_seeds_and_the_others_runs(fake_frameworks, tmp_path):
    fake_frameworks.setenv("FAKE_DIE", "keras-torch=1")  # last in run order: keras and lightning have finished
    with pytest.raises(runner.RunFailed, match=r"the keras-torch worker failed while training .* seed 1 .*keras: "
                                               r"seeds 0, 1; lightning: seeds 0, 1; keras-torch: seed 0"):
        runner.run_model(MODEL, _options(tmp_path))
    report = json.loads((tmp_path / MODEL / "report.json").read_text())
    validate_report(report)
    assert report["status"] == "failed"
    assert {fw: (block["status"], len(block["runs"])) for fw, block in report["frameworks"].items()} == {
        "keras": ("complete", 2), "lightning": ("complete", 2), "keras-torch": ("failed", 1)}
    assert report["comparison"]["pairs"]["keras-torch/keras"]["final_val"]["paired"]["n"] == 1


def test_a_default_run_writes_todays_report_shape(fake_frameworks, tmp_path):
    final = runner.run_model(MODEL, _options(tmp_path, frameworks=jobs.FRAMEWORKS, seeds=1))
    report = json.loads((final / "report.json").read_text())
    assert list(report["frameworks"]) == ["keras", "lightning"]
    assert list(report["comparison"]) == ["forward_max_abs_diff", "forward_check", "metric", "final_val",
                                          "throughput_ratio", "left_out", "divergence"]
    assert [list(row) for row in report["comparison"]["forward_check"]] == [
        ["model", "mode", "max_abs_diff", "tolerance", "passed", "output_shape", "seed", "transfer"],
        ["model", "mode", "max_abs_diff", "tolerance", "passed", "output_shape", "moving_statistics_max_abs_diff",
         "seed", "transfer"]]  # today's rows: no pair
    assert "keras-torch" not in report["environment"] and list(report["provenance"]["device"]) == ["keras", "lightning"]
    assert report["environment"]["device"].startswith("keras: cpu") and "; lightning: cpu" in report["environment"]["device"]


# ---------------------------------------------------------------------------- the report, from fabricated results


FINALS = {"keras": [0.861, 0.874, 0.880, 0.869], "lightning": [0.866, 0.871, 0.889, 0.872],
          "keras-torch": [0.858, 0.879, 0.884, 0.870]}
RATES = {"keras": [2000.0, 2100.0, 1900.0, 2050.0], "lightning": [1500.0, 1550.0, 1450.0, 1600.0],
         "keras-torch": [1800.0, 1700.0, 1750.0, 1900.0]}


def _results(frameworks=ALL) -> dict:
    def run(fw: str, seed: int) -> dict:
        final = FINALS[fw][seed]
        return {"seed": seed, "history": {"loss": [0.5, 0.4], "val_loss": [0.6, 0.5], "accuracy": [0.8, 0.85],
                                          "val_accuracy": [final - 0.02, final]},
                "step_loss": [0.5, 0.4], "train_samples_per_s": RATES[fw][seed], "wall_s": 1.0, "epochs_run": 2,
                "stopped_early": False}

    return {"model": "c1w2_fmnist_dnn", "mode": "aligned", "seeds": [0, 1, 2, 3],
            "dataset": {"id": "fashion-mnist", "source": "synthetic", "train_size": 600, "val_size": 100},
            "frameworks": {fw: {"params": 101_770, "runs": [run(fw, seed) for seed in range(4)]} for fw in frameworks},
            "forward_max_abs_diff": 3e-7,
            "forward_check": [{"model": "c1w2_fmnist_dnn", "pair": key, "mode": "inference", "max_abs_diff": diff,
                               "tolerance": 1e-5, "passed": True, "seed": 0}
                              for key, diff in zip(PAIRS, (3e-7, 2e-7, 4e-7))],
            "environment": {"python": "3.11", "tensorflow": "2.21", "keras": "3.12", "torch": "2.9",
                            "lightning": "2.6", "device": "cpu", "keras-torch": "keras 3.12, torch 2.9, Keras backend torch"},
            "spec": {"metric": "accuracy", "title": "Fashion-MNIST MLP"}}


@pytest.mark.parametrize("pair", [("keras", "lightning"), ("keras", "keras-torch"), ("lightning", "keras-torch")])
def test_each_pairs_statistics_match_scipy(pair):
    report = build_report(_results())
    validate_report(report)
    a, b = pair
    block = report["comparison"]["pairs"][f"{b}/{a}"]
    final = block["final_val"]
    diffs = np.array(FINALS[b]) - np.array(FINALS[a])
    half = stats.t.ppf(0.975, len(diffs) - 1) * diffs.std(ddof=1) / math.sqrt(len(diffs))
    assert final["paired"]["diffs"] == pytest.approx(diffs.tolist())
    assert final["paired"]["ci95"] == pytest.approx([diffs.mean() - half, diffs.mean() + half], rel=1e-9)
    welch = stats.ttest_ind(FINALS[b], FINALS[a], equal_var=False)
    assert final["diff_ci95"] == pytest.approx(list(welch.confidence_interval(0.95)), rel=1e-9)
    assert final["welch_p"] == pytest.approx(welch.pvalue, rel=1e-9)
    assert {fw: final[fw]["mean"] for fw in pair} == pytest.approx({fw: np.mean(FINALS[fw]) for fw in pair})
    assert final[a]["std"] == pytest.approx(np.std(FINALS[a], ddof=1))
    assert block["throughput_ratio"] == pytest.approx(np.median(RATES[b]) / np.median(RATES[a]))
    assert block["forward_max_abs_diff"] == {"lightning/keras": 3e-7, "keras-torch/keras": 2e-7,
                                             "keras-torch/lightning": 4e-7}[f"{b}/{a}"]


def test_the_top_level_comparison_is_the_keras_lightning_pair_when_both_ran_else_the_first_pair():
    three = build_report(_results())["comparison"]
    assert three["final_val"] == three["pairs"]["lightning/keras"]["final_val"]
    assert three["throughput_ratio"] == three["pairs"]["lightning/keras"]["throughput_ratio"]
    two = build_report(_results(("keras", "keras-torch")))
    validate_report(two)
    assert two["comparison"]["primary_pair"] == "keras-torch/keras" and list(two["comparison"]["pairs"]) == \
        ["keras-torch/keras"]
    assert set(two["comparison"]["final_val"]) >= {"keras", "keras-torch"}
    assert two["comparison"]["final_val"]["equivalence"]["margin_rule"] == "0.01 absolute"


def test_the_markdown_has_a_row_per_framework_a_pairs_table_and_each_pairs_lines(tmp_path):
    report = build_report(_results())
    markdown = render_markdown(report)
    rows = [line for line in markdown.splitlines() if line.startswith(("| keras ", "| lightning ", "| keras-torch "))]
    assert [row.split(" | ")[0] for row in rows] == ["| keras", "| lightning", "| keras-torch"]
    assert "| keras-torch | 101,770 | 0.8728 ± 0.0114 |" in markdown  # mean and sd (ddof 1) of its four finals
    table = [line for line in markdown.splitlines() if line.startswith(tuple(f"| {key} " for key in PAIRS))]
    assert [line.split(" | ")[0][2:] for line in table] == PAIRS
    assert "| keras-torch/keras | 2e-07 | +0.0018 | [-0.0040, +0.0075] | equivalent | 0.877 |" in table
    for key in PAIRS:
        b, a = key.split("/")
        assert f"- Final val accuracy, {b} - {a}:" in markdown and f"- Throughput ratio {b} / {a} " in markdown
    final = write_report(report, tmp_path)  # curves.png: a line per framework, keras-torch in its colour
    assert (final / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_each_pair_states_the_differences_in_force_the_runtime_forms_parting_keras_torch_even_aligned():
    from parity.explain import tensorflow_runtime_forms

    # The sarcasm model (Adam, an embedding, sigmoid probabilities into the loss) meets both TensorFlow forms; the
    # linear model (SGD, MSE) neither.
    forms = tensorflow_runtime_forms(get_spec("c3w2_sarcasm_embed_gap"))
    assert forms == ["embedding_sparse_gradient", "crossentropy_on_probabilities"]
    assert tensorflow_runtime_forms(get_spec(MODEL)) == []
    aligned = build_report({**_results(), "native_differences": [], "tensorflow_runtime_forms": forms})
    validate_report(aligned)
    in_force = {key: block["differences"] for key, block in aligned["comparison"]["pairs"].items()}
    assert in_force == {"lightning/keras": [], "keras-torch/keras": forms, "keras-torch/lightning": forms}
    markdown = render_markdown(aligned)
    assert "- Differences in force between the two: none, every difference is aligned between them" in markdown
    assert ("- Differences in force between the two: embedding_sparse_gradient (runtime), "
            "crossentropy_on_probabilities (runtime) (docs/differences.md)") in markdown
    # Lightning left native computes torch's forms as Keras on torch does: between those two they are not in force.
    native = build_report({**_results(), "native_differences": ["adam_epsilon_value", *forms],
                           "tensorflow_runtime_forms": forms})["comparison"]["pairs"]
    assert native["keras-torch/lightning"]["differences"] == ["adam_epsilon_value"]
    assert native["lightning/keras"]["differences"] == ["embedding_sparse_gradient", "adam_epsilon_value",
                                                        "crossentropy_on_probabilities"]
    assert "differences" not in build_report(_results(jobs.FRAMEWORKS))["comparison"]  # today's shape


def test_the_schema_holds_each_shape_to_its_keys():
    three = build_report(_results())
    del three["comparison"]["pairs"]
    with pytest.raises(jsonschema.ValidationError, match="'pairs' is a required property"):
        validate_report(three)
    default = build_report(_results(jobs.FRAMEWORKS))
    assert "pairs" not in default["comparison"] and "frameworks_compared" not in default["comparison"]
    validate_report(default)
    del default["frameworks"]["lightning"]
    with pytest.raises(jsonschema.ValidationError, match="'lightning' is a required property"):
        validate_report(default)
    unknown = build_report(_results())
    unknown["frameworks"]["jax"] = unknown["frameworks"]["keras"]
    with pytest.raises(jsonschema.ValidationError, match="'jax' is not one of"):
        validate_report(unknown)


def test_provenance_records_every_frameworks_device_and_keys_keras_torch_runs_apart():
    data = {"id": "stand-in", "source": "synthetic", "location": "generated", "sha256": "b" * 64,
            "hashed": "parameters"}
    answers = {"keras": {"device": "cpu (x86_64, 1 threads)", "versions": {"tensorflow": "2.21", "keras": "3.12"}},
               "lightning": {"device": "cpu (x86_64, 1 threads)", "versions": {"torch": "2.9", "lightning": "2.6"}},
               "keras-torch": {"device": "cpu (x86_64, 1 threads)",
                               "versions": {"keras": "3.12", "torch": "2.9", "keras_backend": "torch"}}}

    def record(frameworks):
        return {"provenance": provenance.build_provenance(data, ALIGNED, {fw: answers[fw] for fw in frameworks}, 1,
                                                          5, 2, [{"passed": True, "max_abs_diff": 1e-7}])}

    three, two = record(ALL), record(jobs.FRAMEWORKS)
    assert list(three["provenance"]["device"]) == list(ALL) and list(two["provenance"]["device"]) == list(jobs.FRAMEWORKS)
    assert three["provenance"]["versions"] == two["provenance"]["versions"] == {
        "python": None, "tensorflow": "2.21", "keras": "3.12", "torch": "2.9", "lightning": "2.6"}
    assert provenance_key(three) != provenance_key(two)  # never merged with a run without keras-torch
    assert describe_provenance(three) == describe_provenance(two)  # one device for all: 'cpu 1 thread'
    without_keras = record(("lightning", "keras-torch"))["provenance"]
    assert without_keras["versions"]["tensorflow"] is None and without_keras["versions"]["keras"] == "3.12"


# ---------------------------------------------------------------------------- the real workers


REAL_MODEL = "c1w2_fmnist_dnn"
needs_keras_torch = pytest.mark.skipif(not (REPO / "keras_torch" / "worker.py").exists(),
                                       reason="keras_torch/worker.py not there yet")


@pytest.mark.slow
@needs_keras_torch
def test_the_real_check_passes_every_pair_of_the_three_workers():
    result = run_cli("check", REAL_MODEL, "--frameworks", "keras,lightning,keras-torch", "--json")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    rows = json.loads(result.stdout)
    assert [row["pair"] for row in rows] == PAIRS and all(row["passed"] for row in rows)
    # float32 kernels summing in other orders: a few ulps of outputs <= 1, far inside 1e-5.
    assert all(0 <= row["max_abs_diff"] < 1e-6 and row["tolerance"] == 1e-5 for row in rows)


class _PlantingPool(jobs.WorkerPool):
    """A pool that, once lightning has loaded the Keras export, adds 0.05 to the first Dense layer's bias in it:
    keras-torch (next in run order) starts from a mis-mapped model, as a wrong weight transfer would give."""

    def run(self, framework, job, workdir, timeout=None):
        answer = super().run(framework, job, workdir, timeout)
        if framework == "lightning":
            path = jobs.init_weights_path(workdir, jobs.run_tag(REAL_MODEL, job["seed"]))
            layers = load_keras_layers(path)
            dense = next(layer for layer in layers if layer.kind == "Dense")
            dense.arrays["bias"] += 0.05
            save_keras_layers(path, layers)
        return answer


@pytest.mark.slow
@needs_keras_torch
def test_the_real_check_fails_the_pairs_of_a_keras_torch_model_with_a_planted_weight_error():
    pool = _PlantingPool(threads=1, quiet=True)
    try:
        rows = runner.check_models([REAL_MODEL], workers=pool, frameworks=ALL)
    finally:
        pool.close()
    verdicts = {row["pair"]: (row["passed"], row["max_abs_diff"]) for row in rows}
    assert verdicts["lightning/keras"][0] and verdicts["lightning/keras"][1] < 1e-6
    # 0.05 on every hidden unit's bias moves the softmax outputs by far more than the 1e-5 tolerance.
    assert not verdicts["keras-torch/keras"][0] and not verdicts["keras-torch/lightning"][0]
    assert min(verdicts["keras-torch/keras"][1], verdicts["keras-torch/lightning"][1]) > 1e-4
