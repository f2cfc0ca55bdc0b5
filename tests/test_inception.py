"""InceptionV3 transfer learning (c2w3_inception_*): name map, pretrained .h5, frozen trunk, per-block parity.

This process imports torch only; the Keras halves run in a Keras worker (`blocks` job) or in the
TF-only script tests/keras_inception.py. Fast by default (one torch build, about 3 s); the tests that
build the Keras model or push 150x150 images through both trunks are slow-marked.

Tolerance: each block's values are compared with the forward check's rule, 1e-5 * max(1, max |value|)
(parity.compare.forward_tolerance). Blocks end in BatchNorm + ReLU, so with random weights every block's
activations stay O(1) (measured max 1.8-2.3 for mixed0-7) and float32 rounding does not pile up with
depth: measured 1.3e-6 to 2.1e-6 per block, 5-9 units of eps32 * max |value|; the sigmoid output 1.2e-7.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from parity import align, compare, jobs
from parity.catalog import get_spec, shaped_by_data
from parity.errors import DataError
from parity.inception import (KERAS_LOAD_ORDER, NOTOP_FILE, block_rows, blocks_path, blocks_tag, read_notop_h5,
                              resolve_weights, trunk_weights, weights_overrides, write_notop_h5)
from parity.weights import load_keras_layers
from torch_models import build
from torch_models.transfer import InceptionTransfer, same_avg_pool
from torch_models.weights import load_keras_layers_into

MODEL = "c2w3_inception_cats_dogs"
KERAS_SCRIPT = Path(__file__).with_name("keras_inception.py")
SEED = 0
SAMPLES = 16


@pytest.fixture(scope="module")
def model() -> InceptionTransfer:
    torch.set_num_threads(1)
    return build(MODEL)


def _paths(model: torch.nn.Module) -> dict[str, str]:
    paths = {id(module): name for name, module in model.named_modules()}
    return {keras_name: paths[id(module)] for keras_name, module in model.keras_layers().items()}


def test_keras_names_map_to_torchvision_modules_in_creation_order(model):
    paths = _paths(model)
    assert len(paths) == 2 * 70 + 2  # 70 conv2d_bn units to mixed7, hidden, output
    assert paths["conv2d"] == "trunk.Conv2d_1a_3x3.conv" and paths["batch_normalization"] == "trunk.Conv2d_1a_3x3.bn"
    assert paths["conv2d_4"] == "trunk.Conv2d_4a_3x3.conv"
    assert paths["conv2d_5"] == "trunk.Mixed_5b.branch1x1.conv"  # mixed0 = Mixed_5b
    assert paths["conv2d_11"] == "trunk.Mixed_5b.branch_pool.conv"
    assert paths["conv2d_26"] == "trunk.Mixed_6a.branch3x3.conv"  # mixed3 = Mixed_6a
    assert paths["batch_normalization_69"] == "trunk.Mixed_6e.branch_pool.bn"  # mixed7 = Mixed_6e
    assert [name for name in model.trunk._modules][-1] == "Mixed_6e"
    assert (paths["hidden"], paths["output"]) == ("hidden", "output")


def test_load_order_holds_the_trunk_first():
    """The file's first 140 layers with weights are the trunk's 70 conv2d_bn units: the rest lie beyond mixed7."""
    names = [name for name, _ in KERAS_LOAD_ORDER]
    assert len(names) == len(set(names)) == 188
    trunk = {name for name, _ in KERAS_LOAD_ORDER[:140]}
    assert trunk == {f"{prefix}_{i}" if i else prefix for prefix in ("conv2d", "batch_normalization")
                     for i in range(70)}


def test_parameter_counts_are_the_course_s_less_the_batchnorm_accounting(model):
    spec = get_spec(MODEL)
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    # Keras: 47,512,481 = trunk 8,975,264 (conv 8,947,040 + 3 x 9,408 BatchNorm channels) + head 38,537,217.
    assert total == spec.course_params + align.torch_extra_parameters(spec) == 47_512_481 - 9_408
    assert trainable == 38_537_217  # the head only, as Keras' trainable count


def test_frozen_trunk_stays_in_inference_mode_when_lightning_trains(model):
    model.train()
    batchnorms = [m for m in model.trunk.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    assert len(batchnorms) == 70 and not any(bn.training for bn in batchnorms)
    assert model.dropout.training and model.hidden.training
    assert not any(p.requires_grad for p in model.trunk.parameters())
    native = InceptionTransfer(MODEL, align.Alignment(frozenset({"frozen_batchnorm_mode"})))
    native.train()
    assert all(m.training for m in native.trunk.modules())  # what requires_grad=False alone leaves


def test_same_avg_pool_averages_only_pixels_inside_the_image():
    x = torch.ones(1, 1, 3, 3)
    assert torch.equal(same_avg_pool(align.ALIGNED)(x), x)  # Keras: the mean of ones is one everywhere
    native = same_avg_pool(align.Alignment(frozenset({"avgpool_count_include_pad"})))(x)[0, 0]
    assert native[0, 0].item() == pytest.approx(4 / 9) and native[0, 1].item() == pytest.approx(6 / 9)


def _fake_notop(path: Path, names: list[str]) -> None:
    """A tiny file in the course's layout: one array per variable, layers named `names` in file order."""
    layers = []
    for index, (name, (_, kind)) in enumerate(zip(names, KERAS_LOAD_ORDER)):
        variables = ("kernel",) if kind == "Conv2D" else ("beta", "moving_mean", "moving_variance")
        layers.append((name, {variable: np.full((2,), index, np.float32) for variable in variables}))
    write_notop_h5(path, layers, unweighted=["input_1", "activation_1"])


