"""Early stopping and checkpoints (`parity run --early-stopping METRIC[:PATIENCE[:MIN_DELTA]] --checkpoint best|last`).

Three layers: Keras' improvement rule as parity.align writes it down (no framework); the real callbacks of both
frameworks on planted histories (parity.probes 'early_stopping': two worker processes), where the epochs are whole
numbers and must match exactly; and one short synthetic run through the CLI, whose restored model must give back
the best epoch's logged val_loss. That value is the same float32 computation on the same weights and batches, so
it agrees to float32 resolution: relative 1e-6 (a few ulps of a loss near 1; measured: equal).
"""

from __future__ import annotations

import json
import math
import zipfile

import numpy as np
import pytest

from cli_helpers import run_cli
from parity import align, probes
from parity.catalog import get_spec
from parity.cli import _early_stopping
from parity.errors import ParityError
from parity.runner import EarlyStopping, RunOptions, stopping_job

# (epochs run, epoch restored), both 1-based, of each planted history (parity.probes.EARLY_STOPPING_HISTORIES) with
# patience 2, worked out by hand from Keras' rule: wait counts epochs since the last improvement, a tie or NaN is
# no improvement, min_delta 0.01 makes 0.895 and 0.893 no gain over 0.9.
KERAS = {"mode": (8, 6), "non_finite": (6, 4), "min_delta": (4, 2), "ties": (4, 2)}
# Lightning's own: mode 'min' on an accuracy stops at the first rise and keeps the lowest; check_finite stops at the
# NaN (epoch 3) and the checkpoint kept epoch 2; ModelCheckpoint keeps the lowest value (0.893, epoch 4).
LIGHTNING_NATIVE = {"mode": (3, 1), "non_finite": (3, 2), "min_delta": (4, 4), "ties": (4, 2)}
RESTORED_RTOL = 1e-6


def test_keras_improvement_takes_the_first_value_and_no_tie_nan_or_gain_of_min_delta():
    assert align.keras_improvement(math.nan, None, "min") and align.keras_improvement(0.1, None, "max")
    assert not align.keras_improvement(0.9, 0.9, "min") and not align.keras_improvement(0.9, 0.9, "max")
    assert not align.keras_improvement(math.nan, 0.9, "min") and not align.keras_improvement(0.5, math.nan, "min")
    assert align.keras_improvement(0.89, 0.9, "min") and align.keras_improvement(0.91, 0.9, "max")
    assert not align.keras_improvement(0.895, 0.9, "min", 0.01) and align.keras_improvement(0.889, 0.9, "min", 0.01)
    assert not align.keras_improvement(0.89, 0.9, "min", 0.01)  # a gain of exactly min_delta is none (float32)
    assert not align.keras_improvement(0.9 - 1e-10, 0.9, "min")  # below float32 resolution: a tie


def test_the_monitor_mode_follows_the_metric_in_keras_and_aligned_torch_and_is_min_in_native_lightning():
    assert [align.keras_monitor_mode(m) for m in ("loss", "val_loss", "val_accuracy", "mae", "val_mae")] == \
        ["min", "min", "max", "min", "min"]
    assert align.torch_monitor_mode(align.ALIGNED, "val_accuracy") == "max"
    assert align.torch_monitor_mode(align.NATIVE, "val_accuracy") == "min"
    with pytest.raises(ValueError, match="no known direction"):
        align.keras_monitor_mode("val_precision")


def test_the_flag_parses_metric_patience_and_min_delta_and_refuses_the_rest():
    assert _early_stopping("val_loss") == EarlyStopping("val_loss", 3, 0.0)
    assert _early_stopping("val_accuracy:2:0.01") == EarlyStopping("val_accuracy", 2, 0.01)
    for text in ("", ":2", "val_loss:two", "val_loss:-1", "val_loss:1:-0.1", "val_loss:1:2:3"):
        with pytest.raises(Exception, match="METRIC|PATIENCE"):
            _early_stopping(text)


class _Split:
    def __init__(self, val):
        self.val = val


