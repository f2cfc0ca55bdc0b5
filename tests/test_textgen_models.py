"""The next-word generators (c3w4_*_textgen): sizes from the data, course parameter counts, forward parity and
planted transfer/forward errors (imports torch; the Keras half runs in one Keras worker).

The vocabulary size and input length are the data's (`DataSplit.info["spec_overrides"]`), so every build here
is inside parity.catalog.shaped_by_data with hand-made sizes, as a worker builds inside a job's "spec_overrides".
The Keras worker draws random weights (the forward check's, CHECK_SEED), the real transfer plan copies them
into torch, and parity.compare.forward_check_rows judges the probabilities with the check's tolerance, 1e-5;
each planted mistake must exceed it 100-fold, so it cannot pass by a lucky draw.
"""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from parity import align, compare, jobs, report
from parity.catalog import get_spec, resolve_spec, shaped_by_data
from parity.weights import Assignment, load_keras_layers
from torch_models import build, textgen
from torch_models.weights import apply_plan, save_forward_outputs, transfer_plan

PLANTED_FACTOR = 100
SMALL = {"layers": {"vocab_size": 37}, "input_shape": [9]}  # a small vocabulary and n-gram length
# (model id, sizes): the three generators at a small size, and Lanigan's model with one LSTM direction.
VARIANTS = {
    "bidirectional": {"c3w4_lanigan_textgen": SMALL, "c3w4_irish_lyrics_textgen": SMALL,
                      "c3w4_shakespeare_textgen": SMALL},
    "one_direction": {"c3w4_lanigan_textgen": {**SMALL, "layers": {**SMALL["layers"], "bidirectional": False}}},
}
# The course's sizes: v1 irish lyrics V = 2690 (1,379,890 parameters); Lanigan's Ball about 272 (105 V + 13,600).
COURSE_SIZES = {"c3w4_irish_lyrics_textgen": {"layers": {"vocab_size": 2690}, "input_shape": [15]},
                "c3w4_lanigan_textgen": {"layers": {"vocab_size": 272}, "input_shape": [10]}}


def _probe_inputs(vocab_size: int, length: int) -> np.ndarray:
    """Pre-padded token ids as the n-grams are: zeros, then 1..length ids (one row per padding amount)."""
    rng = np.random.default_rng(0)
    rows = np.zeros((length, length), dtype=np.int32)
    for used in range(1, length + 1):
        rows[used - 1, length - used:] = rng.integers(1, vocab_size, used)
    return rows


@pytest.fixture(scope="module")
def keras_dirs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Per variant, the Keras half of the forward check (random weights, export, outputs); and the Keras parameter
    counts at the course's sizes (a `describe` job): one Keras worker for all."""
    dirs = {}
    with jobs.worker_pool(threads=1, quiet=True) as pool:
        for variant, overrides in VARIANTS.items():
            workdir = dirs[variant] = tmp_path_factory.mktemp(f"textgen-{variant}")
            for model_id, sizes in overrides.items():
                np.save(jobs.probe_inputs_path(workdir, model_id),
                        _probe_inputs(sizes["layers"]["vocab_size"], sizes["input_shape"][0]))
            pool.run("keras", {"kind": "forward", "models": list(overrides), "seed": 0,
                               "spec_overrides": overrides}, workdir)
        described = pool.run("keras", {"kind": "describe", "models": list(COURSE_SIZES),
                                       "spec_overrides": COURSE_SIZES}, dirs["bidirectional"])
    return {"dirs": dirs, "params": described["params"]}


def _check(keras_dirs: dict[str, Any], workdir: Path, variant: str, model_id: str,
           mutation=None) -> dict:
    """The inference row of `model_id`'s forward check (variant's sizes) after `mutation` of the transfer plan."""
    shutil.copytree(keras_dirs["dirs"][variant], workdir, dirs_exist_ok=True)
    torch.set_num_threads(1)
    tag = jobs.run_tag(model_id, 0)
    with shaped_by_data(VARIANTS[variant]):
        model = build(model_id)
    plan = transfer_plan(model, load_keras_layers(jobs.init_weights_path(workdir, tag)))
    if mutation:
        mutation(plan.assignments)
    apply_plan(model, plan)
    save_forward_outputs(model, np.load(jobs.probe_inputs_path(workdir, model_id)), workdir, tag, training_mode=True)
    (row,) = compare.forward_check_rows(workdir, model_id, 0)  # no dropout or BatchNorm: inference only
    return row


def put_the_keras_bias_in_both_torch_biases(assignments: dict[str, Assignment]) -> None:
    """nn.LSTM adds b_ih + b_hh: the Keras bias in both counts it twice."""
    assignments["lstm.bias_hh_l0"] = assignments["lstm.bias_ih_l0"]


def swap_the_directions(assignments: dict[str, Assignment]) -> None:
    """Keras' forward_lstm weights into torch's reverse direction and backward_lstm into the forward one."""
    for tensor in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
        forward, backward = f"lstm.{tensor}_l0", f"lstm.{tensor}_l0_reverse"
        assignments[forward], assignments[backward] = assignments[backward], assignments[forward]


