"""The Part 3 text classifiers in both frameworks (tf_models/text.py, torch_models/text.py), on hand-made token ids.

The test process imports torch only; every Keras half runs in one Keras worker (parity.jobs), as
`parity check` runs it: the real export of random weights (tf_models.weights.save_forward_check),
then here the real transfer (torch_models.weights), the torch half and parity.compare's verdict.
Tolerance: the forward check's own, 1e-5 * max(1, |output|) (parity.compare.forward_tolerance); every
output here is a probability, so 1e-5. Measured by the same check on 256 hand-made reviews, random weights,
seeds 0-2 (ids U[2, vocab), each row pre-padded to a random share of its length):
  T = 120 or 32 (fixed-length models): 6e-8 to 2.1e-7 for every model;
  T = 1,000 subwords: GAP 4.8e-7, Conv1D 3.6e-7, BiLSTM1 1.2e-7, BiLSTM2 1.2e-7;
  T = 3,000 subwords (about the longest IMDB review): GAP 1.1e-6, Conv1D 3.9e-7, BiLSTM1 1.8e-7, BiLSTM2 1.2e-7.
The recurrent layers do not accumulate rounding over long inputs (their random-weight dynamics contract);
the longest mean (GlobalAveragePooling1D over 3,000 steps) comes closest, 9x below the tolerance.
A planted mapping error moves the outputs by more than 100x the tolerance.
"""

from __future__ import annotations

import argparse
from typing import Any

import numpy as np
import pytest
import torch

from parity import align, cli, compare, jobs, lockstep
from parity.catalog import CATALOG, ModelSpec, get_spec, resolve_spec, shaped_by_data
from parity.datasets.split import DataSplit, make_split
from parity.plan import collate, train_plan
from parity.specs.part3 import DATA_SIZED_PARAMS, IMDB_GRU_LSTM_CONV, IMDB_GRU_LSTM_CONV_VARIANTS
from parity.weights import Assignment, load_keras_layers
from torch_models import build
from torch_models.weights import apply_plan, initial_model, save_forward_outputs, transfer_plan

SEED = 0
SAMPLES = 32
RAGGED_LENGTH = 400  # tokens of the longest review of a batch for the models that pad each batch to its longest
CLASSIFIERS = [model_id for model_id, spec in CATALOG.items()
               if spec.part == 3 and spec.trainable and spec.architecture != "text_generator"]
SUBWORD_VOCABULARY = 500  # what a fitted WordPiece vocabulary states in spec_overrides
GLOVE = "c3w3_sentiment140_glove"
GLOVE_VOCABULARY = 50
LOCKSTEP_STEPS = 3