def test_a_metric_the_run_does_not_log_is_refused_with_the_choices(tmp_path):
    spec = get_spec("c1w2_fmnist_dnn")
    job = stopping_job(spec, _Split([0]), RunOptions(early_stopping=EarlyStopping("val_accuracy", 2),
                                                     checkpoint="best"), tmp_path)
    assert job == {"early_stopping": {"monitor": "val_accuracy", "patience": 2, "min_delta": 0.0},
                   "checkpoint": {"kind": "best", "monitor": "val_accuracy", "dir": str(tmp_path)}}
    assert stopping_job(spec, _Split(None), RunOptions(checkpoint="best"), tmp_path)["checkpoint"]["monitor"] == "loss"
    with pytest.raises(ParityError, match="use one of loss, accuracy, val_loss, val_accuracy"):
        stopping_job(spec, _Split([0]), RunOptions(early_stopping=EarlyStopping("val_mae")), tmp_path)
    with pytest.raises(ParityError, match="no validation data"):
        stopping_job(spec, _Split(None), RunOptions(early_stopping=EarlyStopping("val_loss")), tmp_path)


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    """Epochs run and epoch restored per scenario: keras, lightning aligned, lightning native."""
    workdir = tmp_path_factory.mktemp("early-stopping-probe")
    probes.run_probes(["early_stopping"], [align.ALIGNED, align.NATIVE], workdir)

    def outcome(path):
        arrays = probes.load_arrays(path)
        return {name: (int(arrays[f"epochs_run_{name}"]), int(arrays[f"restored_epoch_{name}"]))
                for name in probes.EARLY_STOPPING_HISTORIES}

    return {"keras": outcome(probes.probe_path(workdir, "early_stopping", "keras")),
            "aligned": outcome(probes.probe_path(workdir, "early_stopping", "lightning", align.ALIGNED)),
            "native": outcome(probes.probe_path(workdir, "early_stopping", "lightning", align.NATIVE))}


def test_keras_stops_and_restores_where_its_rule_says_on_the_planted_histories(planted):
    assert planted["keras"] == KERAS


def test_aligned_lightning_stops_and_restores_at_the_keras_epochs(planted):
    assert planted["aligned"] == planted["keras"]


def test_native_lightning_decides_otherwise_except_on_ties(planted):
    assert planted["native"] == LIGHTNING_NATIVE
    assert planted["native"]["ties"] == planted["keras"]["ties"]  # ties and patience: the same in both


@pytest.fixture(scope="module")
def stopped_run(tmp_path_factory):
    """A synthetic run whose val_accuracy stalls (0.91 twice by epoch 4), so patience 1 stops it before its end."""
    out = tmp_path_factory.mktemp("early-stopping-run")
    result = run_cli("run", "c1w2_fmnist_dnn", "--synthetic", "--epochs", "6", "--early-stopping", "val_accuracy:1",
                     "--checkpoint", "best", "--out", str(out), "--quiet")
    assert result.returncode == 0, result.stderr[-3000:]
    return out / "c1w2_fmnist_dnn"


def test_both_frameworks_stop_at_the_same_epoch_and_restore_the_best_one(stopped_run):
    report = json.loads((stopped_run / "report.json").read_text())
    stops = {fw: report["frameworks"][fw]["runs"][0]["early_stopping"] for fw in ("keras", "lightning")}
    keras, lightning = stops["keras"], stops["lightning"]
    assert keras["stopped_epoch"] is not None and keras["best_epoch"] < keras["stopped_epoch"]
    assert (lightning["stopped_epoch"], lightning["best_epoch"]) == (keras["stopped_epoch"], keras["best_epoch"])
    assert keras["mode"] == lightning["mode"] == "max" and keras["restored"] and lightning["restored"]
    for fw, stop in stops.items():
        run = report["frameworks"][fw]["runs"][0]
        assert run["epochs_run"] == stop["stopped_epoch"]
        best_val_loss = run["history"]["val_loss"][stop["best_epoch"] - 1]
        assert stop["restored_val_loss"] == pytest.approx(best_val_loss, rel=RESTORED_RTOL), fw
        assert abs(stop["restored_val_loss"] - run["history"]["val_loss"][-1]) > 1e-3, fw  # not the last epoch's
        assert report["comparison"]["final_val"][fw]["values"] == [stop["restored_val_accuracy"]]
    assert "## Early stopping" in (stopped_run / "report.md").read_text()


def test_the_best_checkpoints_are_kept_and_the_lightning_one_loads_with_weights_only(stopped_run):
    import torch  # this test process imports no TensorFlow

    report = json.loads((stopped_run / "report.json").read_text())
    files = {fw: stopped_run / "checkpoints" / report["frameworks"][fw]["runs"][0]["checkpoint"]["file"]
             for fw in ("keras", "lightning")}
    assert files == {"keras": stopped_run / "checkpoints" / "keras-seed0-best.keras",
                     "lightning": stopped_run / "checkpoints" / "lightning-seed0-best.ckpt"}
    assert {"config.json", "model.weights.h5"} <= set(zipfile.ZipFile(files["keras"]).namelist())
    saved = torch.load(files["lightning"], map_location="cpu", weights_only=True)
    best = report["frameworks"]["lightning"]["runs"][0]["early_stopping"]["best_epoch"]
    assert saved["epoch"] + 1 == best  # --checkpoint best and the restored weights: the same epoch here (min_delta 0)
    assert all(np.isfinite(value.numpy()).all() for value in saved["state_dict"].values())
