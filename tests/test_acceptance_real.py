"""Acceptance on the real course data in ../shared/data: minutes each, so marked slow (run with -m slow)."""

import json

import pytest

from cli_helpers import run_cli

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("model_id, dataset, epochs, seeds, floor", [
    ("c1w2_fmnist_dnn", "fashion-mnist", 5, 1, 0.86),  # course: test acc 0.8744
    ("c1w3_fmnist_cnn", "fashion-mnist", 5, 3, 0.90),  # course: test acc 0.9089; judged on the mean of 3 seeds
    ("c3w2_sarcasm_embed_gap", "sarcasm", 10, 1, 0.80),  # course v1: val acc 0.8143 after 30 epochs
])
def test_course_accuracy_reached_in_both_frameworks(model_id, dataset, epochs, seeds, floor, shared_data, tmp_path):
    result = run_cli("run", model_id, "--epochs", str(epochs), "--seeds", str(seeds), "--data-dir",
                     str(shared_data / dataset), "--out", str(tmp_path), "--quiet", "--threads", "2", "--device", "cpu",
                     timeout=3600)
    assert result.returncode == 0, result.stderr
    report = json.loads((tmp_path / model_id / "report.json").read_text())
    assert report["dataset"]["source"] == "real"
    for framework in ("keras", "lightning"):
        assert report["comparison"]["final_val"][framework]["mean"] >= floor, framework
