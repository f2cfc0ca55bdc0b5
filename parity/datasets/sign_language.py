"""Sign-language MNIST (C2W4): Kaggle's CSV files (v1), or v2's folders of letter images.

CSV layout (v1, Kaggle datamunge/sign-language-mnist): a header `label,pixel1,...,pixel784`, then one
row per 28x28 greyscale image: its letter (0..25 = A..Z; J=9 and Z=25 need motion, so the files hold
24 letters) and 784 pixels 0..255, row by row. `sign_mnist_train.csv` trains, `sign_mnist_test.csv`
validates (as v1 does). With a training CSV alone (any `sign_mnist_train*.csv`, e.g. the shared
688-row sample), its last rows validate, in the course's proportion 7,172 / (27,455 + 7,172), after a
one-line note. A malformed row is refused with `file:line` and the fix.
Folder layout (v2): `train/` and `validation/` (the course's data/), each of letter folders of PNGs,
read as any image-folder set (`parity.datasets.image_folder`): labels are then the letter folders'
sorted positions, 0..23, as v2's image_dataset_from_directory gives them.
There is no download: Kaggle serves the files only to signed-in users.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np

from parity.catalog import ModelSpec
from parity.datasets.image_folder import load_image_folders, pixel_scale
from parity.datasets.locate import local_directory, read_data_file
from parity.datasets.sources import Source
from parity.datasets.split import DataSplit, course_count_split, make_split
from parity.errors import DataError

TRAIN_CSV, TEST_CSV = "sign_mnist_train.csv", "sign_mnist_test.csv"
TRAIN_PATTERN = "sign_mnist_train*.csv"
SIDE = 28
PIXELS = SIDE * SIDE
HEADER = ",".join(["label", *(f"pixel{index}" for index in range(1, PIXELS + 1))])
LETTERS = tuple(chr(ord("A") + index) for index in range(26))  # label i is letter LETTERS[i]
PRESENT_LABELS = tuple(label for label in range(25) if label != 9)  # the 24 letters the files hold
COURSE_TRAIN_ROWS, COURSE_TEST_ROWS = 27_455, 7_172  # Kaggle's two files (course_models.md 4.8)
KAGGLE = "https://www.kaggle.com/datasets/datamunge/sign-language-mnist"
CSV_SOURCE = Source("sign-language-mnist", mirrors=(), hashes={TRAIN_CSV: None, TEST_CSV: None})


def load_sign_language(spec: ModelSpec, data_dir: str | os.PathLike | None) -> DataSplit:
    """The training and validation images of sign-language MNIST from `data_dir` (else PARITY_DATA_DIR's
    sign-language-mnist folder): uint8 (N, 28, 28, 1) pixels scaled per batch as the spec says, int labels."""
    local, looked = local_directory(CSV_SOURCE, data_dir)
    if local is None:
        places = ", ".join(looked) or "no place: no --data-dir"
        raise DataError(f"sign-language-mnist: no data found (looked in {places}); "
                        f"download {TRAIN_CSV} and {TEST_CSV} from {KAGGLE} (it needs a Kaggle login) and pass "
                        "--data-dir DIR (the folder holding them), or v2's data/ folder of train/ and validation/")
    if local.is_file():
        return _from_csv(spec, local, None)
    if not local.is_dir():
        raise DataError(f"sign-language-mnist: data directory {local} does not exist; it should hold {TRAIN_CSV} "
                        f"and {TEST_CSV}, or train/ and validation/ folders of letter images")
    if (local / TRAIN_CSV).is_file():
        return _from_csv(spec, local / TRAIN_CSV, local / TEST_CSV if (local / TEST_CSV).is_file() else None)
    candidates = sorted(local.glob(TRAIN_PATTERN))
    if len(candidates) > 1:
        raise DataError(f"{local}: several training CSVs ({', '.join(path.name for path in candidates)}); "
                        f"keep one, or name the full one {TRAIN_CSV}")
    if candidates:
        return _from_csv(spec, candidates[0], local / TEST_CSV if (local / TEST_CSV).is_file() else None)
    return load_image_folders(spec, local)


def _from_csv(spec: ModelSpec, train_path: Path, test_path: Path | None) -> DataSplit:
    train = read_sign_csv(train_path)
    info: dict = {"classes": list(LETTERS)}
    if test_path is not None:
        val = read_sign_csv(test_path)
        info["files"] = [str(train_path), str(test_path)]
    else:
        # The course's two files as a count split of one file, kept as their proportion whatever its size.
        kept = course_count_split(len(train[1]), COURSE_TRAIN_ROWS, COURSE_TRAIN_ROWS + COURSE_TEST_ROWS,
                                  str(train_path), "rows", proportional=True).train
        held_out = len(train[1]) - kept
        note = (f"{train_path}: a training CSV without {TEST_CSV}, so its last {held_out} of {len(train[1])} rows "
                f"validate (the course's proportion {COURSE_TEST_ROWS:,} / {COURSE_TRAIN_ROWS + COURSE_TEST_ROWS:,}) "
                f"and the first {kept} train")
        print(f"parity: note: {note}", file=sys.stderr, flush=True)
        train, val = (train[0][:kept], train[1][:kept]), (train[0][kept:], train[1][kept:])
        info.update(files=[str(train_path)], split_note=note, held_out_rows=held_out)
    return make_split(spec, "real", train, val, str(train_path.parent), info, scale=pixel_scale(spec.data))


def read_sign_csv(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """uint8 pixels (N, 28, 28, 1) and int64 labels of one Kaggle sign_mnist_*.csv file.

    A wrong header, a row without 785 fields, a field that is not an integer, a pixel outside 0..255
    or a label outside 0..25 is a DataError naming `file:line`.
    """
    try:
        text = read_data_file(path, "sign-language CSV").decode("utf-8")
    except UnicodeDecodeError as error:
        raise DataError(f"{path}: not a text file ({error.reason} at byte {error.start}); give a Kaggle "
                        "sign_mnist_*.csv file") from None
    lines = [line.removesuffix("\r") for line in text.split("\n")]
    if lines[-1] == "":
        lines.pop()
    if not lines or lines[0] != HEADER:
        raise DataError(f"{path}:1: {_header_problem(lines[0] if lines else '')}, not sign-language MNIST's header "
                        f"'label,pixel1,...,pixel{PIXELS}'; give a Kaggle sign_mnist_*.csv file (its first line is "
                        "that header)")
    rows = lines[1:]
    if not rows:
        raise DataError(f"{path}: no rows after the header; give a file with at least one image row")
    for number, row in enumerate(rows, start=2):
        if row.count(",") != PIXELS:
            raise DataError(f"{path}:{number}: {row.count(',') + 1} fields, a row has {PIXELS + 1} (label, pixel1.."
                            f"pixel{PIXELS}); fix or remove that row")
    try:
        table = np.loadtxt(rows, delimiter=",", dtype=np.int64, ndmin=2)
    except ValueError as error:
        raise DataError(_non_integer(path, rows, error)) from None
    _check_range(path, table[:, 0], 0, len(LETTERS) - 1, "label", "(the letters A..Z)")
    _check_range(path, table[:, 1:], 0, 255, "pixel", "")
    return table[:, 1:].astype(np.uint8).reshape(-1, SIDE, SIDE, 1), table[:, 0].copy()


def _header_problem(line: str) -> str:
    """Where `line` first departs from HEADER: a column's name, or the number of columns."""
    got, wanted = line.split(","), HEADER.split(",")
    for column, (name, expected) in enumerate(zip(got, wanted), start=1):
        if name != expected:
            return f"header column {column} is {name[:40]!r} where {expected!r} belongs"
    return f"header has {len(got)} columns where {len(wanted)} belong"


def _non_integer(path: Path, rows: list[str], error: ValueError) -> str:
    """The message for the first field that is not an integer (numpy's own message when no field fails int())."""
    for number, row in enumerate(rows, start=2):
        for column, field in enumerate(row.split(",")):
            try:
                int(field)
            except ValueError:
                name = "label" if column == 0 else f"pixel{column}"
                return f"{path}:{number}: {name} is {field!r}, not an integer; fix or remove that row"
    return f"{path}: a field is not an integer ({' '.join(str(error).split())}); fix or remove that row"


def _check_range(path: Path, values: np.ndarray, low: int, high: int, what: str, meaning: str) -> None:
    bad = (values < low) | (values > high)
    if not bad.any():
        return
    row, column = np.argwhere(bad.reshape(len(values), -1))[0]
    name = what if what == "label" else f"{what}{column + 1}"
    value = values.reshape(len(values), -1)[row, column]
    raise DataError(f"{path}:{row + 2}: {name} is {value}, outside {low}..{high}{' ' + meaning if meaning else ''}; "
                    "fix or remove that row")
