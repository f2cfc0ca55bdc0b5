"""A univariate series from a CSV file (the course's daily-min-temperatures.csv, or a user's own), windowed.

As in the course's `parse_data_from_file`: the first row is the header, each later row gives
one step, the value column is read as a number (the series is float32, as the model sees it).
The course splits by count (`split_time` of `steps`); a shorter file keeps the course's
proportion instead (`course_count_split`), and the split's info and a printed line say so.
"""

from __future__ import annotations

import csv
import math
import os
import sys
from pathlib import Path

import numpy as np

from parity.catalog import ModelSpec
from parity.datasets.locate import locate
from parity.datasets.series import windows
from parity.datasets.sources import spec_source
from parity.datasets.split import DataSplit, course_count_split, make_split
from parity.errors import DataError


def load_csv_series(spec: ModelSpec, data_dir: str | os.PathLike | None) -> DataSplit:
    """Windows of `spec.data.window_size` steps (a trailing feature axis when the input shape has one),
    each with the next step as its target; training targets before the split, validation after it."""
    data = spec.data
    source = spec_source(spec, ("data",))
    files, _ = locate(source, data_dir, validate=lambda path: _check_download(path, spec))
    path = files[source.files[0]]
    series = read_series(path, data.value_column)
    split = course_count_split(len(series), data.split_time, data.steps, str(path), unit="steps")
    if split.note:
        print(f"parity: note: {split.note}", file=sys.stderr, flush=True)
    if split.train <= data.window_size:
        raise DataError(
            f"{path}: {len(series)} steps put the split at step {split.train}, too early for windows of "
            f"{data.window_size} steps: {spec.id} needs a series of at least "
            f"{math.ceil((data.window_size + 1) * data.steps / data.split_time)} steps"
        )
    train, val = windows(series, split.train, data.window_size)
    info = {"steps": len(series), "split_time": split.train, "files": [str(path)],
            **({"split_note": split.note} if split.note else {})}
    return make_split(spec, "real", train, val, str(path), info)


def read_series(path: Path, column: int | str | None) -> np.ndarray:
    """The `column` (a header name or a 0-based index; None: the last column) of a CSV file as float32.

    A missing column, a short row or a value that is not a finite number is a DataError naming
    the file and the line; blank lines are skipped.
    """
    try:
        with open(path, newline="", encoding="utf-8-sig") as stream:
            rows = list(csv.reader(stream))
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise DataError(f"{path}: not a readable CSV file ({error})") from None
    if not rows:
        raise DataError(f"{path}: empty file; expected a header row and one row per step")
    header = rows[0]
    index = _column_index(path, header, column)
    values = []
    for line, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue
        if index >= len(row):
            raise DataError(f"{path}, line {line}: {len(row)} columns, no column {header[index]!r}; fix or remove the row")
        text = row[index]
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not math.isfinite(value):
            raise DataError(f"{path}, line {line}: {header[index]!r} value {text!r} is not a number; fix or remove the row")
        values.append(value)
    return np.array(values, dtype=np.float32)


def _column_index(path: Path, header: list[str], column: int | str | None) -> int:
    names = [name.strip() for name in header]
    if column is None:
        return len(names) - 1
    if isinstance(column, int):
        if not -len(names) <= column < len(names):
            raise DataError(f"{path}: no column {column}: the header has {len(names)} ({', '.join(names)})")
        return column % len(names)
    if column not in names:
        raise DataError(f"{path}: no column {column!r} in the header ({', '.join(names)})")
    return names.index(column)


def _check_download(path: Path, spec: ModelSpec) -> None:
    """A fresh download has no checksum to match (see sources.py): the course's column and step count are the check."""
    steps = len(read_series(path, spec.data.value_column))
    if steps != spec.data.steps:
        raise DataError(f"{path}: {steps} steps, the course's file has {spec.data.steps}")
