"""The window RNN forecasters: the forward check catches planted errors, SimpleRNN's second torch bias (imports torch).

c4w3_ts_simplernn (SimpleRNN -> nn.RNN) and c4w3_ts_bilstm (Bidirectional(LSTM) -> nn.LSTM(bidirectional))
with the random Keras weights of the real forward check (one Keras worker `forward` job on the synthetic
stand-in's probe inputs). Here the real transfer plan is built, a mistake is planted in it or in the
forward pass, and parity.compare.forward_check_rows judges. The tolerance is the check's own,
1e-5 * max(1, |output|) (the outputs reach ~50 after the x100 scale); each planted mistake must
exceed it 100-fold, so it cannot pass by a lucky draw. The conformance suite covers the rest
(parameter counts, lockstep, save/load).
"""

from __future__ import annotations

import dataclasses
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch

from parity import align, compare, jobs
from parity.catalog import get_spec
from parity.datasets import load_dataset
from parity.runner import CHECK_SEED, PROBE_SIZE
from parity.weights import Assignment, load_keras_layers
from torch_models import build, series
from torch_models.weights import apply_plan, save_forward_outputs, transfer_plan

MODELS = ("c4w3_ts_simplernn", "c4w3_ts_bilstm")
PLANTED_FACTOR = 100  # a planted mistake exceeds the tolerance at least this many times
Mutation = Callable[[dict[str, Assignment]], None]


@pytest.fixture(scope="module")
def keras_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The Keras half of the forward check of MODELS: random weights (CHECK_SEED), their export, the outputs."""
    workdir = tmp_path_factory.mktemp("window-rnn-keras")
    for model_id in MODELS:
        np.save(jobs.probe_inputs_path(workdir, model_id),
                load_dataset(get_spec(model_id), synthetic=True).probe_inputs(PROBE_SIZE))
    jobs.run_worker("keras", {"kind": "forward", "models": list(MODELS), "seed": CHECK_SEED}, workdir, threads=1)
    return workdir


def _check(keras_dir: Path, workdir: Path, model_id: str, mutation: Mutation | None = None) -> dict:
    """The inference row of `model_id`'s forward check after `mutation` of the transfer plan."""
    shutil.copytree(keras_dir, workdir, dirs_exist_ok=True)
    torch.set_num_threads(1)
    model = build(model_id)
    tag = jobs.run_tag(model_id, CHECK_SEED)
    plan = transfer_plan(model, load_keras_layers(jobs.init_weights_path(workdir, tag)))
    if mutation:
        mutation(plan.assignments)
    apply_plan(model, plan)
    save_forward_outputs(model, np.load(jobs.probe_inputs_path(workdir, model_id)), workdir, tag, training_mode=True)
    (row,) = compare.forward_check_rows(workdir, model_id, CHECK_SEED)  # no dropout or BatchNorm: inference only
    return row


def _replace(assignments: dict[str, Assignment], name: str, change: Callable[[np.ndarray], np.ndarray]) -> None:
    assignments[name] = dataclasses.replace(assignments[name], array=change(assignments[name].array.copy()))


def copy_the_recurrent_kernel_untransposed(assignments: dict[str, Assignment]) -> None:
    """Keras' (H, H) recurrent kernel copied as it is: square, so no shape check notices."""
    _replace(assignments, "recurrent.1.weight_hh_l0", np.transpose)


def put_the_keras_bias_in_both_torch_biases(assignments: dict[str, Assignment]) -> None:
    """nn.RNN adds b_ih + b_hh: the Keras bias in both counts it twice."""
    assignments["recurrent.0.bias_hh_l0"] = assignments["recurrent.0.bias_ih_l0"]


def swap_the_directions_of_the_second_bilstm(assignments: dict[str, Assignment]) -> None:
    """Keras' forward_lstm weights into torch's reverse direction and backward_lstm into the forward one."""
    for tensor in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
        forward, backward = f"recurrent.1.{tensor}_l0", f"recurrent.1.{tensor}_l0_reverse"
        assignments[forward], assignments[backward] = assignments[backward], assignments[forward]


def test_the_real_transfer_passes(keras_dir, tmp_path):
    for model_id in MODELS:
        row = _check(keras_dir, tmp_path / model_id, model_id)
        assert row["passed"] and row["max_abs_diff"] <= row["tolerance"], row


@pytest.mark.parametrize(("model_id", "mutation"), [
    ("c4w3_ts_simplernn", copy_the_recurrent_kernel_untransposed),
    ("c4w3_ts_simplernn", put_the_keras_bias_in_both_torch_biases),
    ("c4w3_ts_bilstm", swap_the_directions_of_the_second_bilstm),
], ids=lambda value: getattr(value, "__name__", value))
def test_each_planted_transfer_error_fails_the_check(model_id, mutation, keras_dir, tmp_path):
    row = _check(keras_dir, tmp_path, model_id, mutation)
    assert not row["passed"] and row["max_abs_diff"] > PLANTED_FACTOR * row["tolerance"], row


def test_the_last_output_step_instead_of_the_final_states_fails_only_the_bilstm_check(keras_dir, tmp_path,
                                                                                      monkeypatch):
    # output[:, -1] is h_n for one direction, but holds the backward direction after one step, not its final state.
    def last_step(layer: torch.nn.RNNBase, x: torch.Tensor, return_sequences: bool) -> torch.Tensor:
        output = layer(x)[0]
        return output if return_sequences else output[:, -1]

    monkeypatch.setattr(series, "recurrent_output", last_step)
    assert _check(keras_dir, tmp_path / "simplernn", "c4w3_ts_simplernn")["passed"]
    row = _check(keras_dir, tmp_path / "bilstm", "c4w3_ts_bilstm")
    assert not row["passed"] and row["max_abs_diff"] > PLANTED_FACTOR * row["tolerance"], row


def test_lstm_biases_covers_the_simple_rnn_second_bias(keras_dir):
    """Aligned: b_hh is 0 and frozen; native: torch's own b_hh, trainable, as for nn.LSTM; counted as extra."""
    for model_id, recurrent in (("c4w3_ts_simplernn", "recurrent.0.bias_hh_l0"),
                                ("c4w3_ts_bilstm", "recurrent.0.bias_hh_l0_reverse")):
        layers_ = load_keras_layers(jobs.init_weights_path(keras_dir, jobs.run_tag(model_id, CHECK_SEED)))
        aligned = transfer_plan(build(model_id), layers_).assignments[recurrent]
        assert not aligned.array.any() and not aligned.trainable, aligned.source
        native = align.Alignment(frozenset({"lstm_biases"}))
        kept = transfer_plan(build(model_id, native), layers_, native).assignments[recurrent]
        assert kept.array is None and kept.trainable, kept.source
    # One (H,) b_hh per nn.RNN layer; four per direction of each bidirectional nn.LSTM layer.
    assert align.torch_extra_parameters(get_spec("c4w3_ts_simplernn")) == 40 + 40
    assert align.torch_extra_parameters(get_spec("c4w3_ts_bilstm")) == 2 * 2 * 4 * 32
