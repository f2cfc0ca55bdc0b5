"""Sentiment140 + GloVe: the real files' formats (written here, small), sampling, the embedding matrix, bad lines."""

import csv
import dataclasses
import io
import random

import numpy as np
import pytest

from parity.catalog import get_spec, resolve_spec
from parity.datasets import load_dataset
from parity.datasets.decode import DataWarning
from parity.datasets.sentiment140 import GLOVE_FILE, TWEETS_FILE, glove_vectors, sample_order
from parity.errors import DataError
from parity.plan import collate

SPEC = get_spec("c3w3_sentiment140_glove")
DIM = SPEC.layers.embedding_dim
GLOVE_WORDS = ["good", "bad", "day", "love", "hate", "rain", "sun", "the"]


def _tweet(polarity: int, index: int, text: str) -> list[str]:
    return [str(polarity), str(1_467_810_000 + index), "Mon Apr 06 22:19:45 PDT 2009", "NO_QUERY", "someone", text]


def _write_data(folder, rows, glove_lines=None, encoding="utf-8"):
    table = io.StringIO()
    csv.writer(table, quoting=csv.QUOTE_ALL, lineterminator="\n").writerows(rows)
    (folder / TWEETS_FILE).write_bytes(table.getvalue().encode(encoding))
    if glove_lines is None:
        rng = np.random.default_rng(0)
        glove_lines = [f"{word} {' '.join(f'{v:.4f}' for v in rng.normal(size=DIM))}" for word in GLOVE_WORDS]
    (folder / GLOVE_FILE).write_text("\n".join(glove_lines) + "\n", encoding="utf-8")


def _weights(split) -> str:
    return split.info["spec_overrides"]["layers"]["embedding_weights"]


def _rows(count: int) -> list[list[str]]:
    texts = ["good day", "bad rain", "love the sun", "hate the rain!", "café day"]
    return [_tweet(4 * (index % 2), index, texts[index % len(texts)] + f" w{index}") for index in range(count)]


def test_files_are_sampled_split_vectorized_and_embedded(tmp_path):
    _write_data(tmp_path, _rows(50), encoding="latin-1")  # the original Sentiment140 encoding (é is one byte)
    split = load_dataset(SPEC, data_dir=tmp_path)
    info = split.info
    assert info["encoding"] == "latin-1" and info["records"] == 50 and info["sampled"] == 50
    assert (len(split.train), split.val_size) == (45, 5)  # int(50 * 0.9)
    order = sample_order(50, 160_000)
    assert order == random.Random(42).sample(range(50), 50)
    expected_labels = [float(index % 2) for index in order]
    assert split.train.y[:, 0].tolist() + split.val.y[:, 0].tolist() == expected_labels
    x, _ = collate(split.train, np.arange(5))
    assert x.shape == (5, 32) and x.dtype == np.int32  # post-padded to max_length 32
    vocabulary = list(split.vocabulary)
    weights = info["spec_overrides"]["layers"]["embedding_weights"]
    assert "café" in vocabulary and info["spec_overrides"] == {"layers": {"vocab_size": len(vocabulary),
                                                                          "embedding_weights": weights}}
    resolved = resolve_spec(SPEC, info["spec_overrides"])
    assert (resolved.layers.vocab_size, resolved.layers.embedding_weights) == (len(vocabulary), weights)
    matrix = np.load(weights)
    glove = {line.split(" ")[0]: np.array(line.split(" ")[1:], np.float32)
             for line in (tmp_path / GLOVE_FILE).read_text().splitlines()}
    assert matrix.shape == (len(vocabulary), DIM) and matrix.dtype == np.float32
    for index, token in enumerate(vocabulary):
        assert np.array_equal(matrix[index], glove.get(token, np.zeros(DIM, np.float32))), token
    assert info["glove_found"] == sum(token in glove for token in vocabulary) == len(GLOVE_WORDS)
    assert not matrix[:2].any()  # '' and [UNK]


