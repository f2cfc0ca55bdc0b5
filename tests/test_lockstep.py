"""Lockstep training: the comparison arithmetic, and the real `parity lockstep` command end to end."""

import json
import math
import os
from pathlib import Path

import numpy as np
import pytest
from cli_helpers import run_cli

from parity import align, jobs, lockstep
from parity.errors import ParityError
from parity.plan import BatchPlan


def test_relative_difference_is_symmetric_and_zero_for_equal_values():
    rel = lockstep.relative_difference([1.0, 0.0, 2.0, -4.0], [1.0, 0.0, 2.2, -4.4])
    np.testing.assert_allclose(rel, [0.0, 0.0, 0.2 / 2.2, 0.4 / 4.4], rtol=1e-12)
    np.testing.assert_allclose(lockstep.relative_difference([2.2], [2.0]), rel[2:3], rtol=1e-12)


def test_first_step_beyond_is_one_based_and_counts_nan_as_beyond():
    assert lockstep.first_step_beyond(np.array([0.0, 1e-5, 2e-4]), 1e-4) == 3
    assert lockstep.first_step_beyond(np.array([0.0, math.nan, 0.0]), 1e-4) == 2
    assert lockstep.first_step_beyond(np.array([0.0, 1e-4]), 1e-4) is None  # at the tolerance is within


def test_batch_rows_continue_into_the_next_epoch_with_its_own_order():
    plan = BatchPlan(num_samples=10, batch_size=4, seed=3)
    rows = list(lockstep.batch_rows(plan, 5))
    assert [len(r) for r in rows] == [4, 4, 2, 4, 4]
    np.testing.assert_array_equal(np.concatenate(rows[:3]), plan.epoch_order(0))
    np.testing.assert_array_equal(np.concatenate(rows[3:]), plan.epoch_order(1)[:8])


def test_choose_optimizer_reads_the_spec_or_takes_keras_defaults():
    assert lockstep.choose_optimizer("c1w2_fmnist_dnn").name == "adam"
    sgd = lockstep.choose_optimizer("c1w2_fmnist_dnn", "sgd")
    assert (sgd.learning_rate, sgd.momentum, sgd.keras_default_lr) == (0.01, 0.0, True)
    explicit = lockstep.choose_optimizer("c1w2_fmnist_dnn", "sgd", 0.1, 0.9)
    assert (explicit.learning_rate, explicit.momentum, explicit.keras_default_lr) == (0.1, 0.9, False)
    with pytest.raises(ParityError, match="unknown optimizer"):
        lockstep.choose_optimizer("c1w2_fmnist_dnn", "lamb")


@pytest.mark.slow
def test_lockstep_command_writes_json_markdown_and_drift_plot(tmp_path):
    result = run_cli("lockstep", "c1w1_hello_linear", "--steps", "20", "--out", str(tmp_path))
    assert result.returncode == 0, result.stderr
    run_dir = tmp_path / "lockstep" / "c1w1_hello_linear-sgd-aligned"
    report = json.loads((run_dir / "lockstep.json").read_text())
    # One Dense unit, SGD: both frameworks compute the same float32 numbers (measured: identical at all 20 steps).
    assert report["first_divergence_step"] is None and report["max_rel_loss_diff"] <= 1e-6
    assert len(report["rel_loss_diff"]) == len(report["keras"]["loss"]) == 20
    assert report["lightning"]["optimizer"] == "KerasSGD" and report["keras"]["deterministic"] is True
    # The device stated is the one the tensors were on (read from them), in both workers.
    assert (report["keras"]["tensor_device"], report["lightning"]["tensor_device"]) == ("cpu:0", "cpu")
    assert report["environment"]["device"].startswith("keras: cpu (") and "tensors on cpu:0; lightning: cpu (" in \
        report["environment"]["device"] and report["environment"]["device"].endswith("tensors on cpu")
    assert (run_dir / "drift.png").read_bytes()[:4] == b"\x89PNG"
    assert "agree within 0.0001 relative at every one of the 20 steps" in (run_dir / "lockstep.md").read_text()
    assert "agree within" in result.stdout


@pytest.mark.slow
def test_lockstep_with_one_difference_native_names_it_as_the_cause(tmp_path):
    result = run_cli("lockstep", "c1w1_hello_linear", "--steps", "10", "--native", "default_learning_rate",
                     "--out", str(tmp_path))
    assert result.returncode == 0, result.stderr
    report = json.loads((tmp_path / "lockstep" / "c1w1_hello_linear-sgd-native-default_learning_rate" /
                         "lockstep.json").read_text())
    assert report["first_divergence_step"] == 2  # torch's own SGD lr (1e-3, not 0.01) after the first update
    assert report["lightning"]["optimizer_kwargs"]["lr"] == 1e-3
    assert "Differences left native: default_learning_rate" in report["explanation"]


