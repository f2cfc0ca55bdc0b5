"""The IDX reader: valid files round-trip, every kind of bad file is a DataError naming the file."""

import gzip
import hashlib
from pathlib import Path

import numpy as np
import pytest

from parity.datasets.idx import IMAGES_MAGIC, LABELS_MAGIC, read_idx, read_idx_pair
from parity.errors import DataError


def idx_bytes(array: np.ndarray, dtype_code: int = 0x08) -> bytes:
    header = bytes([0, 0, dtype_code, array.ndim]) + b"".join(d.to_bytes(4, "big") for d in array.shape)
    return header + array.astype(np.uint8).tobytes()


def write(path: Path, payload: bytes) -> Path:
    path.write_bytes(gzip.compress(payload) if path.suffix == ".gz" else payload)
    return path


@pytest.fixture
def images() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (5, 28, 28), dtype=np.uint8)


@pytest.mark.parametrize("name", ["images-idx3-ubyte.gz", "images-idx3-ubyte"])
def test_idx_images_round_trip_gzipped_or_raw(tmp_path, images, name):
    path = write(tmp_path / name, idx_bytes(images))
    np.testing.assert_array_equal(read_idx(path, IMAGES_MAGIC), images)


def test_truncated_gzip_stream_names_the_file(tmp_path, images):
    path = tmp_path / "train-images-idx3-ubyte.gz"
    path.write_bytes(gzip.compress(idx_bytes(images))[:500])
    with pytest.raises(DataError, match=r"train-images-idx3-ubyte\.gz: corrupt or truncated gzip"):
        read_idx(path, IMAGES_MAGIC)


def test_truncated_idx_payload_reports_expected_and_actual_bytes(tmp_path, images):
    path = write(tmp_path / "train-images-idx3-ubyte.gz", idx_bytes(images)[:-100])
    with pytest.raises(DataError) as error:
        read_idx(path, IMAGES_MAGIC)
    message = str(error.value)
    assert str(path) in message and "truncated" in message
    assert "3920 bytes" in message and "3820" in message  # 5*28*28 expected, 100 fewer found


def test_wrong_magic_names_the_file(tmp_path):
    path = write(tmp_path / "train-images-idx3-ubyte.gz", idx_bytes(np.arange(10, dtype=np.uint8)))
    with pytest.raises(DataError, match=r"train-images-idx3-ubyte\.gz: not an IDX images file: magic number 2049"):
        read_idx(path, IMAGES_MAGIC)


def test_non_byte_idx_data_type_is_refused(tmp_path, images):
    path = write(tmp_path / "t10k-images-idx3-ubyte", idx_bytes(images, dtype_code=0x0D))
    with pytest.raises(DataError, match=r"t10k-images-idx3-ubyte: .*data type 0x0d"):
        read_idx(path, IMAGES_MAGIC)


@pytest.mark.parametrize(
    "content",
    [b"this is not gzip at all", b"\x1f\x8b\x08\x00" + bytes(range(60))],
    ids=["not-gzip", "corrupt-deflate"],
)
def test_corrupt_gzip_names_the_file(tmp_path, content):
    path = tmp_path / "t10k-labels-idx1-ubyte.gz"
    path.write_bytes(content)
    with pytest.raises(DataError, match=r"t10k-labels-idx1-ubyte\.gz: corrupt or truncated gzip"):
        read_idx(path, LABELS_MAGIC)


def test_empty_and_missing_files_are_data_errors(tmp_path):
    empty = write(tmp_path / "labels", b"")
    with pytest.raises(DataError, match="only 0 bytes"):
        read_idx(empty, LABELS_MAGIC)
    with pytest.raises(DataError, match="cannot read the file"):
        read_idx(tmp_path / "absent.gz", LABELS_MAGIC)


def test_label_count_must_match_image_count(tmp_path, images):
    images_path = write(tmp_path / "i.gz", idx_bytes(images))
    labels_path = write(tmp_path / "l.gz", idx_bytes(np.zeros(4, np.uint8)))
    with pytest.raises(DataError, match=r"4 labels for 5 images"):
        read_idx_pair(images_path, labels_path, classes=10)


def test_labels_must_be_below_the_class_count(tmp_path, images):
    images_path = write(tmp_path / "i.gz", idx_bytes(images))
    labels_path = write(tmp_path / "l.gz", idx_bytes(np.array([0, 1, 2, 10, 3], np.uint8)))
    with pytest.raises(DataError, match=r"l\.gz: label 10 is out of range: the model has 10 classes"):
        read_idx_pair(images_path, labels_path, classes=10)


def test_mnist_raw_content_matches_manifest(shared_data):
    images = read_idx(shared_data / "mnist" / "train-images-idx3-ubyte.gz", IMAGES_MAGIC)
    assert images.shape == (60000, 28, 28)
    assert images.mean(dtype=np.float64) / 255 == pytest.approx(0.1306604763, abs=1e-10)
    raw = gzip.decompress((shared_data / "mnist" / "train-images-idx3-ubyte.gz").read_bytes())
    assert hashlib.sha256(raw).hexdigest() == "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db"