def test_h5_layers_are_named_by_position_as_keras_loads_them(tmp_path):
    path = tmp_path / "notop.h5"
    _fake_notop(path, [f"layer_{i}" for i in reversed(range(188))])  # names that say nothing
    layers = read_notop_h5(path)
    assert [(layer.name, layer.kind) for layer in layers] == list(KERAS_LOAD_ORDER)
    assert layers[10].name == "conv2d_8" and layers[10].arrays["kernel"][0] == 10
    assert set(layers[1].arrays) == {"beta", "moving_mean", "moving_variance"} and not layers[1].trainable


def test_h5_that_is_not_inception_notop_is_refused_naming_weights(tmp_path):
    short = tmp_path / "short.h5"
    write_notop_h5(short, [("conv2d_1", {"kernel": np.zeros(2, np.float32)})])
    with pytest.raises(DataError, match=r"holds 1 layers with weights; InceptionV3\(include_top=False\) has 188.*--weights"):
        read_notop_h5(short)
    garbage = tmp_path / "garbage.h5"
    garbage.write_bytes(b"not hdf5")
    with pytest.raises(DataError, match="not a legacy Keras weights .h5.*--weights"):
        read_notop_h5(garbage)


def test_without_weights_offline_refuses_and_names_weights(tmp_path, monkeypatch):
    """The choice: a run never trains on a random frozen trunk; offline without --weights it stops before training."""
    monkeypatch.setenv("PARITY_OFFLINE", "1")
    monkeypatch.setenv("PARITY_CACHE_DIR", str(tmp_path / "cache"))
    with pytest.raises(DataError, match=rf"needs the pretrained InceptionV3 weights: .*{NOTOP_FILE}.*not attempted: "
                                        r"PARITY_OFFLINE=1.*or pass --weights PATH"):
        resolve_weights(get_spec(MODEL), None)
    with pytest.raises(DataError, match="no such .h5 file; pass --weights PATH"):
        resolve_weights(get_spec(MODEL), str(tmp_path / "missing.h5"))
    local = tmp_path / "mine.h5"
    _fake_notop(local, [f"x{i}" for i in range(188)])
    assert resolve_weights(get_spec(MODEL), str(local)) == local.resolve()
    assert weights_overrides(get_spec(MODEL), {"other": {}}, local) == {
        "other": {}, MODEL: {"layers": {"weights": str(local)}}}
    assert trunk_weights(get_spec("c1w3_fmnist_cnn"), None) is None
    with pytest.raises(DataError, match="c1w3_fmnist_cnn has no pretrained trunk"):
        trunk_weights(get_spec("c1w3_fmnist_cnn"), str(local))


