"""`parity predict`: inputs encoded as training encoded them, both frameworks' answers, clear one-line errors.

The unit tests here are numpy only; the end-to-end tests use three tiny `--save` runs trained once
(tests/saved_runs.py) and call the real `parity predict` command.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from cli_helpers import run_cli
from PIL import Image
from saved_runs import FMNIST, SARCASM, SERIES

from parity import predict, saved_models
from parity.compare import forward_tolerance
from parity.datasets.decode import decode_one
from parity.errors import ParityError

FMNIST_IMAGE = {"size": [28, 28], "channels": 1, "color_mode": "grayscale", "scale": 255.0, "divide": True,
                "resize": "bilinear"}
# Each framework's own trained model: one epoch of aligned training leaves them apart by a drift that Adam grows
# from float32 rounding (parameters whose gradient is near 0 step by up to lr in either direction): measured
# 2.9e-3 on the Fashion-MNIST CNN's probabilities after 38 synthetic steps, 6e-8 on sarcasm, 0 on the series.
# 0.05 bounds it loosely (the drift's size depends on the CPU's rounding); the tight check is the same-weights one,
# within the forward check's tolerance (parity.compare.forward_tolerance: 1e-5, relative above magnitude 1).
DRIFT_TOLERANCE = 0.05


def test_a_png_is_decoded_resized_and_scaled_as_training_did(tmp_path: Path):
    rgb = np.random.default_rng(0).integers(0, 256, (56, 42, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(tmp_path / "shirt.png")
    x = predict.encode_image(tmp_path / "shirt.png", FMNIST_IMAGE)
    expected = decode_one((tmp_path / "shirt.png").read_bytes(), (28, 28), "grayscale").astype(np.float32) / 255
    assert x.shape == (28, 28, 1) and x.dtype == np.float32
    np.testing.assert_array_equal(x, expected)


def test_an_undecodable_image_is_a_one_line_error(tmp_path: Path):
    (tmp_path / "notes.png").write_text("not an image")
    with pytest.raises(ParityError, match="notes.png: not a decodable image"):
        predict.encode_image(tmp_path / "notes.png", FMNIST_IMAGE)
    with pytest.raises(ParityError, match="cannot read the image file"):
        predict.encode_image(tmp_path / "missing.png", FMNIST_IMAGE)


def test_a_window_is_read_from_commas_or_a_csv_file_and_must_have_the_windows_length(tmp_path: Path):
    series = {"window": 3, "expand_dims": False}
    np.testing.assert_array_equal(predict.encode_window("1, 2.5,-3", series), np.array([1, 2.5, -3], np.float32))
    (tmp_path / "window.csv").write_text("1\n2.5\n-3\n")
    np.testing.assert_array_equal(predict.encode_window(str(tmp_path / "window.csv"), series), [1, 2.5, -3])
    assert predict.encode_window("1,2,3", {"window": 3, "expand_dims": True}).shape == (3, 1)
    with pytest.raises(ParityError, match="2 values, the model's window is 3"):
        predict.encode_window("1,2", series)
    with pytest.raises(ParityError, match="not a series window"):
        predict.encode_window("1,two,3", series)


def test_answers_are_class_and_probability_or_the_value():
    inputs = {"task": "multiclass", "classes": ["a", "b", "c"]}
    assert predict.answer(np.array([0.1, 0.7, 0.2]), inputs) == pytest.approx(
        {"class": "b", "index": 1, "probability": 0.7})
    binary = predict.answer(np.array([0.2]), {"task": "binary", "classes": None})
    assert (binary["class"], binary["probability"]) == ("class 0", pytest.approx(0.8))
    assert predict.answer(np.array([19.5]), {"task": "regression", "classes": None}) == {"value": 19.5}


def test_a_run_without_saved_models_says_rerun_with_save(tmp_path: Path):
    (tmp_path / "c1w3_fmnist_cnn").mkdir()
    result = run_cli("predict", str(tmp_path / "c1w3_fmnist_cnn"), "x.png")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"parity: error: {tmp_path / 'c1w3_fmnist_cnn'} holds no saved models; rerun with --save: "
        f"`parity run MODEL --save --out {tmp_path}`"]


# ------------------------------------------------------------------------------------------ end to end


def _predicted(run_dir: Path, *inputs: str) -> list[dict]:
    result = run_cli("predict", str(run_dir), *inputs, "--json", "--threads", "1", "--device", "cpu")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def _agree(row: dict) -> None:
    """Both answers there; the trained models within the drift bound; the same weights within the forward tolerance."""
    keras, lightning = (np.array(row["outputs"][framework]) for framework in ("keras", "lightning"))
    assert keras.shape == lightning.shape and keras.size >= 1
    assert row["max_abs_diff"] == pytest.approx(np.abs(keras - lightning).max(), abs=1e-12)
    assert row["max_abs_diff"] < DRIFT_TOLERANCE * max(1.0, np.abs(keras).max())
    assert row["tolerance"] == pytest.approx(forward_tolerance(keras))
    assert row["same_weights_max_abs_diff"] <= row["tolerance"] and row["passed"]


@pytest.mark.slow
def test_fmnist_images_predicted_by_both_frameworks(saved_runs: dict[str, Path], tmp_path: Path):
    Image.fromarray(np.random.default_rng(1).integers(0, 256, (28, 28), dtype=np.uint8)).save(tmp_path / "a.png")
    Image.fromarray(np.random.default_rng(2).integers(0, 256, (40, 30, 3), dtype=np.uint8)).save(tmp_path / "b.jpg")
    rows = _predicted(saved_runs[FMNIST], str(tmp_path / "a.png"), str(tmp_path / "b.jpg"))
    assert [row["input"] for row in rows] == [str(tmp_path / "a.png"), str(tmp_path / "b.jpg")]
    for row in rows:
        _agree(row)
        assert len(row["outputs"]["keras"]) == 10 and sum(row["outputs"]["keras"]) == pytest.approx(1, abs=1e-5)
        for framework in ("keras", "lightning"):
            assert row[framework]["class"] == f"class {row[framework]['index']}"
            assert row[framework]["probability"] == pytest.approx(max(row["outputs"][framework]))
    table = run_cli("predict", str(saved_runs[FMNIST]), str(tmp_path / "a.png"), "--threads", "1", "--device", "cpu")
    assert table.returncode == 0, table.stderr
    header, line = table.stdout.splitlines()[1:3]
    assert header.split()[:3] == ["input", "keras", "lightning"] and line.count("(p ") == 2


@pytest.mark.slow
def test_sarcasm_sentence_encoded_with_the_runs_vocabulary(saved_runs: dict[str, Path]):
    run_dir = saved_runs[SARCASM]
    inputs = saved_models.read_inputs(run_dir)
    sentence = " ".join(inputs["text"]["vocabulary"][2:8]).upper() + "!"  # lower-cased, "!" filtered as Keras 2 does
    encoded = predict.encode_inputs(predict.open_run(run_dir), [sentence, "zzzunknown"])
    assert encoded.shape == (2, inputs["input_shape"][0])
    np.testing.assert_array_equal(encoded[0, :6], np.arange(2, 8))
    assert encoded[1, 0] == 1 and not encoded[0, 6:].any() and not encoded[1, 1:].any()  # OOV id 1, post-padding
    [row] = _predicted(run_dir, sentence)
    _agree(row)
    assert row["keras"]["probability_of_class_1"] == pytest.approx(row["outputs"]["keras"][0])


@pytest.mark.slow
def test_series_window_predicted_and_a_wrong_length_refused(saved_runs: dict[str, Path]):
    run_dir = saved_runs[SERIES]
    window = saved_models.read_inputs(run_dir)["series"]["window"]
    [row] = _predicted(run_dir, ",".join(str(10 + step / 2) for step in range(window)))
    _agree(row)
    assert row["keras"]["value"] == pytest.approx(row["outputs"]["keras"][0])
    short = run_cli("predict", str(run_dir), "1,2,3", "--threads", "1", "--device", "cpu")
    assert short.returncode == 2
    assert short.stderr.strip() == (f"parity: error: '1,2,3': 3 values, the model's window is {window}; "
                                    f"give exactly {window} finite numbers")
