"""The data directory: index-addressable sources written once, memory-mapped by the workers."""

import json

import numpy as np
import pytest

from parity import jobs
from parity.catalog import get_spec
from parity.datasets import load_dataset
from parity.datasets.split import make_split
from parity.datasets.store import (
    MANIFEST, Padding, PixelScale, Ragged, SampleSource, load_sources, ragged_array, read_ragged, save_sources,
    whole_npy_file, write_ragged,
)
from parity.errors import DataError
from parity.plan import collate


def test_ragged_writer_round_trips_token_lists_memory_mapped(tmp_path):
    sequences = [[4, 5, 6], [], [7], list(range(1, 40))]
    ragged = write_ragged(tmp_path / "tokens", sequences)
    assert isinstance(ragged.values, np.memmap) and ragged.values.dtype == np.int32 and ragged.offsets.dtype == np.int64
    assert len(ragged) == 4 and [ragged[i].tolist() for i in range(4)] == sequences
    assert [read_ragged(tmp_path / "tokens")[i].tolist() for i in range(4)] == sequences
    assert [ragged.head(2)[i].tolist() for i in range(2)] == sequences[:2] and len(ragged.head(2)) == 2
    with pytest.raises(ValueError, match="int32"):
        ragged_array([[2**31]])


def test_sources_round_trip_through_a_data_directory(tmp_path):
    pixels = np.random.default_rng(0).integers(0, 256, (6, 4, 4, 3), dtype=np.uint8)
    train = SampleSource(pixels, np.eye(3, dtype=np.float32)[[0, 1, 2, 0, 1, 2]], scale=PixelScale(1 / 255))
    val = SampleSource(ragged_array([[1, 2], [3]]), np.array([[0.0], [1.0]], np.float32), padding=Padding(4, "pre"))
    loaded = load_sources(save_sources(tmp_path / "data", train, val))
    for source, again in ((train, loaded.train), (val, loaded.val)):
        assert isinstance(again.y, np.memmap)
        for a, b in zip(collate(source, np.array([1, 0])), collate(again, np.array([1, 0]))):
            assert a.dtype == b.dtype and a.tobytes() == b.tobytes()
    assert loaded.val.padding == Padding(4, "pre") and loaded.train.scale == PixelScale(1 / 255)


def test_validating_on_the_training_data_stores_it_once_and_no_validation_stores_none(tmp_path):
    source = SampleSource(np.arange(6, dtype=np.float32).reshape(6, 1), np.zeros((6, 1), np.float32))
    directory = save_sources(tmp_path / "same", source, source)
    assert json.loads((directory / MANIFEST).read_text())["val"] == "train"
    loaded = load_sources(directory)
    assert loaded.val is loaded.train
    assert load_sources(save_sources(tmp_path / "none", source, None)).val is None
    with pytest.raises(ValueError, match="not a readable data manifest"):
        load_sources(tmp_path / "nowhere")


def test_a_whole_memory_mapped_npy_file_is_referenced_not_copied_but_a_view_of_it_is_copied(tmp_path):
    np.save(tmp_path / "pixels.npy", np.zeros((10, 3, 3, 1), np.uint8))
    whole = np.load(tmp_path / "pixels.npy", mmap_mode="r")
    assert whole_npy_file(whole) == (tmp_path / "pixels.npy").resolve()
    assert whole_npy_file(whole[:4]) is None and whole_npy_file(np.zeros(3)) is None
    source = SampleSource(whole, np.zeros(10, np.int64), scale=PixelScale(1 / 255))
    directory = save_sources(tmp_path / "data", source, source.head(4))
    manifest = json.loads((directory / MANIFEST).read_text())
    assert manifest["train"]["x"]["file"] == str((tmp_path / "pixels.npy").resolve())
    assert manifest["val"]["x"]["file"] == "val-x.npy" and (directory / "val-x.npy").is_file()
    assert not (directory / "train-x.npy").exists()


def test_save_data_hands_the_workers_a_directory_with_a_manifest(tmp_path):
    split = load_dataset(get_spec("c1w3_fmnist_cnn"), synthetic=True)
    path = jobs.save_data(tmp_path, split)
    assert path == jobs.data_path(tmp_path) and (path / MANIFEST).is_file()
    data = jobs.load_data(path)
    assert data.train.x.dtype == np.uint8 and len(data.train) == 1200 and len(data.val) == 300  # pixels stay uint8
    x, y = collate(data.train, np.arange(3))
    assert x.dtype == np.float32 and x.shape == (3, 28, 28, 1) and y.dtype == np.int64


def test_a_failed_job_removes_its_data_directory(tmp_path):
    split = load_dataset(get_spec("c1w1_hello_linear"))
    with pytest.raises(RuntimeError), jobs.work_directory("w-", tmp_path) as workdir:
        jobs.save_data(workdir, split)
        raise RuntimeError("the job failed")
    assert not list(tmp_path.glob("w-*/data"))


@pytest.mark.parametrize(
    ("label_mode", "labels", "dtype", "shape"),
    [("int", [2, 0, 1], np.int64, (3,)), ("binary", [1, 0, 1], np.float32, (3, 1)),
     ("categorical", [2, 0, 1], np.float32, (3, 3)), ("none", [0.5, 1.5, 2.5], np.float32, (3, 1))],
)
def test_labels_keep_the_dtype_their_loss_takes(label_mode, labels, dtype, shape):
    import dataclasses

    spec = dataclasses.replace(get_spec("c2w4_rps_cnn"), input_shape=(2,), label_mode=label_mode,
                               loss={"int": "sparse_categorical_crossentropy", "binary": "binary_crossentropy",
                                     "categorical": "categorical_crossentropy", "none": "mse"}[label_mode])
    split = make_split(spec, "synthetic", (np.zeros((3, 2), np.float32), np.array(labels)), None, "generated")
    assert split.val is None and split.val_size == 0
    assert split.train.y.dtype == dtype and split.train.y.shape == shape
    if label_mode == "categorical":
        assert split.train.y.tolist() == [[0, 0, 1], [1, 0, 0], [0, 1, 0]]
        with pytest.raises(DataError, match="class id 3 is out of range for 3 classes"):
            make_split(spec, "synthetic", (np.zeros((1, 2), np.float32), np.array([3])), None, "generated")


def test_ragged_inputs_take_the_spec_padding():
    spec = get_spec("c3w3_imdb_bilstm1")  # max_length None, padding "pre"
    split = make_split(spec, "synthetic", (ragged_array([[3, 4], [5]]), np.array([1, 0])), None, "generated")
    assert isinstance(split.train.x, Ragged) and split.train.padding == Padding(None, "pre", "post")
    assert collate(split.train, np.array([0, 1]))[0].tolist() == [[3, 4], [0, 5]]