@pytest.mark.parametrize("args, message", [
    (["--mode", "native", "--native", "tf32"], "already leaves all of them native"),
    (["--native", "tensor_layout"], "invalid choice"),
    (["--steps", "0"], "must be a positive whole number"),
])
def test_lockstep_refuses_bad_input_in_one_line(args, message, tmp_path):
    result = run_cli("lockstep", "c1w1_hello_linear", *args, "--out", str(tmp_path))
    assert result.returncode == 2 and message in result.stderr
    assert "Traceback" not in result.stderr


# One child process per framework (never both in one process): the worker's own `configure` and lockstep
# handler, asked for deterministic ops (aligned), not asked (determinism native), and asked while the
# framework's switch is planted as a no-op. The flag a lockstep run reports must be the state read.
DETERMINISM_CHILD = {
    "keras": """
import json, sys
import parity.datasets
import tensorflow as tf
from tf_models.lockstep import run_lockstep
from tf_models.worker import configure
job = json.load(open(sys.argv[1]))
reported = {}
for name, native in (("asked", []), ("not_asked", ["determinism"]), ("asked_planted", [])):
    if name == "asked_planted":
        tf.config.experimental.enable_op_determinism = lambda: None  # the switch does nothing
    configure({**job, "native": native})
    reported[name] = run_lockstep({**job, "native": native})["deterministic"]
print(json.dumps(reported))
""",
    "lightning": """
import json, sys
import parity.datasets
import torch
from torch_models.lockstep import run_lockstep
from torch_models.worker import configure
job = json.load(open(sys.argv[1]))
reported = {}
for name, native in (("asked", []), ("not_asked", ["determinism"]), ("asked_planted", [])):
    if name == "asked_planted":
        torch.use_deterministic_algorithms(False)
        torch.use_deterministic_algorithms = lambda mode, **kwargs: None  # the switch does nothing
    configure({**job, "native": native})
    reported[name] = run_lockstep({**job, "native": native, "alignments": [native]})["runs"][0]["deterministic"]
print(json.dumps(reported))
""",
}


def test_the_determinism_flag_of_a_lockstep_run_is_the_state_read_from_the_framework(tmp_path):
    import subprocess
    import sys

    from parity.catalog import get_spec
    from parity.datasets import load_dataset

    spec = get_spec("c1w1_hello_linear")
    data = jobs.save_data(tmp_path, load_dataset(spec).head(3 * spec.batch_size, lockstep.VAL_SAMPLES))
    job = {"kind": "lockstep", "model": spec.id, "seed": 0, "steps": 3, "batch_size": spec.batch_size,
           "optimizer": lockstep.optimizer_to_job(lockstep.choose_optimizer(spec.id)), "data": str(data),
           "alignments": [[]], "rounding_control": False, "workdir": str(tmp_path), "threads": 1, "device": "cpu"}
    job_path = tmp_path / "job.json"
    job_path.write_text(json.dumps(job))
    reported = {}
    for framework in jobs.FRAMEWORKS:  # Keras first: the torch side starts from the Keras initial weights it saved
        result = subprocess.run([sys.executable, "-c", DETERMINISM_CHILD[framework], str(job_path)],
                                capture_output=True, text=True, timeout=600, cwd=Path(__file__).resolve().parents[1],
                                env={**os.environ, "CUDA_VISIBLE_DEVICES": ""})
        assert result.returncode == 0, result.stderr[-3000:]
        reported[framework] = json.loads(result.stdout.strip().splitlines()[-1])
    for framework in jobs.FRAMEWORKS:
        # A worker asked for deterministic ops reports True; one not asked, or asked with a switch that does
        # nothing, reports False: what is read, not what was asked (an echo would say True for the planted run).
        assert reported[framework] == {"asked": True, "not_asked": False, "asked_planted": False}, framework


