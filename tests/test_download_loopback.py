"""The real download path (pooch, checksums, cache) against an HTTP server on loopback serving the shared files."""

import dataclasses
import shutil

import numpy as np
import pytest

from parity.catalog import get_spec
from parity.datasets import load_dataset, sources, vision
from parity.errors import DataError



def _point_fashion_mnist_at(monkeypatch, *mirrors):
    moved = dataclasses.replace(sources.SOURCES["fashion-mnist"], mirrors=mirrors)
    monkeypatch.setattr(vision, "SOURCES", {**sources.SOURCES, "fashion-mnist": moved})


def test_download_verifies_checksums_fills_the_cache_and_falls_back_to_the_next_mirror(
        served, shared_data, monkeypatch, tmp_path):
    root, url = served
    for path in (shared_data / "fashion-mnist").glob("*.gz"):
        shutil.copy(path, root / path.name)
    monkeypatch.delenv("PARITY_OFFLINE")
    monkeypatch.setenv("PARITY_CACHE_DIR", str(tmp_path / "cache"))
    _point_fashion_mnist_at(monkeypatch, url + "missing/", url)  # the first mirror answers 404
    split = load_dataset(get_spec("c1w2_fmnist_dnn"))
    assert all("127.0.0.1" in url for url in vision.SOURCES["fashion-mnist"].mirrors)
    assert split.train.x.shape == (60000, 28, 28) and split.location == str(tmp_path / "cache" / "fashion-mnist")
    assert np.bincount(split.val.y).tolist() == [1000] * 10
    # The cache now serves offline, checked against the same checksums.
    monkeypatch.setenv("PARITY_OFFLINE", "1")
    assert np.array_equal(load_dataset(get_spec("c1w2_fmnist_dnn")).train.y, split.train.y)


def test_download_with_a_wrong_checksum_is_refused_and_not_cached(served, shared_data, monkeypatch, tmp_path):
    root, url = served
    for path in (shared_data / "fashion-mnist").glob("*.gz"):
        shutil.copy(path, root / path.name)
    (root / "t10k-labels-idx1-ubyte.gz").write_bytes(b"not the real file")
    monkeypatch.delenv("PARITY_OFFLINE")
    monkeypatch.setenv("PARITY_CACHE_DIR", str(tmp_path / "cache"))
    _point_fashion_mnist_at(monkeypatch, url)
    with pytest.raises(DataError, match="t10k-labels-idx1-ubyte.gz") as error:
        load_dataset(get_spec("c1w2_fmnist_dnn"))
    message = str(error.value)
    assert f"{url}t10k-labels-idx1-ubyte.gz" in message and "hash" in message.lower()
    assert "amazonaws" not in message and "--data-dir" in message and "\n" not in message
    assert not (tmp_path / "cache" / "fashion-mnist" / "t10k-labels-idx1-ubyte.gz").exists()