def swap_the_input_and_forget_gates(assignments: dict[str, Assignment]) -> None:
    """Keras' gate blocks [i, f, c, o] taken as [f, i, c, o]: the gate order is the LSTM's to get right."""
    for tensor in ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0"):
        array = assignments[f"lstm.{tensor}"].array
        i, f, c, o = np.split(array, 4, axis=0)
        assignments[f"lstm.{tensor}"] = dataclasses.replace(assignments[f"lstm.{tensor}"],
                                                            array=np.concatenate([f, i, c, o]))


def test_the_sizes_come_from_the_data():
    spec = get_spec("c3w4_irish_lyrics_textgen")
    assert spec.layers.vocab_size is None and spec.input_shape == (None,)
    with pytest.raises(ValueError, match="shaped_by_data"):
        build("c3w4_irish_lyrics_textgen")
    resolved = resolve_spec(spec, COURSE_SIZES["c3w4_irish_lyrics_textgen"])
    assert (resolved.classes, resolved.input_shape) == (2690, (15,))
    with shaped_by_data(COURSE_SIZES):
        model = build("c3w4_irish_lyrics_textgen")
    assert (model.embedding.num_embeddings, model.lstm.hidden_size, model.output.out_features) == (2690, 150, 2690)


def test_parameter_counts_are_the_courses(keras_dirs):
    keras = keras_dirs["params"]
    assert keras["c3w4_irish_lyrics_textgen"] == 1_379_890  # the course's count for V = 2690
    assert keras["c3w4_lanigan_textgen"] == 105 * 272 + 13_600
    with shaped_by_data(COURSE_SIZES):
        for model_id, count in keras.items():
            torch_count = sum(p.numel() for p in build(model_id).parameters())
            # torch's second LSTM bias (b_hh, 0 and frozen when aligned): 4 * units per direction.
            assert torch_count - count == align.torch_extra_parameters(get_spec(model_id)) \
                   == 2 * 4 * get_spec(model_id).layers.lstm_units


@pytest.mark.parametrize(("variant", "model_id"), [(variant, model_id) for variant, overrides in VARIANTS.items()
                                                   for model_id in overrides])
def test_the_real_transfer_passes(keras_dirs, tmp_path, variant, model_id):
    row = _check(keras_dirs, tmp_path, variant, model_id)
    assert row["passed"] and row["max_abs_diff"] <= row["tolerance"] == 1e-5, row


@pytest.mark.parametrize("mutation", [put_the_keras_bias_in_both_torch_biases, swap_the_directions,
                                      swap_the_input_and_forget_gates], ids=lambda mutation: mutation.__name__)
def test_each_planted_transfer_error_fails_the_check(keras_dirs, tmp_path, mutation):
    row = _check(keras_dirs, tmp_path, "bidirectional", "c3w4_irish_lyrics_textgen", mutation)
    assert not row["passed"] and row["max_abs_diff"] > PLANTED_FACTOR * row["tolerance"], row


def test_the_last_output_step_instead_of_the_final_states_fails(keras_dirs, tmp_path, monkeypatch):
    # output[:, -1] holds the backward direction after one step (the last token), not its final state.
    def last_step(layer: torch.nn.RNNBase, x: torch.Tensor, return_sequences: bool) -> torch.Tensor:
        output = layer(x)[0]
        return output if return_sequences else output[:, -1]

    monkeypatch.setattr(textgen, "recurrent_output", last_step)
    assert _check(keras_dirs, tmp_path / "one", "one_direction", "c3w4_lanigan_textgen")["passed"]
    row = _check(keras_dirs, tmp_path / "two", "bidirectional", "c3w4_lanigan_textgen")
    assert not row["passed"] and row["max_abs_diff"] > PLANTED_FACTOR * row["tolerance"], row


def test_one_hot_labels_give_keras_categorical_crossentropy_and_accuracy():
    """The loss of one-hot targets is -mean log p(label) of the softmax; accuracy compares argmaxes (Keras')."""
    torch.manual_seed(0)
    with shaped_by_data({"c3w4_lanigan_textgen": SMALL}):
        model = build("c3w4_lanigan_textgen")
    x = torch.from_numpy(_probe_inputs(37, 9))
    labels = torch.arange(9) % 37
    one_hot = torch.nn.functional.one_hot(labels, 37).float()
    with torch.no_grad():
        logits = model(x)
        expected = -torch.log_softmax(logits.double(), dim=-1)[torch.arange(9), labels].mean()
        assert float(model.loss_fn(logits, one_hot)) == pytest.approx(float(expected), rel=1e-6)
        _, target = model.metric_inputs(logits, one_hot)
        assert torch.equal(target, labels)


def test_without_validation_data_the_final_values_are_the_training_ones():
    """The course trains the generators on every n-gram, validating on nothing: reports compare the training values."""
    unvalidated = {"seed": 0, "history": {"loss": [2.0, 1.5], "accuracy": [0.2, 0.3], "val_loss": [],
                                          "val_accuracy": []}}
    validated = {"seed": 1, "history": {"loss": [2.0], "accuracy": [0.2], "val_loss": [1.7], "val_accuracy": [0.25]}}
    assert (report.final_key(unvalidated, "accuracy"), report.final_key(validated, "accuracy")) == (
        "accuracy", "val_accuracy")
    assert report.final_values_by_seed("keras", [unvalidated, validated], "accuracy") == {0: 0.3, 1: 0.25}
