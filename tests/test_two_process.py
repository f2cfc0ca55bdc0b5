"""The real two-process path: Keras and Lightning workers in their own processes, fed the same files."""

import gzip
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from cli_helpers import run_cli
from image_helpers import write_image_folders
from parity import align, jobs
from parity.catalog import get_spec
from parity.datasets import DataSplit, load_dataset
from parity.datasets.image_folder import load_image_folders
from parity.datasets.split import make_split
from parity.datasets.store import Ragged, SampleSource, ragged_array
from parity.plan import BatchPlan, eval_plan
from parity.errors import ParityError
from parity.report import validate_report
from parity.runner import require_forward_parity
from parity.specs.part3 import DATA_SIZED_PARAMS
from parity.text import pad_sequences

PROBABILITY_MODELS = (
    "c1w2_fmnist_dnn", "c1w2_fmnist_dnn_callback", "c1w2_mnist_dnn_callback",
    "c1w3_fmnist_cnn", "c1w3_mnist_cnn_callback", "c3w2_sarcasm_embed_gap",
)


def _dump_batches(pool: jobs.WorkerPool, framework: str, data_dir: Path, workdir: Path, epochs: int,
                  batch_size: int, seed: int) -> dict:
    out = workdir / f"{framework}-batches.npz"
    pool.run(framework, {"kind": "batches", "data": str(data_dir), "epochs": epochs, "batch_size": batch_size,
                         "seed": seed, "out": str(out)}, workdir)
    with np.load(out) as batches:
        return {key: batches[key] for key in batches.files}


def _course_split(model_id: str, _tmp_path: Path) -> DataSplit:
    """Real data where ../shared/data has it (the first 700/150 samples, to keep the dump small), else the stand-in."""
    from conftest import SHARED_DATA

    spec = get_spec(model_id)
    folder = SHARED_DATA / spec.dataset
    return (load_dataset(spec, folder) if folder.is_dir() else load_dataset(spec, synthetic=True)).head(700, 150)


def _happy_or_sad(tmp_path: Path) -> DataSplit:
    """The real happy-or-sad zip (nested Files/data/{happy,sad}, RGBA PNGs) when present, else generated PNG folders."""
    from conftest import SHARED_DATA

    spec, archive = get_spec("c1w4_happy_sad"), SHARED_DATA / "happy-or-sad" / "happy-or-sad.zip"
    if not archive.is_file():
        write_image_folders(tmp_path / "faces", {"happy": 30, "sad": 26}, size=(150, 150), mode="RGBA")
        archive = tmp_path / "faces"
    return load_image_folders(spec, archive)


def _one_hot_images(tmp_path: Path) -> DataSplit:
    """Three classes of generated PNGs (resized to 150x150 on decoding), categorical labels: one-hot float32 rows."""
    for split, counts in (("train", {"paper": 21, "rock": 19, "scissors": 20}), ("validation", {"paper": 5, "rock": 6,
                                                                                               "scissors": 4})):
        write_image_folders(tmp_path / "rps" / split, counts, size=(40, 30), seed=len(split))
    return load_image_folders(get_spec("c2w4_rps_cnn"), tmp_path / "rps")


def _ragged_text(_tmp_path: Path) -> DataSplit:
    """Token lists of 0..40 ids, padded per batch to the batch's longest ('pre', as c3w3_imdb_bilstm1's spec says)."""
    rng = np.random.default_rng(5)

    def texts(count: int) -> tuple[Ragged, np.ndarray]:
        ids = [rng.integers(1, 7635, rng.integers(0, 41)) for _ in range(count)]
        return ragged_array(ids), rng.integers(0, 2, count)

    return make_split(get_spec("c3w3_imdb_bilstm1"), "synthetic", texts(90), texts(37), "generated")


def _inception_preprocessed(tmp_path: Path) -> DataSplit:
    """Generated horse-or-human PNG folders (resized to 150x150) with the InceptionV3 preprocess: pixels in [-1, 1]."""
    for split, counts in (("train", {"horses": 11, "humans": 10}), ("validation", {"horses": 4, "humans": 5})):
        write_image_folders(tmp_path / "horse-or-human" / split, counts, size=(40, 30), seed=len(split))
    split = load_image_folders(get_spec("c2w3_inception_horse_human"), tmp_path / "horse-or-human")
    assert split.train.scale.offset == -1.0, "the InceptionV3 preprocess is expected to shift the pixels by -1"
    return split


SPLITS = {
    "fashion-mnist": lambda tmp_path: _course_split("c1w3_fmnist_cnn", tmp_path),
    "sarcasm-fixed-length": lambda tmp_path: _course_split("c3w2_sarcasm_embed_gap", tmp_path),
    "series": lambda tmp_path: _course_split("c4w2_ts_dnn", tmp_path),
    "image-folders": _happy_or_sad,
    "one-hot": _one_hot_images,
    "ragged-per-batch": _ragged_text,
    "inception-preprocess": _inception_preprocessed,
}


