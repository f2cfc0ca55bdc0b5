"""A univariate series from a CSV file (Sunspots.csv, daily-min-temperatures.csv, or a user's own), windowed.

As in the course's `parse_data_from_file`: the first row is the header, each later row gives
one step, the value column is read as a number (the series is float32, as the model sees it).
A time column, where the spec or the user names one, is checked: ISO dates (daily or monthly
steps, inferred from the data) or integers (step 1); a missing, repeated or out-of-order time
is a DataError naming the lines, never filled in (the spec may accept its course file's own gaps).
The course splits by count (`split_time` of `steps`); a shorter file keeps the course's
proportion instead (`course_count_split`), and the split's info and a printed line say so.
"""

from __future__ import annotations

import csv
import datetime
import math
import os
import re
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from parity.catalog import ModelSpec
from parity.datasets.locate import locate
from parity.datasets.series import SeriesOptions, window_of, windows
from parity.datasets.sources import SOURCES
from parity.datasets.split import DataSplit, course_count_split, make_split
from parity.errors import DataError
from parity.spec_types import COURSE_FILE, USER_FILE

SHOWN_PROBLEMS = 5  # time problems listed in an error; the rest are counted
COLUMN_FLAGS = "--series-column NAME (SeriesOptions(value_column=...))"
_ISO_DATE = re.compile(r"^(\d{4})-(\d{2})(?:-(\d{2}))?$")


@dataclass(frozen=True)
class SeriesFile:
    """The values of one CSV column (float32), the file line of each, and the checked time axis (or None)."""

    path: Path
    values: np.ndarray
    lines: tuple[int, ...]
    time: dict[str, object] | None


def load_csv_series(spec: ModelSpec, data_dir: str | os.PathLike | None,
                    options: SeriesOptions | None = None) -> DataSplit:
    """The spec's CSV data set (sunspots, daily-min-temperatures): the course's file, a download, or a user's file
    in `data_dir`; `options` may name other value and time columns."""
    options = options or SeriesOptions()
    source = SOURCES[spec.dataset]
    value_column = spec.data.value_column if options.value_column is None else options.value_column
    time_column = spec.data.time_column if options.time_column is None else options.time_column
    if data_dir is not None:
        path = find_csv(Path(data_dir).expanduser(), source.files[0])
    else:
        files, _ = locate(source, None, validate=lambda downloaded: _check_download(downloaded, spec))
        path = files[source.files[0]]
    table = read_series_file(path, value_column, time_column, spec.data.known_gaps)
    return _windowed(spec, table, spec.data.split_time, spec.data.steps, COURSE_FILE)


def load_user_series(spec: ModelSpec, data_dir: str | os.PathLike, options: SeriesOptions | None = None) -> DataSplit:
    """A user's own CSV series in `data_dir` (a .csv file, or a directory holding one) for a generated-series model,
    split at the proportion where the course splits its lab series (1000 of 1461 steps), whatever its length."""
    options = options or SeriesOptions()
    path = find_csv(Path(data_dir).expanduser(), None)
    value_column = options.value_column
    if value_column is None:
        header, _ = _read_rows(path)
        if len(header) > 2:
            raise DataError(f"{path}: {len(header)} columns ({', '.join(name.strip() for name in header)}); name the "
                            f"series column: pass {COLUMN_FLAGS}, and --time-column NAME for its dates or indices")
        value_column = len(header) - 1
    table = read_series_file(path, value_column, options.time_column, ())
    course = spec.data.synthetic["lab"]
    return _windowed(spec, table, course.split_time, course.steps, USER_FILE)


def _windowed(spec: ModelSpec, table: SeriesFile, course_split: int, course_steps: int, name: str) -> DataSplit:
    """Windows of the file's series, split where the course splits: by count in the course's own file (and a
    longer copy of it), by the course's proportion in a shorter one and in any user's series."""
    path, series, window = table.path, table.values, window_of(spec)
    split = course_count_split(len(series), course_split, course_steps, str(path), unit="steps",
                               proportional=name == USER_FILE)
    if split.note:
        print(f"parity: note: {split.note}", file=sys.stderr, flush=True)
    if split.train <= window:
        raise DataError(
            f"{path}: {len(series)} steps put the split at step {split.train}, too early for windows of "
            f"{window} steps: {spec.id} needs a series of at least "
            f"{math.ceil((window + 1) * course_steps / course_split)} steps"
        )
    train, val = windows(series, split.train, window)
    info = {"series": name, "steps": len(series), "split_time": split.train, "files": [str(path)],
            **({"time": table.time} if table.time else {}), **({"split_note": split.note} if split.note else {})}
    return make_split(spec, "real", train, val, str(path), info)


