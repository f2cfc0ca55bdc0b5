"""Sign-language MNIST: Kaggle's CSV files, the shared 688-row sample, malformed rows refused by line, v2's folders."""

import csv
import re
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from image_helpers import write_image_folders
from parity.catalog import get_spec
from parity.datasets import load_dataset
from parity.datasets.sign_language import PRESENT_LABELS
from parity.datasets.store import PixelScale
from parity.errors import DataError

SIGNS = get_spec("c2w4_sign_mnist_cnn")
HEADER = "label," + ",".join(f"pixel{i}" for i in range(1, 785))


def write_csv(path: Path, labels: list[int], seed: int = 0) -> np.ndarray:
    """A Kaggle-layout CSV (CRLF, as Kaggle's) of random 28x28 images with `labels`; returns the pixels (N, 784)."""
    pixels = np.random.default_rng(seed).integers(0, 256, (len(labels), 784))
    rows = [HEADER] + [",".join(map(str, [label, *row])) for label, row in zip(labels, pixels)]
    path.write_bytes(("\r\n".join(rows) + "\r\n").encode())
    return pixels


def test_the_shared_688_row_sample_holds_out_the_course_proportion(shared_data, capsys):
    folder = shared_data / "sign-language-mnist"
    split = load_dataset(SIGNS, folder)
    # The course's proportion of validation rows, 7,172 test rows of 27,455 + 7,172, rounded half up.
    held_out = int(Fraction(688 * 7172, 27455 + 7172) + Fraction(1, 2))
    assert held_out == 142
    assert split.train.x.shape == (688 - held_out, 28, 28, 1) and split.val.x.shape == (held_out, 28, 28, 1)
    assert split.train.x.dtype == np.uint8 and split.train.y.dtype == np.int64
    labels = set(split.train.y.tolist()) | set(split.val.y.tolist())
    assert labels <= set(PRESENT_LABELS) and 9 not in labels and len(labels) == 24
    assert split.train.scale == PixelScale(1 / 255) and split.info["held_out_rows"] == held_out
    with open(folder / "sign_mnist_train_first688rows.csv", newline="") as stream:
        rows = list(csv.reader(stream))
    last = np.array(rows[-1][1:], dtype=np.uint8).reshape(28, 28, 1)  # the last row validates, as the last image
    assert np.array_equal(split.val.x[-1], last) and split.val.y[-1] == int(rows[-1][0])
    assert np.array_equal(split.train.x[0, :, :, 0].ravel(), np.array(rows[1][1:], dtype=np.uint8))
    note = capsys.readouterr().err.strip().splitlines()
    assert len(note) == 1 and "its last 142 of 688 rows validate" in note[0]


def test_kaggle_train_and_test_files_train_and_validate(tmp_path, capsys):
    train = write_csv(tmp_path / "sign_mnist_train.csv", [3, 6, 2, 24, 0], seed=1)
    test = write_csv(tmp_path / "sign_mnist_test.csv", [6, 5, 10], seed=2)
    split = load_dataset(SIGNS, tmp_path)
    assert (len(split.train), split.val_size) == (5, 3) and split.val.y.tolist() == [6, 5, 10]
    assert np.array_equal(split.train.x.reshape(5, 784), train) and np.array_equal(split.val.x.reshape(3, 784), test)
    assert split.info["files"] == [str(tmp_path / "sign_mnist_train.csv"), str(tmp_path / "sign_mnist_test.csv")]
    assert capsys.readouterr().err == ""  # no held-out note


@pytest.mark.parametrize("line, planted, message", [
    (1, lambda row: row.replace("pixel7,", "pixel_7,"), r":1: header column 8 is 'pixel_7' where 'pixel7' belongs"),
    (3, lambda row: row.rsplit(",", 1)[0], r":3: 784 fields, a row has 785"),
    (4, lambda row: row + ",0", r":4: 786 fields, a row has 785"),
    (5, lambda row: row.replace(",", ",x", 1), r":5: pixel1 is 'x\d*', not an integer"),
    (6, lambda row: "2.5" + row[row.index(","):], r":6: label is '2\.5', not an integer"),
    (7, lambda row: row[: row.rindex(",")] + ",256", r":7: pixel784 is 256, outside 0\.\.255"),
    (2, lambda row: row.replace(",", ",-1,", 1).rsplit(",", 1)[0], r":2: pixel1 is -1, outside 0\.\.255"),
    (8, lambda row: "26" + row[row.index(","):], r":8: label is 26, outside 0\.\.25 \(the letters A\.\.Z\)"),
    (5, lambda row: "", r":5: 1 fields, a row has 785"),
])
def test_a_malformed_row_is_refused_with_its_file_and_line(tmp_path, line, planted, message):
    path = tmp_path / "sign_mnist_train.csv"
    write_csv(path, [1, 2, 3, 4, 5, 6, 7, 8])
    assert len(load_dataset(SIGNS, tmp_path).train) == 6  # the file as written loads
    lines = path.read_text().split("\n")
    lines[line - 1] = planted(lines[line - 1].removesuffix("\r")) + "\r"
    path.write_text("\n".join(lines))
    with pytest.raises(DataError) as error:
        load_dataset(SIGNS, tmp_path)
    text = str(error.value)
    assert text.startswith(f"{path}:{line}") and "\n" not in text
    assert re.search(message, text) and ("fix or remove that row" in text or ":1: header" in text)


def test_v2_image_folders_give_the_letter_folders_sorted_positions(tmp_path):
    letters = [chr(ord("A") + i) for i in PRESENT_LABELS]
    write_image_folders(tmp_path / "data" / "train", {letter: 2 for letter in letters}, size=(28, 28), mode="L")
    write_image_folders(tmp_path / "data" / "validation", {letter: 1 for letter in letters}, size=(28, 28), mode="L",
                        seed=1)
    split = load_dataset(SIGNS, tmp_path / "data")
    assert split.train.x.shape == (48, 28, 28, 1) and split.val.x.shape == (24, 28, 28, 1)
    assert split.info["classes"] == letters and split.val.y.tolist() == list(range(24))  # 'K' is 9, as in v2


def test_no_data_names_kaggle_and_data_dir(tmp_path):
    with pytest.raises(DataError, match=r"sign_mnist_train\.csv and sign_mnist_test\.csv from https://www\.kaggle\.com/"
                                        r"datasets/datamunge/sign-language-mnist .*--data-dir"):
        load_dataset(SIGNS)
    write_csv(tmp_path / "sign_mnist_train_a.csv", [1, 2])
    write_csv(tmp_path / "sign_mnist_train_b.csv", [1, 2])
    with pytest.raises(DataError, match=r"several training CSVs \(sign_mnist_train_a\.csv, sign_mnist_train_b\.csv\)"):
        load_dataset(SIGNS, tmp_path)


def test_the_stand_in_holds_the_24_letters_of_the_real_files():
    split = load_dataset(SIGNS, synthetic=True)
    assert split.train.x.shape[1:] == (28, 28, 1) and split.train.y.dtype == np.int64
    assert sorted(set(split.train.y.tolist())) == list(PRESENT_LABELS)
