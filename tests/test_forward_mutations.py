"""The forward check can fail: planted mapping errors are caught, the real transfer passes (imports torch only).

The Keras half runs in a TF-only subprocess (tests/keras_forward_models.py: the real
tf_models.weights.save_forward_check on small models with random weights). Here the real
transfer plan (parity.weights converters via torch_models.weights) is built for the torch twins,
a mutation is planted in the converted arrays, the real loader applies it, the real torch half
(save_forward_outputs) runs, and parity.compare.forward_check_rows judges. Tolerance: the
check's own, 1e-5 * max(1, |output|) (parity.compare.forward_tolerance).
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from parity import align, compare, jobs
from parity.weights import Assignment, KerasLayer, WeightMappingError, load_keras_layers
from torch_models.layers import batchnorm2d
from torch_models.weights import apply_plan, save_forward_outputs, transfer_plan

SEED = 0  # tests/keras_forward_models.py SEED
KERAS_SCRIPT = Path(__file__).with_name("keras_forward_models.py")


class Lstm(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lstm, self.output = nn.LSTM(3, 5, batch_first=True), nn.Linear(5, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.output(self.lstm(x)[1][0][-1])

    def predict_outputs(self, logits: torch.Tensor) -> torch.Tensor:
        return torch.softmax(logits, dim=-1)

    def keras_layers(self) -> dict[str, nn.Module]:
        return {"lstm": self.lstm, "output": self.output}


class Gru(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.gru, self.output = nn.GRU(3, 5, batch_first=True), nn.Linear(5, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.output(self.gru(x)[1][-1])

    def predict_outputs(self, logits: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(logits)

    def keras_layers(self) -> dict[str, nn.Module]:
        return {"gru": self.gru, "output": self.output}


class BatchnormCnn(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv, self.batchnorm, self.output = nn.Conv2d(2, 4, 3), batchnorm2d(4, align.ALIGNED), nn.Linear(64, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.output(torch.flatten(F.relu(self.batchnorm(self.conv(x.permute(0, 3, 1, 2)))), 1))

    def predict_outputs(self, logits: torch.Tensor) -> torch.Tensor:
        return torch.softmax(logits, dim=-1)

    def keras_layers(self) -> dict[str, nn.Module]:
        return {"conv": self.conv, "batchnorm": self.batchnorm, "output": self.output}


class FlattenDropoutCnn(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv, self.dropout = nn.Conv2d(2, 4, 3), nn.Dropout(0.5)
        self.hidden, self.output = nn.Linear(64, 8), nn.Linear(8, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = self.dropout(torch.flatten(F.relu(self.conv(x.permute(0, 3, 1, 2))), 1))
        return self.output(F.relu(self.hidden(features)))

    def predict_outputs(self, logits: torch.Tensor) -> torch.Tensor:
        return torch.softmax(logits, dim=-1)

    def keras_layers(self) -> dict[str, nn.Module]:
        return {"conv": self.conv, "hidden": self.hidden, "output": self.output}


class NestedFrozen(nn.Module):
    """A frozen Keras BatchNormalization uses its moving statistics even in training: the trunk stays in eval."""

    def __init__(self) -> None:
        super().__init__()
        self.trunk = nn.Sequential(nn.Conv2d(2, 3, 3), batchnorm2d(3, align.ALIGNED), nn.ReLU(), nn.Flatten())
        self.dropout, self.output = nn.Dropout(0.2), nn.Linear(48, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.output(self.dropout(self.trunk(x.permute(0, 3, 1, 2))))

    def train(self, mode: bool = True) -> NestedFrozen:
        super().train(mode)
        self.trunk.eval()
        return self

    def predict_outputs(self, logits: torch.Tensor) -> torch.Tensor:
        return torch.softmax(logits, dim=-1)

    def keras_layers(self) -> dict[str, nn.Module]:
        return {"trunk/conv": self.trunk[0], "trunk/batchnorm": self.trunk[1], "output": self.output}


class Text(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.embedding = nn.Embedding(20, 4)
        self.bilstm = nn.LSTM(4, 3, batch_first=True, bidirectional=True)
        self.bigru = nn.GRU(6, 2, batch_first=True, bidirectional=True)
        self.output = nn.Linear(4, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        sequences = self.bilstm(self.embedding(x.long()))[0]
        final = self.bigru(sequences)[1]  # (directions, N, H): Keras concatenates forward, backward
        return self.output(torch.cat([final[0], final[1]], dim=-1))

    def predict_outputs(self, logits: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(logits)

    def keras_layers(self) -> dict[str, nn.Module]:
        return {"embedding": self.embedding, "bilstm": self.bilstm, "bigru": self.bigru, "output": self.output}


class Series(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1d, self.rnn = nn.Conv1d(1, 4, 3), nn.RNN(4, 3, batch_first=True)
        self.lstm, self.output = nn.LSTM(3, 3, batch_first=True), nn.Linear(3, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        causal = F.pad(x.permute(0, 2, 1), (2, 0))  # Keras padding='causal': kernel - 1 steps on the left
        sequences = self.rnn(F.relu(self.conv1d(causal)).permute(0, 2, 1))[0]
        return self.output(self.lstm(sequences)[1][0][-1])

    def keras_layers(self) -> dict[str, nn.Module]:
        return {"conv1d": self.conv1d, "rnn": self.rnn, "lstm": self.lstm, "output": self.output}


TORCH_MODELS: dict[str, Callable[[], nn.Module]] = {
    "lstm": Lstm, "gru": Gru, "batchnorm_cnn": BatchnormCnn, "flatten_dropout_cnn": FlattenDropoutCnn,
    "nested_frozen": NestedFrozen, "text": Text, "series": Series,
}
TRAINING_MODE_MODELS = {"batchnorm_cnn", "flatten_dropout_cnn", "nested_frozen"}
Mutation = Callable[[dict[str, Assignment]], None]


@pytest.fixture(scope="module")
def keras_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    workdir = tmp_path_factory.mktemp("keras-forward")
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "TF_CPP_MIN_LOG_LEVEL": "2", "OMP_NUM_THREADS": "1"}
    result = subprocess.run([sys.executable, str(KERAS_SCRIPT), str(workdir)], env=env, capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return workdir


def _layers(workdir: Path, name: str) -> list[KerasLayer]:
    """The Keras export of test model `name` (tf_models.weights.export_layers, written by the Keras script)."""
    return load_keras_layers(jobs.init_weights_path(workdir, jobs.run_tag(name, SEED)))


def _check(keras_dir: Path, workdir: Path, name: str, mutation: Mutation | None = None) -> dict[str, dict]:
    """The forward check of test model `name` after `mutation` of the transfer plan: rows by mode."""
    shutil.copytree(keras_dir, workdir, dirs_exist_ok=True)
    torch.set_num_threads(1)
    torch.manual_seed(SEED)
    model = TORCH_MODELS[name]()
    tag = jobs.run_tag(name, SEED)
    plan = transfer_plan(model, _layers(workdir, name))
    if mutation:
        mutation(plan.assignments)
    apply_plan(model, plan)
    save_forward_outputs(model, np.load(jobs.probe_inputs_path(workdir, name)), workdir, tag, training_mode=True)
    return {row["mode"]: row for row in compare.forward_check_rows(workdir, name, SEED)}


def _replace(assignments: dict[str, Assignment], name: str, change: Callable[[np.ndarray], np.ndarray]) -> None:
    assignments[name] = dataclasses.replace(assignments[name], array=change(assignments[name].array.copy()))


def _swap_blocks(first: int, second: int, blocks: int) -> Callable[[np.ndarray], np.ndarray]:
    """Exchange two gate blocks of a torch recurrent tensor (gates stacked on axis 0)."""

    def change(array: np.ndarray) -> np.ndarray:
        parts = np.split(array, blocks, axis=0)
        parts[first], parts[second] = parts[second], parts[first]
        return np.concatenate(parts, axis=0)

    return change


def swap_lstm_input_and_forget_gates(assignments: dict[str, Assignment]) -> None:
    for name in ("lstm.weight_ih_l0", "lstm.weight_hh_l0", "lstm.bias_ih_l0"):
        _replace(assignments, name, _swap_blocks(0, 1, 4))


def swap_gru_reset_and_update_gates(assignments: dict[str, Assignment]) -> None:
    for name in ("gru.weight_ih_l0", "gru.weight_hh_l0", "gru.bias_ih_l0", "gru.bias_hh_l0"):
        _replace(assignments, name, _swap_blocks(0, 1, 3))


def leave_gru_recurrent_bias_at_zero(assignments: dict[str, Assignment]) -> None:
    _replace(assignments, "gru.bias_hh_l0", np.zeros_like)


def exchange_batchnorm_mean_and_variance(assignments: dict[str, Assignment]) -> None:
    mean, variance = assignments["batchnorm.running_mean"], assignments["batchnorm.running_var"]
    assignments["batchnorm.running_mean"] = dataclasses.replace(mean, array=variance.array)
    assignments["batchnorm.running_var"] = dataclasses.replace(variance, array=mean.array)


def keep_keras_flatten_order(assignments: dict[str, Assignment]) -> None:
    """The Dense rows left in Keras' (H, W, C) order instead of torch's (C, H, W)."""
    _replace(assignments, "hidden.weight", lambda w: w.reshape(8, 4, 4, 4).transpose(0, 2, 3, 1).reshape(8, 64))


@pytest.mark.parametrize("name", sorted(TORCH_MODELS))
def test_the_real_transfer_passes_in_every_mode(name, keras_dir, tmp_path):
    rows = _check(keras_dir, tmp_path, name)
    assert set(rows) == ({"inference", "training"} if name in TRAINING_MODE_MODELS else {"inference"})
    for row in rows.values():
        assert row["passed"], row


@pytest.mark.parametrize(("name", "mutation"), [
    ("lstm", swap_lstm_input_and_forget_gates),
    ("gru", swap_gru_reset_and_update_gates),
    ("gru", leave_gru_recurrent_bias_at_zero),
    ("batchnorm_cnn", exchange_batchnorm_mean_and_variance),
    ("flatten_dropout_cnn", keep_keras_flatten_order),
], ids=lambda value: getattr(value, "__name__", value))
def test_each_planted_mapping_error_fails_the_check(name, mutation, keras_dir, tmp_path):
    rows = _check(keras_dir, tmp_path, name, mutation)
    for row in rows.values():
        assert not row["passed"] and row["max_abs_diff"] > 100 * row["tolerance"], row


def test_a_frozen_batchnorm_that_trains_with_batch_statistics_fails_the_training_mode_check(keras_dir, tmp_path,
                                                                                          monkeypatch):
    # Keras runs a frozen BatchNormalization in inference mode even when training; torch's module.train() does not.
    monkeypatch.setattr(NestedFrozen, "train", nn.Module.train)
    rows = _check(keras_dir, tmp_path, "nested_frozen")
    assert rows["inference"]["passed"]
    assert not rows["training"]["passed"] and rows["training"]["moving_statistics_max_abs_diff"] > 1e-3


@pytest.mark.parametrize("name", sorted(TORCH_MODELS))
def test_every_transferred_tensor_matters(name, keras_dir, tmp_path):
    """Each tensor that holds Keras values (not a constant), zeroed alone, fails the check in some mode."""
    plan = transfer_plan(TORCH_MODELS[name](), _layers(keras_dir, name))
    varied = [tensor for tensor, a in plan.assignments.items() if a.array is not None and np.ptp(a.array) > 0]
    unnoticed = []
    for index, tensor in enumerate(varied):
        rows = _check(keras_dir, tmp_path / str(index), name,
                      lambda plan, tensor=tensor: _replace(plan, tensor, np.zeros_like))
        if all(row["passed"] for row in rows.values()):
            unnoticed.append(tensor)
    assert len(varied) >= 4 and not unnoticed


def test_frozen_keras_layers_and_constant_biases_arrive_without_gradients(keras_dir):
    model = NestedFrozen()
    apply_plan(model, transfer_plan(model, _layers(keras_dir, "nested_frozen")))
    frozen = {name for name, parameter in model.named_parameters() if not parameter.requires_grad}
    assert frozen == {"trunk.0.weight", "trunk.0.bias", "trunk.1.weight", "trunk.1.bias"}
    assert torch.equal(model.trunk[1].weight, torch.ones(3))  # scale=False: gamma is 1
    assert int(model.trunk[1].num_batches_tracked) == 0
    lstm = Lstm()
    apply_plan(lstm, transfer_plan(lstm, _layers(keras_dir, "lstm")))
    assert not lstm.lstm.bias_hh_l0.requires_grad and not lstm.lstm.bias_hh_l0.any()


def test_a_torch_model_with_unmapped_tensors_is_refused_naming_all_of_them(keras_dir):
    layers = _layers(keras_dir, "batchnorm_cnn")

    class Unmapped(BatchnormCnn):
        def __init__(self) -> None:
            super().__init__()
            self.extra = nn.Linear(2, 2)

        def keras_layers(self) -> dict[str, nn.Module]:
            return {"conv": self.conv, "output": self.output}

    with pytest.raises(WeightMappingError) as error:
        transfer_plan(Unmapped(), layers)
    message = str(error.value)
    assert "no torch module in keras_layers(): batchnorm (BatchNormalization)" in message
    assert ("no Keras layer assigns: batchnorm.weight, batchnorm.bias, extra.weight, extra.bias, "
            "batchnorm.running_mean, batchnorm.running_var, batchnorm.num_batches_tracked") in message
