"""load_dataset: real data from --data-dir / PARITY_DATA_DIR / cache, errors, inline, series, stand-ins.

Never downloads: PARITY_OFFLINE=1 for every test; the download path is exercised with pooch mocked.
"""

import dataclasses
import gzip
import json
from pathlib import Path

import numpy as np
import pytest

from parity.catalog import get_spec
from parity.datasets import DataSplit, download, load_dataset
from parity.errors import DataError
from parity.plan import collate

FMNIST_MLP = get_spec("c1w2_fmnist_dnn")  # input (28, 28)
FMNIST_CNN = get_spec("c1w3_fmnist_cnn")  # input (28, 28, 1)
MNIST_MLP = get_spec("c1w2_mnist_dnn_callback")
SARCASM = get_spec("c3w2_sarcasm_embed_gap")
SERIES_DNN = get_spec("c4w2_ts_dnn")
IDX_NAMES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


@pytest.fixture(autouse=True)
def offline(monkeypatch, tmp_path):
    monkeypatch.setenv("PARITY_OFFLINE", "1")
    monkeypatch.setenv("PARITY_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("PARITY_DATA_DIR", raising=False)


def idx_bytes(array: np.ndarray) -> bytes:
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(d.to_bytes(4, "big") for d in array.shape)
    return header + array.astype(np.uint8).tobytes()


def write_idx_set(directory: Path, train: int, val: int, size: int = 28, gz: bool = True) -> dict:
    """A user's own IDX data set in Fashion-MNIST file names."""
    rng = np.random.default_rng(1)
    arrays = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (train, size, size)),
        "train-labels-idx1-ubyte": np.arange(train) % 10,
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (val, size, size)),
        "t10k-labels-idx1-ubyte": np.arange(val) % 10,
    }
    directory.mkdir(parents=True, exist_ok=True)
    for name, array in arrays.items():
        payload = idx_bytes(array)
        if gz:
            (directory / f"{name}.gz").write_bytes(gzip.compress(payload))
        else:
            (directory / name).write_bytes(payload)
    return arrays


def model_arrays(source) -> tuple[np.ndarray, np.ndarray]:
    """Every sample of `source` as the models see it: one batch of all of them, through the collate."""
    return collate(source, np.arange(len(source)))


def assert_layout(split: DataSplit, spec, train: int, val: int) -> None:
    assert (len(split.train), len(split.val)) == (train, val)
    for source in (split.train, split.val):
        x, y = collate(source, np.arange(3))
        assert x.shape == (3, *spec.input_shape) and len(y) == 3
        assert all(array.flags.c_contiguous and array.flags.writeable for array in (x, y))


# --- real image data -------------------------------------------------------------------------


def test_fashion_mnist_from_data_dir(shared_data):
    split = load_dataset(FMNIST_MLP, data_dir=shared_data / "fashion-mnist")
    assert (split.dataset_id, split.source, split.location) == ("fashion-mnist", "real", str(shared_data / "fashion-mnist"))
    assert_layout(split, FMNIST_MLP, 60000, 10000)
    assert split.train.x.dtype == np.uint8 and split.train.y.dtype == np.int64  # pixels scaled per batch
    x_train, y_train = model_arrays(split.train)
    assert x_train.shape == (60000, 28, 28) and split.val.y.shape == (10000,)
    assert x_train.dtype == np.float32
    assert x_train.min() == 0.0 and x_train.max() == 1.0
    assert x_train.mean(dtype=np.float64) == pytest.approx(0.286040597, abs=1e-7)
    assert np.bincount(y_train).tolist() == [6000] * 10
    assert np.bincount(split.val.y).tolist() == [1000] * 10


def test_fashion_mnist_from_parity_data_dir_with_channel_axis(shared_data, monkeypatch):
    monkeypatch.setenv("PARITY_DATA_DIR", str(shared_data))
    split = load_dataset(FMNIST_CNN)
    assert split.location == str(shared_data / "fashion-mnist")
    assert_layout(split, FMNIST_CNN, 60000, 10000)
    assert model_arrays(split.val)[0].mean(dtype=np.float64) == pytest.approx(0.2868492807, abs=1e-7)