def test_gradient_norms_are_judged_strictly_at_the_first_step_and_against_the_one_ulp_control_later():
    """c2w4_rps_cnn's measured drift (steps 1-3: 7.5e-8, 6.7e-8, 2.25e-4; torch vs torch one ulp apart reaches
    3.5e-3) passes; a first-step mismatch, a drift with no control, or one far beyond the control's fails."""
    def comparison(grads):
        return {"rel_grad_norm_diff": grads, "max_rel_grad_norm_diff": max(grads), "tolerance": lockstep.TOLERANCE}

    rps = comparison([7.5e-8, 6.7e-8, 2.25e-4])
    control = {"max_rel_grad_norm_diff": 3.5e-3}
    assert lockstep.grad_norms_within_rounding(rps, control)
    assert lockstep.grad_norms_within_rounding(comparison([1e-7, 5e-5, 9e-5]), None)  # within the tolerance
    assert not lockstep.grad_norms_within_rounding(rps, None)
    assert not lockstep.grad_norms_within_rounding(rps, {"max_rel_grad_norm_diff": 1e-5})  # 2.25e-4 > 10 x 1e-5
    assert not lockstep.grad_norms_within_rounding(comparison([2e-4, 1e-7, 1e-7]), control)  # same weights, apart


# ------------------------------------------------------------------ --frameworks: every pair of three

THREE = ("keras", "lightning", "keras-torch")
TESTS = Path(__file__).resolve().parent


def _answer(loss, val_metric=0.5):
    """A Keras worker's lockstep answer (the keras-torch worker answers with the same keys)."""
    return {"loss": list(loss), "grad_norm": [1.0 + 0.01 * i for i in range(len(loss))], "deterministic": True,
            "dropout_layers": 0, "val_metric": val_metric, "tensor_device": "cpu:0", "device": "cpu",
            "versions": {"keras": "3"}}


def _torch_answer(loss):
    """The torch worker's answer: one aligned run, and its one-ulp control 2e-7 away from it."""
    run = {**_answer(loss), "native": [], "tensor_device": "cpu", "final_param_max_abs_diff": 1e-7,
           "optimizer": "KerasSGD", "optimizer_kwargs": {"lr": 0.01, "momentum": 0.0}}
    control = {"loss": list(np.asarray(loss) * (1 + 2e-7)), "grad_norm": run["grad_norm"]}
    return {"runs": [run], "rounding_control": control, "device": "cpu", "versions": {"torch": "2"},
            "tensor_device": "cpu"}


def _planted_answers(planted: str) -> dict:
    """Three frameworks that agree to float32 rounding, except `planted`, whose losses move 1% apart from step 2
    on (a learning rate of its own: the first loss is computed before any update)."""
    loss = 2.3 - 0.1 * np.arange(8)
    moved = np.concatenate([loss[:1], loss[1:] * 1.01])
    own = {name: moved if name == planted else loss * (1 + 1e-7) for name in THREE}
    return {"keras": _answer(own["keras"]), "keras-torch": _answer(own["keras-torch"]),
            "lightning": _torch_answer(own["lightning"])}


@pytest.mark.parametrize("planted", THREE)
def test_every_pair_is_compared_and_a_planted_divergence_parts_only_the_pairs_that_include_it(planted):
    comparison, = lockstep.compare_frameworks(_planted_answers(planted), THREE, [], lockstep.TOLERANCE, 0.0)
    pairs = comparison["pairs"]
    assert list(pairs) == ["lightning/keras", "keras-torch/keras", "keras-torch/lightning"]
    for key, entry in pairs.items():
        hit = planted in key.split("/")
        assert entry["first_divergence_step"] == (2 if hit else None), key
        assert entry["loss_within_rounding"] is not hit, key  # 1e-2 against a control that drifts 2e-7
        assert entry["grad_norms_within_rounding"], key  # the gradient norms were planted equal
    # The top of the comparison is the direct pair, in today's two-framework keys.
    assert comparison["pair"] == "lightning/keras"
    assert comparison["first_divergence_step"] == pairs["lightning/keras"]["first_divergence_step"]
    assert comparison["val_metric"].keys() == {"keras", "lightning", "abs_diff"}


@pytest.fixture
def planted_keras_torch(monkeypatch):
    """keras-torch served by tests/planted_lr_keras_torch_worker.py: twice the learning rate in lockstep."""
    monkeypatch.setitem(jobs.WORKER_MODULES, "keras-torch", "planted_lr_keras_torch_worker")
    return jobs.worker_pool(quiet=True, env={"PYTHONPATH": os.pathsep.join([str(TESTS), str(TESTS.parent)])})


