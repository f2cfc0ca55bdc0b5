"""BBC news, 5 classes (C3W1, C3W2): the course's bbc-text.csv, read and encoded as the v2 assignment does.

The file: a header naming the columns `category` and `text`, then one article per record. C3W2 v2
(c3w2_bbc_embed_gap): the first 80% of the records train, the rest validate, in file order
(`int(len(data) * 0.8)`: 1780 / 445); the texts go through the assignment's `standardize_func`
(`parity.text.standardize_c3w2`: lower-case, its stopword list, punctuation) into a
TextVectorization(max_tokens=1000) adapted on the training texts; the labels through
StringLookup(num_oov_indices=0) adapted on all labels, training and validation (the assignment's
`fit_label_encoder` joins the two): ids by descending count, ties as Keras breaks them
(`parity.text.vocabulary_order`), giving sport, business, politics, tech, entertainment -> 0..4.
(Adapted on the training labels alone the order would be sport, business, politics, entertainment, tech.)

Malformed records are skipped, never mis-read: a record with another number of fields than the
header, an empty category or text, or bytes that are not UTF-8 is left out with a one-line
warning naming file:line (`DataWarning`), and counted in the split's info. A header without the
two columns, quoting that breaks the CSV structure, or a file with no valid record is a DataError.
"""

from __future__ import annotations

import csv
import os
import warnings
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from parity.catalog import ModelSpec
from parity.datasets.decode import DataWarning
from parity.datasets.locate import locate, read_data_file
from parity.datasets.sources import SOURCES
from parity.datasets.split import DataSplit, make_split
from parity.datasets.store import ragged_array
from parity.errors import DataError
from parity.text import TextVectorization, standardize, standardize_c3w2, vocabulary_order

FILE = "bbc-text.csv"
COURSE_RECORDS = 2225
LABEL_COLUMN, TEXT_COLUMN = "category", "text"
LISTED_SKIPS = 20  # skipped records listed by line in the split's info; the rest are counted


@dataclass(frozen=True)
class NewsRecords:
    """The valid records of a BBC-style CSV file, in file order, and the ones left out."""

    path: Path
    texts: list[str]
    labels: list[str]
    lines: list[int]  # the file line each record starts on (1-based; the header is line 1)
    skipped: list[tuple[int, str]]  # (line, what is wrong) of each record left out


def load_bbc(spec: ModelSpec, data_dir: str | os.PathLike | None) -> DataSplit:
    """The course's split of bbc-text.csv (first `training_split` of the records train), encoded per `spec.data`."""
    files, _ = locate(SOURCES["bbc-text"], data_dir, validate=_check_download)
    records = read_news_csv(files[FILE])
    location = str(records.path)
    info = {"files": [location], "records": len(records.texts), **skipped_info(records.skipped)}
    return encode_news(spec, "real", records.texts, records.labels, location, info)


def read_news_csv(path: str | os.PathLike) -> NewsRecords:
    """The records of a CSV file with `category` and `text` columns; malformed records skipped with a warning."""
    path = Path(path)
    raw = read_data_file(path, "BBC news file")
    undecodable: dict[int, str] = {}
    reader = csv.reader(_decoded_lines(raw, undecodable), strict=True)
    try:
        header = next(reader, None)
        if header is None:
            raise DataError(f"{path}: the file is empty; expected a header line 'category,text' and one article "
                            "per line")
        columns = [name.strip() for name in header]
        missing = [name for name in (LABEL_COLUMN, TEXT_COLUMN) if name not in columns]
        if missing:
            raise DataError(f"{path}:1: the header {','.join(columns)!r} lacks the column "
                            f"{' and '.join(repr(name) for name in missing)}; the course's file starts with "
                            "'category,text'")
        label_at, text_at = columns.index(LABEL_COLUMN), columns.index(TEXT_COLUMN)
        texts, labels, lines, skipped = [], [], [], []
        start = reader.line_num + 1
        for row in reader:
            end, line = reader.line_num, start
            start = end + 1
            if not row:
                continue  # a blank line holds no record
            problem = _record_problem(row, len(columns), label_at, text_at, undecodable, line, end)
            if problem is not None:
                skipped.append((line, problem))
                continue
            labels.append(row[label_at].strip())
            texts.append(row[text_at])
            lines.append(line)
    except csv.Error as error:
        raise DataError(f"{path}:{reader.line_num}: not valid CSV ({error}); fix the quoting of that record") from None
    warn_skipped(path, skipped)
    if not texts:
        raise DataError(f"{path}: no valid record ({len(skipped)} skipped); expected lines 'category,text'")
    return NewsRecords(path, texts, labels, lines, skipped)


