"""Bad input: one clear line on stderr, a non-zero exit, no traceback, and no report left behind."""

import gzip

import numpy as np
import pytest

from cli_helpers import run_cli, unimplemented_env


def _assert_one_line_error(result, *fragments):
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines and "error:" in lines[-1]
    for fragment in fragments:
        assert fragment in result.stderr


def test_unknown_model_lists_the_valid_ids(tmp_path):
    result = run_cli("run", "c9w9_nope", "--out", str(tmp_path))
    _assert_one_line_error(result, "unknown model id 'c9w9_nope'", "c1w2_fmnist_dnn", "c4w2_ts_dnn")
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("args, message", [
    (["--epochs", "0"], "argument --epochs: must be a positive whole number, got 0"),
    (["--seeds", "-1"], "argument --seeds: must be a positive whole number, got -1"),
    (["--epochs", "five"], "argument --epochs: expected a whole number, got 'five'"),
    (["--mode", "loose"], "argument --mode: invalid choice: 'loose'"),
])
def test_nonsensical_arguments_are_refused(tmp_path, args, message):
    result = run_cli("run", "c1w1_hello_linear", "--out", str(tmp_path), *args)
    _assert_one_line_error(result, message)
    assert result.returncode == 2 and not (tmp_path / "c1w1_hello_linear").exists()


def test_missing_data_without_network_names_url_files_and_data_dir(tmp_path):
    result = run_cli("run", "c1w2_fmnist_dnn", "--out", str(tmp_path / "out"))
    _assert_one_line_error(result, "train-images-idx3-ubyte.gz", "fashion-mnist", "--data-dir", "http")
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "out" / "c1w2_fmnist_dnn").exists()


def test_truncated_idx_file_is_named_with_what_is_wrong(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    images = np.zeros((20, 28, 28), np.uint8)
    labels = np.arange(20, dtype=np.uint8) % 10
    for prefix, count in (("train", 20), ("t10k", 20)):
        image_bytes = np.array([0, 0, 8, 3, 0, 0, 0, count, 0, 0, 0, 28, 0, 0, 0, 28], np.uint8).tobytes() + images.tobytes()
        label_bytes = np.array([0, 0, 8, 1, 0, 0, 0, count], np.uint8).tobytes() + labels.tobytes()
        if prefix == "t10k":
            image_bytes = image_bytes[:-100]  # truncated payload
        (data / f"{prefix}-images-idx3-ubyte.gz").write_bytes(gzip.compress(image_bytes))
        (data / f"{prefix}-labels-idx1-ubyte.gz").write_bytes(gzip.compress(label_bytes))
    result = run_cli("run", "c1w2_fmnist_dnn", "--data-dir", str(data), "--out", str(tmp_path / "out"))
    _assert_one_line_error(result, "t10k-images-idx3-ubyte.gz")
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "out" / "c1w2_fmnist_dnn").exists()


def test_model_without_implementation_says_so(tmp_path):
    """c2w4_rps_cnn made unimplemented by taking away its data set's loader in the command's process."""
    result = run_cli("run", "c2w4_rps_cnn", "--out", str(tmp_path), env=unimplemented_env("rock-paper-scissors"))
    _assert_one_line_error(result, "c2w4_rps_cnn is not implemented yet (no loader for its data set "
                                   "'rock-paper-scissors')", "parity list")
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "c2w4_rps_cnn").exists()


@pytest.mark.parametrize("args, message", [
    (["--lr", "0"], "argument --lr: must be a positive number, got 0"),
    (["--lr", "fast"], "argument --lr: expected a number, got 'fast'"),
    (["--lr", "inf"], "argument --lr: must be a finite number, got inf"),
    (["--series", "weekly"], "argument --series: invalid choice: 'weekly'"),
    (["--series-column", ""], "argument --series-column: expected a column name or a 0-based column index"),
    (["--time-column", "-1"], "argument --time-column: a column index counts from 0, got -1"),
])
def test_bad_learning_rate_and_series_flags_are_refused(tmp_path, args, message):
    result = run_cli("run", "c4w2_ts_dnn", "--out", str(tmp_path), *args)
    _assert_one_line_error(result, message)
    assert result.returncode == 2 and not (tmp_path / "c4w2_ts_dnn").exists()


def test_lrsweep_refuses_a_model_without_a_sweep(tmp_path):
    result = run_cli("lrsweep", "c1w1_hello_linear", "--out", str(tmp_path))
    _assert_one_line_error(result, "c1w1_hello_linear has no learning-rate sweep in the course", "c4w2_ts_dnn")
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "c1w1_hello_linear").exists()
