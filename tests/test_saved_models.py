"""`parity run --save`: the kept files and their sizes, the bit-for-bit reload check (and its failure on a planted
change), safe loading's refusals, and inputs.json encoding text and pixels exactly as training did.

This process imports torch, never TensorFlow; the Keras half runs in a child process (cli_helpers.
run_script_on_cases). One synthetic run, `parity run c3w2_sarcasm_embed_gap --synthetic --epochs 1 --save`
(about 35 s on one thread), provides the files. "Bit for bit" is np.array_equal: no tolerance, since the
loaded model computes the same operations on the same weights as the saved one. The planted change adds 1e-3
to one output bias, which moves every sigmoid output by up to 2.5e-4, far above any float32 rounding.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from cli_helpers import run_cli, run_script_on_cases
from parity import saved_models
from parity.catalog import get_spec
from parity.datasets import load_dataset
from parity.datasets.sarcasm import FILE as SARCASM_FILE, read_headlines
from parity.errors import ParityError
from parity.plan import collate
from parity.runner import PROBE_SIZE
from torch_models import saving

MODEL = "c3w2_sarcasm_embed_gap"
PLANTED = 1e-3  # added to one output bias after saving

KERAS_SCRIPT = """
import json, sys
from pathlib import Path
import keras
import numpy as np
from parity import saved_models
from parity.errors import ParityError
from tf_models import saving

case = json.load(open(sys.argv[1]))[0]
run_dir, inputs = Path(case["run_dir"]), np.load(case["inputs"])
model = saving.load_trained(run_dir, 0)
intact = saving.check_reload(model, run_dir, 0, inputs)
bias = model.get_layer("output").bias
bias.assign(bias.numpy() + np.eye(1, bias.shape[0], dtype="float32")[0] * case["planted"])
planted = saving.check_reload(model, run_dir, 0, inputs)

lambda_dir = Path(case["lambda_dir"])
path = saved_models.keras_model_path(lambda_dir, 0)
path.parent.mkdir(parents=True)
keras.Sequential([keras.Input((3,)), keras.layers.Lambda(lambda x: x * 2)]).save(path)
try:
    saving.load_trained(lambda_dir, 0)
    refusal = None
except ParityError as error:
    refusal = str(error)
json.dump([{"intact": intact, "planted": planted, "refusal": refusal}], open(sys.argv[2], "w"))
"""


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("saved-run")
    result = run_cli("run", MODEL, "--synthetic", "--epochs", "1", "--save", "--quiet", "--out", str(out))
    assert result.returncode == 0, result.stderr[-3000:]
    return out / MODEL


@pytest.fixture(scope="module")
def probe_inputs(run_dir: Path) -> np.ndarray:
    """The probe inputs the run compared on: the first PROBE_SIZE validation samples of the same synthetic data."""
    return load_dataset(get_spec(MODEL), synthetic=True).probe_inputs(PROBE_SIZE)


def _report(run_dir: Path) -> dict:
    return json.loads((run_dir / "report.json").read_text())


def test_run_keeps_four_files_per_seed_with_their_sizes_and_reloads_them_bit_for_bit(run_dir):
    saved = _report(run_dir)["saved"]
    paths = {"keras": [saved_models.keras_model_path(run_dir, 0), saved_models.keras_light_path(run_dir, 0)],
             "lightning": [saved_models.lightning_checkpoint_path(run_dir, 0),
                           saved_models.lightning_state_dict_path(run_dir, 0)]}
    for framework, expected in paths.items():
        (row,) = saved["frameworks"][framework]
        assert [entry["file"] for entry in row["files"]] == [path.name for path in expected]
        assert [entry["bytes"] for entry in row["files"]] == [path.stat().st_size for path in expected]
        assert all(reload["loaded"] and reload["predictions_equal"] and reload["max_abs_diff"] == 0.0
                   for reload in row["reloads"]), row["reloads"]
        assert row["equal"]
    assert saved["equal"] and saved["probe_samples"] == PROBE_SIZE
    full, light = (entry["bytes"] for entry in saved["frameworks"]["keras"][0]["files"])
    # Adam keeps two moment slots per weight: the file with them is about 3x the weights alone (measured 0.34).
    assert 0.3 < light / full < 0.4
    # torch 2.14, Lightning 2.6.6: the checkpoint holds tensors and plain containers only, so weights_only loads it.
    checkpoint = saved["frameworks"]["lightning"][0]["reloads"][1]
    assert checkpoint["file"].endswith(".ckpt") and checkpoint["loaded"] and not checkpoint["required"]
    assert "## Saved models" in (run_dir / "report.md").read_text()


def test_runner_writes_the_inputs_record_with_the_fitted_vocabulary(run_dir):
    record = saved_models.read_inputs(run_dir)
    spec = get_spec(MODEL)
    split = load_dataset(spec, synthetic=True)
    assert (record["model"], record["task"], record["input_shape"]) == (MODEL, "binary", list(spec.input_shape))
    assert record["image"] is None and record["series"] is None and record["classes"] is None
    text = record["text"]
    assert text["vocabulary"] == list(split.vocabulary) and text["vocabulary"][:2] == ["", "<OOV>"]
    assert (text["tokenizer"], text["num_words"], text["max_length"]) == ("keras2_tokenizer", 10_000, 100)
    assert np.array_equal(saved_models.encode_texts(text, ["Totally heroic AREA man!"]),
                          saved_models.encode_texts(text, ["totally heroic area man"]))


def test_torch_reload_check_fails_on_a_planted_change(run_dir, probe_inputs):
    model = saving.load_trained(run_dir, 0)
    assert saving.check_reload(model, run_dir, 0, probe_inputs)["equal"]
    with torch.no_grad():
        model.keras_layers()["output"].bias[0] += PLANTED
    planted = saving.check_reload(model, run_dir, 0, probe_inputs)
    assert not planted["equal"]
    for reload in planted["reloads"]:  # the state_dict and the checkpoint both hold the weights as saved
        assert reload["loaded"] and not reload["predictions_equal"] and 1e-6 < reload["max_abs_diff"] < PLANTED


def test_keras_reload_check_fails_on_a_planted_change_and_safe_mode_refuses_a_lambda(run_dir, probe_inputs, tmp_path):
    np.save(tmp_path / "inputs.npy", probe_inputs)
    (result,) = run_script_on_cases(KERAS_SCRIPT, tmp_path, [{
        "run_dir": str(run_dir), "inputs": str(tmp_path / "inputs.npy"), "planted": PLANTED,
        "lambda_dir": str(tmp_path / "lambda-run")}])
    assert result["intact"]["equal"]
    assert not result["planted"]["equal"]
    assert all(1e-6 < reload["max_abs_diff"] < PLANTED for reload in result["planted"]["reloads"])
    refusal = result["refusal"]
    assert refusal is not None and "\n" not in refusal, refusal
    assert "safe_mode=True" in refusal and "Lambda" in refusal


class Payload:
    """Unpickling this object would create the directory `marker`: the code a malicious file would run."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return os.mkdir, (str(self.marker),)