def test_mnist_pixels_match_manifest(shared_data):
    split = load_dataset(MNIST_MLP, data_dir=shared_data / "mnist")
    assert model_arrays(split.train)[0].mean(dtype=np.float64) == pytest.approx(0.1306604763, abs=1e-7)
    assert np.bincount(split.val.y).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


def test_cached_download_is_used_offline_when_its_checksum_matches(shared_data, tmp_path):
    cache = tmp_path / "cache" / "fashion-mnist"
    cache.mkdir(parents=True)
    for name in IDX_NAMES:
        (cache / f"{name}.gz").symlink_to(shared_data / "fashion-mnist" / f"{name}.gz")
    split = load_dataset(FMNIST_MLP)
    assert split.location == str(cache) and len(split.train) == 60000
    (cache / "t10k-labels-idx1-ubyte.gz").unlink()
    (cache / "t10k-labels-idx1-ubyte.gz").write_bytes(b"tampered")
    with pytest.raises(DataError, match="PARITY_OFFLINE=1"):
        load_dataset(FMNIST_MLP)


# --- a user's own data and bad data ----------------------------------------------------------


@pytest.mark.parametrize("gz", [True, False], ids=["gzip", "uncompressed"])
def test_users_own_idx_set_in_fashion_mnist_names_loads_through_data_dir(tmp_path, gz):
    arrays = write_idx_set(tmp_path / "mine", train=30, val=12, gz=gz)
    split = load_dataset(FMNIST_CNN, data_dir=tmp_path / "mine")
    assert_layout(split, FMNIST_CNN, 30, 12)
    expected = arrays["train-images-idx3-ubyte"].astype(np.float32)[..., None] / np.float32(255)
    np.testing.assert_array_equal(model_arrays(split.train)[0], expected)
    np.testing.assert_array_equal(split.val.y, arrays["t10k-labels-idx1-ubyte"])


def test_own_images_of_the_wrong_size_are_refused(tmp_path):
    write_idx_set(tmp_path / "mine", train=4, val=2, size=32)
    with pytest.raises(DataError, match=r"train-images-idx3-ubyte\.gz: images are 32x32 pixels.*\(28, 28\)"):
        load_dataset(FMNIST_MLP, data_dir=tmp_path / "mine")


def test_corrupt_file_in_data_dir_is_named(tmp_path):
    write_idx_set(tmp_path / "mine", train=4, val=2)
    bad = tmp_path / "mine" / "t10k-images-idx3-ubyte.gz"
    bad.write_bytes(bad.read_bytes()[:40])
    with pytest.raises(DataError, match=str(bad)):
        load_dataset(FMNIST_MLP, data_dir=tmp_path / "mine")