def find_csv(location: Path, name: str | None) -> Path:
    """The CSV file at `location`: the file itself, else `name` in that directory, else its only .csv file."""
    if location.is_file():
        return location
    if not location.is_dir():
        raise DataError(f"data directory {location} does not exist; pass the CSV file or the directory holding it")
    if name is not None and (location / name).is_file():
        return location / name
    found = sorted(location.glob("*.csv"))
    if len(found) != 1:
        wanted = f"{name}, or exactly one .csv file" if name else "exactly one .csv file"
        listed = f" ({', '.join(path.name for path in found)})" if found else ""
        raise DataError(f"{location}: {len(found)} .csv files{listed}; it should hold {wanted}: "
                        "pass the CSV file itself as the data directory")
    return found[0]


def read_series(path: Path, column: int | str | None) -> np.ndarray:
    """The `column` (a header name or a 0-based index, also as text; None: the last column) of a CSV file as float32."""
    return read_series_file(path, column, None, ()).values


def read_series_file(path: Path, value_column: int | str | None, time_column: int | str | None,
                     known_gaps: tuple[str, ...]) -> SeriesFile:
    """The value column (None: the last) as float32, with the time column checked when one is named.

    A missing column, a short row or a value that is not a finite number is a DataError naming
    the file and the line; blank lines are skipped. Time problems: see `check_times`.
    """
    header, rows = _read_rows(path)
    index = _column_index(path, header, value_column)
    time_index = None if time_column is None else _column_index(path, header, time_column)
    values, lines, times = [], [], []
    for line, row in rows:
        needed = max(index, -1 if time_index is None else time_index)
        if needed >= len(row):
            raise DataError(f"{path}, line {line}: {len(row)} columns, no column {header[needed]!r}; fix or remove the row")
        text = row[index]
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not math.isfinite(value):
            raise DataError(f"{path}, line {line}: {header[index]!r} value {text!r} is not a number; fix or remove the row")
        values.append(value)
        lines.append(line)
        if time_index is not None:
            times.append(row[time_index].strip())
    time = None if time_index is None else check_times(path, header[time_index].strip(), times, lines, known_gaps)
    return SeriesFile(path, np.array(values, dtype=np.float32), tuple(lines), time)


def check_times(path: Path, column: str, times: list[str], lines: list[int],
                known_gaps: tuple[str, ...] = ()) -> dict[str, object]:
    """The time axis of a series (column name, step "daily", "monthly" or "integer", first, last, accepted gaps).

    Every step must be exactly one day, month or integer apart from the one before. A gap (missing
    times), a repeated or an out-of-order time is a DataError naming the file, its lines and the fix,
    except the missing times listed in `known_gaps` (the course file's own, accepted as they are).
    """
    if not times:
        raise DataError(f"{path}: no rows; expected a header row and one row per step")
    step, ordinals = _parse_times(path, column, times, lines)
    problems, accepted = [], []
    for row in range(1, len(ordinals)):
        gap = int(ordinals[row] - ordinals[row - 1])
        where = f"lines {lines[row - 1]}-{lines[row]}"
        if gap == 1:
            continue
        if gap == 0:
            problems.append(f"line {lines[row]}: {times[row]} repeats line {lines[row - 1]}")
        elif gap < 0:
            problems.append(f"line {lines[row]}: {times[row]} comes after {times[row - 1]} (line {lines[row - 1]})")
        else:
            missing = [_label(step, ordinals[row - 1] + k) for k in range(1, gap)]
            unknown = [time for time in missing if time not in known_gaps]
            accepted += [time for time in missing if time in known_gaps]
            if unknown:
                shown = ", ".join(unknown[:3]) + (f" and {len(unknown) - 3} more" if len(unknown) > 3 else "")
                problems.append(f"{where}: {len(unknown)} missing ({shown})")
    if problems:
        listed = "; ".join(problems[:SHOWN_PROBLEMS])
        more = f"; and {len(problems) - SHOWN_PROBLEMS} more" if len(problems) > SHOWN_PROBLEMS else ""
        unit = {"daily": "day", "monthly": "month", "integer": "index"}[step]
        raise DataError(
            f"{path}: time column {column!r} ({step}) is not one row per {unit} in order: {listed}{more}. Gaps are "
            "never filled in: add the missing rows with their measured values, remove repeated rows, sort the rows "
            "by time"
        )
    time = {"column": column, "step": step, "first": times[0], "last": times[-1]}
    if accepted:
        time["accepted_gaps"] = accepted
        print(f"parity: note: {path}: missing {', '.join(accepted)} (known gaps of the course's file, accepted as "
              "they are: the rows are taken as consecutive steps, as the course does)", file=sys.stderr, flush=True)
    return time


