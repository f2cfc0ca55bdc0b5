"""The real two-process path: Keras and Lightning workers in their own processes, fed the same files."""

import gzip
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from cli_helpers import run_cli
from parity import jobs
from parity.catalog import get_spec
from parity.datasets import load_dataset
from parity.plan import BatchPlan
from parity.report import validate_report

PROBABILITY_MODELS = (
    "c1w2_fmnist_dnn", "c1w2_fmnist_dnn_callback", "c1w2_mnist_dnn_callback",
    "c1w3_fmnist_cnn", "c1w3_mnist_cnn_callback", "c3w2_sarcasm_embed_gap",
)


def _dump_batches(framework: str, data_file: Path, workdir: Path, epochs: int, batch_size: int, seed: int) -> dict:
    out = workdir / f"{framework}-batches.npz"
    jobs.run_worker(framework, {"kind": "batches", "data": str(data_file), "epochs": epochs, "batch_size": batch_size,
                                "seed": seed, "out": str(out)}, workdir, quiet=True)
    with np.load(out) as batches:
        return {key: batches[key] for key in batches.files}


def _split(model_id: str, shared_root: Path):
    """Real data where ../shared/data has it (a slice, to keep the dump small), else the synthetic stand-in."""
    spec = get_spec(model_id)
    folder = shared_root / spec.dataset
    split = load_dataset(spec, folder) if folder.is_dir() else load_dataset(spec, synthetic=True)
    return split.x_train[:700], split.y_train[:700], split.x_val[:150], split.y_val[:150], split.source


@pytest.mark.parametrize("model_id", ["c1w3_fmnist_cnn", "c3w2_sarcasm_embed_gap", "c4w2_ts_dnn"])
def test_batches_identical_across_frameworks(model_id, tmp_path):
    from conftest import SHARED_DATA

    x_train, y_train, x_val, y_val, source = _split(model_id, SHARED_DATA)
    data_file = jobs.save_data(tmp_path, x_train, y_train, x_val, y_val)
    epochs, batch_size, seed = 2, 32, 11
    keras = _dump_batches("keras", data_file, tmp_path, epochs, batch_size, seed)
    lightning = _dump_batches("lightning", data_file, tmp_path, epochs, batch_size, seed)

    for key in ("train_x", "train_y", "train_sizes", "val_x", "val_y"):
        assert keras[key].dtype == lightning[key].dtype, key
        assert keras[key].tobytes() == lightning[key].tobytes(), f"{key} differs ({source} data)"
    # And both are exactly what the plan prescribes, epoch by epoch, with a new order each epoch.
    plan = BatchPlan(len(x_train), batch_size, seed)
    order = np.concatenate([plan.epoch_order(e) for e in range(epochs)])
    assert keras["train_x"].tobytes() == x_train[order].tobytes()
    assert keras["train_y"].tobytes() == y_train[order].tobytes()
    full, rest = divmod(len(x_train), batch_size)
    assert keras["train_sizes"].tolist() == ([batch_size] * full + [rest] * (rest > 0)) * epochs
    assert not np.array_equal(plan.epoch_order(0), plan.epoch_order(1))
    assert keras["val_x"].tobytes() == x_val.tobytes()


def test_parity_check_passes_for_every_implemented_model():
    result = run_cli("check", "--json")
    assert result.returncode == 0, result.stderr
    rows = {row["model"]: row for row in json.loads(result.stdout)}
    assert set(PROBABILITY_MODELS) | {"c1w1_hello_linear", "c1w1_house_price", "c4w2_ts_dnn"} <= set(rows)
    assert all(row["passed"] for row in rows.values())
    for model_id in PROBABILITY_MODELS:  # outputs in [0, 1]: the tolerance is 1e-5 absolute
        assert rows[model_id]["tolerance"] == 1e-5 and rows[model_id]["max_abs_diff"] <= 1e-5
    # The series DNN outputs values around 50: 1e-5 relative to that scale, a few float32 ulps.
    assert rows["c4w2_ts_dnn"]["max_abs_diff"] <= rows["c4w2_ts_dnn"]["tolerance"] < 1e-3