def test_sample_is_the_assignments_random_sample():
    rows = list(zip(range(1000), range(1000)))
    random.seed(42)
    course = random.sample(rows, 160)
    assert [rows[index] for index in sample_order(1000, 160)] == course
    assert sample_order(1000, 160) != random.Random(43).sample(range(1000), 160)  # the seed matters


def test_a_smaller_sample_keeps_the_training_share(tmp_path):
    _write_data(tmp_path, _rows(60))
    spec = dataclasses.replace(SPEC, data=dataclasses.replace(SPEC.data, num_samples=20))
    split = load_dataset(spec, data_dir=tmp_path)
    assert split.info["encoding"] == "utf-8" and (len(split.train), split.val_size) == (18, 2)


def test_malformed_tweets_are_skipped_with_file_and_line(tmp_path):
    rows = _rows(12)
    rows[2] = rows[2][:5]                 # line 3: 5 fields
    rows[5][0] = "2"                      # line 6: neutral polarity, not in the label map
    rows[7][5] = "   "                    # line 8: empty text
    _write_data(tmp_path, rows)
    with pytest.warns(DataWarning) as warned:
        split = load_dataset(SPEC, data_dir=tmp_path)
    path = tmp_path / TWEETS_FILE
    assert [str(w.message) for w in warned] == [f"{path}:3: 5 fields, Sentiment140 has 6; record skipped",
                                               f"{path}:6: polarity '2' is not one of 0, 4; record skipped",
                                               f"{path}:8: empty text; record skipped"]
    assert split.info["skipped_records"] == 3 and split.info["records"] == 9


@pytest.mark.parametrize("line, message", [
    ("day 0.5 0.25", r":2: 2 numbers after the word 'day', expected 100"),
    ("day " + " ".join(["0.1"] * 99 + ["x"]), r":2: the vector of 'day' holds a value that is not a number"),
])
def test_malformed_glove_lines_are_refused_with_file_and_line(tmp_path, line, message):
    good = "good " + " ".join(["0.5"] * DIM)
    _write_data(tmp_path, _rows(10), glove_lines=[good, line])
    with pytest.raises(DataError, match=f"{GLOVE_FILE}{message}"):
        load_dataset(SPEC, data_dir=tmp_path)


def test_undecodable_glove_line_is_refused(tmp_path):
    path = tmp_path / GLOVE_FILE
    path.write_bytes(b"good " + b" ".join([b"0.5"] * DIM) + b"\nd\xe9j\xe0 0.1\n")
    with pytest.raises(DataError, match=rf"{GLOVE_FILE}:2: byte 0xe9 at column 2 is not UTF-8"):
        glove_vectors(path, ["", "[UNK]", "good"], DIM)


def test_embedding_matrix_is_cached_and_rebuilt_when_damaged(tmp_path, capsys):
    _write_data(tmp_path, _rows(20))
    first = _weights(load_dataset(SPEC, data_dir=tmp_path))
    reference = np.load(first).copy()
    assert _weights(load_dataset(SPEC, data_dir=tmp_path)) == first
    with open(first, "r+b") as stream:  # flip bytes in the data part of the .npy
        stream.seek(-8, 2)
        stream.write(b"\x7f" * 8)
    assert np.array_equal(np.load(_weights(load_dataset(SPEC, data_dir=tmp_path))), reference)
    assert "fails its sha256 check; building it again" in capsys.readouterr().err


def test_synthetic_stand_in_goes_through_the_file_reader():
    split = load_dataset(SPEC, synthetic=True)
    info = split.info
    assert split.source == "synthetic" and (len(split.train), split.val_size) == (1350, 150)
    assert info["glove_missing"] == 6 and info["glove_found"] == len(split.vocabulary) - 6
    assert split.location.endswith(TWEETS_FILE) and np.load(_weights(split)).shape == (38, DIM)
    assert "files" not in info and info["generator"]["function"].endswith("tweets")  # provenance: the parameters