def _prescribed(source: SampleSource, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The batch at `rows`, built here without parity.plan.collate: what the two pipelines must yield."""
    if isinstance(source.x, Ragged):
        padding = source.padding
        x = pad_sequences([list(source.x[i]) for i in rows], padding.length, padding.padding, padding.truncating)
    elif source.scale is None:
        x = np.asarray(source.x)[rows]
    else:
        pixels = np.asarray(source.x)[rows].astype(np.float32)
        factor = np.float32(source.scale.factor)
        x = pixels / factor if source.scale.divide else pixels * factor
        if source.scale.offset:  # inception_v3's preprocess_input: x /= 127.5; x -= 1.0
            x = x - np.float32(-source.scale.offset)
    return x, np.asarray(source.y)[rows]


@pytest.fixture(scope="module")
def pool():
    with jobs.worker_pool(quiet=True) as workers:
        yield workers


@pytest.mark.parametrize("case", list(SPLITS))
def test_batches_identical_across_frameworks(case, pool, tmp_path):
    split = SPLITS[case](tmp_path)
    data_dir = jobs.save_data(tmp_path, split)
    epochs, batch_size, seed = 2, 16, 11
    keras = _dump_batches(pool, "keras", data_dir, tmp_path, epochs, batch_size, seed)
    lightning = _dump_batches(pool, "lightning", data_dir, tmp_path, epochs, batch_size, seed)

    assert keras.keys() == lightning.keys()
    for key in keras:
        assert keras[key].dtype == lightning[key].dtype and keras[key].shape == lightning[key].shape, key
        assert keras[key].tobytes() == lightning[key].tobytes(), f"{key} differs ({case}, {split.source} data)"
    # And both are exactly what the plan prescribes, epoch by epoch, with a new order each epoch.
    plan = BatchPlan(len(split.train), batch_size, seed)
    train = [rows for epoch in range(epochs) for rows in plan.epoch_batches(epoch)]
    val = eval_plan(split.val_size, batch_size).epoch_batches(0)
    assert keras["train_sizes"].tolist() == [len(rows) for rows in train]
    assert len(keras) == 1 + 2 * (len(train) + len(val))
    for name, source, batches in (("train", split.train, train), ("val", split.val, val)):
        for step, rows in enumerate(batches):
            x, y = _prescribed(source, rows)
            for got, want in ((keras[f"{name}_x_{step:04d}"], x), (keras[f"{name}_y_{step:04d}"], y)):
                assert got.dtype == want.dtype and got.shape == want.shape and got.tobytes() == want.tobytes()
    assert not np.array_equal(plan.epoch_order(0), plan.epoch_order(1))
    widths = {keras[f"train_x_{step:04d}"].shape[1] for step in range(len(train))}
    assert (len(widths) > 1) == (case == "ragged-per-batch")  # only per-batch padding varies the width


@pytest.mark.slow
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
    # The forward check ran on random weights for each seed before training, and every row passed.
    checks = report["comparison"]["forward_check"]
    assert [(row["seed"], row["mode"]) for row in checks] == [(0, "inference"), (1, "inference")]
    assert all(row["passed"] and row["max_abs_diff"] <= row["tolerance"] == 1e-5 for row in checks)
    # Two Conv2D and two Dense layers, a weight and a bias each: 8 tensors, all assigned.
    assert all(row["transfer"]["torch_tensors_assigned"] == row["transfer"]["torch_tensors"] == 8 for row in checks)
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


@pytest.mark.slow
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


@pytest.mark.slow
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


@pytest.mark.slow
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
@pytest.mark.slow
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
    # The forward check runs first, so the Keras worker fails in its forward job, whose log is kept and named.
    assert str(kept[0] / "keras-forward.log") in failed.stderr and (kept[0] / "keras-forward.log").exists()
    assert not list(kept[0].glob("*.np[yz]")), "large arrays are not kept after a failure"


@pytest.mark.slow
def test_list_json_reports_every_course_model_and_honest_implementation_status():
    result = run_cli("list", "--json")
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    assert len([row for row in rows if row["variant_of"] is None]) == 42  # variants are listed, not counted
    assert {"id", "part", "week", "dataset", "task", "implemented", "params"} <= set(rows[0])
    implemented = [row for row in rows if row["implemented"]["keras"] and row["implemented"]["lightning"]]
    assert {row["id"] for row in implemented} >= set(PROBABILITY_MODELS) | {"c1w1_hello_linear", "c4w2_ts_dnn"}
    for row in implemented:  # Keras builds the course's count; torch adds only the documented second LSTM biases
        spec = get_spec(row["id"])
        expected = spec.course_params or DATA_SIZED_PARAMS[spec.id](spec.layers)  # None: sized by the data
        assert row["params"]["keras"] == expected
        assert row["params"]["lightning"] == expected + align.torch_extra_parameters(spec)
    not_yet = next(row for row in rows if row["id"] == "c2w3_inception_cats_dogs")
    assert not_yet["implemented"] == {"keras": False, "lightning": False} and not_yet["params"]["keras"] is None


def test_a_run_whose_forward_check_failed_is_refused_before_training(tmp_path):
    spec = get_spec("c1w3_fmnist_cnn")
    passing = {"model": spec.id, "seed": 0, "mode": "inference", "max_abs_diff": 7e-8, "tolerance": 1e-5, "passed": True}
    failing = {**passing, "seed": 1, "max_abs_diff": 0.14, "passed": False}
    require_forward_parity(spec, [passing], tmp_path)  # nothing to refuse
    with pytest.raises(ParityError, match=r"forward check failed \(1 of 2 checks; worst: seed 1, inference mode, "
                                          r"max abs diff 0\.14 > tolerance 1e-05\)"):
        require_forward_parity(spec, [passing, failing], tmp_path)