def _parse_times(path: Path, column: str, times: list[str], lines: list[int]) -> tuple[str, np.ndarray]:
    """The step kind and each time as an ordinal number of steps (integer, day or month)."""
    if all(re.fullmatch(r"[+-]?\d+", time) for time in times):
        return "integer", np.array([int(time) for time in times], dtype=np.int64)
    days, months = [], []
    for time, line in zip(times, lines):
        match = _ISO_DATE.match(time)
        try:
            year, month, day = int(match[1]), int(match[2]), int(match[3] or 1)
            days.append(datetime.date(year, month, day).toordinal())
        except (TypeError, ValueError):
            raise DataError(f"{path}, line {line}: time {time!r} in column {column!r} is neither an ISO date "
                            "(YYYY-MM-DD or YYYY-MM) nor an integer; fix the row or name another time column") from None
        months.append(year * 12 + month - 1)
    day_steps, month_steps = Counter(np.diff(days).tolist()), Counter(np.diff(months).tolist())
    if len(times) == 1 or day_steps.most_common(1)[0][0] == 1:
        return "daily", np.array(days, dtype=np.int64)
    if month_steps.most_common(1)[0][0] == 1:
        return "monthly", np.array(months, dtype=np.int64)
    common = day_steps.most_common(1)[0][0]
    raise DataError(f"{path}: time column {column!r} steps are neither daily nor monthly (most often {common} days "
                    "apart); only daily or monthly dates, or integer indices, are supported as a time column")


def _label(step: str, ordinal: int) -> str:
    if step == "daily":
        return datetime.date.fromordinal(int(ordinal)).isoformat()
    if step == "monthly":
        return f"{ordinal // 12:04d}-{ordinal % 12 + 1:02d}"
    return str(int(ordinal))


def _read_rows(path: Path) -> tuple[list[str], list[tuple[int, list[str]]]]:
    """The header, and (file line, row) for each later non-blank row."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as stream:
            reader = csv.reader(stream)
            header = next(reader, None)
            rows = [(reader.line_num, row) for row in reader if any(cell.strip() for cell in row)]
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise DataError(f"{path}: not a readable CSV file ({error})") from None
    if not header:  # None: no line at all; []: a blank first line
        raise DataError(f"{path}: {'empty file' if header is None else 'blank first line'}; "
                        "expected a header row and one row per step")
    return header, rows


def _column_index(path: Path, header: list[str], column: int | str | None) -> int:
    names = [name.strip() for name in header]
    if column is None:
        return len(names) - 1
    if isinstance(column, int):
        if not -len(names) <= column < len(names):
            raise DataError(f"{path}: no column {column}: the header has {len(names)} ({', '.join(names)})")
        return column % len(names)
    if column in names:
        return names.index(column)
    if column.strip().isdigit():  # an index given as text (a command-line flag)
        return _column_index(path, header, int(column))
    raise DataError(f"{path}: no column {column!r} in the header ({', '.join(names)})")


def _check_download(path: Path, spec: ModelSpec) -> None:
    """A download is checked like the course's file: its value column, its time axis and its step count."""
    data = spec.data
    steps = len(read_series_file(path, data.value_column, data.time_column, data.known_gaps).values)
    if steps != data.steps:
        raise DataError(f"{path}: {steps} steps, the course's file has {data.steps}")
