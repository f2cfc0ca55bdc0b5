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
    assert sorted(p.name for p in final.iterdir()) == ["curves.png", "report.json", "report.md"]
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