@pytest.mark.slow  # three worker starts: 15 to 25 s on two shared cores
def test_three_frameworks_in_lockstep_part_exactly_where_a_planted_learning_rate_parts_them(tmp_path,
                                                                                           planted_keras_torch):
    options = lockstep.LockstepOptions(steps=4, synthetic=True, frameworks=THREE, out_dir=tmp_path)
    with planted_keras_torch as workers:
        result = lockstep.measure("c1w1_hello_linear", options, workers)
    pairs = result["comparisons"][0]["pairs"]
    # One Dense unit, SGD: Keras and Lightning compute the same float32 numbers (measured: 1.5e-7 apart at most).
    direct = pairs["lightning/keras"]
    assert direct["first_divergence_step"] is None and direct["loss_within_rounding"]
    for key in ("keras-torch/keras", "keras-torch/lightning"):
        # Same weights and first batch, so the first loss (before any update) agrees; twice the step parts the rest.
        assert pairs[key]["first_rel_loss_diff"] <= 1e-6 and pairs[key]["first_divergence_step"] == 2, key
        assert not pairs[key]["loss_within_rounding"], key
    assert pairs["keras-torch/keras"]["final_param_max_abs_diff"] > 1e-3  # the two Keras final weights, compared here
    assert pairs["keras-torch/lightning"]["final_param_max_abs_diff"] is None  # Lightning compared with Keras' only
    assert result["keras-torch"]["deterministic"] is True and result["frameworks"] == list(THREE)
    directory, = lockstep.write(result, tmp_path)
    assert directory.name == "c1w1_hello_linear-sgd-aligned-keras+lightning+keras-torch"
    document = json.loads((directory / "lockstep.json").read_text())
    assert document["pairs"]["keras-torch/keras"]["first_divergence_step"] == 2
    markdown = (directory / "lockstep.md").read_text()
    assert "| keras-torch/keras | runtime | 2 |" in markdown
    assert "| lightning/keras | api + runtime | never |" in markdown
    assert "| step | keras | lightning | keras-torch |" in markdown
    assert (directory / "drift.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.slow
def test_embedding_sparse_gradient_is_a_runtime_difference_keras_on_torch_gets_the_dense_gradient_as_lightning():
    """align: embedding_sparse_gradient is RUNTIME. Keras on TensorFlow squares an embedding's per-occurrence rows
    (IndexedSlices) in Adam, Keras on torch the dense, duplicates-summed gradient. So the two Keras frameworks part
    after the first update whatever Lightning does, and Lightning agrees with Keras on torch exactly when it is left
    native (dense), as align.KERAS_TORCH_PEER leaves it. Were the difference one of the API, the Keras frameworks
    would agree and Lightning aligned would track both."""
    options = lockstep.LockstepOptions(steps=6, synthetic=True, frameworks=THREE,
                                       alignments=(align.ALIGNED, align.KERAS_TORCH_PEER))
    aligned, peer = (comparison["pairs"] for comparison in lockstep.measure("c3w2_sarcasm_embed_gap", options)[
        "comparisons"])
    # Same weights and batch: the first loss agrees everywhere; the first Adam update parts the Keras frameworks.
    assert aligned["keras-torch/keras"]["first_rel_loss_diff"] <= 1e-6
    assert aligned["keras-torch/keras"]["first_divergence_step"] == 2
    assert aligned["lightning/keras"]["first_divergence_step"] is None  # Lightning aligned: TensorFlow's rows
    assert aligned["keras-torch/lightning"]["first_divergence_step"] == 2
    assert peer["keras-torch/lightning"]["first_divergence_step"] is None  # Lightning native: the dense gradient
    assert peer["keras-torch/lightning"]["max_rel_loss_diff"] <= 1e-5


@pytest.mark.slow
def test_without_tensorflow_keras_on_torch_is_the_weights_source_and_lightning_tracks_it(tmp_path):
    options = lockstep.LockstepOptions(steps=5, synthetic=True, frameworks=("lightning", "keras-torch"))
    result = lockstep.measure("c1w1_hello_linear", options)
    comparison, = result["comparisons"]
    assert comparison["pair"] == "keras-torch/lightning" and list(comparison["pairs"]) == ["keras-torch/lightning"]
    # One Dense unit, SGD, torch kernels on both sides: the same float32 numbers (measured: identical).
    assert comparison["first_divergence_step"] is None and comparison["max_rel_loss_diff"] <= 1e-6
    # Lightning compared its final parameters with those of Keras on torch, the weights source.
    assert comparison["final_param_max_abs_diff"] <= 1e-6
    assert "keras" not in result and result["keras-torch"]["tensor_device"] == "cpu:0"
    assert "lightning: " in result["environment"]["device"] and "keras-torch: " in result["environment"]["device"]
    directory, = lockstep.write(result, tmp_path)
    assert "| keras-torch/lightning | api |" in (directory / "lockstep.md").read_text()