def token_ids(model_id: str, vocab_size: int, rng: np.random.Generator) -> np.ndarray:
    """SAMPLES reviews of ids in [2, vocab_size), each pre-padded with 0 to a random share of the input length."""
    (length,) = get_spec(model_id).input_shape
    length = length or RAGGED_LENGTH
    x = rng.integers(2, vocab_size, (SAMPLES, length)).astype(np.int32)
    for row, kept in zip(x, rng.integers(length // 10, length + 1, SAMPLES)):
        row[: length - kept] = 0
    return x


def _glove_split(spec: ModelSpec, rng: np.random.Generator) -> DataSplit:
    """Hand-made token ids and binary labels: LOCKSTEP_STEPS batches of the GloVe model to train, 64 to validate."""
    def part(count: int) -> tuple[np.ndarray, np.ndarray]:
        return (rng.integers(1, GLOVE_VOCABULARY, (count, *spec.input_shape)).astype(np.int32),
                rng.integers(0, 2, count).astype(np.float32))
    return make_split(spec, "synthetic", part(LOCKSTEP_STEPS * spec.batch_size), part(64), "hand-made")


@pytest.fixture(scope="module")
def keras_side(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """What the Keras worker answers: parameter counts, the forward check's export and outputs, a GloVe lockstep."""
    torch.set_num_threads(1)
    workdir = tmp_path_factory.mktemp("text-models")
    rng = np.random.default_rng(SEED)
    overrides = {model_id: {"layers": {"vocab_size": SUBWORD_VOCABULARY}} for model_id in CLASSIFIERS
                 if get_spec(model_id).dataset == "imdb-subwords"}
    for model_id in CLASSIFIERS:
        vocab = overrides.get(model_id, {"layers": {"vocab_size": get_spec(model_id).layers.vocab_size}})
        np.save(jobs.probe_inputs_path(workdir, model_id), token_ids(model_id, vocab["layers"]["vocab_size"], rng))
    matrix = rng.uniform(-1, 1, (GLOVE_VOCABULARY, get_spec(GLOVE).layers.embedding_dim)).astype(np.float32)
    np.save(workdir / "glove.npy", matrix)
    glove_overrides = {"layers": {"vocab_size": GLOVE_VOCABULARY, "embedding_weights": str(workdir / "glove.npy")}}
    glove_spec = resolve_spec(get_spec(GLOVE), glove_overrides)
    split = _glove_split(glove_spec, rng)
    lockstep_job = {"kind": "lockstep", "model": GLOVE, "seed": SEED, "steps": LOCKSTEP_STEPS,
                    "batch_size": glove_spec.batch_size, "optimizer": lockstep.optimizer_to_job(glove_spec.optimizer),
                    "data": str(jobs.save_data(workdir, split)), "native": [], "alignments": [[]],
                    "rounding_control": False, "spec_overrides": {GLOVE: glove_overrides}}
    with jobs.worker_pool(threads=1, quiet=True) as workers:
        params = workers.run("keras", {"kind": "describe", "models": CLASSIFIERS}, workdir)["params"]
        workers.run("keras", {"kind": "forward", "models": CLASSIFIERS, "seed": SEED, "spec_overrides": overrides},
                    workdir)
        workers.run("keras", lockstep_job, workdir)
    return {"workdir": workdir, "params": params, "overrides": overrides, "glove": (glove_overrides, matrix, split)}


def torch_forward_rows(keras_side: dict[str, Any], model_id: str, alignment: align.Alignment = align.ALIGNED,
                       plant: Any = None) -> list[dict[str, Any]]:
    """The torch half of the forward check (as the torch worker runs it), `plant(plan)` changing the transfer first."""
    workdir, tag = keras_side["workdir"], jobs.run_tag(model_id, SEED)
    with shaped_by_data({model_id: keras_side["overrides"].get(model_id)}):
        model = build(model_id, align.ALIGNED)
    plan = transfer_plan(model, load_keras_layers(jobs.init_weights_path(workdir, tag)), alignment)
    if plant is not None:
        plant(plan)
    apply_plan(model, plan)
    save_forward_outputs(model, np.load(jobs.probe_inputs_path(workdir, model_id)), workdir, tag, True)
    return compare.forward_check_rows(workdir, model_id, SEED)


def test_both_frameworks_build_every_part3_classifier_with_the_course_count(keras_side):
    for model_id in CLASSIFIERS:
        spec = get_spec(model_id)
        expected = spec.course_params or DATA_SIZED_PARAMS[model_id](spec.layers)
        torch_params = sum(parameter.numel() for parameter in build(model_id).parameters())
        assert keras_side["params"][model_id] == expected, model_id
        assert torch_params == expected + align.torch_extra_parameters(spec), model_id
    # The course's own counts for the four bodies of the C3W3 comparison (course_models.md 5.9).
    assert [keras_side["params"][spec.id] for spec in (IMDB_GRU_LSTM_CONV, *IMDB_GRU_LSTM_CONV_VARIANTS)] == [
        169_997, 171_533, 172_941, 171_149]


def test_forward_parity_on_random_weights_for_every_part3_classifier(keras_side):
    for model_id in CLASSIFIERS:
        rows = torch_forward_rows(keras_side, model_id)
        for row in rows:
            assert row["passed"] and row["max_abs_diff"] <= row["tolerance"] == 1e-5, row
            assert row["max_abs_diff"] < 1e-6, row  # measured <= 3.6e-7 on these inputs
        assert [row["mode"] for row in rows] == (["inference", "training"] if model_id == GLOVE else ["inference"])
        assert rows[0]["output_shape"] == [SAMPLES, 5 if model_id == "c3w2_bbc_embed_gap" else 1], model_id


def test_the_subword_models_take_the_vocabulary_size_their_data_states(keras_side):
    for model_id, overrides in keras_side["overrides"].items():
        tag = jobs.run_tag(model_id, SEED)
        (embedding,) = [layer for layer in load_keras_layers(jobs.init_weights_path(keras_side["workdir"], tag))
                        if layer.name == "embedding"]
        with shaped_by_data({model_id: overrides}):
            table = build(model_id).embedding.weight
        assert embedding.arrays["embeddings"].shape == tuple(table.shape) == (SUBWORD_VOCABULARY, 64), model_id


def _planted_failure(rows: list[dict[str, Any]]) -> float:
    (row,) = rows
    assert not row["passed"]
    return row["max_abs_diff"] / row["tolerance"]


def test_the_check_fails_when_the_gru_gates_stay_in_keras_order(keras_side):
    # gru_layout native: Keras' [z, r, h] blocks land in torch's [r, z, n] slots unswapped.
    rows = torch_forward_rows(keras_side, "c3w3_imdb_gru_lstm_conv", align.Alignment(frozenset({"gru_layout"})))
    assert _planted_failure(rows) > 100


@pytest.mark.parametrize("model_id", ["c3w3_sarcasm_conv1d", "c3w3_imdb_conv1d", "c3w3_imdb_gru_lstm_conv_conv"])
def test_the_check_fails_when_the_conv1d_kernel_is_reshaped_instead_of_transposed(keras_side, model_id):
    def reshape_kernel(plan) -> None:
        right = plan.assignments["conv.weight"]
        kernel = right.array.transpose(2, 1, 0)  # back to Keras' (k, in, out)
        plan.assignments["conv.weight"] = Assignment(kernel.reshape(right.array.shape), True, "planted")

    assert _planted_failure(torch_forward_rows(keras_side, model_id, plant=reshape_kernel)) > 100


def _train_torch(model: torch.nn.Module, split: DataSplit, spec: ModelSpec) -> None:
    """LOCKSTEP_STEPS steps on the lockstep's batches, with the model's own optimizer (KerasAdam, aligned)."""
    optimizer = model.configure_optimizers()
    model.train()
    for rows in lockstep.batch_rows(train_plan(spec, len(split.train), SEED), LOCKSTEP_STEPS):
        x, y = (torch.from_numpy(array) for array in collate(split.train, rows))
        optimizer.zero_grad()
        model.loss_fn(model(x), y).backward()
        optimizer.step()


def test_the_pretrained_embedding_stays_frozen_while_the_rest_trains_in_both(keras_side):
    overrides, matrix, split = keras_side["glove"]
    exported = {when: {layer.name: layer for layer in load_keras_layers(path)} for when, path in (
        ("initial", jobs.init_weights_path(keras_side["workdir"], lockstep.TAG)),
        ("final", lockstep.keras_final_weights_path(keras_side["workdir"])))}
    assert not exported["initial"]["embedding"].trainable
    for when in ("initial", "final"):  # Keras built the table from the file and 3 Adam steps left it as it was
        assert np.array_equal(exported[when]["embedding"].arrays["embeddings"], matrix)
    assert not np.array_equal(exported["initial"]["conv"].arrays["kernel"], exported["final"]["conv"].arrays["kernel"])

    with shaped_by_data({GLOVE: overrides}):
        spec = get_spec(GLOVE)
        built = build(GLOVE)
        model = initial_model(GLOVE, align.ALIGNED, keras_side["workdir"], SEED, tag=lockstep.TAG)
        planted = initial_model(GLOVE, align.ALIGNED, keras_side["workdir"], SEED, tag=lockstep.TAG)
    assert not built.embedding.weight.requires_grad  # frozen by the builder, before any transfer
    assert np.array_equal(built.embedding.weight.detach().numpy(), matrix)
    conv_before = model.conv.weight.detach().clone()
    _train_torch(model, split, spec)
    assert np.array_equal(model.embedding.weight.detach().numpy(), matrix)
    assert not torch.equal(model.conv.weight, conv_before)
    planted.embedding.weight.requires_grad_(True)  # the check can fail: a trainable table moves
    _train_torch(planted, split, spec)
    assert not np.array_equal(planted.embedding.weight.detach().numpy(), matrix)


def test_frozen_embedding_torch_freezes_from_pretrained_by_default_and_a_state_dict_does_not_carry_it():
    # align.pretrained_embedding's comment: Keras' Embedding(weights=...) trains unless trainable=False, torch's
    # from_pretrained freezes unless freeze=False; requires_grad is not in a state_dict, so the builder freezes.
    matrix = torch.ones(4, 3)
    assert not torch.nn.Embedding.from_pretrained(matrix).weight.requires_grad
    reloaded = torch.nn.Embedding(4, 3)
    reloaded.load_state_dict(torch.nn.Embedding.from_pretrained(matrix).state_dict())
    assert reloaded.weight.requires_grad


def test_a_pretrained_matrix_of_another_shape_is_refused_with_the_fix(tmp_path):
    np.save(tmp_path / "glove.npy", np.zeros((7, 100), np.float32))
    layers = resolve_spec(get_spec(GLOVE), {"layers": {"embedding_weights": str(tmp_path / "glove.npy")}}).layers
    with pytest.raises(ValueError, match=r"float32 \(7, 100\).*needs float32 \(145856, 100\).*spec_overrides"):
        align.pretrained_embedding(layers)
    missing = resolve_spec(get_spec(GLOVE), {"layers": {"embedding_weights": str(tmp_path / "none.npy")}}).layers
    with pytest.raises(ValueError, match="cannot read the pretrained embedding matrix .*load the data again"):
        align.pretrained_embedding(missing)


def test_the_variants_share_the_base_lab_and_change_only_the_body():
    base = IMDB_GRU_LSTM_CONV
    for variant in IMDB_GRU_LSTM_CONV_VARIANTS:
        assert variant.variant_of == base.id and variant.id.startswith(f"{base.id}_")
        assert CATALOG[variant.id] is variant and get_spec(variant.id) is variant
        same = ("dataset", "data", "input_shape", "optimizer", "loss", "epochs", "batch_size", "validation")
        assert all(getattr(variant, name) == getattr(base, name) for name in same), variant.id
        h = variant.layers
        assert (h.vocab_size, h.embedding_dim, h.hidden_units) == (base.layers.vocab_size, base.layers.embedding_dim,
                                                                    base.layers.hidden_units)
    assert [variant.architecture for variant in IMDB_GRU_LSTM_CONV_VARIANTS] == [
        "embedding_flatten_classifier", "bilstm_classifier", "conv1d_classifier"]


def test_parity_list_counts_the_course_models_and_lists_each_variant_under_its_model(monkeypatch, capsys):
    rows = [{"id": spec.id, "part": spec.part, "week": spec.week, "dataset": spec.dataset, "task": spec.task,
             "variant_of": spec.variant_of, "implemented": {"keras": True, "lightning": spec.part == 3},
             "params": {"keras": 1, "lightning": 1}} for spec in CATALOG.values()]
    monkeypatch.setattr("parity.runner.describe_models", lambda device, threads: rows)
    assert cli._cmd_list(argparse.Namespace(device="cpu", threads=1, json=False)) == 0
    lines = capsys.readouterr().out.splitlines()
    part3 = sum(spec.part == 3 and spec.variant_of is None for spec in CATALOG.values())
    assert f"{part3} of 42 course models implemented in both frameworks" in lines[-1]
    base = next(index for index, line in enumerate(lines) if line.startswith(f"{IMDB_GRU_LSTM_CONV.id} "))
    assert [line.split()[0] for line in lines[base + 1:base + 4]] == [v.id for v in IMDB_GRU_LSTM_CONV_VARIANTS]
    assert all(line.startswith(f"  {IMDB_GRU_LSTM_CONV.id}_") for line in lines[base + 1:base + 4])