def _report(out: Path, model_id: str) -> dict:
    report = json.loads((out / model_id / "report.json").read_text())
    validate_report(report)
    return report


def test_run_writes_a_valid_report_with_seed_statistics_and_aligned_first_step(tmp_path):
    result = run_cli("run", "c1w3_fmnist_cnn", "--synthetic", "--epochs", "2", "--seeds", "2", "--out", str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert "keras: c1w3_fmnist_cnn, 2 seed(s)" in result.stdout and "lightning: c1w3_fmnist_cnn, 2 seed(s)" in result.stdout
    report = _report(tmp_path, "c1w3_fmnist_cnn")
    assert report["dataset"]["source"] == "synthetic" and report["seeds"] == [0, 1]
    assert report["comparison"]["forward_max_abs_diff"] <= 1e-5
    lo, hi = report["comparison"]["final_val"]["diff_ci95"]
    assert lo is not None and lo <= report["comparison"]["final_val"]["diff_mean"] <= hi
    steps = -(-report["dataset"]["train_size"] // 32)
    for framework in ("keras", "lightning"):
        assert report["frameworks"][framework]["params"] == 243_786
        for run in report["frameworks"][framework]["runs"]:
            assert len(run["history"]["val_accuracy"]) == 2 and len(run["step_loss"]) == 2 * steps
    for keras_run, lightning_run in zip(*(report["frameworks"][fw]["runs"] for fw in ("keras", "lightning"))):
        # Same initial weights, same first batch: the first training loss agrees to float32 precision.
        assert lightning_run["step_loss"][0] == pytest.approx(keras_run["step_loss"][0], rel=1e-5)
    assert (tmp_path / "c1w3_fmnist_cnn" / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "Final val accuracy" in (tmp_path / "c1w3_fmnist_cnn" / "report.md").read_text()
    assert (tmp_path / "c1w3_fmnist_cnn" / "logs" / "keras-seed0.csv").exists()
    assert (tmp_path / "c1w3_fmnist_cnn" / "logs" / "lightning" / "seed1" / "metrics.csv").exists()
    assert not list(tmp_path.glob(".*")), "no staging or work directory may be left behind"


def test_aligned_sgd_step_losses_agree_for_every_step_of_every_epoch(tmp_path):
    # Plain SGD with momentum, identical weights and batches: a different batch order in any epoch
    # (e.g. Keras re-iterating the dataset) would make the losses part at once.
    result = run_cli("run", "c4w2_ts_dnn", "--synthetic", "--epochs", "3", "--out", str(tmp_path))
    assert result.returncode == 0, result.stderr
    report = _report(tmp_path, "c4w2_ts_dnn")
    keras, lightning = (np.array(report["frameworks"][fw]["runs"][0]["step_loss"]) for fw in ("keras", "lightning"))
    assert len(keras) == len(lightning) == 3 * -(-report["dataset"]["train_size"] // 32)
    np.testing.assert_allclose(lightning, keras, rtol=1e-4)
    # Each step's loss is that batch's loss: the epoch means weighted by batch size give Keras' epoch loss.
    steps = len(keras) // 3
    sizes = np.array([32] * (steps - 1) + [report["dataset"]["train_size"] - 32 * (steps - 1)])
    epoch_loss = (keras[:steps] * sizes).sum() / sizes.sum()
    assert epoch_loss == pytest.approx(report["frameworks"]["keras"]["runs"][0]["history"]["loss"][0], rel=1e-5)


def test_native_mode_starts_from_torch_own_initialisation(tmp_path):
    result = run_cli("run", "c1w2_fmnist_dnn", "--synthetic", "--epochs", "1", "--mode", "native", "--out", str(tmp_path))
    assert result.returncode == 0, result.stderr
    report = _report(tmp_path, "c1w2_fmnist_dnn")
    assert report["mode"] == "native"
    first = [report["frameworks"][fw]["runs"][0]["step_loss"][0] for fw in ("keras", "lightning")]
    assert abs(first[0] - first[1]) / first[0] > 1e-3  # different initial weights, different first loss
    assert report["comparison"]["forward_max_abs_diff"] <= 1e-5  # the transfer itself is still checked


def _write_easy_idx_set(folder: Path, train: int = 640, val: int = 160) -> None:
    """A user's own IDX set in the Fashion-MNIST file names: ten clean, separable patterns."""
    folder.mkdir()
    rng = np.random.default_rng(0)
    patterns = rng.integers(0, 256, size=(10, 28, 28), dtype=np.uint8)
    for prefix, count in (("train", train), ("t10k", val)):
        labels = (np.arange(count) % 10).astype(np.uint8)
        images = patterns[labels]
        header = np.array([0, 0, 8, 3], np.uint8).tobytes() + np.array([count, 28, 28], ">u4").tobytes()
        (folder / f"{prefix}-images-idx3-ubyte.gz").write_bytes(gzip.compress(header + images.tobytes()))
        label_header = np.array([0, 0, 8, 1], np.uint8).tobytes() + np.array([count], ">u4").tobytes()
        (folder / f"{prefix}-labels-idx1-ubyte.gz").write_bytes(gzip.compress(label_header + labels.tobytes()))


def test_course_stop_callback_fires_in_both_frameworks_on_users_own_idx_data(tmp_path):
    _write_easy_idx_set(tmp_path / "own")
    result = run_cli("run", "c1w2_fmnist_dnn_callback", "--data-dir", str(tmp_path / "own"), "--out", str(tmp_path))
    assert result.returncode == 0, result.stderr
    report = _report(tmp_path, "c1w2_fmnist_dnn_callback")
    assert report["dataset"] == {**report["dataset"], "source": "real", "train_size": 640, "val_size": 160}
    for framework in ("keras", "lightning"):
        run = report["frameworks"][framework]["runs"][0]
        losses = run["history"]["loss"]
        assert run["stopped_early"] and run["epochs_run"] == len(losses) < 10
        assert losses[-1] < 0.4 and all(loss >= 0.4 for loss in losses[:-1])


@pytest.mark.skipif(shutil.which("nvidia-smi") is not None, reason="needs a machine without a GPU")
def test_failed_run_keeps_the_previous_report_and_leaves_nothing_half_written(tmp_path):
    assert run_cli("run", "c1w1_house_price", "--epochs", "3", "--out", str(tmp_path), "--quiet").returncode == 0
    before = (tmp_path / "c1w1_house_price" / "report.json").read_bytes()
    # Asking for a GPU that is not there fails inside the Keras worker, after staging has begun.
    failed = run_cli("run", "c1w1_house_price", "--epochs", "3", "--out", str(tmp_path), "--threads", "1",
                     "--device", "gpu")
    assert failed.returncode == 2 and "Traceback" not in failed.stderr
    assert "the keras worker failed" in failed.stderr and "sees no GPU" in failed.stderr
    assert len(failed.stderr.strip().splitlines()) == 1
    assert (tmp_path / "c1w1_house_price" / "report.json").read_bytes() == before
    kept = [p for p in tmp_path.glob(".*")]
    assert len(kept) == 1 and kept[0].name.startswith(".work-c1w1_house_price-")
    assert str(kept[0] / "keras-train.log") in failed.stderr and (kept[0] / "keras-train.log").exists()
    assert not list(kept[0].glob("*.np[yz]")), "large arrays are not kept after a failure"


def test_list_json_reports_every_course_model_and_honest_implementation_status():
    result = run_cli("list", "--json")
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    assert len(rows) == 42 and {"id", "part", "week", "dataset", "task", "implemented", "params"} <= set(rows[0])
    implemented = [row for row in rows if row["implemented"]["keras"] and row["implemented"]["lightning"]]
    assert {row["id"] for row in implemented} >= set(PROBABILITY_MODELS) | {"c1w1_hello_linear", "c4w2_ts_dnn"}
    for row in implemented:  # both frameworks build the course's parameter count
        assert row["params"]["keras"] == row["params"]["lightning"] == get_spec(row["id"]).course_params
    not_yet = next(row for row in rows if row["id"] == "c2w3_inception_cats_dogs")
    assert not_yet["implemented"] == {"keras": False, "lightning": False} and not_yet["params"]["keras"] is None