def test_data_dir_lacking_files_names_them(tmp_path):
    write_idx_set(tmp_path / "mine", train=4, val=2)
    (tmp_path / "mine" / "train-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DataError, match=r"lacks train-labels-idx1-ubyte\.gz.*--data-dir"):
        load_dataset(FMNIST_MLP, data_dir=tmp_path / "mine")
    with pytest.raises(DataError, match="does not exist"):
        load_dataset(FMNIST_MLP, data_dir=tmp_path / "nowhere")


def test_missing_data_offline_says_what_where_and_how_to_fix(tmp_path, monkeypatch):
    monkeypatch.setenv("PARITY_DATA_DIR", str(tmp_path / "root"))
    with pytest.raises(DataError) as error:
        load_dataset(MNIST_MLP)
    message = str(error.value)
    assert "\n" not in message
    for part in (
        "mnist:",
        "train-images-idx3-ubyte.gz",
        "t10k-labels-idx1-ubyte.gz",
        str(tmp_path / "root" / "mnist"),
        str(tmp_path / "cache" / "mnist"),
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "http://yann.lecun.com/exdb/mnist/",
        "PARITY_OFFLINE=1",
        "--data-dir DIR",
        "PARITY_DATA_DIR",
    ):
        assert part in message


def test_failed_download_tries_every_mirror_and_reports_each(monkeypatch):
    monkeypatch.delenv("PARITY_OFFLINE")
    tried = []

    def unreachable(url, **_):
        tried.append(url)
        raise ConnectionError(f"cannot reach {url}")

    monkeypatch.setattr(download.pooch, "retrieve", unreachable)
    with pytest.raises(DataError) as error:
        load_dataset(FMNIST_MLP)
    assert tried == [
        "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/train-images-idx3-ubyte.gz",
        "https://storage.googleapis.com/tensorflow/tf-keras-datasets/train-images-idx3-ubyte.gz",
    ]
    assert f"{tried[0]}: ConnectionError: cannot reach" in str(error.value)
    assert "download failed" in str(error.value) and "--data-dir" in str(error.value)


def test_downloaded_sarcasm_file_with_the_wrong_structure_is_rejected_and_removed(monkeypatch, tmp_path):
    monkeypatch.delenv("PARITY_OFFLINE")

    def html_page(url, fname, path, **_):
        target = Path(path) / fname
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text("<html>not found</html>")
        return str(target)

    monkeypatch.setattr(download.pooch, "retrieve", html_page)
    with pytest.raises(DataError, match="downloaded file rejected.*not a readable JSON file"):
        load_dataset(SARCASM)
    assert not (tmp_path / "cache" / "sarcasm" / "sarcasm.json").exists()


def test_unknown_dataset_is_a_data_error():
    spec = dataclasses.replace(FMNIST_MLP, dataset="no-such-data")
    for synthetic in (False, True):
        with pytest.raises(DataError, match="loader is not implemented yet for 'no-such-data'"):
            load_dataset(spec, synthetic=synthetic)


# --- sarcasm ---------------------------------------------------------------------------------


def test_sarcasm_real_split_and_encoding(shared_data):
    split = load_dataset(SARCASM, data_dir=shared_data / "sarcasm")
    assert split.location == str(shared_data / "sarcasm" / "sarcasm.json")
    assert_layout(split, SARCASM, 20000, 6709)
    (x_train, y_train), (x_val, y_val) = model_arrays(split.train), model_arrays(split.val)
    assert x_train.dtype == np.int32 and y_train.dtype == np.float32
    assert y_train.shape == (20000, 1) and y_val.shape == (6709, 1)
    assert set(np.unique(y_train)) == {0.0, 1.0}
    assert x_train.max() < 10000 and x_val.max() < 10000
    assert (x_train == 1).any() and (x_val == 1).any()  # OOV index
    assert (x_train[:, -1] == 0).mean() > 0.9  # post padding
    assert split.info["vocab_words"] == 25637  # fitted on the first 20,000 headlines of the shared copy


def test_sarcasm_file_with_bad_records_is_refused(tmp_path):
    (tmp_path / "sarcasm.json").write_text(json.dumps([{"headline": "a", "is_sarcastic": 1}, {"headline": 3}]))
    with pytest.raises(DataError, match=r"record 1 \(counting from 0\) has no string 'headline'.*fix or remove"):
        load_dataset(SARCASM, data_dir=tmp_path)


def test_sarcasm_file_smaller_than_the_course_keeps_its_proportion(tmp_path):
    (tmp_path / "sarcasm.json").write_text(json.dumps([{"headline": "a b", "is_sarcastic": 0}] * 10))
    split = load_dataset(SARCASM, data_dir=tmp_path)
    assert (len(split.train), split.val_size) == (7, 3)  # 10 * 20000 / 26709 = 7.49
    assert "first 7 train, the other 3 validate" in split.info["split_note"]
    (tmp_path / "sarcasm.json").write_text(json.dumps([{"headline": "a b", "is_sarcastic": 0}]))
    with pytest.raises(DataError, match=r"sarcasm\.json: too few records \(1\)"):
        load_dataset(SARCASM, data_dir=tmp_path)


# --- inline and generated data ---------------------------------------------------------------


def test_inline_datasets_validate_on_their_training_points():
    hello = load_dataset(get_spec("c1w1_hello_linear"))
    assert hello.val is hello.train  # validation "train": one source, stored once
    np.testing.assert_array_equal(hello.train.x[:, 0], [-1, 0, 1, 2, 3, 4])
    np.testing.assert_array_equal(hello.train.y[:, 0], [-3, -1, 1, 3, 5, 7])
    house = load_dataset(get_spec("c1w1_house_price"), synthetic=True)
    assert house.source == "real" and house.location == "inline"
    np.testing.assert_array_equal(house.val.y[:, 0], [1.0, 1.5, 2.0, 2.5, 3.0, 3.5])
    x, y = model_arrays(house.train)
    assert x.dtype == y.dtype == np.float32 and y.shape == (6, 1)


def course_series_float64(steps: int = 1461) -> np.ndarray:
    time = np.arange(steps, dtype=np.float64)
    season = (time % 365) / 365
    pattern = np.where(season < 0.4, np.cos(season * 2 * np.pi), 1 / np.exp(3 * season))
    return 10 + 0.05 * time + 40 * pattern + np.random.RandomState(42).randn(steps) * 5


def test_lab_series_windows_follow_the_course():
    split = load_dataset(SERIES_DNN)
    (x_train, y_train), (x_val, y_val) = model_arrays(split.train), model_arrays(split.val)
    assert x_train.shape == (980, 20) and y_train.shape == (980, 1)
    assert x_val.shape == (461, 20) and y_val.shape == (461, 1)
    assert x_train.dtype == y_val.dtype == np.float32
    series = course_series_float64()
    np.testing.assert_allclose(x_train[:, 0], series[:980], atol=1e-4)
    np.testing.assert_allclose(y_train[:, 0], series[20:1000], atol=1e-4)
    np.testing.assert_allclose(x_val[0], series[980:1000], atol=1e-4)
    np.testing.assert_allclose(y_val[:, 0], series[1000:], atol=1e-4)
    again = load_dataset(SERIES_DNN)
    np.testing.assert_array_equal(model_arrays(again.train)[0], x_train)
    np.testing.assert_array_equal(again.val.y, split.val.y)


@pytest.mark.parametrize(
    ("model", "train_shape", "x_dtype", "y_shape", "y_dtype", "classes"),
    [
        ("c1w2_fmnist_dnn", (1200, 28, 28), np.float32, (1200,), np.int64, 10),
        ("c1w3_mnist_cnn_callback", (1200, 28, 28, 1), np.float32, (1200,), np.int64, 10),
        ("c1w4_happy_sad", (240, 150, 150, 3), np.float32, (240, 1), np.float32, 2),
        ("c2w1_cats_dogs_cnn", (240, 150, 150, 3), np.float32, (240, 1), np.float32, 2),
        ("c3w2_sarcasm_embed_gap", (1200, 100), np.int32, (1200, 1), np.float32, 2),
        ("c4w2_ts_dnn", (380, 20), np.float32, (380, 1), np.float32, None),
        ("c4w4_daily_min_temp", (336, 64, 1), np.float32, (336, 1), np.float32, None),
    ],
)
def test_synthetic_stand_ins_have_the_real_layout(model, train_shape, x_dtype, y_shape, y_dtype, classes):
    split = load_dataset(get_spec(model), synthetic=True)
    assert split.source == "synthetic" and split.location == "generated"
    (x_train, y_train), (x_val, y_val) = model_arrays(split.train), model_arrays(split.val)
    assert x_train.shape == train_shape and x_train.dtype == x_dtype
    assert y_train.shape == y_shape and y_train.dtype == y_dtype
    assert x_val.shape[1:] == train_shape[1:] and len(x_val) == len(y_val) > 0
    if classes:
        assert len(np.unique(y_train)) == classes
    again = load_dataset(get_spec(model), synthetic=True)
    np.testing.assert_array_equal(model_arrays(again.val)[0], x_val)


def test_synthetic_images_stay_in_unit_range():
    x_train = model_arrays(load_dataset(FMNIST_CNN, synthetic=True).train)[0]
    assert 0.0 <= x_train.min() and x_train.max() <= 1.0