def _decoded_lines(raw: bytes, undecodable: dict[int, str]) -> Iterator[str]:
    """The file's lines as text for csv.reader; a line that is not UTF-8 is decoded with replacement characters
    and its number noted in `undecodable` (with the first bad byte), so that its record is skipped."""
    pieces = raw.split(b"\n")
    if pieces and pieces[-1] == b"":
        pieces.pop()  # the file's final newline ends the last line, it starts none
    for number, piece in enumerate(pieces, start=1):
        try:
            text = piece.decode("utf-8")
        except UnicodeDecodeError as error:
            undecodable[number] = f"byte 0x{piece[error.start]:02x} at column {error.start + 1} is not UTF-8"
            text = piece.decode("utf-8", errors="replace")
        yield text + "\n"


def _record_problem(row: Sequence[str], fields: int, label_at: int, text_at: int, undecodable: Mapping[int, str],
                    first: int, last: int) -> str | None:
    """What is wrong with one record spanning file lines first..last (None: nothing)."""
    for number in range(first, last + 1):
        if number in undecodable:
            where = "" if number == first else f" (its line {number})"
            return f"undecodable bytes{where}: {undecodable[number]}"
    if len(row) != fields:
        return f"{len(row)} fields, the header has {fields}"
    if not row[label_at].strip():
        return f"empty {LABEL_COLUMN}"
    if not row[text_at].strip():
        return f"empty {TEXT_COLUMN}"
    return None


def warn_skipped(path: Path, skipped: Sequence[tuple[int, str]]) -> None:
    """One `DataWarning` line per record left out, "FILE:LINE: problem; record skipped" (the first LISTED_SKIPS,
    then one line counting the rest)."""
    for line, problem in skipped[:LISTED_SKIPS]:
        warnings.warn(f"{path}:{line}: {problem}; record skipped", DataWarning, stacklevel=3)
    if len(skipped) > LISTED_SKIPS:
        warnings.warn(f"{path}: {len(skipped) - LISTED_SKIPS} more malformed records skipped (lines "
                      f"{skipped[LISTED_SKIPS][0]} to {skipped[-1][0]})", DataWarning, stacklevel=3)


def skipped_info(skipped: Sequence[tuple[int, str]]) -> dict[str, Any]:
    """The split-info entries that account for the records left out ({} when none was)."""
    if not skipped:
        return {}
    listed = [f"line {line}: {problem}" for line, problem in skipped[:LISTED_SKIPS]]
    return {"skipped_records": len(skipped), "skipped": listed}


def label_vocabulary(labels: Sequence[str]) -> list[str]:
    """StringLookup(num_oov_indices=0).adapt(labels).get_vocabulary(): labels by descending count, ties as Keras."""
    return vocabulary_order(Counter(labels))


def encode_news(spec: ModelSpec, source: str, texts: Sequence[str], labels: Sequence[str], location: str,
                info: Mapping[str, Any]) -> DataSplit:
    """The first `training_split` of the records train, the rest validate; texts vectorized as `spec.data` says
    (fitted on the training texts), labels looked up in the vocabulary of all labels."""
    data = spec.data
    if spec.layers is None:
        raise DataError(f"{spec.id} trains no classifier on {spec.dataset}; its walkthrough is `parity preproc` "
                        "(parity.text_preproc)")
    train_size = int(len(texts) * data.training_split)
    classes = label_vocabulary(labels)
    if len(classes) > spec.classes:
        raise DataError(f"{location}: {len(classes)} categories ({', '.join(classes)}), but {spec.id} classifies "
                        f"into {spec.classes}; give a file with at most {spec.classes} categories")
    label_ids = {label: index for index, label in enumerate(classes)}
    y = np.array([label_ids[label] for label in labels], dtype=np.int64)
    vectorizer = TextVectorization(max_tokens=data.vocab_size,
                                   standardize=standardize_c3w2 if data.remove_stopwords else standardize)
    vectorizer.adapt(texts[:train_size])
    ids = vectorizer(texts)
    note = {"tokenizer": data.tokenizer, "vocabulary_size": vectorizer.vocabulary_size(), "classes": classes,
            "standardize": "c3w2_stopwords" if data.remove_stopwords else "lower_and_strip_punctuation"}
    return make_split(spec, source, (ragged_array(ids[:train_size]), y[:train_size]),
                      (ragged_array(ids[train_size:]), y[train_size:]), location, {**info, **note},
                      vocabulary=vectorizer.get_vocabulary())


def _check_download(path: Path) -> None:
    """A fresh download has no checksum to match (see sources.py): its records are the check."""
    records = read_news_csv(path)
    if len(records.texts) != COURSE_RECORDS or records.skipped:
        raise DataError(f"{path}: {len(records.texts)} valid records and {len(records.skipped)} skipped; the "
                        f"course file has {COURSE_RECORDS} valid ones")

