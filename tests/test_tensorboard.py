"""TensorBoard: a real `parity run` writes one logdir with a run per framework and seed, the same tags on the same
steps in both, and every value equal to report.json's.

The event files are read back with tensorboard's own reader, switched to its TensorFlow stub
(parity.progress.tensorboard_without_tensorflow): this process imports neither TensorFlow nor torch.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from cli_helpers import REPO, run_cli
from parity import progress

MODEL = "c1w2_fmnist_dnn"
SEEDS = 2
EPOCHS = 2
TAGS = {"epoch/loss", "epoch/accuracy", "epoch/val_loss", "epoch/val_accuracy", "step/loss"}

Scalars = dict[str, list[tuple[int, float]]]


def read_scalars(run_dir: Path) -> Scalars:
    """Every scalar of one TensorBoard run, tag -> [(step, value)] in step order, read with tensorboard's reader."""
    progress.tensorboard_without_tensorflow()
    from tensorboard.backend.event_processing.plugin_event_accumulator import EventAccumulator
    from tensorboard.util import tensor_util

    events = EventAccumulator(str(run_dir), size_guidance={"tensors": 0})  # 0: keep every event, not a sample
    events.Reload()
    return {tag: [(event.step, float(tensor_util.make_ndarray(event.tensor_proto))) for event in events.Tensors(tag)]
            for tag in events.Tags()["tensors"]}


def expected_scalars(run: dict, metric: str) -> Scalars:
    """What a run of report.json says its TensorBoard run holds: epochs and optimizer steps counted from 1."""
    expected = {progress.STEP_LOSS_TAG: list(enumerate(run["step_loss"], start=1))}
    for key in progress.epoch_keys(metric):
        expected[progress.epoch_tag(key)] = list(enumerate(run["history"][key], start=1))
    return expected


def mismatches(scalars: Scalars, expected: Scalars) -> list[str]:
    """Where the event file differs from report.json: tags, steps, or values.

    Values compare exactly as float32: TensorBoard stores float32, and both frameworks computed every logged value
    as a float32 tensor, so its float32 image is the value itself; any other difference is a wrong value.
    """
    if set(scalars) != set(expected):
        return [f"tags {sorted(scalars)} != {sorted(expected)}"]
    found = []
    for tag, points in expected.items():
        steps = [step for step, _ in scalars[tag]]
        if steps != [step for step, _ in points]:
            found.append(f"{tag}: steps {steps[:5]}... != {[step for step, _ in points][:5]}...")
            continue
        found += [f"{tag} step {step}: {value!r} != float32({want!r})"
                  for (step, value), (_, want) in zip(scalars[tag], points) if value != float(np.float32(want))]
    return found


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("tensorboard-run")
    result = run_cli("run", MODEL, "--synthetic", "--epochs", str(EPOCHS), "--seeds", str(SEEDS), "--out", str(out))
    assert result.returncode == 0, result.stdout + result.stderr
    return out / MODEL


@pytest.fixture(scope="module")
def report(run_dir: Path) -> dict:
    return json.loads((run_dir / "report.json").read_text())


def test_one_tensorboard_run_per_framework_and_seed(run_dir: Path):
    runs = {path.name for path in (run_dir / progress.TENSORBOARD_DIR).iterdir()}
    assert runs == {progress.tensorboard_run(framework, seed)
                    for framework in ("keras", "lightning") for seed in range(SEEDS)}


def test_both_frameworks_have_the_same_tags_on_the_same_steps(run_dir: Path, report: dict):
    steps_per_epoch = len(report["frameworks"]["keras"]["runs"][0]["step_loss"]) // EPOCHS
    for seed in range(SEEDS):
        keras, lightning = (read_scalars(run_dir / progress.TENSORBOARD_DIR / progress.tensorboard_run(fw, seed))
                            for fw in ("keras", "lightning"))
        assert set(keras) == set(lightning) == TAGS
        for tag in TAGS:
            assert [step for step, _ in keras[tag]] == [step for step, _ in lightning[tag]], tag
        assert [step for step, _ in keras["epoch/loss"]] == list(range(1, EPOCHS + 1))
        assert [step for step, _ in keras["step/loss"]] == list(range(1, EPOCHS * steps_per_epoch + 1))


def test_every_value_equals_report_json(run_dir: Path, report: dict):
    metric = report["comparison"]["metric"]
    for framework, record in report["frameworks"].items():
        for run in record["runs"]:
            scalars = read_scalars(run_dir / progress.TENSORBOARD_DIR / progress.tensorboard_run(framework,
                                                                                               run["seed"]))
            assert mismatches(scalars, expected_scalars(run, metric)) == [], (framework, run["seed"])


def test_the_comparison_sees_a_planted_value_step_or_tag_error(run_dir: Path, report: dict):
    run = report["frameworks"]["lightning"]["runs"][0]
    scalars = read_scalars(run_dir / progress.TENSORBOARD_DIR / progress.tensorboard_run("lightning", 0))
    expected = expected_scalars(run, report["comparison"]["metric"])
    one_ulp_off = {**expected, "epoch/val_loss": [(1, float(np.nextafter(np.float32(expected["epoch/val_loss"][0][1]),
                                                                       np.float32(np.inf))))]
                   + expected["epoch/val_loss"][1:]}
    assert mismatches(scalars, one_ulp_off) == [f"epoch/val_loss step 1: {scalars['epoch/val_loss'][0][1]!r} != "
                                                f"float32({one_ulp_off['epoch/val_loss'][0][1]!r})"]
    zero_based = {**expected, "epoch/loss": [(step - 1, value) for step, value in expected["epoch/loss"]]}
    assert [line.split(":")[0] for line in mismatches(scalars, zero_based)] == ["epoch/loss"]
    assert mismatches({**scalars, "epoch_loss": []}, expected)[0].startswith("tags ")


def test_the_torch_side_writes_event_files_without_importing_tensorflow(tmp_path: Path):
    script = textwrap.dedent("""
        import sys
        from torch_models.callbacks import tensorboard_logger
        logger = tensorboard_logger(sys.argv[1], "lightning-seed0")
        logger.log_metrics({"step/loss": 0.5}, step=1)
        logger.finalize("success")
        assert "tensorflow" not in sys.modules, "torch's SummaryWriter imported TensorFlow"
    """)
    result = subprocess.run([sys.executable, "-c", script, str(tmp_path)], cwd=REPO, capture_output=True, text=True,
                            env={**os.environ, "CUDA_VISIBLE_DEVICES": ""}, timeout=300)
    assert result.returncode == 0, result.stderr
    assert read_scalars(tmp_path / "lightning-seed0") == {"step/loss": [(1, 0.5)]}
