"""News-headline sarcasm (C3): the course's sarcasm.json, tokenized once with the Keras 2 semantics."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from parity.catalog import ModelSpec
from parity.datasets.locate import locate
from parity.datasets.sources import SOURCES
from parity.datasets.split import DataSplit, make_split
from parity.errors import DataError
from parity.text import Tokenizer, pad_sequences

FILE = "sarcasm.json"
COURSE_RECORDS = 26_709


def load_sarcasm(spec: ModelSpec, data_dir: str | os.PathLike | None) -> DataSplit:
    """The first `training_size` headlines train, the rest validate, in file order (as the course)."""
    files, _ = locate(SOURCES["sarcasm"], data_dir, validate=_check_download)
    path = files[FILE]
    headlines, labels = read_headlines(path)
    size = spec.data.training_size
    if len(headlines) <= size:
        raise DataError(
            f"{path}: {len(headlines)} records, but {spec.id} trains on the first {size} "
            "and validates on the rest, so it needs more"
        )
    return encode_split(spec, "real", (headlines[:size], labels[:size]), (headlines[size:], labels[size:]), str(path))


def read_headlines(path: Path) -> tuple[list[str], np.ndarray]:
    """Headlines and 0/1 labels of a sarcasm.json file: a JSON list of {headline, is_sarcastic, ...}."""
    try:
        records = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise DataError(
            f"{path}: not a readable JSON file ({error}); expected the course's sarcasm.json, a JSON list "
            "of records (Kaggle's JSON-lines file must be wrapped in [ ] with commas between records)"
        ) from None
    if not isinstance(records, list) or not records:
        raise DataError(f"{path}: expected a non-empty JSON list of headline records")
    headlines, labels = [], []
    for number, record in enumerate(records):
        if not (
            isinstance(record, dict)
            and isinstance(record.get("headline"), str)
            and record.get("is_sarcastic") in (0, 1)
        ):
            raise DataError(
                f"{path}: record {number} is not an object with a string 'headline' and an "
                f"'is_sarcastic' of 0 or 1: {str(record)[:120]}"
            )
        headlines.append(record["headline"])
        labels.append(record["is_sarcastic"])
    return headlines, np.array(labels, dtype=np.float32)


def encode_split(
    spec: ModelSpec,
    source: str,
    train: tuple[Sequence[str], np.ndarray],
    val: tuple[Sequence[str], np.ndarray],
    location: str,
) -> DataSplit:
    """Fit the tokenizer on the training texts only, then encode and pad both splits as `spec.data` says."""
    data = spec.data
    tokenizer = Tokenizer(num_words=data.vocab_size, oov_token=data.oov_token)
    tokenizer.fit_on_texts(train[0])

    def encode(texts: Sequence[str]) -> np.ndarray:
        sequences = tokenizer.texts_to_sequences(texts)
        return pad_sequences(sequences, data.max_length, data.padding, data.truncating)

    return make_split(
        spec,
        source,
        (encode(train[0]), train[1]),
        (encode(val[0]), val[1]),
        location,
        {"vocab_words": len(tokenizer.word_index)},
    )


def _check_download(path: Path) -> None:
    headlines, _ = read_headlines(path)
    if len(headlines) != COURSE_RECORDS:
        raise DataError(f"{path}: {len(headlines)} records, the course file has {COURSE_RECORDS}")