@pytest.mark.slow
def test_both_frameworks_load_the_same_h5_to_the_same_trunk(tmp_path):
    """The course's path: Keras load_weights(h5) by position, torch h5py by the same names; every block agrees."""
    inputs = np.random.default_rng(1).uniform(-1, 1, (SAMPLES, 150, 150, 3)).astype(np.float32)
    np.save(tmp_path / "inputs.npy", inputs)
    subprocess.run([sys.executable, str(KERAS_SCRIPT), str(tmp_path), MODEL], check=True, timeout=600)
    with shaped_by_data({MODEL: {"layers": {"weights": str(tmp_path / "notop.h5")}}}):
        model = build(MODEL)
    torch_blocks = {key: value for key, value in model.block_outputs(inputs).items() if key.startswith("mixed")}
    with np.load(tmp_path / "keras-blocks.npz") as data:
        keras_blocks = {key: data[key] for key in data.files}
    for row in block_rows(keras_blocks, torch_blocks):
        assert row["max_abs_diff"] <= compare.FORWARD_TOLERANCE * max(1.0, row["max_abs_activation"]), row


@pytest.fixture(scope="module")
def keras_blocks(tmp_path_factory) -> Path:
    """A Keras worker's `blocks` job: every variable random (seed 0), the export and each block's values."""
    workdir = tmp_path_factory.mktemp("blocks")
    inputs = np.random.default_rng(0).uniform(-1, 1, (SAMPLES, 150, 150, 3)).astype(np.float32)
    np.save(jobs.probe_inputs_path(workdir, MODEL), inputs)
    with jobs.worker_pool(threads=1, quiet=True) as workers:
        workers.run("keras", {"kind": "blocks", "models": [MODEL], "seed": SEED}, workdir)
    return workdir


def _rows(workdir: Path, alignment: align.Alignment = align.ALIGNED, swap: tuple[str, str] | None = None) -> dict:
    """The per-block rows of a torch model built under `alignment`, its keras_layers() with two names swapped."""
    model = build(MODEL, alignment)
    if swap:
        mapping = model.keras_layers()
        mapping[swap[0]], mapping[swap[1]] = mapping[swap[1]], mapping[swap[0]]
        model.keras_layers = lambda: mapping
    load_keras_layers_into(model, load_keras_layers(jobs.init_weights_path(workdir, blocks_tag(MODEL, SEED))))
    with np.load(blocks_path(workdir, "keras", MODEL, SEED)) as data:
        keras_values = {key: data[key] for key in data.files}
    return {row["block"]: row for row in block_rows(keras_values, model.block_outputs(
        np.load(jobs.probe_inputs_path(workdir, MODEL))))}


def _passes(row: dict) -> bool:
    return row["max_abs_diff"] <= compare.forward_tolerance(np.array([row["max_abs_activation"]]))


@pytest.mark.slow
def test_every_block_agrees_on_random_weights(keras_blocks):
    rows = _rows(keras_blocks)
    assert list(rows) == [f"mixed{i}" for i in range(8)] + ["hidden", "outputs"]
    for row in rows.values():
        assert _passes(row) and row["eps_units"] < 100, row  # measured <= 9 eps units


@pytest.mark.slow
@pytest.mark.parametrize("planted, first_block", [
    ({"native": "avgpool_count_include_pad"}, "mixed0"),  # torchvision's own pooling: measured 0.65 at mixed0
    ({"native": "batchnorm_epsilon"}, "mixed0"),  # torch's eps 1e-5: measured 4.8e-3 at mixed0, 3.5e-5 at the output
    # mixed0's branch1x1 and branch3x3dbl_1 are both 1x1 192 -> 64: shapes pass, values do not (and their BatchNorms)
    ({"swap": ("conv2d_5", "conv2d_8")}, "mixed0"),
    ({"swap": ("batch_normalization_60", "batch_normalization_61")}, "mixed7"),  # mixed7's 1x1 192 units
])
def test_the_check_fails_on_planted_errors(keras_blocks, planted, first_block):
    alignment = align.Alignment(frozenset({planted["native"]})) if "native" in planted else align.ALIGNED
    rows = _rows(keras_blocks, alignment, planted.get("swap"))
    failed = [name for name, row in rows.items() if not _passes(row)]
    assert failed and failed[0] == first_block and "outputs" in failed, rows