def test_torch_load_trained_refuses_a_pickle_with_an_arbitrary_object_without_running_it(run_dir, tmp_path):
    (tmp_path / "report.json").write_text((run_dir / "report.json").read_text())
    path = saved_models.lightning_state_dict_path(tmp_path, 0)
    path.parent.mkdir()
    marker = tmp_path / "code-ran"
    torch.save({"weight": torch.zeros(2), "payload": Payload(marker)}, path)
    with pytest.raises(ParityError) as refused:
        saving.load_trained(tmp_path, 0)
    message = str(refused.value)
    assert "\n" not in message and "not a plain state_dict" in message and "mkdir" in message, message
    assert not marker.exists()
    torch.save({"state_dict": {"weight": torch.zeros(2)}, "epoch": 1}, path)  # loads safely, but is no state_dict
    with pytest.raises(ParityError, match="not a plain state_dict"):
        saving.load_trained(tmp_path, 0)


@pytest.mark.parametrize("model_id", ["c3w2_sarcasm_embed_gap", "c3w3_sarcasm_bilstm"])
def test_inputs_record_encodes_real_training_headlines_as_training_did(model_id, shared_data, tmp_path):
    spec = get_spec(model_id)
    split = load_dataset(spec, shared_data / "sarcasm")
    saved_models.write_inputs(tmp_path, saved_models.inputs_record(spec, split))
    text = saved_models.read_inputs(tmp_path)["text"]
    headlines, _ = read_headlines(shared_data / "sarcasm" / SARCASM_FILE)
    rows = np.arange(8)
    encoded = saved_models.encode_texts(text, [headlines[row] for row in rows])
    assert np.array_equal(encoded, collate(split.train, rows)[0])
    assert encoded.shape[1] == (spec.data.max_length or max(len(split.train.x[row]) for row in rows))


def test_image_record_scales_pixels_as_training_did():
    spec = get_spec("c1w2_fmnist_dnn")
    split = load_dataset(spec, synthetic=True)
    image = saved_models.inputs_record(spec, split)["image"]
    assert image == {"size": [28, 28], "channels": 1, "color_mode": "grayscale", "scale": 255.0, "divide": True,
                     "offset": 0.0, "resize": "bilinear"}
    rows = np.arange(5)
    assert np.array_equal(saved_models.scale_pixels(image, split.train.x[rows]), collate(split.train, rows)[0])


def test_image_record_of_a_preprocessed_model_round_trips_to_the_training_pixels(tmp_path):
    """inception_v3's preprocess is / 127.5 then - 1: inputs.json keeps the offset, so predict feeds [-1, 1] too."""
    spec = get_spec("c2w3_inception_horse_human")
    split = load_dataset(spec, synthetic=True)
    saved_models.write_inputs(tmp_path, saved_models.inputs_record(spec, split))
    image = saved_models.read_inputs(tmp_path)["image"]
    assert (image["scale"], image["divide"], image["offset"]) == (127.5, True, -1.0)
    rows = np.arange(6)
    pixels = saved_models.scale_pixels(image, split.train.x[rows])
    assert pixels.dtype == np.float32 and np.array_equal(pixels, collate(split.train, rows)[0])
    assert pixels.min() < 0 and -1.0 <= pixels.min() and pixels.max() <= 1.0


def test_series_record_gives_the_window():
    spec = get_spec("c4w3_ts_simplernn")
    record = saved_models.inputs_record(spec, load_dataset(spec, synthetic=True))
    assert record["series"] == {"window": spec.data.window_size, "expand_dims": spec.data.expand_dims}
    assert record["text"] is None and record["image"] is None


def test_read_inputs_of_a_run_without_save_names_the_flag(tmp_path):
    with pytest.raises(FileNotFoundError, match="--save"):
        saved_models.read_inputs(tmp_path)
